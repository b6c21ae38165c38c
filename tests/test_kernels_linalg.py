"""Numba kernels of the shared linear-algebra helpers: heapsort, sift-down, Cholesky agree with their plain-NumPy references in ``naive.py``.

Split from the former ``test_kernels.py``; strategies shared between families
are in ``kernel_cases.py``.
"""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from kernel_cases import SETTINGS

import naive


@settings(**SETTINGS)
@given(arrays(np.float64, st.integers(0, 40), elements=st.floats(-5, 5, width=64)),
       st.integers(0, 40))
def test_a_step_heapsort_sorts_the_prefix_only(a, n):
    from licchie.kernels._linalg import heapsort
    n = min(n, a.size)
    got = a.copy()
    heapsort(got, n)
    np.testing.assert_array_equal(got[:n], np.sort(a[:n]))
    np.testing.assert_array_equal(got[n:], a[n:])


@settings(**SETTINGS)
@given(arrays(np.float32, st.integers(0, 40), elements=st.floats(-5, 5, width=32)))
def test_sift_down_pops_in_order_with_payload(v):
    from licchie.kernels._linalg import sift_down
    v = v.copy()
    p = np.arange(v.size)
    orig = v.copy()
    n = v.size
    for x in range(n // 2 - 1, -1, -1):
        sift_down(v, p, x, n)
    popped = []
    while n > 0:
        assert orig[p[0]] == v[0]  # the payload travels with its key
        popped.append(v[0])
        n -= 1
        v[0], p[0] = v[n], p[n]
        sift_down(v, p, 0, n)
    np.testing.assert_array_equal(popped, np.sort(orig))


def test_cholesky_matches_numpy_in_place_or_not():
    from licchie.kernels._linalg import cholesky, cholesky_solve
    rng = np.random.default_rng(5)
    for k in range(1, 7):
        B = rng.normal(size=(k, k + 2))
        M = B @ B.T + 0.1 * np.eye(k)
        L = np.zeros((k + 1, k + 1))
        assert cholesky(M, k, L, 1e-8)
        np.testing.assert_allclose(np.tril(L[:k, :k]), np.linalg.cholesky(M), rtol=1e-12,
                                   atol=1e-12)
        Mi = M.copy()
        assert cholesky(Mi, k, Mi, 0.0)
        np.testing.assert_array_equal(np.tril(Mi), np.tril(L[:k, :k]))
        x = rng.normal(size=k)
        got = x.copy()
        cholesky_solve(L, k, got)
        np.testing.assert_allclose(got, np.linalg.solve(M, x), rtol=1e-10)
    # a singular block is rejected by a relative pivot, and so is a negative pivot
    S = np.ones((3, 3))
    assert not cholesky(S, 3, np.zeros((3, 3)), 1e-8)
    assert not cholesky(-np.eye(2), 2, np.zeros((2, 2)), 0.0)


@settings(**SETTINGS)
@given(st.integers(1, 30), st.integers(0, 2**32 - 1), st.booleans(), st.booleans())
def test_cholesky_is_the_row_by_row_factor_bit_for_bit(k, seed, in_place, singular):
    """Two rows at a time, every entry summed in the row-by-row order: the
    same bits as the plain one-row loop, odd and even sizes, in place or
    not; a rejected pivot is rejected by both."""
    from licchie.kernels._linalg import cholesky
    rng = np.random.default_rng(seed)
    B = rng.normal(size=(k, k + 1 if not singular else max(1, k // 2)))
    M = B @ B.T + (0.0 if singular else 0.1) * np.eye(k)
    ref = naive.cholesky_rows(M, k, 1e-8)
    L = M.copy() if in_place else np.full((k, k), np.nan)
    ok = cholesky(L if in_place else M, k, L, 1e-8)
    assert ok == (ref is not None)
    if ok:
        np.testing.assert_array_equal(np.tril(L), ref)


@settings(**SETTINGS)
@given(st.integers(1, 20), st.integers(0, 40), st.integers(0, 2**32 - 1))
def test_cholesky_solve_columns_is_the_solve_of_each_column_bit_for_bit(k, n, seed):
    """Many right-hand sides along the rows: each column the same bits as
    :func:`cholesky_solve` of that column alone, and the solution of the
    system; columns beyond ``n`` and rows beyond ``k`` untouched."""
    from licchie.kernels._linalg import cholesky, cholesky_solve, cholesky_solve_columns
    rng = np.random.default_rng(seed)
    B = rng.normal(size=(k, k + 1))
    M = B @ B.T + 0.1 * np.eye(k)
    L = np.zeros((k, k))
    assert cholesky(M, k, L, 0.0)
    X = rng.normal(size=(k + 1, n + 2))
    got = X.copy()
    cholesky_solve_columns(L, k, got, n)
    for c in range(n):
        col = X[:k, c].copy()
        cholesky_solve(L, k, col)
        np.testing.assert_array_equal(got[:k, c], col)
    if n:
        np.testing.assert_allclose(got[:k, :n], np.linalg.solve(M, X[:k, :n]), rtol=1e-8,
                                   atol=1e-10)
    np.testing.assert_array_equal(got[:, n:], X[:, n:])
    np.testing.assert_array_equal(got[k:], X[k:])
