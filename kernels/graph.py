"""The smoothness graph: M nearest pairs in stacked-state space, symmetrised.

Each pair ``e = (n,t) <- (k,t-1)`` has the stacked state
``s_e = [x[n,t]; x[k,t-1]]``.  The graph links each pair to its ``M`` nearest
other pairs (exact, Euclidean, ties broken by the lower pair index) and is
then symmetrised: ``{e, e'}`` is an edge if either is among the other's
nearest.  Edge weights are ``exp(-sigma * ||s_e - s_e'||)``.
"""
import math

import numpy as np
from numba import njit

from . import _parallel
from ._config import JIT
from .pairs import _lower_bound

_BLOCK = 256
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


# --------------------------------------------------------------------------
# exact kNN in stacked-state space
#
# Rows are clustered (k-means on a sample, then every row assigned to its
# nearest centre) and stored cluster by cluster.  A query scans whole clusters
# in order of a cheap lower bound and skips a cluster when a lower bound on the
# distance to every row in it exceeds the query's current M-th distance.  The
# bounds are rigorous for the floating-point distances actually computed (see
# ``_knn_pruned``), so the clustering only changes the speed, never the result:
# every row that can be among the M nearest is scanned, and its squared
# distance is computed exactly like the reference, ``acc += (s_q[k] -
# s_c[k])**2`` in feature order.  The result therefore does not depend on the
# clustering or on the number of threads.
# --------------------------------------------------------------------------

# Mean rows per cluster, queries per parallel task, k-means sample rows per
# cluster and Lloyd iterations.  They only change the speed.
_LEAF = 256
_QBLOCK = 256
_SAMPLE_PER_CLUSTER = 16
_LLOYD_ITERS = 5
_STAGE1 = 8


@njit(**JIT)
def _sq_dists(q, B, lo, hi, out):
    """``out[c - lo] = sum_k (q[k] - B[k, c])**2`` for ``c`` in ``lo:hi``.

    Accumulated in ``k`` order from 0.0, which is the reference arithmetic
    bit for bit.  The loops over ``c`` vectorise; two features per pass halve
    the loads and stores of ``out``.
    """
    n = hi - lo
    o = out[:n]
    D = q.shape[0]
    k = D % 2
    if k == 1:
        v = q[0]
        r = B[0, lo:hi]  # slices: indices from range() need no wraparound
        for c in range(n):
            t = v - r[c]
            o[c] = t * t  # == 0.0 + t * t
    else:
        o[:] = 0.0
    while k < D:
        v0 = q[k]
        v1 = q[k + 1]
        r0 = B[k, lo:hi]
        r1 = B[k + 1, lo:hi]
        for c in range(n):
            t = v0 - r0[c]
            s = o[c] + t * t
            t = v1 - r1[c]
            o[c] = s + t * t
        k += 2


@njit(**JIT)
def _sq_dists_cols(Q, q, P, base, n, c0, c1, K, out):
    """``out[c - c0] = sum_{k<K} (Q[q, k] - P[base + k*n + c])**2``, ``c`` in
    ``c0:c1``: a query against columns of a ``(K, n)`` block stored flat.

    Offsets are unsigned so that indexing needs no wraparound and no views
    are made: the loops vectorise and a call costs little.
    """
    m = c1 - c0
    k = K % 2
    if k == 1:
        v = Q[q, 0]
        off = np.uint64(base + c0)
        for c in range(m):
            t = v - P[off + np.uint64(c)]
            out[c] = t * t
    else:
        for c in range(m):
            out[c] = 0.0
    while k < K:
        v0 = Q[q, k]
        v1 = Q[q, k + 1]
        off0 = np.uint64(base + k * n + c0)
        off1 = np.uint64(base + (k + 1) * n + c0)
        for c in range(m):
            uc = np.uint64(c)
            t = v0 - P[off0 + uc]
            s = out[c] + t * t
            t = v1 - P[off1 + uc]
            out[c] = s + t * t
        k += 2


@njit(**JIT)
def _first_above(a, lo, hi, x):
    """First ``p`` in ``lo:hi`` with ``a[p] > x`` (``a`` ascending there);
    ``pairs._lower_bound`` is the ``>=`` twin."""
    while lo < hi:
        mid = (lo + hi) >> 1
        if a[mid] <= x:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(**JIT)
def _sq_dist_rows(A, a, B, b):
    acc = 0.0
    for k in range(A.shape[1]):
        t = A[a, k] - B[b, k]
        acc += t * t
    return acc


@njit(**JIT)
def _sq_dist_fast(A, a, B, b):
    """Squared distance of ``A[a]`` and ``B[b]`` in four interleaved partial
    sums: faster than the reference order and within the same relative
    error bound, so it is used only inside bounds."""
    D = A.shape[1]
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    k = 0
    while k + 4 <= D:
        t0 = A[a, k] - B[b, k]
        t1 = A[a, k + 1] - B[b, k + 1]
        t2 = A[a, k + 2] - B[b, k + 2]
        t3 = A[a, k + 3] - B[b, k + 3]
        s0 += t0 * t0
        s1 += t1 * t1
        s2 += t2 * t2
        s3 += t3 * t3
        k += 4
    while k < D:
        t0 = A[a, k] - B[b, k]
        s0 += t0 * t0
        k += 1
    return (s0 + s1) + (s2 + s3)


_CENTRE_LIST = 256


@njit(**JIT)
def _centre_lists(C):
    """Each centre's nearest centres (itself first), nearest first.

    Returns ``nbr (k, L)`` and ``lo (k, L)``, a lower bound on the exact
    distance to each, with ``L = min(k, _CENTRE_LIST)``.
    """
    k, D = C.shape
    g = 4.0 * (D + 4) * 2.0 ** -53
    L = min(k, _CENTRE_LIST)
    nbr = np.empty((k, L), np.int64)
    lo = np.empty((k, L))
    row = np.empty(k)
    for i in range(k):
        for j in range(k):
            row[j] = _sq_dist_fast(C, i, C, j)
        row[i] = -1.0  # itself first, whatever the rounding
        # the L smallest by (distance, index): a stable sort's first L
        o = np.argsort(row, kind="mergesort")
        for t in range(L):
            nbr[i, t] = o[t]
            lo[i, t] = np.sqrt(max(row[o[t]], 0.0)) * (1.0 - g)
    return nbr, lo


@njit(**JIT)
def _nearest_centre_tasks(blk0, blk1, S, rows, C, CT, nbr, nbr_lo, lab, dist):
    """Blocks ``blk0:blk1`` of ``_QBLOCK`` rows of :func:`_nearest_centre`."""
    n = rows.shape[0]
    k, D = C.shape
    L = nbr.shape[1]
    g = 4.0 * (D + 4) * 2.0 ** -53
    # marks hold row numbers, unique across blocks: no reset between blocks
    seen = np.full(k, -1, np.int64)
    buf = np.empty(k)
    for blk in range(blk0, blk1):
        prev = 0
        for r in range(blk * _QBLOCK, min(n, (blk + 1) * _QBLOCK)):
            x = rows[r]
            b = lab[r] if lab[r] >= 0 else prev
            db = _sq_dist_fast(S, x, C, b)
            seen[b] = r
            moved = True
            while moved:
                moved = False
                reach = 2.0 * np.sqrt(db) * (1.0 + g)
                t = 1
                while t < L and nbr_lo[b, t] < reach:
                    j = nbr[b, t]
                    t += 1
                    if seen[j] == r:
                        continue
                    seen[j] = r
                    dj = _sq_dist_fast(S, x, C, j)
                    if dj < db or (dj == db and j < b):
                        b = j
                        db = dj
                        moved = True
                        break
                if not moved and t == L and L < k:
                    _sq_dists(S[x], CT, 0, k, buf)  # the list ran out: try every centre
                    for j in range(k):
                        if buf[j] < db or (buf[j] == db and j < b):
                            b = j
                            db = buf[j]
            lab[r] = b
            dist[r] = db
            prev = b


def _nearest_centre(S, rows, C, nbr, nbr_lo, lab, dist):
    """Nearest centre of each of ``S[rows]``.

    ``lab`` holds a first guess (or -1: the previous row's centre).  Walks
    the guess's list of nearest centres and moves to any nearer centre
    found; a centre is left out only when ``|c_b - c_j| >= 2 |x - c_b|``
    (exact distances, with margins) for the best ``c_b`` so far, so it is
    not nearer than ``c_b``.  When a list runs out every centre is tried.
    On return ``dist`` is the computed squared distance to ``C[lab]``,
    which is (up to rounding) the nearest.  The rows are processed in
    blocks of ``_QBLOCK`` (the previous row's centre does not cross a
    block), in parallel.
    """
    n_blocks = (rows.shape[0] + _QBLOCK - 1) // _QBLOCK
    CT = np.ascontiguousarray(C.T)
    _parallel.run(_nearest_centre_tasks, n_blocks, S, rows, C, CT, nbr, nbr_lo, lab, dist)


@njit(**JIT)
def _sample_rows(E, n):
    """``n`` rows spread evenly over ``range(E)`` with a hashed jitter."""
    out = np.empty(n, np.int64)
    h = np.uint64(0x9E3779B97F4A7C15)
    for i in range(n):
        lo = (i * E) // n
        hi = ((i + 1) * E) // n
        h ^= h << np.uint64(13)
        h ^= h >> np.uint64(7)
        h ^= h << np.uint64(17)
        out[i] = lo + np.int64(h % np.uint64(hi - lo))
    return out


@njit(**JIT)
def _kmeans_start(S, k, n_s):
    """The k-means sample rows and the starting centres."""
    E, D = S.shape
    rows = _sample_rows(E, n_s)
    C = np.empty((k, D))
    for j in range(k):
        C[j] = S[rows[(j * n_s) // k]]
    return rows, C


@njit(**JIT)
def _kmeans_update(S, rows, lab, C):
    """Each centre to the mean of its sample rows (an empty cluster keeps its centre)."""
    k, D = C.shape
    n_s = rows.shape[0]
    sums = np.zeros((k, D))
    counts = np.zeros(k, np.int64)
    for r in range(n_s):
        j = lab[r]
        counts[j] += 1
        for m in range(D):
            sums[j, m] += S[rows[r], m]
    for j in range(k):
        if counts[j] > 0:
            for m in range(D):
                C[j, m] = sums[j, m] / counts[j]


def _kmeans_centres(S, k):
    """``k`` centres from a few Lloyd iterations on a spread sample of rows."""
    E = S.shape[0]
    n_s = min(E, k * _SAMPLE_PER_CLUSTER)
    rows, C = _kmeans_start(S, k, n_s)
    lab = np.full(n_s, -1, np.int64)
    dist = np.empty(n_s)
    for _ in range(_LLOYD_ITERS):
        nbr, nbr_lo = _centre_lists(C)
        _nearest_centre(S, rows, C, nbr, nbr_lo, lab, dist)
        _kmeans_update(S, rows, lab, C)
    return C


def _cluster_index(S, leaf):
    """Cluster the rows of ``S`` and store them cluster by cluster.

    Returns ``(C, cs, perm, a_own, SP, PB, PR, y_norm, y_scale)``: centres
    ``C`` (k, D); cluster ``j`` holds rows ``perm[cs[j]:cs[j+1]]`` (by
    increasing distance to ``C[j]``); ``a_own`` is the computed squared
    distance of each row to its centre (original order); ``SP = S[perm]``.

    ``PR`` (cluster order) is ``float32(y)`` with ``y = V (s - mu) y_scale``:
    the rows centred and rotated onto the principal axes ``V`` of a sample
    (by decreasing variance), and scaled by a power of two that makes every
    entry smaller than 1 in magnitude; ``y_norm`` bounds each row's ``|y|``.
    ``PB[cs[j]*D : cs[j+1]*D]`` holds cluster ``j``'s rows of ``PR``
    transposed, a ``(D, n_j)`` block.  ``V`` only changes the speed; if it
    is not orthonormal to 1e-10 the identity is used.
    """
    E = S.shape[0]
    k = max(1, E // max(1, leaf))
    C = _kmeans_centres(S, k)
    lab = np.full(E, -1, np.int64)
    a_own = np.empty(E)
    nbr, nbr_lo = _centre_lists(C)
    _nearest_centre(S, np.arange(E, dtype=np.int64), C, nbr, nbr_lo, lab, a_own)
    # rows by increasing distance to their centre (stable: ties by index)
    order = np.argsort(a_own, kind="stable")
    cs, perm, SP, mu, cov = _cluster_order(S, k, lab, order)
    # principal axes of a sample, and the rows rotated onto them (in NumPy:
    # compiling eigh and matmul cost seconds, and V only changes the speed)
    D = S.shape[1]
    _, vecs = np.linalg.eigh(cov)
    V = np.ascontiguousarray(vecs[:, ::-1].T)
    if not np.all(np.isfinite(V)) or np.max(np.abs(V @ V.T - np.eye(D))) > 1e-10:
        V = np.eye(D)
    Y = np.empty((E, D))
    for p0 in range(0, E, 4096):  # in chunks
        p1 = min(E, p0 + 4096)
        Y[p0:p1] = (SP[p0:p1] - mu) @ V.T
    big = float(np.max(np.abs(Y))) if E > 0 else 0.0
    y_scale = 1.0
    if big > 0.0:
        y_scale = math.ldexp(1.0, -math.frexp(big)[1])
    PB, PR, y_norm = _cluster_store(Y, cs, y_scale)
    return C, cs, perm, a_own, SP, PB, PR, y_norm, y_scale


@njit(**JIT)
def _cluster_order(S, k, lab, order):
    """The rows stored cluster by cluster (see :func:`_cluster_index`), their
    mean and the covariance of a sample; returns ``(cs, perm, SP, mu, cov)``."""
    E, D = S.shape
    cs = np.zeros(k + 1, np.int64)
    for e in range(E):
        cs[lab[e] + 1] += 1
    for j in range(k):
        cs[j + 1] += cs[j]
    fill = cs[:-1].copy()
    perm = np.empty(E, np.int64)
    for o in range(E):
        e = order[o]
        perm[fill[lab[e]]] = e
        fill[lab[e]] += 1
    SP = np.empty((E, D))
    for p in range(E):
        SP[p] = S[perm[p]]
    mu = np.zeros(D)
    for p in range(E):
        mu += SP[p]
    mu /= E
    rows = _sample_rows(E, min(E, 20000))
    cov = np.zeros((D, D))
    z = np.empty(D)
    for r in rows:
        z[:] = S[r] - mu
        for a in range(D):
            for b in range(D):
                cov[a, b] += z[a] * z[b]
    return cs, perm, SP, mu, cov


@njit(**JIT)
def _cluster_store(Y, cs, y_scale):
    """``PB, PR, y_norm`` of :func:`_cluster_index` from the rotated rows ``Y``."""
    E, D = Y.shape
    k = cs.shape[0] - 1
    PR = np.empty((E, D), np.float32)
    PB = np.empty(E * D, np.float32)
    y_norm = np.empty(E)
    for j in range(k):
        n = cs[j + 1] - cs[j]
        for c in range(n):
            p = cs[j] + c
            acc = 0.0
            for m in range(D):
                y = Y[p, m] * y_scale
                PR[p, m] = np.float32(y)
                acc += y * y
            for m in range(D):
                PB[cs[j] * D + m * n + c] = PR[p, m]
            y_norm[p] = np.sqrt(acc) * (1.0 + 2.0 ** -40)
    return PB, PR, y_norm


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
    """float32 sum of ``(PR[a, k] - PR[b, k])**2`` over ``k >= K``."""
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
def _sift_down(v, p, x, n):
    """Restore the min-heap order of ``v[:n]`` (with ``p`` alongside) below ``x``."""
    while True:
        c = 2 * x + 1
        if c >= n:
            return
        if c + 1 < n and v[c + 1] < v[c]:
            c += 1
        if v[x] <= v[c]:
            return
        v[x], v[c] = v[c], v[x]
        p[x], p[c] = p[c], p[x]
        x = c


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
                _sift_down(cand_v, cand_p, x, nc)
            while nc > 0 and cand_v[0] <= tau:
                p = cand_p[0]
                nc -= 1
                cand_v[0] = cand_v[nc]
                cand_p[0] = cand_p[nc]
                _sift_down(cand_v, cand_p, 0, nc)
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
