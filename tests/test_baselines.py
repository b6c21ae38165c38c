"""Linear baselines (licchie.baselines) against brute-force numpy references."""
import warnings

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
    m = PerCellLinear(radius=10.0, min_observations=need, alpha=0).fit(ds)
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
    from licchie.fit import build_pairs
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


# ------------------------------------------------------------ persistence
@pytest.mark.parametrize("pair_weight", ["none", "gaussian"])
def test_persistence_is_the_previous_state(pair_weight):
    from licchie.baselines import Persistence
    h = 4.0
    gain = (lambda dd: np.ones_like(dd)) if pair_weight == "none" else \
        (lambda dd: np.exp(-dd * dd / (2 * h * h)))
    # hidden observations: some targets have no self pair, only neighbours
    ds, _ = make_recording(**SMALL, hidden_fraction=0.3, seed=5)
    pos = ds["position"].values
    X = ds["features"].values
    seen = np.isfinite(pos).all(-1) & np.isfinite(X).all(-1)
    m = Persistence(radius=10.0, pair_weight=pair_weight, bandwidth=h).fit(ds)
    pred = m.predict(ds).values
    n_self = n_mean = 0
    for t in range(1, ds.sizes["time"]):
        for n in np.flatnonzero(seen[:, t]):
            if seen[n, t - 1]:
                np.testing.assert_array_equal(pred[n, t], X[n, t - 1])  # exactly
                n_self += 1
                continue
            prev = np.flatnonzero(seen[:, t - 1])
            dist = np.sqrt(((pos[n, t] - pos[prev, t - 1]) ** 2).sum(-1))
            near, g = prev[dist <= 10.0], gain(dist[dist <= 10.0])
            if near.size:
                np.testing.assert_allclose(pred[n, t], g @ X[near, t - 1] / g.sum(), rtol=1e-12)
                n_mean += 1
            else:
                assert np.isnan(pred[n, t]).all()
    assert n_self and n_mean
    assert m.self_fraction_ == pytest.approx(n_self / (n_self + n_mean))
    assert m.n_targets_ == GlobalLinear(radius=10.0).fit(ds).n_targets_
    # its pair matrices reproduce the prediction: sum_e g_e A_e x_src
    A = m.interaction_matrices()
    obs = as_recording(ds).obs
    from licchie.fit import build_pairs
    p = build_pairs(obs, 10.0, pair_weight=pair_weight, bandwidth=h)
    gA = A.values * p.gain[:, None, None]
    np.testing.assert_allclose(gA[p.is_self], np.eye(3)[None].repeat(p.is_self.sum(), 0))
    contrib = np.einsum("eab,eb->ea", A.values * p.gain[:, None, None], obs.features[p.src])
    np.testing.assert_allclose(np.add.reduceat(contrib, p.tgt_ptr[:-1], axis=0),
                               m.predict(as_recording(ds)).iloc[:, 3:].to_numpy(float),
                               rtol=1e-12)


def test_persistence_gain_weighted_mean_and_errors(small):
    from licchie.baselines import Persistence
    ds, _ = small
    m = Persistence(radius=10.0, pair_weight="gaussian", bandwidth=3.0).fit(ds)
    assert m.self_fraction_ == 1.0  # every target of the full recording has its self pair
    X = ds["features"].values
    np.testing.assert_array_equal(m.predict(ds).values[:, 1:], X[:, :-1])
    mo = m.motifs(2)
    assert np.all(mo["scale"].values == 1.0)
    with pytest.raises(ValueError, match="include_self"):
        Persistence(include_self=False).fit(ds)
    with pytest.raises(AttributeError, match="not fitted"):
        Persistence().predict(ds)


# ------------------------------------------------------------ ridge per cell
def _cell_design(ds, radius=10.0):
    cells, _, Z, Y = _brute_design(ds, radius)
    return cells, Z, Y


def test_per_cell_ridge_closed_form_and_shrinkage():
    ds, _ = make_recording(**SMALL, seed=7)
    cells, Z, Y = _cell_design(ds)
    glob = np.linalg.lstsq(Z, Y, rcond=None)[0].T
    s = np.sum(Z * Z) / Z.size
    dist = []
    for alpha in (0.0, 0.3, 3.0, 30.0, 1e8):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = PerCellLinear(radius=10.0, alpha=alpha).fit(ds)
        assert m.ridge_ == pytest.approx(alpha * s)
        for c in np.flatnonzero(~m.cell_matrices_["fallback"].values):
            sel = cells == c
            Zc, Yc = Z[sel], Y[sel]
            if alpha == 0:
                ref = np.linalg.lstsq(Zc, Yc, rcond=None)[0].T
            else:
                lam = alpha * s
                eye = np.eye(Zc.shape[1])
                ref = (Yc.T @ Zc + lam * glob) @ np.linalg.inv(Zc.T @ Zc + lam * eye)
            np.testing.assert_allclose(m.cell_matrices_.values[c], ref, rtol=1e-7, atol=1e-9)
        dist.append(np.linalg.norm(m.cell_matrices_.values - glob[None], axis=(1, 2)))
    dist = np.array(dist)
    assert np.all(np.diff(dist, axis=0) <= 1e-12)  # every cell moves toward A~
    assert dist[0].max() > 1e-3 and dist[-1].max() < 1e-6


def test_per_cell_default_is_regularised_and_alpha_validated(small):
    ds, _ = small
    m = PerCellLinear().fit(ds)
    d = ds.sizes["feature"]
    assert m.alpha_ == d
    ref = PerCellLinear(alpha=float(d)).fit(ds)
    np.testing.assert_array_equal(m.cell_matrices_.values, ref.cell_matrices_.values)
    with pytest.raises(ValueError, match="alpha"):
        PerCellLinear(alpha=-1.0).fit(ds)
    with pytest.raises(ValueError, match="alpha"):
        PerCellLinear(alpha=np.nan).fit(ds)


def test_per_cell_warns_on_short_tracks():
    # hidden observations leave some cells with fewer targets than d
    ds, _ = make_recording(**SMALL, hidden_fraction=0.5, seed=5)
    cells, Z, Y = _cell_design(ds)
    counts = np.bincount(cells, minlength=ds.sizes["cell"])
    d = ds.sizes["feature"]
    n_short = int(((counts > 0) & (counts < d)).sum())
    weak = int(((counts >= d) & (counts < 2 * d)).sum())
    assert n_short and weak
    with pytest.warns(UserWarning, match=rf"{n_short} of {int((counts > 0).sum())} target "
                      rf"cells have fewer target observations than min_observations=3") as rec:
        PerCellLinear(radius=10.0).fit(ds)
    assert "alpha=0" not in str(rec[0].message)
    with pytest.warns(UserWarning, match=rf"{weak} cells have fewer than 2d={2 * d}.*alpha > 0"):
        PerCellLinear(radius=10.0, alpha=0).fit(ds)
    full, _ = make_recording(n_cells=(3, 2), n_frames=12, n_features=2, n_components=2, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        PerCellLinear(radius=10.0).fit(full)  # long tracks: no warning


# ------------------------------------------------------------------ population feature spaces
def _brute_space_design(ds, radius):
    """Aggregated sources (NaN features as 0) and targets (NaN kept), by brute force."""
    pos = ds["position"].values
    X = ds["features"].values
    seen = np.isfinite(pos).all(-1) & np.isfinite(X).any(-1)
    Z, Y, P = [], [], []
    for t in range(1, ds.sizes["time"]):
        for n in np.flatnonzero(seen[:, t]):
            z, k_any = np.zeros(X.shape[-1]), False
            for k in np.flatnonzero(seen[:, t - 1]):
                if k == n or np.sqrt(((pos[n, t] - pos[k, t - 1]) ** 2).sum()) <= radius:
                    z += np.nan_to_num(X[k, t - 1])
                    k_any = True
            if k_any:
                Z.append(z)
                Y.append(X[n, t])
                P.append(persist := np.where(seen[n, t - 1], X[n, t - 1], np.nan))
    return np.array(Z), np.array(Y), np.array(P)


def test_baselines_with_population_feature_spaces_match_numpy():
    """Populations with different features: global linear fits each target
    feature on the targets that have it (sources zero-filled), predictions are
    NaN exactly where the target's population lacks the feature, persistence
    repeats the previous state, and heldout_table scores them."""
    from licchie.baselines import Persistence
    from licchie.evaluate import heldout_table
    from licchie.synthetic.spaces import make_space_recording
    ds, _ = make_space_recording(1, n_cells=(10, 10), n_times=12, noise_sd=0.05)
    assert np.isnan(ds["features"].values).any()
    r = 1.5
    Z, Y, P = _brute_space_design(ds, r)
    A = np.full((Y.shape[1], Y.shape[1]), np.nan)
    for a in range(Y.shape[1]):
        rows = np.isfinite(Y[:, a])
        A[a] = np.linalg.lstsq(Z[rows], Y[rows, a], rcond=None)[0]
    g = GlobalLinear(radius=r).fit(ds)
    np.testing.assert_allclose(g.global_matrix_.values, A, rtol=1e-8, atol=1e-10)
    pred = g.predict(ds).transpose("cell", "time", "feature").values[:, 1:]
    X = ds["features"].values[:, 1:]
    done = np.isfinite(pred).any(-1)
    assert done.sum() == len(Y)
    np.testing.assert_array_equal(np.isnan(pred[done]), np.isnan(X[done]))
    fin = np.isfinite(Y)
    yhat = Z @ np.nan_to_num(A).T
    assert g.in_sample_r2_ == pytest.approx(
        1 - np.sum((Y - yhat)[fin] ** 2)
        / np.sum((np.where(fin, Y, 0) - np.nanmean(Y, axis=0))[fin] ** 2), rel=1e-8)
    per = PerCellLinear(radius=r).fit(ds)
    assert np.isfinite(per.in_sample_r2_)
    pers = Persistence(radius=r).fit(ds)
    has = np.isfinite(P).any(1)
    got = pers.predict(ds).transpose("cell", "time", "feature").values[:, 1:]
    Pm = np.where(np.isfinite(Y), P, np.nan)[has]
    gm = got[np.isfinite(got).any(-1)]
    assert np.isfinite(pers.in_sample_r2_)
    assert set(np.round(Pm[np.isfinite(Pm)], 10)) <= set(np.round(gm[np.isfinite(gm)], 10))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = heldout_table(None, ds, baselines={"global": GlobalLinear(radius=r),
                                               "per-cell": PerCellLinear(radius=r),
                                               "persistence": Persistence(radius=r)})
    assert np.isfinite(t["r2"]).all() and np.isfinite(t["mse"]).all()
