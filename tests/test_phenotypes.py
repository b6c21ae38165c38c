"""Phenotypes from weights (Fig. 4b), class summaries (Fig. 3c), source extremes (Fig. 4c)."""
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from licchie import LICCHIE
from licchie.evaluate import (class_weight_summary, pair_labels, phenotype_prediction,
                              source_extremes, source_feature_extremes)
from licchie.synthetic import make_recording


def _weights(n=400, J=3, seed=0, signal=True):
    """Synthetic (pair, component) weights whose target phenotype depends on
    component 0 (or on nothing)."""
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(n, J))
    cells = np.array([f"c{k}" for k in rng.integers(0, 60, n)])
    times = rng.integers(1, 20, n)
    tp = np.where(rng.random(n) < 0.5, "A", "B")
    sp = np.where(rng.random(n) < 0.5, "A", "B")
    self_ = rng.random(n) < 0.2
    sp = np.where(self_, tp, sp)
    da = xr.DataArray(W, dims=("pair", "component"),
                      coords={"component": np.arange(J), "target": ("pair", cells),
                              "source": ("pair", cells[::-1]), "time": ("pair", times),
                              "session": ("pair", np.full(n, "0")),
                              "target_population": ("pair", tp),
                              "source_population": ("pair", sp),
                              "is_self": ("pair", self_)})
    score = W[:, 0] + 0.3 * rng.normal(size=n) if signal else rng.normal(size=n)
    lab = np.where(score > 0.8, "dead", "alive")
    return da, lab


def test_phenotype_prediction_finds_a_signal_and_not_noise():
    W, lab = _weights()
    res = phenotype_prediction(W, lab)
    assert list(res.index) == ["logistic", "shuffled_labels", "dummy_stratified", "majority"]
    for c in ("accuracy", "balanced_accuracy", "majority_rate", "n_samples"):
        assert c in res.columns
    assert res.loc["logistic", "balanced_accuracy"] > 0.85
    assert res.loc["shuffled_labels", "balanced_accuracy"] < 0.65
    assert res.loc["majority", "balanced_accuracy"] == pytest.approx(0.5)
    assert res.loc["majority", "accuracy"] == pytest.approx(res["majority_rate"].iloc[0],
                                                           abs=0.05)
    Wn, labn = _weights(signal=False, seed=1)
    noise = phenotype_prediction(Wn, labn)
    assert noise.loc["logistic", "balanced_accuracy"] < 0.65


def test_phenotype_prediction_train_test_and_filters():
    W, lab = _weights(seed=2)
    Wt, labt = _weights(seed=3)
    res = phenotype_prediction(W, lab, test_weights=Wt, test_labels=labt)
    assert res.loc["logistic", "balanced_accuracy"] > 0.85
    assert np.isnan(res.loc["logistic", "accuracy_std"])
    sub = phenotype_prediction(W, lab, target_population="A")
    assert sub["n_samples"].iloc[0] == int((W["target_population"] == "A").sum())
    per_target = phenotype_prediction(W, lab, by="target")
    n_targets = len(set(zip(W["target"].values, W["time"].values)))
    assert per_target["n_samples"].iloc[0] == n_targets


def test_pair_labels_lookup():
    W, _ = _weights(n=50)
    cells, times = W["target"].values, W["time"].values
    per_obs = pd.Series({(c, t): f"{c}@{t}" for c, t in zip(cells, times)})
    got = pair_labels(W, per_obs)
    assert list(got) == [f"{c}@{t}" for c, t in zip(cells, times)]
    per_cell = xr.DataArray(np.array([f"L{c}" for c in sorted(set(cells))]), dims="cell",
                            coords={"cell": sorted(set(cells))})
    assert list(pair_labels(W, per_cell)) == [f"L{c}" for c in cells]
    missing = pair_labels(W, pd.Series({cells[0]: "x"}))
    assert missing[0] == "x" and sum(v is None for v in missing) == sum(cells != cells[0])
    with pytest.raises(ValueError, match="one entry per pair"):
        pair_labels(W, ["a", "b"])


def test_phenotype_prediction_errors():
    W, lab = _weights(n=60)
    with pytest.raises(ValueError, match="at least two"):
        phenotype_prediction(W, np.full(60, "alive"))
    with pytest.raises(ValueError, match="No pair has a label"):
        phenotype_prediction(W, np.full(60, None))
    with pytest.raises(TypeError, match="DataArray"):
        phenotype_prediction(W.values, lab)
    with pytest.raises(ValueError, match="by must be"):
        phenotype_prediction(W, lab, by="cell")


def test_class_weight_summary_matches_numpy():
    W, _ = _weights(n=300)
    s = class_weight_summary(W, quantiles=(0.5, 0.9))
    tp, sp = W["target_population"].values, W["source_population"].values
    self_ = W["is_self"].values
    sel = (tp == "A") & (sp == "B") & ~self_
    row = s.loc[("A<-B", 1)]
    assert row["n_pairs"] == sel.sum()
    assert row["mean"] == pytest.approx(W.values[sel, 1].mean())
    assert row["q0.9"] == pytest.approx(np.quantile(W.values[sel, 1], 0.9))
    assert s.loc[("self:B", 0), "n_pairs"] == (self_ & (tp == "B")).sum()
    assert set(s.index.get_level_values(0)) <= {"A<-A", "A<-B", "B<-A", "B<-B", "self:A",
                                                "self:B"}
    with pytest.raises(ValueError, match="quantiles"):
        class_weight_summary(W, quantiles=(2,))


@pytest.fixture(scope="module")
def fitted():
    ds, _ = make_recording(n_cells=(6, 4), n_frames=8, n_features=3, n_components=2,
                           seed=3)
    ds = ds.assign(features=ds["features"] * 4.0 + 2.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = LICCHIE(n_components=2, radius=10.0, n_neighbors=4, n_init=2, max_iter=5,
                    init="parafac", random_state=0, standardize="population").fit(ds)
    return m, ds


def test_source_extremes(fitted):
    m, ds = fitted
    ext = source_extremes(m, ds, 1, n=3, source_population="B")
    assert list(ext["extreme"]) == ["high"] * 3 + ["low"] * 3
    assert (ext["population"] == "B").all()
    # recompute the projections independently: z-score by population B's stats
    F = ds["features"].transpose("cell", "time", "feature").values
    pops = ds["population"].values.astype(str)
    xb = F[pops == "B"].reshape(-1, 3)
    xb = xb[np.isfinite(xb).all(1)]
    zb = (xb - xb.mean(0)) / xb.std(0)
    proj = zb @ m.components_["source_effect"].values[1]
    np.testing.assert_allclose(ext["projection"].values[:3], np.sort(proj)[::-1][:3],
                               rtol=1e-10)
    np.testing.assert_allclose(ext["projection"].values[3:], np.sort(proj)[:3], rtol=1e-10)
    feats = list(ds["feature"].values.astype(str))
    top = ext.iloc[0]
    np.testing.assert_allclose(ds["features"].sel(cell=top["cell"], time=top["time"])
                               .values, top[feats].values.astype(float))
    with pytest.raises(ValueError, match="out of range"):
        source_extremes(m, ds, 5)


def test_source_feature_extremes(fitted):
    m, ds = fitted
    lab = xr.where(ds["features"].isel(feature=0) > float(
        ds["features"].isel(feature=0).median()), "high", "low")
    lab = lab.where(np.isfinite(ds["features"].isel(feature=0)))
    lab = lab.astype(object).where(lab.notnull(), None)
    out = source_feature_extremes(m, ds, lab, 0, n_neighbors=10)
    assert list(out.index) == list(ds["feature"].values.astype(str))
    for c in ("score_min_high", "score_max_high", "difference_high", "value_min",
              "value_max"):
        assert c in out.columns
    np.testing.assert_allclose(out["score_min_high"] + out["score_min_low"], 1.0)
    np.testing.assert_allclose(out["difference_high"],
                               out["score_max_high"] - out["score_min_high"])
    assert (out["value_min"] <= out["value_max"]).all()
