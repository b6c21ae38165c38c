"""The estimator: labels, reproducibility, errors, files, prediction, CLI."""
import os
import warnings

import numba
import numpy as np
import pytest
import xarray as xr

import licchie
from licchie import LICCHIE
from licchie.fit.frozen import FINAL_STAGE
from licchie.synthetic import make_recording

SMALL = dict(n_cells=(6, 4), n_frames=8, n_features=3, n_components=2)


@pytest.fixture(scope="module")
def small():
    ds, truth = make_recording(**SMALL, seed=3)
    return ds, truth


def _model(**kw):
    p = dict(n_components=2, radius=float(10.0), n_neighbors=4, sigma=0.3,
             lambdas=(1.0, 0.1, 0.0, 0.01, 1.0), n_init=2, max_iter=6,
             random_state=0, verbose=0)
    p.update(kw)
    return LICCHIE(**p)


@pytest.fixture(scope="module")
def fitted(small):
    ds, _ = small
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _model().fit(ds)


def _brute_pairs(ds, radius):
    """MODEL.md pairs from the dense Dataset, by brute force."""
    pos = ds["position"].values
    feat = ds["features"].values
    seen = np.isfinite(pos).all(-1) & np.isfinite(feat).all(-1)
    out = []
    for t in range(1, ds.sizes["time"]):
        for n in np.flatnonzero(seen[:, t]):
            for k in np.flatnonzero(seen[:, t - 1]):
                if k == n or np.sqrt(((pos[n, t] - pos[k, t - 1]) ** 2).sum()) <= radius:
                    out.append((int(ds.time[t]), int(ds.cell[n]), int(ds.cell[k])))
    return sorted(out)


def test_result_labels(small, fitted):
    ds, _ = small
    m = fitted
    comp = m.components_
    assert comp["target_effect"].dims == ("component", "feature")
    assert comp["source_effect"].dims == ("component", "feature")
    assert list(comp["feature"].values) == list(ds["feature"].values)
    # unit-norm effects: all scale lives in the weights
    np.testing.assert_allclose(np.linalg.norm(comp["target_effect"], axis=1), 1.0)
    np.testing.assert_allclose(np.linalg.norm(comp["source_effect"], axis=1), 1.0)
    w = m.weights_
    assert w.dims == ("pair", "component")
    for c in ("target", "source", "time", "session", "target_population",
              "source_population", "is_self", "pooling_group"):
        assert c in w.coords
    got = sorted(zip(w["time"].values.astype(int), w["target"].values.astype(int),
                     w["source"].values.astype(int)))
    assert got == _brute_pairs(ds, 10.0)
    pop = dict(zip(ds["cell"].values.tolist(), ds["population"].values.tolist()))
    assert all(pop[t] == p for t, p in zip(w["target"].values.tolist(),
                                            w["target_population"].values.tolist()))
    assert all(pop[s] == p for s, p in zip(w["source"].values.tolist(),
                                            w["source_population"].values.tolist()))
    np.testing.assert_array_equal(w["is_self"].values, w["target"].values == w["source"].values)
    assert m.stability_.dims == ("component",)
    assert 0.0 <= m.stability_.attrs["mean"] <= 1.0 + 1e-12


def test_objective_history_is_monotone_and_complete(fitted):
    h = fitted.objective_history_
    assert list(h["term"].values) == ["fidelity", "low_rank", "smoothness", "l1_A", "l1_W",
                                      "pooling", "total"]
    np.testing.assert_allclose(h.sel(term="total"),
                               h.drop_sel(term="total").sum("term"), rtol=1e-12)
    tot = h.sel(term="total").values
    assert np.all(np.diff(tot) <= 1e-9 * np.abs(tot[:-1]) + 1e-12)
    assert h["stage"].values[0] == "init"
    st = [str(s) for s in h["stage"].values]
    # a pooled fit ends with the weights at its motifs (settle_weights):
    # one block at the end, numbered after the alternation's iterations
    settled = [i for i, s in enumerate(st) if s == FINAL_STAGE]
    assert settled and settled == list(range(settled[0], len(st)))
    it = h["iteration"].values
    assert np.all(it[settled] >= fitted.n_iter_) and np.all(np.diff(it) >= 0)
    # before it, one record per iteration (after its last step), plus
    # accepted extrapolations
    stages = set(st[1:settled[0]])
    assert {"weights"} <= stages <= {"weights", "extrapolate"}
    assert st.count("weights") == fitted.n_iter_
    assert fitted.start_objectives_[fitted.best_start_] == fitted.start_objectives_.min()


def test_target_gain_fit_is_monotone_and_reports_gains(small, tmp_path):
    """Pooling with target gains: the objective never rises, every pair
    carries its target's gain (one value per target, mean 1 over targets),
    and the gains survive save/load."""
    ds, _ = small
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = _model(target_gain=True, init="groups").fit(ds)
        plain = _model(init="groups", target_gain=False).fit(ds)
    tot = m.objective_history_.sel(term="total").values
    assert np.all(np.diff(tot) <= 1e-9 * np.abs(tot[:-1]) + 1e-12)
    w = m.weights_
    key = np.stack([w["session"].values.astype(str).astype(object),
                    w["time"].values, w["target"].values]).T
    per_target = {}
    for k, g in zip(map(tuple, key), w["target_gain"].values):
        per_target.setdefault(k, set()).add(g)
    assert all(len(v) == 1 for v in per_target.values())
    gains = np.array([next(iter(v)) for v in per_target.values()])
    assert abs(gains.mean() - 1.0) < 1e-9
    assert np.std(gains) > 0  # the gains are fitted, not left at 1
    assert np.all(plain.weights_["target_gain"].values == 1.0)
    assert "target gains" in m.summary()
    m.save(tmp_path / "m.nc")
    back = licchie.load(tmp_path / "m.nc")
    assert back.target_gain is True
    np.testing.assert_array_equal(back.weights_["target_gain"].values, w["target_gain"].values)


def test_record_steps_records_every_step(small):
    ds, _ = small
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = _model(max_iter=3, n_init=1, solver_options={"record_steps": True}).fit(ds)
    h = m.objective_history_
    stages = list(h["stage"].values)
    for it in range(1, m.n_iter_ + 1):
        at = [s for s, i in zip(stages, h["iteration"].values) if i == it]
        assert at[:3] == ["A", "components", "weights"]
    tot = h.sel(term="total").values
    assert np.all(np.diff(tot) <= 1e-9 * np.abs(tot[:-1]) + 1e-12)


def test_reproducible_from_seed_and_thread_count(small):
    ds, _ = small
    before = numba.get_num_threads()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = _model(random_state=7, n_jobs=1).fit(ds)
        assert numba.get_num_threads() == before  # n_jobs is restored
        b = _model(random_state=7, n_jobs=2).fit(ds)
        c = _model(random_state=8).fit(ds)
    np.testing.assert_array_equal(a.weights_.values, b.weights_.values)
    np.testing.assert_array_equal(a.components_["target_effect"].values,
                                  b.components_["target_effect"].values)
    np.testing.assert_array_equal(a.objective_history_.values, b.objective_history_.values)
    assert not np.array_equal(a.start_objectives_, c.start_objectives_)


def test_interaction_matrices_and_predict(small, fitted):
    ds, _ = small
    m = fitted
    C = m.components_["target_effect"].values
    R = m.components_["source_effect"].values
    W = m.weights_.values
    ref = np.einsum("ej,ji,jm->eim", W, C, R)
    A = m.interaction_matrices()
    np.testing.assert_allclose(A.values, ref, rtol=1e-12, atol=1e-12)  # entries ~2: sum-order rounding
    sub = m.interaction_matrices([3, 1])
    np.testing.assert_allclose(sub.values, ref[[3, 1]], rtol=1e-12, atol=1e-14)
    assert int(sub["target"][0]) == int(m.weights_["target"][3])
    # prediction: sum over a target's pairs of A_e x_source, by hand
    pred = m.predict(ds)
    assert pred.dims == ("cell", "time", "feature")
    x = ds["features"]
    expect = np.full(pred.shape, np.nan)
    for e in range(W.shape[0]):
        t = int(m.weights_["time"][e])
        n = int(np.flatnonzero(ds["cell"].values == int(m.weights_["target"][e]))[0])
        k = int(np.flatnonzero(ds["cell"].values == int(m.weights_["source"][e]))[0])
        ti = int(np.flatnonzero(ds["time"].values == t)[0])
        if np.isnan(expect[n, ti, 0]):
            expect[n, ti] = 0.0
        expect[n, ti] += ref[e] @ x.values[k, ti - 1]
    np.testing.assert_allclose(pred.values, expect, rtol=1e-10, atol=1e-12)
    m.motifs()  # labeled, with stability attached
    assert "stability" in m.motifs().coords


def test_predict_new_data_uses_group_profiles(small, fitted):
    ds, _ = small
    ds2, _ = make_recording(**SMALL, seed=11)
    pred = fitted.predict(ds2)
    # no pair of ds2 was fitted, so every matrix is its group's profile
    Wg = dict(zip(fitted.group_weights_["group"].values.tolist(), fitted.group_weights_.values))
    # a fit on ds2 with the fitted model's groups names the pairs' groups
    m2 = _model(n_init=1, max_iter=1, pooling_groups=fitted.pooling_groups_, target_gain=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m2.fit(ds2)
    C = fitted.components_["target_effect"].values
    R = fitted.components_["source_effect"].values
    groups = m2.weights_["pooling_group"].values
    x = ds2["features"].values
    expect = np.full(pred.shape, np.nan)
    for e in range(len(groups)):
        w = m2.weights_[e]
        n = int(np.flatnonzero(ds2["cell"].values == int(w["target"]))[0])
        k = int(np.flatnonzero(ds2["cell"].values == int(w["source"]))[0])
        ti = int(np.flatnonzero(ds2["time"].values == int(w["time"]))[0])
        A = np.einsum("j,ji,jm->im", Wg[groups[e]], C, R)
        if np.isnan(expect[n, ti, 0]):
            expect[n, ti] = 0.0
        expect[n, ti] += A @ x[k, ti - 1]
    np.testing.assert_allclose(pred.values, expect, rtol=1e-10, atol=1e-12)


def test_save_load_bit_exact(tmp_path, fitted, small):
    ds, _ = small
    path = tmp_path / "model.nc"
    fitted.save(path)
    back = licchie.load(path)
    for name in ("target_effect", "source_effect", "stability"):
        np.testing.assert_array_equal(back.components_[name].values,
                                      fitted.components_[name].values)
    xr.testing.assert_identical(back.weights_, fitted.weights_)
    xr.testing.assert_identical(back.group_weights_, fitted.group_weights_)
    np.testing.assert_array_equal(back.objective_history_.values,
                                  fitted.objective_history_.values)
    assert back.get_params() == fitted.get_params()
    np.testing.assert_array_equal(back.predict(ds).values, fitted.predict(ds).values)
    assert back.summary() == fitted.summary()
    with xr.open_dataset(path) as f:
        for v in ("target_effect", "source_effect", "weights", "objective_history"):
            assert v in f
        for c in ("target", "source", "time", "session", "target_population",
                  "source_population"):
            assert c in f["weights"].coords


def test_save_is_atomic(tmp_path, fitted, monkeypatch):
    path = tmp_path / "model.nc"
    fitted.save(path)
    good = path.read_bytes()

    def boom(self, *a, **k):
        with open(a[0], "wb") as fh:
            fh.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", boom)
    with pytest.raises(OSError, match="disk full"):
        fitted.save(path)
    assert path.read_bytes() == good  # the old file is untouched
    assert sorted(os.listdir(tmp_path)) == ["model.nc"]  # no temporary left


def test_load_errors(tmp_path, small):
    with pytest.raises(FileNotFoundError, match="check the path"):
        licchie.load(tmp_path / "nope.nc")
    bad = tmp_path / "bad.nc"
    bad.write_text("not a netcdf file")
    with pytest.raises(ValueError, match="LICCHIE.save"):
        licchie.load(bad)
    other = tmp_path / "other.nc"
    small[0].to_netcdf(other)
    with pytest.raises(ValueError, match="not a LICCHIE model"):
        licchie.load(other)


@pytest.mark.parametrize("kw, match", [
    (dict(n_components=0), "n_components"),
    (dict(n_components=True), "n_components"),
    (dict(n_neighbors=0), "n_neighbors"),
    (dict(lambdas=(1.0, -0.1, 0.0, 0.0, 0.0)), "lambdas"),
    (dict(lambdas=(0.0, 0.1, 0.0, 0.0, 0.0)), "lam1"),
    (dict(lambdas={"low_rank": 0.0}), "lam1"),
    (dict(lambdas=(1.0, 0.1)), "lambdas"),
    (dict(lambdas=(1.0, 0.1, 0.0, 0.01)), "append the pooling weight"),
    (dict(lambdas=(1.0, 0.1, 0.0, 0.01, -1.0)), "lambdas"),
    (dict(lambdas={"pooling": -1.0}), "lambdas"),
    (dict(lambdas={"pool": 1.0}), "unknown keys \\['pool'\\]"),
    (dict(lambdas=(1.0, 0.1, 0.0, 0.01, float("inf"))), "finite"),
    (dict(lambdas="1 0.1 0 0.01 1"), "lambdas"),
    (dict(radius=0.0), "radius"),
    (dict(radius=float("nan")), "radius"),
    (dict(pair_weight="cosine"), "pair_weight"),
    (dict(pooling_groups="class_time", pooling_window=None), "pooling_window"),
    (dict(n_init=0), "n_init"),
    (dict(n_jobs=0), "n_jobs"),
    (dict(solver_options={"init_max_iter": 0}), "init_max_iter"),
    (dict(solver_options={"init_max_iter": 2.5}), "init_max_iter"),
    (dict(solver_options={"class_restarts": -1}), "class_restarts"),
    (dict(solver_options={"extrapolate": "yes"}), "extrapolate"),
    (dict(solver_options=[("extrapolate", False)]), "solver_options"),
    (dict(target_gain="yes"), "target_gain"),
    (dict(random_state="seed"), "random_state"),
    (dict(verbose=-1), "verbose"),
    (dict(dtype="float16"), "dtype"),
    (dict(init="class"), "init"),
])
def test_bad_parameters(small, kw, match):
    with pytest.raises(ValueError, match=match):
        _model(**kw).fit(small[0])


def test_init_max_iter_caps_the_parafac_start(small, tmp_path):
    """One ALS iteration gives a different (rougher) start than 100, the value
    reaches the PARAFAC call, and it survives save/load."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rough = _model(init="parafac", n_init=1, max_iter=1, solver_options={"init_max_iter": 1}).fit(small[0])
        full = _model(init="parafac", n_init=1, max_iter=1).fit(small[0])
    L0_rough = rough.objective_history_.isel(step=0).sel(term="total").item()
    L0_full = full.objective_history_.isel(step=0).sel(term="total").item()
    assert rough.objective_history_["stage"].values[0] == "init"
    assert not np.isclose(L0_rough, L0_full, rtol=1e-6)
    rough.save(tmp_path / "m.nc")
    assert licchie.load(tmp_path / "m.nc").solver_options == {"init_max_iter": 1}


def test_too_many_components(small):
    with pytest.raises(ValueError, match="at most d\\*d = 9"):
        _model(n_components=10).fit(small[0])


def test_no_pairs_says_how_far_cells_are(small):
    ds = small[0]
    with pytest.raises(ValueError, match="nearest cell in the previous frame is .* away"):
        _model(radius=1e-9, include_self=False).fit(ds)


def test_infinite_values_rejected(small):
    ds = small[0].copy(deep=True)
    ds["features"][0, 1, 0] = np.inf
    with pytest.raises(ValueError, match="inf"):
        _model().fit(ds)


def test_non_finite_during_fit_names_iteration_and_term(small):
    ds = small[0].copy(deep=True)
    ds["features"][:] = ds["features"] * 1e200
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(FloatingPointError, match="iteration 0.*term"):
            _model(init="parafac").fit(ds)


def test_single_start_warns_stability_unknown(small):
    with pytest.warns(UserWarning, match="stability"):
        m = _model(init="parafac", n_init=1, max_iter=2).fit(small[0])
    assert np.isnan(m.stability_.attrs["mean"])
    assert "unknown" in m.summary()


@pytest.mark.parametrize("use", [
    lambda m: m.predict(None), lambda m: m.summary(), lambda m: m.motifs(),
    lambda m: m.interaction_matrices(), lambda m: m.save("never.nc"),
    lambda m: m.to_dataset(), lambda m: m.target_effect_, lambda m: m.source_effect_])
def test_not_fitted(use):
    """Every fitted-only method and property raises scikit-learn's
    NotFittedError (also an AttributeError, as before)."""
    from sklearn.exceptions import NotFittedError
    with pytest.raises(NotFittedError, match="not fitted"):
        use(LICCHIE())
    assert not os.path.exists("never.nc")


def test_cli_fit_and_simulate(tmp_path, capsys):
    from licchie.cli import main
    data = tmp_path / "rec.nc"
    truth = tmp_path / "truth.nc"
    assert main(["simulate", "--out", str(data), "--truth", str(truth), "--seed", "1"]) == 0
    with xr.open_dataset(data) as f:
        assert set(f.data_vars) >= {"features", "position", "population"}
    out = tmp_path / "model.nc"
    rc = main(["fit", str(data), "--components", "3", "--radius", "10", "--n-init", "2",
               "--max-iter", "2", "--quiet", "-o", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "motif verdicts" in text and "objective" in text
    m = licchie.load(out)
    assert m.components_.sizes["component"] == 3
    assert m.target_gain == "auto" and m.target_gain_ in (True, False)
    out2 = tmp_path / "model_gain.nc"
    assert main(["fit", str(data), "--components", "3", "--n-init", "2", "--max-iter", "2",
                 "--pooling", "1", "--target-gain", "--quiet", "-o", str(out2)]) == 0
    back = licchie.load(out2)
    # --pooling lands in the fifth lambda; the others keep the package defaults
    from licchie.params import Lambdas
    assert back.target_gain is True and back.lambdas == tuple(Lambdas(pooling=1.0))
    assert back.target_gain_ is True
    capsys.readouterr()
    # without --quiet: the progress bar on stderr, the summary once on stdout
    assert main(["fit", str(data), "--components", "3", "--n-init", "2", "--max-iter", "2",
                 "--init-max-iter", "3", "-o", str(out2)]) == 0
    got = capsys.readouterr()
    assert got.out.count("motif verdicts") == 1 and "LICCHIE fit" in got.err
    assert licchie.load(out2).solver_options == {"init_max_iter": 3, "class_restarts": 0}
    assert main(["fit", str(tmp_path / "missing.nc"), "-o", str(out)]) == 2
    assert "no file" in capsys.readouterr().err
    garbage = tmp_path / "garbage.nc"
    garbage.write_text("nope")
    assert main(["fit", str(garbage), "-o", str(out)]) == 2
    assert "cannot read" in capsys.readouterr().err


@pytest.mark.parametrize("init", ["parafac", "groups"])
def test_run_start_state_matches_its_recorded_objective(small, init):
    """run_start reuses spare arrays of A's shape across iterations: the state
    it returns must be the one whose objective it recorded last (no buffer
    overwritten while in use), and the shared start A_init is never written."""
    from licchie import fit as F
    from licchie.data import as_recording

    ds, _ = small
    obs = as_recording(ds).obs
    pairs = F.build_pairs(obs, 10.0, pooling_groups="class")
    graph = F.build_graph(obs.features, pairs, 4, 0.3)
    prob = F.Problem(obs.features, pairs, graph, (1.0, 0.1, 0.0, 0.01, 1.0), 1e-12)
    A_init = F.initial_interactions(prob)
    A_copy = A_init.copy()
    group = F.init_groups(obs, pairs) if init == "groups" else None
    # many iterations with extrapolation: accepted and rejected candidates
    res = F.run_start(prob, A_init, 2, 3, max_iter=25, tol=0.0, init=init,
                      init_group=group, record_steps=False, keep_A=True)
    steps = [h[1] for h in res.history]
    assert "extrapolate" in steps
    np.testing.assert_array_equal(A_init, A_copy)
    last = res.history[-1][2]
    np.testing.assert_array_equal(prob.objective(res.A, res.W, res.C, res.R, res.Wbar), last)


def test_class_time_predict_on_a_later_stretch_uses_the_training_windows():
    """A held-out stretch that starts later than the training data gets the
    windows its frames had in training (by session and time label), not
    windows numbered from its own first frame."""
    ds, _ = make_recording(**SMALL, seed=5)
    m = _model(pooling_groups="class_time", pooling_window=3, max_iter=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.fit(ds)
        full = m.predict(ds, weights="group")
        part = m.predict(ds.isel(time=slice(3, None)), weights="group")
    t = ds["time"].values[4:]  # the stretch's first frame has no predecessor
    assert np.isfinite(part.sel(time=t).values).any()
    np.testing.assert_allclose(part.sel(time=t).values, full.sel(time=t).values,
                               rtol=1e-12, atol=1e-12, equal_nan=True)


def test_class_time_predict_after_the_training_frames_uses_the_nearest_window():
    """Frames after the training data have no window of their own: their
    pairs get their class's profile in the nearest training window (the
    last, @4; with a warning), checked against a prediction built by hand
    from the group profiles."""
    ds, _ = make_recording(**SMALL, seed=5)
    train, later = ds.isel(time=slice(0, 5)), ds.isel(time=slice(4, None))
    m = _model(pooling_groups="class_time", pooling_window=2, max_iter=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.fit(train)
    with pytest.warns(UserWarning, match="outside the training data's time windows"):
        pred = m.predict(later, weights="group")
    gw = m.group_weights_
    C = m.components_["target_effect"].values.T
    R = m.components_["source_effect"].values.T
    feats = later["features"].values
    pos = later["position"].values
    cells = list(later["cell"].values)
    pops = later["population"].values
    checked = 0
    for ti in range(1, later.sizes["time"]):
        for n in range(len(cells)):
            if not np.isfinite(feats[n, ti]).all():
                continue
            y = np.zeros(C.shape[0])
            for k in range(len(cells)):
                if not np.isfinite(feats[k, ti - 1]).all():
                    continue
                near = np.sqrt(((pos[n, ti] - pos[k, ti - 1]) ** 2).sum()) <= m.radius
                if not (near or k == n):
                    continue
                # the self pair is a class per target population
                cls = f"self {pops[n]}" if k == n else f"{pops[n]}<-{pops[k]}"
                prof = {int(str(g).rsplit("@", 1)[1]): gw.sel(group=g).values
                        for g in gw["group"].values if str(g).rsplit("@", 1)[0] == cls}
                # the frames 5.. are nearest to the last training frame 4 (window @4)
                w = prof[min(prof, key=lambda s: (abs(s - 4), s))]
                y += C @ (w * (R.T @ feats[k, ti - 1]))
            np.testing.assert_allclose(pred.values[n, ti], y, rtol=1e-9, atol=1e-12)
            checked += 1
    assert checked > 5


def test_model_files_from_before_issue_13_load_with_the_new_parameters(tmp_path, fitted):
    """Files written with the separate ``pooling`` and solver parameters load
    into ``lambdas`` (5th entry) and ``solver_options``."""
    import json
    ds = fitted.to_dataset()
    p = json.loads(ds.attrs["params"])
    p["lambdas"] = p["lambdas"][:4]
    p.pop("solver_options")
    p.update(pooling=2.0, extrapolate=False, record_steps=False, init_max_iter=7,
             class_restarts=0)
    ds.attrs["params"] = json.dumps(p)
    ds.to_netcdf(tmp_path / "old.nc")
    back = licchie.load(tmp_path / "old.nc")
    assert back.lambdas == (1.0, 0.1, 0.0, 0.01, 2.0)
    assert back.solver_options == {"extrapolate": False, "record_steps": False,
                                   "init_max_iter": 7, "class_restarts": 0}
    back._validate_params()


def test_cli_target_gain_flag():
    """--target-gain: auto by default, the flag alone on, and off."""
    import argparse

    from licchie.cli import _add_fit_options, _model_from_args
    p = argparse.ArgumentParser()
    _add_fit_options(p)
    for argv, want in (([], "auto"), (["--target-gain"], True),
                       (["--target-gain", "on"], True), (["--target-gain", "off"], False),
                       (["--target-gain", "auto"], "auto")):
        got = _model_from_args(p.parse_args(argv)).target_gain
        assert got == want and type(got) is type(want), (argv, got)
    with pytest.raises(SystemExit):
        p.parse_args(["--target-gain", "yes"])
