"""Linear baselines (licchie.baselines) against brute-force numpy references."""
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from licchie.baselines import GlobalLinear, PerCellLinear
from licchie.data import as_recording
from licchie.synthetic import make_recording

SMALL = dict(n_cells=(6, 4), n_frames=9, n_features=3, n_components=2)


@pytest.fixture(scope="module")
def small():
    return make_recording(**SMALL, seed=5)


def _brute_design(ds, radius, gain=None):
    """Aggregated sources z and targets y per (cell, time), by brute force."""
    pos = ds["position"].values
    X = ds["features"].values
    seen = np.isfinite(pos).all(-1) & np.isfinite(X).all(-1)
    rows = []
    for t in range(1, ds.sizes["time"]):
        for n in np.flatnonzero(seen[:, t]):
            z = np.zeros(X.shape[-1])
            k_any = False
            for k in np.flatnonzero(seen[:, t - 1]):
                dist = np.sqrt(((pos[n, t] - pos[k, t - 1]) ** 2).sum())
                if k == n or dist <= radius:
                    g = 1.0 if gain is None else gain(dist)
                    z += g * X[k, t - 1]
                    k_any = True
            if k_any:
                rows.append((n, t, z, X[n, t]))
    cells = np.array([r[0] for r in rows])
    times = np.array([r[1] for r in rows])
    Z = np.array([r[2] for r in rows])
    Y = np.array([r[3] for r in rows])
    return cells, times, Z, Y


def test_global_matches_lstsq(small):
    ds, _ = small
    m = GlobalLinear(radius=10.0).fit(ds)
    _, _, Z, Y = _brute_design(ds, 10.0)
    ref = np.linalg.lstsq(Z, Y, rcond=None)[0].T
    np.testing.assert_allclose(m.global_matrix_.values, ref, rtol=1e-10, atol=1e-12)
    ss = np.sum((Y - Y.mean(0)) ** 2)
    r2 = 1 - np.sum((Y - Z @ ref.T) ** 2) / ss
    assert m.in_sample_r2_ == pytest.approx(r2, rel=1e-10)
    assert m.n_targets_ == Z.shape[0]


def test_gaussian_pair_weight_matches_lstsq(small):
    ds, _ = small
    h = 4.0
    m = GlobalLinear(radius=10.0, pair_weight="gaussian", bandwidth=h).fit(ds)
    _, _, Z, Y = _brute_design(ds, 10.0, gain=lambda dd: np.exp(-dd * dd / (2 * h * h)))
    ref = np.linalg.lstsq(Z, Y, rcond=None)[0].T
    np.testing.assert_allclose(m.global_matrix_.values, ref, rtol=1e-9, atol=1e-12)


def test_per_cell_matches_lstsq_and_falls_back():
    # hidden observations give the cells different numbers of targets
    ds, _ = make_recording(**SMALL, hidden_fraction=0.3, seed=5)
    cells, times, Z, Y = _brute_design(ds, 10.0)
    counts = np.bincount(cells, minlength=ds.sizes["cell"])
    # threshold between the cells' counts so that some cells fall back
    need = int(np.median(counts)) + 1
    m = PerCellLinear(radius=10.0, min_observations=need).fit(ds)
    glob = np.linalg.lstsq(Z, Y, rcond=None)[0].T
    np.testing.assert_allclose(m.global_matrix_.values, glob, rtol=1e-10, atol=1e-12)
    fb = m.cell_matrices_["fallback"].values
    np.testing.assert_array_equal(m.cell_matrices_["n_observations"].values, counts)
    np.testing.assert_array_equal(fb, counts < need)
    assert fb.any() and (~fb).any()
    for c in range(ds.sizes["cell"]):
        if fb[c]:
            ref = glob
        else:
            sel = cells == c
            ref = np.linalg.lstsq(Z[sel], Y[sel], rcond=None)[0].T
        np.testing.assert_allclose(m.cell_matrices_.values[c], ref, rtol=1e-9, atol=1e-11)
    # prediction: each target with its cell's matrix
    pred = m.predict(ds)
    got = pred.values[cells, times]
    want = np.array([m.cell_matrices_.values[c] @ z for c, z in zip(cells, Z)])
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_per_cell_default_threshold_is_d(small):
    ds, _ = small
    m = PerCellLinear(radius=10.0).fit(ds)
    assert m.min_observations_ == ds.sizes["feature"]


def test_interaction_matrices_pair_coords_match_licchie_and_truth(small):
    from licchie._fit import build_pairs
    from licchie.labels import pair_coords as _pair_coords
    ds, truth = small
    obs = as_recording(ds).obs
    coords = _pair_coords(obs, build_pairs(obs, 10.0))
    for cls in (GlobalLinear, PerCellLinear):
        A = cls(radius=10.0).fit(ds).interaction_matrices()
        assert A.dims == ("pair", "target_feature", "source_feature")
        for k, (_, v) in coords.items():
            np.testing.assert_array_equal(A[k].values, v)
        # same pairs as the truth (as a set of keys)
        key = lambda a: set(zip(a["time"].values.tolist(), a["target"].values.tolist(),
                                a["source"].values.tolist()))
        assert key(A) == key(truth)
    g = GlobalLinear(radius=10.0).fit(ds)
    A = g.interaction_matrices(pairs=[0, 3])
    np.testing.assert_array_equal(A.values, np.stack([g.global_matrix_.values] * 2))
    p = PerCellLinear(radius=10.0).fit(ds)
    A = p.interaction_matrices()
    np.testing.assert_array_equal(A.values, p.cell_matrices_.sel(cell=A["target"].values).values)


def test_predict_output_types(small):
    ds, _ = small
    m = GlobalLinear(radius=10.0).fit(ds)
    da = m.predict(ds)
    assert isinstance(da, xr.DataArray) and da.dims == ("cell", "time", "feature")
    assert np.isnan(da.isel(time=0)).all()
    df = m.predict(as_recording(ds))
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns[:3]) == ["session", "cell", "time"]
    sel = da.sel(cell=df["cell"].values[0], time=df["time"].values[0]).values
    np.testing.assert_allclose(df.iloc[0, 3:].to_numpy(float), sel)


def test_per_cell_unseen_cells_use_global(small):
    ds, _ = small
    m = PerCellLinear(radius=10.0).fit(ds.isel(cell=slice(0, 6)))
    pred = m.predict(ds)
    # cells 6.. were never targets in the fit: their prediction uses A~
    full = GlobalLinear(radius=10.0)
    full.global_matrix_ = m.global_matrix_
    full.feature_names_in_ = m.feature_names_in_
    ref = full.predict(ds)
    np.testing.assert_allclose(pred.isel(cell=slice(6, None)).values,
                               ref.isel(cell=slice(6, None)).values, equal_nan=True)


def test_motifs_reconstruct(small):
    ds, _ = small
    g = GlobalLinear(radius=10.0).fit(ds)
    d = ds.sizes["feature"]
    mo = g.motifs(d)
    A = np.einsum("j,ja,jb->ab", mo["scale"].values, mo["target_effect"].values,
                  mo["source_effect"].values)
    np.testing.assert_allclose(A, g.global_matrix_.values, atol=1e-10)
    assert np.isnan(mo["stability"].values).all()
    mo5 = g.motifs(d + 2)  # padded: zero scale, still unit vectors
    assert mo5.sizes["component"] == d + 2
    np.testing.assert_allclose(np.linalg.norm(mo5["target_effect"].values, axis=1), 1.0)
    assert np.all(mo5["scale"].values[d:] == 0)
    pm = PerCellLinear(radius=10.0).fit(ds).motifs(2)
    np.testing.assert_allclose(np.linalg.norm(pm["source_effect"].values, axis=1), 1.0)


def test_errors(small):
    ds, _ = small
    with pytest.raises(AttributeError, match="not fitted"):
        GlobalLinear().predict(ds)
    with pytest.raises(ValueError, match="radius"):
        GlobalLinear(radius=-1.0).fit(ds)
    with pytest.raises(ValueError, match="pair_weight"):
        PerCellLinear(pair_weight="bogus").fit(ds)
    with pytest.raises(ValueError, match="min_observations"):
        PerCellLinear(min_observations=0).fit(ds)
    m = GlobalLinear().fit(ds)
    other = ds.assign_coords(feature=["a", "b", "c"])
    with pytest.raises(ValueError, match="features"):
        m.predict(other)
    with pytest.raises(ValueError, match="radius"):
        GlobalLinear(radius=1e-9, include_self=False).fit(ds)
