"""Kernels of the exactly pooled reduced problem (MODEL.md).

In the limit of exact pooling every pair's matrix is its group's profile
``A_e = sum_j Wbar[g(e), j] c_j r_j^T`` (times the pair weight ``g_e``) and
LICCHIE's fidelity term becomes::

    F(Wbar, C, R) = sum_i || x_i - sum_g C diag(Wbar[g]) R^T z_{i,g} ||^2,
    z_{i,g}      = sum_{e into i, g(e) = g} g_e x[k_e].

``F`` is a quadratic in the data through three statistics, aggregated once:

    xx       = sum_i |x_i|^2
    T[g]     = sum_i x_i z_{i,g}^T                       (G, d, d)
    S[g, h]  = sum_i z_{i,g} z_{i,h}^T                   co-occurring (g, h) only

(``(g, h)`` co-occur when one target has pairs in both.)  ``S`` is stored as
CSR over ``g``: entry ``e`` of ``co_ptr[g]:co_ptr[g+1]`` is ``S[g, co_idx[e]]``,
both orders kept, so ``S[h, g] = S[g, h]^T`` appear as two entries.  Every
later ALS sweep costs nothing per pair or per target.

Statistics are aggregated per *block* of targets (for example per frame or
per session): a bootstrap resample of blocks is then a reweighted sum of
block statistics (:func:`combine`), with no pass over the pairs.

With ``P[e] = R^T S[e] R`` (J x J per entry) and ``K = C^T C``::

    F = xx - 2 sum_{g,j} Wbar[g,j] c_j^T T[g] r_j
           + sum_{e=(g,h)} sum_{j,k} Wbar[g,j] Wbar[h,k] K[j,k] P[e,j,k].

Each block update below is the exact least-squares minimiser of ``F`` over
its block, up to one tiny ridge: ``RIDGE_REL`` times the mean diagonal of
the block's Gram matrix (the profile system of one connected component of
groups, the ``J x J`` system of ``C``, the ``dJ x dJ`` system of ``R``), so
that a block whose Gram matrix is singular (an unused motif, a group without
signal, a source direction no source visits) gets the minimum-norm solution
instead of an error.
"""
import numpy as np
from numba import njit

from . import _parallel
from ._config import JIT
from ._linalg import cholesky, cholesky_solve

RIDGE_REL = 1e-10
# targets per parallel task of the aggregation
_TARGETS_PER_TASK = 256


# ---------------------------------------------------------------- aggregation
@njit(**JIT)
def _count_groups(t0, t1, tgt_ptr, group, n_groups, count):
    """Distinct groups of the targets of tasks ``t0:t1``."""
    nt = tgt_ptr.shape[0] - 1
    stamp = np.full(n_groups, -1, np.int64)
    for t in range(t0 * _TARGETS_PER_TASK, min(nt, t1 * _TARGETS_PER_TASK)):
        k = 0
        for e in range(tgt_ptr[t], tgt_ptr[t + 1]):
            g = group[e]
            if stamp[g] != t:
                stamp[g] = t
                k += 1
        count[t] = k


@njit(**JIT)
def _group_sums(t0, t1, X, tgt_ptr, src, gain, group, n_groups, tg_ptr, tg_group, Z):
    """``z_{t,g}`` of the targets of tasks ``t0:t1``, groups ascending per target."""
    nt = tgt_ptr.shape[0] - 1
    d = X.shape[1]
    slot = np.full(n_groups, -1, np.int64)
    for t in range(t0 * _TARGETS_PER_TASK, min(nt, t1 * _TARGETS_PER_TASK)):
        r0 = tg_ptr[t]
        k = 0
        for e in range(tgt_ptr[t], tgt_ptr[t + 1]):
            g = group[e]
            if slot[g] < 0:
                slot[g] = 0
                tg_group[r0 + k] = g
                k += 1
        # ascending groups: the statistics do not depend on the pairs' order
        tg_group[r0:r0 + k] = np.sort(tg_group[r0:r0 + k])
        for a in range(k):
            slot[tg_group[r0 + a]] = r0 + a
            Z[r0 + a, :] = 0.0
        for e in range(tgt_ptr[t], tgt_ptr[t + 1]):
            r = slot[group[e]]
            w = gain[e]
            s = src[e]
            for m in range(d):
                Z[r, m] += w * X[s, m]
        for a in range(k):
            slot[tg_group[r0 + a]] = -1


@njit(**JIT)
def _occurrences(tg_ptr, tg_group, block, n_groups, key, row_a, row_b):
    """Every ordered pair of groups of every target: key (block, g, h), rows."""
    nt = tg_ptr.shape[0] - 1
    o = 0
    for t in range(nt):
        for a in range(tg_ptr[t], tg_ptr[t + 1]):
            for b in range(tg_ptr[t], tg_ptr[t + 1]):
                key[o] = (block[t] * n_groups + tg_group[a]) * n_groups + tg_group[b]
                row_a[o] = a
                row_b[o] = b
                o += 1


@njit(**JIT)
def _accumulate_outer(u0, u1, seg, order, row_a, row_b, A, B, out):
    """``out[u] = sum_{o in seg u} A[row_a[o]] B[row_b[o]]^T`` for ``u`` in ``u0:u1``."""
    d1 = A.shape[1]
    d2 = B.shape[1]
    for u in range(u0, u1):
        for q in range(seg[u], seg[u + 1]):
            o = order[q]
            ra = row_a[o]
            rb = row_b[o]
            for m in range(d1):
                am = A[ra, m]
                if am != 0.0:
                    for n in range(d2):
                        out[u, m, n] += am * B[rb, n]


def _segments(inverse, n):
    order = np.argsort(inverse, kind="stable")
    seg = np.concatenate([[0], np.cumsum(np.bincount(inverse, minlength=n))]).astype(np.int64)
    return order.astype(np.int64), seg


def aggregate(X, tgt_obs, tgt_ptr, src, gain, group, n_groups, block=None, n_blocks=1,
              keep_rows=False):
    """Sufficient statistics of the pooled reduced problem, per block of targets.

    Parameters
    ----------
    X : float64 (n_obs, d)
    tgt_obs : int64 (n_targets,)
        Observation of each target.
    tgt_ptr : int64 (n_targets + 1,)
        Pairs of target ``t`` are ``tgt_ptr[t]:tgt_ptr[t+1]``.
    src : int64 (n_pairs,)
    gain : float64 (n_pairs,)
        Pair weights ``g_e``.
    group : int64 (n_pairs,)
        Pooling group in ``0..n_groups-1``.
    n_groups : int
    block : int64 (n_targets,) or None
        Block of each target in ``0..n_blocks-1`` (None: one block).
    n_blocks : int
    keep_rows : bool
        Also keep the per-target group sums and the accumulation orders
        (``agg["rows"]``), so that :func:`gain_weighted` can re-weight the
        statistics by per-target gains without another pass over the pairs.

    Returns
    -------
    dict with
        ``xx_blk`` float64 (n_blocks,);
        ``T_blk`` float64 (n_tkeys, d, d), ``T_block``, ``T_group`` int64 (n_tkeys,):
        the nonzero (block, group) parts of ``T``;
        ``S_blk`` float64 (n_skeys, d, d), ``S_block``, ``S_entry`` int64 (n_skeys,):
        the nonzero (block, entry) parts of ``S``;
        ``co_ptr`` int64 (n_groups + 1,), ``co_idx`` int64 (nnz,): the CSR of
        co-occurring groups (entry ``e`` is ``(g, co_idx[e])``);
        with ``keep_rows``, ``rows``: a dict of ``Y`` float64 (n_targets, d)
        (the targets' features), ``Z`` float64 (n_rows, d) (one row per
        (target, group), ascending groups per target), ``tg_ptr`` int64
        (n_targets + 1,) (rows of target ``t``), ``tg_group`` and ``tgt_row``
        int64 (n_rows,) (group and target of each row), and the orders of the
        ``T`` and ``S`` accumulations (``t_order``, ``t_seg``, ``s_order``,
        ``s_seg``, ``row_a``, ``row_b``).
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    tgt_ptr = np.ascontiguousarray(tgt_ptr, dtype=np.int64)
    src = np.ascontiguousarray(src, dtype=np.int64)
    gain = np.ascontiguousarray(gain, dtype=np.float64)
    group = np.ascontiguousarray(group, dtype=np.int64)
    nt = tgt_ptr.shape[0] - 1
    G = int(n_groups)
    d = X.shape[1]
    block = (np.zeros(nt, np.int64) if block is None
             else np.ascontiguousarray(block, dtype=np.int64))
    n_tasks = (nt + _TARGETS_PER_TASK - 1) // _TARGETS_PER_TASK
    count = np.zeros(nt, np.int64)
    _parallel.run(_count_groups, n_tasks, tgt_ptr, group, G, count)
    tg_ptr = np.concatenate([[0], np.cumsum(count)]).astype(np.int64)
    tg_group = np.empty(tg_ptr[-1], np.int64)
    Z = np.empty((tg_ptr[-1], d))
    _parallel.run(_group_sums, n_tasks, X, tgt_ptr, src, gain, group, G, tg_ptr, tg_group, Z)
    Y = np.ascontiguousarray(X[np.asarray(tgt_obs, dtype=np.int64)])
    xx_blk = np.bincount(block, weights=np.einsum("td,td->t", Y, Y), minlength=n_blocks)

    # T: one occurrence per (target, group) row of Z
    tkey = block[np.repeat(np.arange(nt), count)] * G + tg_group
    tu, tinv = np.unique(tkey, return_inverse=True)
    order, seg = _segments(tinv.ravel(), tu.size)
    rows = np.arange(tg_ptr[-1], dtype=np.int64)
    T_blk = np.zeros((tu.size, d, d))
    tgt_row = np.repeat(np.arange(nt, dtype=np.int64), count)
    _parallel.run(_accumulate_outer, tu.size, seg, order, tgt_row, rows, Y, Z, T_blk)

    # S: one occurrence per (target, group, group)
    n_occ = int(np.sum(count * count))
    key = np.empty(n_occ, np.int64)
    row_a = np.empty(n_occ, np.int64)
    row_b = np.empty(n_occ, np.int64)
    _occurrences(tg_ptr, tg_group, block, G, key, row_a, row_b)
    su, sinv = np.unique(key, return_inverse=True)
    order, seg = _segments(sinv.ravel(), su.size)
    S_blk = np.zeros((su.size, d, d))
    _parallel.run(_accumulate_outer, su.size, seg, order, row_a, row_b, Z, Z, S_blk)
    gh = su % (G * G)
    eu, S_entry = np.unique(gh, return_inverse=True)
    co_g = eu // G
    co_ptr = np.concatenate([[0], np.cumsum(np.bincount(co_g, minlength=G))]).astype(np.int64)
    out = dict(xx_blk=xx_blk, T_blk=T_blk, T_block=(tu // G).astype(np.int64),
               T_group=(tu % G).astype(np.int64), S_blk=S_blk,
               S_block=(su // (G * G)).astype(np.int64),
               S_entry=S_entry.ravel().astype(np.int64), co_ptr=co_ptr,
               co_idx=(eu % G).astype(np.int64))
    if keep_rows:
        t_order, t_seg = _segments(tinv.ravel(), tu.size)
        out["rows"] = dict(Y=Y, Z=Z, tg_ptr=tg_ptr, tg_group=tg_group, tgt_row=tgt_row,
                           t_order=t_order, t_seg=t_seg, s_order=order, s_seg=seg,
                           row_a=row_a, row_b=row_b)
    return out


# ---------------------------------------------------------------- target gains
def gain_weighted(agg, gamma):
    """The statistics of the reduced problem with per-target gains ``gamma``.

    With ``x_i ~ gamma_i sum_g C diag(Wbar[g]) R^T z_{i,g}`` the loss is the
    gain-free one with every ``z_{i,g}`` replaced by ``gamma_i z_{i,g}``:
    ``T`` is linear and ``S`` quadratic in the gains, ``xx`` is unchanged.
    One pass over the (target, group) rows; none over the pairs.

    Parameters
    ----------
    agg : dict
        From :func:`aggregate` with ``keep_rows=True``.
    gamma : float64 (n_targets,)

    Returns
    -------
    dict like ``agg`` (sharing its index arrays and rows) with ``T_blk`` and
    ``S_blk`` of the weighted sums.
    """
    rows = agg.get("rows")
    if rows is None:
        raise ValueError("gain_weighted needs the statistics of aggregate(..., "
                         "keep_rows=True)")
    gamma = np.asarray(gamma, dtype=np.float64)
    if gamma.shape != (rows["Y"].shape[0],):
        raise ValueError(f"gamma has shape {gamma.shape}; expected one gain per target "
                         f"({rows['Y'].shape[0]},)")
    Zg = np.ascontiguousarray(rows["Z"] * gamma[rows["tgt_row"]][:, None])
    n_rows = Zg.shape[0]
    T_blk = np.zeros_like(agg["T_blk"])
    _parallel.run(_accumulate_outer, T_blk.shape[0], rows["t_seg"], rows["t_order"],
                  rows["tgt_row"], np.arange(n_rows, dtype=np.int64), rows["Y"], Zg, T_blk)
    S_blk = np.zeros_like(agg["S_blk"])
    _parallel.run(_accumulate_outer, S_blk.shape[0], rows["s_seg"], rows["s_order"],
                  rows["row_a"], rows["row_b"], Zg, Zg, S_blk)
    return dict(agg, T_blk=T_blk, S_blk=S_blk)


@njit(**JIT)
def _predict_tasks(t0, t1, Z, tg_ptr, tg_group, Wbar, C, R, out):
    nt = tg_ptr.shape[0] - 1
    d, J = C.shape
    v = np.empty(J)
    for t in range(t0 * _TARGETS_PER_TASK, min(nt, t1 * _TARGETS_PER_TASK)):
        v[:] = 0.0
        for a in range(tg_ptr[t], tg_ptr[t + 1]):
            g = tg_group[a]
            for j in range(J):
                w = Wbar[g, j]
                if w != 0.0:
                    u = 0.0
                    for m in range(d):
                        u += R[m, j] * Z[a, m]
                    v[j] += w * u
        for m in range(d):
            s = 0.0
            for j in range(J):
                s += C[m, j] * v[j]
            out[t, m] = s


def predict_targets(rows, Wbar, C, R):
    """Gain-free prediction of every target, ``p_i = sum_g C diag(Wbar[g]) R^T z_{i,g}``.

    Parameters
    ----------
    rows : dict
        ``agg["rows"]`` of :func:`aggregate` with ``keep_rows=True``.
    Wbar : float64 (G, J)
    C, R : float64 (d, J)

    Returns
    -------
    float64 (n_targets, d)
    """
    nt = rows["tg_ptr"].shape[0] - 1
    out = np.zeros((nt, C.shape[0]))
    _parallel.run(_predict_tasks, (nt + _TARGETS_PER_TASK - 1) // _TARGETS_PER_TASK,
                  rows["Z"], rows["tg_ptr"], rows["tg_group"],
                  np.ascontiguousarray(Wbar, dtype=np.float64),
                  np.ascontiguousarray(C, dtype=np.float64),
                  np.ascontiguousarray(R, dtype=np.float64), out)
    return out


@njit(**JIT)
def _weighted_sum(parts, index, weight, out):
    for q in range(parts.shape[0]):
        w = weight[q]
        if w != 0.0:
            out[index[q]] += w * parts[q]


def combine(agg, n_groups, weights=None):
    """``(xx, T, S)`` of the targets of blocks weighted by ``weights`` (None: all 1).

    Returns
    -------
    xx : float, T : float64 (n_groups, d, d), S : float64 (nnz, d, d)
    """
    d = agg["S_blk"].shape[1] if agg["S_blk"].size else agg["T_blk"].shape[1]
    nb = agg["xx_blk"].shape[0]
    w = np.ones(nb) if weights is None else np.asarray(weights, dtype=np.float64)
    T = np.zeros((int(n_groups), d, d))
    S = np.zeros((agg["co_idx"].shape[0], d, d))
    _weighted_sum(agg["T_blk"], agg["T_group"], np.ascontiguousarray(w[agg["T_block"]]), T)
    _weighted_sum(agg["S_blk"], agg["S_entry"], np.ascontiguousarray(w[agg["S_block"]]), S)
    return float(w @ agg["xx_blk"]), T, S


def components(co_ptr, co_idx):
    """Connected components of the group co-occurrence graph.

    Returns
    -------
    comp_ptr : int64 (n_comp + 1,), comp_groups : int64 (n_groups,)
        The groups of component ``c`` are ``comp_groups[comp_ptr[c]:comp_ptr[c+1]]``.
    local : int64 (n_groups,)
        Position of each group within its component.
    """
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    G = co_ptr.shape[0] - 1
    adj = sp.csr_matrix((np.ones(co_idx.size), co_idx, co_ptr), shape=(G, G))
    n, label = connected_components(adj, directed=False)
    comp_groups = np.argsort(label, kind="stable").astype(np.int64)
    comp_ptr = np.concatenate([[0], np.cumsum(np.bincount(label, minlength=n))]).astype(np.int64)
    local = np.empty(G, np.int64)
    local[comp_groups] = np.arange(G) - comp_ptr[label[comp_groups]]
    return comp_ptr, comp_groups, local


# ---------------------------------------------------------------- the sweep
def entry_groups(co_ptr):
    """int64 (nnz,): the first group ``g`` of every entry ``(g, h)``."""
    return np.repeat(np.arange(co_ptr.shape[0] - 1, dtype=np.int64), np.diff(co_ptr))


def project(S, R):
    """``P[e] = R^T S[e] R``: float64 (nnz, J, J)."""
    return np.matmul(R.T, np.matmul(S, R))


def profile_rhs(T, C, R):
    """``b[g, j] = c_j^T T[g] r_j``: float64 (G, J)."""
    return np.einsum("gaj,aj->gj", np.matmul(T, R), C)


@njit(**JIT)
def _quad(P, Wbar, co_g, co_idx, K):
    J = K.shape[0]
    q = 0.0
    for e in range(P.shape[0]):
        g = co_g[e]
        h = co_idx[e]
        for j in range(J):
            wg = Wbar[g, j]
            if wg != 0.0:
                s = 0.0
                for k in range(J):
                    s += Wbar[h, k] * K[j, k] * P[e, j, k]
                q += wg * s
    return q


def loss(xx, b, P, Wbar, co_g, co_idx, K):
    """``F`` from the statistics (``b = profile_rhs``, ``P = project``, ``K = C^T C``)."""
    return float(xx - 2.0 * np.sum(Wbar * b)
                 + _quad(np.ascontiguousarray(P), np.ascontiguousarray(Wbar), co_g, co_idx,
                         np.ascontiguousarray(K)))


def _ridge_solve(gram, rhs):
    n = gram.shape[0]
    tr = np.trace(gram) / max(n, 1)
    ridge = RIDGE_REL * tr if tr > 0 else 1.0
    return np.linalg.solve(gram + ridge * np.eye(n), rhs)


def update_C(T, P, Wbar, R, co_g, co_idx):
    """Exact LS update of C (unnormalised) for fixed Wbar, R.  float64 (d, J)."""
    Vx = np.einsum("gj,gaj->aj", Wbar, np.matmul(T, R))
    VV = np.einsum("ej,ek,ejk->jk", Wbar[co_g], Wbar[co_idx], P)
    return np.ascontiguousarray(_ridge_solve(VV, Vx.T).T)


def update_R(T, S, Wbar, C, co_g, co_idx):
    """Exact LS update of R (unnormalised) for fixed Wbar, C.  float64 (d, J).

    Unknown ``(j, a)`` is ``R[a, j]``; Gram ``K[j,k] sum_{e=(g,h)} Wbar[g,j]
    Wbar[h,k] S[e]``, right side ``sum_g Wbar[g,j] T[g]^T c_j``.
    """
    nnz, d, _ = S.shape
    J = C.shape[1]
    Q = (Wbar[co_g][:, :, None] * Wbar[co_idx][:, None, :]).reshape(nnz, J * J)
    M = (Q.T @ S.reshape(nnz, d * d)).reshape(J, J, d, d)
    gram = (M * (C.T @ C)[:, :, None, None]).transpose(0, 2, 1, 3).reshape(J * d, J * d)
    rhs = np.einsum("gj,gbj->jb", Wbar, np.matmul(T.transpose(0, 2, 1), C))
    return np.ascontiguousarray(_ridge_solve(gram, rhs.ravel()).reshape(J, d).T)


@njit(**JIT)
def _profile_tasks(c0, c1, co_ptr, co_idx, P, K, b, comp_ptr, comp_groups, local, ridge_rel,
                   Wbar, quad):
    J = K.shape[0]
    # one system's scratch for the whole range of components (the search
    # solves them at every evaluation: allocating per component cost a fifth)
    most = 0
    for c in range(c0, c1):
        most = max(most, comp_ptr[c + 1] - comp_ptr[c])
    A = np.empty((most * J, most * J))
    v = np.empty(most * J)
    x = np.empty(most * J)
    for c in range(c0, c1):
        gs = comp_groups[comp_ptr[c]:comp_ptr[c + 1]]
        n = gs.shape[0] * J
        for i in range(n):   # the lower triangle is all that is read
            for k in range(i + 1):
                A[i, k] = 0.0
        for a in range(gs.shape[0]):
            g = gs[a]
            for j in range(J):
                v[a * J + j] = b[g, j]
            for e in range(co_ptr[g], co_ptr[g + 1]):
                lh = local[co_idx[e]]
                if lh <= a:  # lower triangle is all the factorisation reads
                    for j in range(J):
                        for k in range(J):
                            A[a * J + j, lh * J + k] = K[j, k] * P[e, j, k]
        tr = 0.0
        for i in range(n):
            tr += A[i, i]
        ridge = ridge_rel * tr / n if tr > 0.0 else 1.0
        for i in range(n):
            A[i, i] += ridge
        # quadratic term of the loss at the solution, w^T (A - ridge I) w = w^T v - ridge |w|^2
        for i in range(n):
            x[i] = v[i]
        # the ridge keeps A positive definite: no pivot is rejected (pivot_rel 0)
        cholesky(A, n, A, 0.0)
        cholesky_solve(A, n, x)
        q = 0.0
        for i in range(n):
            q += x[i] * v[i] - ridge * x[i] * x[i]
        quad[c] = q
        for a in range(gs.shape[0]):
            for j in range(J):
                Wbar[gs[a], j] = x[a * J + j]


def update_Wbar(b, P, K, co_ptr, co_idx, comps):
    """Exact LS update of the profiles, one system per connected component of groups.

    Unknowns ``(g, j)``; Gram ``K[j,k] P[(g,h), j, k]``, right side ``b[g, j]``.

    Returns
    -------
    Wbar : float64 (G, J)
    quad : float
        The loss's quadratic term at the solution (``F = xx - 2 <Wbar, b> + quad``).
    """
    comp_ptr, comp_groups, local = comps
    Wbar = np.zeros_like(b)
    quad = np.zeros(comp_ptr.shape[0] - 1)
    _parallel.run(_profile_tasks, comp_ptr.shape[0] - 1, co_ptr, co_idx,
                  np.ascontiguousarray(P), np.ascontiguousarray(K), np.ascontiguousarray(b),
                  comp_ptr, comp_groups, local, RIDGE_REL, Wbar, quad)
    return Wbar, float(quad.sum())


def coarsen(agg, labels, n_coarse):
    """Block statistics of a coarser grouping (group ``g`` -> ``labels[g]``).

    ``T`` and ``S`` are linear in the indicator of the groups, so the coarse
    statistics are sums of the fine ones (for example class x frame -> class):
    a cheap problem with the same motifs, to search first.

    Returns
    -------
    dict like :func:`aggregate`'s.
    """
    labels = np.asarray(labels, dtype=np.int64)
    Gc = int(n_coarse)
    co_ptr, co_idx = agg["co_ptr"], agg["co_idx"]
    co_g = entry_groups(co_ptr)
    d = agg["T_blk"].shape[1]
    tk = agg["T_block"] * Gc + labels[agg["T_group"]]
    tu, tinv = np.unique(tk, return_inverse=True)
    T_blk = np.zeros((tu.size, d, d))
    _weighted_sum(agg["T_blk"], tinv.ravel().astype(np.int64), np.ones(tk.size), T_blk)
    e_fine = agg["S_entry"]
    sk = (agg["S_block"] * Gc + labels[co_g[e_fine]]) * Gc + labels[co_idx[e_fine]]
    su, sinv = np.unique(sk, return_inverse=True)
    S_blk = np.zeros((su.size, d, d))
    _weighted_sum(agg["S_blk"], sinv.ravel().astype(np.int64), np.ones(sk.size), S_blk)
    gh = su % (Gc * Gc)
    eu, S_entry = np.unique(gh, return_inverse=True)
    cptr = np.concatenate([[0], np.cumsum(np.bincount(eu // Gc, minlength=Gc))]).astype(np.int64)
    return dict(xx_blk=agg["xx_blk"], T_blk=T_blk, T_block=(tu // Gc).astype(np.int64),
                T_group=(tu % Gc).astype(np.int64), S_blk=S_blk,
                S_block=(su // (Gc * Gc)).astype(np.int64),
                S_entry=S_entry.ravel().astype(np.int64), co_ptr=cptr,
                co_idx=(eu % Gc).astype(np.int64))
