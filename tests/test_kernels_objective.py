"""Numba kernels of the objective terms and the predictions agree with their plain-NumPy references in ``naive.py``.

Split from the former ``test_kernels.py``; strategies shared between families
are in ``kernel_cases.py``.
"""
import numpy as np
from hypothesis import given, settings

import naive
import licchie.kernels as K
from kernel_cases import SETTINGS, pair_problems, _threads


# --------------------------------------------------------------------------
# objective and predictions
# --------------------------------------------------------------------------

def _objective_args(p, A):
    return (A, p["X"], p["tgt_obs"], p["tgt_ptr"], p["src"], p["gain"], p["nbr_ptr"],
            p["nbr_idx"], p["nbr_w"], p["W"], p["C"], p["R"], p["Wbar"], p["group"])


@settings(**SETTINGS)
@given(pair_problems())
def test_objective_terms_match_dense(p):
    A = p["A_old"]
    got = K.objective_terms(*_objective_args(p, A))
    ref = naive.objective_terms(*_objective_args(p, A))
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


def test_objective_terms_counts_each_edge_once_and_skips_pairless_targets():
    d = 1
    p = dict(X=np.array([[1.0], [2.0], [3.0], [10.0]]),
             tgt_obs=np.array([0], np.int64), tgt_ptr=np.array([0, 2], np.int64),
             src=np.array([1, 2], np.int64), gain=np.array([1.0, 0.5]),
             W=np.zeros((2, 1)), C=np.ones((d, 1)), R=np.ones((d, 1)),
             Wbar=np.zeros((1, 1)), group=np.zeros(2, np.int64))
    p["nbr_ptr"], p["nbr_idx"], p["nbr_w"] = naive.csr_from_edges(2, {(0, 1): 0.25})
    A = np.array([[[1.0]], [[3.0]]])
    t = K.objective_terms(*_objective_args(p, A))
    # xhat = 1*1*2 + 0.5*3*3 = 6.5; (1 - 6.5)^2; observation 3 is no target
    np.testing.assert_allclose(t, [30.25, 10.0, 0.25 * 4.0, 4.0, 0.0, 0.0])


def test_objective_terms_do_not_depend_on_thread_count():
    rng = np.random.default_rng(8)
    n_t, d, J = 400, 2, 2
    S = rng.integers(1, 3, size=n_t)
    E = int(S.sum())
    p = dict(X=rng.normal(size=(n_t + 20, d)), tgt_obs=np.arange(n_t, dtype=np.int64),
             tgt_ptr=np.concatenate([[0], np.cumsum(S)]).astype(np.int64),
             src=rng.integers(n_t, n_t + 20, size=E).astype(np.int64),
             gain=rng.uniform(0.5, 1, size=E), W=rng.normal(size=(E, J)),
             C=rng.normal(size=(d, J)), R=rng.normal(size=(d, J)),
             Wbar=rng.normal(size=(2, J)), group=rng.integers(0, 2, size=E).astype(np.int64))
    Sst = K.stacked_states(p["X"], np.repeat(p["tgt_obs"], S), p["src"])
    p["nbr_ptr"], p["nbr_idx"], p["nbr_w"] = K.symmetric_graph(Sst, K.knn_stacked(Sst, 3)[0],
                                                               0.3)
    A = rng.normal(size=(E, d, d))
    out = []
    for n in (1, 2):
        with _threads(n):
            out.append(K.objective_terms(*_objective_args(p, A)))
    np.testing.assert_array_equal(out[0], out[1])
    np.testing.assert_allclose(out[0], naive.objective_terms(*_objective_args(p, A)),
                               rtol=1e-10)


@settings(**SETTINGS)
@given(pair_problems())
def test_predictions_match_dense(p):
    np.testing.assert_allclose(
        K.predict_lowrank(p["X"], p["tgt_ptr"], p["src"], p["gain"], p["W"], p["C"], p["R"]),
        naive.predict_lowrank(p["X"], p["tgt_ptr"], p["src"], p["gain"], p["W"], p["C"],
                              p["R"]),
        rtol=1e-12, atol=1e-12)
