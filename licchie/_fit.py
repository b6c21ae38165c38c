"""The alternating minimisation of MODEL.md on plain arrays.

Nothing here sees xarray or validates user input: :mod:`licchie.model` does
that once, then hands over an :class:`Observations` and checked
hyper-parameters.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from functools import cached_property

import numba
import numpy as np
from scipy.optimize import linear_sum_assignment
from threadpoolctl import threadpool_limits

from . import kernels as K
from .kernels import reduced as KR
from .data import Observations

TERMS = ("fidelity", "low_rank", "smoothness", "l1_A", "l1_W", "pooling")
PAIR_WEIGHTS = {"none": 0, "gaussian": 1, "distance": 2}
# A pair with no low-rank term and no graph neighbours gets this ridge,
# relative to the mean squared feature value: small enough to leave the
# objective unchanged to ~1e-10, large enough to keep the solve finite.
RIDGE_REL = 1e-10


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


def pair_groups(obs: Observations, tgt, src, is_self, pooling_groups="class",
                pooling_window=None):
    """Pooling group of every pair and the groups' names.

    ``"class"``: (target population, source population), the self pair a
    class of its own.  ``"class_time"``: class x window of ``pooling_window``
    time steps of the target's frame.
    """
    pops = obs.population_names
    P = len(pops)
    tp = obs.population[tgt]
    sp = obs.population[src]
    cls = np.where(is_self, P * P, tp * P + sp).astype(np.int64)
    names = [f"{pops[a]}<-{pops[b]}" for a in range(P) for b in range(P)] + ["self"]
    if pooling_groups == "class":
        used, group = np.unique(cls, return_inverse=True)
        return group.astype(np.int64), tuple(names[u] for u in used)
    window = obs.time_index[tgt] // int(pooling_window)
    nw = int(window.max()) + 1 if window.size else 1
    key = cls * nw + window
    used, group = np.unique(key, return_inverse=True)
    gnames = tuple(f"{names[u // nw]}@{(u % nw) * int(pooling_window)}" for u in used)
    return group.astype(np.int64), gnames


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


def build_graph(X, pairs: Pairs, n_neighbors: int, sigma: float) -> Graph:
    """Exact M-nearest-pair graph in stacked-state space, symmetrised."""
    S = K.stacked_states(X, pairs.tgt, pairs.src)
    M = min(int(n_neighbors), pairs.n_pairs - 1)
    if M < 1:
        empty = np.zeros(0, np.int64)
        return Graph(np.zeros(pairs.n_pairs + 1, np.int64), empty, np.zeros(0))
    idx, _ = K.knn_stacked(S, M)
    return Graph(*K.symmetric_graph(S, idx, float(sigma)))


# LICCHIE.fit works on the pairs in :func:`locality_order` (see there); its
# results are mapped back to the pairs' order, so this changes only speed
REORDER_PAIRS = True
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


def inverse_permutation(perm):
    """``inv`` with ``inv[perm[i]] = i``."""
    inv = np.empty_like(perm)
    inv[perm] = np.arange(perm.shape[0], dtype=perm.dtype)
    return inv


@dataclass
class Problem:
    """Everything a fit needs that does not change during it."""

    X: np.ndarray
    pairs: Pairs
    graph: Graph
    lambdas: tuple  # (lam1, lam2, lam3, lam4, lam5)
    ridge: float = 1e-12
    # dtype of the pair-sized tensors (A_e and B_e); everything else, and
    # every sum over pairs, is float64
    dtype: type = np.float64
    # the targets' positions in the user's order (``order[new] = old``,
    # :func:`reorder`), or None: bootstrap resamples are drawn in that order,
    # so a fit does not depend on the order it works in
    target_order: np.ndarray = None
    # pooling toward gain[t(e)] * Wbar[g(e)], one gain per target (see
    # :func:`pooled_profiles`) instead of toward Wbar[g(e)] (MODEL.md)
    target_gain: bool = False

    @cached_property
    def pair_target(self):
        """int64 (n_pairs,): the target (index into ``pairs.tgt_obs``) of each pair."""
        p = self.pairs
        return np.repeat(np.arange(p.tgt_ptr.shape[0] - 1), np.diff(p.tgt_ptr))

    @cached_property
    def gain_components(self):
        """:func:`gain_components` of the pooling groups (data only)."""
        return gain_components(self.pairs.group, self.pair_target, self.pairs.n_groups)

    @cached_property
    def _pair_index(self):
        return np.arange(self.pairs.n_pairs, dtype=np.int64)

    def pooling_prior(self, Wbar, gamma):
        """``(prior, index)`` with ``prior[index[e]]`` the pooling target of pair e."""
        if gamma is None:
            return Wbar, self.pairs.group
        return (np.ascontiguousarray(gamma[self.pair_target, None] * Wbar[self.pairs.group]),
                self._pair_index)

    def profiles(self, W, gamma=None):
        """The exact pooling block update: ``(Wbar, gamma)`` for weights W."""
        if not self.target_gain:
            return K.group_mean(W, self.pairs.group, self.pairs.n_groups), None
        return pooled_profiles(W, self.pairs.group, self.pairs.n_groups, self.pair_target,
                               gamma, comps=self.gain_components)

    def objective(self, A, W, C, R, Wbar, gamma=None):
        prior, index = self.pooling_prior(Wbar, gamma)
        t = K.objective_terms(A, self.X, self.pairs.tgt_obs, self.pairs.tgt_ptr,
                              self.pairs.src, self.pairs.gain, self.graph.nbr_ptr,
                              self.graph.nbr_idx, self.graph.nbr_w, W, C, R, prior,
                              index)
        lam1, lam2, lam3, lam4, lam5 = self.lambdas
        weighted = np.array([t[0], lam1 * t[1], lam2 * t[2], lam3 * t[3], lam4 * t[4],
                             lam5 * t[5]])
        return weighted

    def a_step(self, A_old, W, C, R, lam1=None, cd_max_iter=1000, cd_tol=1e-10, out=None):
        """The A-step from ``A_old`` into ``out`` (a new array if None; never
        ``A_old`` itself: the step is a Jacobi sweep)."""
        lam1_, lam2, lam3, _, _ = self.lambdas
        lam1 = lam1_ if lam1 is None else lam1
        A_new = np.empty_like(A_old) if out is None else out
        n_bad = K.a_step(A_old, self.X, self.pairs.tgt_obs, self.pairs.tgt_ptr,
                         self.pairs.src, self.pairs.gain, self.graph.nbr_ptr,
                         self.graph.nbr_idx, self.graph.nbr_w, W, C, R, lam1, lam2, lam3,
                         self.ridge, cd_max_iter, cd_tol, A_new)
        return A_new, int(n_bad)

    def component_step(self, A, W, C, R):
        """Exact unit-sphere updates of every c_j, then every r_j."""
        G = W.T @ W
        # sum_e W[e,j] A_e r_j = S_j r_j and sum_e W[e,j] A_e^T c_j = S_j^T c_j
        # with S_j = sum_e W[e,j] A_e, which depends on neither C nor R: one
        # pass over A serves both half-steps
        S = K.weighted_sum(A, W)
        C = K.unit_sphere_sweep(K.times_columns(S, R), G, R.T @ R, C)
        R = K.unit_sphere_sweep(K.times_columns(S, C, transpose=True), G, C.T @ C, R)
        return C, R

    def weight_step(self, A, W, C, R, Wbar, gamma=None, max_iter=1000, tol=1e-10):
        lam1, _, _, lam4, lam5 = self.lambdas
        b = K.bilinear_cr(A, C, R)
        G = (C.T @ C) * (R.T @ R)
        prior, index = self.pooling_prior(Wbar, gamma)
        W_new, n_bad = K.weight_lasso(b, prior, index, G, lam1, lam4, lam5, W,
                                      max_iter, tol)
        Wbar_new, gamma_new = self.profiles(W_new, gamma)
        return W_new, Wbar_new, gamma_new, int(n_bad)


def pooled_profiles(W, group, n_groups, tid, gamma=None, rounds=20, comps=None,
                    tol=1e-9):
    """Group profiles and target gains that minimise the gain pooling term.

    ``sum_e ||W[e] - gamma[t(e)] Wbar[g(e)]||^2`` over ``Wbar`` and ``gamma``
    by alternating exact updates from ``gamma`` (all ones if None; at most
    ``rounds``, fewer once no gain moves by more than ``tol`` relative), so
    the term never rises above its value at the given gains.  The product
    ``gamma Wbar`` has one free scale per :func:`gain_components` component
    (``comps``, computed if None): the gains are normalised to mean 1 in
    each, so that ``Wbar`` is the profile of a typical target.

    Parameters
    ----------
    W : float64 (n_pairs, J)
    group : int64 (n_pairs,)
    n_groups : int
    tid : int64 (n_pairs,)
        Target of each pair (0 .. n_targets - 1, every target present).

    Returns
    -------
    Wbar : float64 (n_groups, J), gamma : float64 (n_targets,)
    """
    nt = int(tid.max()) + 1 if tid.size else 0
    J = W.shape[1]
    gamma = np.ones(nt) if gamma is None else np.array(gamma, dtype=np.float64)
    Wbar = np.zeros((n_groups, J))
    for _ in range(rounds):
        ge = gamma[tid]
        den = np.bincount(group, weights=ge * ge, minlength=n_groups)
        num = np.stack([np.bincount(group, weights=ge * W[:, j], minlength=n_groups)
                        for j in range(J)], axis=1)
        ok = den > 0
        Wbar = np.where(ok[:, None], num / np.where(ok, den, 1.0)[:, None], 0.0)
        P = Wbar[group]
        den_t = np.bincount(tid, weights=np.einsum("ej,ej->e", P, P), minlength=nt)
        num_t = np.bincount(tid, weights=np.einsum("ej,ej->e", P, W), minlength=nt)
        okt = den_t > 0
        new = np.where(okt, num_t / np.where(okt, den_t, 1.0), gamma)
        # warm-started from the last iteration's gains, a few rounds suffice
        done = np.max(np.abs(new - gamma), initial=0.0) <= tol * max(
            1.0, float(np.max(np.abs(new), initial=0.0)))
        gamma = new
        if done:
            break
    if comps is None:
        comps = gain_components(group, tid, n_groups)
    gamma, Wbar = normalise_gains(gamma, Wbar, comps)
    return np.ascontiguousarray(Wbar), gamma


def initial_interactions(problem: Problem):
    """One A-step with lam1 = 0 from A = 0 (shared by every start)."""
    E = problem.pairs.n_pairs
    d = problem.X.shape[1]
    A0 = np.zeros((E, d, d), dtype=problem.dtype)
    J0 = 1
    zW = np.zeros((E, J0))
    zC = np.zeros((d, J0))
    A, _ = problem.a_step(A0, zW, zC, zC, lam1=0.0)
    return A


def parafac_init(A, J, seed, n_iter_max=100, als="kernels"):
    """CP of the stacked tensor (tensorly's random init and CP-ALS), scale moved into W.

    The random factors are tensorly's ``random_cp`` with the start's seed, the
    start of its ``parafac(init="random")``.  The ALS iterations are tensorly's
    ``parafac`` (``tol=1e-8``, no normalisation, no line search), by default
    (``als="kernels"``) run through the package's contraction kernels
    (:func:`licchie.kernels.cp_als`, tested equal to tensorly's result), which
    never copy ``A``; ``als="tensorly"`` calls tensorly itself (the naive
    benchmark does).
    """
    import tensorly as tl
    from tensorly.decomposition import parafac
    from tensorly.random import random_cp

    rng = np.random.default_rng(seed)
    E, d, _ = A.shape
    # no temporary of A's size (np.abs(A) would be one)
    ok = A.size > 0 and np.isfinite(A).all() and (A.max() > 0 or A.min() < 0)
    if ok:
        state = int(rng.integers(2**31 - 1))
        try:
            if als == "tensorly":
                with tl.backend_context("numpy"):
                    cp = parafac(A, rank=J, init="random", n_iter_max=n_iter_max, tol=1e-8,
                                 random_state=state, normalize_factors=False)
                Wf, Cf, Rf = (np.asarray(f, dtype=np.float64) for f in cp.factors)
                Wf = Wf * np.asarray(cp.weights, dtype=np.float64)[None, :]
            else:
                # what parafac(init="random") starts from (its initialize_cp)
                _, (W0, C0, R0) = random_cp(A.shape, J, random_state=state,
                                            normalise_factors=False)
                Wf, Cf, Rf, _ = K.cp_als(A, W0, C0, R0, n_iter_max, 1e-8)
        except np.linalg.LinAlgError:
            # CP-ALS solves singular systems when the tensor's rank is below J
            # (e.g. one target, sparse first A-step): start from random factors
            ok = False
    if not ok:
        Wf = np.zeros((E, J))
        Cf = rng.normal(size=(d, J))
        Rf = rng.normal(size=(d, J))
    nc = np.linalg.norm(Cf, axis=0)
    nr = np.linalg.norm(Rf, axis=0)
    # a column CP left at zero gets a random direction and zero weight
    for j in range(J):
        if not (nc[j] > 0 and nr[j] > 0 and np.isfinite(nc[j] * nr[j])):
            Cf[:, j] = rng.normal(size=d)
            Rf[:, j] = rng.normal(size=d)
            Wf[:, j] = 0.0
            nc[j] = np.linalg.norm(Cf[:, j])
            nr[j] = np.linalg.norm(Rf[:, j])
    C = np.ascontiguousarray(Cf / nc)
    R = np.ascontiguousarray(Rf / nr)
    W = np.ascontiguousarray(Wf * (nc * nr)[None, :])
    return W, C, R


def reduced_inputs(problem: Problem):
    """Source states, targets and per-target weights of the reduced objective.

    ``kappa_t = 1 / (1 + sum_{e in t} ||z_e||^2 / lam_e)`` with the A-step's
    diagonal ``lam_e = lam1 + lam2 * (weighted graph degree of e)``: the
    factor by which the exact A-step (``lam2 = lam3 = 0``) shrinks a target's
    squared residual (see :mod:`licchie.kernels.reduced`).
    """
    p = problem.pairs
    lam1, lam2 = problem.lambdas[:2]
    Z = np.ascontiguousarray(p.gain[:, None] * problem.X[p.src])
    Y = np.ascontiguousarray(problem.X[p.tgt_obs])
    deg = np.zeros(p.n_pairs)
    if problem.graph.nbr_idx.size:
        owner = np.repeat(np.arange(p.n_pairs), np.diff(problem.graph.nbr_ptr))
        deg = np.bincount(owner, weights=problem.graph.nbr_w, minlength=p.n_pairs)
    lam_e = np.maximum(lam1 + lam2 * deg, problem.ridge)
    share = np.add.reduceat(np.einsum("ed,ed->e", Z, Z) / lam_e, p.tgt_ptr[:-1])
    kappa = 1.0 / (1.0 + share)
    return Z, Y, kappa


def _unit_columns(W, Wbar, C, R, rng):
    """Unit columns with the scale moved into W and Wbar; a dead column restarts."""
    nc = np.linalg.norm(C, axis=0)
    nr = np.linalg.norm(R, axis=0)
    for j in range(C.shape[1]):
        if not (nc[j] > 0 and nr[j] > 0 and np.isfinite(nc[j] * nr[j])):
            C[:, j] = rng.normal(size=C.shape[0])
            R[:, j] = rng.normal(size=R.shape[0])
            W[:, j] = 0.0
            Wbar[:, j] = 0.0
            nc[j] = np.linalg.norm(C[:, j])
            nr[j] = np.linalg.norm(R[:, j])
    s = nc * nr
    return (np.ascontiguousarray(W * s), np.ascontiguousarray(Wbar * s),
            np.ascontiguousarray(C / nc), np.ascontiguousarray(R / nr))


def gain_components(group, tid, n_groups):
    """Connected components of groups and targets (linked by a pair).

    ``gamma_t Wbar[g]`` is unchanged when the gains of one component are
    multiplied by ``a`` and its profiles divided by ``a``: each component has
    its own free scale (with class x frame pooling, every frame).

    Returns
    -------
    group_label : int64 (n_groups,), target_label : int64 (n_targets,), n : int
    """
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    nt = int(tid.max()) + 1 if tid.size else 0
    n = n_groups + nt
    adj = sp.csr_matrix((np.ones(group.size), (group, n_groups + tid)), shape=(n, n))
    n_comp, label = connected_components(adj, directed=False)
    return label[:n_groups], label[n_groups:], n_comp


def normalise_gains(gamma, Wbar, comps):
    """Gains divided, profiles multiplied by the mean gain of their component
    (``Wbar`` may be None when only the gains are wanted)."""
    g_label, t_label, n = comps
    cnt = np.bincount(t_label, minlength=n)
    mean = np.bincount(t_label, weights=gamma, minlength=n) / np.maximum(cnt, 1)
    mean = np.where((mean != 0) & np.isfinite(mean), mean, 1.0)
    return gamma / mean[t_label], None if Wbar is None else Wbar * mean[g_label][:, None]


def _profile_blocks(group_label, J):
    """Independent blocks of the profiles' normal equations.

    Two groups are coupled only through a target with pairs in both, so the
    blocks are the groups of one :func:`gain_components` component
    (``group_label``); with class x time pooling the equations fall apart by
    frame.  Returns a list of ``(n_blocks, size)`` index arrays into the
    ``n_groups * J`` unknowns, one per block size.
    """
    cols = np.arange(J)
    blocks = [(np.flatnonzero(group_label == c)[:, None] * J + cols).ravel()
              for c in np.unique(group_label)]
    # blocks of one size stacked, for one batched solve each
    by_size = {}
    for b in blocks:
        by_size.setdefault(b.size, []).append(b)
    return [np.stack(v) for v in by_size.values()]


def reduced_init(problem: Problem, J, seed, max_sweeps=200, tol=1e-6, C0=None, R0=None,
                 gain_rounds=5, gain_tol=1e-4):
    """Start factors from the reduced objective (A eliminated), random start.

    Alternating exact least squares on ``F(W, C, R)`` of
    :mod:`licchie.kernels.reduced`: all weights at once (group profiles with
    the per-pair deviations eliminated), then ``C``, then ``R``, the scale of
    ``C`` and ``R`` moved into the weights after each.  The L1 weight ``lam4``
    is left to the main iterations.  Starting factors are random unit
    vectors drawn from ``seed``.

    Returns
    -------
    W, C, R, history
        ``history`` is the value of ``F`` after every sweep.
    """
    rng = np.random.default_rng(seed)
    p = problem.pairs
    d = problem.X.shape[1]
    G = max(p.n_groups, 1)
    lam4, lam5 = float(problem.lambdas[3]), float(problem.lambdas[4])
    Z, Y, kappa = reduced_inputs(problem)
    zscale = float(np.mean(np.einsum("ed,ed->e", Z, Z))) if Z.size else 1.0
    # per-pair deviations need a penalty to be unique: lam5; without pooling a
    # ridge of lam4's size stands in for the L1 term (or a tiny one)
    lam_dev = lam5 + max(lam4, 1e-8 * max(zscale, 1e-300))
    rho = lam_dev / kappa
    # lam4 as a ridge on the profiles too (lam4 per pair of the group): without
    # it, weights on motifs whose source effect the data barely excite grow
    # without bound in F, which ignores lam2 and lam4
    group_size = np.bincount(p.group, minlength=G).astype(np.float64)
    profile_ridge = np.repeat(np.maximum(lam4, 1e-8) * np.maximum(group_size, 1.0), J)
    C = rng.normal(size=(d, J)) if C0 is None else np.array(C0, dtype=np.float64)
    R = rng.normal(size=(d, J)) if R0 is None else np.array(R0, dtype=np.float64)
    W = np.zeros((p.n_pairs, J))
    Wbar = np.zeros((G, J))
    W, Wbar, C, R = _unit_columns(W, Wbar, C, R, rng)
    eye = np.eye(J)
    history = []

    tid = problem.pair_target
    gamma = np.ones(p.tgt_ptr.shape[0] - 1)
    comps = problem.gain_components
    blocks = _profile_blocks(comps[0], J)

    def profiles(U, C, gamma):
        gram, rhs = KR.pooled_normal_equations(
            U, C, Y, kappa, p.tgt_ptr, p.group, G, lam5, rho, gamma)
        gram[np.diag_indices_from(gram)] += profile_ridge
        out = np.empty(G * J)
        for idx in blocks:  # (n_blocks, size) of one size
            out[idx] = np.linalg.solve(gram[idx[:, :, None], idx[:, None, :]],
                                       rhs[idx][:, :, None])[:, :, 0]
        return out.reshape(G, J)

    def weights(C, R, gamma):
        U = np.ascontiguousarray(Z @ R)
        if lam5 > 0:
            Wb = profiles(U, C, gamma)
            if problem.target_gain:
                # alternate exact updates of the gains and the profiles
                for _ in range(gain_rounds):
                    g_new = KR.target_gains(U, C, Y, p.tgt_ptr, p.group, Wb, rho, gamma)
                    g_new, _ = normalise_gains(g_new, Wb, comps)
                    change = np.max(np.abs(g_new - gamma))
                    gamma = g_new
                    Wb = profiles(U, C, gamma)
                    if change <= gain_tol:
                        break
        else:
            Wb = np.zeros((G, J))
        W = KR.pooled_deviations(U, C, Y, p.tgt_ptr, p.group, Wb, rho, gamma)
        return W, Wb, gamma

    def value(V, W, Wbar, C, R, gamma):
        S = np.einsum("tjm,mj->tj", V, R)
        res = Y - S @ C.T
        dev = W - gamma[tid, None] * Wbar[p.group]
        return float(kappa @ np.einsum("td,td->t", res, res) + lam5 * np.sum(dev * dev))

    prev = np.inf
    for sweep in range(max_sweeps):
        W, Wbar, gamma = weights(C, R, gamma)
        V = KR.target_source_sums(W, Z, p.tgt_ptr)
        S = np.einsum("tjm,mj->tj", V, R)
        kS = S * kappa[:, None]
        gram = kS.T @ S
        C = np.linalg.solve(gram + 1e-12 * max(np.trace(gram) / J, 1e-300) * eye,
                            kS.T @ Y).T
        W, Wbar, C, R = _unit_columns(W, Wbar, C, R, rng)
        V = KR.target_source_sums(W, Z, p.tgt_ptr)
        Vf = V.reshape(V.shape[0], J * d) * np.sqrt(kappa)[:, None]
        gram = (Vf.T @ Vf) * np.kron(C.T @ C, np.ones((d, d)))
        rhs = np.einsum("t,tj,tjm->jm", kappa, Y @ C, V).reshape(J * d)
        ridge = 1e-6 * max(float(np.trace(gram)) / (J * d), 1e-300)
        R = np.linalg.solve(gram + ridge * np.eye(J * d), rhs).reshape(J, d).T.copy()
        W, Wbar, C, R = _unit_columns(W, Wbar, C, R, rng)
        V = KR.target_source_sums(W, Z, p.tgt_ptr)
        f = value(V, W, Wbar, C, R, gamma)
        history.append(f)
        if abs(prev - f) <= tol * max(abs(f), np.finfo(float).tiny):
            break
        prev = f
    W, Wbar, gamma = weights(C, R, gamma)
    return np.ascontiguousarray(W), C, R, history


def bootstrap_counts(problem: Problem, rng):
    """Multinomial resample counts of the targets, drawn in the user's order
    (so a start does not depend on the order the fit works in), returned in
    the problem's target order: float64 (n_targets,)."""
    nt = problem.pairs.tgt_ptr.shape[0] - 1
    draw = rng.multinomial(nt, np.full(nt, 1.0 / nt)).astype(np.float64)
    order = problem.target_order
    return draw if order is None else draw[order]


def init_groups(obs: Observations, pairs: Pairs, min_rows_per_unknown=10, max_windows=10):
    """Coarse groups for :func:`group_init`: interaction class x time window.

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


def group_matrices(Z, Y, kappa, tgt_ptr, group, n_groups, gain_rounds=0):
    """Least-squares interaction matrix of every group, weighted by ``kappa``.

    Solves ``min sum_t kappa_t ||y_t - sum_g M_g (sum_{e in t, g(e)=g} z_e)||^2``
    with a small ridge.  For pooled data ``M_g = C diag(mean profile of g)
    R^T``, so the stack is a CP tensor with the model's own factors.  With
    ``gain_rounds > 0`` every target also has a gain ``gamma_t`` on its
    prediction (pooling with target gains), fitted by that many alternations
    of the matrices and the gains (each an exact least-squares update).

    Parameters
    ----------
    Z : float64 (n_pairs, d)
    Y : float64 (n_targets, d)
    kappa : float64 (n_targets,)
    tgt_ptr : int64 (n_targets + 1,)
    group : int64 (n_pairs,)
    n_groups : int

    Returns
    -------
    T : float64 (n_groups, d, d)
    """
    import scipy.sparse as sp
    import scipy.sparse.linalg as spl

    d = Z.shape[1]
    nt = tgt_ptr.shape[0] - 1
    tid = np.repeat(np.arange(nt), np.diff(tgt_ptr))
    rows = np.repeat(tid, d)
    cols = (group[:, None] * d + np.arange(d)[None, :]).ravel()
    Phi = sp.csr_matrix((Z.ravel(), (rows, cols)), shape=(nt, n_groups * d))
    Phi.sum_duplicates()
    gamma = np.ones(nt)
    comps = gain_components(group, tid, n_groups) if gain_rounds else None
    for r in range(gain_rounds + 1):
        gPhi = sp.diags(gamma) @ Phi
        kPhi = sp.diags(kappa) @ gPhi
        gram = (gPhi.T @ kPhi).tocsc()
        # source states of a linear network fill few directions after the
        # first frame (span C); the ridge keeps the matrices at ~0 in the others
        ridge = 1e-3 * max(float(gram.diagonal().mean()), np.finfo(float).tiny)
        theta = np.asarray(spl.spsolve(gram + ridge * sp.eye(n_groups * d, format="csc"),
                                       np.asarray(kPhi.T @ Y)))
        if r < gain_rounds:
            pred = np.asarray(Phi @ theta)
            den = np.einsum("td,td->t", pred, pred)
            num = np.einsum("td,td->t", pred, Y)
            gamma = np.where(den > 0, num / np.where(den > 0, den, 1.0), gamma)
            gamma, _ = normalise_gains(gamma, None, comps)
    theta = theta.reshape(n_groups, d, d)
    return np.ascontiguousarray(theta.transpose(0, 2, 1))


def group_init(problem: Problem, group, n_groups, J, seed, bootstrap=False,
               max_sweeps=200, tol=1e-7):
    """Start factors from group interaction matrices, refined on the reduced objective.

    1. :func:`group_matrices` over the coarse groups (with ``bootstrap``, on a
       bootstrap resample of the targets drawn from ``seed``);
    2. their CP decomposition (tensorly PARAFAC, random init from ``seed``)
       gives ``C`` and ``R``;
    3. :func:`reduced_init` from those factors, on all targets.

    Returns
    -------
    W, C, R, history (the reduced objective after every sweep)
    """
    import tensorly as tl
    from tensorly.decomposition import parafac

    rng = np.random.default_rng(seed)
    Z, Y, kappa = reduced_inputs(problem)
    if bootstrap:
        kappa = kappa * bootstrap_counts(problem, rng)
    T = group_matrices(Z, Y, kappa, problem.pairs.tgt_ptr, group, n_groups,
                       gain_rounds=5 if problem.target_gain else 0)
    d = T.shape[1]
    C0 = R0 = None
    if np.isfinite(T).all() and np.abs(T).max() > 0:
        try:
            with tl.backend_context("numpy"):
                cp = parafac(tl.tensor(T), rank=J, init="random", n_iter_max=500,
                             tol=1e-10, random_state=int(rng.integers(2**31 - 1)),
                             linesearch=True)
            C0 = np.asarray(cp.factors[1], dtype=np.float64)
            R0 = np.asarray(cp.factors[2], dtype=np.float64)
        except np.linalg.LinAlgError:
            pass
    if C0 is None:
        C0 = rng.normal(size=(d, J))
        R0 = rng.normal(size=(d, J))
    return reduced_init(problem, J, int(rng.integers(2**31 - 1)), max_sweeps, tol, C0, R0)


def init_classes(obs: Observations, pairs: Pairs):
    """Data of the class-structured start: ``(pair class, n_classes, target frame)``."""
    cls, names = pair_groups(obs, pairs.tgt, pairs.src, pairs.is_self, "class")
    return cls, len(names), obs.time_index[pairs.tgt_obs].astype(np.int64)


def class_start(problem: Problem, init_group, J, seed, bootstrap=False):
    """Start factors from :mod:`licchie._classinit` (``init="classes"``).

    With ``bootstrap`` every target's weight is multiplied by a multinomial
    count drawn from ``seed`` (in the user's order), as :func:`group_init`.

    Returns
    -------
    W, C, R, info
    """
    from . import _classinit as CI

    rng = np.random.default_rng(seed)
    pair_class, n_classes, target_frame = init_group
    Z, Y, kappa = reduced_inputs(problem)
    weights = bootstrap_counts(problem, rng) if bootstrap else None
    cd = CI.class_data(Z, Y, kappa, problem.pair_target, target_frame, pair_class,
                       n_classes, weights)
    return CI.class_init(cd, J, int(rng.integers(2**31 - 1)), problem.target_gain,
                         float(problem.lambdas[3]))


@dataclass
class StartResult:
    seed: int
    W: np.ndarray
    C: np.ndarray
    R: np.ndarray
    Wbar: np.ndarray
    A: np.ndarray
    gamma: np.ndarray = None  # target gains (target_gain pooling), else None
    history: list = field(default_factory=list)  # (iteration, step, terms[6])
    n_iter: int = 0
    converged: bool = False
    n_cd_not_converged: int = 0

    @property
    def objective(self) -> float:
        return float(np.sum(self.history[-1][2]))


def _check_finite(terms, iteration, step):
    if not np.all(np.isfinite(terms)):
        bad = [TERMS[k] for k in range(len(TERMS)) if not np.isfinite(terms[k])]
        raise FloatingPointError(
            f"The fit produced non-finite values at iteration {iteration}, after the "
            f"{step} step (term(s): {', '.join(bad)}). Standardise the features (e.g. "
            "z-score each feature), reduce their magnitude, or increase the "
            "regularisation (lambdas).")


def _extrapolate(problem, cur, prev, alpha, out=None, gamma=None):
    """Candidate ``cur + alpha (cur - prev)`` for (A, W, C, R), Wbar exact.

    C and R are renormalised to unit columns with the scale moved into W, so
    the candidate has the same low-rank matrices as the extrapolated factors.
    The candidate's A is written into ``out`` (a new array if None).
    """
    A0, W0, C0, R0 = prev
    A1, W1, C1, R1 = cur
    # A1 + alpha (A1 - A0) with one temporary of A's size, not three
    # (the same values: IEEE + and * commute)
    A = np.subtract(A1, A0, out=out)
    A *= alpha
    A += A1
    W = W1 + alpha * (W1 - W0)
    C = C1 + alpha * (C1 - C0)
    R = R1 + alpha * (R1 - R0)
    nc = np.linalg.norm(C, axis=0)
    nr = np.linalg.norm(R, axis=0)
    if not (np.all(nc > 0) and np.all(nr > 0)):
        return None
    C = np.ascontiguousarray(C / nc)
    R = np.ascontiguousarray(R / nr)
    W = np.ascontiguousarray(W * (nc * nr)[None, :])
    Wbar, gamma = problem.profiles(W, gamma)
    return A, W, C, R, Wbar, gamma


def run_start(problem: Problem, A_init, J, seed, max_iter, tol, progress=None,
              cd_max_iter=1000, cd_tol=1e-10, start_label="", extrapolate=True,
              init="parafac", init_group=None, bootstrap=False, record_steps=True,
              keep_A=True, parafac_iter=100, factors=None):
    """One start of the alternating minimisation.

    ``init="parafac"`` starts as MODEL.md says (PARAFAC of ``A_init``, the
    lam1 = 0 A-step); ``init="groups"`` starts from :func:`group_init` over
    ``init_group = (group, n_groups)`` (with ``bootstrap``, its group
    matrices come from a bootstrap resample of the targets) and one A-step;
    ``init="classes"`` likewise from :func:`class_start`; ``init="given"``
    from ``factors = (W, C, R)`` and one A-step.

    ``record_steps`` evaluates and records the objective after every step
    (A, components, weights); otherwise only after every iteration, which
    saves two of the three objective evaluations per iteration.

    ``parafac_iter`` caps the ALS iterations of the PARAFAC start.

    ``keep_A=False`` drops the final ``A_e`` from the result (``res.A`` is
    None): a fit of ``n_init`` starts then holds one interaction tensor per
    start only while that start runs.

    With ``extrapolate``, every iteration ends with a trial step along the
    last iteration's change (a line search in the style of Bro's CP-ALS
    acceleration, tensorly's ``parafac(linesearch=True)``), kept only when it
    lowers the objective; so the objective still never increases.  The step
    length grows after every success and is reset after a failure.
    """
    nbad = 0
    # Spare arrays of A's shape, reused across iterations: a fresh array of
    # that size costs a page fault per 4 KiB on its first write, which at
    # 250 k pairs took longer than the A-step kernel itself.  A_init (shared
    # by every start) is never written to or pooled.
    spare = []

    def buffer():
        return spare.pop() if spare else None

    def release(X):
        if X is not None and X is not A_init:
            spare.append(X)

    if init == "parafac":
        W, C, R = parafac_init(A_init, J, seed, n_iter_max=parafac_iter)
        A = A_init
    else:
        if init == "given":
            W, C, R = (np.ascontiguousarray(x, dtype=np.float64) for x in factors)
        elif init == "classes":
            W, C, R, _ = class_start(problem, init_group, J, seed, bootstrap)
        else:
            W, C, R, _ = group_init(problem, init_group[0], init_group[1], J, seed, bootstrap)
        # the A_e that go with these factors: one exact A-step from A = B
        # (L at A = B is finite and the step can only lower it)
        B = K.lowrank_reconstruct(W, C, R, problem.dtype)
        A, nbad = problem.a_step(B, W, C, R, cd_max_iter=cd_max_iter, cd_tol=cd_tol)
        del B
    Wbar, gamma = problem.profiles(W)
    res = StartResult(seed, W, C, R, Wbar, A)
    res.n_cd_not_converged += nbad
    terms = problem.objective(A, W, C, R, Wbar, gamma)
    _check_finite(terms, 0, "init")
    res.history.append((0, "init", terms))
    prev = float(terms.sum())
    alpha = 1.0
    for it in range(1, max_iter + 1):
        before = (A, W, C, R)
        A, nbad = problem.a_step(A, W, C, R, cd_max_iter=cd_max_iter, cd_tol=cd_tol,
                                 out=buffer())
        res.n_cd_not_converged += nbad
        if record_steps:
            terms = problem.objective(A, W, C, R, Wbar, gamma)
            _check_finite(terms, it, "A")
            res.history.append((it, "A", terms))
        C, R = problem.component_step(A, W, C, R)
        if record_steps:
            terms = problem.objective(A, W, C, R, Wbar, gamma)
            _check_finite(terms, it, "components")
            res.history.append((it, "components", terms))
        W, Wbar, gamma, nbad = problem.weight_step(A, W, C, R, Wbar, gamma, tol=cd_tol)
        res.n_cd_not_converged += nbad
        terms = problem.objective(A, W, C, R, Wbar, gamma)
        _check_finite(terms, it, "weights")
        res.history.append((it, "weights", terms))
        cur = float(terms.sum())
        if extrapolate and it > 1:
            buf = buffer()
            cand = _extrapolate(problem, (A, W, C, R), before, alpha, out=buf, gamma=gamma)
            if cand is not None:
                t_c = problem.objective(*cand)
                if np.all(np.isfinite(t_c)) and float(t_c.sum()) < cur:
                    release(A)
                    A, W, C, R, Wbar, gamma = cand
                    terms = t_c
                    cur = float(t_c.sum())
                    res.history.append((it, "extrapolate", terms))
                    alpha *= 1.5
                else:
                    release(cand[0])
                    alpha = 1.0
            else:
                release(buf)
        release(before[0])
        before = None
        res.n_iter = it
        if progress is not None:
            progress.update(1)
            progress.set_postfix_str(f"{start_label} L={cur:.6g}")
        if prev - cur <= tol * max(abs(prev), np.finfo(float).tiny):
            res.converged = True
            break
        prev = cur
    if progress is not None and res.n_iter < max_iter:
        progress.update(max_iter - res.n_iter)
    spare.clear()
    res.W, res.C, res.R, res.Wbar, res.gamma = W, C, R, Wbar, gamma
    res.A = A if keep_A else None
    return res


def class_restarts(problem: Problem, start: StartResult, pair_class, class_names, n_draws,
                   max_iter, tol, seed, progress=None, log=None, continue_first=True,
                   **run_kw):
    """Random restarts of each interaction class's source effects (``class_restarts``).

    From a finished start: for every class ``g`` and ``n_draws`` times, the
    motifs whose weights lie mostly in class ``g`` (largest ``sum |W[e, j]|``
    over its pairs) get random unit source effects, their weights are
    refitted without the pooling term (which would pull them back to the
    profiles of the motifs they replace), and ``max_iter`` iterations run
    from there.  The result replaces the incumbent when its objective is
    lower, so the objective never rises.  The incumbent is first run
    ``max_iter`` more iterations, so a restart is compared with a start that
    had as many.  Why: at the paper's size the fits find every target effect
    but stall at wrong source effects for the one or two motifs of a class,
    in basins that the iterations do not leave (README, "Class restarts").

    Parameters
    ----------
    start : StartResult
        In the problem's pair order (``W`` not yet permuted back).
    pair_class : int64 (n_pairs,)
        Interaction class of every pair (:func:`init_classes`).
    class_names : sequence of str
    n_draws : int
        Restarts per class.
    continue_first : bool
        Run the start ``max_iter`` more iterations first (False: ``start``
        is already such a continuation).

    Returns
    -------
    StartResult
        The final incumbent; its ``history`` continues the start's, with a
        ``restart`` row where an accepted restart began.
    list of dict
        One row per trial: ``class``, ``draw``, ``motifs``, ``objective``,
        ``accepted`` (the first row, class ``""``, is the continuation).
    """
    rng = np.random.default_rng(seed)
    J = start.W.shape[1]
    lam1, _, _, lam4, _ = problem.lambdas
    kw = dict(run_kw, keep_A=True)

    def run(W, C, R, s):
        return run_start(problem, None, J, s, max_iter, tol, progress, init="given",
                         factors=(W, C, R), **kw)

    def chain(old, new, stage):
        off = old.history[-1][0]
        new.history = (old.history + [(off, stage, new.history[0][2])]
                       + [(off + it, st, t) for it, st, t in new.history[1:]])
        new.n_iter += old.n_iter
        new.n_cd_not_converged += old.n_cd_not_converged
        new.seed = old.seed
        return new

    def owner(W):
        """The class holding most of each motif's |W| mass: (J,)."""
        mass = np.zeros((len(class_names), J))
        np.add.at(mass, pair_class, np.abs(W))
        return np.argmax(mass, axis=0)

    inc = (chain(start, run(start.W, start.C, start.R, start.seed), "continue")
           if continue_first else start)
    log_rows = [{"class": "", "draw": -1, "motifs": (), "objective": inc.objective,
                 "accepted": True}]
    own = owner(inc.W)
    for g, name in enumerate(class_names):
        for draw in range(n_draws):
            cols = np.flatnonzero(own == g)
            if cols.size == 0:
                break
            R1 = inc.R.copy()
            R1[:, cols] = rng.normal(size=(R1.shape[0], cols.size))
            R1[:, cols] /= np.linalg.norm(R1[:, cols], axis=0)
            R1 = np.ascontiguousarray(R1)
            # weights of the restarted motifs: the weight LASSO without pooling
            b = K.bilinear_cr(inc.A, inc.C, R1)
            G = (inc.C.T @ inc.C) * (R1.T @ R1)
            prior, index = problem.pooling_prior(inc.Wbar, inc.gamma)
            W_new, _ = K.weight_lasso(b, prior, index, G, lam1, lam4, 0.0, inc.W, 1000,
                                      1e-10)
            W1 = inc.W.copy()
            W1[:, cols] = W_new[:, cols]
            trial = run(W1, inc.C, R1, int(rng.integers(2**31 - 1)))
            ok = trial.objective < inc.objective
            log_rows.append({"class": str(name), "draw": draw,
                             "motifs": tuple(int(c) for c in cols),
                             "objective": trial.objective, "accepted": bool(ok)})
            if log is not None:
                log(f"  class restart {name} #{draw + 1} (motifs {cols.tolist()}): "
                    f"L = {trial.objective:.6g} against {inc.objective:.6g}"
                    + ("  accepted" if ok else ""))
            if ok:
                inc = chain(inc, trial, "restart")
                own = owner(inc.W)
    return inc, log_rows


def source_excitation(Z, W, R, noise_var, snr=10.0):
    """How much of each source effect the pairs' source states determine.

    A motif acts on a source only through ``r_j . z_e``, so the part of
    ``r_j`` in directions that the sources of the pairs using it never visit
    is not determined by the data (MODEL.md, Identifiability, from the
    source side).  With ``S_j = sum_e W[e, j]^2 z_e z_e^T``, a direction
    (eigenvector of ``S_j``) is *excited* when its eigenvalue is at least
    ``snr`` times the noise's share of it, ``noise_var * sum_e W[e, j]^2``.

    Parameters
    ----------
    Z : float64 (n_pairs, d)  pair-weighted source states ``g_e x[k_e]``
    W : float64 (n_pairs, J)
    R : float64 (d, J)  unit source effects
    noise_var : float  per-feature noise variance
    snr : float  variance ratio that counts as excited (10: about 3x the
        noise in amplitude)

    Returns
    -------
    float64 (J,)
        ``|P_j r_j|`` in [0, 1], the norm of ``r_j`` on its excited directions;
        NaN for a motif that no pair uses.
    """
    J = W.shape[1]
    out = np.full(J, np.nan)
    for j in range(J):
        w2 = W[:, j] * W[:, j]
        total = float(w2.sum())
        if not total > 0:
            continue
        ev, V = np.linalg.eigh((Z * w2[:, None]).T @ Z)
        keep = ev >= snr * noise_var * total
        out[j] = min(1.0, float(np.linalg.norm(V[:, keep].T @ R[:, j])))
    return out


def motif_agreement(C1, R1, C2, R2):
    """Hungarian-matched |cosine| of vec M_j between two motif sets.

    The cosine of ``vec(c r^T)`` and ``vec(c' r'^T)`` for unit vectors is
    ``(c.c')(r.r')``, so no d x d motif is formed.

    Returns
    -------
    sim : float64 (J1,)
        For each motif of the first set, |cosine| with its match (0 when the
        second set has fewer motifs).
    match : int64 (J1,)
        Index of the matched motif in the second set, or -1.
    """
    cos = np.abs((C1.T @ C2) * (R1.T @ R2))
    rows, cols = linear_sum_assignment(-cos)
    sim = np.zeros(C1.shape[1])
    match = np.full(C1.shape[1], -1, np.int64)
    sim[rows] = cos[rows, cols]
    match[rows] = cols
    return sim, match


def stability(results, best):
    """Per-motif agreement of the best start with every other start.

    Returns float64 (J, n_other) of matched |cosine| (empty second axis with a
    single start).
    """
    ref = results[best]
    others = [r for k, r in enumerate(results) if k != best]
    J = ref.C.shape[1]
    out = np.zeros((J, len(others)))
    for k, r in enumerate(others):
        out[:, k], _ = motif_agreement(ref.C, ref.R, r.C, r.R)
    return out


@contextlib.contextmanager
def numba_threads(n_jobs):
    """Set Numba's thread count (and BLAS to one thread) for the block, then restore."""
    previous = numba.get_num_threads()
    try:
        if n_jobs is not None:
            n = numba.config.NUMBA_NUM_THREADS if n_jobs == -1 else int(n_jobs)
            numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))
        # BLAS threads would compete with Numba's for the same cores
        with threadpool_limits(limits=1, user_api="blas"):
            yield
    finally:
        numba.set_num_threads(previous)
