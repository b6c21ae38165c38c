"""Tests of licchie.synthetic.make_recording.

Every property is checked against an independent computation from the
returned Datasets (brute-force pairs with scipy, kNN with scikit-learn,
eigenvalues with numpy), never against stored outputs of the generator.
"""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy.spatial.distance import cdist
from sklearn.neighbors import NearestNeighbors

from licchie.synthetic import make_recording


# --------------------------------------------------------------------------
# naive references
# --------------------------------------------------------------------------

def naive_pairs(ds, radius, include_self):
    """MODEL.md pairs from the Dataset alone: set of (time, target, source)."""
    feats = ds["features"].values
    pos = ds["position"].values
    observed = np.isfinite(pos).all(axis=2) & np.isfinite(feats).all(axis=2)
    cells = ds["cell"].values
    times = ds["time"].values
    pairs = set()
    for t in range(1, len(times)):
        tg = np.flatnonzero(observed[:, t])
        sc = np.flatnonzero(observed[:, t - 1])
        if tg.size == 0 or sc.size == 0:
            continue
        dist = cdist(pos[tg, t], pos[sc, t - 1])
        for i, n in enumerate(tg):
            for j, k in enumerate(sc):
                if dist[i, j] <= radius or (include_self and n == k):
                    pairs.add((int(times[t]), int(cells[n]), int(cells[k])))
    return pairs


def naive_predict(ds, truth):
    """sum_e A_e x[k_e, t-1] per (time, target), from the truth's A_e."""
    x = ds["features"]
    A = truth["interaction"].values
    src = x.sel(cell=truth["source"], time=truth["time"] - 1).values   # (pair, d)
    contrib = np.einsum("eab,eb->ea", A, src)
    out = {}
    for e, key in enumerate(zip(truth["time"].values.tolist(),
                                truth["target"].values.tolist())):
        out[key] = out.get(key, 0.0) + contrib[e]
    return out


def pair_set(truth):
    return set(zip(truth["time"].values.tolist(), truth["target"].values.tolist(),
                   truth["source"].values.tolist()))


@pytest.fixture(scope="module")
def pooled_hidden():
    return make_recording(noise=0.0, hidden_fraction=0.3, seed=3)


@pytest.fixture(scope="module")
def paper_hidden():
    return make_recording(regime="paper", noise=0.0, hidden_fraction=0.3, seed=4)


# --------------------------------------------------------------------------
# schema
# --------------------------------------------------------------------------

def test_schema_follows_model_md():
    ds, truth = make_recording(n_frames=6, seed=1)
    assert ds["features"].dims == ("cell", "time", "feature")
    assert ds["position"].dims == ("cell", "time", "space")
    assert ds["population"].dims == ("cell",)
    assert ds["features"].dtype == np.float64
    np.testing.assert_array_equal(ds["cell"].values, np.arange(35))
    np.testing.assert_array_equal(ds["time"].values, np.arange(6))
    assert list(ds["feature"].values) == [f"f{i}" for i in range(10)]
    assert list(ds["space"].values) == ["x", "y"]
    labels, counts = np.unique(ds["population"].values, return_counts=True)
    assert labels.tolist() == ["A", "B"] and counts.tolist() == [25, 10]
    assert truth["target_effect"].dims == ("component", "feature")
    assert truth["source_effect"].dims == ("component", "feature")
    assert truth["weights"].dims == ("pair", "component")
    assert truth["interaction"].dims == ("pair", "target_feature", "source_feature")
    assert truth["class_weights"].dims == ("group", "frame", "component")
    assert truth.sizes["component"] == 8
    for name in ("target", "source", "time", "session", "target_population",
                 "source_population", "is_self"):
        assert truth[name].dims == ("pair",)
    assert set(truth["session"].values.tolist()) == {"0"}
    pop = ds["population"]
    np.testing.assert_array_equal(truth["target_population"].values,
                                  pop.sel(cell=truth["target"].values).values)
    np.testing.assert_array_equal(truth["source_population"].values,
                                  pop.sel(cell=truth["source"].values).values)
    np.testing.assert_array_equal(truth["is_self"].values,
                                  truth["target"].values == truth["source"].values)
    # pairs ordered by (time, target, source), no duplicates
    key = np.stack([truth["time"].values, truth["target"].values,
                    truth["source"].values], axis=1)
    order = np.lexsort(key.T[::-1])
    np.testing.assert_array_equal(order, np.arange(len(order)))
    assert len(pair_set(truth)) == truth.sizes["pair"]


@pytest.mark.parametrize("kwargs", [dict(regime="nope"), dict(n_dims=4),
                                    dict(hidden_fraction=1.0), dict(n_components=101),
                                    dict(density=0.0), dict(n_frames=1)])
def test_invalid_arguments_raise(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        make_recording(**kwargs)


# --------------------------------------------------------------------------
# motifs and weights
# --------------------------------------------------------------------------

@pytest.mark.parametrize("J", [1, 8, 10, 25])
def test_motifs_unit_and_frobenius_orthogonal(J):
    _, truth = make_recording(n_frames=3, n_components=J, seed=J)
    C = truth["target_effect"].values
    R = truth["source_effect"].values
    np.testing.assert_allclose(np.linalg.norm(C, axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(R, axis=1), 1.0, atol=1e-12)
    M = np.stack([np.outer(c, r).ravel() for c, r in zip(C, R)])
    np.testing.assert_allclose(M @ M.T, np.eye(J), atol=1e-12)
    if J <= C.shape[1]:
        np.testing.assert_allclose(C @ C.T, np.eye(J), atol=1e-12)
        np.testing.assert_allclose(R @ R.T, np.eye(J), atol=1e-12)


@pytest.mark.parametrize("regime", ["pooled", "paper"])
def test_interaction_is_the_low_rank_sum(regime):
    _, truth = make_recording(regime=regime, n_frames=8, seed=2)
    A = np.einsum("ej,ja,jb->eab", truth["weights"].values,
                  truth["target_effect"].values, truth["source_effect"].values)
    np.testing.assert_allclose(truth["interaction"].values, A, atol=1e-12)


@pytest.mark.parametrize("density", [0.2, 0.5])
def test_pooled_class_profiles_sparse_smooth_and_shared(density):
    ds, truth = make_recording(density=density, deviation=0.05, seed=7)
    cw = truth["class_weights"]
    G, J = cw.sizes["group"], cw.sizes["component"]
    assert set(cw["group"].values.tolist()) == {"A<-A", "A<-B", "B<-A", "B<-B", "self"}
    active = (cw != 0).any("frame").values                 # (group, component)
    # an entry is either active at all frames or never
    np.testing.assert_array_equal((cw != 0).all("frame").values, active)
    assert abs(active.mean() - density) <= 0.5 / (G * J) + 1e-12
    # every motif and every class is used (identifiability)
    assert active.any(axis=0).all() and active.any(axis=1).all()
    # smooth in time: the profile without the frame scale changes slowly
    base = (cw / truth["frame_scale"]).values
    assert np.abs(np.diff(base, axis=1)).max() <= 0.25
    # each pair's weights are its class profile times one scalar per target
    # (target_gain) up to small relative deviations
    W = truth["weights"].values
    prof = cw.sel(group=truth["interaction_class"],
                  frame=truth["time"]).transpose("pair", "component").values
    assert not np.any((W != 0) & (prof == 0))
    on = prof != 0
    ratio = np.where(on, W / np.where(on, prof, 1.0), np.nan)
    gain = truth["target_gain"].values
    dev = ratio / gain[:, None] - 1.0
    assert abs(np.nanmean(dev)) < 0.01
    assert 0.04 < np.nanstd(dev) < 0.06
    # the scalar is shared by all pairs of a target (checked without target_gain)
    key = truth["time"].values * 10_000 + truth["target"].values
    _, grp = np.unique(key, return_inverse=True)
    logr = np.log(np.abs(ratio))
    sums = np.bincount(grp, weights=np.nansum(logr, axis=1))
    counts = np.bincount(grp, weights=on.sum(axis=1))
    centred = logr - (sums / counts)[grp][:, None]
    assert 0.03 < np.nanstd(centred) < 0.06
    # class labels follow the populations
    cls = truth["interaction_class"].values
    expect = np.where(truth["is_self"].values, "self",
                      np.char.add(np.char.add(truth["target_population"].values.astype(str),
                                              "<-"),
                                  truth["source_population"].values.astype(str)))
    np.testing.assert_array_equal(cls, expect)


def test_paper_regime_knn_candidates_and_sparsity(paper_hidden):
    ds, truth = paper_hidden
    k = ds.attrs["n_neighbors"]
    x0 = ds["features"].isel(time=0).values
    nn = NearestNeighbors(n_neighbors=k + 1).fit(x0)
    _, idx = nn.kneighbors(x0)
    cand = {(n, int(m)) for n in range(len(x0)) for m in idx[n] if m != n}
    tgt, src = truth["target"].values, truth["source"].values
    expect = np.array([(n, m) in cand for n, m in zip(tgt, src)]) | (tgt == src)
    inter = truth["interacting"].values
    np.testing.assert_array_equal(inter, expect)
    # in-radius neighbours that do not interact exist and have A_e = 0
    assert (~inter).sum() > 50
    assert np.all(truth["weights"].values[~inter] == 0)
    assert np.all(truth["interaction"].values[~inter] == 0)
    # about `density` of the interacting pairs' weights are non-zero
    nz = truth["weights"].values[inter] != 0
    p, n = ds.attrs["density"], nz.size
    assert abs(nz.mean() - p) < 5 * np.sqrt(p * (1 - p) / n)


# --------------------------------------------------------------------------
# pairs and dynamics
# --------------------------------------------------------------------------

@pytest.mark.parametrize("n_dims", [2, 3])
@pytest.mark.parametrize("include_self", [True, False])
def test_pairs_equal_brute_force(n_dims, include_self):
    ds, truth = make_recording(n_frames=12, hidden_fraction=0.25, n_dims=n_dims,
                               include_self=include_self, seed=11)
    assert list(ds["space"].values) == ["x", "y", "z"][:n_dims]
    assert ds["position"].shape == (35, 12, n_dims)
    expect = naive_pairs(ds, ds.attrs["radius"], include_self)
    assert pair_set(truth) == expect
    # both kinds of pairs occur
    assert truth["is_self"].values.any() and (~truth["is_self"].values).any()
    if include_self:
        # the self pair of every target whose previous observation is visible
        vis = np.isfinite(ds["features"].values).all(axis=2)
        n_self = int((vis[:, 1:] & vis[:, :-1]).sum())
        assert int(truth["is_self"].values.sum()) == n_self


@pytest.mark.parametrize("which", ["pooled_hidden", "paper_hidden"])
def test_dynamics_identity_exact_without_noise(which, request):
    ds, truth = request.getfixturevalue(which)
    pred = naive_predict(ds, truth)
    x = ds["features"].values
    vis = np.isfinite(x).all(axis=2)
    free = truth["free_evolution"].values
    checked = 0
    for t in range(1, ds.sizes["time"]):
        for n in np.flatnonzero(vis[:, t]):
            if (t, n) in pred:
                assert not free[n, t]
                np.testing.assert_allclose(x[n, t], pred[(t, n)], rtol=1e-10, atol=1e-12)
                checked += 1
            else:
                assert free[n, t]
    assert checked > 0.6 * vis[:, 1:].sum()
    # the observed features are the simulated state where visible
    state = truth["state"].values
    np.testing.assert_array_equal(x[vis], state[vis])
    assert np.isfinite(state).all()


def test_noise_is_the_residual_of_the_identity():
    ds, truth = make_recording(noise=0.05, n_frames=20, seed=5)
    pred = naive_predict(ds, truth)
    x = ds["features"].values
    res = np.array([x[n, t] - p for (t, n), p in pred.items()])
    assert abs(res.mean()) < 0.01
    assert abs(res.std() / 0.05 - 1) < 0.1


@pytest.mark.parametrize("regime", ["pooled", "paper"])
def test_spectral_radius_and_frame_scale(regime):
    ds, truth = make_recording(regime=regime, noise=0.0, seed=9)
    rho_max = ds.attrs["max_spectral_radius"]
    A = truth["interaction"].values
    s = truth["frame_scale"]
    summed = {}
    for e, (t, n) in enumerate(zip(truth["time"].values, truth["target"].values)):
        summed[(t, n)] = summed.get((t, n), 0.0) + A[e]
    radii = np.array([np.abs(np.linalg.eigvals(M)).max() / float(s.sel(frame=t))
                      for (t, n), M in summed.items()])
    assert radii.max() <= rho_max + 1e-9 < 1
    # the cap binds for some targets (the test could fail)
    assert (radii > rho_max - 1e-6).any()
    # the frame renormalisation keeps the root-mean-square of frame 0 ...
    x = ds["features"].values
    rms = np.sqrt(np.mean(x ** 2, axis=(0, 2)))
    np.testing.assert_allclose(rms, rms[0], rtol=1e-8)
    # ... and bounds every cell's norm
    norms = np.linalg.norm(x, axis=2)
    assert norms.max() <= ds.attrs["max_norm_ratio"] * rms[0] * np.sqrt(x.shape[2]) * (1 + 1e-9)


def test_balance_pulls_cells_to_a_common_scale():
    def spread(balance):
        ds, truth = make_recording(noise=0.0, seed=2, balance=balance)
        norms = np.linalg.norm(ds["features"].values[:, -10:], axis=2)
        return np.quantile(norms, 0.9) / np.quantile(norms, 0.1), ds, truth

    s0, _, _ = spread(0.0)
    s1, ds1, truth1 = spread(1.0)
    assert s1 < 0.5 * s0
    # still exact dynamics
    pred = naive_predict(ds1, truth1)
    x = ds1["features"].values
    for (t, n), p in pred.items():
        np.testing.assert_allclose(x[n, t], p, rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------
# options
# --------------------------------------------------------------------------

def test_reproducible_from_seed_and_different_across_seeds():
    a = make_recording(n_frames=10, hidden_fraction=0.2, regime="paper", seed=5)
    b = make_recording(n_frames=10, hidden_fraction=0.2, regime="paper", seed=5)
    c = make_recording(n_frames=10, hidden_fraction=0.2, regime="paper", seed=6)
    xr.testing.assert_identical(a[0], b[0])
    xr.testing.assert_identical(a[1], b[1])
    assert not np.allclose(np.nan_to_num(a[0]["features"].values),
                           np.nan_to_num(c[0]["features"].values))
    assert not np.array_equal(a[1]["target_effect"].values, c[1]["target_effect"].values)


def test_hidden_fraction_honoured():
    ds, _ = make_recording(n_frames=30, hidden_fraction=0.3, scale=2, seed=8)
    feats = ds["features"].values
    pos = ds["position"].values
    hid_f = np.isnan(feats).all(axis=2)
    # a hidden observation is hidden in every feature and in position
    np.testing.assert_array_equal(hid_f, np.isnan(feats).any(axis=2))
    np.testing.assert_array_equal(hid_f, np.isnan(pos).any(axis=2))
    assert not hid_f[:, 0].any()
    n = hid_f[:, 1:].size
    assert abs(hid_f[:, 1:].mean() - 0.3) < 5 * np.sqrt(0.3 * 0.7 / n)
    ds0, _ = make_recording(n_frames=5, seed=8)
    assert np.isfinite(ds0["features"].values).all()


def test_scale_keeps_neighbours_per_target():
    def per_target(scale):
        ds, truth = make_recording(n_frames=6, scale=scale, seed=10)
        n_targets = len(set(zip(truth["time"].values.tolist(),
                                truth["target"].values.tolist())))
        return ds.sizes["cell"], truth.sizes["pair"] / n_targets
    n1, k1 = per_target(1)
    n4, k4 = per_target(4)
    assert (n1, n4) == (35, 140)
    assert 0.7 < k4 / k1 < 1.5


@pytest.mark.parametrize("regime", ["pooled", "paper"])
def test_netcdf_round_trip(regime, tmp_path):
    ds, truth = make_recording(regime=regime, n_frames=5, hidden_fraction=0.2,
                               n_dims=3, seed=12)
    ds.to_netcdf(tmp_path / "ds.nc")
    truth.to_netcdf(tmp_path / "truth.nc")
    with xr.open_dataset(tmp_path / "ds.nc") as back:
        xr.testing.assert_identical(back.load(), ds)
    with xr.open_dataset(tmp_path / "truth.nc") as back:
        back = back.load()
        xr.testing.assert_identical(back, truth)
        assert back["is_self"].dtype == bool


# --------------------------------------------------------------------------
# regimes of the suite (issue 14, item 4)
# --------------------------------------------------------------------------

from licchie.synthetic import SUITE, make_suite_recording  # noqa: E402


def _class_of_pairs(truth):
    """(pair, component) bool: the pair's class uses the motif (class_motifs)."""
    cm = truth["class_motifs"]
    return cm.sel(group=truth["interaction_class"]).transpose("pair", "component").values


@pytest.mark.parametrize("usage, per_motif", [("shared", 2), ("owned", 1), (3, 3)])
def test_motif_usage_sets_classes_per_motif(usage, per_motif):
    ds, truth = make_recording(n_frames=8, motif_usage=usage, seed=21)
    cm = truth["class_motifs"].values                      # (group, component)
    assert cm.shape == (5, 8)
    np.testing.assert_array_equal(cm.sum(axis=0), per_motif)
    assert cm.any(axis=1).all()                            # every class used
    # the pairs' non-zero weights are exactly their class's motifs
    np.testing.assert_array_equal(truth["weights"].values != 0, _class_of_pairs(truth))
    np.testing.assert_array_equal(truth["motif_used"].values, cm.any(axis=0))


def test_shared_regime_each_motif_in_several_classes():
    _, truth = make_suite_recording("shared", seed=1, n_frames=6)
    used_by = truth["class_motifs"].values.sum(axis=0)
    assert (used_by >= 2).all()
    _, truth = make_suite_recording("owned", seed=1, n_frames=6)
    np.testing.assert_array_equal(truth["class_motifs"].values.sum(axis=0), 1)


def test_motif_used_marks_unused_motifs():
    # one active (class, motif) entry: the other motifs have no pair
    _, truth = make_recording(n_frames=5, density=0.01, seed=3)
    used = truth["motif_used"].values
    assert used.sum() == 1
    np.testing.assert_array_equal(used, (truth["weights"].values != 0).any(axis=0))


def test_no_gains_weights_are_the_class_profile():
    ds, truth = make_recording(n_frames=15, balance=0.0, max_spectral_radius=None,
                               deviation=0.0, noise=0.0, seed=4)
    gain = truth["target_gain"].values
    clamped = truth["target_clamped"].values
    assert (gain[~clamped] == 1.0).all()
    assert (gain[clamped] < 1.0).all()
    # with deviation 0 an unclamped pair's weights are its class's, at its frame
    prof = truth["class_weights"].sel(group=truth["interaction_class"],
                                      frame=truth["time"]).transpose("pair", "component")
    np.testing.assert_allclose(truth["weights"].values[~clamped], prof.values[~clamped],
                               rtol=1e-12, atol=0)
    # still the exact dynamics
    pred = naive_predict(ds, truth)
    x = ds["features"].values
    for (t, n), p in pred.items():
        np.testing.assert_allclose(x[n, t], p, rtol=1e-10, atol=1e-12)


def test_gains_regime_has_per_target_gains():
    _, truth = make_suite_recording("shared_gains", seed=2, n_frames=10)
    assert np.mean(truth["target_gain"].values != 1.0) > 0.5


def test_static_profiles_and_constant_frame_scale():
    _, truth = make_suite_recording("shared_static", seed=5, n_frames=12)
    fs = truth["frame_scale"].values
    np.testing.assert_array_equal(fs, fs[0])
    cw = truth["class_weights"].values                      # (group, frame, component)
    np.testing.assert_array_equal(cw, cw[:, :1, :].repeat(cw.shape[1], axis=1))


def test_self_classes_per_population():
    _, truth = make_recording(n_frames=8, self_classes="population",
                              motif_usage="shared", seed=6)
    groups = truth["group"].values.tolist()
    assert groups == ["A<-A", "A<-B", "B<-A", "B<-B", "self A", "self B"]
    cls = truth["interaction_class"].values
    is_self = truth["is_self"].values
    expect = np.char.add("self ", truth["target_population"].values.astype(str))
    np.testing.assert_array_equal(cls[is_self], expect[is_self])
    assert not np.isin(cls[~is_self], ["self A", "self B"]).any()
    np.testing.assert_array_equal(truth["class_motifs"].values.sum(axis=0), 3)
    # the default keeps one self class
    _, t1 = make_recording(n_frames=4, seed=6)
    assert "self" in t1["group"].values.tolist() and t1.sizes["group"] == 5


def test_heldout6_regime():
    ds, truth = make_suite_recording("heldout6", seed=0, n_frames=6)
    assert truth.sizes["group"] == 6 and ds.sizes["cell"] == 35
    assert truth["interacting"].values.all()
    assert ds.attrs["noise"] == 0.01 and ds.attrs["balance"] == 0
    assert (truth["class_motifs"].values.sum(axis=0) == 3).all()
    # no per-target gains at all: a pair's weights are its class's, times 1 + dev
    assert (truth["target_gain"].values == 1.0).all()
    assert not truth["target_clamped"].values.any()


@pytest.mark.parametrize("profiles", ["shared", "per_session"])
def test_sessions_never_pair_across(profiles):
    ds, truth = make_recording(n_frames=8, n_sessions=3, session_profiles=profiles,
                               hidden_fraction=0.2, noise=0.0, seed=7)
    assert ds.sizes["cell"] == 105
    cell_sess = ds["session"].values
    assert sorted(set(cell_sess.tolist())) == ["0", "1", "2"]
    sess = truth["session"].values
    np.testing.assert_array_equal(cell_sess[truth["target"].values], sess)
    np.testing.assert_array_equal(cell_sess[truth["source"].values], sess)
    # within a session, the pairs are the brute-force ones of that session alone
    for k in ("0", "1", "2"):
        sub = ds.isel(cell=np.flatnonzero(cell_sess == k))
        mine = pair_set(truth.isel(pair=np.flatnonzero(sess == k)))
        assert mine == naive_pairs(sub, ds.attrs["radius"], True)
    # exact dynamics, shared motifs, per-session frame scales
    pred = naive_predict(ds, truth)
    x = ds["features"].values
    for (t, n), p in pred.items():
        np.testing.assert_allclose(x[n, t], p, rtol=1e-10, atol=1e-12)
    assert truth["frame_scale"].dims == ("sessions", "frame")
    base = (truth["class_weights"] / truth["frame_scale"]).values  # (sessions, group, frame, J)
    if profiles == "shared":
        np.testing.assert_allclose(base[1], base[0], rtol=1e-12)
    else:
        assert not np.allclose(base[1], base[0])
        np.testing.assert_array_equal(base[1] != 0, base[0] != 0)


def test_sessions_recording_is_read_as_sessions():
    import licchie
    ds, truth = make_suite_recording("sessions", seed=1, n_frames=5)
    rec = licchie.as_recording(ds)
    assert rec.n_sessions == 3


def test_3d_positions():
    ds, truth = make_suite_recording("shared_3d", seed=2, n_frames=6)
    assert list(ds["space"].values) == ["x", "y", "z"]
    assert ds["position"].shape == (35, 6, 3)
    assert pair_set(truth) == naive_pairs(ds, ds.attrs["radius"], True)


def test_4x_has_four_times_the_cells():
    ds, _ = make_suite_recording("shared_4x", seed=2, n_frames=3)
    assert ds.sizes["cell"] == 140


@pytest.mark.parametrize("name", sorted(SUITE))
def test_suite_reproducible_from_seed(name):
    a = make_suite_recording(name, seed=3, n_frames=5)
    b = make_suite_recording(name, seed=3, n_frames=5)
    c = make_suite_recording(name, seed=4, n_frames=5)
    xr.testing.assert_identical(a[0], b[0])
    xr.testing.assert_identical(a[1], b[1])
    assert a[0].attrs["suite_regime"] == name
    assert not np.array_equal(a[1]["target_effect"].values, c[1]["target_effect"].values)


def test_unknown_suite_regime():
    with pytest.raises(ValueError, match="nope"):
        make_suite_recording("nope")


def test_new_options_default_to_the_old_recording():
    a = make_recording(n_frames=6, hidden_fraction=0.2, seed=13)
    b = make_recording(n_frames=6, hidden_fraction=0.2, seed=13, motif_usage=None,
                       profile_time="smooth", frame_scaling="per_frame",
                       self_classes="single", n_sessions=1, session_profiles="shared",
                       max_spectral_radius=0.95, balance=0.5)
    xr.testing.assert_identical(a[0], b[0])
    xr.testing.assert_identical(a[1], b[1])
    assert "session" not in a[0].coords
    assert a[1]["frame_scale"].dims == ("frame",)


@pytest.mark.parametrize("kwargs", [dict(motif_usage="half"), dict(motif_usage=0),
                                    dict(profile_time="wavy"), dict(frame_scaling="no"),
                                    dict(self_classes="pair"), dict(n_sessions=0),
                                    dict(session_profiles="mixed"),
                                    dict(max_spectral_radius=1.5)])
def test_invalid_regime_arguments_raise(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        make_recording(**kwargs)


def test_netcdf_round_trip_of_sessions(tmp_path):
    ds, truth = make_suite_recording("sessions_own", seed=1, n_frames=4)
    ds.to_netcdf(tmp_path / "ds.nc")
    truth.to_netcdf(tmp_path / "truth.nc")
    with xr.open_dataset(tmp_path / "ds.nc") as back:
        xr.testing.assert_identical(back.load(), ds)
    with xr.open_dataset(tmp_path / "truth.nc") as back:
        back = back.load()
        xr.testing.assert_identical(back, truth)
        assert back["motif_used"].dtype == bool
