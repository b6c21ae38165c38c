"""LICCHIE written the way a scientist would write it with standard tools.

This is the baseline that :mod:`benchmarks.compare` times LICCHIE against,
and an independent implementation of MODEL.md that
``tests/test_naive_agrees.py`` checks the engine with.  It uses no
Numba and nothing from ``licchie.kernels``; it shares with the package only
the data layer (an :class:`~licchie._observations.Observations`) and, as the
common starting point, the PARAFAC initialisation
(:func:`licchie.fit.parafac_init` with ``als="tensorly"``: plain tensorly).

Every stage is the textbook tool applied literally:

* **pairs**: one :class:`scipy.spatial.cKDTree` per frame,
  ``query_ball_point`` for the targets of the next frame, plus the self pair;
* **smoothness graph**: :class:`sklearn.neighbors.NearestNeighbors`
  (``algorithm="brute"``, exact) on the stacked states, symmetrised as a
  Python set of edges;
* **A-step**: a Python loop over targets; per target the dense wide design
  of the paper's App. A.5 (``x_target = A_wide z``, ``A_wide`` of size
  ``d x S d``, all ``S d^2`` unknowns of the target at once), with the
  low-rank and smoothness terms as ridge rows of an augmented design, solved
  by :func:`scipy.linalg.lstsq` (``d`` right-hand sides, ``O((S d)^3)`` per
  target); with ``lam3 > 0`` one :class:`sklearn.linear_model.Lasso` per
  (target, output feature) on the same augmented design;
* **component step**: the exact unit-sphere updates of MODEL.md step 2 with
  the residual tensor ``E_e`` formed densely by :func:`tensorly.cp_to_tensor`;
* **weight step**: one :class:`sklearn.linear_model.Lasso` per pair on the
  design ``[vec M_1 ... vec M_J]`` (``lstsq`` when ``lam4 = 0``), the pooling
  term ``lam5`` as augmented rows;
* **objective**: dense NumPy, each smoothness edge counted once.

The objective is the one of :meth:`licchie.fit.Problem.objective` term by
term: fidelity over targets that have at least one pair (a target without
pairs only adds a constant), then ``lam1`` low rank, ``lam2`` smoothness,
``lam3`` L1 of A, ``lam4`` L1 of W, ``lam5`` pooling.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
import tensorly as tl
from scipy.spatial import cKDTree
from sklearn.linear_model import Lasso
from sklearn.neighbors import NearestNeighbors

TERMS = ("fidelity", "low_rank", "smoothness", "l1_A", "l1_W", "pooling")

# sklearn's Lasso stops on a duality gap relative to ||y||^2; these make its
# answer agree with an exact minimiser to ~1e-9 on well-scaled problems.
LASSO_TOL = 1e-12
LASSO_MAX_ITER = 100_000


# --------------------------------------------------------------------------
# pairs and groups
# --------------------------------------------------------------------------

def find_pairs(obs, radius, include_self=True):
    """Radius pairs ``(n,t) <- (k,t-1)`` with a k-d tree per frame.

    Returns
    -------
    dict with int64 ``tgt``, ``src``, float ``dist``, bool ``is_self``, sorted
    by (target, source) observation index.
    """
    pos = obs.positions
    tgt, src = [], []
    self_src = np.full(obs.n_obs, -1, np.int64)
    for f in range(obs.n_frames):
        p = obs.prev_frame[f]
        if p < 0:
            continue
        a, b = obs.frame_ptr[f], obs.frame_ptr[f + 1]
        pa, pb = obs.frame_ptr[p], obs.frame_ptr[p + 1]
        if b <= a or pb <= pa:
            continue
        prev_of_cell = {int(obs.cell[k]): k for k in range(pa, pb)}
        tree = cKDTree(pos[pa:pb])
        hits = tree.query_ball_point(pos[a:b], r=radius)
        for i, lst in enumerate(hits):
            o = a + i
            found = {pa + int(k) for k in lst}
            if obs.has_identity:
                k_self = prev_of_cell.get(int(obs.cell[o]), -1)
                self_src[o] = k_self
                if include_self and k_self >= 0:
                    found.add(k_self)
            for k in sorted(found):
                tgt.append(o)
                src.append(k)
    tgt = np.asarray(tgt, np.int64)
    src = np.asarray(src, np.int64)
    dist = np.linalg.norm(pos[tgt] - pos[src], axis=1) if tgt.size else np.zeros(0)
    is_self = src == self_src[tgt]
    return dict(tgt=tgt, src=src, dist=dist, is_self=is_self)


def pair_gains(dist, pair_weight="none", bandwidth=1.0):
    """``g_e``: 1, ``exp(-d^2 / 2h^2)`` or ``d`` (MODEL.md, "Pairs")."""
    if pair_weight == "none":
        return np.ones_like(dist)
    if pair_weight == "gaussian":
        return np.exp(-dist ** 2 / (2.0 * bandwidth ** 2))
    return dist.copy()


def pair_groups(obs, tgt, src, is_self):
    """Pooling group: (target population, source population); the self pair a
    class of its own per target population."""
    P = len(obs.population_names)
    pop = obs.cell_population[obs.cell]
    cls = np.where(is_self, P * P + pop[tgt], pop[tgt] * P + pop[src])
    used, group = np.unique(cls, return_inverse=True)
    return group.astype(np.int64), len(used)


# --------------------------------------------------------------------------
# smoothness graph
# --------------------------------------------------------------------------

def build_graph(X, tgt, src, n_neighbors, sigma):
    """Exact M nearest pairs in stacked-state space, symmetrised.

    Returns
    -------
    edges : int64 (n_edges, 2), each undirected edge once with ``a < b``
    weight : float (n_edges,), ``exp(-sigma ||s_a - s_b||)``
    """
    S = np.hstack([X[tgt], X[src]])
    E = S.shape[0]
    M = min(int(n_neighbors), E - 1)
    if M < 1:
        return np.zeros((0, 2), np.int64), np.zeros(0)
    nn = NearestNeighbors(n_neighbors=M, algorithm="brute").fit(S)
    idx = nn.kneighbors(return_distance=False)  # excludes each point itself
    pairs = set()
    for e in range(E):
        for f in idx[e]:
            pairs.add((min(e, int(f)), max(e, int(f))))
    edges = np.array(sorted(pairs), np.int64).reshape(-1, 2)
    weight = np.exp(-sigma * np.linalg.norm(S[edges[:, 0]] - S[edges[:, 1]], axis=1))
    return edges, weight


# --------------------------------------------------------------------------
# the problem
# --------------------------------------------------------------------------

@dataclass
class NaiveProblem:
    X: np.ndarray
    tgt: np.ndarray
    src: np.ndarray
    gain: np.ndarray
    group: np.ndarray
    n_groups: int
    edges: np.ndarray
    edge_w: np.ndarray
    lambdas: tuple  # (lam1, lam2, lam3, lam4, lam5)
    ridge: float = 1e-12

    def __post_init__(self):
        E = self.tgt.shape[0]
        # targets and their pairs (pairs are sorted by target)
        self.targets, starts = np.unique(self.tgt, return_index=True)
        self.target_pairs = np.split(np.arange(E), starts[1:])
        # neighbour lists of every pair, from the undirected edges
        nb = [[] for _ in range(E)]
        nw = [[] for _ in range(E)]
        for (a, b), w in zip(self.edges, self.edge_w):
            nb[a].append(b)
            nw[a].append(w)
            nb[b].append(a)
            nw[b].append(w)
        self.nbr = [np.asarray(v, np.int64) for v in nb]
        self.nbr_w = [np.asarray(v, float) for v in nw]

    @property
    def n_pairs(self):
        return self.tgt.shape[0]


def make_problem(obs, radius, n_neighbors, sigma, lambdas, ridge, include_self=True,
                 pair_weight="none", bandwidth=None):
    """Pairs, gains, groups and graph of a recording, all the naive way."""
    p = find_pairs(obs, radius, include_self)
    h = radius if bandwidth is None else bandwidth
    gain = pair_gains(p["dist"], pair_weight, h)
    group, n_groups = pair_groups(obs, p["tgt"], p["src"], p["is_self"])
    edges, w = build_graph(obs.features, p["tgt"], p["src"], n_neighbors, sigma)
    return NaiveProblem(obs.features, p["tgt"], p["src"], gain, group, n_groups, edges, w,
                        tuple(float(v) for v in lambdas), float(ridge))


def lowrank(W, C, R):
    """``B_e = sum_j W[e,j] c_j r_j^T`` (E, d, d), by tensorly."""
    return tl.cp_to_tensor((None, [W, C, R]))


def group_means(W, group, n_groups):
    Wbar = np.zeros((n_groups, W.shape[1]))
    for g in range(n_groups):
        m = group == g
        if m.any():
            Wbar[g] = W[m].mean(axis=0)
    return Wbar


# --------------------------------------------------------------------------
# objective and steps
# --------------------------------------------------------------------------

def objective(prob: NaiveProblem, A, W, C, R, Wbar):
    """The six weighted terms of L (MODEL.md, "Objective")."""
    lam1, lam2, lam3, lam4, lam5 = prob.lambdas
    X = prob.X
    contrib = prob.gain[:, None] * np.einsum("eim,em->ei", A, X[prob.src])
    xhat = np.zeros_like(X)
    np.add.at(xhat, prob.tgt, contrib)
    fidelity = np.sum((X[prob.targets] - xhat[prob.targets]) ** 2)
    low_rank = np.sum((A - lowrank(W, C, R)) ** 2)
    a, b = prob.edges[:, 0], prob.edges[:, 1]
    smooth = np.sum(prob.edge_w * np.sum((A[a] - A[b]) ** 2, axis=(1, 2)))
    l1_A = np.sum(np.abs(A))
    l1_W = np.sum(np.abs(W))
    pooling = np.sum((W - Wbar[prob.group]) ** 2)
    return np.array([fidelity, lam1 * low_rank, lam2 * smooth, lam3 * l1_A, lam4 * l1_W,
                     lam5 * pooling])


def a_step(prob: NaiveProblem, A_old, W, C, R, lam1=None):
    """Jacobi A-step: per target, the dense wide ridge (lasso) problem.

    For target ``y = x[n,t]`` with sources ``z_e = g_e x[k_e,t-1]`` the
    unknown is ``A_wide = [A_e1 ... A_eS]`` (d x S d) and the problem is

        ||y - A_wide z||^2 + sum_e lam_e ||A_e - P_e||_F^2 + lam3 |A_wide|_1

    with ``lam_e = lam1 + lam2 sum_{f~e} w_ef`` and
    ``P_e = (lam1 B_e + lam2 sum_{f~e} w_ef A_f^old) / lam_e``.  The ridge
    part is the augmented least-squares problem
    ``[z^T; sqrt(Lam)] A_wide^T = [y^T; sqrt(Lam) P_wide^T]``.
    """
    lam1_, lam2, lam3, _, _ = prob.lambdas
    lam1 = lam1_ if lam1 is None else lam1
    E, d, _ = A_old.shape
    B = lowrank(W, C, R) if lam1 > 0 else np.zeros_like(A_old)
    A_new = np.empty_like(A_old)
    for t, o in enumerate(prob.targets):
        es = prob.target_pairs[t]
        S = es.shape[0]
        y = prob.X[o]
        z = (prob.gain[es, None] * prob.X[prob.src[es]]).ravel()  # (S d,)
        lam = np.empty(S)
        P = np.zeros((S, d, d))
        for q, e in enumerate(es):
            lq = lam1 + lam2 * prob.nbr_w[e].sum()
            if lq <= 0:
                lam[q] = prob.ridge
                continue
            lam[q] = lq
            acc = lam1 * B[e]
            if lam2 > 0 and prob.nbr[e].size:
                acc = acc + lam2 * np.tensordot(prob.nbr_w[e], A_old[prob.nbr[e]], axes=1)
            P[q] = acc / lq
        lam_l = np.repeat(lam, d)  # one lambda per unknown of a row
        P_wide = P.transpose(1, 0, 2).reshape(d, S * d)  # row i = i-th rows of the P_e
        sq = np.sqrt(lam_l)
        design = np.vstack([z[None, :], np.diag(sq)])  # (1 + S d, S d)
        rhs = np.vstack([y[None, :], sq[:, None] * P_wide.T])  # (1 + S d, d)
        if lam3 == 0:
            sol = scipy.linalg.lstsq(design, rhs)[0]  # (S d, d) = A_wide^T
        else:
            n = design.shape[0]
            sol = np.empty((S * d, d))
            for i in range(d):
                las = Lasso(alpha=lam3 / (2.0 * n), fit_intercept=False, tol=LASSO_TOL,
                            max_iter=LASSO_MAX_ITER)
                sol[:, i] = las.fit(design, rhs[:, i]).coef_
        A_wide = sol.T  # (d, S d)
        A_new[es] = A_wide.reshape(d, S, d).transpose(1, 0, 2)
    return A_new


def component_step(A, W, C, R):
    """Exact unit-sphere updates of every c_j, then every r_j (MODEL.md step 2)."""
    C = C.copy()
    R = R.copy()
    J = W.shape[1]
    for j in range(J):
        others = np.ones(J)
        others[j] = 0.0
        Ej = A - tl.cp_to_tensor((others, [W, C, R]))
        v = np.einsum("e,eim,m->i", W[:, j], Ej, R[:, j])
        nv = np.linalg.norm(v)
        if nv > 0:
            C[:, j] = v / nv
    for j in range(J):
        others = np.ones(J)
        others[j] = 0.0
        Ej = A - tl.cp_to_tensor((others, [W, C, R]))
        v = np.einsum("e,eim,i->m", W[:, j], Ej, C[:, j])
        nv = np.linalg.norm(v)
        if nv > 0:
            R[:, j] = v / nv
    return C, R


def weight_step(prob: NaiveProblem, A, W, C, R, Wbar):
    """One Lasso per pair: ``lam1||vec A_e - D w||^2 + lam5||w - Wbar_g||^2 + lam4|w|_1``."""
    lam1, _, _, lam4, lam5 = prob.lambdas
    E, d, _ = A.shape
    J = W.shape[1]
    D = np.stack([np.outer(C[:, j], R[:, j]).ravel() for j in range(J)], axis=1)
    W_new = np.empty_like(W)
    for e in range(E):
        Xd = np.sqrt(lam1) * D
        y = np.sqrt(lam1) * A[e].ravel()
        if lam5 > 0:
            Xd = np.vstack([Xd, np.sqrt(lam5) * np.eye(J)])
            y = np.concatenate([y, np.sqrt(lam5) * Wbar[prob.group[e]]])
        if lam4 > 0:
            n = Xd.shape[0]
            las = Lasso(alpha=lam4 / (2.0 * n), fit_intercept=False, tol=LASSO_TOL,
                        max_iter=LASSO_MAX_ITER)
            W_new[e] = las.fit(Xd, y).coef_
        else:
            W_new[e] = scipy.linalg.lstsq(Xd, y)[0]
    return W_new, group_means(W_new, prob.group, prob.n_groups)


def initial_interactions(prob: NaiveProblem, d):
    """One A-step with lam1 = 0 from A = 0 (MODEL.md, "Initialisation")."""
    E = prob.n_pairs
    z = np.zeros((d, 1))
    return a_step(prob, np.zeros((E, d, d)), np.zeros((E, 1)), z, z, lam1=0.0)


def iteration(prob: NaiveProblem, A, W, C, R, Wbar, timer=None, record_steps=True):
    """One outer iteration (A, components, weights), objective after each step.

    With ``record_steps=False`` the objective is evaluated once, after the
    weight step (as ``LICCHIE.fit`` does by default).  ``timer(name,
    seconds)`` is called per stage when given.
    """
    import time

    def timed(name, fn, *args):
        t0 = time.perf_counter()
        out = fn(*args)
        if timer is not None:
            timer(name, time.perf_counter() - t0)
        return out

    hist = []
    A = timed("a_step", a_step, prob, A, W, C, R)
    if record_steps:
        hist.append(timed("objective", objective, prob, A, W, C, R, Wbar))
    C, R = timed("component_step", component_step, A, W, C, R)
    if record_steps:
        hist.append(timed("objective", objective, prob, A, W, C, R, Wbar))
    W, Wbar = timed("weight_step", weight_step, prob, A, W, C, R, Wbar)
    hist.append(timed("objective", objective, prob, A, W, C, R, Wbar))
    return (A, W, C, R, Wbar), hist
