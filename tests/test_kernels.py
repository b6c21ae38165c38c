"""Every Numba kernel agrees with its plain-NumPy reference in ``naive.py``.

Inputs are laid out as the kernels expect them (observations grouped by
frame, pairs grouped by target, symmetric CSR graph) and cover the awkward
cases: empty frames, a single frame, several sessions, targets without
neighbours, duplicate positions (ties), 2D and 3D, infinite radius.
"""
import math

import numba
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import naive
import licchie.kernels as K
from licchie.fit import Problem

SETTINGS = dict(deadline=None, max_examples=30,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# --------------------------------------------------------------------------
# strategies
# --------------------------------------------------------------------------

@st.composite
def recordings(draw, max_sessions=3, max_times=4, max_cells=6):
    """Observation arrays of 1..3 sessions with explicit visibility masks.

    Positions are either generic floats or small integers (duplicate
    positions and distances exactly equal to an integer radius)."""
    s = draw(st.sampled_from([2, 3]))
    grid = draw(st.booleans())
    if grid:
        coord = st.integers(0, 3).map(float)
    else:
        coord = st.floats(-5, 5, allow_nan=False, allow_infinity=False, width=64)
    masks, positions = [], []
    for _ in range(draw(st.integers(1, max_sessions))):
        T = draw(st.integers(1, max_times))
        n = draw(st.integers(0, max_cells))
        masks.append(draw(arrays(np.bool_, (n, T))))
        positions.append(draw(arrays(np.float64, (n, T, s), elements=coord)))
    seed = draw(st.integers(0, 2**32 - 1))
    rec = naive.recording(masks, positions, rng=np.random.default_rng(seed))
    if grid:
        radius = draw(st.sampled_from([0.0, 1.0, 2.0, math.sqrt(2.0), math.sqrt(5.0),
                                       3.0, math.inf]))
    else:
        radius = draw(st.one_of(st.just(math.inf), st.just(0.0),
                                st.floats(0.01, 8.0, allow_nan=False)))
    return rec, radius


def _self_src(rec):
    return K.self_sources(rec["cell"], rec["frame"], rec["prev_frame"], rec["n_cells"])


def _unit_columns(M):
    n = np.linalg.norm(M, axis=0)
    n[n == 0] = 1.0
    return np.ascontiguousarray(M / n)


@st.composite
def pair_problems(draw, max_targets=6, max_pairs_per_target=4, max_d=3, max_J=3):
    """A random pair structure, smoothness graph and factors.

    The graph is random (edges between any pairs, those of one target
    included, weights in (0, 1]) and leaves some pairs without neighbours."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    d = draw(st.integers(1, max_d))
    J = draw(st.integers(1, max_J))
    n_targets = draw(st.integers(1, max_targets))
    S = [draw(st.integers(1, max_pairs_per_target)) for _ in range(n_targets)]
    n_src = draw(st.integers(1, 6))
    n_obs = n_targets + n_src
    E = int(sum(S))
    tgt_obs = np.arange(n_targets, dtype=np.int64)
    tgt_ptr = np.concatenate([[0], np.cumsum(S)]).astype(np.int64)
    src = np.sort(rng.integers(n_targets, n_obs, size=E)).astype(np.int64)
    gain_kind = draw(st.sampled_from(["one", "positive", "with_zero"]))
    gain = np.ones(E) if gain_kind == "one" else rng.uniform(0.2, 1.5, size=E)
    if gain_kind == "with_zero":
        gain[rng.random(E) < 0.3] = 0.0
    p_edge = draw(st.sampled_from([0.0, 0.2, 0.6]))
    ew = {}
    for a in range(E):
        for b in range(a + 1, E):
            if rng.random() < p_edge:
                ew[(a, b)] = float(rng.uniform(0.05, 1.0))
    nbr_ptr, nbr_idx, nbr_w = naive.csr_from_edges(E, ew)
    X = rng.normal(size=(n_obs, d))
    A_old = rng.normal(size=(E, d, d))
    W = rng.normal(size=(E, J))
    C = _unit_columns(rng.normal(size=(d, J)))
    R = _unit_columns(rng.normal(size=(d, J)))
    n_groups = draw(st.integers(1, 3))
    group = rng.integers(0, n_groups, size=E).astype(np.int64)
    Wbar = rng.normal(size=(n_groups, J))
    return dict(A_old=A_old, X=X, tgt_obs=tgt_obs, tgt_ptr=tgt_ptr, src=src, gain=gain,
                nbr_ptr=nbr_ptr, nbr_idx=nbr_idx, nbr_w=nbr_w, W=W, C=C, R=R,
                Wbar=Wbar, group=group, n_groups=n_groups, rng=rng)


def _a_step(p, lam1, lam2, lam3, ridge, cd_max_iter=100000, cd_tol=1e-14, A_old=None):
    A_old = p["A_old"] if A_old is None else A_old
    A_new = np.full_like(A_old, np.nan)
    n_bad = K.a_step(A_old, p["X"], p["tgt_obs"], p["tgt_ptr"], p["src"], p["gain"],
                     p["nbr_ptr"], p["nbr_idx"], p["nbr_w"], p["W"], p["C"], p["R"],
                     lam1, lam2, lam3, ridge, cd_max_iter, cd_tol, A_new)
    return A_new, n_bad


class _threads:
    """Run a block with ``n`` Numba threads, restoring the previous count."""

    def __init__(self, n):
        self.n = n

    def __enter__(self):
        self.prev = numba.get_num_threads()
        numba.set_num_threads(min(self.n, numba.config.NUMBA_NUM_THREADS))

    def __exit__(self, *exc):
        numba.set_num_threads(self.prev)


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


# --------------------------------------------------------------------------
# smoothness graph
# --------------------------------------------------------------------------

@st.composite
def stacked(draw):
    E = draw(st.integers(2, 40))
    D = 2 * draw(st.integers(1, 3))
    if draw(st.booleans()):
        el = st.integers(-1, 1).map(float)  # many exact ties and duplicate rows
    else:
        el = st.floats(-3, 3, allow_nan=False, width=64)
    S = draw(arrays(np.float64, (E, D), elements=el))
    M = draw(st.integers(1, min(E - 1, 6)))
    return S, M


@settings(**SETTINGS)
@given(stacked())
def test_knn_stacked_is_exact(case):
    S, M = case
    idx, d2 = K.knn_stacked(S, M)
    E = S.shape[0]
    assert idx.shape == (E, M) and d2.shape == (E, M)
    for q in range(E):
        ref = naive.knn_order(S, q)
        ref_d = np.array([r[0] for r in ref[:M]])
        # chosen neighbours: valid, distinct, not q itself
        assert np.all((idx[q] >= 0) & (idx[q] < E)) and q not in idx[q]
        assert len(set(idx[q].tolist())) == M
        # their distances are the M smallest, in order
        np.testing.assert_allclose(d2[q], ref_d, rtol=1e-12, atol=1e-300)
        own = np.array([naive.sq_euclid(S[q], S[c]) for c in idx[q]])
        np.testing.assert_allclose(own, ref_d, rtol=1e-12, atol=1e-300)
        # documented tie-break: (distance, index); exact with IEEE sums
        np.testing.assert_array_equal(idx[q], [r[1] for r in ref[:M]])


def test_knn_stacked_ties_from_underflow():
    """Found by hypothesis: at 1e-192 the squared distances underflow to 0,
    so rows 0 and 2 tie for row 1 and the lower index wins."""
    S = np.array([[8.78008498e-192, 0.0], [0.0, 0.0], [0.0, 0.0]])
    idx, d2 = K.knn_stacked(S, 1)
    np.testing.assert_array_equal(idx[:, 0], [1, 0, 0])
    np.testing.assert_array_equal(d2, 0.0)


@st.composite
def clustered(draw):
    """Rows in a few tight clusters plus scattered rows, duplicates and ties:
    the cases where the cluster bounds of the pruned search are tight."""
    D = 2 * draw(st.integers(1, 4))
    n_clusters = draw(st.integers(1, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    centres = rng.normal(scale=draw(st.sampled_from([1e-3, 1.0, 1e3])), size=(n_clusters, D))
    E = draw(st.integers(2, 160))
    rows = centres[rng.integers(n_clusters, size=E)]
    rows = rows + rng.normal(scale=draw(st.sampled_from([0.0, 1e-9, 1e-2, 1.0])), size=(E, D))
    if draw(st.booleans()):
        rows = np.round(rows, 1)  # many exact ties and duplicate rows
    M = draw(st.integers(1, min(E - 1, 8)))
    leaf = draw(st.integers(1, 24))
    return np.ascontiguousarray(rows), M, leaf


@settings(**SETTINGS)
@given(clustered())
def test_knn_pruned_with_many_clusters_equals_brute_force(case):
    # knn_stacked uses clusters of ~256 rows, so the other tests reach only one
    # cluster; small leaves make the pruning bounds decide which rows are read.
    from licchie.kernels.knn import _knn_brute, _knn_pruned
    S, M, leaf = case
    idx, d2 = _knn_pruned(S, M, leaf)
    ref_idx, ref_d2 = _knn_brute(S, M)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_array_equal(d2, ref_d2)
    for q in (0, S.shape[0] - 1):  # and brute force is the plain reference
        ref = naive.knn_order(S, q)
        np.testing.assert_array_equal(idx[q], [r[1] for r in ref[:M]])


def test_stacked_states():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(6, 3))
    tgt = np.array([3, 3, 4, 5], np.int64)
    src = np.array([0, 2, 1, 1], np.int64)
    np.testing.assert_array_equal(K.stacked_states(X, tgt, src),
                                  naive.stacked_states(X, tgt, src))


@settings(**SETTINGS)
@given(stacked(), st.floats(0.0, 3.0))
def test_symmetric_graph(case, sigma):
    S, M = case
    idx, _ = K.knn_stacked(S, M)
    ptr, nidx, nw = K.symmetric_graph(S, idx, sigma)
    rptr, ridx, rw = naive.symmetric_graph(S, idx, sigma)
    np.testing.assert_array_equal(ptr, rptr)
    np.testing.assert_array_equal(nidx, ridx)
    np.testing.assert_allclose(nw, rw, rtol=1e-14)
    E = S.shape[0]
    seen = {}
    for e in range(E):
        seg = nidx[ptr[e]:ptr[e + 1]]
        assert np.all(np.diff(seg) > 0) and e not in seg  # ascending, no dups, no loops
        for k in range(ptr[e], ptr[e + 1]):
            seen[(e, int(nidx[k]))] = nw[k]
    # every edge from both ends with bitwise identical weight
    for (a, b), w in seen.items():
        assert seen[(b, a)] == w
    # every kNN relation is an edge
    for e in range(E):
        for f in idx[e]:
            assert (e, int(f)) in seen


# --------------------------------------------------------------------------
# A-step
# --------------------------------------------------------------------------

LAMS = st.tuples(st.sampled_from([0.0, 0.05, 1.0, 3.0]), st.sampled_from([0.0, 0.1, 2.0]))


@settings(**SETTINGS)
@given(pair_problems(), LAMS)
def test_a_step_ridge_path_matches_dense_least_squares(p, lams):
    """lam3 = 0: closed form == dense solve of the target's explicit objective."""
    lam1, lam2 = lams
    ridge = 1e-3
    A_new, n_bad = _a_step(p, lam1, lam2, 0.0, ridge)
    assert n_bad == 0
    args = (p["A_old"], p["X"], p["tgt_obs"], p["tgt_ptr"], p["src"], p["gain"],
            p["nbr_ptr"], p["nbr_idx"], p["nbr_w"], p["W"], p["C"], p["R"], lam1, lam2, ridge)
    ref = naive.a_step(*args)
    ref_ne = naive.a_step_normal_equations(*args)
    np.testing.assert_allclose(ref_ne, ref, rtol=1e-6, atol=1e-8)  # the two references
    np.testing.assert_allclose(A_new, ref, rtol=1e-7, atol=1e-9)


@settings(**SETTINGS)
@given(pair_problems(max_targets=4, max_pairs_per_target=3), LAMS,
       st.sampled_from([0.01, 0.3, 2.0]))
def test_a_step_lasso_satisfies_kkt(p, lams, lam3):
    """lam3 > 0: the coordinate descent output is the exact minimiser of the
    target's explicit objective ``||D a - t||^2 + lam3 |a|_1`` (KKT)."""
    lam1, lam2 = lams
    ridge = 1e-2
    A_new, n_bad = _a_step(p, lam1, lam2, lam3, ridge)
    assert n_bad == 0
    B = naive.lowrank(p["W"], p["C"], p["R"])
    for t in range(len(p["tgt_obs"])):
        pairs = list(range(p["tgt_ptr"][t], p["tgt_ptr"][t + 1]))
        D, rhs = naive.a_step_design(p["A_old"], p["X"], p["tgt_obs"][t], pairs, p["src"],
                                     p["gain"], p["nbr_ptr"], p["nbr_idx"], p["nbr_w"], B,
                                     lam1, lam2, ridge)
        a = A_new[pairs[0]:pairs[-1] + 1].ravel()
        scale = 1.0 + np.abs(D).max() * (np.abs(D).max() * np.abs(a).sum() + np.abs(rhs).max())
        assert naive.lasso_kkt_violation(D, rhs, a, lam3) <= 1e-9 * scale


def test_a_step_lasso_does_not_stop_when_a_sweep_zeroes_everything():
    """Regression (kernels/astep.py, coordinate-descent stopping rule): a sweep
    that moves every coordinate to 0 (``amax == 0``) while still changing
    them (``dmax > 0``) is not convergence.

    Row 0 of the only pair, warm-started at (0, 6), z = (1, 0.5), y = 3,
    lam3 = 4: the first sweep sets a1 = 0 (because a2 = 6 explains y) and then
    a2 = 0, but at a = 0 coordinate 1 violates optimality (|2 z1 y| = 6 > 4);
    the minimiser is a = ((3 - 2) / (1 + ridge), 0).
    """
    d = 2
    p = dict(A_old=np.zeros((1, d, d)), X=np.array([[3.0, 3.0], [1.0, 0.5]]),
             tgt_obs=np.array([0], np.int64), tgt_ptr=np.array([0, 1], np.int64),
             src=np.array([1], np.int64), gain=np.ones(1),
             nbr_ptr=np.zeros(2, np.int64), nbr_idx=np.zeros(0, np.int64),
             nbr_w=np.zeros(0), W=np.zeros((1, 1)), C=np.zeros((d, 1)), R=np.zeros((d, 1)))
    p["A_old"][0, 0] = [0.0, 6.0]
    ridge = 1e-12
    A_new, n_bad = _a_step(p, 0.0, 0.0, 4.0, ridge)
    assert n_bad == 0
    np.testing.assert_allclose(A_new[0, 0], [1.0 / (1.0 + ridge), 0.0], rtol=1e-12, atol=1e-15)
    D, rhs = naive.a_step_design(p["A_old"], p["X"], 0, [0], p["src"], p["gain"],
                                 p["nbr_ptr"], p["nbr_idx"], p["nbr_w"],
                                 np.zeros((1, d, d)), 0.0, 0.0, ridge)
    assert naive.lasso_kkt_violation(D, rhs, A_new[0].ravel(), 4.0) <= 1e-9


def test_a_step_lasso_matches_ridge_path_as_lam3_vanishes():
    rng = np.random.default_rng(7)
    d, J, E = 3, 2, 5
    prob = dict(A_old=rng.normal(size=(E, d, d)), X=rng.normal(size=(8, d)),
                tgt_obs=np.array([0, 1], np.int64), tgt_ptr=np.array([0, 2, 5], np.int64),
                src=np.array([2, 3, 4, 5, 6], np.int64), gain=np.ones(E),
                W=rng.normal(size=(E, J)), C=_unit_columns(rng.normal(size=(d, J))),
                R=_unit_columns(rng.normal(size=(d, J))))
    prob["nbr_ptr"], prob["nbr_idx"], prob["nbr_w"] = naive.csr_from_edges(
        E, {(0, 1): 0.5, (1, 3): 0.9, (2, 4): 0.3})
    A0, _ = _a_step(prob, 0.7, 0.4, 0.0, 1e-3)
    A1, n_bad = _a_step(prob, 0.7, 0.4, 1e-12, 1e-3)
    assert n_bad == 0
    np.testing.assert_allclose(A1, A0, rtol=1e-8, atol=1e-10)


def test_a_step_no_low_rank_no_neighbours_is_minimum_norm():
    """lam1 = 0 and no graph: each target's fit is the minimum-norm solution
    of ``y = sum_e A_e z_e`` (the vanishing-ridge limit), ``A_e = y z_e^T / |z|^2``."""
    rng = np.random.default_rng(11)
    d, E = 3, 7
    X = rng.normal(size=(10, d))
    tgt_obs = np.array([0, 1, 2], np.int64)
    tgt_ptr = np.array([0, 1, 4, 7], np.int64)
    src = np.array([3, 4, 5, 6, 7, 8, 9], np.int64)
    gain = rng.uniform(0.5, 1.5, size=E)
    empty = np.zeros(0, np.int64)
    p = dict(A_old=rng.normal(size=(E, d, d)), X=X, tgt_obs=tgt_obs, tgt_ptr=tgt_ptr,
             src=src, gain=gain, nbr_ptr=np.zeros(E + 1, np.int64), nbr_idx=empty,
             nbr_w=np.zeros(0), W=np.zeros((E, 1)), C=np.zeros((d, 1)), R=np.zeros((d, 1)))
    for lam2 in (0.0, 5.0):  # lam2 > 0 without neighbours is still no regulariser
        A_new, _ = _a_step(p, 0.0, lam2, 0.0, 1e-12)
        for t in range(3):
            s0, s1 = tgt_ptr[t], tgt_ptr[t + 1]
            Z = np.concatenate([gain[e] * X[src[e]] for e in range(s0, s1)])
            # explicit wide system: y_i = a_i . z for every row i
            sol = np.linalg.lstsq(Z[None, :], X[tgt_obs[t]][None, :], rcond=None)[0]
            ref = sol.T.reshape(d, s1 - s0, d).transpose(1, 0, 2)
            np.testing.assert_allclose(A_new[s0:s1], ref, rtol=1e-9, atol=1e-12)
        # and the dense reference agrees
        ref_all = naive.a_step(p["A_old"], X, tgt_obs, tgt_ptr, src, gain, p["nbr_ptr"],
                               empty, p["nbr_w"], p["W"], p["C"], p["R"], 0.0, lam2, 0.0)
        np.testing.assert_allclose(A_new, ref_all, rtol=1e-9, atol=1e-12)


def test_a_step_jacobi_reads_neighbours_of_same_target_from_a_old():
    """Two pairs of one target linked in the graph: each is pulled toward the
    other's *previous* value, not its new one."""
    d = 2
    X = np.array([[1.0, -1.0], [0.5, 2.0], [-1.0, 0.3]])
    p = dict(A_old=np.stack([np.eye(d), -np.eye(d)]), X=X,
             tgt_obs=np.array([0], np.int64), tgt_ptr=np.array([0, 2], np.int64),
             src=np.array([1, 2], np.int64), gain=np.ones(2),
             W=np.zeros((2, 1)), C=np.zeros((d, 1)), R=np.zeros((d, 1)))
    p["nbr_ptr"], p["nbr_idx"], p["nbr_w"] = naive.csr_from_edges(2, {(0, 1): 0.8})
    A_new, _ = _a_step(p, 0.0, 1.5, 0.0, 1e-3)
    ref = naive.a_step(p["A_old"], X, p["tgt_obs"], p["tgt_ptr"], p["src"], p["gain"],
                       p["nbr_ptr"], p["nbr_idx"], p["nbr_w"], p["W"], p["C"], p["R"],
                       0.0, 1.5, 1e-3)
    np.testing.assert_allclose(A_new, ref, rtol=1e-10, atol=1e-12)
    # changing the old value of pair 1 changes the new value of pair 0
    p2 = dict(p, A_old=np.stack([np.eye(d), np.zeros((d, d))]))
    A_new2, _ = _a_step(p2, 0.0, 1.5, 0.0, 1e-3)
    assert not np.allclose(A_new2[0], A_new[0])


def test_a_step_does_not_depend_on_thread_count():
    rng = np.random.default_rng(5)
    d, J = 3, 2
    n_t = 300  # several tasks of 64 targets
    S = rng.integers(1, 4, size=n_t)
    E = int(S.sum())
    p = dict(A_old=rng.normal(size=(E, d, d)), X=rng.normal(size=(n_t + 50, d)),
             tgt_obs=np.arange(n_t, dtype=np.int64),
             tgt_ptr=np.concatenate([[0], np.cumsum(S)]).astype(np.int64),
             src=rng.integers(n_t, n_t + 50, size=E).astype(np.int64), gain=np.ones(E),
             W=rng.normal(size=(E, J)), C=_unit_columns(rng.normal(size=(d, J))),
             R=_unit_columns(rng.normal(size=(d, J))))
    Sst = K.stacked_states(p["X"], np.repeat(p["tgt_obs"], S), p["src"])
    idx, _ = K.knn_stacked(Sst, 4)
    p["nbr_ptr"], p["nbr_idx"], p["nbr_w"] = K.symmetric_graph(Sst, idx, 0.5)
    out = []
    for n in (1, 2):
        with _threads(n):
            out.append([_a_step(p, 1.0, 0.5, lam3, 1e-6)[0] for lam3 in (0.0, 0.2)])
    for a, b in zip(*out):
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------
# CP contractions
# --------------------------------------------------------------------------

@st.composite
def factors(draw, max_E=40):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    E = draw(st.integers(0, max_E))
    d = draw(st.integers(1, 4))
    J = draw(st.integers(1, 3))
    return (rng.normal(size=(E, d, d)), rng.normal(size=(E, J)),
            rng.normal(size=(d, J)), rng.normal(size=(d, J)))


@settings(**SETTINGS)
@given(factors())
def test_contractions_match_einsum(f):
    A, W, C, R = f
    # the component step's shared pass: S = sum_e W[e,j] A_e, then S_j r_j, S_j^T c_j
    S = K.weighted_sum(A, W)
    np.testing.assert_allclose(S, np.einsum("ej,eab->jab", W, A), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(K.times_columns(S, R), naive.contract_ar(A, W, R),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(K.times_columns(S, C, transpose=True),
                               naive.contract_atc(A, W, C), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(K.bilinear_cr(A, C, R), naive.bilinear_cr(A, C, R),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(K.lowrank_reconstruct(W, C, R),
                               naive.lowrank_reconstruct(W, C, R), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(K.lowrank_reconstruct(W, C, R), naive.lowrank(W, C, R),
                               rtol=1e-12, atol=1e-12)


def test_contractions_do_not_depend_on_thread_count():
    rng = np.random.default_rng(2)
    E, d, J = 5000, 3, 2  # three chunks of 2048 pairs
    A, W = rng.normal(size=(E, d, d)), rng.normal(size=(E, J))
    C, R = rng.normal(size=(d, J)), rng.normal(size=(d, J))
    out = []
    for n in (1, 2):
        with _threads(n):
            S = K.weighted_sum(A, W)
            out.append([K.times_columns(S, R), K.times_columns(S, C, transpose=True),
                        K.bilinear_cr(A, C, R), K.lowrank_reconstruct(W, C, R)])
    for a, b in zip(*out):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(out[0][0], naive.contract_ar(A, W, R), rtol=1e-10)
    np.testing.assert_allclose(out[0][1], naive.contract_atc(A, W, C), rtol=1e-10)


@st.composite
def cp_problems(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    d = draw(st.integers(1, 4))
    J = draw(st.integers(1, d))  # J <= d <= E: the normal equations are regular
    E = draw(st.integers(d, 60))
    # a low-rank tensor plus noise
    A = np.einsum("ej,aj,bj->eab", rng.normal(size=(E, J)), rng.normal(size=(d, J)),
                  rng.normal(size=(d, J)))
    A = A + draw(st.sampled_from([0.0, 0.1, 1.0])) * rng.normal(size=(E, d, d))
    return A, J, draw(st.integers(1, 6)), draw(st.sampled_from([0.0, 1e-8])), seed


@settings(**SETTINGS)
@given(cp_problems())
def test_cp_als_is_tensorlys_parafac(prob):
    """The kernels' CP-ALS reproduces tensorly's parafac (same random init,
    no normalisation, no line search) to rounding, with its stopping rule."""
    from tensorly.decomposition import parafac
    from tensorly.decomposition._cp import initialize_cp

    A, J, n_iter, tol, seed = prob
    state = seed % (2**31 - 1)
    ref = parafac(A, rank=J, init="random", n_iter_max=n_iter, tol=tol, random_state=state,
                  normalize_factors=False)
    _, f0 = initialize_cp(A, J, init="random", random_state=state, normalize_factors=False)
    W, C, R, _ = K.cp_als(A, *f0, n_iter, tol)
    np.testing.assert_array_equal(ref.weights, 1.0)
    # the factors are determined up to scalings that ill-conditioned normal
    # equations amplify rounding in: compare the reconstructions
    rec = np.einsum("ej,aj,bj->eab", W, C, R)
    rec_ref = np.einsum("ej,aj,bj->eab", *ref.factors)
    np.testing.assert_allclose(rec, rec_ref, rtol=0, atol=1e-7 * max(1.0, np.abs(A).max()))


def test_cp_als_factors_match_tensorly_and_use_float64_sums():
    from tensorly.decomposition import parafac
    from tensorly.decomposition._cp import initialize_cp

    rng = np.random.default_rng(4)
    E, d, J = 3000, 5, 3  # two chunks
    A = np.einsum("ej,aj,bj->eab", rng.normal(size=(E, J)), rng.normal(size=(d, J)),
                  rng.normal(size=(d, J))) + 0.3 * rng.normal(size=(E, d, d))
    ref = parafac(A, rank=J, init="random", n_iter_max=100, tol=1e-8, random_state=3,
                  normalize_factors=False)
    _, f0 = initialize_cp(A, J, init="random", random_state=3, normalize_factors=False)
    out = K.cp_als(A, *f0, 100, 1e-8)
    assert 1 < out[3] < 100  # stopped by the tolerance, as tensorly did
    for got, want in zip(out[:3], ref.factors):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-10 * np.abs(want).max())
    # float32 A: the same iterations on the widened values, sums in float64
    A32 = A.astype(np.float32)
    got32 = K.cp_als(A32, *f0, 5, 0.0)
    want32 = K.cp_als(A32.astype(np.float64), *f0, 5, 0.0)
    for a, b in zip(got32, want32):
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------
# component step
# --------------------------------------------------------------------------

@settings(**SETTINGS)
@given(factors(max_E=25))
def test_component_step_is_exact_on_the_sphere(f):
    A, W, C, R = f
    if A.shape[0] == 0:
        return
    C, R = _unit_columns(C), _unit_columns(R)
    prob = Problem(X=None, pairs=None, graph=None, lambdas=(1.0, 0.0, 0.0, 0.0, 0.0))
    C1, R1 = prob.component_step(A, W, C, R)
    C1r, R1r = naive.component_step(A, W, C, R)
    np.testing.assert_allclose(C1, C1r, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(R1, R1r, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(np.linalg.norm(C1, axis=0), 1.0, rtol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(R1, axis=0), 1.0, rtol=1e-12)
    before = naive.lowrank_term(A, W, C, R)
    after = naive.lowrank_term(A, W, C1, R1)
    assert after <= before + 1e-10 * abs(before) + 1e-12


def test_component_step_each_update_is_the_sphere_maximiser():
    """Per component: replacing the updated c_j (others fixed) by any other
    unit vector cannot lower the low-rank term."""
    rng = np.random.default_rng(4)
    E, d, J = 30, 3, 3
    A, W = rng.normal(size=(E, d, d)), rng.normal(size=(E, J))
    C, R = _unit_columns(rng.normal(size=(d, J))), _unit_columns(rng.normal(size=(d, J)))
    prob = Problem(X=None, pairs=None, graph=None, lambdas=(1.0, 0.0, 0.0, 0.0, 0.0))
    C1, R1 = prob.component_step(A, W, C, R)
    # the last c update happens with C1 everywhere and R unchanged
    j = J - 1
    best = naive.lowrank_term(A, W, C1, R)
    for _ in range(200):
        Cj = C1.copy()
        Cj[:, j] = _unit_columns(rng.normal(size=(d, 1)))[:, 0]
        assert naive.lowrank_term(A, W, Cj, R) >= best - 1e-12
    # and the last r update with C1 and R1 everywhere
    best = naive.lowrank_term(A, W, C1, R1)
    for _ in range(200):
        Rj = R1.copy()
        Rj[:, j] = _unit_columns(rng.normal(size=(d, 1)))[:, 0]
        assert naive.lowrank_term(A, W, C1, Rj) >= best - 1e-12


def test_component_step_keeps_component_with_zero_weights():
    rng = np.random.default_rng(9)
    E, d, J = 6, 3, 2
    A, W = rng.normal(size=(E, d, d)), rng.normal(size=(E, J))
    W[:, 1] = 0.0
    C, R = _unit_columns(rng.normal(size=(d, J))), _unit_columns(rng.normal(size=(d, J)))
    prob = Problem(X=None, pairs=None, graph=None, lambdas=(1.0, 0.0, 0.0, 0.0, 0.0))
    C1, R1 = prob.component_step(A, W, C, R)
    np.testing.assert_array_equal(C1[:, 1], C[:, 1])
    np.testing.assert_array_equal(R1[:, 1], R[:, 1])


# --------------------------------------------------------------------------
# weight step
# --------------------------------------------------------------------------

@settings(**SETTINGS)
@given(pair_problems(max_targets=5), st.sampled_from([0.1, 1.0, 3.0]),
       st.sampled_from([0.0, 0.05, 0.5, 2.0]), st.sampled_from([0.0, 0.3, 2.0]))
def test_weight_lasso_matches_explicit_lasso(p, lam1, lam4, lam5):
    A, C, R, Wbar, group = p["A_old"], p["C"], p["R"], p["Wbar"], p["group"]
    b = naive.bilinear_cr(A, C, R)
    G = (C.T @ C) * (R.T @ R)
    W_init = p["W"].copy()
    W, n_bad = K.weight_lasso(b, Wbar, group, G, lam1, lam4, lam5, W_init, 100000, 1e-14)
    assert n_bad == 0
    np.testing.assert_array_equal(W_init, p["W"])  # warm start untouched
    Q = lam1 * G + lam5 * np.eye(G.shape[0])
    strictly_convex = np.linalg.eigvalsh(Q).min() > 1e-6
    for e in range(A.shape[0]):
        D, t = naive.weight_design(A[e], C, R, Wbar[group[e]], lam1, lam5)
        scale = 1.0 + np.abs(D).max() * (np.abs(D).max() * np.abs(W[e]).sum()
                                          + np.abs(t).max())
        assert naive.lasso_kkt_violation(D, t, W[e], lam4) <= 1e-9 * scale
        # the Q/q form of the kernel is the explicit design's objective
        q = lam1 * b[e] + lam5 * Wbar[group[e]]
        w = W[e]
        np.testing.assert_allclose(w @ Q @ w - 2 * q @ w + t @ t, np.sum((D @ w - t) ** 2),
                                   rtol=1e-9, atol=1e-9)
        if strictly_convex:
            ref = naive.weight_lasso_sklearn(A[e], C, R, Wbar[group[e]], lam1, lam4, lam5)
            np.testing.assert_allclose(W[e], ref, rtol=1e-6, atol=1e-7)


def test_weight_lasso_does_not_stop_when_a_sweep_zeroes_everything():
    """Regression (kernels/weights.py, same stopping rule as the A-step): from
    the warm start (0, 6), the first sweep zeroes w1 (w2 explains q1) then
    w2, yet w = 0 is not optimal (|2 q1| = 6 > lam4 = 4); the minimiser of
    ``w'Qw - 2q'w + 4|w|_1`` with Q = [[1, .5], [.5, 1]], q = (3, 1.5) is (1, 0).
    """
    G = np.array([[1.0, 0.5], [0.5, 1.0]])  # e.g. c1 = c2, r1 . r2 = 0.5
    b = np.array([[3.0, 1.5]])
    W, n_bad = K.weight_lasso(b, np.zeros((1, 2)), np.zeros(1, np.int64), G, 1.0, 4.0, 0.0,
                              np.array([[0.0, 6.0]]), 1000, 1e-12)
    assert n_bad == 0
    np.testing.assert_allclose(W, [[1.0, 0.0]], rtol=1e-12, atol=1e-15)


def test_weight_lasso_without_quadratic_is_zero():
    b = np.ones((3, 2))
    W, n_bad = K.weight_lasso(b, np.zeros((1, 2)), np.zeros(3, np.int64), np.zeros((2, 2)),
                              0.0, 0.1, 0.0, np.ones((3, 2)), 10, 1e-10)
    np.testing.assert_array_equal(W, 0.0)
    assert n_bad == 0


@settings(**SETTINGS)
@given(st.integers(0, 2**32 - 1), st.integers(0, 30), st.integers(1, 4), st.integers(1, 5))
def test_group_mean(seed, E, J, n_groups):
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(E, J))
    group = rng.integers(0, n_groups, size=E).astype(np.int64)  # some groups empty
    np.testing.assert_allclose(K.group_mean(W, group, n_groups),
                               naive.group_mean(W, group, n_groups), rtol=1e-13, atol=1e-15)


# --------------------------------------------------------------------------
# objective and predictions
# --------------------------------------------------------------------------

def _objective_args(p, A):
    return (A, p["X"], p["tgt_obs"], p["tgt_ptr"], p["src"], p["gain"], p["nbr_ptr"],
            p["nbr_idx"], p["nbr_w"], p["W"], p["C"], p["R"], p["Wbar"], p["group"])


@settings(**SETTINGS)
@given(pair_problems())
def test_objective_terms_match_dense(p):
    A = p["A_old"]
    got = K.objective_terms(*_objective_args(p, A))
    ref = naive.objective_terms(*_objective_args(p, A))
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


def test_objective_terms_counts_each_edge_once_and_skips_pairless_targets():
    d = 1
    p = dict(X=np.array([[1.0], [2.0], [3.0], [10.0]]),
             tgt_obs=np.array([0], np.int64), tgt_ptr=np.array([0, 2], np.int64),
             src=np.array([1, 2], np.int64), gain=np.array([1.0, 0.5]),
             W=np.zeros((2, 1)), C=np.ones((d, 1)), R=np.ones((d, 1)),
             Wbar=np.zeros((1, 1)), group=np.zeros(2, np.int64))
    p["nbr_ptr"], p["nbr_idx"], p["nbr_w"] = naive.csr_from_edges(2, {(0, 1): 0.25})
    A = np.array([[[1.0]], [[3.0]]])
    t = K.objective_terms(*_objective_args(p, A))
    # xhat = 1*1*2 + 0.5*3*3 = 6.5; (1 - 6.5)^2; observation 3 is no target
    np.testing.assert_allclose(t, [30.25, 10.0, 0.25 * 4.0, 4.0, 0.0, 0.0])


def test_objective_terms_do_not_depend_on_thread_count():
    rng = np.random.default_rng(8)
    n_t, d, J = 400, 2, 2
    S = rng.integers(1, 3, size=n_t)
    E = int(S.sum())
    p = dict(X=rng.normal(size=(n_t + 20, d)), tgt_obs=np.arange(n_t, dtype=np.int64),
             tgt_ptr=np.concatenate([[0], np.cumsum(S)]).astype(np.int64),
             src=rng.integers(n_t, n_t + 20, size=E).astype(np.int64),
             gain=rng.uniform(0.5, 1, size=E), W=rng.normal(size=(E, J)),
             C=rng.normal(size=(d, J)), R=rng.normal(size=(d, J)),
             Wbar=rng.normal(size=(2, J)), group=rng.integers(0, 2, size=E).astype(np.int64))
    Sst = K.stacked_states(p["X"], np.repeat(p["tgt_obs"], S), p["src"])
    p["nbr_ptr"], p["nbr_idx"], p["nbr_w"] = K.symmetric_graph(Sst, K.knn_stacked(Sst, 3)[0],
                                                               0.3)
    A = rng.normal(size=(E, d, d))
    out = []
    for n in (1, 2):
        with _threads(n):
            out.append(K.objective_terms(*_objective_args(p, A)))
    np.testing.assert_array_equal(out[0], out[1])
    np.testing.assert_allclose(out[0], naive.objective_terms(*_objective_args(p, A)),
                               rtol=1e-10)


@settings(**SETTINGS)
@given(pair_problems())
def test_predictions_match_dense(p):
    np.testing.assert_allclose(
        K.predict_lowrank(p["X"], p["tgt_ptr"], p["src"], p["gain"], p["W"], p["C"], p["R"]),
        naive.predict_lowrank(p["X"], p["tgt_ptr"], p["src"], p["gain"], p["W"], p["C"],
                              p["R"]),
        rtol=1e-12, atol=1e-12)


@settings(**SETTINGS)
@given(arrays(np.float64, st.integers(0, 40), elements=st.floats(-5, 5, width=64)),
       st.integers(0, 40))
def test_a_step_heapsort_sorts_the_prefix_only(a, n):
    from licchie.kernels._linalg import heapsort
    n = min(n, a.size)
    got = a.copy()
    heapsort(got, n)
    np.testing.assert_array_equal(got[:n], np.sort(a[:n]))
    np.testing.assert_array_equal(got[n:], a[n:])


@settings(**SETTINGS)
@given(arrays(np.float32, st.integers(0, 40), elements=st.floats(-5, 5, width=32)))
def test_sift_down_pops_in_order_with_payload(v):
    from licchie.kernels._linalg import sift_down
    v = v.copy()
    p = np.arange(v.size)
    orig = v.copy()
    n = v.size
    for x in range(n // 2 - 1, -1, -1):
        sift_down(v, p, x, n)
    popped = []
    while n > 0:
        assert orig[p[0]] == v[0]  # the payload travels with its key
        popped.append(v[0])
        n -= 1
        v[0], p[0] = v[n], p[n]
        sift_down(v, p, 0, n)
    np.testing.assert_array_equal(popped, np.sort(orig))


def test_cholesky_matches_numpy_in_place_or_not():
    from licchie.kernels._linalg import cholesky, cholesky_solve
    rng = np.random.default_rng(5)
    for k in range(1, 7):
        B = rng.normal(size=(k, k + 2))
        M = B @ B.T + 0.1 * np.eye(k)
        L = np.zeros((k + 1, k + 1))
        assert cholesky(M, k, L, 1e-8)
        np.testing.assert_allclose(np.tril(L[:k, :k]), np.linalg.cholesky(M), rtol=1e-12,
                                   atol=1e-12)
        Mi = M.copy()
        assert cholesky(Mi, k, Mi, 0.0)
        np.testing.assert_array_equal(np.tril(Mi), np.tril(L[:k, :k]))
        x = rng.normal(size=k)
        got = x.copy()
        cholesky_solve(L, k, got)
        np.testing.assert_allclose(got, np.linalg.solve(M, x), rtol=1e-10)
    # a singular block is rejected by a relative pivot, and so is a negative pivot
    S = np.ones((3, 3))
    assert not cholesky(S, 3, np.zeros((3, 3)), 1e-8)
    assert not cholesky(-np.eye(2), 2, np.zeros((2, 2)), 0.0)


def test_parafac_start_matches_tensorly():
    from licchie.fit import parafac_init

    rng = np.random.default_rng(8)
    E, d, J = 500, 4, 3
    A = np.einsum("ej,aj,bj->eab", rng.normal(size=(E, J)), rng.normal(size=(d, J)),
                  rng.normal(size=(d, J))) + 0.2 * rng.normal(size=(E, d, d))
    for got, want in zip(parafac_init(A, J, 11), parafac_init(A, J, 11, als="tensorly")):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-9 * np.abs(want).max())
