"""Numba kernels of radius pairs, self sources and pair gains agree with their plain-NumPy references in ``naive.py``.

Split from the former ``test_kernels.py``; strategies shared between families
are in ``kernel_cases.py``.
"""
import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import naive
import licchie.kernels as K
from kernel_cases import SETTINGS, recordings, _self_src


# --------------------------------------------------------------------------
# pairs
# --------------------------------------------------------------------------

@settings(**SETTINGS)
@given(recordings())
def test_self_sources_matches_brute_force(case):
    rec, _ = case
    got = _self_src(rec)
    ref = naive.self_sources(rec["cell"], rec["frame"], rec["prev_frame"])
    np.testing.assert_array_equal(got, ref)


@settings(**SETTINGS)
@given(recordings(), st.booleans())
def test_radius_pairs_matches_brute_force(case, include_self):
    rec, radius = case
    self_src = _self_src(rec)
    tp, src, dist = K.radius_pairs(rec["positions"], rec["frame_ptr"], rec["prev_frame"],
                                   self_src, radius, include_self)
    rtp, rsrc, rdist = naive.radius_pairs(rec["positions"], rec["frame_ptr"],
                                          rec["prev_frame"], self_src, radius, include_self)
    np.testing.assert_array_equal(tp, rtp)
    np.testing.assert_array_equal(src, rsrc)
    np.testing.assert_allclose(dist, rdist, rtol=1e-15, atol=0)
    # sources of another session or frame never pair
    fo = naive.frame_of(rec["frame_ptr"])
    tgt = np.repeat(np.arange(len(fo)), np.diff(tp))
    assert np.all(fo[src] == rec["prev_frame"][fo[tgt]])


def _two_frames(prev_pos, cur_pos):
    pos = np.ascontiguousarray(np.vstack([prev_pos, cur_pos]), dtype=np.float64)
    n0 = len(prev_pos)
    frame_ptr = np.array([0, n0, len(pos)], np.int64)
    prev_frame = np.array([-1, 0], np.int64)
    return pos, frame_ptr, prev_frame


def test_radius_pairs_infinite_radius_is_all_pairs_3d():
    rng = np.random.default_rng(0)
    pos, fp, pf = _two_frames(rng.normal(scale=1e3, size=(7, 3)), rng.normal(size=(5, 3)))
    ss = np.full(len(pos), -1, np.int64)
    tp, src, dist = K.radius_pairs(pos, fp, pf, ss, math.inf, True)
    np.testing.assert_array_equal(np.diff(tp), [0] * 7 + [7] * 5)
    np.testing.assert_array_equal(src, np.tile(np.arange(7), 5))
    rtp, rsrc, rdist = naive.radius_pairs(pos, fp, pf, ss, math.inf, True)
    np.testing.assert_array_equal(src, rsrc)
    np.testing.assert_allclose(dist, rdist, rtol=1e-15)


def test_radius_pairs_single_frame_and_empty_frames():
    # one frame: nothing to pair with
    pos = np.zeros((3, 2))
    tp, src, dist = K.radius_pairs(pos, np.array([0, 3], np.int64), np.array([-1], np.int64),
                                   np.full(3, -1, np.int64), 1.0, True)
    np.testing.assert_array_equal(tp, np.zeros(4, np.int64))
    assert src.shape == (0,) and dist.shape == (0,)
    # no observation at all, three empty frames
    tp, src, dist = K.radius_pairs(np.zeros((0, 3)), np.zeros(4, np.int64),
                                   np.array([-1, 0, 1], np.int64), np.zeros(0, np.int64),
                                   1.0, True)
    np.testing.assert_array_equal(tp, [0])
    assert src.shape == (0,)
    # empty frame in the middle: frame 2 has no source frame content
    pos = np.array([[0.0, 0.0], [0.5, 0.0], [0.1, 0.0]])
    fp = np.array([0, 2, 2, 3], np.int64)
    pf = np.array([-1, 0, 1], np.int64)
    tp, src, dist = K.radius_pairs(pos, fp, pf, np.full(3, -1, np.int64), 10.0, True)
    np.testing.assert_array_equal(tp, [0, 0, 0, 0])


def test_radius_pairs_self_pair_beyond_radius_and_session_start():
    # two sessions of two frames; cell 0 jumps far, cell 1 stays; session 2
    # starts at frame 2 and must not pair with frame 1
    masks = [np.ones((2, 2), bool), np.ones((1, 2), bool)]
    positions = [np.array([[[0.0, 0.0], [50.0, 0.0]], [[1.0, 0.0], [1.0, 0.5]]]),
                 np.array([[[0.0, 0.0], [0.0, 0.0]]])]
    rec = naive.recording(masks, positions)
    ss = _self_src(rec)
    for include_self in (True, False):
        tp, src, dist = K.radius_pairs(rec["positions"], rec["frame_ptr"], rec["prev_frame"],
                                       ss, 2.0, include_self)
        rtp, rsrc, rdist = naive.radius_pairs(rec["positions"], rec["frame_ptr"],
                                              rec["prev_frame"], ss, 2.0, include_self)
        np.testing.assert_array_equal(tp, rtp)
        np.testing.assert_array_equal(src, rsrc)
        np.testing.assert_allclose(dist, rdist)
    # obs order: frame0: c0, c1; frame1: c0 (50,0), c1 (1,.5); frame2: c2; frame3: c2
    tp, src, _ = K.radius_pairs(rec["positions"], rec["frame_ptr"], rec["prev_frame"],
                                ss, 2.0, True)
    assert list(src[tp[2]:tp[3]]) == [0]          # far cell keeps only its self pair
    assert list(src[tp[3]:tp[4]]) == [0, 1]       # ascending sources
    assert tp[5] - tp[4] == 0                     # session start: no pairs
    assert list(src[tp[5]:tp[6]]) == [4]


def test_radius_pairs_boundary_ties_are_exact():
    """A source at exactly ``radius`` pairs (<=), with exact integer arithmetic."""
    prev = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [3.0, 0.0], [1.0, 1.0]])
    cur = np.array([[2.0, 0.0], [2.0, 0.0]])  # duplicate targets
    pos, fp, pf = _two_frames(prev, cur)
    ss = np.full(len(pos), -1, np.int64)
    tp, src, dist = K.radius_pairs(pos, fp, pf, ss, 1.0, True)
    assert list(src[tp[5]:tp[6]]) == [1, 2, 3]
    assert list(src[tp[6]:tp[7]]) == [1, 2, 3]


def test_radius_pairs_boundary_rounding_regression():
    """Known bug (kernels/pairs.py, ``_grid_geometry``: ``w = radius``): a
    source whose computed distance is <= radius is missed when rounding of
    the grid coordinate ``floor((v - origin) / w)`` puts it two grid cells
    away from the target, outside the 3**s cells scanned.

    Positions on a 0.1 lattice, radius ``6 * 0.1 = 0.6000000000000001``:
    target at 1.0, source at 1.6, distance ``1.6 - 1.0 = 0.6000000000000001``
    <= radius, so they pair by MODEL.md; but with the source frame's origin
    at 0.4, ``(1.6 - 0.4) / w = 2.0`` (cell 2) while
    ``(1.0 - 0.4) / w = 0.9999999999999998`` (cell 0).
    """
    step = 0.1
    prev = np.array([[4 * step, 0.0], [16 * step, 0.0], [50 * step, 0.0]])
    cur = np.array([[10 * step, 0.0]])
    r = 6 * step
    pos, fp, pf = _two_frames(prev, cur)
    ss = np.full(len(pos), -1, np.int64)
    assert naive.euclid(cur[0], prev[1]) <= r  # the contract says: a pair
    tp, src, dist = K.radius_pairs(pos, fp, pf, ss, r, False)
    rtp, rsrc, _ = naive.radius_pairs(pos, fp, pf, ss, r, False)
    assert list(rsrc) == [0, 1]
    np.testing.assert_array_equal(src, rsrc)


def test_radius_pairs_boundary_rounding_regression_minimal():
    """Same bug, minimal: source at 1 - 2**-53, target at 2.0, radius 1.

    ``2.0 - (1 - 2**-53)`` rounds to exactly 1.0 <= radius, but the source
    is in grid cell 0 and the target in cell 2."""
    prev = np.array([[0.0, 0.0], [1.0 - 2.0 ** -53, 0.0], [3.0, 0.0]])
    cur = np.array([[2.0, 0.0]])
    pos, fp, pf = _two_frames(prev, cur)
    ss = np.full(len(pos), -1, np.int64)
    tp, src, dist = K.radius_pairs(pos, fp, pf, ss, 1.0, False)
    rtp, rsrc, _ = naive.radius_pairs(pos, fp, pf, ss, 1.0, False)
    assert list(rsrc) == [1, 2]
    np.testing.assert_array_equal(src, rsrc)


def test_radius_pairs_wide_sparse_field():
    """Tiny radius on a huge field (grid cells widened, key must not overflow)."""
    rng = np.random.default_rng(3)
    prev = rng.uniform(-1e9, 1e9, size=(40, 3))
    cur = prev[:20] + rng.normal(scale=1e-3, size=(20, 3))
    pos, fp, pf = _two_frames(prev, cur)
    ss = np.full(len(pos), -1, np.int64)
    for r in (1e-2, 1e-6, 5e8):
        tp, src, dist = K.radius_pairs(pos, fp, pf, ss, r, True)
        rtp, rsrc, rdist = naive.radius_pairs(pos, fp, pf, ss, r, True)
        np.testing.assert_array_equal(tp, rtp)
        np.testing.assert_array_equal(src, rsrc)
        np.testing.assert_allclose(dist, rdist, rtol=1e-15)


@settings(**SETTINGS)
@given(arrays(np.float64, st.integers(0, 20), elements=st.floats(0, 50)),
       st.sampled_from([0, 1, 2]), st.floats(0.1, 10))
def test_pair_gains(dist, kind, h):
    np.testing.assert_allclose(K.pair_gains(dist, kind, h), naive.pair_gains(dist, kind, h),
                               rtol=1e-14, atol=0)


def test_pair_gains_distance_zeroes_self_pair():
    g = K.pair_gains(np.array([0.0, 2.0]), 2, 1.0)
    np.testing.assert_array_equal(g, [0.0, 2.0])
