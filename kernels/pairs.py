"""Who may influence whom: radius pairs between frame t and frame t-1.

A pair links a target observation at frame t to a source observation at the
session's previous frame within ``radius`` (MODEL.md, "Pairs").  Sources of a
frame are binned on a uniform grid whose cells are at least ``radius`` wide,
so each target only scans the 3**s grid cells around it: O(n_obs * S) rather
than the O(n_obs**2) of brute force.  The grid is stored as sorted cell keys
(binary-searched), never as a dense array, so a sparse, wide field of view
costs no memory.

The kernels are serial: pairs are found once per fit, in well under a second
for a million pairs, and a parallel version would only add compile time.
"""
import numpy as np
from numba import njit

from ._config import JIT

# Beyond this many grid cells per axis the linear key could overflow int64 in
# 3D; the cell is then widened (more candidates, same result).
_MAX_CELLS_PER_AXIS = 1 << 20


@njit(**JIT)
def self_sources(cell, frame, prev_frame, n_cells):
    """Observation of the same cell in the previous frame.

    Parameters
    ----------
    cell : int64 (n_obs,)
    frame : int64 (n_obs,), non-decreasing
    prev_frame : int64 (n_frames,)
    n_cells : int

    Returns
    -------
    int64 (n_obs,)
        Index of the observation of ``cell[o]`` at ``prev_frame[frame[o]]``,
        or -1.
    """
    n_obs = cell.shape[0]
    last_obs = np.full(n_cells, -1, np.int64)
    last_frame = np.full(n_cells, -1, np.int64)
    out = np.full(n_obs, -1, np.int64)
    for o in range(n_obs):
        c = cell[o]
        p = prev_frame[frame[o]]
        if p >= 0 and last_frame[c] == p:
            out[o] = last_obs[c]
        # a cell appears at most once per frame, so updating right after the
        # read never hides an observation of the same frame
        last_obs[c] = o
        last_frame[c] = frame[o]
    return out


@njit(**JIT)
def _grid_geometry(positions, frame_ptr, radius):
    """Per-frame grid origin, cell width and cell counts."""
    n_frames = frame_ptr.shape[0] - 1
    s = positions.shape[1]
    origin = np.zeros((n_frames, s))
    width = np.ones((n_frames, s))
    ncell = np.ones((n_frames, s), np.int64)
    for f in range(n_frames):
        a, b = frame_ptr[f], frame_ptr[f + 1]
        if b <= a:
            continue
        for k in range(s):
            lo = positions[a, k]
            hi = positions[a, k]
            for o in range(a + 1, b):
                v = positions[o, k]
                if v < lo:
                    lo = v
                if v > hi:
                    hi = v
            ext = hi - lo
            # a hair wider than the radius: floor((v - lo) / w) can round a
            # pair at exactly the radius into cells two apart (about 0.35 % of
            # grid-like positions); rounding error is < 1e-9 cells here
            w = radius * (1.0 + 1e-6)
            if not np.isfinite(w) or w <= 0.0:
                w = ext + 1.0
            if ext / w > _MAX_CELLS_PER_AXIS:
                w = ext / _MAX_CELLS_PER_AXIS
            origin[f, k] = lo
            width[f, k] = w
            ncell[f, k] = np.int64(ext / w) + 1
    return origin, width, ncell


@njit(**JIT)
def _cell_coord(v, lo, w):
    return np.int64(np.floor((v - lo) / w))


@njit(**JIT)
def _grid_keys(positions, frame_ptr, origin, width, ncell):
    """Grid key and frame of every observation."""
    n_obs, s = positions.shape
    n_frames = frame_ptr.shape[0] - 1
    keys = np.empty(n_obs, np.int64)
    frame_of = np.empty(n_obs, np.int64)
    for f in range(n_frames):
        for o in range(frame_ptr[f], frame_ptr[f + 1]):
            frame_of[o] = f
            key = np.int64(0)
            for k in range(s):
                c = _cell_coord(positions[o, k], origin[f, k], width[f, k])
                if c < 0:
                    c = 0
                if c >= ncell[f, k]:
                    c = ncell[f, k] - 1
                key = key * ncell[f, k] + c
            keys[o] = key
    return keys, frame_of


@njit(**JIT)
def _lower_bound(arr, a, b, x):
    while a < b:
        m = (a + b) >> 1
        if arr[m] < x:
            a = m + 1
        else:
            b = m
    return a


@njit(**JIT)
def _dist(positions, i, j):
    acc = 0.0
    for k in range(positions.shape[1]):
        t = positions[i, k] - positions[j, k]
        acc += t * t
    return np.sqrt(acc)


@njit(**JIT)
def _scan_target(o, p, positions, frame_ptr, origin, width, ncell, sorted_keys, order,
                 radius, out_src, out_dist, pos0):
    """Count (pos0 < 0) or write the pairs of target ``o`` from frame ``p``."""
    s = positions.shape[1]
    a, b = frame_ptr[p], frame_ptr[p + 1]
    n = 0
    if b <= a:
        return n
    base = np.empty(s, np.int64)
    for k in range(s):
        # clamping a target that lies outside the source grid only adds
        # candidates (all filtered by distance); it also makes an infinite
        # radius (one grid cell) see every source
        c = _cell_coord(positions[o, k], origin[p, k], width[p, k])
        base[k] = min(max(c, 0), ncell[p, k] - 1)
    n_off = 1
    for k in range(s):
        n_off *= 3
    for code in range(n_off):
        rem = code
        key = np.int64(0)
        ok = True
        for k in range(s):
            c = base[k] + (rem % 3) - 1
            rem //= 3
            if c < 0 or c >= ncell[p, k]:
                ok = False
                break
            key = key * ncell[p, k] + c
        if not ok:
            continue
        lo = _lower_bound(sorted_keys, a, b, key)
        hi = _lower_bound(sorted_keys, lo, b, key + 1)
        for i in range(lo, hi):
            k_obs = order[i]
            dd = _dist(positions, o, k_obs)
            if dd <= radius:
                if pos0 >= 0:
                    out_src[pos0 + n] = k_obs
                    out_dist[pos0 + n] = dd
                n += 1
    return n


def radius_pairs(positions, frame_ptr, prev_frame, self_src, radius, include_self):
    """All pairs (target at t) <- (source at t-1) within ``radius``.

    Parameters
    ----------
    positions : float64 (n_obs, s), s in {2, 3}
    frame_ptr : int64 (n_frames + 1,)
    prev_frame : int64 (n_frames,)
    self_src : int64 (n_obs,)
        Same cell's observation in the previous frame or -1
        (:func:`self_sources`).
    radius : float
    include_self : bool
        Keep the self pair even beyond ``radius``.

    Returns
    -------
    tgt_ptr : int64 (n_obs + 1,)
        Pairs of target observation ``o`` are ``tgt_ptr[o]:tgt_ptr[o+1]``.
    src : int64 (n_pairs,)
        Source observation, ascending within each target.
    dist : float64 (n_pairs,)
        Distance between target and source positions.
    """
    origin, width, ncell = _grid_geometry(positions, frame_ptr, float(radius))
    keys, frame_of = _grid_keys(positions, frame_ptr, origin, width, ncell)
    # per frame, observations in key order (stable: ties in observation order)
    order = np.lexsort((keys, frame_of)).astype(np.int64)
    sorted_keys = np.ascontiguousarray(keys[order])
    return _scan_pairs(positions, frame_ptr, prev_frame, self_src, float(radius),
                       bool(include_self), frame_of, origin, width, ncell, sorted_keys, order)


@njit(**JIT)
def _scan_pairs(positions, frame_ptr, prev_frame, self_src, radius, include_self, frame_of,
                origin, width, ncell, sorted_keys, order):
    """The two passes of :func:`radius_pairs` (count, then fill) over the grid."""
    n_obs = positions.shape[0]
    counts = np.zeros(n_obs, np.int64)
    tgt_ptr = np.zeros(n_obs + 1, np.int64)
    src = np.empty(0, np.int64)
    dist = np.empty(0, np.float64)
    # pass 0 counts (pos0 = -1), pass 1 writes: one call site of the scan
    for pass_ in range(2):
        if pass_ == 1:
            for o in range(n_obs):
                tgt_ptr[o + 1] = tgt_ptr[o] + counts[o]
            src = np.empty(tgt_ptr[n_obs], np.int64)
            dist = np.empty(tgt_ptr[n_obs], np.float64)
        for o in range(n_obs):
            p = prev_frame[frame_of[o]]
            if p < 0 or (pass_ == 1 and counts[o] == 0):
                continue
            pos0 = tgt_ptr[o] if pass_ == 1 else -1
            n = _scan_target(o, p, positions, frame_ptr, origin, width, ncell, sorted_keys,
                             order, radius, src, dist, pos0)
            so = self_src[o]
            if include_self and so >= 0:
                dso = _dist(positions, o, so)
                if not (dso <= radius):
                    if pass_ == 1:
                        src[pos0 + n] = so
                        dist[pos0 + n] = dso
                    n += 1
            if pass_ == 0:
                counts[o] = n
                continue
            # ascending source order, whatever order the grid was scanned in
            for i in range(pos0 + 1, pos0 + n):
                vs = src[i]
                vd = dist[i]
                j = i - 1
                while j >= pos0 and src[j] > vs:
                    src[j + 1] = src[j]
                    dist[j + 1] = dist[j]
                    j -= 1
                src[j + 1] = vs
                dist[j + 1] = vd
    return tgt_ptr, src, dist


@njit(**JIT)
def pair_gains(dist, kind, bandwidth):
    """Pair weight ``g_e`` from the pair's distance.

    Parameters
    ----------
    dist : float64 (n_pairs,)
    kind : int
        0 ``none`` (1), 1 ``gaussian`` (exp(-d^2 / 2h^2)), 2 ``distance`` (d).
    bandwidth : float
        ``h`` of the Gaussian.

    Returns
    -------
    float64 (n_pairs,)
    """
    out = np.empty(dist.shape[0])
    for e in range(dist.shape[0]):
        if kind == 0:
            out[e] = 1.0
        elif kind == 1:
            out[e] = np.exp(-dist[e] * dist[e] / (2.0 * bandwidth * bandwidth))
        else:
            out[e] = dist[e]
    return out
