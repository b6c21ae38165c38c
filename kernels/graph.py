"""The smoothness graph: stacked states and the symmetrised kNN graph.

Each pair ``e = (n,t) <- (k,t-1)`` has the stacked state
``s_e = [x[n,t]; x[k,t-1]]``.  The graph links each pair to its ``M`` nearest
other pairs (exact, Euclidean, ties broken by the lower pair index; found by
:func:`.knn.knn_stacked`) and is then symmetrised: ``{e, e'}`` is an edge if either is among the other's
nearest.  Edge weights are ``exp(-sigma * ||s_e - s_e'||)``.
"""
import numpy as np
from numba import njit

from . import _parallel
from ._cluster import _sq_dist_rows
from ._config import JIT

# pairs per parallel task of symmetric_graph
_PAIRS_PER_TASK = 1024


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


@njit(**JIT)
def _row_dist(S, a, b):
    return np.sqrt(_sq_dist_rows(S, a, S, b))


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
    E = knn_idx.shape[0]
    ptr, raw = _graph_lists(knn_idx)
    n_tasks = (E + _PAIRS_PER_TASK - 1) // _PAIRS_PER_TASK
    uniq = np.zeros(E, np.int64)
    _parallel.run(_dedup_tasks, n_tasks, ptr, raw, uniq)
    nbr_ptr = np.zeros(E + 1, np.int64)
    np.cumsum(uniq, out=nbr_ptr[1:])
    nbr_idx = np.empty(nbr_ptr[E], np.int64)
    nbr_w = np.empty(nbr_ptr[E], np.float64)
    _parallel.run(_edge_weight_tasks, n_tasks, S, ptr, raw, uniq, nbr_ptr, float(sigma),
                  nbr_idx, nbr_w)
    return nbr_ptr, nbr_idx, nbr_w


@njit(**JIT)
def _graph_lists(knn_idx):
    """Both ends' lists of every kNN link, with repeats: pair ``e``'s are
    ``raw[ptr[e]:ptr[e+1]]``."""
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
    return ptr, raw


@njit(**JIT)
def _dedup_tasks(t0, t1, ptr, raw, uniq):
    """Sort and deduplicate the lists of pairs in tasks ``t0:t1`` in place;
    ``uniq[e]`` is the number left."""
    E = uniq.shape[0]
    for e in range(t0 * _PAIRS_PER_TASK, min(E, t1 * _PAIRS_PER_TASK)):
        a, b = ptr[e], ptr[e + 1]
        seg = np.sort(raw[a:b])
        n = 0
        for i in range(b - a):
            if i == 0 or seg[i] != seg[i - 1]:
                raw[a + n] = seg[i]
                n += 1
        uniq[e] = n


@njit(**JIT)
def _edge_weight_tasks(t0, t1, S, ptr, raw, uniq, nbr_ptr, sigma, nbr_idx, nbr_w):
    """The neighbours and edge weights of the pairs in tasks ``t0:t1``."""
    E = uniq.shape[0]
    for e in range(t0 * _PAIRS_PER_TASK, min(E, t1 * _PAIRS_PER_TASK)):
        a = ptr[e]
        o = nbr_ptr[e]
        for i in range(uniq[e]):
            f = raw[a + i]
            nbr_idx[o + i] = f
            nbr_w[o + i] = np.exp(-sigma * _row_dist(S, e, f))
