"""Cross-validated pooling groups (``licchie.fit.granularity``, the check of
``pooling_groups="auto"``).

Every target's held-out error is checked against plain NumPy that builds
the explicit design of the exactly pooled model, solves the profiles (fine,
or shared by coarse groups) on the training folds with
``numpy.linalg.lstsq`` and scores the held-out fold; the per-space form
against the one-space form; the vote of frames; the folds for keeping a
cell's observations together; and the choice on planted recordings whose class profiles are
constant in time (one profile per class is the true model) or move with one
scale per frame (class x frame is), judged at the true motifs.
"""
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from licchie import LICCHIE
from licchie.fit import granularity as GR
from licchie.fit import search as S
from licchie.synthetic import make_recording

from test_search import SETTINGS, explicit_z, random_pairs


def reference_errors(X, tobs, ptr, src, gain, group, G, C, R, fold, n_folds, labels=None):
    """Every target's held-out squared error at lstsq profiles of the other folds
    (with ``labels``: one profile per coarse group, shared by its fine groups);
    None when a training design (its nonzero columns) has condition number
    above 300: the kernel's relative ridge of 1e-10 moves the profiles by up
    to about 1e-10 cond^2 relative, above the test's tolerance beyond that."""
    Z = explicit_z(X, ptr, src, gain, group, G)            # (nt, G, d)
    if labels is not None:
        Gc = int(labels.max()) + 1
        Z = np.stack([Z[:, labels == c].sum(axis=1) for c in range(Gc)], axis=1)
        G = Gc
    Y = X[tobs]
    nt, d = Y.shape
    J = C.shape[1]
    # column (g, j) of target t's block: c_j (r_j . z_{t,g})
    D = np.einsum("tgm,mj,aj->tagj", Z, R, C).reshape(nt, d, G * J)
    err = np.zeros(nt)
    for k in range(n_folds):
        tr, te = fold != k, fold == k
        if not te.any():
            continue
        A = D[tr].reshape(-1, G * J)
        if tr.any() and np.linalg.cond(A[:, np.any(A != 0, axis=0)]) > 300:
            return None  # near-singular: the kernel's tiny ridge decides, not the data
        w = (np.linalg.lstsq(A, Y[tr].ravel(), rcond=None)[0]
             if tr.any() else np.zeros(G * J))
        err[te] = np.sum((Y[te] - D[te] @ w) ** 2, axis=1)
    return err


@st.composite
def cv_problems(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    d = draw(st.integers(1, 4))
    J = draw(st.integers(1, 3))
    G = draw(st.integers(1, 4))
    n_folds = draw(st.integers(2, 4))
    # enough targets per fold that every training system is determined
    nt = draw(st.integers(G * J * n_folds + 2, G * J * n_folds + 12))
    arrays = random_pairs(rng, nt, nt + 3, d, G)
    fold = rng.integers(0, n_folds, nt).astype(np.int64)
    C = rng.normal(size=(d, J))
    R = rng.normal(size=(d, J))
    return arrays, G, C, R, fold, n_folds


def _aggregated(prob, coarse):
    """The problem's fold-blocked statistics with rows, and coarse labels (or None)."""
    (X, tobs, ptr, src, gain, group), G, C, R, fold, n_folds = prob
    labels = (np.arange(G) // 2).astype(np.int64) if coarse else None
    return S.PooledData.from_pairs(X, tobs, ptr, src, gain, group, G, fold, n_folds,
                                   keep_rows=True), labels


@settings(**SETTINGS)
@given(cv_problems(), st.booleans())
def test_heldout_errors_match_numpy(prob, coarse):
    (X, tobs, ptr, src, gain, group), G, C, R, fold, n_folds = prob
    data, labels = _aggregated(prob, coarse)
    got = GR.heldout_errors(data, fold, C, R, labels=labels)
    want = reference_errors(X, tobs, ptr, src, gain, group, G, C, R, fold, n_folds, labels)
    assume(want is not None)
    scale = float(np.sum(X[tobs] ** 2))
    # the kernel solves with a relative ridge of 1e-10 (RIDGE_REL), lstsq without
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-8 * scale)


@settings(**SETTINGS)
@given(cv_problems(), st.booleans())
def test_one_feature_space_gives_the_plain_errors(prob, coarse):
    """The per-space form with one space holding every feature is the plain form."""
    _, G, C, R, fold, _ = prob
    data, labels = _aggregated(prob, coarse)
    plain = GR.heldout_errors(data, fold, C, R, labels=labels)
    n_cls = G if labels is None else int(labels.max()) + 1
    spaces = GR.heldout_errors(data, fold, C[None], R[None], np.zeros(n_cls, np.int64),
                               np.zeros((1, 2), np.int64), labels=labels)
    np.testing.assert_allclose(spaces, plain, rtol=1e-9, atol=1e-12)


@settings(deadline=None, max_examples=40)
@given(st.lists(st.tuples(st.integers(0, 5), st.floats(0, 10), st.floats(0, 10)),
                min_size=1, max_size=40))
def test_frame_vote_counts_frames_not_targets(rows):
    frame = np.array([r[0] for r in rows])
    a = np.array([r[1] for r in rows])
    b = np.array([r[2] for r in rows])
    share = GR.frame_vote(a, b, frame)
    frames = np.unique(frame)
    wins = [np.sign(b[frame == f].sum() - a[frame == f].sum()) for f in frames]
    assert share == pytest.approx(np.mean([(w + 1) / 2 for w in wins]))


@settings(deadline=None, max_examples=40)
@given(st.lists(st.integers(0, 30), min_size=1, max_size=200), st.integers(2, 6))
def test_folds_keep_a_cells_observations_together(cells, n_folds):
    cells = np.array(cells)
    fold = GR.target_folds(cells, n_folds)
    assert fold.min() >= 0 and fold.max() < n_folds
    for c in np.unique(cells):
        assert np.unique(fold[cells == c]).size == 1
    # cells are dealt round robin: fold sizes in cells differ by at most one
    per_cell = np.array([fold[cells == c][0] for c in np.unique(cells)])
    counts = np.bincount(per_cell, minlength=n_folds)
    assert counts.max() - counts.min() <= 1


def _cv_at_truth(**kw):
    ds, truth = make_recording(n_cells=(20, 10), n_frames=12, n_features=4, n_components=3,
                               balance=0.0, seed=5, **kw)
    est = LICCHIE(n_components=3, radius=float(ds.attrs["radius"]),
                  pooling_groups="class_time")
    prep = est._prepare(ds)
    C = truth["target_effect"].values.T
    R = truth["source_effect"].values.T
    return GR.grouping_cv(prep.problem.X, prep.problem.pairs, prep.recording.obs, C, R,
                          prep.problem.spaces)


def test_constant_class_profiles_prefer_one_profile_per_class():
    cv = _cv_at_truth(profile_time="constant", frame_scaling="constant")
    assert cv.prefers_coarse, cv


def test_profiles_that_move_every_frame_prefer_class_x_frame():
    cv = _cv_at_truth(profile_time="smooth", frame_scaling="per_frame")
    assert not cv.prefers_coarse, cv
