"""Standardisation inside the model (licchie.scaling, LICCHIE(standardize=...))."""
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import licchie
from licchie import LICCHIE
from licchie import scaling as S
from licchie.data import as_recording
from licchie.synthetic import make_recording

SMALL = dict(n_cells=(6, 4), n_frames=8, n_features=3, n_components=2)


def _model(**kw):
    p = dict(n_components=2, radius=10.0, n_neighbors=4, lambdas=(1.0, 0.1, 0.0, 0.01, 1.0),
             init="parafac", n_init=2, max_iter=6, random_state=0)
    p.update(kw)
    return LICCHIE(**p)


def _fit(model, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(X)


def _affine(ds, a, b):
    """Features x -> a[p] * x + b[p] per population p (arrays (n_pop, d))."""
    pops = sorted(set(ds["population"].values.astype(str).tolist()))
    pi = np.array([pops.index(p) for p in ds["population"].values.astype(str)])
    F = ds["features"].transpose("cell", "time", "feature")
    out = ds.copy()
    out["features"] = F.copy(data=F.values * a[pi][:, None, :] + b[pi][:, None, :])
    return out


@pytest.fixture(scope="module")
def small():
    ds, _ = make_recording(**SMALL, seed=3)
    rng = np.random.default_rng(0)
    # features on very different scales per population and feature
    a = np.exp(rng.normal(0, 1.5, size=(2, 3)))
    b = rng.normal(0, 5, size=(2, 3))
    return _affine(ds, a, b)


@pytest.fixture(scope="module")
def fitted(small):
    return _fit(_model(standardize="population"), small)


def test_learned_statistics_match_pandas(small):
    obs = as_recording(small).obs
    sc = S.learn_scaling(obs, "population")
    df = pd.DataFrame(obs.features, columns=list(obs.feature_names))
    df["pop"] = np.asarray(obs.population_names)[obs.population]
    g = df.groupby("pop")
    np.testing.assert_allclose(sc["mean"].sel(population=["A", "B"]).values,
                               g.mean().loc[["A", "B"]].values, rtol=1e-12)
    np.testing.assert_allclose(sc["scale"].sel(population=["A", "B"]).values,
                               g.std(ddof=0).loc[["A", "B"]].values, rtol=1e-12)
    z = S.apply_scaling(sc, obs).features
    for p in range(2):
        rows = obs.population == p
        np.testing.assert_allclose(z[rows].mean(axis=0), 0, atol=1e-12)
        np.testing.assert_allclose(z[rows].std(axis=0), 1, rtol=1e-12)


def test_constant_feature_is_only_centred():
    obs = as_recording(make_recording(**SMALL, seed=1)[0]).obs
    X = obs.features.copy()
    X[obs.population == 0, 1] = 7.0
    import dataclasses
    sc = S.learn_scaling(dataclasses.replace(obs, features=X), "population")
    assert sc["scale"].values[0, 1] == 1.0
    assert sc["mean"].values[0, 1] == 7.0


def test_fit_is_invariant_to_per_population_affine_maps(small, fitted):
    """Standardised fits see the same model-unit data whatever the units: motifs
    and weights agree, predictions follow the affine map."""
    rng = np.random.default_rng(1)
    a = np.exp(rng.normal(0, 1, size=(2, 3)))
    b = rng.normal(0, 3, size=(2, 3))
    moved = _affine(small, a, b)
    other = _fit(_model(standardize="population"), moved)
    for v in ("target_effect", "source_effect"):
        np.testing.assert_allclose(other.components_[v].values, fitted.components_[v].values,
                                   atol=1e-7)
    np.testing.assert_allclose(other.weights_.values, fitted.weights_.values, atol=1e-7)
    p0 = fitted.predict(small)
    p1 = other.predict(moved)
    expect = _affine(p0.to_dataset(name="features").assign(
        population=small["population"]), a, b)["features"]
    np.testing.assert_allclose(p1.values, expect.transpose(*p1.dims).values, rtol=1e-6,
                               atol=1e-6)


def test_standardize_equals_fitting_zscored_data(small, fitted):
    obs = as_recording(small).obs
    sc = fitted.scaling_
    assert isinstance(sc, xr.Dataset) and sc.attrs["method"] == "population"
    a = 1.0 / sc["scale"].sel(population=["A", "B"]).values
    b = -sc["mean"].sel(population=["A", "B"]).values * a
    z = _affine(small, a, b)
    plain = _fit(_model(), z)
    assert plain.scaling_ is None
    np.testing.assert_allclose(plain.weights_.values, fitted.weights_.values, atol=1e-7)
    # predictions: mu_p + s_p * (prediction in z units)
    pz = plain.predict(z)
    back = _affine(pz.to_dataset(name="features").assign(population=small["population"]),
                   sc["scale"].sel(population=["A", "B"]).values,
                   sc["mean"].sel(population=["A", "B"]).values)["features"]
    np.testing.assert_allclose(fitted.predict(small).values,
                               back.transpose("cell", "time", "feature").values,
                               rtol=1e-6, atol=1e-6)
    assert obs.n_obs > 0


def test_original_units_reproduce_the_prediction(small, fitted):
    """x_hat = mu_p + sum_e g_e A~_e (x_src - mu_q), A~_e in original units."""
    A = fitted.interaction_matrices(units="original")
    W = fitted.weights_
    sc = fitted.scaling_
    mu = sc["mean"]
    x = small["features"].transpose("cell", "time", "feature")
    pred = fitted.predict(small)
    expect = {}
    for e in range(W.sizes["pair"]):
        t, s, tm = W["target"].values[e], W["source"].values[e], W["time"].values[e]
        prev = small["time"].values[list(small["time"].values).index(tm) - 1]
        xs = x.sel(cell=s, time=prev).values - mu.sel(
            population=str(W["source_population"].values[e])).values
        key = (t, tm)
        if key not in expect:
            expect[key] = mu.sel(population=str(W["target_population"].values[e])).values.copy()
        expect[key] += A.values[e] @ xs
    for (t, tm), v in expect.items():
        np.testing.assert_allclose(pred.sel(cell=t, time=tm).values, v, rtol=1e-8, atol=1e-8)
    # motifs in original units: (s_p c_j)(r_j / s_q)^T per population pair
    M = fitted.motifs(units="original")
    assert M.dims == ("component", "target_population", "source_population",
                      "target_feature", "source_feature")
    C = fitted.components_["target_effect"].values
    R = fitted.components_["source_effect"].values
    s = sc["scale"]
    for p in ("A", "B"):
        for q in ("A", "B"):
            want = np.einsum("ji,jm->jim", C * s.sel(population=p).values,
                             R / s.sel(population=q).values)
            np.testing.assert_allclose(M.sel(target_population=p, source_population=q).values,
                                       want, rtol=1e-12)
    # model units are the default and unchanged
    np.testing.assert_allclose(fitted.motifs().values, np.einsum("ji,jm->jim", C, R))


def test_without_standardize_units_agree(small):
    m = _fit(_model(), small)
    assert m.scaling_ is None
    xr.testing.assert_identical(m.motifs(units="original"), m.motifs())
    xr.testing.assert_identical(m.interaction_matrices([0, 1], units="original"),
                                m.interaction_matrices([0, 1]))
    with pytest.raises(ValueError, match="units must be"):
        m.motifs(units="z")


@pytest.mark.parametrize("how", ["population", "population_session"])
def test_save_load_keeps_the_scaling(tmp_path, small, how):
    m = _fit(_model(standardize=how), small)
    path = tmp_path / "m.nc"
    m.save(path)
    back = licchie.load(path)
    xr.testing.assert_identical(back.scaling_, m.scaling_)
    assert back.get_params() == m.get_params()
    np.testing.assert_array_equal(back.predict(small).values, m.predict(small).values)
    xr.testing.assert_identical(back.motifs(units="original"), m.motifs(units="original"))
    # A_e in original units: diag(s_target) A_e diag(1 / s_source), per pair
    A = m.interaction_matrices([0, 3, 7]).values
    Ao = m.interaction_matrices([0, 3, 7], units="original").values
    W = m.weights_.isel(pair=[0, 3, 7])
    sc = m.scaling_["scale"]
    for k in range(3):
        sel = {} if how == "population" else {"session": str(W["session"].values[k])}
        st = sc.sel(population=str(W["target_population"].values[k]), **sel).values
        ss = sc.sel(population=str(W["source_population"].values[k]), **sel).values
        np.testing.assert_allclose(Ao[k], st[:, None] * A[k] / ss[None, :], rtol=1e-12)


def test_population_session_statistics():
    ds1, _ = make_recording(**SMALL, seed=1)
    ds2, _ = make_recording(**SMALL, seed=2)
    ds2 = ds2.assign(features=ds2["features"] * 3 + 1)
    rec = as_recording([ds1, ds2])
    sc = S.learn_scaling(rec.obs, "population_session")
    assert sc["mean"].dims == ("population", "session", "feature")
    z = S.apply_scaling(sc, rec.obs)
    for k in range(2):
        for p in range(2):
            rows = (rec.obs.session == k) & (rec.obs.population == p)
            np.testing.assert_allclose(z.features[rows].mean(axis=0), 0, atol=1e-12)
    # a session the model never saw is standardised by its own statistics
    only = S.learn_scaling(as_recording(ds1).obs, "population_session")
    other = as_recording(ds2).obs
    other = __import__("dataclasses").replace(other, session_names=("new",))
    with pytest.warns(UserWarning, match="not in the training data"):
        zz = S.apply_scaling(only, other)
    for p in range(2):
        rows = other.population == p
        np.testing.assert_allclose(zz.features[rows].mean(axis=0), 0, atol=1e-12)


def test_bad_inputs(small, fitted):
    with pytest.raises(ValueError, match="standardize"):
        _model(standardize="zscore").fit(small)
    ds = small.assign(population=small["population"].where(
        small["population"] != "B", "C"))
    with pytest.raises(ValueError, match="not in the training data"):
        fitted.predict(ds)


def test_weight_sweep_works_in_model_units(small, fitted):
    """A standardised model's sweep equals the sweep of the z-scored states."""
    from licchie import weight_sweep, weight_sweep_states
    lab = xr.where(small["features"].isel(feature=0) > float(
        small["features"].isel(feature=0).median()), "hi", "lo")
    got = weight_sweep(fitted, small, lab, n_neighbors=5)
    obs = as_recording(small).obs
    z = S.apply_scaling(fitted.scaling_, obs)
    ids = list(small["cell"].values)
    tl = list(small["time"].values)
    labs = lab.transpose("cell", "time").values[
        [ids.index(c) for c in obs.cell_ids[obs.cell]], obs.time_index]
    want = weight_sweep_states(fitted, z.features, z.features, labs, n_neighbors=5)
    assert len(tl) == small.sizes["time"]
    np.testing.assert_allclose(got.values, want.values, rtol=1e-10)
