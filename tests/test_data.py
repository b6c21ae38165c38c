"""Tests of licchie.data: Recording construction, validation and round trips.

Expected observation lists come from plain loops written here (``naive_*``),
never from the code under test.
"""
from __future__ import annotations

import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from licchie.data import Observations, Recording, as_recording, from_dataset, from_table

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TEB = DATA / "mammary_teb_2d_trackmate" / "raw"


# ---------------------------------------------------------------------------
# naive references
# ---------------------------------------------------------------------------

def naive_from_dataset(ds):
    """Expected observations of a MODEL.md Dataset, by plain loops.

    Sessions in sorted order, every session with a frame per time label,
    observations of a frame by cell position in the Dataset.  Populations
    may have different feature sets (a row needs only its population's).
    """
    F = ds["features"].transpose("cell", "time", "feature").values.astype(float)
    s = ds.sizes["space"]
    P = ds["position"].transpose("cell", "time", "space").sel(space=["x", "y", "z"][:s]).values.astype(float)
    pops = list(ds["population"].values)
    N, T, d = F.shape
    sess = list(ds["session"].values) if "session" in ds.coords else [None] * N
    sessions = sorted(set(sess), key=lambda v: (v is None, v))

    feature_set = {}
    for p in set(pops):
        feature_set[p] = {j for j in range(d) for n in range(N)
                          if pops[n] == p and any(np.isfinite(F[n, t, j]) for t in range(T))}
    kept = sorted(set().union(*feature_set.values()))

    out = dict(features=[], positions=[], cell=[], frame=[], prev_frame=[], frame_session=[],
               frame_ptr=[0], observed=np.zeros((N, T), bool), partial=0, kept=kept)
    for si, sv in enumerate(sessions):
        for t in range(T):
            f = si * T + t
            out["prev_frame"].append(-1 if t == 0 else f - 1)
            out["frame_session"].append(si)
            for n in range(N):
                if sess[n] != sv:
                    continue
                need = [j for j in kept if j in feature_set[pops[n]]]
                ok = all(np.isfinite(F[n, t, j]) for j in need) and all(np.isfinite(P[n, t]))
                if ok:
                    out["features"].append([F[n, t, j] for j in kept])
                    out["positions"].append(list(P[n, t]))
                    out["cell"].append(n)
                    out["frame"].append(f)
                    out["observed"][n, t] = True
                elif any(np.isfinite(F[n, t, j]) for j in range(d)) or any(np.isfinite(P[n, t])):
                    out["partial"] += 1
            out["frame_ptr"].append(len(out["cell"]))
    return out


def naive_from_table(rows, n_features, s):
    """Expected observations of a long table given as a list of dicts.

    Each row: session, cell, frame, pos (list), feat (list), pop.  One
    population, all features present somewhere.  Sessions sorted, cells
    sorted by (session, id), frames from each session's first to last frame.
    """
    sessions = sorted({r["session"] for r in rows})
    cells = sorted({(r["session"], r["cell"]) for r in rows},
                   key=lambda sc: (sessions.index(sc[0]), sc[1]))
    out = dict(features=[], positions=[], cell=[], frame=[], prev_frame=[], frame_ptr=[0],
               cell_ids=[c for _, c in cells], time_values=[])
    f = 0
    for si, sv in enumerate(sessions):
        frames = [r["frame"] for r in rows if r["session"] == sv]
        lo, hi = min(frames), max(frames)
        out["time_values"].append(list(range(lo, hi + 1)))
        for fr in range(lo, hi + 1):
            out["prev_frame"].append(-1 if fr == lo else f - 1)
            here = [r for r in rows if r["session"] == sv and r["frame"] == fr
                    and all(np.isfinite(r["feat"])) and all(np.isfinite(r["pos"]))]
            here.sort(key=lambda r: cells.index((sv, r["cell"])))
            for r in here:
                out["features"].append(r["feat"])
                out["positions"].append(r["pos"])
                out["cell"].append(cells.index((sv, r["cell"])))
                out["frame"].append(f)
            out["frame_ptr"].append(len(out["cell"]))
            f += 1
    return out


def assert_obs_equal(obs, ref, d, s):
    n = len(ref["cell"])
    np.testing.assert_array_equal(obs.features, np.asarray(ref["features"], float).reshape(n, d))
    np.testing.assert_array_equal(obs.positions, np.asarray(ref["positions"], float).reshape(n, s))
    np.testing.assert_array_equal(obs.cell, ref["cell"])
    np.testing.assert_array_equal(obs.frame, ref["frame"])
    np.testing.assert_array_equal(obs.frame_ptr, ref["frame_ptr"])
    np.testing.assert_array_equal(obs.prev_frame, ref["prev_frame"])


def assert_layout(obs):
    """Dtype and layout promises of Observations, checked on any result."""
    for name in ("features", "positions"):
        a = getattr(obs, name)
        assert a.dtype == np.float64 and a.flags.c_contiguous and a.ndim == 2
    assert np.isfinite(obs.positions).all()
    for name in ("cell", "frame", "frame_ptr", "prev_frame", "frame_session",
                 "frame_time_index", "cell_population"):
        assert getattr(obs, name).dtype == np.int64, name
    assert obs.frame_ptr[0] == 0 and obs.frame_ptr[-1] == obs.n_obs
    assert np.all(np.diff(obs.frame_ptr) >= 0)
    np.testing.assert_array_equal(np.repeat(np.arange(obs.n_frames), np.diff(obs.frame_ptr)), obs.frame)
    # Session-major, sessions' frames consecutive, prev_frame within session.
    assert np.all(np.diff(obs.frame_session) >= 0)
    has_prev = obs.prev_frame >= 0
    assert np.all(obs.frame_session[obs.prev_frame[has_prev]] == obs.frame_session[has_prev])
    assert np.all(obs.frame_time_index[obs.prev_frame[has_prev]] == obs.frame_time_index[has_prev] - 1)
    assert np.all(obs.frame_time_index[~has_prev] == 0)
    for f in range(obs.n_frames):  # within a frame, by cell index, each cell once
        c = obs.cell[obs.frame_ptr[f]:obs.frame_ptr[f + 1]]
        assert np.all(np.diff(c) > 0)
    for k, tv in enumerate(obs.time_values):
        assert len(tv) == np.sum(obs.frame_session == k)


# ---------------------------------------------------------------------------
# builders
# ---------------------------------------------------------------------------

def make_dataset(rng, n_cells=6, n_times=5, d=3, s=2, n_sessions=1, n_pops=1,
                 p_missing=0.2, p_partial=0.0, session_labels=None):
    F = rng.normal(size=(n_cells, n_times, d))
    P = rng.uniform(0, 10, size=(n_cells, n_times, s))
    missing = rng.random((n_cells, n_times)) < p_missing
    F[missing] = np.nan
    P[missing] = np.nan
    partial = rng.random((n_cells, n_times, d + s)) < p_partial
    F[partial[..., :d]] = np.nan
    P[partial[..., d:]] = np.nan
    coords = {"cell": [f"c{i}" for i in range(n_cells)], "time": np.arange(n_times) * 0.5,
              "feature": [f"f{j}" for j in range(d)], "space": ["x", "y", "z"][:s]}
    if n_sessions > 1:
        labels = session_labels or [f"s{k}" for k in range(n_sessions)]
        coords["session"] = ("cell", [labels[i % n_sessions] for i in range(n_cells)])
    pop = [["a", "b", "c"][i % n_pops] for i in range(n_cells)]
    return xr.Dataset({"features": (("cell", "time", "feature"), F),
                       "position": (("cell", "time", "space"), P),
                       "population": ("cell", pop)}, coords=coords)


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return fn(*args, **kwargs)


def dataset_to_long(ds):
    """Every (cell, time) of a Dataset as a table row, NaNs included."""
    s = ds.sizes["space"]
    names = ["x", "y", "z"][:s]
    F = ds["features"].transpose("cell", "time", "feature").values
    P = ds["position"].transpose("cell", "time", "space").values
    N, T, d = F.shape
    data = {"cell": np.repeat(ds["cell"].values, T), "frame": np.tile(np.arange(T), N),
            "population": np.repeat(ds["population"].values, T)}
    for k, nm in enumerate(names):
        data[nm] = P[:, :, k].ravel()
    for j, f in enumerate(ds["feature"].values):
        data[str(f)] = F[:, :, j].ravel()
    if "session" in ds.coords:
        data["session"] = np.repeat(ds["session"].values, T)
    return pd.DataFrame(data)


# ---------------------------------------------------------------------------
# from_dataset against the reference
# ---------------------------------------------------------------------------

@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), n_cells=st.integers(1, 6), n_times=st.integers(1, 5),
       d=st.integers(1, 3), s=st.sampled_from([2, 3]), n_sessions=st.integers(1, 3),
       n_pops=st.integers(1, 2), p_missing=st.sampled_from([0.0, 0.3, 0.7, 1.0]),
       p_partial=st.sampled_from([0.0, 0.05, 0.3]), transpose=st.booleans())
def test_from_dataset_matches_naive(seed, n_cells, n_times, d, s, n_sessions, n_pops,
                                    p_missing, p_partial, transpose):
    rng = np.random.default_rng(seed)
    ds = make_dataset(rng, n_cells, n_times, d, s, n_sessions, n_pops, p_missing, p_partial)
    ref = naive_from_dataset(ds)
    if transpose:  # any dim order (and space order) is accepted
        ds = ds.transpose("feature", "space", "time", "cell").isel(space=slice(None, None, -1))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rec = Recording.from_dataset(ds)
    msgs = [str(w.message) for w in caught]
    partial_msgs = [m for m in msgs if "some but not all" in m]
    if ref["partial"]:
        assert len(partial_msgs) == 1 and partial_msgs[0].startswith(f"{ref['partial']} cell-time")
    else:
        assert not partial_msgs
    assert any("never finite" in m for m in msgs) == (len(ref["kept"]) < d)

    obs = rec.obs
    assert_layout(obs)
    assert_obs_equal(obs, ref, len(ref["kept"]), s)
    n_sess = len(set(ds["session"].values)) if "session" in ds.coords else 1
    assert rec.n_sessions == n_sess and rec.n_frames == n_sess * n_times
    assert rec.n_cells == n_cells
    assert rec.feature_names == tuple(f"f{j}" for j in ref["kept"])
    assert rec.space_names == ("x", "y", "z")[:s]
    np.testing.assert_array_equal(obs.cell_ids, ds["cell"].values)
    for tv in obs.time_values:
        np.testing.assert_array_equal(tv, ds["time"].values)

    # Round trip: exact where observed, NaN elsewhere, same labels.
    back = rec.to_dataset()
    orig = ds.transpose("cell", "time", "feature", "space").sel(
        space=["x", "y", "z"][:s], feature=[f"f{j}" for j in ref["kept"]])
    mask = ref["observed"]
    for var in ("features", "position"):
        want = np.where(mask[:, :, None], orig[var].values, np.nan)
        np.testing.assert_array_equal(back[var].values, want)
    for c in ("cell", "time", "feature", "space"):
        np.testing.assert_array_equal(back[c].values, orig[c].values)
    np.testing.assert_array_equal(back["population"].values, ds["population"].values)
    if "session" in ds.coords:
        np.testing.assert_array_equal(back["session"].values, ds["session"].values)
    else:
        assert "session" not in back.coords


def test_long_table_of_dataset_equals_dataset():
    # Same data in both layouts must give the same observation list.
    rng = np.random.default_rng(1)
    ds = make_dataset(rng, n_cells=8, n_times=6, d=2, s=3, n_sessions=2, n_pops=2, p_missing=0.4)
    ds = ds.assign_coords(time=np.arange(6))
    a = Recording.from_dataset(ds).obs
    b = Recording.from_table(dataset_to_long(ds), session="session").obs
    for name in ("features", "positions", "frame", "frame_ptr", "prev_frame", "frame_session",
                 "frame_time_index", "population"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    # Cells are numbered differently (Dataset order vs session-major); compare labels.
    np.testing.assert_array_equal(a.cell_ids[a.cell], b.cell_ids[b.cell])


def test_netcdf_round_trip(tmp_path):
    rng = np.random.default_rng(2)
    ds = make_dataset(rng, n_sessions=2, n_pops=2, p_missing=0.3)
    rec = Recording.from_dataset(ds)
    path = tmp_path / "rec.nc"
    rec.to_dataset().to_netcdf(path)
    again = as_recording(path)
    for name in ("features", "positions", "cell", "frame_ptr", "prev_frame"):
        np.testing.assert_array_equal(getattr(rec.obs, name), getattr(again.obs, name))
    assert again.session_names == rec.session_names


def test_space_order_and_int_labels():
    rng = np.random.default_rng(3)
    ds = make_dataset(rng, p_missing=0.0)
    swapped = ds.isel(space=[1, 0])
    a, b = Recording.from_dataset(ds), Recording.from_dataset(swapped)
    np.testing.assert_array_equal(a.obs.positions, b.obs.positions)
    np.testing.assert_array_equal(a.obs.positions[:, 0],
                                  ds["position"].sel(space="x").values.T.ravel())  # frame-major
    # Integer population and session labels survive the round trip with their type.
    ds2 = ds.assign(population=("cell", [1, 2, 1, 2, 1, 2])).assign_coords(
        session=("cell", [7, 7, 7, 9, 9, 9]))
    rec = Recording.from_dataset(ds2)
    assert rec.population_names == ("1", "2") and rec.session_names == ("7", "9")
    back = rec.to_dataset()
    assert back["population"].dtype.kind == "i" and back["session"].dtype.kind == "i"
    np.testing.assert_array_equal(back["session"].values, ds2["session"].values)


def test_single_session_label_and_repr():
    rng = np.random.default_rng(4)
    ds = make_dataset(rng, p_missing=0.0)
    rec = Recording.from_dataset(ds, session="day1")
    assert rec.session_names == ("day1",)
    assert list(rec.to_dataset()["session"].values) == ["day1"] * ds.sizes["cell"]
    text = repr(rec)
    assert "\n" not in text and "30 observations" in text and "6 cells" in text


def test_partially_observed_warning_counts():
    rng = np.random.default_rng(5)
    ds = make_dataset(rng, n_cells=3, n_times=3, d=2, p_missing=0.0)
    F = ds["features"].values.copy()
    P = ds["position"].values.copy()
    F[0, 0, 1] = np.nan          # one feature missing
    F[1, 1, :] = np.nan          # all features missing, position finite
    P[2, 2, 0] = np.nan          # features finite, position partly missing
    F[2, 0, :] = np.nan
    P[2, 0, :] = np.nan          # fully unobserved: not counted
    ds = ds.assign(features=(ds["features"].dims, F), position=(ds["position"].dims, P))
    with pytest.warns(UserWarning, match=r"^3 cell-time entries") as record:
        rec = Recording.from_dataset(ds)
    assert len([w for w in record if "some but not all" in str(w.message)]) == 1
    assert rec.n_obs == 9 - 4


# ---------------------------------------------------------------------------
# Dataset validation errors: each names the problem and the fix
# ---------------------------------------------------------------------------

@pytest.fixture
def ds():
    return make_dataset(np.random.default_rng(6), p_missing=0.1)


def test_error_not_a_dataset(ds):
    with pytest.raises(TypeError, match="from_table"):
        Recording.from_dataset(dataset_to_long(ds))
    with pytest.raises(TypeError, match=r"to_dataset\(name"):
        Recording.from_dataset(ds["features"])


@pytest.mark.parametrize("var", ["features", "position", "population"])
def test_error_missing_variable(ds, var):
    bad = ds.rename({var: "something"})
    with pytest.raises(ValueError, match=rf"missing the '{var}' variable.*Rename your {var} variable to '{var}'"):
        Recording.from_dataset(bad)


def test_error_wrong_dims(ds):
    bad = ds.rename({"feature": "channel"})
    with pytest.raises(ValueError, match=r"'features' has dims .*channel.*rename"):
        Recording.from_dataset(bad)
    bad = ds.assign(position=ds["position"].expand_dims(z=2))
    with pytest.raises(ValueError, match=r"'position' has dims .*any order"):
        Recording.from_dataset(bad)


@pytest.mark.parametrize("coord", ["cell", "time", "feature", "space"])
def test_error_missing_coordinate(ds, coord):
    with pytest.raises(ValueError, match=rf"no '{coord}' coordinate.*assign_coords"):
        Recording.from_dataset(ds.drop_vars(coord))


@pytest.mark.parametrize("coord", ["cell", "time"])
def test_error_duplicate_labels(ds, coord):
    labels = ds[coord].values.copy()
    labels[1] = labels[0]
    with pytest.raises(ValueError, match=rf"'{coord}' has duplicate labels \[{labels[0].item()!r}\].*unique"):
        Recording.from_dataset(ds.assign_coords({coord: labels}))


@pytest.mark.parametrize("space", [["x", "q"], ["x"], ["x", "y", "z", "w"], ["u", "v", "w"]])
def test_error_space_labels(space):
    rng = np.random.default_rng(7)
    base = make_dataset(rng, s=3 if len(space) != 2 else 2)
    if len(space) != base.sizes["space"]:
        base = base.isel(space=np.arange(len(space)) % base.sizes["space"])
    bad = base.assign_coords(space=space)
    with pytest.raises(ValueError, match=r"must be \['x', 'y'\] \(2D\) or \['x', 'y', 'z'\].*assign_coords"):
        Recording.from_dataset(bad)


@pytest.mark.parametrize("var", ["features", "position"])
def test_error_infinite(ds, var):
    values = ds[var].values.copy()
    values[2, 3, 1] = np.inf
    values[4, 0, 0] = -np.inf
    bad = ds.assign({var: (ds[var].dims, values)})
    with pytest.raises(ValueError, match=rf"'{var}' has 2 infinite value\(s\) \(e.g. at cell 'c2', time 1.5, "
                                         r".*NaN means 'not observed'.*np.isfinite"):
        Recording.from_dataset(bad)


def test_error_non_numeric_features(ds):
    bad = ds.assign(features=ds["features"].astype(str))
    with pytest.raises(TypeError, match="must be numeric.*Encode categorical"):
        Recording.from_dataset(bad)


def test_error_population_missing_values(ds):
    bad = ds.assign(population=("cell", ["a", None, "a", "a", "a", "a"]))
    with pytest.raises(ValueError, match=r"'population' is missing for 1 cell\(s\) \(e.g. cell 'c1'\).*fillna"):
        Recording.from_dataset(bad)


def test_error_session(ds):
    with_sess = ds.assign_coords(session=("cell", list("aabbcc")))
    with pytest.raises(ValueError, match="already has a 'session' coordinate.*session=None"):
        Recording.from_dataset(with_sess, session="x")
    bad = ds.assign_coords(session=("cell", ["a", None, "b", "b", "a", "a"]))
    with pytest.raises(ValueError, match="'session' is missing for 1 cell.*session label"):
        Recording.from_dataset(bad)


def test_population_feature_sets(ds):
    """Populations with different feature sets load (MODEL.md 'Populations'):
    a population's observations need only its own features, the others NaN."""
    F = ds["features"].values.copy()
    pops = np.array(["a", "b"] * 3)
    F[pops == "b", :, 2] = np.nan  # population b never has feature f2
    two = ds.assign(features=(ds["features"].dims, F), population=("cell", pops))
    obs = quiet(Recording.from_dataset, two).obs
    is_b = np.asarray(obs.population_names)[obs.population] == "b"
    assert is_b.any() and (~is_b).any()
    assert np.isnan(obs.features[is_b, 2]).all()
    assert np.isfinite(obs.features[is_b, :2]).all()
    assert np.isfinite(obs.features[~is_b]).all()


def test_never_finite_feature_dropped(ds):
    F = ds["features"].values.copy()
    F[:, :, 1] = np.nan
    with pytest.warns(UserWarning, match=r"\['f1'\].*never finite.*Remove them"):
        rec = Recording.from_dataset(ds.assign(features=(ds["features"].dims, F)))
    assert rec.feature_names == ("f0", "f2")


# ---------------------------------------------------------------------------
# from_table
# ---------------------------------------------------------------------------

def random_table(rng, n_rows=40, n_sessions=2, n_cells=5, n_frames=8, s=2, d=2, p_nan=0.1):
    """Random long table with gaps, unique (session, cell, frame)."""
    keys = set()
    rows = []
    while len(rows) < n_rows:
        key = (f"s{rng.integers(n_sessions)}", int(rng.integers(n_cells)), int(rng.integers(n_frames)) + 3)
        if key in keys:
            continue
        keys.add(key)
        feat = [float(v) for v in rng.normal(size=d)]
        pos = [float(v) for v in rng.uniform(0, 5, size=s)]
        if rng.random() < p_nan:
            feat[rng.integers(d)] = np.nan
        if rng.random() < p_nan:
            pos[rng.integers(s)] = np.nan
        rows.append(dict(session=key[0], cell=key[1], frame=key[2], feat=feat, pos=pos))
    names = ["x", "y", "z"][:s]
    df = pd.DataFrame({
        "session": [r["session"] for r in rows], "cell": [r["cell"] for r in rows],
        "frame": [r["frame"] for r in rows],
        **{nm: [r["pos"][k] for r in rows] for k, nm in enumerate(names)},
        **{f"f{j}": [r["feat"][j] for r in rows] for j in range(d)},
    })
    return df, rows


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n_rows=st.integers(1, 40), s=st.sampled_from([2, 3]),
       d=st.integers(1, 3), n_sessions=st.integers(1, 3))
def test_from_table_matches_naive(seed, n_rows, s, d, n_sessions):
    rng = np.random.default_rng(seed)
    df, rows = random_table(rng, n_rows=n_rows, n_sessions=n_sessions, s=s, d=d)
    if not all(any(np.isfinite(r["feat"][j]) for r in rows) for j in range(d)):
        return  # a never-finite feature is dropped; covered elsewhere
    ref = naive_from_table(rows, d, s)
    rec = quiet(Recording.from_table, df, population=None, session="session")
    assert_layout(rec.obs)
    assert_obs_equal(rec.obs, ref, d, s)
    assert list(rec.obs.cell_ids) == ref["cell_ids"]
    assert [list(tv) for tv in rec.obs.time_values] == ref["time_values"]
    assert rec.population_names == ("all",)
    # Row order does not matter.
    shuffled = df.sample(frac=1.0, random_state=int(rng.integers(1000)))
    again = quiet(Recording.from_table, shuffled, population=None, session="session")
    assert_obs_equal(again.obs, ref, d, s)


def test_from_table_gaps_stay_gaps():
    df = pd.DataFrame({"cell": [1, 1, 1, 2], "frame": [10, 11, 13, 13],
                       "x": [0.0, 1, 2, 3], "y": [0.0, 0, 0, 0], "f": [1.0, 2, 3, 4]})
    rec = Recording.from_table(df, population=None)
    obs = rec.obs
    assert obs.n_frames == 4  # 10, 11, 12 (empty), 13
    np.testing.assert_array_equal(obs.time_values[0], [10, 11, 12, 13])
    np.testing.assert_array_equal(obs.frame_ptr, [0, 1, 2, 2, 4])
    np.testing.assert_array_equal(obs.prev_frame, [-1, 0, 1, 2])
    # frame 13 links to the empty frame 12, so cell 1 at 13 has no previous observation.
    assert obs.frame_ptr[obs.prev_frame[3] + 1] - obs.frame_ptr[obs.prev_frame[3]] == 0


def test_from_table_defaults_and_populations():
    df = pd.DataFrame({"cell": ["a", "a", "b", "b"], "frame": [0, 1, 0, 1],
                       "x": [0.0, 1, 2, 3], "y": [0.0, 0, 1, 1], "z": [5.0, 5, 5, 5],
                       "area": [1.0, 2, 3, 4], "flag": [True, False, True, True],
                       "label": ["u", "v", "u", "v"], "population": ["T", "T", "tumor", "tumor"]})
    rec = Recording.from_table(df)
    assert rec.space_names == ("x", "y", "z")       # z picked up, not taken as a feature
    assert rec.feature_names == ("area",)           # bool and str columns are not features
    assert rec.population_names == ("T", "tumor")
    np.testing.assert_array_equal(rec.obs.cell_population, [0, 1])
    ds = rec.to_dataset()
    assert list(ds["population"].values) == ["T", "tumor"]
    np.testing.assert_array_equal(ds["features"].sel(feature="area").values, [[1, 2], [3, 4]])


def test_no_identity():
    df = pd.DataFrame({"frame": [0, 0, 1, 2, 2, 2], "x": np.arange(6.0), "y": np.zeros(6),
                       "f": [1.0, 2, np.nan, 4, 5, 6]})
    rec = quiet(Recording.from_table, df, cell=None, population=None)
    obs = rec.obs
    assert not rec.has_identity and obs.has_identity is False
    assert rec.n_cells == rec.n_obs == 5
    np.testing.assert_array_equal(obs.cell, np.arange(5))
    np.testing.assert_array_equal(obs.cell_ids, np.arange(5))
    np.testing.assert_array_equal(obs.frame_ptr, [0, 2, 2, 5])
    np.testing.assert_array_equal(obs.features[:, 0], [1, 2, 4, 5, 6])
    assert_layout(obs)


def test_time_values_options():
    df = pd.DataFrame({"cell": [1, 1, 1], "frame": [2, 3, 5], "x": [0.0, 1, 2], "y": [0.0, 0, 0],
                       "f": [1.0, 2, 3], "t": [20.0, 30, 50]})
    by_col = Recording.from_table(df, population=None, features=["f"], time_values="t")
    np.testing.assert_array_equal(by_col.obs.time_values[0], [20, 30, np.nan, 50])
    by_map = Recording.from_table(df, population=None, features=["f"], time_values={2: "a", 3: "b", 4: "c", 5: "d"})
    assert list(by_map.obs.time_values[0]) == ["a", "b", "c", "d"]
    by_fn = Recording.from_table(df, population=None, features=["f"], time_values=lambda f: f * 0.5)
    np.testing.assert_array_equal(by_fn.obs.time_values[0], [1.0, 1.5, 2.0, 2.5])
    bad = df.assign(t=[20.0, 30, 50]).iloc[[0, 1, 2, 2]].assign(cell=[1, 1, 1, 2], t=[20.0, 30, 50, 51])
    with pytest.raises(ValueError, match="not constant within a frame.*mapping"):
        Recording.from_table(bad, population=None, features=["f"], time_values="t")


@pytest.fixture
def table():
    return pd.DataFrame({"cell": [1, 1, 2, 2], "frame": [0, 1, 0, 1], "x": [0.0, 1, 2, 3],
                         "y": [0.0, 0, 1, 1], "area": [1.0, 2, 3, 4]})


def test_table_errors_columns(table):
    with pytest.raises(TypeError, match="from_dataset"):
        Recording.from_table(xr.Dataset())
    with pytest.raises(ValueError, match=r"no population column 'population'.*population=None"):
        Recording.from_table(table)
    with pytest.raises(ValueError, match=r"no position column 'x'.*Close matches: \['POSITION_X'\].*position="):
        Recording.from_table(table.rename(columns={"x": "POSITION_X"}), population=None)
    with pytest.raises(ValueError, match=r"no cell \(track id\) column 'cell'.*cell="):
        Recording.from_table(table.drop(columns="cell"), population=None)
    with pytest.raises(ValueError, match=r"give 2 \(x, y\) or 3"):
        Recording.from_table(table, population=None, position=("x",))
    with pytest.raises(ValueError, match=r"used both as features.*remove them"):
        Recording.from_table(table, population=None, features=["area", "x"])
    with pytest.raises(ValueError, match="no numeric feature columns.*features="):
        Recording.from_table(table.drop(columns="area"), population=None)
    with pytest.raises(ValueError, match="no rows"):
        Recording.from_table(table.iloc[:0], population=None)


def test_table_errors_frames(table):
    with pytest.raises(ValueError, match=r"non-integer values.*round\(\).*rank"):
        Recording.from_table(table.assign(frame=[0, 0.5, 0, 1]), population=None)
    with pytest.raises(TypeError, match=r"frames must be integers.*to_numeric"):
        Recording.from_table(table.assign(frame=["0", "1", "0", "1"]), population=None)
    with pytest.raises(ValueError, match=r"1 missing or infinite.*dropna"):
        Recording.from_table(table.assign(frame=[0, np.nan, 0, 1]), population=None)
    with pytest.raises(ValueError, match=r"spans .* frames.*rank\(method='dense'\)"):
        Recording.from_table(table.assign(frame=[0, 10**9, 0, 1]), population=None)
    # Integral floats (what pandas makes of ints next to NaN) are fine.
    rec = Recording.from_table(table.assign(frame=[0.0, 1.0, 0.0, 1.0]), population=None)
    assert rec.n_frames == 2


def test_table_errors_values(table):
    with pytest.raises(ValueError, match=r"'area' has infinite values.*NaN means 'not observed'.*replace"):
        Recording.from_table(table.assign(area=[1, np.inf, 2, 3]), population=None)
    with pytest.raises(TypeError, match=r"\['label'\] are not numeric.*to_numeric"):
        Recording.from_table(table.assign(label=list("abcd")), population=None, features=["area", "label"])
    with pytest.raises(ValueError, match=r"Cell 2 .*several populations.*same in all its rows"):
        Recording.from_table(table.assign(pop=["a", "a", "a", "b"]), population="pop")
    with pytest.raises(ValueError, match=r"'cell' has 1 missing.*dropna.*cell=None"):
        Recording.from_table(table.assign(cell=[1, None, 2, 2]), population=None)
    with pytest.raises(ValueError, match=r"'pop' has 1 missing.*fillna"):
        Recording.from_table(table.assign(pop=["a", None, "a", "a"]), population="pop")


def test_table_error_duplicates(table):
    dup = pd.concat([table, table.iloc[[3]]])
    with pytest.raises(ValueError, match=r"1 row\(s\) repeat.*\(cell 2, frame 1\).*drop_duplicates"):
        Recording.from_table(dup, population=None)
    sess = table.assign(session=["a", "a", "b", "b"], cell=[1, 1, 1, 1])  # ids may repeat across sessions
    assert Recording.from_table(sess, population=None, session="session").n_cells == 2
    dup = pd.concat([sess, sess.iloc[[2]]])
    with pytest.raises(ValueError, match=r"\(session 'b', cell 1, frame 0\)"):
        Recording.from_table(dup, population=None, session="session")
    # TrackMate writes 'None' for spots that belong to no track.
    none_ids = table.assign(cell=["None", "None", "None", "7"], frame=[0, 0, 1, 1])
    with pytest.raises(ValueError, match=r"'None'.*na_values=\['None'\]"):
        Recording.from_table(none_ids, population=None)


def test_table_error_ids_reused_across_populations(table):
    # Imaris numbers each population's tracks on its own: track 1 of CD4 and
    # track 1 of CD8 are two cells, and dropping "duplicates" would lose one.
    two = pd.concat([table.assign(pop="CD4"), table.assign(pop="CD8")], ignore_index=True)
    with pytest.raises(ValueError, match=r"in another population.*\(cell 1, frame 0: populations "
                       r"'CD4' and 'CD8'\).*do not drop them.*df\['cell'\] = df\['pop'\]"
                       r"\.astype\(str\) \+ '-' \+ df\['cell'\]") as err:
        Recording.from_table(two, population="pop")
    assert "drop_duplicates" not in str(err.value)
    # Reused ids in frames that do not overlap: the population check says the same.
    apart = pd.concat([table.assign(pop="CD4"), table.assign(pop="CD8", frame=table["frame"] + 2)],
                      ignore_index=True)
    with pytest.raises(ValueError, match=r"several populations.*unique per population"):
        Recording.from_table(apart, population="pop")
    # The suggested fix gives one cell per (population, track).
    for df in (two, apart):
        df = df.assign(cell=df["pop"].astype(str) + "-" + df["cell"].astype(str))
        rec = Recording.from_table(df, population="pop")
        assert rec.n_cells == 4 and rec.n_obs == len(df)
    # Repeats within one population keep the drop_duplicates advice.
    dup = pd.concat([two, two.iloc[[3]]])
    dup["cell"] = dup["pop"] + "-" + dup["cell"].astype(str)
    with pytest.raises(ValueError, match=r"1 row\(s\) repeat.*drop_duplicates"):
        Recording.from_table(dup, population="pop")


# ---------------------------------------------------------------------------
# sessions
# ---------------------------------------------------------------------------

def test_multi_session_never_pairs_across():
    rng = np.random.default_rng(8)
    df, _ = random_table(rng, n_rows=60, n_sessions=3, p_nan=0.0)
    rec = Recording.from_table(df, population=None, session="session")
    obs = rec.obs
    assert rec.n_sessions == 3
    firsts = np.flatnonzero(np.r_[True, np.diff(obs.frame_session) != 0])
    assert np.all(obs.prev_frame[firsts] == -1)
    has_prev = obs.prev_frame >= 0
    assert np.all(obs.frame_session[obs.prev_frame[has_prev]] == obs.frame_session[has_prev])
    # The one table with a session column equals the per-session tables concatenated.
    parts = [Recording.from_table(g.drop(columns="session"), population=None, session=None)
             for _, g in df.groupby("session", sort=True)]
    cat = Recording.concat(parts, names=sorted(df["session"].unique()))
    for name in ("features", "positions", "cell", "frame", "frame_ptr", "prev_frame",
                 "frame_session", "frame_time_index", "cell_population"):
        np.testing.assert_array_equal(getattr(cat.obs, name), getattr(obs, name), err_msg=name)
    assert cat.session_names == obs.session_names
    assert_layout(cat.obs)


def test_concat_and_as_recording_lists():
    rng = np.random.default_rng(9)
    a = make_dataset(rng, n_cells=3, p_missing=0.0)
    b = make_dataset(rng, n_cells=4, p_missing=0.0).isel(feature=[2, 0, 1])  # other order
    rec = as_recording([a, b])
    assert rec.session_names == ("0", "1") and rec.n_cells == 7
    np.testing.assert_array_equal(rec.obs.features[rec.obs.frame_session[rec.obs.frame] == 1],
                                  b["features"].sel(feature=["f0", "f1", "f2"]).values.transpose(1, 0, 2).reshape(-1, 3))
    # Cell ids repeat across sessions: to_dataset makes them unique.
    back = rec.to_dataset()
    assert list(back["cell"].values[:4]) == ["0/c0", "0/c1", "0/c2", "1/c0"]
    assert list(back["session"].values) == [0, 0, 0, 1, 1, 1, 1]
    again = Recording.from_dataset(back)
    np.testing.assert_array_equal(again.obs.features, rec.obs.features)

    named = Recording.concat([Recording.from_dataset(a, session="x"), Recording.from_dataset(b, session="x")],
                             names=["x", "y"])
    assert named.session_names == ("x", "y")
    with pytest.raises(ValueError, match=r"Session names clash: \['x'\].*names="):
        Recording.concat([Recording.from_dataset(a, session="x"), Recording.from_dataset(b, session="x")])
    with pytest.raises(ValueError, match="different features.*common features"):
        Recording.concat([a, b.isel(feature=[0, 1])])
    with pytest.raises(ValueError, match="sessions must share one space.*Drop the z"):
        Recording.concat([a, make_dataset(rng, s=3)])
    with pytest.raises(ValueError, match="one name per session"):
        Recording.concat([a, b], names=["only-one"])
    with pytest.raises(ValueError, match="at least one"):
        Recording.concat([])


def test_to_dataset_time_axes():
    # Sessions spanning different frame ranges share one time axis (their union).
    df = pd.DataFrame({"session": ["a", "a", "b", "b"], "cell": [1, 1, 1, 1], "frame": [0, 1, 3, 4],
                       "x": [0.0, 1, 2, 3], "y": [0.0, 0, 0, 0], "f": [1.0, 2, 3, 4]})
    rec = Recording.from_table(df, population=None, session="session")
    ds = rec.to_dataset()
    np.testing.assert_array_equal(ds["time"].values, [0, 1, 3, 4])
    np.testing.assert_array_equal(ds["features"].values[:, :, 0], [[1, 2, np.nan, np.nan], [np.nan, np.nan, 3, 4]])
    # Time labels that do not interleave cleanly: select one session.
    t1 = Recording.from_table(df.iloc[:2].drop(columns="session"), population=None, time_values=lambda f: f * 2)
    t2 = Recording.from_table(df.iloc[:2].drop(columns="session"), population=None, time_values=lambda f: f * 2 + 1)
    both = Recording.concat([t1, t2])
    with pytest.raises(ValueError, match=r"consecutive run.*to_dataset\(session=s\)"):
        both.to_dataset()
    np.testing.assert_array_equal(both.to_dataset(session=1)["time"].values, [1, 3])
    with pytest.raises(ValueError, match="No session 'zz'"):
        both.to_dataset(session="zz")


# ---------------------------------------------------------------------------
# memory: a big sparse table stays sparse
# ---------------------------------------------------------------------------

def test_large_sparse_table_stays_small():
    n_cells, n_frames = 200_000, 5_000
    rng = np.random.default_rng(10)
    df = pd.DataFrame({"cell": np.arange(n_cells), "frame": rng.integers(0, n_frames, n_cells),
                       "x": rng.random(n_cells), "y": rng.random(n_cells),
                       "f0": rng.random(n_cells), "f1": rng.random(n_cells)})
    df.loc[0, "frame"], df.loc[1, "frame"] = 0, n_frames - 1
    tracemalloc.start()
    try:
        rec = Recording.from_table(df, population=None)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # A dense cells x frames float array would be 8 GB; the observations
    # themselves are ~ n_cells * 8 * (2 + 2 + 2) bytes ~ 10 MB.
    assert peak < 150e6, f"peak {peak / 1e6:.0f} MB"
    obs = rec.obs
    assert obs.n_obs == n_cells and obs.n_frames == n_frames
    total = sum(a.nbytes for a in (obs.features, obs.positions, obs.cell, obs.frame, obs.frame_ptr,
                                   obs.prev_frame, obs.frame_session, obs.frame_time_index,
                                   obs.cell_population, obs.cell_ids))
    assert total < 8 * (n_cells * 9 + n_frames * 5)
    np.testing.assert_array_equal(np.diff(obs.frame_ptr), np.bincount(df["frame"], minlength=n_frames))
    with pytest.raises(ValueError, match=r"GiB for dense.*session=.*rec.obs"):
        rec.to_dataset()


# ---------------------------------------------------------------------------
# as_recording
# ---------------------------------------------------------------------------

def test_as_recording_inputs(ds, tmp_path):
    rec = Recording.from_dataset(ds)
    assert as_recording(rec) is rec
    assert isinstance(rec.obs, Observations)
    assert isinstance(as_recording(rec.obs), Recording)
    assert as_recording(ds).n_obs == rec.n_obs == from_dataset(ds).n_obs
    long = dataset_to_long(ds)
    assert quiet(as_recording, long).n_obs == rec.n_obs
    assert quiet(from_table, long).n_obs == rec.n_obs
    assert as_recording([ds]).n_sessions == 1
    with pytest.raises(TypeError, match="Pass an xarray Dataset"):
        as_recording(42)
    with pytest.raises(ValueError, match="netCDF files only.*from_table"):
        as_recording(tmp_path / "x.csv")
    with pytest.raises(TypeError, match="needs an Observations"):
        Recording(ds)


# ---------------------------------------------------------------------------
# real data: TrackMate spot tables (mammary TEB, 2D)
# ---------------------------------------------------------------------------

TRACKMATE_FEATURES = ["AREA", "CIRCULARITY", "MEAN_INTENSITY_CH1", "ELLIPSE_ASPECTRATIO"]


def read_trackmate(path):
    # TrackMate exports may carry extra header rows (long names, units) under
    # the column names; they are the rows whose FRAME is not a number.  The
    # files in shared/data have none today, but keep the reader robust.
    df = pd.read_csv(path, low_memory=False)
    df = df[pd.to_numeric(df["FRAME"], errors="coerce").notna()].copy()
    for c in ["FRAME", "POSITION_X", "POSITION_Y", *TRACKMATE_FEATURES]:
        df[c] = pd.to_numeric(df[c], errors="coerce")
    # Spots in no track carry TRACK_ID 'None'; they have no identity to follow.
    df = df[~df["TRACK_ID"].astype(str).isin(["None", "nan"])]
    df["TRACK_ID"] = pd.to_numeric(df["TRACK_ID"]).astype(np.int64)
    return df


@pytest.mark.skipif(not TEB.is_dir(), reason=f"real TrackMate data not found at {TEB}")
def test_trackmate_csv():
    files = sorted(TEB.glob("*.csv"))[:3]
    df = read_trackmate(files[0])
    kw = dict(cell="TRACK_ID", frame="FRAME", position=("POSITION_X", "POSITION_Y"),
              features=TRACKMATE_FEATURES, population=None)
    rec = quiet(Recording.from_table, df, **kw)
    obs = rec.obs
    ok = df[["POSITION_X", "POSITION_Y", *TRACKMATE_FEATURES]].notna().all(axis=1)
    assert rec.n_obs == int(ok.sum()) > 0
    assert rec.n_cells == df["TRACK_ID"].nunique()
    assert rec.n_frames == df["FRAME"].max() - df["FRAME"].min() + 1
    per_frame = df[ok].groupby("FRAME").size().reindex(range(df["FRAME"].min(), df["FRAME"].max() + 1),
                                                       fill_value=0)
    np.testing.assert_array_equal(np.diff(obs.frame_ptr), per_frame.values)
    # Each observation carries its own row's values.
    got = pd.DataFrame(obs.features, columns=TRACKMATE_FEATURES)
    got["TRACK_ID"] = obs.cell_ids[obs.cell]
    got["FRAME"] = obs.time_values[0][obs.time_index]
    merged = got.merge(df[ok], on=["TRACK_ID", "FRAME"], suffixes=("", "_csv"))
    assert len(merged) == rec.n_obs
    for c in TRACKMATE_FEATURES:
        np.testing.assert_array_equal(merged[c].values, merged[c + "_csv"].values)
    assert_layout(obs)

    # Several movies: one table with a session column == the movies concatenated.
    tables = [read_trackmate(f).assign(movie=f.stem) for f in files]
    one = quiet(Recording.from_table, pd.concat(tables, ignore_index=True), session="movie", **kw)
    cat = quiet(Recording.concat, [quiet(Recording.from_table, t, **kw) for t in tables],
                names=[f.stem for f in files])
    assert one.n_sessions == 3 and one.session_names == cat.session_names
    for name in ("features", "positions", "cell", "frame_ptr", "prev_frame"):
        np.testing.assert_array_equal(getattr(one.obs, name), getattr(cat.obs, name), err_msg=name)
    assert one.n_obs == sum(int(t[["POSITION_X", "POSITION_Y", *TRACKMATE_FEATURES]].notna().all(axis=1).sum())
                            for t in tables)
