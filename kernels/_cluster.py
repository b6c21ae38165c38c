"""The cluster index behind :func:`kernels.knn.knn_stacked`.

Rows of the stacked states are clustered (k-means on a spread sample, then
every row assigned to its nearest centre) and stored cluster by cluster, by
increasing distance to their centre, with a float32 copy rotated onto the
principal axes for the search's filter (:func:`_cluster_index`).  Also the
squared-distance helpers the search and the graph share: ``_sq_dist_rows``
is the reference arithmetic (``acc += (a[k] - b[k])**2`` in feature order);
the others are faster and used only inside bounds, or reproduce the
reference bit for bit (``_sq_dists``, ``_sq_dists_cols``).  The index only
changes the speed of the search, never its result.
"""
import math

import numpy as np
from numba import njit

from . import _parallel
from ._config import JIT

# Queries (rows) per parallel task, k-means sample rows per cluster and Lloyd
# iterations.  They only change the speed.
_QBLOCK = 256
_SAMPLE_PER_CLUSTER = 16
_LLOYD_ITERS = 5


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

