"""Evaluation metrics (licchie.evaluate) on hand-computed cases, and LICCHIE vs baselines."""
import os
import warnings

import numpy as np
import pytest
import xarray as xr

from licchie import LICCHIE
from licchie import evaluate as E
from licchie.baselines import GlobalLinear, PerCellLinear
from licchie.synthetic import make_recording

SMALL = dict(n_cells=(6, 4), n_frames=9, n_features=3, n_components=2)


@pytest.fixture(scope="module")
def small():
    return make_recording(**SMALL, seed=5)


def _unit_rows(rng, J, d):
    v = rng.standard_normal((J, d))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _fit(ds, **kw):
    p = dict(n_components=2, radius=10.0, n_neighbors=4, sigma=0.3,
             lambdas=(1.0, 0.1, 0.0, 0.01, 1.0), n_init=2, max_iter=6,
             random_state=0, verbose=0, n_jobs=1, pooling_groups="class")
    p.update(kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return LICCHIE(**p).fit(ds)


# ----------------------------------------------------------------- motifs
def test_permuted_sign_flipped_truth_scores_one():
    _, truth = make_recording(n_cells=(5, 3), n_frames=3, n_features=10, n_components=8,
                              seed=1)
    C = truth["target_effect"].values
    R = truth["source_effect"].values
    perm = np.array([3, 0, 7, 1, 6, 2, 5, 4])
    flip_c = np.array([1, -1, 1, -1, -1, 1, 1, -1])[:, None]
    flip_r = np.array([-1, -1, 1, 1, -1, 1, -1, 1])[:, None]
    inferred = (flip_c * C[perm], flip_r * R[perm])
    rec = E.motif_recovery(inferred, truth)
    np.testing.assert_allclose(rec["similarity"].values, 1.0, atol=1e-12)
    assert rec.attrs["mean_similarity"] == pytest.approx(1.0, abs=1e-12)
    # true motif perm[k] is inferred motif k
    np.testing.assert_array_equal(rec["match"].values[perm], np.arange(8))
    np.testing.assert_array_equal(rec["sign"].values[perm], (flip_c * flip_r).ravel())
    np.testing.assert_allclose(rec["ssim"].values, 1.0, atol=1e-12)
    assert rec.attrs["mean_ssim"] == pytest.approx(1.0, abs=1e-12)
    assert np.isnan(rec["matched_stability"].values).all()


def test_random_motifs_score_low():
    _, truth = make_recording(n_cells=(5, 3), n_frames=3, n_features=10, n_components=8,
                              seed=1)
    rng = np.random.default_rng(0)
    scores = []
    for _ in range(5):
        rec = E.motif_recovery((_unit_rows(rng, 8, 10), _unit_rows(rng, 8, 10)), truth)
        scores.append(rec.attrs["mean_similarity"])
        assert rec.attrs["mean_ssim"] < 0.5
    # |cos| of random unit rank-one maps in d = 10 is ~ 1/d; matching lifts it a bit
    assert max(scores) < 0.4


def test_fewer_inferred_motifs_leave_zeros():
    rng = np.random.default_rng(1)
    C, R = _unit_rows(rng, 3, 5), _unit_rows(rng, 3, 5)
    rec = E.motif_recovery((C[:2], R[:2]), (C, R))
    np.testing.assert_allclose(rec["similarity"].values, [1.0, 1.0, 0.0], atol=1e-12)
    assert rec["match"].values[2] == -1 and np.isnan(rec["ssim"].values[2])
    assert rec.attrs["mean_similarity"] == pytest.approx(2 / 3)


def test_motif_recovery_carries_stability(small):
    ds, truth = small
    m = _fit(ds)
    rec = E.motif_recovery(m, truth)
    np.testing.assert_array_equal(rec["matched_stability"].values,
                                  m.stability_.values[rec["match"].values])


# ------------------------------------------------------------------- SSIM
def test_ssim_identical_is_one_unrelated_is_low():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((10, 10))
    assert E.ssim(a, a) == pytest.approx(1.0, abs=1e-12)
    # (the luminance factor flips sign too, so SSIM(a, -a) is not -1)
    assert E.ssim(a, -a) < 0.5
    assert abs(E.ssim(a, rng.standard_normal((10, 10)))) < 0.3
    assert E._ssim_numpy(a, a, 2.0, 7) == pytest.approx(1.0, abs=1e-12)
    small = rng.standard_normal((2, 2))
    assert E.ssim(small, small) == pytest.approx(1.0, abs=1e-12)


def test_ssim_global_hand_value():
    a = np.array([[0.0, 1.0], [2.0, 3.0]])
    b = np.array([[0.0, 1.0], [2.0, 4.0]])
    # means 1.5, 1.75; sample variances 5/3, 35/12; sample covariance 13/6; L = 3
    C1, C2 = (0.01 * 3) ** 2, (0.03 * 3) ** 2
    want = ((2 * 1.5 * 1.75 + C1) * (2 * 13 / 6 + C2)) / \
        ((1.5 ** 2 + 1.75 ** 2 + C1) * (5 / 3 + 35 / 12 + C2))
    assert E.ssim(a, b) == pytest.approx(want, rel=1e-12)


def test_ssim_numpy_matches_scikit_image():
    skm = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(3)
    for shape, win in (((10, 10), 7), ((5, 8), 5), ((3, 3), 3)):
        a = rng.standard_normal(shape)
        b = a + 0.5 * rng.standard_normal(shape)
        L = float(a.max() - a.min())
        ref = skm.structural_similarity(a, b, win_size=win, data_range=L)
        assert E._ssim_numpy(a, b, L, win) == pytest.approx(ref, rel=1e-10)
        assert E.ssim(a, b) == pytest.approx(ref, rel=1e-10)


# ------------------------------------------------------------ per-pair MSE
def test_per_pair_mse_truth_vs_itself_is_zero_in_any_order(small):
    _, truth = small
    A = truth["interaction"]
    order = np.random.default_rng(4).permutation(A.sizes["pair"])
    shuffled = A.isel(pair=order)
    r = E.per_pair_mse(shuffled, truth)
    np.testing.assert_array_equal(r.values, 0.0)
    assert r.attrs["n_matched"] == A.sizes["pair"]
    assert r.attrs["n_only_truth"] == 0 and r.attrs["n_only_inferred"] == 0


def test_per_pair_mse_known_perturbation(small):
    _, truth = small
    A = truth["interaction"].copy(deep=True)
    d = A.sizes["target_feature"]
    k, delta = 7, 0.3
    vals = A.values.copy()
    vals[k, 0, 1] += delta
    vals[k, 2, 2] -= 2 * delta
    vals[k + 1] += delta            # every entry of pair k + 1
    pert = A.copy(data=vals)
    order = np.random.default_rng(5).permutation(A.sizes["pair"])
    r = E.per_pair_mse(pert.isel(pair=order), truth)
    want = np.zeros(A.sizes["pair"])
    want[k] = (delta ** 2 + (2 * delta) ** 2) / d ** 2
    want[k + 1] = delta ** 2
    # result is in the truth's pair order
    np.testing.assert_allclose(r.values, want, atol=1e-15)
    assert r.attrs["mean"] == pytest.approx(want.mean())
    np.testing.assert_array_equal(r["target"].values, truth["target"].values)


def test_per_pair_mse_missing_pairs_warn_and_rebuilt_truth(small):
    _, truth = small
    A = truth["interaction"]
    with pytest.warns(UserWarning, match="no inferred matrix"):
        r = E.per_pair_mse(A.isel(pair=slice(3, None)), truth)
    assert r.attrs["n_only_truth"] == 3 and r.attrs["n_matched"] == A.sizes["pair"] - 3
    no_inter = truth.drop_vars("interaction")
    np.testing.assert_allclose(E.per_pair_mse(A, no_inter).values, 0.0, atol=1e-25)


def test_per_pair_mse_of_fits_align_by_keys(small):
    ds, truth = small
    g = GlobalLinear(radius=10.0).fit(ds)
    r = E.per_pair_mse(g.interaction_matrices(), truth)
    # brute force: look up every truth pair's key in the baseline's pairs
    Ai = g.interaction_matrices()
    idx = {(int(t), int(a), int(b)): e for e, (t, a, b) in enumerate(zip(
        Ai["time"].values, Ai["target"].values, Ai["source"].values))}
    want = [np.mean((Ai.values[idx[(int(t), int(a), int(b))]] - truth["interaction"].values[e])
                    ** 2)
            for e, (t, a, b) in enumerate(zip(truth["time"].values, truth["target"].values,
                                              truth["source"].values))]
    np.testing.assert_allclose(r.values, want, rtol=1e-12)


# -------------------------------------------------------------- prediction
def test_prediction_scores_hand_case():
    y = np.zeros((2, 3, 1))
    y[0, :, 0] = [0.0, 1.0, 3.0]
    y[1, :, 0] = [0.0, 2.0, 5.0]
    ds = xr.Dataset({"features": (("cell", "time", "feature"), y)},
                    coords={"cell": [0, 1], "time": [0, 1, 2], "feature": ["f"]})
    p = np.full_like(y, np.nan)
    p[0, 1:, 0] = [1.0, 2.0]
    p[1, 1:, 0] = [2.0, 6.0]
    pred = xr.DataArray(p, dims=("cell", "time", "feature"))
    s = E.prediction_scores(pred, ds)
    # scored: (1,1)(3,2)(2,2)(5,6); residuals 0,1,0,-1; mean 2.75
    assert s["n_targets"] == 4
    assert s["mse"] == pytest.approx(0.5)
    ss = sum((v - 2.75) ** 2 for v in (1, 3, 2, 5))
    assert s["r2"] == pytest.approx(1 - 2 / ss)
    s2 = E.prediction_scores(pred, ds, times=[2])
    assert s2["n_targets"] == 2 and s2["mse"] == pytest.approx(1.0)


def test_heldout_global_linear_by_hand(small):
    ds, _ = small
    t_split = 6
    res = E.heldout_prediction(GlobalLinear(radius=10.0), ds, t_split)
    ref = GlobalLinear(radius=10.0).fit(ds.isel(time=slice(0, t_split)))
    np.testing.assert_allclose(res["estimator"].global_matrix_.values,
                               ref.global_matrix_.values)
    pred = ref.predict(ds)
    y = ds["features"].values[:, t_split:]
    p = pred.values[:, t_split:]
    ok = np.isfinite(p).all(-1)
    assert res["mse"] == pytest.approx(np.mean((y[ok] - p[ok]) ** 2))
    assert res["n_targets"] == int(ok.sum())
    assert res["in_sample_r2"] == pytest.approx(ref.in_sample_r2_)
    with pytest.raises(ValueError, match="t_split"):
        E.heldout_prediction(GlobalLinear(), ds, ds.sizes["time"])


def test_heldout_licchie_uses_group_profiles(small):
    ds, _ = small
    t_split = 6
    res = E.heldout_prediction(_fit(ds, n_init=1), ds, t_split)
    m = res["estimator"]
    assert m.n_iter_ >= 1 and m.weights_["time"].values.max() < ds["time"].values[t_split]
    pred = m.predict(ds, weights="group")
    s = E.prediction_scores(pred, ds, times=ds["time"].values[t_split:])
    assert res["mse"] == pytest.approx(s["mse"]) and res["r2"] == pytest.approx(s["r2"])


def test_group_profile_prediction_class_time_falls_back_to_latest_window(small):
    ds, _ = small
    m = _fit(ds.isel(time=slice(0, 6)), n_init=1, pooling_groups="class_time",
             pooling_window=2)
    pred = E.group_profile_prediction(m, ds)
    # windows @0, @2, @4 were fitted; frames 6..8 have no window of their own
    # and use the nearest window of their class (@4, else the class's latest)
    from licchie.fit import build_pairs
    from licchie.data import as_recording
    obs = as_recording(ds).obs
    pairs = build_pairs(obs, 10.0, pooling_groups="class_time", pooling_window=2)
    gw = {g: m.group_weights_.values[k] for k, g in
          enumerate(m.group_weights_["group"].values)}
    by_class = {}
    for g, w in gw.items():
        by_class.setdefault(g.rsplit("@", 1)[0], {})[int(g.rsplit("@", 1)[1])] = w
    C = m.components_["target_effect"].values
    R = m.components_["source_effect"].values
    X = obs.features
    held = 0
    for i, o in enumerate(pairs.tgt_obs):
        y = np.zeros(X.shape[1])
        for e in range(pairs.tgt_ptr[i], pairs.tgt_ptr[i + 1]):
            cls, start = pairs.group_names[pairs.group[e]].rsplit("@", 1)
            prof = by_class.get(cls, {})
            w = prof[max(prof)] if int(start) >= 6 and prof else gw.get(f"{cls}@{start}")
            if w is None:
                continue
            A = np.einsum("j,ja,jb->ab", w, C, R)
            y += pairs.gain[e] * A @ X[pairs.src[e]]
        held += obs.time_index[o] >= 6
        got = pred.values[obs.cell[o], obs.time_index[o]]
        np.testing.assert_allclose(got, y, rtol=1e-9, atol=1e-12)
    assert held > 0
    # the class model's group predictor is predict(weights="group")
    mc = _fit(ds.isel(time=slice(0, 6)), n_init=1)
    np.testing.assert_array_equal(E.group_profile_prediction(mc, ds).values,
                                  mc.predict(ds, weights="group").values)


# --------------------------------------------------------------- cell types
def _weights_da(W, tp, sp):
    return xr.DataArray(W, dims=("pair", "component"),
                        coords={"target_population": ("pair", tp),
                                "source_population": ("pair", sp)})


def test_cell_type_prediction_separable_and_random():
    rng = np.random.default_rng(6)
    n = 200
    tp = np.where(rng.random(n) < 0.7, "A", "B")
    sp = np.where(rng.random(n) < 0.4, "A", "B")
    W = np.column_stack([(tp == "A") * 3.0, (sp == "A") * 3.0]) + 0.1 * rng.standard_normal(
        (n, 2))
    df = E.cell_type_prediction(_weights_da(W, tp, sp))
    assert list(df.index) == ["source", "target", "both"]
    np.testing.assert_allclose(df["accuracy"], 1.0)
    np.testing.assert_allclose(df["balanced_accuracy"], 1.0)
    assert df.loc["target", "majority_rate"] == pytest.approx(np.mean(tp == "A"))
    assert df.loc["source", "majority_rate"] == pytest.approx(np.mean(sp == "B"))
    assert df.loc["both", "n_classes"] == 4
    # random weights: about the majority rate, balanced accuracy about 1/2
    df = E.cell_type_prediction(_weights_da(rng.standard_normal((n, 2)), tp, sp))
    assert df.loc["target", "accuracy"] < df.loc["target", "majority_rate"] + 0.1
    assert abs(df.loc["target", "balanced_accuracy"] - 0.5) < 0.15


def test_cell_type_prediction_one_class_is_nan():
    W = np.random.default_rng(7).standard_normal((20, 2))
    df = E.cell_type_prediction(_weights_da(W, np.array(["A"] * 20),
                                            np.array(["A", "B"] * 10)))
    assert np.isnan(df.loc["target", "accuracy"]) and df.loc["target", "majority_rate"] == 1.0
    assert np.isfinite(df.loc["source", "accuracy"])


# ---------------------------------------------------------------- AIC / BIC
def test_information_criteria_toy():
    r = E.information_criteria(rss=2.0, n=4, dof=3)
    assert r["aic"] == pytest.approx(4 * np.log(0.5) + 6)
    assert r["bic"] == pytest.approx(4 * np.log(0.5) + 3 * np.log(4))
    W = np.array([[1.0, 0.0], [0.0, -2.0], [0.0, 0.0]])
    assert E.degrees_of_freedom(W, n_features=3) == 2 + 2 * (2 * 3 - 2)
    with pytest.raises(ValueError):
        E.information_criteria(-1.0, 4, 1)


def test_model_information_criteria(small):
    ds, _ = small
    m = _fit(ds, lambdas=(1.0, 0.1, 0.0, 0.5, 1.0))
    r = E.model_information_criteria(m, ds)
    d = ds.sizes["feature"]
    rss = float(m.objective_history_.isel(step=-1).sel(term="fidelity"))
    n_t = GlobalLinear(radius=10.0).fit(ds).n_targets_
    k = int(np.count_nonzero(m.weights_.values)) + 2 * (2 * d - 2)
    assert r["n"] == n_t * d and r["dof"] == k and r["rss"] == pytest.approx(rss)
    assert r["aic"] == pytest.approx(n_t * d * np.log(rss / (n_t * d)) + 2 * k)


# ------------------------------------------------------------ end to end
# A small pooled problem (generator defaults apart from the size), LICCHIE with
# pooling by class x time window.  Measured when this test was written (mean
# per-pair MSE; LICCHIE / global / per-cell): seed 0 0.0497/0.0615/3.40, 1
# 285.0/285.3/385.3, 2 2.364/2.298/83.4, 3 0.274/0.317/24.5, 4 0.0274/0.0487/20.8.
# On seed 2 the global baseline wins: kept as a documented miss.
@pytest.mark.parametrize("seed", [0, 1, pytest.param(2, marks=pytest.mark.xfail(
    reason="measured miss: global linear has the lower mean per-pair MSE on this seed "
           "(2.298 vs 2.364)", strict=False)), 3, 4])
def test_licchie_beats_baselines_on_pair_mse(seed):
    ds, truth = make_recording(n_cells=(8, 5), n_frames=15, n_features=4, n_components=3,
                               seed=seed)
    # the 0.1 pooled fit (local PARAFAC starts): per-target gains in these
    # data are outside the default search's model (docs/global-search.md)
    m = _fit(ds, n_components=3, n_neighbors=5, lambdas=(1.0, 0.1, 0.0, 0.01, 10.0),
             init="parafac", pooling_groups="class_time", pooling_window=5, n_init=2,
             max_iter=40)
    mse = {name: E.per_pair_mse(est.interaction_matrices(), truth).attrs["mean"]
           for name, est in (("LICCHIE", m), ("global", GlobalLinear().fit(ds)),
                             ("per-cell", PerCellLinear().fit(ds)))}
    assert mse["LICCHIE"] < mse["global"], mse
    assert mse["LICCHIE"] < mse["per-cell"], mse


def test_ssim_without_scikit_image(monkeypatch):
    import sys
    rng = np.random.default_rng(8)
    a = rng.standard_normal((6, 6))
    b = a + 0.3 * rng.standard_normal((6, 6))
    monkeypatch.setitem(sys.modules, "skimage.metrics", None)
    val, backend = E._ssim_with_backend(a, b)
    assert backend == "numpy"
    assert val == pytest.approx(E._ssim_numpy(a, b, float(a.max() - a.min()), 5))


# ------------------------------------------------------------------ report
def test_report_table_and_files(small, tmp_path, monkeypatch):
    import sys

    from licchie import report
    ds, truth = small
    model = LICCHIE(n_components=2, radius=10.0, n_neighbors=4, lambdas={"pooling": 1.0}, n_init=2,
                    max_iter=4, random_state=0, verbose=0, n_jobs=1)
    res = report.run_comparison(ds, truth, model, t_split=6, log=None)
    assert set(res["pair_mse"]) == set(report.METHODS)
    table = report.format_table(res)
    for m in report.METHODS:
        assert m in table
    stab = f"{model.stability_.attrs['mean']:.3f}"
    assert stab in table  # the stability number sits next to the motif scores
    assert res["heldout"]["LICCHIE"]["n_targets"] > 0
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    files = report.write_report(tmp_path / "nofig", res, truth, table=table)
    assert [os.path.basename(f) for f in files] == ["report.md"]
    text = open(files[0]).read()
    assert "Figures skipped" in text and stab in text
    monkeypatch.undo()
    pytest.importorskip("matplotlib")
    files = report.write_report(tmp_path / "fig", res, truth, table=table)
    names = sorted(os.path.basename(f) for f in files)
    assert names == sorted(["motifs.png", "pair_mse.png", "mean_mse.png", "objective.png",
                            "weights.png", "cell_types.png", "report.md"])
    assert all(os.path.getsize(f) > 0 for f in files)


def test_report_forecast_model_scores_the_held_out_rows(small):
    """A separate forecasting fit: its held-out scores, the scored fit's motifs."""
    from licchie import report
    ds, truth = small
    common = dict(n_components=2, radius=10.0, n_neighbors=4, lambdas={"pooling": 1.0}, n_init=1,
                  max_iter=3, random_state=0, verbose=0, n_jobs=1)
    model = LICCHIE(pooling_groups="class_time", pooling_window=1, **common)
    forecast = LICCHIE(pooling_groups="class", **common)
    res = report.run_comparison(ds, truth, model, t_split=6, log=None,
                                forecast_model=forecast)
    want = E.heldout_prediction(forecast, ds, 6)
    got = res["heldout"]["LICCHIE"]
    assert got["mse"] == pytest.approx(want["mse"], rel=1e-12)
    assert got["r2"] == pytest.approx(want["r2"], rel=1e-12)
    # the scored fit is the time-resolved one, and the table says where the
    # held-out rows come from
    assert res["models"]["LICCHIE"].pooling_groups == "class_time"
    assert "held-out rows come from a second LICCHIE fit" in report.format_table(res)
    plain = report.run_comparison(ds, truth, forecast, t_split=6, log=None)
    assert plain["heldout"]["LICCHIE"]["mse"] == pytest.approx(want["mse"], rel=1e-12)
    assert "second LICCHIE fit" not in report.format_table(plain)


@pytest.mark.parametrize("full", [False, True])
def test_demo_presets_build_valid_models(full):
    from licchie.cli import DEMO_FITS, demo_models
    presets = DEMO_FITS["full" if full else "quick"]
    for regime in presets:
        model, forecast = demo_models(regime, seed=0, radius=10.0, max_iter=7, init=None,
                                      full=full)
        assert model.max_iter == 7
        assert model.init == presets[regime][0].get("init", LICCHIE().init)
        model._validate_params()       # raises on an impossible preset
        if forecast is not None:
            forecast._validate_params()
            assert forecast.pooling_groups == "class"
    # the overrides that are not constructor parameters reach lambdas and
    # solver_options
    model, _ = demo_models("pooled", seed=0, radius=10.0, full=full, pooling=2.5,
                           class_restarts=1)
    assert model.lambdas[4] == 2.5 and model.solver_options["class_restarts"] == 1


def test_quick_demo_is_shorter_than_the_full_one():
    """The default demo must stay fast (issue 13: < 2 min on 2 cores): fewer
    or cheaper iterations than the paper-size study and no class restarts."""
    from licchie.cli import demo_models
    from licchie.params import resolve_solver_options
    for regime in ("shared", "pooled", "paper"):
        quick, _ = demo_models(regime, seed=0, radius=10.0)
        full, _ = demo_models(regime, seed=0, radius=10.0, full=True)
        assert quick.n_init * quick.max_iter < full.n_init * full.max_iter
        assert resolve_solver_options(quick.solver_options)["class_restarts"] == 0
        assert quick.init != "classes"
