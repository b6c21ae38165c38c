"""Pairs of a recording, their smoothness graph, and the order the fit works in.

The first stage of the data path: an :class:`Observations` becomes the
radius pairs (MODEL.md, "Pairs") with their weights ``g_e`` and pooling
groups (:func:`build_pairs`), the M-nearest-pair graph in stacked-state
space (:func:`build_graph`), and a cache-friendly order of the targets
(:func:`locality_order`, :func:`reorder`).  The coarse groups of the
``"groups"`` and ``"classes"`` starts are pair groupings too and live here.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import kernels as K
from ..data import Observations

PAIR_WEIGHTS = {"none": 0, "gaussian": 1, "distance": 2}


@dataclass
class Pairs:
    """Pair structure of a recording, grouped by target (CSR).

    Attributes
    ----------
    tgt_obs : int64 (n_targets,)
        Observation of each target that has at least one pair.
    tgt_ptr : int64 (n_targets + 1,)
    src : int64 (n_pairs,)
        Source observation of each pair.
    tgt : int64 (n_pairs,)
        Target observation of each pair.
    dist : float64 (n_pairs,)
    gain : float64 (n_pairs,)
    is_self : bool (n_pairs,)
    group : int64 (n_pairs,)
    group_names : tuple of str
    """

    tgt_obs: np.ndarray
    tgt_ptr: np.ndarray
    src: np.ndarray
    tgt: np.ndarray
    dist: np.ndarray
    gain: np.ndarray
    is_self: np.ndarray
    group: np.ndarray
    group_names: tuple = ()

    @property
    def n_pairs(self) -> int:
        return self.src.shape[0]

    @property
    def n_groups(self) -> int:
        return len(self.group_names)

    @property
    def pair_target(self) -> np.ndarray:
        """int64 (n_pairs,): the target (index into ``tgt_obs``) of each pair."""
        return np.repeat(np.arange(self.tgt_ptr.shape[0] - 1), np.diff(self.tgt_ptr))


@dataclass
class Graph:
    """Symmetric smoothness graph over pairs (CSR, both directions)."""

    nbr_ptr: np.ndarray
    nbr_idx: np.ndarray
    nbr_w: np.ndarray

    @property
    def n_edges(self) -> int:
        return self.nbr_idx.shape[0] // 2


def find_pairs(obs: Observations, radius: float, include_self: bool = True):
    """Radius pairs of a recording (MODEL.md, "Pairs").

    Returns
    -------
    tgt_ptr : int64 (n_obs + 1,), src : int64 (n_pairs,), dist : float64 (n_pairs,),
    self_src : int64 (n_obs,)
    """
    n_cells = obs.cell_ids.shape[0]
    self_src = K.self_sources(obs.cell, obs.frame, obs.prev_frame, n_cells)
    if not obs.has_identity:
        self_src[:] = -1
    tgt_ptr, src, dist = K.radius_pairs(obs.positions, obs.frame_ptr, obs.prev_frame,
                                        self_src, float(radius), bool(include_self))
    return tgt_ptr, src, dist, self_src


POOLING_GROUPS = ("class", "class_session", "class_time")


def pair_groups(obs: Observations, tgt, src, is_self, pooling_groups="class",
                pooling_window=None):
    """Pooling group of every pair and the groups' names.

    The *interaction class* of a pair is (target population, source
    population), named ``"A<-B"``; the self pair is a class of its own per
    target population (``"self A"``; ``"self"`` with one population), because
    populations differ in their own dynamics (docs/model-choices.md).

    ``"class"``: one group per class, shared by all sessions.
    ``"class_session"``: class x session (``"A<-B/s1"``).
    ``"class_time"``: class x session x window of ``pooling_window`` time
    steps of the target's frame (``"A<-B@0"``, ``"A<-B/s1@0"`` with several
    sessions); windows of different sessions are never pooled, since their
    time axes need not be aligned.

    Returns
    -------
    group : int64 (n_pairs,)
    names : tuple of str, one per group (only groups that have pairs)
    """
    pops = obs.population_names
    P = len(pops)
    tp = obs.population[tgt]
    sp = obs.population[src]
    cls = np.where(is_self, P * P + tp, tp * P + sp).astype(np.int64)
    names = [f"{pops[a]}<-{pops[b]}" for a in range(P) for b in range(P)]
    names += ["self"] if P == 1 else [f"self {pops[a]}" for a in range(P)]
    n_cls = len(names)
    if pooling_groups == "class" or tgt.shape[0] == 0:
        used, group = np.unique(cls, return_inverse=True)
        return group.reshape(-1).astype(np.int64), tuple(names[u] for u in used)
    sessions = obs.session_names
    multi = len(sessions) > 1
    sess = obs.session[tgt].astype(np.int64)
    if pooling_groups == "class_session":
        key = sess * n_cls + cls
        used, group = np.unique(key, return_inverse=True)
        return group.reshape(-1).astype(np.int64), tuple(
            f"{names[u % n_cls]}/{sessions[u // n_cls]}" for u in used)
    w = int(pooling_window)
    window = obs.time_index[tgt].astype(np.int64) // w
    nw = int(window.max()) + 1
    key = (sess * n_cls + cls) * nw + window
    used, group = np.unique(key, return_inverse=True)
    gnames = []
    for u in used:
        sc, win = divmod(int(u), nw)
        s_, c_ = divmod(sc, n_cls)
        gnames.append(f"{names[c_]}{'/' + str(sessions[s_]) if multi else ''}@{win * w}")
    return group.reshape(-1).astype(np.int64), tuple(gnames)


def build_pairs(obs, radius, include_self=True, pair_weight="none", bandwidth=None,
                pooling_groups="class", pooling_window=None) -> Pairs:
    """All pairs, their weights ``g_e`` and pooling groups."""
    tgt_ptr_all, src, dist, self_src = find_pairs(obs, radius, include_self)
    counts = np.diff(tgt_ptr_all)
    has = counts > 0
    tgt_obs = np.flatnonzero(has).astype(np.int64)
    tgt_ptr = np.concatenate([[0], np.cumsum(counts[has])]).astype(np.int64)
    tgt = np.repeat(np.arange(obs.n_obs, dtype=np.int64), counts)
    is_self = src == self_src[tgt]
    h = float(bandwidth) if bandwidth is not None else float(radius)
    gain = K.pair_gains(dist, PAIR_WEIGHTS[pair_weight], h)
    group, gnames = pair_groups(obs, tgt, src, is_self, pooling_groups, pooling_window)
    return Pairs(tgt_obs, tgt_ptr, src, tgt, dist, gain, is_self, group, gnames)


def empty_graph(n_pairs) -> Graph:
    """A graph without edges: what the fit uses when lam2 = 0, where the
    smoothness term is zero whatever the graph (and the k-NN search over
    stacked states is the costliest set-up step at scale)."""
    return Graph(np.zeros(int(n_pairs) + 1, np.int64), np.zeros(0, np.int64), np.zeros(0))


def build_graph(X, pairs: Pairs, n_neighbors: int, sigma: float) -> Graph:
    """Exact M-nearest-pair graph in stacked-state space, symmetrised."""
    S = K.stacked_states(X, pairs.tgt, pairs.src)
    M = min(int(n_neighbors), pairs.n_pairs - 1)
    if M < 1:
        return empty_graph(pairs.n_pairs)
    idx, _ = K.knn_stacked(S, M)
    return Graph(*K.symmetric_graph(S, idx, float(sigma)))


_LEAF_TARGETS = 32


def locality_order(X, pairs: Pairs, leaf=_LEAF_TARGETS):
    """An order of the targets in which graph neighbours lie close in memory.

    The smoothness graph links pairs with close stacked states ``[x_tgt;
    x_src]``; in observation order (frame-major) a pair's neighbours lie
    scattered over the whole tensor ``A``, and the A-step and the objective
    wait on their reads.  Targets are sorted as the leaves of a kd-tree over
    ``[x_tgt; mean of x_src over the target's pairs]``: the widest coordinate
    is split at its median until at most ``leaf`` targets remain.  At 1M
    pairs (d = 19, one thread) this made the A-step 1.25x, the objective
    1.38x and an iteration 1.18x faster (``benchmarks/pair_order.py``).

    Parameters
    ----------
    X : float64 (n_obs, d)
    pairs : Pairs
    leaf : int

    Returns
    -------
    order : int64 (n_targets,)
        ``order[new] = old`` target index (into ``pairs.tgt_obs``).
    """
    T = pairs.tgt_obs.shape[0]
    counts = np.diff(pairs.tgt_ptr)
    tid = np.repeat(np.arange(T), counts)
    d = X.shape[1]
    mean_src = np.zeros((T, d))
    for m in range(d):
        mean_src[:, m] = np.bincount(tid, weights=X[pairs.src, m], minlength=T)
    mean_src /= np.maximum(counts, 1)[:, None]
    Y = np.hstack([X[pairs.tgt_obs], mean_src])
    leaves = []
    stack = [np.arange(T, dtype=np.int64)]
    while stack:
        ix = stack.pop()
        if ix.size <= leaf:
            leaves.append(ix)
            continue
        Z = Y[ix]
        k = int(np.argmax(Z.max(axis=0) - Z.min(axis=0)))
        srt = ix[np.argsort(Z[:, k], kind="stable")]
        h = srt.size // 2
        stack.append(srt[h:])  # popped last: the lower half comes first
        stack.append(srt[:h])
    return np.concatenate(leaves) if leaves else np.zeros(0, np.int64)


def reorder(pairs: Pairs, graph: Graph, order):
    """Pairs and graph with the targets taken in ``order``.

    A target's pairs stay contiguous and in their order; the graph is
    relabelled, each pair's neighbours ascending as built.

    Parameters
    ----------
    pairs : Pairs
    graph : Graph
    order : int64 (n_targets,)
        ``order[new] = old`` target index (:func:`locality_order`).

    Returns
    -------
    pairs : Pairs
    graph : Graph
    perm : int64 (n_pairs,)
        ``perm[new] = old`` pair index: a pair-sized array ``V`` of the
        input order becomes ``V[perm]``, and one of the new order goes back
        with ``V_new[inverse_permutation(perm)]``.
    """
    counts = np.diff(pairs.tgt_ptr)[order]
    tgt_ptr = np.zeros(order.shape[0] + 1, np.int64)
    np.cumsum(counts, out=tgt_ptr[1:])
    perm = np.repeat(pairs.tgt_ptr[:-1][order] - tgt_ptr[:-1], counts) + np.arange(
        tgt_ptr[-1], dtype=np.int64)
    new_pairs = Pairs(pairs.tgt_obs[order], tgt_ptr, pairs.src[perm], pairs.tgt[perm],
                      pairs.dist[perm], pairs.gain[perm], pairs.is_self[perm],
                      pairs.group[perm], pairs.group_names)
    deg = np.diff(graph.nbr_ptr)[perm]
    nbr_ptr = np.zeros(perm.shape[0] + 1, np.int64)
    np.cumsum(deg, out=nbr_ptr[1:])
    take = np.repeat(graph.nbr_ptr[:-1][perm] - nbr_ptr[:-1], deg) + np.arange(
        nbr_ptr[-1], dtype=np.int64)
    idx = inverse_permutation(perm)[graph.nbr_idx[take]]
    srt = np.lexsort((idx, np.repeat(np.arange(perm.shape[0]), deg)))
    return new_pairs, Graph(nbr_ptr, idx[srt], graph.nbr_w[take][srt]), perm


def within_classes(graph: Graph, pair_class) -> Graph:
    """``graph`` without the edges between pairs of different classes.

    With population feature spaces every ``A_e`` is zero outside its
    class's block; smoothing toward a pair of another class would pull
    entries outside the block away from zero (kernels/spaces.py).
    """
    if graph.nbr_idx.shape[0] == 0:
        return graph
    row = np.repeat(np.arange(graph.nbr_ptr.shape[0] - 1), np.diff(graph.nbr_ptr))
    keep = pair_class[row] == pair_class[graph.nbr_idx]
    nbr_ptr = np.zeros_like(graph.nbr_ptr)
    np.cumsum(np.bincount(row[keep], minlength=graph.nbr_ptr.shape[0] - 1), out=nbr_ptr[1:])
    return Graph(nbr_ptr, np.ascontiguousarray(graph.nbr_idx[keep]),
                 np.ascontiguousarray(graph.nbr_w[keep]))


def inverse_permutation(perm):
    """``inv`` with ``inv[perm[i]] = i``."""
    inv = np.empty_like(perm)
    inv[perm] = np.arange(perm.shape[0], dtype=perm.dtype)
    return inv


def init_groups(obs: Observations, pairs: Pairs, min_rows_per_unknown=10, max_windows=10):
    """Coarse groups of the ``"groups"`` start: interaction class x time window.

    As many equal windows (at most ``max_windows``) as leave every unknown of
    the per-group least squares ``min_rows_per_unknown`` equations on average.

    Returns
    -------
    group : int64 (n_pairs,), n_groups : int
    """
    d = obs.features.shape[1]
    _, cls_names = pair_groups(obs, pairs.tgt, pairs.src, pairs.is_self, "class")
    n_frames = int(obs.time_index.max()) + 1 if obs.n_obs else 1
    rows = pairs.tgt_obs.shape[0] * d
    unknowns = len(cls_names) * d * d
    n_w = int(np.clip(rows // max(min_rows_per_unknown * unknowns, 1), 1,
                      min(max_windows, n_frames)))
    window = -(-n_frames // n_w)
    group, names = pair_groups(obs, pairs.tgt, pairs.src, pairs.is_self, "class_time",
                               window)
    return group, len(names)


def init_classes(obs: Observations, pairs: Pairs):
    """Data of the class-structured start (:func:`licchie.fit.classes.class_start`).

    Returns
    -------
    pair_class : int64 (n_pairs,), n_classes : int, target_frame : int64 (n_targets,)
    """
    cls, names = pair_groups(obs, pairs.tgt, pairs.src, pairs.is_self, "class")
    return cls, len(names), obs.time_index[pairs.tgt_obs].astype(np.int64)
