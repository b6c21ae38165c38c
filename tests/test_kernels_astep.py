"""Numba kernels of the A-step (ridge path, lasso KKT, Jacobi reads, thread independence) agree with their plain-NumPy references in ``naive.py``.

Split from the former ``test_kernels.py``; strategies shared between families
are in ``kernel_cases.py``.
"""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import naive
import licchie.kernels as K
from kernel_cases import SETTINGS, _unit_columns, pair_problems, _a_step, _threads


# --------------------------------------------------------------------------
# A-step
# --------------------------------------------------------------------------

LAMS = st.tuples(st.sampled_from([0.0, 0.05, 1.0, 3.0]), st.sampled_from([0.0, 0.1, 2.0]))


@settings(**SETTINGS)
@given(pair_problems(), LAMS)
def test_a_step_ridge_path_matches_dense_least_squares(p, lams):
    """lam3 = 0: closed form == dense solve of the target's explicit objective."""
    lam1, lam2 = lams
    ridge = 1e-3
    A_new, n_bad = _a_step(p, lam1, lam2, 0.0, ridge)
    assert n_bad == 0
    args = (p["A_old"], p["X"], p["tgt_obs"], p["tgt_ptr"], p["src"], p["gain"],
            p["nbr_ptr"], p["nbr_idx"], p["nbr_w"], p["W"], p["C"], p["R"], lam1, lam2, ridge)
    ref = naive.a_step(*args)
    ref_ne = naive.a_step_normal_equations(*args)
    np.testing.assert_allclose(ref_ne, ref, rtol=1e-6, atol=1e-8)  # the two references
    np.testing.assert_allclose(A_new, ref, rtol=1e-7, atol=1e-9)


@settings(**SETTINGS)
@given(pair_problems(max_targets=4, max_pairs_per_target=3), LAMS,
       st.sampled_from([0.01, 0.3, 2.0]))
def test_a_step_lasso_satisfies_kkt(p, lams, lam3):
    """lam3 > 0: the coordinate descent output is the exact minimiser of the
    target's explicit objective ``||D a - t||^2 + lam3 |a|_1`` (KKT)."""
    lam1, lam2 = lams
    ridge = 1e-2
    A_new, n_bad = _a_step(p, lam1, lam2, lam3, ridge)
    assert n_bad == 0
    B = naive.lowrank(p["W"], p["C"], p["R"])
    for t in range(len(p["tgt_obs"])):
        pairs = list(range(p["tgt_ptr"][t], p["tgt_ptr"][t + 1]))
        D, rhs = naive.a_step_design(p["A_old"], p["X"], p["tgt_obs"][t], pairs, p["src"],
                                     p["gain"], p["nbr_ptr"], p["nbr_idx"], p["nbr_w"], B,
                                     lam1, lam2, ridge)
        a = A_new[pairs[0]:pairs[-1] + 1].ravel()
        scale = 1.0 + np.abs(D).max() * (np.abs(D).max() * np.abs(a).sum() + np.abs(rhs).max())
        assert naive.lasso_kkt_violation(D, rhs, a, lam3) <= 1e-9 * scale


def test_a_step_lasso_does_not_stop_when_a_sweep_zeroes_everything():
    """Regression (kernels/astep.py, coordinate-descent stopping rule): a sweep
    that moves every coordinate to 0 (``amax == 0``) while still changing
    them (``dmax > 0``) is not convergence.

    Row 0 of the only pair, warm-started at (0, 6), z = (1, 0.5), y = 3,
    lam3 = 4: the first sweep sets a1 = 0 (because a2 = 6 explains y) and then
    a2 = 0, but at a = 0 coordinate 1 violates optimality (|2 z1 y| = 6 > 4);
    the minimiser is a = ((3 - 2) / (1 + ridge), 0).
    """
    d = 2
    p = dict(A_old=np.zeros((1, d, d)), X=np.array([[3.0, 3.0], [1.0, 0.5]]),
             tgt_obs=np.array([0], np.int64), tgt_ptr=np.array([0, 1], np.int64),
             src=np.array([1], np.int64), gain=np.ones(1),
             nbr_ptr=np.zeros(2, np.int64), nbr_idx=np.zeros(0, np.int64),
             nbr_w=np.zeros(0), W=np.zeros((1, 1)), C=np.zeros((d, 1)), R=np.zeros((d, 1)))
    p["A_old"][0, 0] = [0.0, 6.0]
    ridge = 1e-12
    A_new, n_bad = _a_step(p, 0.0, 0.0, 4.0, ridge)
    assert n_bad == 0
    np.testing.assert_allclose(A_new[0, 0], [1.0 / (1.0 + ridge), 0.0], rtol=1e-12, atol=1e-15)
    D, rhs = naive.a_step_design(p["A_old"], p["X"], 0, [0], p["src"], p["gain"],
                                 p["nbr_ptr"], p["nbr_idx"], p["nbr_w"],
                                 np.zeros((1, d, d)), 0.0, 0.0, ridge)
    assert naive.lasso_kkt_violation(D, rhs, A_new[0].ravel(), 4.0) <= 1e-9


def test_a_step_lasso_matches_ridge_path_as_lam3_vanishes():
    rng = np.random.default_rng(7)
    d, J, E = 3, 2, 5
    prob = dict(A_old=rng.normal(size=(E, d, d)), X=rng.normal(size=(8, d)),
                tgt_obs=np.array([0, 1], np.int64), tgt_ptr=np.array([0, 2, 5], np.int64),
                src=np.array([2, 3, 4, 5, 6], np.int64), gain=np.ones(E),
                W=rng.normal(size=(E, J)), C=_unit_columns(rng.normal(size=(d, J))),
                R=_unit_columns(rng.normal(size=(d, J))))
    prob["nbr_ptr"], prob["nbr_idx"], prob["nbr_w"] = naive.csr_from_edges(
        E, {(0, 1): 0.5, (1, 3): 0.9, (2, 4): 0.3})
    A0, _ = _a_step(prob, 0.7, 0.4, 0.0, 1e-3)
    A1, n_bad = _a_step(prob, 0.7, 0.4, 1e-12, 1e-3)
    assert n_bad == 0
    np.testing.assert_allclose(A1, A0, rtol=1e-8, atol=1e-10)


def test_a_step_no_low_rank_no_neighbours_is_minimum_norm():
    """lam1 = 0 and no graph: each target's fit is the minimum-norm solution
    of ``y = sum_e A_e z_e`` (the vanishing-ridge limit), ``A_e = y z_e^T / |z|^2``."""
    rng = np.random.default_rng(11)
    d, E = 3, 7
    X = rng.normal(size=(10, d))
    tgt_obs = np.array([0, 1, 2], np.int64)
    tgt_ptr = np.array([0, 1, 4, 7], np.int64)
    src = np.array([3, 4, 5, 6, 7, 8, 9], np.int64)
    gain = rng.uniform(0.5, 1.5, size=E)
    empty = np.zeros(0, np.int64)
    p = dict(A_old=rng.normal(size=(E, d, d)), X=X, tgt_obs=tgt_obs, tgt_ptr=tgt_ptr,
             src=src, gain=gain, nbr_ptr=np.zeros(E + 1, np.int64), nbr_idx=empty,
             nbr_w=np.zeros(0), W=np.zeros((E, 1)), C=np.zeros((d, 1)), R=np.zeros((d, 1)))
    for lam2 in (0.0, 5.0):  # lam2 > 0 without neighbours is still no regulariser
        A_new, _ = _a_step(p, 0.0, lam2, 0.0, 1e-12)
        for t in range(3):
            s0, s1 = tgt_ptr[t], tgt_ptr[t + 1]
            Z = np.concatenate([gain[e] * X[src[e]] for e in range(s0, s1)])
            # explicit wide system: y_i = a_i . z for every row i
            sol = np.linalg.lstsq(Z[None, :], X[tgt_obs[t]][None, :], rcond=None)[0]
            ref = sol.T.reshape(d, s1 - s0, d).transpose(1, 0, 2)
            np.testing.assert_allclose(A_new[s0:s1], ref, rtol=1e-9, atol=1e-12)
        # and the dense reference agrees
        ref_all = naive.a_step(p["A_old"], X, tgt_obs, tgt_ptr, src, gain, p["nbr_ptr"],
                               empty, p["nbr_w"], p["W"], p["C"], p["R"], 0.0, lam2, 0.0)
        np.testing.assert_allclose(A_new, ref_all, rtol=1e-9, atol=1e-12)


def test_a_step_jacobi_reads_neighbours_of_same_target_from_a_old():
    """Two pairs of one target linked in the graph: each is pulled toward the
    other's *previous* value, not its new one."""
    d = 2
    X = np.array([[1.0, -1.0], [0.5, 2.0], [-1.0, 0.3]])
    p = dict(A_old=np.stack([np.eye(d), -np.eye(d)]), X=X,
             tgt_obs=np.array([0], np.int64), tgt_ptr=np.array([0, 2], np.int64),
             src=np.array([1, 2], np.int64), gain=np.ones(2),
             W=np.zeros((2, 1)), C=np.zeros((d, 1)), R=np.zeros((d, 1)))
    p["nbr_ptr"], p["nbr_idx"], p["nbr_w"] = naive.csr_from_edges(2, {(0, 1): 0.8})
    A_new, _ = _a_step(p, 0.0, 1.5, 0.0, 1e-3)
    ref = naive.a_step(p["A_old"], X, p["tgt_obs"], p["tgt_ptr"], p["src"], p["gain"],
                       p["nbr_ptr"], p["nbr_idx"], p["nbr_w"], p["W"], p["C"], p["R"],
                       0.0, 1.5, 1e-3)
    np.testing.assert_allclose(A_new, ref, rtol=1e-10, atol=1e-12)
    # changing the old value of pair 1 changes the new value of pair 0
    p2 = dict(p, A_old=np.stack([np.eye(d), np.zeros((d, d))]))
    A_new2, _ = _a_step(p2, 0.0, 1.5, 0.0, 1e-3)
    assert not np.allclose(A_new2[0], A_new[0])


def test_a_step_does_not_depend_on_thread_count():
    rng = np.random.default_rng(5)
    d, J = 3, 2
    n_t = 300  # several tasks of 64 targets
    S = rng.integers(1, 4, size=n_t)
    E = int(S.sum())
    p = dict(A_old=rng.normal(size=(E, d, d)), X=rng.normal(size=(n_t + 50, d)),
             tgt_obs=np.arange(n_t, dtype=np.int64),
             tgt_ptr=np.concatenate([[0], np.cumsum(S)]).astype(np.int64),
             src=rng.integers(n_t, n_t + 50, size=E).astype(np.int64), gain=np.ones(E),
             W=rng.normal(size=(E, J)), C=_unit_columns(rng.normal(size=(d, J))),
             R=_unit_columns(rng.normal(size=(d, J))))
    Sst = K.stacked_states(p["X"], np.repeat(p["tgt_obs"], S), p["src"])
    idx, _ = K.knn_stacked(Sst, 4)
    p["nbr_ptr"], p["nbr_idx"], p["nbr_w"] = K.symmetric_graph(Sst, idx, 0.5)
    out = []
    for n in (1, 2):
        with _threads(n):
            out.append([_a_step(p, 1.0, 0.5, lam3, 1e-6)[0] for lam3 in (0.0, 0.2)])
    for a, b in zip(*out):
        np.testing.assert_array_equal(a, b)
