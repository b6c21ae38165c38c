"""Numba kernels of the weight step (lasso with pooling) and the group means agree with their plain-NumPy references in ``naive.py``.

Split from the former ``test_kernels.py``; strategies shared between families
are in ``kernel_cases.py``.
"""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import naive
import licchie.kernels as K
from kernel_cases import SETTINGS, pair_problems


# --------------------------------------------------------------------------
# weight step
# --------------------------------------------------------------------------

@settings(**SETTINGS)
@given(pair_problems(max_targets=5), st.sampled_from([0.1, 1.0, 3.0]),
       st.sampled_from([0.0, 0.05, 0.5, 2.0]), st.sampled_from([0.0, 0.3, 2.0]))
def test_weight_lasso_matches_explicit_lasso(p, lam1, lam4, lam5):
    A, C, R, Wbar, group = p["A_old"], p["C"], p["R"], p["Wbar"], p["group"]
    b = naive.bilinear_cr(A, C, R)
    G = (C.T @ C) * (R.T @ R)
    W_init = p["W"].copy()
    W, n_bad = K.weight_lasso(b, Wbar, group, G, lam1, lam4, lam5, W_init, 100000, 1e-14)
    assert n_bad == 0
    np.testing.assert_array_equal(W_init, p["W"])  # warm start untouched
    Q = lam1 * G + lam5 * np.eye(G.shape[0])
    strictly_convex = np.linalg.eigvalsh(Q).min() > 1e-6
    for e in range(A.shape[0]):
        D, t = naive.weight_design(A[e], C, R, Wbar[group[e]], lam1, lam5)
        scale = 1.0 + np.abs(D).max() * (np.abs(D).max() * np.abs(W[e]).sum()
                                          + np.abs(t).max())
        assert naive.lasso_kkt_violation(D, t, W[e], lam4) <= 1e-9 * scale
        # the Q/q form of the kernel is the explicit design's objective
        q = lam1 * b[e] + lam5 * Wbar[group[e]]
        w = W[e]
        np.testing.assert_allclose(w @ Q @ w - 2 * q @ w + t @ t, np.sum((D @ w - t) ** 2),
                                   rtol=1e-9, atol=1e-9)
        if strictly_convex:
            ref = naive.weight_lasso_sklearn(A[e], C, R, Wbar[group[e]], lam1, lam4, lam5)
            np.testing.assert_allclose(W[e], ref, rtol=1e-6, atol=1e-7)


def test_weight_lasso_does_not_stop_when_a_sweep_zeroes_everything():
    """Regression (kernels/weights.py, same stopping rule as the A-step): from
    the warm start (0, 6), the first sweep zeroes w1 (w2 explains q1) then
    w2, yet w = 0 is not optimal (|2 q1| = 6 > lam4 = 4); the minimiser of
    ``w'Qw - 2q'w + 4|w|_1`` with Q = [[1, .5], [.5, 1]], q = (3, 1.5) is (1, 0).
    """
    G = np.array([[1.0, 0.5], [0.5, 1.0]])  # e.g. c1 = c2, r1 . r2 = 0.5
    b = np.array([[3.0, 1.5]])
    W, n_bad = K.weight_lasso(b, np.zeros((1, 2)), np.zeros(1, np.int64), G, 1.0, 4.0, 0.0,
                              np.array([[0.0, 6.0]]), 1000, 1e-12)
    assert n_bad == 0
    np.testing.assert_allclose(W, [[1.0, 0.0]], rtol=1e-12, atol=1e-15)


def test_weight_lasso_without_quadratic_is_zero():
    b = np.ones((3, 2))
    W, n_bad = K.weight_lasso(b, np.zeros((1, 2)), np.zeros(3, np.int64), np.zeros((2, 2)),
                              0.0, 0.1, 0.0, np.ones((3, 2)), 10, 1e-10)
    np.testing.assert_array_equal(W, 0.0)
    assert n_bad == 0


@settings(**SETTINGS)
@given(st.integers(0, 2**32 - 1), st.integers(0, 30), st.integers(1, 4), st.integers(1, 5))
def test_group_mean(seed, E, J, n_groups):
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(E, J))
    group = rng.integers(0, n_groups, size=E).astype(np.int64)  # some groups empty
    np.testing.assert_allclose(K.group_mean(W, group, n_groups),
                               naive.group_mean(W, group, n_groups), rtol=1e-13, atol=1e-15)


@settings(**SETTINGS)
@given(st.integers(0, 2**32 - 1), st.integers(1, 30), st.integers(1, 4), st.integers(1, 5),
       st.integers(1, 6), st.integers(1, 8), st.sampled_from([0.0, 1e-6]))
def test_gain_profile_rounds(seed, E, J, n_groups, n_targets, rounds, tol):
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(E, J))
    W[rng.random(E) < 0.2] = 0.0          # pairs that predict nothing
    group = rng.integers(0, n_groups, size=E).astype(np.int64)  # some groups empty
    # every target present (the caller's contract), then shuffled
    tid = rng.permutation(np.arange(E) % min(n_targets, E)).astype(np.int64)
    gamma = rng.uniform(-0.5, 2.0, size=int(tid.max()) + 1)
    gamma[rng.random(gamma.size) < 0.2] = 0.0  # a zero gain empties a group's mass
    start = gamma.copy()
    Wbar, gam = K.gain_profile_rounds(W, group, n_groups, tid, gamma, rounds, tol)
    Wbar_ref, gam_ref = naive.gain_profile_rounds(W, group, n_groups, tid, gamma, rounds, tol)
    np.testing.assert_array_equal(gamma, start)  # the start is not modified
    np.testing.assert_allclose(Wbar, Wbar_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gam, gam_ref, rtol=1e-10, atol=1e-12)
