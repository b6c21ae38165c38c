"""The class-structured start (``init="classes"``, :mod:`licchie.fit.classes`).

Step 3 lives in :mod:`licchie.fit.class_rrr`.

Each step is checked against plain NumPy written from its definition:
the class sums against a loop over pairs, the nuclear-norm step against its
optimality (a proximal-gradient fixed point, and lower than nearby points of
the convex objective), the reduced-rank regression against a direct
evaluation of its fit and its monotone decrease, and the per-class CP against
exact rank-one structure.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from licchie import LICCHIE
from licchie.fit import class_rrr as RRR, classes as CI
from licchie.fit import motif_agreement
from licchie.synthetic import make_recording

SETTINGS = dict(deadline=None, max_examples=25,
                suppress_health_check=[HealthCheck.too_slow])


def _raw(rng, nt=None, d=None, G=None):
    nt = nt or int(rng.integers(3, 12))
    d = d or int(rng.integers(1, 4))
    G = G or int(rng.integers(1, 4))
    counts = rng.integers(1, 4, size=nt)
    pair_target = np.repeat(np.arange(nt), counts)
    E = pair_target.size
    pair_class = rng.integers(0, G, size=E).astype(np.int64)
    Z = rng.normal(size=(E, d))
    Y = rng.normal(size=(nt, d))
    kappa = rng.uniform(0.1, 1.0, size=nt)
    frame = rng.integers(0, 3, size=nt).astype(np.int64)
    return Z, Y, kappa, pair_target, frame, pair_class, G


@settings(**SETTINGS)
@given(st.integers(0, 2**32 - 1), st.booleans())
def test_class_data_matches_loops(seed, boot):
    rng = np.random.default_rng(seed)
    Z, Y, kappa, pt, frame, pc, G = _raw(rng)
    weights = rng.integers(0, 3, size=Y.shape[0]).astype(float) if boot else None
    cd = CI.class_data(Z, Y, kappa, pt, frame, pc, G, weights)
    nt, d = Y.shape
    # targets in frame order, frames as contiguous segments
    assert np.all(np.diff(frame[cd.order]) >= 0)
    for f, (a, b) in enumerate(cd.segments()):
        assert b > a and np.all(frame[cd.order[a:b]] == frame[cd.order[a]])
        assert np.all(cd.frame[a:b] == f)
    zbar = np.zeros((nt, G, d))
    npairs = np.zeros((nt, G))
    for e in range(Z.shape[0]):
        zbar[pt[e], pc[e]] += Z[e]
        npairs[pt[e], pc[e]] += 1
    np.testing.assert_allclose(cd.zbar, zbar[cd.order], atol=1e-12)
    np.testing.assert_array_equal(cd.npairs, npairs[cd.order])
    np.testing.assert_array_equal(cd.y, Y[cd.order])
    w = kappa * (1.0 if weights is None else weights)
    np.testing.assert_allclose(cd.w, w[cd.order])
    assert np.all(cd.order[cd.pair_pos] == pt)


def _loss(cd, gain, B):
    """The smooth part of step 1, straight from its definition."""
    out = 0.0
    for s in range(cd.y.shape[0]):
        f = cd.frame[s]
        p = sum(B[f, g] @ cd.zbar[s, g] for g in range(cd.n_classes))
        r = cd.y[s] - gain[s] * p
        out += cd.w[s] * r @ r
    return out


def _nuclear(B):
    return sum(np.linalg.svd(CI._unfold(B, g), compute_uv=False).sum()
               for g in range(B.shape[1]))


@settings(**SETTINGS)
@given(st.integers(0, 2**32 - 1))
def test_class_matrices_is_the_convex_minimiser(seed):
    rng = np.random.default_rng(seed)
    cd = CI.class_data(*_raw(rng))
    gain = rng.uniform(0.5, 1.5, size=cd.y.shape[0])
    B, mu = CI.class_matrices(cd, gain, mu_rel=0.2, n_iter=3000)
    obj = _loss(cd, gain, B) + mu * _nuclear(B)
    # lower than nearby points and than B = 0 (the objective is convex, so a
    # point that beats its neighbourhood is the minimiser)
    assert obj <= _loss(cd, gain, np.zeros_like(B)) + 1e-9
    scale = max(np.abs(B).max(), 1e-3)
    for _ in range(10):
        D = rng.normal(size=B.shape) * 1e-3 * scale
        other = B + D
        assert obj <= _loss(cd, gain, other) + mu * _nuclear(other) + 1e-8 * max(obj, 1.0)


def test_class_matrices_zero_above_mu_max():
    rng = np.random.default_rng(3)
    cd = CI.class_data(*_raw(rng, nt=10, d=3, G=2))
    B, mu = CI.class_matrices(cd, np.ones(10), mu_rel=1.0, n_iter=50)
    assert mu > 0
    assert np.all(B == 0)
    # and just below mu_max the solution is not zero
    B, _ = CI.class_matrices(cd, np.ones(10), mu_rel=0.5, n_iter=50)
    assert np.any(B != 0)


def _rrr_fit_direct(cd, slots, A, R, gain):
    out = 0.0
    for s in range(cd.y.shape[0]):
        f = cd.frame[s]
        p = np.zeros(cd.y.shape[1])
        for j in range(slots.cls.size):
            for k in range(slots.cls.size):
                p += slots.U[:, j] * A[f, j, k] * (R[:, k] @ cd.zbar[s, slots.cls[k]])
        r = cd.y[s] - gain[s] * p
        out += cd.w[s] * r @ r
    return out


@settings(**SETTINGS)
@given(st.integers(0, 2**32 - 1), st.booleans(), st.sampled_from([0.001, 10.0, 1e6]))
def test_rrr_fit_reports_its_fit_and_descends(seed, fit_gain, lam4):
    rng = np.random.default_rng(seed)
    cd = CI.class_data(*_raw(rng, d=3, G=2))
    counts = [int(v) for v in rng.integers(0, 3, size=2)]
    if sum(counts) == 0:
        counts[0] = 1
    bases = [np.linalg.qr(rng.normal(size=(3, 3)))[0] for _ in range(2)]
    slots = RRR.Slots.from_counts(bases, counts)
    J = slots.cls.size
    R0 = rng.normal(size=(3, J))
    gain = rng.uniform(0.5, 1.5, size=cd.y.shape[0])
    A, R, g, fit = RRR.rrr_fit(cd, slots, R0, gain, fit_gain, lam4, n_iter=3, tol=0)
    # whatever the L1 threshold does to the gains, the state returned is finite
    assert np.all(np.isfinite(A)) and np.all(np.isfinite(R)) and np.all(np.isfinite(g))
    if not np.isfinite(fit):
        return
    # A is zero off each class's block, R has unit columns
    assert np.all(A[:, slots.cls[:, None] != slots.cls[None, :]] == 0)
    n = np.linalg.norm(R, axis=0)  # unit, or 0 for a slot whose sources carry nothing
    assert np.all((np.abs(n - 1) < 1e-9) | (n == 0))
    assert fit == pytest.approx(_rrr_fit_direct(cd, slots, A, R, g), rel=1e-8, abs=1e-10)
    if not fit_gain:
        # exact block updates of the fit plus a ridge of 1e-6 of the mean Gram
        # diagonal: the fit alone can rise by that order (seed 4062: 1.1e-9 on
        # 0.33), never by more
        fits = [RRR.rrr_fit(cd, slots, R0, gain, False, 0.0, n_iter=n, tol=0)[3]
                for n in range(1, 6)]
        assert np.all(np.diff(fits) <= 1e-6 * max(fits[0], 1.0))


def test_class_motifs_recovers_exact_rank_one_blocks():
    rng = np.random.default_rng(0)
    d, F = 5, 12
    U = np.linalg.qr(rng.normal(size=(d, d)))[0][:, :3]
    Rb = np.linalg.qr(rng.normal(size=(d, d)))[0][:, :3]
    slots = RRR.Slots(np.array([0, 0, 1]), U)
    # class 0: two motifs with different time courses; class 1: one
    b = rng.normal(size=(2, 2))
    c = rng.normal(size=(2, 2))
    course = rng.uniform(0.5, 2.0, size=(F, 3))
    A = np.zeros((F, 3, 3))
    A[:, :2, :2] = np.einsum("fk,ik,jk->fij", course[:, :2], b, c)
    A[:, 2, 2] = course[:, 2]
    C, R, tc = CI.class_motifs(A, Rb, slots, seed=0)
    Ct = np.column_stack([U[:, :2] @ b, U[:, 2]])
    Rt = np.column_stack([Rb[:, :2] @ c, Rb[:, 2]])
    Ct /= np.linalg.norm(Ct, axis=0)
    Rt /= np.linalg.norm(Rt, axis=0)
    sim, _ = motif_agreement(Ct, Rt, C, R)
    assert sim.min() > 0.999
    # the time courses rebuild every frame's block
    rebuilt = np.einsum("fj,ij,kj->fik", tc, C, R)
    truth = np.einsum("ij,fjk,lk->fil", U, A, Rb)
    np.testing.assert_allclose(rebuilt, truth, atol=1e-6 * np.abs(truth).max())


def test_classes_start_fit_is_monotone_and_reproducible():
    ds, _ = make_recording(n_cells=(8, 5), n_frames=8, n_features=4, n_components=3,
                           seed=1, noise=0.01)
    kw = dict(n_components=3, radius=10.0, n_neighbors=4, lambdas=(10.0, 0.0, 0.0, 0.001, 10.0),
              pooling_groups="class_time", pooling_window=1, init="classes", n_init=2,
              max_iter=15, random_state=4, verbose=0, target_gain=True)
    with pytest.warns(UserWarning):
        m1 = LICCHIE(**kw).fit(ds)
    with pytest.warns(UserWarning):
        m2 = LICCHIE(**kw).fit(ds)
    h = m1.objective_history_
    total = h["objective"].values if "objective" in h else h.sum("term").values
    assert np.all(np.diff(total) <= 1e-9 * np.abs(total[:-1]))
    np.testing.assert_array_equal(m1.components_["target_effect"].values,
                                  m2.components_["target_effect"].values)
    assert np.isfinite(m1.stability_.attrs["mean"])


def test_bad_init_names_classes():
    ds, _ = make_recording(n_cells=(4, 3), n_frames=4, n_features=3, n_components=2, seed=0)
    with pytest.raises(ValueError, match="'classes'"):
        LICCHIE(n_components=2, init="class", verbose=0).fit(ds)
