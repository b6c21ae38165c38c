"""Per-target gains in the exactly pooled reduced problem (issue 14).

The gain-weighted statistics and the per-target predictions are checked
against plain NumPy that builds every ``z_{i,g}`` by a loop over pairs; the
gain block against its closed form; the local solver never raises the
loss and finds planted gains; and the reduced loss with gains is the full
objective's limit with ``target_gain``.
"""
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import naive
from licchie import LICCHIE
from licchie import kernels as K
from licchie.fit import gains as FGN
from licchie.fit import global_start as FG
from licchie.fit import search as S
from licchie.fit import verdict as V
from licchie.fit import pooling as FP
from licchie.fit.pooling import gain_components
from licchie.kernels import pooled as KP
from licchie.synthetic import make_suite_recording

SETTINGS = dict(deadline=None, max_examples=30, suppress_health_check=[HealthCheck.too_slow])


def random_pairs(rng, nt, n_obs, d, G, max_pairs=5):
    X = rng.normal(size=(n_obs, d))
    X[rng.random(n_obs) < 0.2] = 0.0
    counts = rng.integers(1, max_pairs + 1, size=nt)
    ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    E = int(ptr[-1])
    return (X, rng.choice(n_obs, size=nt, replace=nt > n_obs).astype(np.int64), ptr,
            rng.integers(0, n_obs, E).astype(np.int64), rng.uniform(0.2, 1.5, E),
            rng.integers(0, G, E).astype(np.int64))


def explicit_z(X, tgt_ptr, src, gain, group, G):
    nt = tgt_ptr.shape[0] - 1
    Z = np.zeros((nt, G, X.shape[1]))
    for t in range(nt):
        for e in range(tgt_ptr[t], tgt_ptr[t + 1]):
            Z[t, group[e]] += gain[e] * X[src[e]]
    return Z


@st.composite
def problems(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    nt = draw(st.integers(1, 12))
    d = draw(st.integers(1, 4))
    J = draw(st.integers(1, 3))
    G = draw(st.integers(1, 5))
    nb = draw(st.integers(1, 3))
    arrays = random_pairs(rng, nt, nt + 3, d, G)
    block = rng.integers(0, nb, nt).astype(np.int64)
    return rng, arrays, G, J, block, nb


@settings(**SETTINGS)
@given(problems())
def test_gain_weighted_statistics_and_predictions_match_numpy(prob):
    rng, (X, tobs, ptr, src, gain, group), G, J, block, nb = prob
    data = S.PooledData.from_pairs(X, tobs, ptr, src, gain, group, G, block, nb,
                                   keep_rows=True)
    nt = ptr.shape[0] - 1
    d = X.shape[1]
    gamma = rng.normal(size=nt)
    Z0 = explicit_z(X, ptr, src, gain, group, G)
    Z = Z0 * gamma[:, None, None]
    Y = X[tobs]
    dg = FGN.with_gains(data, gamma)
    T = np.einsum("ta,tgb->gab", Y, Z)
    np.testing.assert_allclose(dg.T, T, atol=1e-10)
    for e, (g, h) in enumerate(zip(dg.co_g, dg.co_idx)):
        np.testing.assert_allclose(dg.S[e], np.einsum("ta,tb->ab", Z[:, g], Z[:, h]),
                                   atol=1e-10)
    # per-block parts (the bootstrap's resamples reweight them)
    w = rng.uniform(0, 2, nb)
    xx, Tw, _ = KP.combine(dg.agg, G, w)
    np.testing.assert_allclose(Tw, np.einsum("t,ta,tgb->gab", w[block], Y, Z), atol=1e-10)
    assert xx == pytest.approx(float(np.sum(w[block] * np.sum(Y * Y, axis=1))), abs=1e-10)

    Wbar = rng.normal(size=(G, J))
    C = rng.normal(size=(d, J))
    R = rng.normal(size=(d, J))
    P0 = np.einsum("aj,gj,bj,tgb->ta", C, Wbar, R, Z0)
    P = KP.predict_targets(data.agg["rows"], Wbar, C, R)
    np.testing.assert_allclose(P, P0, atol=1e-9)
    # the reduced loss at fixed gains is the gain-free one of the weighted statistics
    ref = float(np.sum((Y - gamma[:, None] * P) ** 2))
    assert S._Sweeper(dg).loss(Wbar, C, R) == pytest.approx(ref, rel=1e-9, abs=1e-9)
    assert FGN.gain_loss(data, Wbar, C, R, gamma) == pytest.approx(ref, rel=1e-9, abs=1e-9)


def test_gain_weighted_needs_rows():
    rng = np.random.default_rng(0)
    X, tobs, ptr, src, gain, group = random_pairs(rng, 5, 8, 3, 2)
    data = S.PooledData.from_pairs(X, tobs, ptr, src, gain, group, 2)
    with pytest.raises(ValueError, match="keep_rows"):
        FGN.with_gains(data, np.ones(5))


@settings(**SETTINGS)
@given(problems())
def test_gain_block_is_the_exact_minimiser_and_keeps_the_product(prob):
    rng, (X, tobs, ptr, src, gain, group), G, J, block, nb = prob
    data = S.PooledData.from_pairs(X, tobs, ptr, src, gain, group, G, keep_rows=True)
    nt = ptr.shape[0] - 1
    d = X.shape[1]
    tid = np.repeat(np.arange(nt), np.diff(ptr))
    comps = gain_components(group, tid, G)
    Wbar = rng.normal(size=(G, J))
    C = rng.normal(size=(d, J))
    R = rng.normal(size=(d, J))
    gamma, Wn, F = FGN.target_gains(data, Wbar, C, R, comps)
    # mean 1 in every component that has targets (mean |gain| 1 where the
    # gains cancel), product gamma_t Wbar[g] kept
    g_lab, t_lab, n = comps
    for c in np.unique(t_lab):
        gc = gamma[t_lab == c]
        assert (np.mean(gc) == pytest.approx(1.0, rel=1e-9) or np.allclose(gc, 0)
                or (np.mean(np.abs(gc)) == pytest.approx(1.0, rel=1e-9)
                    and abs(np.mean(gc)) < FP.GAIN_MEAN_FLOOR))
    assert F == pytest.approx(FGN.gain_loss(data, Wn, C, R, gamma), rel=1e-9, abs=1e-9)
    # no single gain can do better (1-D least squares per target)
    P = KP.predict_targets(data.agg["rows"], Wn, C, R)
    Y = data.agg["rows"]["Y"]
    for t in range(nt):
        for eps in (1e-3, -1e-3):
            g2 = gamma.copy()
            g2[t] += eps
            assert FGN.gain_loss(data, Wn, C, R, g2) >= F - 1e-9 * max(F, 1.0)
    assert np.all(np.isfinite(P)) and np.all(np.isfinite(Y))


@pytest.mark.parametrize("tiny", [0.0, 1e-13, 1e-3])
def test_normalised_gains_stay_bounded_where_a_components_gains_cancel(tiny):
    # component 0: gains of both signs with a mean near 0; component 1: ordinary
    g_lab = np.array([0, 0, 1])
    t_lab = np.array([0, 0, 0, 0, 1, 1])
    gamma = np.array([2.0, -2.0, 1.0, -1.0 + tiny, 3.0, 1.0])
    Wbar = np.array([[1.0, -2.0], [0.5, 0.0], [2.0, 1.0]])
    g, W = FP.normalise_gains(gamma, Wbar, (g_lab, t_lab, 2))
    # the products gamma_t Wbar[g] within each component are kept
    for c in (0, 1):
        np.testing.assert_allclose(np.outer(g[t_lab == c], W[g_lab == c]),
                                   np.outer(gamma[t_lab == c], Wbar[g_lab == c]), rtol=1e-12)
    # the cancelled component: mean |gain| 1 (dividing by its mean would give
    # gains of 1e13 for tiny = 1e-13); the ordinary one: mean 1
    assert np.mean(np.abs(g[:4])) == pytest.approx(1.0)
    assert np.mean(g[4:]) == pytest.approx(1.0)
    assert np.all(np.abs(g) <= 4.0)


def planted_gains(seed=0, n_targets=600, d=5, J=3, n_cls=3, noise=0.01):
    """Targets with pairs in 1-3 classes, class groups, log-normal gains."""
    rng = np.random.default_rng(seed)
    C = np.linalg.qr(rng.normal(size=(d, d)))[0][:, :J]
    R = np.linalg.qr(rng.normal(size=(d, d)))[0][:, :J]
    n_src = 3 * n_targets
    Xs = rng.normal(size=(n_src, d))
    counts = rng.integers(1, 4, n_targets)
    ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    E = int(ptr[-1])
    src = rng.integers(0, n_src, E)
    group = rng.integers(0, n_cls, E).astype(np.int64)
    tgt_of = np.repeat(np.arange(n_targets), counts)
    Wt = np.array([[1.0, 0.8, 0.0], [0.0, 1.0, -0.7], [0.9, 0.0, 1.0]])[:n_cls, :J]
    gam = np.exp(0.7 * rng.normal(size=n_targets))
    gam /= gam.mean()
    A = np.einsum("gj,aj,bj->gab", Wt, C, R)
    Y = np.zeros((n_targets, d))
    np.add.at(Y, tgt_of, gam[tgt_of, None] * np.einsum("eab,eb->ea", A[group], Xs[src]))
    Y += noise * rng.normal(size=Y.shape)
    X = np.vstack([Xs, Y])
    data = S.PooledData.from_pairs(X, n_src + np.arange(n_targets), ptr, src, np.ones(E),
                                   group, n_cls, keep_rows=True)
    return data, C, R, Wt, gam, gain_components(group, tgt_of, n_cls)


def test_gain_solver_never_raises_the_loss_and_finds_planted_gains():
    data, C, R, Wt, gam, comps = planted_gains()
    truth = FGN.gain_loss(data, Wt, C, R, gam)
    rng = np.random.default_rng(3)
    solver = FGN.GainSolver(data, comps)
    # from a perturbed truth: a local solve must reach the planted optimum
    C0 = C + 0.2 * rng.normal(size=C.shape)
    R0 = R + 0.2 * rng.normal(size=R.shape)
    Wb, C1, R1, F, _ = solver(None, C0, R0, 1000, 1e-12)
    assert F <= truth * (1 + 1e-6)
    sim, _ = S.motif_cos(C, R, C1, R1)
    assert sim.min() >= 0.999
    # a gain is a 1-D fit to one target's d numbers, so it carries that
    # target's noise: most are close, all correlate
    g = solver.gains(Wb, C1, R1)
    assert np.median(np.abs(g - gam) / gam) < 0.02
    assert np.corrcoef(g, gam)[0, 1] > 0.99
    # the returned loss is the loss of the returned solution and its gains
    assert F == pytest.approx(FGN.gain_loss(data, Wb, C1, R1, solver.gains(Wb, C1, R1)),
                              rel=1e-9)
    # without gains the same data are fitted worse
    no_gain = S.lbfgs(data, C0, R0, 1000)[3]
    assert no_gain > 10 * F


@pytest.mark.parametrize("prior", [0.0, None])
def test_joint_minimum_never_raises_the_loss_and_finds_planted_gains(prior):
    """Without the gains' prior the loss never rises; with the default prior
    it rises by at most the prior's value at the start's gains (the solve
    lowers loss + prior), and the planted motifs and gains are found."""
    data, C, R, Wt, gam, comps = planted_gains()
    truth = FGN.gain_loss(data, Wt, C, R, gam)
    rng = np.random.default_rng(3)
    C0 = C + 0.2 * rng.normal(size=C.shape)
    R0 = R + 0.2 * rng.normal(size=R.shape)
    C0, R0 = C0 / np.linalg.norm(C0, axis=0), R0 / np.linalg.norm(R0, axis=0)
    ones = np.ones(gam.size)
    # the start: exact profiles at gains 1, then each target's best gain
    W0, _ = S._Sweeper(data).profiles(C0, R0)
    start = FGN.target_gains(data, W0, C0, R0, comps)[2]
    rows = data.agg["rows"]
    P0 = KP.predict_targets(rows, W0, C0, R0)
    g0 = np.einsum("td,td->t", P0, rows["Y"]) / np.einsum("td,td->t", P0, P0)
    mu = (FGN.GAIN_PRIOR if prior is None else prior) * np.mean(
        np.einsum("td,td->t", rows["Y"], rows["Y"]))
    for max_eval in (1, 5, 3000):
        Wb, C1, R1, F, n, g = FGN.joint_minimum(data, comps, C0, R0, ones, max_eval=max_eval,
                                                prior=prior)
        assert n <= max_eval
        assert F <= (start + mu * np.sum((g0 - 1.0) ** 2)) * (1 + 1e-12)
        # the returned loss is that of the returned profiles, motifs and gains
        assert F == pytest.approx(FGN.gain_loss(data, Wb, C1, R1, g), rel=1e-9)
        np.testing.assert_allclose(np.linalg.norm(C1, axis=0), 1.0)
    assert F <= (truth + mu * np.sum((gam - 1.0) ** 2)) * (1 + 1e-6)
    assert S.motif_cos(C, R, C1, R1)[0].min() >= 0.999
    assert np.median(np.abs(g - gam) / gam) < 0.02


def test_refine_start_takes_a_fits_motifs_to_the_joint_minimum():
    """The refinement of a fit with gains starts the polish at the joint
    minimum nearest the fit's motifs, at that minimum's own gains."""
    data, C, R, Wt, gam, comps = planted_gains(seed=1)
    rng = np.random.default_rng(5)
    C0 = C + 0.15 * rng.normal(size=C.shape)
    R0 = R + 0.15 * rng.normal(size=R.shape)
    c = FGN.refine_start(data, comps, C0 / np.linalg.norm(C0, axis=0),
                         R0 / np.linalg.norm(R0, axis=0))
    assert c.gamma is not None and c.gamma.shape == gam.shape
    assert c.loss == pytest.approx(FGN.gain_loss(data, c.Wbar, c.C, c.R, c.gamma), rel=1e-9)
    assert c.loss <= FGN.gain_loss(data, Wt, C, R, gam) * (1 + 1e-6)
    assert S.motif_cos(C, R, c.C, c.R)[0].min() >= 0.999


def test_lbfgs_flat_minimises_a_quadratic():
    rng = np.random.default_rng(0)
    M = rng.normal(size=(30, 30))
    H = M @ M.T + 0.1 * np.eye(30)
    b = rng.normal(size=30)
    x, F, n = FGN.lbfgs_flat(lambda x: (0.5 * x @ H @ x - b @ x, H @ x - b), np.zeros(30),
                             5000, tol=1e-15)
    np.testing.assert_allclose(x, np.linalg.solve(H, b), rtol=1e-6, atol=1e-8)
    assert n < 5000


def test_search_with_gains_recovers_planted_truth():
    data, C, R, Wt, gam, comps = planted_gains(seed=1)
    res = S.search(data, 3, n_searches=2, n_starts=2, n_trials=4, time_budget=None, seed=1,
                   local=FGN.GainSolver(data, comps))
    assert res.loss <= FGN.gain_loss(data, Wt, C, R, gam) * (1 + 1e-6)
    sim, _ = S.motif_cos(C, R, res.C, res.R)
    assert sim.min() >= 0.99
    assert res.loss <= min(c.loss for c in res.candidates)


@pytest.mark.parametrize("both_starts", [False, True])
def test_gain_search_alternates_to_planted_truth_and_gains(both_starts):
    data, C, R, Wt, gam, comps = planted_gains(seed=2)
    res, gamma = FGN.gain_search(data, 3, comps, rounds=3, n_searches=2, n_starts=2,
                                 n_trials=3, time_budget=None, seed=4,
                                 both_starts=both_starts)
    sim, _ = S.motif_cos(C, R, res.C, res.R)
    assert sim.min() >= 0.99
    assert np.corrcoef(gamma, gam)[0, 1] > 0.99
    # the result is a search of the problem at the returned gains
    dg = FGN.with_gains(data, gamma)
    assert res.loss == pytest.approx(S._Sweeper(dg).loss(res.Wbar, res.C, res.R), rel=1e-8)
    assert res.loss <= min(c.loss for c in res.candidates)
    # at the planted gains the planted truth is (up to noise) the optimum
    assert res.loss <= FGN.gain_loss(data, Wt, C, R, gam) * 1.05
    # the winning round's joint minimum (a polish candidate) carries its own
    # gains, is scored at them, and is no worse than the round's best
    j = res.joint
    assert j is not None and j.gamma is not None and j.gamma is not gamma
    assert j.loss == pytest.approx(FGN.gain_loss(data, j.Wbar, j.C, j.R, j.gamma), rel=1e-8)
    # the joint solve lowers the loss plus its ridge on the pooled weights
    # from the round's best (exact profiles at the round's gains); the loss
    # alone at the returned gains can only be lower than that
    rows = data.agg["rows"]
    rho = FGN.GAIN_RIDGE * float(np.mean(np.sum(rows["Y"] ** 2, axis=1)))
    start = S._Sweeper(dg).profiles(res.C, res.R)[0]
    f = FGN.joint_loss(rows, *start.shape, 0.0, rho)
    assert j.loss <= f(np.concatenate([start.ravel(), res.C.ravel(), res.R.ravel()]))[0] * (
        1 + 1e-12)


@pytest.mark.parametrize("rho", [0.0, 0.05])
def test_joint_loss_is_the_kernel_with_its_gradient(rho):
    """The joint solve's function: its value is the gain-eliminated loss
    with the ridge at the raveled ``(Wbar, C, R)``, it rises with the ridge,
    and its gradient matches central differences."""
    data, C, R, Wt, _, _ = planted_gains(seed=1, n_targets=40)
    rows = data.agg["rows"]
    G, J = Wt.shape
    f = FGN.joint_loss(rows, G, J, 0.0, rho)
    rng = np.random.default_rng(0)
    W = Wt + 0.3 * rng.normal(size=Wt.shape)
    Cs, Rs = C * [2.0, 0.5, 3.0], R * [0.7, 4.0, 1.5]
    x = np.concatenate([W.ravel(), Cs.ravel(), Rs.ravel()])
    F, g = f(x)
    F_ref = naive.gain_eliminated_loss(rows["Y"], rows["Z"], rows["tg_ptr"], rows["tg_group"],
                                       W, Cs, Rs, 0.0, rho)[0]
    assert F == pytest.approx(F_ref, rel=1e-11)
    if rho > 0:
        assert F > FGN.joint_loss(rows, G, J, 0.0, 0.0)(x)[0]
    D = rng.normal(size=x.shape)
    h = 1e-6
    fd = (f(x + h * D)[0] - f(x - h * D)[0]) / (2 * h)
    assert fd == pytest.approx(g @ D, rel=1e-5, abs=1e-8)


def test_polish_candidates_with_gains_lead_with_the_joint_minimum():
    """With target gains the minima to polish start with the gain search's
    joint minimum (at its own gains), then the search's candidates."""
    data, *_, comps = planted_gains(seed=2)
    opts = dict(n_searches=2, search_time=300.0, search_patience=20, search_evals=3000,
                polish_screen=3)
    res, _, cands, seeds, _, gamma = FG.searched_candidates(
        data, np.arange(data.n_groups, dtype=np.int64), 3, opts,
        np.random.SeedSequence(0), False, 2, gain_components=comps)
    assert cands[0] is res.joint and cands[0].gamma is not None
    assert cands[1:] == res.candidates[:3] and len(seeds) == len(cands)
    assert all(c.gamma is None for c in cands[1:])  # polished at the search's gains


# a small instance of a regime with per-target gains
SMALL = dict(n_cells=(12, 6), n_frames=20, n_features=5, n_components=3)


@pytest.fixture(scope="module")
def gained():
    return make_suite_recording("shared_gains", 0, **SMALL)


@pytest.mark.parametrize("groups", ["class", "class_time"])
def test_reduced_loss_with_gains_is_the_full_objectives_limit(gained, groups):
    """At ``A_e = B_e`` and ``W[e] = gamma_t(e) Wbar[g(e)]`` the full objective
    with ``target_gain`` has the reduced loss with gains as its fidelity term,
    and its low-rank and pooling terms vanish."""
    ds, _ = gained
    m = LICCHIE(n_components=3, radius=float(ds.attrs["radius"]), pooling_groups=groups,
                lambdas=(10.0, 0.0, 0.0, 0.0, 10.0), target_gain=True)
    prep = m._prepare(ds)
    problem, obs = prep.problem, prep.recording.obs
    assert problem.target_gain
    data, _ = FG.reduced_data(problem, obs)
    rng = np.random.default_rng(1)
    G, d = problem.pairs.n_groups, problem.X.shape[1]
    C = S._random_unit(rng, d, 3)
    R = S._random_unit(rng, d, 3)
    gamma, Wbar, F = FGN.target_gains(data, rng.normal(size=(G, 3)), C, R,
                                      problem.gain_components)
    W = np.ascontiguousarray(gamma[problem.pair_target, None] * Wbar[problem.pairs.group])
    A = K.lowrank_reconstruct(W, C, R)
    terms = problem.objective(A, W, C, R, Wbar, gamma)
    assert terms[0] == pytest.approx(F, rel=1e-9)
    assert S._Sweeper(FGN.with_gains(data, gamma)).loss(Wbar, C, R) == pytest.approx(
        F, rel=1e-9)
    assert terms[1] == pytest.approx(0.0, abs=1e-9 * terms[0])
    assert terms[5] == pytest.approx(0.0, abs=1e-9 * terms[0])


def test_fit_with_target_gain_starts_from_the_gain_search(gained):
    ds, truth = gained
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = LICCHIE(n_components=3, radius=float(ds.attrs["radius"]), target_gain=True,
                    random_state=0, n_init=2, max_iter=10,
                    solver_options=dict(search_evals=3000)).fit(ds)
    assert np.all(np.isfinite(m.components_["stability"].values))
    # the verdict of a fit with gains stops at "medium" (global_start.final_verdict)
    assert "high" not in set(m.components_["verdict"].values)


def test_fit_with_target_gain_does_not_depend_on_n_jobs(gained):
    """With 2 jobs the polishes run side by side and the verdict's diagnosis
    beside the serial refinement; the fit is the 1-job fit bit for bit."""
    import numba
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("one core: n_jobs=2 is n_jobs=1 here, nothing to compare")
    ds, _ = gained
    kw = dict(n_components=3, radius=float(ds.attrs["radius"]), target_gain=True,
              random_state=0, n_init=2, max_iter=10, solver_options=dict(search_evals=3000))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        one, two = (LICCHIE(n_jobs=n, **kw).fit(ds) for n in (1, 2))
    np.testing.assert_array_equal(one.objective_history_.values, two.objective_history_.values)
    np.testing.assert_array_equal(one.weights_.values, two.weights_.values)
    for k in ("target_effect", "source_effect", "stability"):
        np.testing.assert_array_equal(one.components_[k].values, two.components_[k].values)


@pytest.mark.parametrize("target_gain", [False, True])
def test_verdict_with_target_gains_stops_at_medium(target_gain):
    """A motif the search's diagnosis scores >= 0.9 is "high" without gains and
    "medium", with the reason, with them; the score itself is kept."""
    rng = np.random.default_rng(0)
    C, R = S._random_unit(rng, 4, 2), S._random_unit(rng, 4, 2)
    res = S.SearchResult(np.ones((3, 2)), C, R, 1.0, [], [], [], 0.0, 0)
    one = np.ones(2)
    dg = V.Diagnosis(np.array([0.97, 0.5]), ["high", "low"], ["determined", "gap"], one, one,
                     one, one, np.full(2, np.inf), one, 3, 1)
    info = FG.GlobalStart(res, dg, None, target_gain=target_gain)
    score, verdict, reason = FG.final_verdict(C, R, info)
    np.testing.assert_allclose(score, [0.97, 0.5])
    assert verdict[1] == "low" and reason[1] == "gap"
    if target_gain:
        assert verdict[0] == "medium" and "target_gain=True" in reason[0]
    else:
        assert verdict[0] == "high" and reason[0] == "determined"
