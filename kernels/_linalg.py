"""Small dense linear algebra and a binary heap shared by the kernels.

* :func:`cholesky` / :func:`cholesky_solve`: the lower Cholesky factor of a
  small symmetric positive definite block and the solve with it (the weight
  step's LASSO systems, ``J x J``; the reduced objective's per-target
  systems, ``d x d``).  Written out because they run inside ``nogil``
  kernels on blocks of a few rows, where calling LAPACK costs more than the
  arithmetic.  The operation order is fixed (sums in increasing index order),
  so every caller gets the same bits as before these were shared.
* :func:`sift_down` / :func:`heapsort`: a min-heap on values with an
  optional payload moved alongside (the kNN search's candidate queue), and
  an in-place ascending sort built on it (the A-step's breakpoints; a few
  lines to compile, unlike ``ndarray.sort``).
"""
import numpy as np
from numba import njit

from ._config import JIT


@njit(**JIT)
def cholesky(M, k, L, pivot_rel):
    """Lower Cholesky factor of ``M[:k, :k]`` into ``L[:k, :k]``.

    Row by row, two rows at a time: entry ``(a + 1, b)`` with ``b < a``
    needs rows ``b`` and ``a + 1`` only, so its sum runs beside that of
    ``(a, b)`` as an independent chain (1.5x at ``k = 24``, the pooled
    search's profile systems).  Every entry's sum still runs over ``c`` in
    increasing order, so the factor is bit for bit the one-row-at-a-time
    factor (``tests/naive.py``).

    Parameters
    ----------
    M : float64 (>= k, >= k)
        Only the lower triangle is read.
    k : int
    L : float64 (>= k, >= k)
        Output; may be ``M`` itself (in place: entry ``(a, b)`` of ``M`` is
        read before the same entry of ``L`` is written).
    pivot_rel : float
        A pivot (diagonal entry before its square root) not greater than
        ``pivot_rel`` times its diagonal entry of ``M`` rejects the factor.

    Returns
    -------
    bool
        False if a pivot was rejected (``L`` is then partly written).
    """
    for a in range(0, k, 2):
        a1 = a + 1
        two = a1 < k
        for b in range(a):
            s = M[a, b]
            if two:
                t = M[a1, b]
                for c in range(b):
                    lb = L[b, c]
                    s -= L[a, c] * lb
                    t -= L[a1, c] * lb
                L[a1, b] = t / L[b, b]
            else:
                for c in range(b):
                    s -= L[a, c] * L[b, c]
            L[a, b] = s / L[b, b]
        if not _diagonal(M, L, a, pivot_rel):
            return False
        if two:
            s = M[a1, a]
            for c in range(a):
                s -= L[a1, c] * L[a, c]
            L[a1, a] = s / L[a, a]
            if not _diagonal(M, L, a1, pivot_rel):
                return False
    return True


@njit(**JIT)
def _diagonal(M, L, a, pivot_rel):
    """``L[a, a]`` from row ``a``'s entries left of it (see :func:`cholesky`);
    False if its pivot is rejected."""
    s = M[a, a]
    for c in range(a):
        s -= L[a, c] * L[a, c]
    if not (s > pivot_rel * M[a, a]):
        return False
    L[a, a] = np.sqrt(s)
    return True


@njit(**JIT)
def cholesky_solve(L, k, x):
    """``x[:k] <- (L L^T)^-1 x[:k]`` with ``L`` the lower triangle of ``L[:k, :k]``.

    Parameters
    ----------
    L : float64 (>= k, >= k)
    k : int
    x : float64 (>= k,)
        Right-hand side on entry, solution on exit.
    """
    for a in range(k):
        s = x[a]
        for c in range(a):
            s -= L[a, c] * x[c]
        x[a] = s / L[a, a]
    for a in range(k - 1, -1, -1):
        s = x[a]
        for c in range(a + 1, k):
            s -= L[c, a] * x[c]
        x[a] = s / L[a, a]


@njit(**JIT)
def cholesky_solve_columns(L, k, X, n):
    """``X[:k, :n] <- (L L^T)^-1 X[:k, :n]``: :func:`cholesky_solve` of every column.

    Each column sees the operations of :func:`cholesky_solve` in the same
    order, so the result is the same bit for bit; the loops run along the
    rows of ``X``, which vectorises across the columns.

    Parameters
    ----------
    L : float64 (>= k, >= k)
        Lower triangle of ``L[:k, :k]``.
    k, n : int
    X : float64 (>= k, >= n), C-contiguous rows
        Right-hand sides in the columns on entry, solutions on exit.
    """
    s = np.empty(n)
    _substitute_columns(L, k, X, n, s, False)
    _substitute_columns(L, k, X, n, s, True)


@njit(**JIT)
def _substitute_columns(L, k, X, n, s, backward):
    """One triangular half of :func:`cholesky_solve_columns`: ``L`` (forward)
    or ``L^T`` (backward), in :func:`cholesky_solve`'s order of operations."""
    for i in range(k):
        a = k - 1 - i if backward else i
        for c in range(n):
            s[c] = X[a, c]
        lo, hi = (a + 1, k) if backward else (0, a)
        for b in range(lo, hi):
            lab = L[b, a] if backward else L[a, b]
            for c in range(n):
                s[c] -= lab * X[b, c]
        laa = L[a, a]
        for c in range(n):
            X[a, c] = s[c] / laa


@njit(**JIT)
def sift_down(v, p, x, n):
    """Restore the min-heap order of ``v[:n]`` below position ``x``.

    Parameters
    ----------
    v : (>= n,) array
        Heap keys.
    p : (>= n,) array or None
        Payload swapped along with ``v``; ``None`` compiles a version
        without it.
    x : int
    n : int
    """
    while True:
        c = 2 * x + 1
        if c >= n:
            return
        if c + 1 < n and v[c + 1] < v[c]:
            c += 1
        if v[x] <= v[c]:
            return
        v[x], v[c] = v[c], v[x]
        if p is not None:
            p[x], p[c] = p[c], p[x]
        x = c


@njit(**JIT)
def heapsort(a, n):
    """Sort ``a[:n]`` ascending in place; ``a[n:]`` is left alone.

    Min-heap extraction leaves ``a[:n]`` descending, so it is reversed at
    the end (equal keys are equal values, so no order among them matters).
    """
    for start in range(n // 2 - 1, -1, -1):
        sift_down(a, None, start, n)
    for end in range(n - 1, 0, -1):
        a[0], a[end] = a[end], a[0]
        sift_down(a, None, 0, end)
    i = 0
    j = n - 1
    while i < j:
        a[i], a[j] = a[j], a[i]
        i += 1
        j -= 1
