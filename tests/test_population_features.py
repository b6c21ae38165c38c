"""Populations with different feature sets (MODEL.md "Populations", paper A.2)
through the estimator: the objective, a planted truth, labels, errors."""
import warnings

import numpy as np
import pytest

import licchie
from licchie import fit as F
from licchie.fit.diagnostics import motif_agreement
from licchie.fit.spaces import motif_agreement as space_agreement
from licchie.synthetic.spaces import make_space_recording


@pytest.fixture(scope="module")
def planted():
    return make_space_recording(0, n_cells=(25, 25), n_times=40, noise_sd=0.02)


@pytest.fixture(scope="module")
def fitted(planted):
    ds, _ = planted
    m = licchie.LICCHIE(n_components=2, radius=1.5, n_init=2, max_iter=30, random_state=0,
                        solver_options={"record_steps": True})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.fit(ds)
    return m


def _truth_factors(problem, obs, truth):
    """The planted effects in the fit's space order, and each pair's class profile."""
    sp = problem.spaces
    names = list(obs.population_names)
    k_of = {n: k for k, n in enumerate(["A", "B"])}
    J = truth["C"].shape[2]
    C = np.zeros((sp.n_spaces,) + truth["C"].shape[1:])
    R = np.zeros_like(C)
    for n in ("A", "B"):
        s = sp.population_space[names.index(n)]
        C[s], R[s] = truth["C"][k_of[n]], truth["R"][k_of[n]]
    p = problem.pairs
    pop = np.asarray(names)[obs.population]
    W = np.array([truth["profile"][(k_of[a], k_of[b], bool(s))]
                  for a, b, s in zip(pop[p.tgt], pop[p.src], p.is_self)]).reshape(-1, J)
    return W, C, R


def test_objective_never_increases_with_masks(fitted):
    h = fitted.objective_history_.sel(term="total").values
    assert len(h) > 10
    assert np.all(np.diff(h) <= 1e-12 * np.abs(h[:-1]))


@pytest.mark.parametrize("lambdas", [{"pooling": 0.0, "smoothness": 0.1, "l1_A": 0.01},
                                     {"l1_W": 0.01}])
def test_objective_never_increases_3d(lambdas):
    """3-D positions, PARAFAC starts with smoothness and L1 on A, and the
    pooled default: every recorded step is non-increasing and the blocks stay
    exact (the fitted interaction matrices are NaN exactly off them)."""
    ds, truth = make_space_recording(2, n_cells=(8, 8), n_times=12, n_dims=3, radius=2.5)
    m = licchie.LICCHIE(n_components=2, radius=2.5, n_init=2, max_iter=15, random_state=0,
                        lambdas=lambdas, solver_options={"record_steps": True,
                                                         "search_evals": 800})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.fit(ds)
    h = m.objective_history_.sel(term="total").values
    assert np.all(np.diff(h) <= 1e-12 * np.abs(h[:-1]))
    assert m.weights_.sizes["pair"] > 0


def test_planted_effects_are_a_minimum_the_fit_returns_to(planted):
    """From the planted truth with its effects perturbed, the alternation
    returns to the planted per-population effects (the masked steps are
    right), at a lower objective than the PARAFAC start reaches."""
    ds, truth = planted
    est = licchie.LICCHIE(n_components=2, radius=1.5)
    prep = est._prepare(ds)
    problem, obs = prep.problem, prep.recording.obs
    assert problem.spaces is not None and problem.spaces.n_spaces == 2
    W, C, R = _truth_factors(problem, obs, truth)
    rng = np.random.default_rng(1)
    mask = problem.spaces.features[:, :, None]
    W0, C0, R0 = problem.spaces.unit(W, C + 0.3 * rng.normal(size=C.shape) * mask,
                                     R + 0.3 * rng.normal(size=R.shape) * mask)
    res = F.run_start(problem, None, 2, 0, 200, 1e-9, init="given", factors=(W0, C0, R0),
                      keep_A=False)
    for s in range(2):
        cos_c = np.abs(np.sum(res.C[s] * C[s], axis=0))
        cos_r = np.abs(np.sum(res.R[s] * R[s], axis=0))
        assert np.all(cos_c > 0.95) and np.all(cos_r > 0.95), (s, cos_c, cos_r)
    sim0, _ = motif_agreement(problem.spaces.flat(C), problem.spaces.flat(R),
                              problem.spaces.flat(C0), problem.spaces.flat(R0))
    sim, _ = motif_agreement(problem.spaces.flat(C), problem.spaces.flat(R),
                             problem.spaces.flat(res.C), problem.spaces.flat(res.R))
    assert np.all(sim > sim0)
    A_init = F.initial_interactions(problem)
    pf = F.run_start(problem, A_init, 2, 0, 200, 1e-9, keep_A=False)
    assert res.objective < pf.objective


def test_default_fit_recovers_planted_effects(planted):
    """The default (pooled) fit, from the reduced multi-start search with
    per-population effects, finds the planted effects of both populations."""
    ds, truth = planted
    m = licchie.LICCHIE(n_components=2, radius=1.5, n_init=2, random_state=0,
                        solver_options={"search_evals": 2000, "search_time": 600.0})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.fit(ds)
    for k, pop in enumerate(["A", "B"]):
        h = truth["features"][k]
        for name, F_ in (("C", m.target_effect_), ("R", m.source_effect_)):
            got = F_.sel(population=pop).values[:, h]  # (component, m_p)
            cos = np.abs(got @ truth[name][k][h])      # (fitted, true)
            assert np.all(cos.max(axis=0) > 0.95), (pop, name, cos)
    # the reduced multi-start's verdict (tests/test_spaces_verdict.py), not the
    # agreement of starts
    assert m.stability_.attrs["method"] == "reduced multi-start"
    assert not m.components_["verdict_reason"].values[0].startswith("agreement of")


def test_search_starts_on_workers_equal_the_serial_ones(planted):
    """The reduced multi-start runs its starts in chunks on worker processes
    when the fit has threads; the starts are drawn first, so the candidates
    and the polished fits are the serial ones bit for bit."""
    import numba
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("one core: the fit has no worker processes to compare with")
    ds, _ = planted
    m = licchie.LICCHIE(n_components=2, radius=1.5, n_init=2, max_iter=5, random_state=0)
    m._fitting_groups = m.pooling_groups
    prep = m._prepare(ds)
    opts = dict(search_evals=2400, search_time=600.0, extrapolate=True, record_steps=False)

    def starts(n_jobs):
        with F.numba_threads(n_jobs):
            return F.spaces_search_starts(prep.problem, prep.recording.obs, 2,
                                          np.random.SeedSequence(3), 2, 5, 1e-6, opts)[0]

    serial, parallel = starts(1), starts(2)
    assert len(serial) == len(parallel) == 2
    for a, b in zip(serial, parallel):
        assert a.objective == b.objective
        np.testing.assert_array_equal(a.C, b.C)
        np.testing.assert_array_equal(a.W, b.W)


def test_space_agreement_ignores_per_space_signs():
    rng = np.random.default_rng(0)
    C = rng.normal(size=(2, 4, 3))
    C /= np.linalg.norm(C, axis=1, keepdims=True)
    R = rng.normal(size=(2, 4, 3))
    R /= np.linalg.norm(R, axis=1, keepdims=True)
    C2, R2 = C.copy(), R.copy()
    C2[1], R2[1] = -C[1], -R[1]  # a sign flip of space 1 (absorbed by the weights)
    sim, match = space_agreement(C, R, C2[:, :, ::-1], R2[:, :, ::-1])
    np.testing.assert_allclose(sim, 1.0)
    np.testing.assert_array_equal(match, [2, 1, 0])
    flat = motif_agreement(C.reshape(8, 3), R.reshape(8, 3), C2.reshape(8, 3),
                           R2.reshape(8, 3))[0]
    assert np.all(flat < 1.0 - 1e-6)  # the flattened comparison would see a change


def test_effects_are_labeled_per_population(fitted, planted):
    ds, truth = planted
    C = fitted.target_effect_
    assert C.dims == ("population", "component", "feature")
    has = {"A": truth["features"][0], "B": truth["features"][1]}
    for pop, h in has.items():
        vals = C.sel(population=pop).values
        assert np.all(np.isfinite(vals[:, h])) and np.all(np.isnan(vals[:, ~h]))
        np.testing.assert_allclose(np.linalg.norm(vals[:, h], axis=1), 1.0, rtol=1e-10)
    M = fitted.motifs()
    assert M.dims == ("component", "target_population", "source_population",
                      "target_feature", "source_feature")
    m = M.sel(component=0, target_population="B", source_population="A").values
    np.testing.assert_allclose(
        m, np.outer(C.sel(population="B", component=0), fitted.source_effect_.sel(
            population="A", component=0)))


def test_interaction_matrices_and_predict(fitted, planted):
    ds, truth = planted
    A = fitted.interaction_matrices(slice(0, 200))
    tp = A["target_population"].values
    sp = A["source_population"].values
    has = {"A": truth["features"][0], "B": truth["features"][1]}
    for e in range(A.sizes["pair"]):
        blk = np.outer(has[tp[e]], has[sp[e]])
        assert np.all(np.isfinite(A.values[e][blk])) and np.all(np.isnan(A.values[e][~blk]))
    # predict: one target by hand from its pairs' matrices
    pred = fitted.predict(ds)
    W = fitted.weights_
    e0 = 0
    tgt, t = W["target"].values[e0], W["time"].values[e0]
    sel = np.flatnonzero((W["target"].values == tgt) & (W["time"].values == t))
    Ae = np.nan_to_num(fitted.interaction_matrices(sel).values)
    X = ds["features"].sel(time=t - 1).fillna(0.0)
    want = sum(Ae[i] @ X.sel(cell=W["source"].values[s]).values for i, s in enumerate(sel))
    got = pred.sel(cell=tgt, time=t).values
    h = has[str(ds["population"].sel(cell=tgt).values)]
    np.testing.assert_allclose(got[h], want[h], rtol=1e-10, atol=1e-12)
    assert np.all(np.isnan(got[~h]))


def test_population_without_features_is_an_error(planted):
    ds, _ = planted
    F_ = ds["features"].values.copy()
    pops = ds["population"].values.copy()
    pops[:3] = "C"
    F_[:3] = np.nan  # population C: positions only
    bad = ds.assign(features=(ds["features"].dims, F_)).assign_coords(
        population=("cell", pops))
    with pytest.raises(ValueError, match=r"\['C'\] have no finite feature.*at least one"):
        licchie.LICCHIE(n_components=2, radius=1.5).fit(bad)


def test_auto_gains_are_not_refitted_with_feature_spaces(fitted):
    # target_gain="auto" warns instead of fitting gains it cannot fit here
    assert fitted.target_gain_ is False
    assert "different feature sets" in fitted._gain_refit_blocker(None)


def test_unsupported_settings_are_errors(planted):
    ds, _ = planted
    for init in ("groups", "classes"):
        with pytest.raises(NotImplementedError, match=f"init='{init}'.*different feature sets"
                                                      ".*init='auto', 'search' or 'parafac'"):
            licchie.LICCHIE(n_components=2, radius=1.5, init=init).fit(ds)
    with pytest.raises(NotImplementedError, match="target_gain=True.*different feature sets"):
        licchie.LICCHIE(n_components=2, radius=1.5, target_gain=True).fit(ds)
    with pytest.raises(NotImplementedError, match="class_restarts"):
        licchie.LICCHIE(n_components=2, radius=1.5,
                        solver_options={"class_restarts": 1}).fit(ds)
    # population B has 2 features: its B <- B block has 4 entries, A <- A 9
    with pytest.raises(ValueError, match=r"n_components=10 .* largest block.*9 entries"):
        licchie.LICCHIE(n_components=10, radius=1.5).fit(ds)


def test_populations_with_one_feature_set_share_their_effects(planted):
    """Two populations with the same features (like CD4 and CD8 T cells) form
    one feature space: the same effects, labeled for each."""
    ds, _ = planted
    pops = ds["population"].values.astype(object)
    pops[(pops == "A") & (ds["cell"].values % 2 == 0)] = "A2"
    three = ds.assign_coords(population=("cell", pops.astype(str)))
    m = licchie.LICCHIE(n_components=2, radius=1.5, n_init=1, max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.fit(three)
    C = m.target_effect_
    np.testing.assert_array_equal(C.sel(population="A").values, C.sel(population="A2").values)
    assert not np.array_equal(np.isnan(C.sel(population="A").values),
                              np.isnan(C.sel(population="B").values))
    # new data must carry each population's features
    gone = three.copy(deep=True)
    is_b = gone["population"].values == "B"
    gone["features"].loc[dict(feature="f1", cell=gone["cell"].values[is_b])] = np.nan
    with pytest.raises(ValueError, match=r"Population 'B' has no values for feature\(s\) "
                                         r"\['f1'\]"):
        m.predict(gone)


def test_reduced_loss_and_gradient_with_spaces(planted):
    """The reduced loss with per-space effects equals the exactly pooled
    fidelity computed pair by pair, and its gradient matches finite differences."""
    from licchie.fit.global_start import reduced_data
    from licchie.fit.spaces_search import SpacesReduced

    ds, _ = planted
    prep = licchie.LICCHIE(n_components=2, radius=1.5)._prepare(ds)
    problem, obs = prep.problem, prep.recording.obs
    sp, p = problem.spaces, problem.pairs
    data, _ = reduced_data(problem, obs)
    group_class = np.zeros(p.n_groups, np.int64)
    group_class[p.group] = sp.pair_class
    red = SpacesReduced(data, group_class, sp.class_space, sp.features)
    rng = np.random.default_rng(3)
    mask = sp.features[:, :, None]
    C = rng.normal(size=(2, problem.X.shape[1], 2)) * mask
    R = rng.normal(size=C.shape) * mask
    F0, gC, gR, Wbar = red.value_grad(C, R)
    pred = sp.predict(problem.X, p.tgt_ptr, p.src, np.ascontiguousarray(Wbar[p.group]),
                      p.gain, C, R)
    ref = float(np.sum((problem.X[p.tgt_obs] - pred) ** 2))
    np.testing.assert_allclose(F0, ref, rtol=1e-8)
    assert np.all(gC[~np.broadcast_to(mask, gC.shape)] == 0.0)
    eps = 1e-6
    for idx in [(0, int(np.flatnonzero(sp.features[0])[0]), 0),
                (1, int(np.flatnonzero(sp.features[1])[-1]), 1)]:
        for which, g in (("C", gC), ("R", gR)):
            num = []
            for sgn in (1, -1):
                C2, R2 = C.copy(), R.copy()
                (C2 if which == "C" else R2)[idx] += sgn * eps
                num.append(red.value_grad(C2, R2)[0])
            np.testing.assert_allclose((num[0] - num[1]) / (2 * eps), g[idx], rtol=1e-4,
                                       atol=1e-6 * abs(F0))


def test_save_load_round_trip(fitted, planted, tmp_path):
    ds, _ = planted
    path = tmp_path / "m.nc"
    fitted.save(path)
    back = licchie.load(path)
    assert back.target_effect_.dims == ("population", "component", "feature")
    np.testing.assert_array_equal(back.target_effect_.values, fitted.target_effect_.values)
    np.testing.assert_array_equal(back.predict(ds).values, fitted.predict(ds).values)
    assert back.summary() == fitted.summary()


def _shared_well():
    import os
    from pathlib import Path
    env = os.environ.get("LICCHIE_SHARED_DATA")
    root = Path(env) if env else Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
    return root / "behav3d_coculture_well0"


WELL = _shared_well()


@pytest.mark.skipif(not WELL.is_dir(), reason=(
    f"the shared BEHAV3D recording ({WELL}) is not here; CI has ../shared/data next to the "
    "clone, or set LICCHIE_SHARED_DATA"))
def test_behav3d_with_tcell_speed():
    """The real well's first frames with T-cell speed and displacement, which
    the organoids lack (studies/behav3d_popfeat.py runs the whole well)."""
    import pandas as pd
    from licchie.io import read_imaris

    tables = []
    for kind in ("tcells", "organoids"):
        for f in sorted((WELL / kind).iterdir()):
            pop = {"CD4green": "CD4", "CD8blue": "CD8", "organoids": "organoid"}[
                f.name.split("_10k_")[1].split("_")[0]]
            tables.append(read_imaris(str(f), population=pop))
    t = pd.concat(tables, ignore_index=True)
    t = t[t["frame"] <= 12].copy()
    t["cell"] = np.where(t["track"].isna(), "o" + t["id"].astype(str),
                         t["population"] + "-" + t["track"].astype(str))
    feats = ["Sphericity", "Ellipticity (oblate)", "Speed", "Displacement Length"]
    org = t["population"] == "organoid"
    t.loc[org, ["Speed", "Displacement Length"]] = np.nan
    g = t.groupby("population")[feats]
    t[feats] = (t[feats] - g.transform("mean")) / g.transform("std")
    rec = licchie.Recording.from_table(t, cell="cell", frame="frame",
                                       position=("x", "y", "z"), features=feats)
    m = licchie.LICCHIE(n_components=2, radius=30.0, n_init=2, max_iter=10, random_state=0,
                        solver_options={"search_evals": 800})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.fit(rec)
    C = m.target_effect_
    assert np.isfinite(C.sel(population="CD8", feature="Speed")).all()
    assert np.isnan(C.sel(population="organoid", feature="Speed")).all()
    np.testing.assert_array_equal(C.sel(population="CD4").values, C.sel(population="CD8").values)
    pred = m.predict(rec)  # one row per predicted observation
    pop_of = t.drop_duplicates("cell").set_index("cell")["population"]
    is_org = pred["cell"].map(pop_of).values == "organoid"
    assert is_org.any() and (~is_org).any()
    assert pred.loc[is_org, "Speed"].isna().all()
    assert pred.loc[~is_org, "Speed"].notna().all()
    assert 0.0 < m.in_sample_r2_ < 1.0
