"""Exact M nearest neighbours of the stacked states (the smoothness graph's kNN).

Rows are clustered (k-means on a sample, then every row assigned to its
nearest centre; :mod:`._cluster`) and stored cluster by cluster.  A query
scans whole clusters in order of a cheap lower bound and skips a cluster
when a lower bound on the distance to every row in it exceeds the query's
current M-th distance.  The bounds are rigorous for the floating-point
distances actually computed (see ``_knn_pruned``), so the clustering only
changes the speed, never the result: every row that can be among the M
nearest is scanned, and its squared distance is computed exactly like the
reference, ``acc += (s_q[k] - s_c[k])**2`` in feature order.  The result
therefore does not depend on the clustering or on the number of threads.
``_knn_brute`` is the plain reference, used for non-finite or extreme input.
"""
import numpy as np
from numba import njit

from . import _parallel
from ._cluster import (_QBLOCK, _cluster_index, _first_above, _sq_dist_fast, _sq_dist_rows,
                       _sq_dists_cols)
from ._config import JIT
from ._linalg import sift_down
from .pairs import _lower_bound

# queries per parallel task of the brute force
_BLOCK = 256
# mean rows per cluster (only changes the speed)
_LEAF = 256
# float32 axes summed before the first filter (only changes the speed)
_STAGE1 = 8


@njit(**JIT)
def _exact_insert(bd, bi, b, f, M, dd, ce):
    """Insert ``(dd, ce)`` into row ``b``'s list (``f`` filled, sorted by
    (distance, index)) if it belongs there; returns the new fill."""
    if f == M and (dd > bd[b, M - 1] or (dd == bd[b, M - 1] and ce > bi[b, M - 1])):
        return f
    pos = f if f < M else M - 1
    while pos > 0 and (bd[b, pos - 1] > dd or (bd[b, pos - 1] == dd and bi[b, pos - 1] > ce)):
        bd[b, pos] = bd[b, pos - 1]
        bi[b, pos] = bi[b, pos - 1]
        pos -= 1
    bd[b, pos] = dd
    bi[b, pos] = ce
    return f + 1 if f < M else f


@njit(**JIT)
def _sq_rest32(PR, a, b, K):
    """float32 sum of ``(PR[a, k] - PR[b, k])**2`` over ``k >= K``.

    A deliberate twin of ``_cluster._sq_dist_fast``: float32 accumulators
    (the filter's bound ``g32`` assumes float32 sums) over the axes left
    after the first ``K``, two partial sums, which is what the float32
    filter's inner loop can afford.
    """
    s0 = np.float32(0.0)
    s1 = np.float32(0.0)
    D = PR.shape[1]
    k = K
    while k + 2 <= D:
        t0 = PR[a, k] - PR[b, k]
        t1 = PR[a, k + 1] - PR[b, k + 1]
        s0 += t0 * t0
        s1 += t1 * t1
        k += 2
    if k < D:
        t0 = PR[a, k] - PR[b, k]
        s0 += t0 * t0
    return s0 + s1


@njit(**JIT)
def _tau32(th, g, g32, y_scale, w0, eta2):
    """Bound on the float32 distance of a row whose float64 distance is at
    most ``th`` (see ``_knn_pruned``); ``w0`` and ``eta2`` are the pair's
    rounding terms."""
    if th == np.inf:
        return np.float32(np.inf)
    w = np.sqrt(th) * (1.0 + g) * y_scale * (1.0 + 2.0 ** -20) + w0
    return np.float32(((1.0 + g32) * w * w + eta2) * (1.0 + 2.0 ** -20))


@njit(**JIT)
def _knn_block(S, M, C, cs, perm, a_own, SP, PB, PR, y_norm, y_scale, r_up, rx_lo, rx_up,
               y_norm_max, i, lo, nb, idx, d2):
    """The M nearest of the queries ``perm[lo:lo+nb]`` (all in cluster ``i``).

    Writes their rows of ``idx`` and ``d2``.  See ``_knn_pruned`` for the
    bounds and the float32 filter.
    """
    E, D = S.shape
    k = C.shape[0]
    g = 4.0 * (D + 4) * 2.0 ** -53
    g32 = 2.0 * (D + 4) * 2.0 ** -24
    e32 = 2.0 ** -21
    eta2 = D * 2.0 ** -146
    K = min(D, _STAGE1)
    max_n = 0
    for j in range(k):
        max_n = max(max_n, cs[j + 1] - cs[j])
    buf = np.empty(max_n, np.float32)
    cand_v = np.empty(max_n, np.float32)
    cand_p = np.empty(max_n, np.int64)
    cc = np.empty(k)
    key = np.empty(k)
    n_up = np.empty(k)
    for j in range(k):
        cc[j] = _sq_dist_fast(C, i, C, j)
        sc = np.sqrt(cc[j])
        n_up[j] = sc * (1.0 + g)
        key[j] = sc * (1.0 - g) - r_up[j]
    visit = np.argsort(key)
    bd = np.full((nb, M), np.inf)
    bi = np.full((nb, M), -1, np.int64)
    filled = np.zeros(nb, np.int64)
    thr = np.full(nb, np.inf)
    reach = np.full(nb, np.inf)
    active = np.arange(nb)
    n_act = nb
    seed_v = np.empty(M, np.float32)
    seed_c = np.empty(M, np.int64)
    QT = np.empty(D * nb)  # the queries transposed, for their distances to a centre
    for b in range(nb):
        for m in range(D):
            QT[m * nb + b] = SP[lo + b, m]
    dq = np.empty(nb)
    for jj in range(k + 1):
        # the queries' own cluster first, then by increasing key
        j = i if jj == 0 else visit[jj - 1]
        if jj > 0 and j == i:
            continue
        n = cs[j + 1] - cs[j]
        if n == 0:
            continue
        # a query whose reach the key has passed is done: the centres bound
        # rules out every later cluster
        a = 0
        while a < n_act:
            if key[j] > reach[active[a]]:
                n_act -= 1
                active[a] = active[n_act]
            else:
                a += 1
        if n_act == 0:
            break
        many = 8 * n_act >= nb and j != i
        if many:
            _sq_dists_cols(C, j, QT, 0, nb, 0, nb, D, dq)
        for a in range(n_act):
            b = active[a]
            qp = lo + b
            th = thr[b]
            if j == i:
                dqj = a_own[perm[qp]]
            else:
                # (the centres bound holds no more: see the reach above)
                dqj = dq[b] if many else _sq_dist_fast(SP, qp, C, j)
                if th < np.inf:
                    lb = np.sqrt(dqj) * (1.0 - g) - r_up[j]
                    if cc[j] > 0.0:
                        s = r_up[j] + n_up[j]
                        num = dqj * (1.0 - g) - a_own[perm[qp]] * (1.0 + g) - 2.0 * g * s * s
                        if num > 0.0:
                            lb = max(lb, num / (2.0 * n_up[j]))
                    if lb > 0.0 and (1.0 - g) * lb * lb > th:
                        continue
            c0 = 0
            c1 = n
            if th < np.inf:
                sq = np.sqrt(dqj)
                st = np.sqrt(th) * (1.0 + g)
                c0 = _lower_bound(rx_up, cs[j], cs[j + 1], sq * (1.0 - g) - st) - cs[j]
                c1 = _first_above(rx_lo, cs[j], cs[j + 1], sq * (1.0 + g) + st) - cs[j]
                if c0 >= c1:
                    continue
            p0 = cs[j] + c0
            f = filled[b]
            full = f < M
            # float32 distances: over every axis while the list is not full,
            # else over the first K principal axes only
            _sq_dists_cols(PR, qp, PB, cs[j] * D, n, c0, c1, D if full else K, buf)
            if full:
                # fill the list with the nearest few by float32 distance
                ns = 0
                need = M - f
                for c in range(c1 - c0):
                    v = buf[c]
                    if (ns == need and v >= seed_v[ns - 1]) or p0 + c == qp:
                        continue
                    pos = ns if ns < need else need - 1
                    while pos > 0 and seed_v[pos - 1] > v:
                        seed_v[pos] = seed_v[pos - 1]
                        seed_c[pos] = seed_c[pos - 1]
                        pos -= 1
                    seed_v[pos] = v
                    seed_c[pos] = c
                    if ns < need:
                        ns += 1
                for x in range(ns):
                    c = seed_c[x]
                    f = _exact_insert(bd, bi, b, f, M, _sq_dist_rows(SP, qp, SP, p0 + c),
                                      perm[p0 + c])
                    buf[c] = np.inf
                if f < M:  # every row of the range is in the list now
                    filled[b] = f
                    continue
                th = bd[b, M - 1]
            # the other rows that pass the float32 filter get their float64
            # distance, re-filtering as the list improves
            w0 = e32 * (y_norm[qp] + y_norm_max[j]) + D * 2.0 ** -147
            tau = _tau32(th, g, g32, y_scale, w0, eta2)
            nc = 0
            for c in range(c1 - c0):
                # partial sums only grow: the other axes only for rows left
                if buf[c] <= tau and p0 + c != qp:
                    v = buf[c] if full else buf[c] + _sq_rest32(PR, qp, p0 + c, K)
                    if v <= tau:
                        cand_v[nc] = v
                        cand_p[nc] = p0 + c
                        nc += 1
            # the candidates from the nearest (by float32) on: a min-heap
            for x in range(nc // 2 - 1, -1, -1):
                sift_down(cand_v, cand_p, x, nc)
            while nc > 0 and cand_v[0] <= tau:
                p = cand_p[0]
                nc -= 1
                cand_v[0] = cand_v[nc]
                cand_p[0] = cand_p[nc]
                sift_down(cand_v, cand_p, 0, nc)
                dd = _sq_dist_rows(SP, qp, SP, p)
                if dd > th:
                    continue
                f = _exact_insert(bd, bi, b, f, M, dd, perm[p])
                if f == M and bd[b, M - 1] < th:
                    th = bd[b, M - 1]
                    tau = _tau32(th, g, g32, y_scale, w0, eta2)
            filled[b] = f
            thr[b] = th
            if th < np.inf:
                reach[b] = rx_up[qp] + np.sqrt(th) * (1.0 + g)
    for b in range(nb):
        qg = perm[lo + b]
        for m in range(M):
            idx[qg, m] = bi[b, m]
            d2[qg, m] = bd[b, m]


def _knn_pruned(S, M, leaf):
    """Exact M nearest other rows of finite ``S``, about ``leaf`` rows per cluster.

    Bounds.  Let ``g = 4 (D + 4) 2**-53``; every squared distance computed
    in float64 here (row to row, row to centre, centre to centre) is within
    a relative ``(D + 3) 2**-53 < g / 4`` of the exact one, and so is its
    ``sqrt``.  Every row ``x`` of cluster ``j`` has a computed distance to
    centre ``c_j`` no larger than to any other centre ``c_i`` (assignment),
    and at most ``R_j`` (the cluster's radius).  For a query ``q`` whose own
    centre is ``c_i``, with exact distances:

    * centres: ``|q - x| >= |c_i - c_j| - |q - c_i| - R_j``;
    * ball: ``|q - x| >= |q - c_j| - R_j``;
    * bisector of ``c_i, c_j``: ``|q - x| >= (|q - c_j|**2 - |q - c_i|**2 -
      delta) / (2 |c_i - c_j|)``, where ``delta`` bounds ``|x - c_j|**2 -
      |x - c_i|**2``: at most ``(g / 2) (R_j + |c_i - c_j|)**2``, from the
      rounding of the assignment;
    * annulus, per row: ``|q - x| >= | |q - c_j| - |x - c_j| |``; rows are
      stored by increasing distance to their centre, so the rows a query
      must scan form one contiguous range.

    Each is evaluated with every computed quantity moved by a relative ``g``
    in the safe direction, which also covers the rounding of the bound
    itself.  A row is skipped only when ``(1 - g) bound**2`` is strictly
    greater than the query's current M-th computed squared distance ``th``,
    so its own computed distance is strictly greater too: it could never
    enter the list, not even as an equal-distance lower index.

    Float32 filter.  The rows left are scanned in float32, on ``y = (s -
    mu) * y_scale`` (entries below 1 in magnitude, so nothing overflows), and
    only those whose float32 squared distance is at most ``tau`` get their
    float64 distance computed.  Each stored ``y`` is within ``2**-23 |y| +
    2**-150`` of the exact one, so the float32 difference of two rows is
    within ``e32 (|y_q| + |y_x|) + eta1`` of the exact distance ``r`` (scaled)
    in norm, and the float32 sum of squares within a relative ``g32`` plus
    ``eta2`` (underflow) of the square of that.  A row that matters has
    ``r <= sqrt(th) (1 + g)``, hence a float32 distance at most ``tau``.
    The float32 list is only a filter: which rows enter, and in which
    order, is decided by their float64 distances.
    """
    E, D = S.shape
    C, cs, perm, a_own, SP, PB, PR, y_norm, y_scale = _cluster_index(S, leaf)
    r_up, rx_lo, rx_up, y_norm_max, task_c, task_lo = _knn_bounds(D, C.shape[0], cs, perm,
                                                                  a_own, y_norm)
    idx = np.full((E, M), -1, np.int64)
    d2 = np.full((E, M), np.inf)
    _parallel.run(_knn_tasks, task_c.shape[0], task_c, task_lo, S, M, C, cs, perm, a_own, SP,
                  PB, PR, y_norm, y_scale, r_up, rx_lo, rx_up, y_norm_max, idx, d2)
    return idx, d2


@njit(**JIT)
def _knn_bounds(D, k, cs, perm, a_own, y_norm):
    """Bounds on the rows' and clusters' radii for :func:`_knn_pruned`, and
    its tasks: blocks of at most ``_QBLOCK`` queries of one cluster.

    Returns ``(r_up, rx_lo, rx_up, y_norm_max, task_c, task_lo)``.
    """
    E = perm.shape[0]
    g = 4.0 * (D + 4) * 2.0 ** -53
    rx_lo = np.empty(E)  # bounds on each row's exact distance to its centre
    rx_up = np.empty(E)
    for p in range(E):
        r = np.sqrt(a_own[perm[p]])
        rx_lo[p] = r * (1.0 - g)
        rx_up[p] = r * (1.0 + g)
    r_up = np.zeros(k)  # and on each cluster's radius
    y_norm_max = np.zeros(k)
    n_tasks = 0
    for j in range(k):
        if cs[j + 1] > cs[j]:
            r_up[j] = rx_up[cs[j + 1] - 1]
            for p in range(cs[j], cs[j + 1]):
                y_norm_max[j] = max(y_norm_max[j], y_norm[p])
        n_tasks += (cs[j + 1] - cs[j] + _QBLOCK - 1) // _QBLOCK
    task_c = np.empty(n_tasks, np.int64)
    task_lo = np.empty(n_tasks, np.int64)
    t = 0
    for j in range(k):
        for lo in range(cs[j], cs[j + 1], _QBLOCK):
            task_c[t] = j
            task_lo[t] = lo
            t += 1
    return r_up, rx_lo, rx_up, y_norm_max, task_c, task_lo


@njit(**JIT)
def _knn_tasks(t0, t1, task_c, task_lo, S, M, C, cs, perm, a_own, SP, PB, PR, y_norm, y_scale,
               r_up, rx_lo, rx_up, y_norm_max, idx, d2):
    """Tasks ``t0:t1`` of :func:`_knn_pruned` (each writes its queries' rows)."""
    for t in range(t0, t1):
        i = task_c[t]
        lo = task_lo[t]
        _knn_block(S, M, C, cs, perm, a_own, SP, PB, PR, y_norm, y_scale, r_up, rx_lo, rx_up,
                   y_norm_max, i, lo, min(cs[i + 1], lo + _QBLOCK) - lo, idx, d2)


def knn_stacked(S, M):
    """Exact M nearest other rows of ``S``.

    Parameters
    ----------
    S : float64 (n_pairs, 2d)
        Stacked states.
    M : int
        Neighbours per pair; must be < n_pairs.

    Returns
    -------
    idx : int64 (n_pairs, M)
        Neighbours by increasing (squared distance, index), the squared
        distance summed in feature order.  A row is never its own neighbour.
    d2 : float64 (n_pairs, M)
        Their squared distances.

    Notes
    -----
    Finite rows are clustered and whole clusters skipped by rigorous lower
    bounds (``_knn_pruned``); the result is the brute-force one, for any
    number of threads.  With a non-finite value anywhere the plain brute
    force (``_knn_brute``) runs instead, and also when an entry exceeds
    1e100 in magnitude, where squared distances and the bounds' sums of
    squares could overflow, or when every entry is below 1e-100 (and not all
    are 0): the float32 filter works on rows scaled up to magnitude ~1, where
    a difference whose float64 square underflows to 0 would look large.
    """
    big = float(np.max(np.abs(S))) if S.size > 0 else 0.0
    if not np.all(np.isfinite(S)) or big > 1e100 or 0.0 < big < 1e-100:
        return _knn_brute(S, M)
    return _knn_pruned(S, M, _LEAF)


def _knn_brute(S, M):
    """Exact M nearest other rows of ``S``: brute force with early exit.

    The reference for ``knn_stacked``; O(n_pairs**2 2d).
    """
    E = S.shape[0]
    idx = np.full((E, M), -1, np.int64)
    d2 = np.full((E, M), np.inf)
    _parallel.run(_knn_brute_tasks, (E + _BLOCK - 1) // _BLOCK, S, M, idx, d2)
    return idx, d2


@njit(**JIT)
def _knn_brute_tasks(blk0, blk1, S, M, idx, d2):
    """Blocks ``blk0:blk1`` of ``_BLOCK`` queries of :func:`_knn_brute`."""
    E, D = S.shape
    for blk in range(blk0, blk1):
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

