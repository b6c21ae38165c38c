"""Weight sweeps (paper §5.3): scores against a brute-force reference."""
import warnings

import numpy as np
import pytest
import xarray as xr

from licchie import LICCHIE
from licchie.sweeps import weight_sweep, weight_sweep_states
from licchie.synthetic import make_recording

SMALL = dict(n_cells=(6, 4), n_frames=6, n_features=3, n_components=2, noise=0.01)


@pytest.fixture(scope="module")
def fitted():
    ds, _ = make_recording(**SMALL, seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = LICCHIE(n_components=2, radius=10.0, n_neighbors=3, lambdas=(1.0, 0.1, 0.0, 0.01, 1.0),
                    n_init=2, max_iter=4, random_state=0, verbose=0).fit(ds)
    return ds, m


def _labels(ds):
    """Phenotype from the sign of feature 0 of each observation."""
    f0 = ds["features"].isel(feature=0)
    lab = xr.where(f0 > 0, "high", "low").astype(object)
    return lab.where(np.isfinite(f0), None)


def _reference_scores(ref, ref_lab, Q, k):
    """Distance-weighted kNN fractions / class frequency, renormalised (plain NumPy)."""
    classes = np.unique(ref_lab)
    prior = np.array([np.mean(ref_lab == c) for c in classes])
    out = np.empty((Q.shape[0], classes.size))
    for i, q in enumerate(Q):
        dist = np.sqrt(((ref - q) ** 2).sum(axis=1))
        nn = np.argsort(dist, kind="stable")[:k]
        wt = 1.0 / dist[nn]
        frac = np.array([wt[ref_lab[nn] == c].sum() for c in classes]) / wt.sum()
        s = frac / prior
        out[i] = s / s.sum()
    return classes, out


def test_sweep_matches_brute_force_reference(fitted):
    ds, m = fitted
    lab = _labels(ds)
    w = np.array([0.0, 0.5, 2.0])
    k = 7
    got = weight_sweep(m, ds, lab, weights=w, n_neighbors=k, max_sources=None)
    assert got.dims == ("component", "weight", "phenotype")
    np.testing.assert_array_equal(got["stability"].values, m.stability_.values)
    X = ds["features"].transpose("cell", "time", "feature").values
    seen = np.all(np.isfinite(X), axis=-1)
    labs = lab.transpose("cell", "time").values
    ref, ref_lab = X[seen], labs[seen].astype(str)
    base = ref.mean(axis=0)
    C = m.components_["target_effect"].values
    R = m.components_["source_effect"].values
    for j in range(C.shape[0]):
        for a, wa in enumerate(w):
            Q = base + wa * np.outer(ref @ R[j], C[j])  # every observed state is a source
            classes, s = _reference_scores(ref, ref_lab, Q, k)
            np.testing.assert_array_equal(got["phenotype"].values, classes)
            np.testing.assert_allclose(got.values[j, a], s.mean(axis=0), rtol=1e-10)


def test_sweep_moves_targets_toward_the_phenotype_the_motif_drives():
    """A motif c = e0, r = e1 applied to sources with x1 > 0 pushes feature 0 up,
    so the score of 'high' (feature 0 > 0) must rise with the weight."""
    rng = np.random.default_rng(0)
    n_cells, n_t, d = 40, 3, 3
    X = rng.normal(size=(n_cells, n_t, d))
    X[:, :, 1] = np.abs(X[:, :, 1]) + 0.5
    ds = xr.Dataset({"features": (("cell", "time", "feature"), X),
                     "position": (("cell", "time", "space"), rng.uniform(size=(n_cells, n_t, 2))),
                     "population": (("cell",), np.array(["A"] * n_cells))},
                    coords={"cell": np.arange(n_cells), "time": np.arange(n_t),
                            "feature": ["f0", "f1", "f2"], "space": ["x", "y"]})
    m = LICCHIE(n_components=1)
    m.components_ = xr.Dataset(
        {"target_effect": (("component", "feature"), [[1.0, 0.0, 0.0]]),
         "source_effect": (("component", "feature"), [[0.0, 1.0, 0.0]])},
        coords={"component": [0], "feature": ["f0", "f1", "f2"]})
    m.stability_ = xr.DataArray([1.0], dims="component", coords={"component": [0]})
    lab = xr.where(ds["features"].isel(feature=0) > 0, "high", "low").astype(object)
    s = weight_sweep(m, ds, lab, n_neighbors=15).sel(phenotype="high", component=0).values
    assert s[-1] > s[0] + 0.3
    assert np.all(np.diff(s) > -0.05)  # rises, up to kNN noise


def test_sweep_rejects_bad_input(fitted):
    ds, m = fitted
    lab = _labels(ds)
    with pytest.raises(ValueError, match="out of range"):
        weight_sweep(m, ds, lab, components=[5])
    with pytest.raises(ValueError, match="n_neighbors"):
        weight_sweep(m, ds, lab, n_neighbors=0)
    with pytest.raises(ValueError, match="dims"):
        weight_sweep(m, ds, lab.rename(cell="track"))
    with pytest.raises(ValueError, match="No observed state carries a label"):
        weight_sweep(m, ds, xr.full_like(lab, None))
    with pytest.raises(ValueError, match="target_population 'Z'"):
        weight_sweep(m, ds, lab, target_population="Z")
    with pytest.raises(ValueError, match="baseline"):
        weight_sweep(m, ds, lab, baseline="median")
    with pytest.raises(ValueError, match="features"):
        weight_sweep(m, ds.assign_coords(feature=["a", "b", "c"]), lab)
    with pytest.raises(TypeError, match="DataArray"):
        weight_sweep(m, ds, lab.values)


def test_sweep_subsamples_sources_reproducibly(fitted):
    ds, m = fitted
    lab = _labels(ds)
    a = weight_sweep(m, ds, lab, max_sources=5, random_state=1, n_neighbors=5)
    b = weight_sweep(m, ds, lab, max_sources=5, random_state=1, n_neighbors=5)
    assert a.attrs["n_sources"] == 5
    np.testing.assert_array_equal(a.values, b.values)


def test_sweep_states_equals_dataset_sweep_and_checks_arrays(fitted):
    ds, m = fitted
    lab = _labels(ds)
    X = ds["features"].transpose("cell", "time", "feature").values
    seen = np.all(np.isfinite(X), axis=-1)
    labs = lab.transpose("cell", "time").values
    a = weight_sweep(m, ds, lab, n_neighbors=5, max_sources=None)
    b = weight_sweep_states(m, X[seen], X[seen], labs[seen], n_neighbors=5, max_sources=None)
    np.testing.assert_array_equal(a.values, b.values)
    with pytest.raises(ValueError, match=r"shape \(n, 3\)"):
        weight_sweep_states(m, X[seen][:, :2], X[seen], labs[seen])
    bad = X[seen].copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        weight_sweep_states(m, bad, X[seen], labs[seen])
    with pytest.raises(ValueError, match="one label per reference state"):
        weight_sweep_states(m, X[seen], X[seen], labs[seen][:-1])
