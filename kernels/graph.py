"""The smoothness graph: M nearest pairs in stacked-state space, symmetrised.

Each pair ``e = (n,t) <- (k,t-1)`` has the stacked state
``s_e = [x[n,t]; x[k,t-1]]``.  The graph links each pair to its ``M`` nearest
other pairs (exact, Euclidean, ties broken by the lower pair index) and is
then symmetrised: ``{e, e'}`` is an edge if either is among the other's
nearest.  Edge weights are ``exp(-sigma * ||s_e - s_e'||)``.
"""
import numpy as np
from numba import njit, prange

from ._config import JIT, PJIT

_BLOCK = 256


@njit(**JIT)
def stacked_states(X, tgt_of_pair, src):
    """``s_e = [x[tgt_e]; x[src_e]]``, float64 (n_pairs, 2d)."""
    E = src.shape[0]
    d = X.shape[1]
    S = np.empty((E, 2 * d))
    for e in range(E):
        for m in range(d):
            S[e, m] = X[tgt_of_pair[e], m]
            S[e, d + m] = X[src[e], m]
    return S


@njit(**PJIT)
def knn_stacked(S, M):
    """Exact M nearest other rows of ``S`` (brute force, early exit).

    Parameters
    ----------
    S : float64 (n_pairs, 2d)
        Stacked states.
    M : int
        Neighbours per pair; must be < n_pairs.

    Returns
    -------
    idx : int64 (n_pairs, M)
        Neighbours by increasing (squared distance, index).
    d2 : float64 (n_pairs, M)
        Their squared distances.
    """
    E, D = S.shape
    idx = np.full((E, M), -1, np.int64)
    d2 = np.full((E, M), np.inf)
    n_blocks = (E + _BLOCK - 1) // _BLOCK
    for blk in prange(n_blocks):
        q0 = blk * _BLOCK
        q1 = min(E, q0 + _BLOCK)
        for q in range(q0, q1):
            worst = np.inf
            filled = 0
            for c in range(E):
                if c == q:
                    continue
                acc = 0.0
                # partial sums only grow, so once a candidate is no better
                # than the current M-th it can be dropped early
                for k in range(D):
                    t = S[q, k] - S[c, k]
                    acc += t * t
                    if filled == M and acc >= worst:
                        break
                if filled == M and acc >= worst:
                    continue
                # insert keeping (distance, index) order; equal distances keep
                # the earlier (lower) index first because c ascends
                pos = filled if filled < M else M - 1
                while pos > 0 and d2[q, pos - 1] > acc:
                    if pos < M:
                        d2[q, pos] = d2[q, pos - 1]
                        idx[q, pos] = idx[q, pos - 1]
                    pos -= 1
                d2[q, pos] = acc
                idx[q, pos] = c
                if filled < M:
                    filled += 1
                worst = d2[q, M - 1] if filled == M else np.inf
    return idx, d2


@njit(**JIT)
def _row_dist(S, a, b):
    acc = 0.0
    for k in range(S.shape[1]):
        t = S[a, k] - S[b, k]
        acc += t * t
    return np.sqrt(acc)


@njit(**PJIT)
def symmetric_graph(S, knn_idx, sigma):
    """Symmetrise a kNN list into a weighted undirected CSR adjacency.

    Parameters
    ----------
    S : float64 (n_pairs, 2d)
    knn_idx : int64 (n_pairs, M)
    sigma : float

    Returns
    -------
    nbr_ptr : int64 (n_pairs + 1,)
    nbr_idx : int64 (2 * n_edges,)
        Neighbours of pair ``e`` are ``nbr_idx[nbr_ptr[e]:nbr_ptr[e+1]]``,
        ascending; every edge appears once from each end.
    nbr_w : float64 (2 * n_edges,)
        ``exp(-sigma * ||s_e - s_e'||)``, identical from both ends.
    """
    E, M = knn_idx.shape
    deg = np.zeros(E, np.int64)
    for e in range(E):
        for k in range(M):
            f = knn_idx[e, k]
            if f >= 0:
                deg[e] += 1
                deg[f] += 1
    ptr = np.zeros(E + 1, np.int64)
    for e in range(E):
        ptr[e + 1] = ptr[e] + deg[e]
    raw = np.empty(ptr[E], np.int64)
    fill = ptr[:-1].copy()
    for e in range(E):
        for k in range(M):
            f = knn_idx[e, k]
            if f >= 0:
                raw[fill[e]] = f
                fill[e] += 1
                raw[fill[f]] = e
                fill[f] += 1
    uniq = np.zeros(E, np.int64)
    for e in prange(E):
        a, b = ptr[e], ptr[e + 1]
        seg = np.sort(raw[a:b])
        n = 0
        for i in range(b - a):
            if i == 0 or seg[i] != seg[i - 1]:
                raw[a + n] = seg[i]
                n += 1
        uniq[e] = n
    nbr_ptr = np.zeros(E + 1, np.int64)
    for e in range(E):
        nbr_ptr[e + 1] = nbr_ptr[e] + uniq[e]
    nbr_idx = np.empty(nbr_ptr[E], np.int64)
    nbr_w = np.empty(nbr_ptr[E], np.float64)
    for e in prange(E):
        a = ptr[e]
        o = nbr_ptr[e]
        for i in range(uniq[e]):
            f = raw[a + i]
            nbr_idx[o + i] = f
            nbr_w[o + i] = np.exp(-sigma * _row_dist(S, e, f))
    return nbr_ptr, nbr_idx, nbr_w
