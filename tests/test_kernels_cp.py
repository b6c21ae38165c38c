"""Numba kernels of CP contractions, CP-ALS/PARAFAC start and the component step agree with their plain-NumPy references in ``naive.py``.

Split from the former ``test_kernels.py``; strategies shared between families
are in ``kernel_cases.py``.
"""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import naive
import licchie.kernels as K
from licchie.fit import Problem
from kernel_cases import SETTINGS, _unit_columns, _threads


# --------------------------------------------------------------------------
# CP contractions
# --------------------------------------------------------------------------

@st.composite
def factors(draw, max_E=40):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    E = draw(st.integers(0, max_E))
    d = draw(st.integers(1, 4))
    J = draw(st.integers(1, 3))
    return (rng.normal(size=(E, d, d)), rng.normal(size=(E, J)),
            rng.normal(size=(d, J)), rng.normal(size=(d, J)))


@settings(**SETTINGS)
@given(factors())
def test_contractions_match_einsum(f):
    A, W, C, R = f
    # the component step's shared pass: S = sum_e W[e,j] A_e, then S_j r_j, S_j^T c_j
    S = K.weighted_sum(A, W)
    np.testing.assert_allclose(S, np.einsum("ej,eab->jab", W, A), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(K.times_columns(S, R), naive.contract_ar(A, W, R),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(K.times_columns(S, C, transpose=True),
                               naive.contract_atc(A, W, C), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(K.bilinear_cr(A, C, R), naive.bilinear_cr(A, C, R),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(K.lowrank_reconstruct(W, C, R),
                               naive.lowrank_reconstruct(W, C, R), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(K.lowrank_reconstruct(W, C, R), naive.lowrank(W, C, R),
                               rtol=1e-12, atol=1e-12)


def test_contractions_do_not_depend_on_thread_count():
    rng = np.random.default_rng(2)
    E, d, J = 5000, 3, 2  # three chunks of 2048 pairs
    A, W = rng.normal(size=(E, d, d)), rng.normal(size=(E, J))
    C, R = rng.normal(size=(d, J)), rng.normal(size=(d, J))
    out = []
    for n in (1, 2):
        with _threads(n):
            S = K.weighted_sum(A, W)
            out.append([K.times_columns(S, R), K.times_columns(S, C, transpose=True),
                        K.bilinear_cr(A, C, R), K.lowrank_reconstruct(W, C, R)])
    for a, b in zip(*out):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(out[0][0], naive.contract_ar(A, W, R), rtol=1e-10)
    np.testing.assert_allclose(out[0][1], naive.contract_atc(A, W, C), rtol=1e-10)


@st.composite
def cp_problems(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    d = draw(st.integers(1, 4))
    J = draw(st.integers(1, d))  # J <= d <= E: the normal equations are regular
    E = draw(st.integers(d, 60))
    # a low-rank tensor plus noise
    A = np.einsum("ej,aj,bj->eab", rng.normal(size=(E, J)), rng.normal(size=(d, J)),
                  rng.normal(size=(d, J)))
    A = A + draw(st.sampled_from([0.0, 0.1, 1.0])) * rng.normal(size=(E, d, d))
    return A, J, draw(st.integers(1, 6)), draw(st.sampled_from([0.0, 1e-8])), seed


@settings(**SETTINGS)
@given(cp_problems())
def test_cp_als_is_tensorlys_parafac(prob):
    """The kernels' CP-ALS reproduces tensorly's parafac (same random init,
    no normalisation, no line search) to rounding, with its stopping rule."""
    from tensorly.decomposition import parafac
    from tensorly.decomposition._cp import initialize_cp

    A, J, n_iter, tol, seed = prob
    state = seed % (2**31 - 1)
    ref = parafac(A, rank=J, init="random", n_iter_max=n_iter, tol=tol, random_state=state,
                  normalize_factors=False)
    _, f0 = initialize_cp(A, J, init="random", random_state=state, normalize_factors=False)
    W, C, R, _ = K.cp_als(A, *f0, n_iter, tol)
    np.testing.assert_array_equal(ref.weights, 1.0)
    # the factors are determined up to scalings that ill-conditioned normal
    # equations amplify rounding in: compare the reconstructions
    rec = np.einsum("ej,aj,bj->eab", W, C, R)
    rec_ref = np.einsum("ej,aj,bj->eab", *ref.factors)
    np.testing.assert_allclose(rec, rec_ref, rtol=0, atol=1e-7 * max(1.0, np.abs(A).max()))


def test_cp_als_factors_match_tensorly_and_use_float64_sums():
    from tensorly.decomposition import parafac
    from tensorly.decomposition._cp import initialize_cp

    rng = np.random.default_rng(4)
    E, d, J = 3000, 5, 3  # two chunks
    A = np.einsum("ej,aj,bj->eab", rng.normal(size=(E, J)), rng.normal(size=(d, J)),
                  rng.normal(size=(d, J))) + 0.3 * rng.normal(size=(E, d, d))
    ref = parafac(A, rank=J, init="random", n_iter_max=100, tol=1e-8, random_state=3,
                  normalize_factors=False)
    _, f0 = initialize_cp(A, J, init="random", random_state=3, normalize_factors=False)
    out = K.cp_als(A, *f0, 100, 1e-8)
    assert 1 < out[3] < 100  # stopped by the tolerance, as tensorly did
    for got, want in zip(out[:3], ref.factors):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-10 * np.abs(want).max())
    # float32 A: the same iterations on the widened values, sums in float64
    A32 = A.astype(np.float32)
    got32 = K.cp_als(A32, *f0, 5, 0.0)
    want32 = K.cp_als(A32.astype(np.float64), *f0, 5, 0.0)
    for a, b in zip(got32, want32):
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------
# component step
# --------------------------------------------------------------------------

@settings(**SETTINGS)
@given(factors(max_E=25))
def test_component_step_is_exact_on_the_sphere(f):
    A, W, C, R = f
    if A.shape[0] == 0:
        return
    C, R = _unit_columns(C), _unit_columns(R)
    prob = Problem(X=None, pairs=None, graph=None, lambdas=(1.0, 0.0, 0.0, 0.0, 0.0))
    C1, R1 = prob.component_step(A, W, C, R)
    C1r, R1r = naive.component_step(A, W, C, R)
    np.testing.assert_allclose(C1, C1r, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(R1, R1r, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(np.linalg.norm(C1, axis=0), 1.0, rtol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(R1, axis=0), 1.0, rtol=1e-12)
    before = naive.lowrank_term(A, W, C, R)
    after = naive.lowrank_term(A, W, C1, R1)
    assert after <= before + 1e-10 * abs(before) + 1e-12


def test_component_step_each_update_is_the_sphere_maximiser():
    """Per component: replacing the updated c_j (others fixed) by any other
    unit vector cannot lower the low-rank term."""
    rng = np.random.default_rng(4)
    E, d, J = 30, 3, 3
    A, W = rng.normal(size=(E, d, d)), rng.normal(size=(E, J))
    C, R = _unit_columns(rng.normal(size=(d, J))), _unit_columns(rng.normal(size=(d, J)))
    prob = Problem(X=None, pairs=None, graph=None, lambdas=(1.0, 0.0, 0.0, 0.0, 0.0))
    C1, R1 = prob.component_step(A, W, C, R)
    # the last c update happens with C1 everywhere and R unchanged
    j = J - 1
    best = naive.lowrank_term(A, W, C1, R)
    for _ in range(200):
        Cj = C1.copy()
        Cj[:, j] = _unit_columns(rng.normal(size=(d, 1)))[:, 0]
        assert naive.lowrank_term(A, W, Cj, R) >= best - 1e-12
    # and the last r update with C1 and R1 everywhere
    best = naive.lowrank_term(A, W, C1, R1)
    for _ in range(200):
        Rj = R1.copy()
        Rj[:, j] = _unit_columns(rng.normal(size=(d, 1)))[:, 0]
        assert naive.lowrank_term(A, W, C1, Rj) >= best - 1e-12


def test_component_step_keeps_component_with_zero_weights():
    rng = np.random.default_rng(9)
    E, d, J = 6, 3, 2
    A, W = rng.normal(size=(E, d, d)), rng.normal(size=(E, J))
    W[:, 1] = 0.0
    C, R = _unit_columns(rng.normal(size=(d, J))), _unit_columns(rng.normal(size=(d, J)))
    prob = Problem(X=None, pairs=None, graph=None, lambdas=(1.0, 0.0, 0.0, 0.0, 0.0))
    C1, R1 = prob.component_step(A, W, C, R)
    np.testing.assert_array_equal(C1[:, 1], C[:, 1])
    np.testing.assert_array_equal(R1[:, 1], R[:, 1])


def test_parafac_start_matches_tensorly():
    from licchie.fit import parafac_init

    rng = np.random.default_rng(8)
    E, d, J = 500, 4, 3
    A = np.einsum("ej,aj,bj->eab", rng.normal(size=(E, J)), rng.normal(size=(d, J)),
                  rng.normal(size=(d, J))) + 0.2 * rng.normal(size=(E, d, d))
    for got, want in zip(parafac_init(A, J, 11), parafac_init(A, J, 11, als="tensorly")):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-9 * np.abs(want).max())
