"""``LICCHIE(dtype="float32")``: A stored in float32, everything else float64.

Kept to a few tiny problems: every float32 kernel is compiled on its first
use (lazily, per dtype), and that compile time counts in CI.
"""
import warnings

import numpy as np
import pytest

import naive
import licchie
import licchie.kernels as K
from licchie import LICCHIE
from licchie.fit import motif_agreement
from licchie.synthetic import make_recording

# Documented in docs/performance.md ("float32"): a float32 fit's objective
# stayed within 6e-6 (relative) of the float64 fit's at every iteration on
# this problem, at the paper's size and at 20x; the largest difference is at
# the start (PARAFAC runs in float32).  5x margin for other BLAS builds.
OBJ_RTOL = 3e-5
# A step may raise the objective by rounding its float64 solution to float32;
# that is far below float32's resolution of the objective's value.
NOISE_RTOL = 1e-7


@pytest.fixture(scope="module")
def small():
    ds, _ = make_recording(n_cells=(6, 4), n_frames=8, n_features=3, n_components=2, seed=3)
    return ds


def _fit(ds, **kw):
    # without gains: a fit with gains keeps or drops its refinement on a
    # comparison of two objectives that float32 rounding can flip
    p = dict(n_components=2, radius=10.0, n_neighbors=4, lambdas=(1.0, 0.1, 0.0, 0.01, 1.0),
             n_init=2, max_iter=8, tol=0.0, random_state=0, verbose=0, target_gain=False)
    p.update(kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return LICCHIE(**p).fit(ds)


@pytest.fixture(scope="module")
def pair(small):
    """The same fit in float64 and float32 (every step recorded)."""
    return (_fit(small, solver_options={"record_steps": True}),
            _fit(small, solver_options={"record_steps": True}, dtype="float32"))


def test_float32_fit_matches_float64(small, pair):
    f64, f32 = pair
    C64, R64 = (f64.components_[k].values.T for k in ("target_effect", "source_effect"))
    C32, R32 = (f32.components_[k].values.T for k in ("target_effect", "source_effect"))
    sim, _ = motif_agreement(C64, R64, C32, R32)
    assert sim.min() > 1 - 1e-6
    L64 = f64.objective_history_.sel(term="total").values
    L32 = f32.objective_history_.sel(term="total").values
    assert L64.shape == L32.shape
    np.testing.assert_allclose(L32, L64, rtol=OBJ_RTOL)
    y64 = f64.predict(small).values
    y32 = f32.predict(small).values
    ok = np.isfinite(y64)
    assert np.array_equal(ok, np.isfinite(y32))
    assert np.linalg.norm(y32[ok] - y64[ok]) <= 1e-5 * np.linalg.norm(y64[ok])
    # results are float64 whatever the storage of A
    assert f32.weights_.dtype == np.float64
    assert f32.components_["target_effect"].dtype == np.float64


def test_float32_objective_history_is_monotone_within_float32_noise(pair):
    _, f32 = pair
    h = f32.objective_history_
    assert {"A", "components", "weights"} <= set(h["stage"].values)
    tot = h.sel(term="total").values
    assert np.all(np.diff(tot) <= NOISE_RTOL * np.abs(tot[:-1]))


def _problem(seed=2, n_t=80, d=3, J=2):
    """A random pair structure and graph, more than one task of targets."""
    rng = np.random.default_rng(seed)
    S = rng.integers(1, 4, size=n_t)
    E = int(S.sum())
    ew = {}
    for a in range(E):
        for b in rng.choice(E, size=3, replace=False):
            if b != a:
                ew[(min(a, b), max(a, b))] = float(rng.uniform(0.05, 1.0))
    nbr_ptr, nbr_idx, nbr_w = naive.csr_from_edges(E, ew)
    C = rng.normal(size=(d, J))
    R = rng.normal(size=(d, J))
    return dict(A_old=rng.normal(size=(E, d, d)), X=rng.normal(size=(n_t + 20, d)),
                tgt_obs=np.arange(n_t, dtype=np.int64),
                tgt_ptr=np.concatenate([[0], np.cumsum(S)]).astype(np.int64),
                src=rng.integers(n_t, n_t + 20, size=E).astype(np.int64),
                gain=rng.uniform(0.5, 1.5, size=E), nbr_ptr=nbr_ptr, nbr_idx=nbr_idx,
                nbr_w=nbr_w, W=rng.normal(size=(E, J)), C=C / np.linalg.norm(C, axis=0),
                R=R / np.linalg.norm(R, axis=0), Wbar=rng.normal(size=(2, J)),
                group=rng.integers(0, 2, size=E).astype(np.int64))


def _a_step(p, A_old, lam3):
    A_new = np.full_like(A_old, np.nan)
    K.a_step(A_old, p["X"], p["tgt_obs"], p["tgt_ptr"], p["src"], p["gain"], p["nbr_ptr"],
             p["nbr_idx"], p["nbr_w"], p["W"], p["C"], p["R"], 1.0, 0.5, lam3, 1e-8,
             100000, 1e-14, A_new)
    return A_new


def _objective(p, A):
    return K.objective_terms(A, p["X"], p["tgt_obs"], p["tgt_ptr"], p["src"], p["gain"],
                             p["nbr_ptr"], p["nbr_idx"], p["nbr_w"], p["W"], p["C"], p["R"],
                             p["Wbar"], p["group"])


def test_float32_kernels_round_float64_results_once():
    """On float32 input the kernels compute in float64: the A-step's result is
    the float64 result on the same values rounded once, the sums over pairs
    are exactly the float64 sums; and both are within float32 tolerance of
    the float64 reference on the unrounded input."""
    p = _problem()
    A64 = p["A_old"]
    A32 = A64.astype(np.float32)
    A32w = A32.astype(np.float64)  # the float32 values, widened
    for lam3 in (0.0, 0.2):
        new32 = _a_step(p, A32, lam3)
        assert new32.dtype == np.float32
        np.testing.assert_array_equal(new32, _a_step(p, A32w, lam3).astype(np.float32))
        scale = np.abs(_a_step(p, A64, lam3)).max()
        np.testing.assert_allclose(new32, _a_step(p, A64, lam3), rtol=0, atol=1e-6 * scale)
    ref = naive.a_step(A64, p["X"], p["tgt_obs"], p["tgt_ptr"], p["src"], p["gain"],
                       p["nbr_ptr"], p["nbr_idx"], p["nbr_w"], p["W"], p["C"], p["R"], 1.0,
                       0.5, 1e-8)
    np.testing.assert_allclose(_a_step(p, A32, 0.0), ref, rtol=0,
                               atol=1e-6 * np.abs(ref).max())
    np.testing.assert_array_equal(_objective(p, A32), _objective(p, A32w))
    np.testing.assert_allclose(_objective(p, A32),
                               naive.objective_terms(A64, p["X"], p["tgt_obs"], p["tgt_ptr"],
                                                     p["src"], p["gain"], p["nbr_ptr"],
                                                     p["nbr_idx"], p["nbr_w"], p["W"],
                                                     p["C"], p["R"], p["Wbar"], p["group"]),
                               rtol=1e-6)
    W, C, R = p["W"], p["C"], p["R"]
    np.testing.assert_array_equal(K.weighted_sum(A32, W), K.weighted_sum(A32w, W))
    np.testing.assert_array_equal(K.bilinear_cr(A32, C, R), K.bilinear_cr(A32w, C, R))
    B32 = K.lowrank_reconstruct(W, C, R, np.float32)
    assert B32.dtype == np.float32
    np.testing.assert_array_equal(B32, K.lowrank_reconstruct(W, C, R).astype(np.float32))


@pytest.mark.parametrize("bad", ["float16", "double", np.float32, None, 32])
def test_bad_dtype_names_allowed_values(small, bad):
    # scikit-learn lists the allowed values of a set, in hash order
    with pytest.raises(ValueError, match="'dtype'(?=.*'float32')(?=.*'float64')"):
        LICCHIE(dtype=bad).fit(small)


def test_dtype_saved_loaded_and_on_the_cli(tmp_path, small, pair):
    _, f32 = pair
    path = tmp_path / "model.nc"
    f32.save(path)
    back = licchie.load(path)
    assert back.dtype == "float32"
    assert back.get_params() == f32.get_params()
    from licchie.cli import main
    data = tmp_path / "rec.nc"
    small.to_netcdf(data)
    out = tmp_path / "cli.nc"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # n_init=1, max_iter=1
        assert main(["fit", str(data), "--components", "2", "--n-init", "1", "--max-iter",
                     "1", "--dtype", "float32", "--quiet", "-o", str(out)]) == 0
    assert licchie.load(out).dtype == "float32"
