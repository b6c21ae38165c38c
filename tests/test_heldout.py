"""Held-out evaluation on Recordings (licchie.evaluate.heldout_table) and model
selection over time blocks (licchie.select), against NumPy references."""
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import GridSearchCV

import licchie
from licchie import LICCHIE, Recording
from licchie import fit as F
from licchie.baselines import GlobalLinear, PerCellLinear, Persistence
from licchie.evaluate import heldout_prediction, heldout_split, heldout_table
from licchie.evaluate.heldout import keep_observations
from licchie.select import TimeBlockSplit, grid_search, one_step_r2

FEATS = ["f0", "f1", "f2"]


def _table(lengths=(10, 15), n_cells=4, seed=0, gap=0.0, track_len=None, first=(0, 3)):
    """Long table: sessions of the given lengths, AR(1) features, cells 100 apart
    (a radius below 100 pairs each target with its own previous state only).

    Session ``s`` starts at frame ``first[s]``; ``gap`` drops that share of the
    rows; ``track_len`` cuts every track into tracks of that many frames."""
    rng = np.random.default_rng(seed)
    rows = []
    for s, T in enumerate(lengths):
        for c in range(n_cells):
            x = rng.standard_normal(3)
            base = np.array([100.0 * c, 0.0])
            for t in range(T):
                x = 0.8 * x + 0.3 * rng.standard_normal(3)
                cell = c if track_len is None else f"{c}-{t // track_len}"
                rows.append({"session": f"s{s}", "cell": cell, "frame": first[s] + t,
                             "x": base[0] + rng.normal(0, 0.5), "y": rng.normal(0, 0.5),
                             "population": "A" if c % 2 == 0 else "B",
                             **dict(zip(FEATS, x))})
    df = pd.DataFrame(rows)
    if gap:
        df = df[rng.random(len(df)) >= gap].reset_index(drop=True)
    return df


def _rec(df):
    return Recording.from_table(df, cell="cell", frame="frame", features=FEATS,
                                session="session")


def _heldout_rows(df, fraction):
    """Held-out mask of the table's rows: last round(fraction * n) frames of each
    session's observed span."""
    held = np.zeros(len(df), bool)
    for s, g in df.groupby("session"):
        t0, t1 = g["frame"].min(), g["frame"].max()
        n_hold = max(1, int(round(fraction * (t1 - t0 + 1))))
        held[g.index[g["frame"] > t1 - n_hold]] = True
    return held


def _self_design(df):
    """Per row with its cell observed in the frame before: (row, x[t-1], x[t])."""
    prev = df.assign(frame=df["frame"] + 1)[["session", "cell", "frame", *FEATS]]
    m = df.reset_index().merge(prev, on=["session", "cell", "frame"], suffixes=("", "_prev"))
    return (m["index"].to_numpy(), m[[f + "_prev" for f in FEATS]].to_numpy(),
            m[FEATS].to_numpy())


def _r2(y, p):
    return 1 - np.sum((y - p) ** 2) / np.sum((y - y.mean(0)) ** 2)


# ------------------------------------------------------------------- split
def test_split_is_per_session_for_different_lengths():
    df = _table(lengths=(10, 15, 7), first=(0, 3, 20), gap=0.1)
    rec = _rec(df)
    sp = heldout_split(rec, fraction=0.2)
    s = sp.sessions.set_index("session")
    assert s.loc[["s0", "s1", "s2"], "n_heldout_frames"].tolist() == [2, 3, 1]
    assert s["n_train_frames"].tolist() == [8, 12, 6]
    # the held-out observations are exactly the table's last frames per session
    o = sp.full.obs
    held_obs = sp.heldout_frames[o.frame]
    want = _heldout_rows(df, 0.2)
    assert held_obs.sum() == want.sum() and sp.train.obs.n_obs == (~want).sum()
    assert sp.train.obs.n_frames == o.n_frames
    np.testing.assert_array_equal(sp.train.obs.features, o.features[~held_obs])
    # the same data as a Dataset (one padded time axis): the same split, no shifting
    ds = rec.to_dataset()
    sp2 = heldout_split(ds, fraction=0.2)
    assert sp2.sessions["n_heldout_frames"].tolist() == [2, 3, 1]
    assert sp2.heldout_frames[sp2.full.obs.frame].sum() == want.sum()


def test_split_errors():
    df = _table(lengths=(10, 2))
    with pytest.raises(ValueError, match=r"s1 \(2 frames\)"):
        heldout_split(_rec(df), 0.2)
    with pytest.raises(ValueError, match="fraction"):
        heldout_split(_rec(df), 1.5)


# ------------------------------------------------------------------- table
def test_table_columns_and_baselines_against_numpy():
    df = _table(lengths=(10, 15), gap=0.1)
    table = heldout_table(None, _rec(df), fraction=0.2,
                          baselines={"persistence": Persistence(radius=5.0),
                                     "global": GlobalLinear(radius=5.0)})
    assert list(table.columns) == ["model", "split", "population", "r2", "mse",
                                   "n_observations", "fit_seconds"]
    assert set(table["model"]) == {"persistence", "global"}
    assert set(table["split"]) == {"train", "heldout"}
    assert set(table["population"]) == {"all", "A", "B"}
    held = _heldout_rows(df, 0.2)
    row, xprev, x = _self_design(df)
    h = held[row]
    # the training pairs are those with target and source in training frames
    prev_held = held[df.reset_index().merge(
        df.assign(frame=df["frame"] + 1).reset_index()[["session", "cell", "frame", "index"]],
        on=["session", "cell", "frame"], suffixes=("", "_p"))["index_p"].to_numpy()]
    tr = ~h & ~prev_held
    A = np.linalg.lstsq(xprev[tr], x[tr], rcond=None)[0].T

    def get(model, split, pop="all"):
        return table.set_index(["model", "split", "population"]).loc[(model, split, pop)]
    assert get("persistence", "heldout")["n_observations"] == h.sum()
    assert get("persistence", "heldout")["r2"] == pytest.approx(_r2(x[h], xprev[h]))
    assert get("persistence", "train")["r2"] == pytest.approx(_r2(x[tr], xprev[tr]))
    assert get("persistence", "heldout")["mse"] == pytest.approx(
        np.mean((x[h] - xprev[h]) ** 2))
    assert get("global", "heldout")["r2"] == pytest.approx(_r2(x[h], xprev[h] @ A.T))
    pa = (df["population"].to_numpy()[row] == "A") & h
    assert get("global", "heldout", "A")["r2"] == pytest.approx(_r2(x[pa], xprev[pa] @ A.T))


def test_default_baselines_and_heldout_prediction_on_a_recording():
    df = _table(lengths=(12, 12), first=(0, 0))
    rec = _rec(df)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = heldout_table(GlobalLinear(radius=5.0), rec, fraction=0.25)
    assert set(table["model"]) == {"GlobalLinear", "global linear", "per-cell linear",
                                   "persistence"}
    # same-length sessions: heldout_prediction with t_split splits the same frames
    r = heldout_prediction(GlobalLinear(radius=5.0), rec, t_split=9)
    t = table.set_index(["model", "split", "population"])
    assert r["r2"] == pytest.approx(t.loc[("global linear", "heldout", "all"), "r2"])
    assert r["n_targets"] == t.loc[("global linear", "heldout", "all"), "n_observations"]


def test_short_tracks_warn_and_fall_back_to_the_global_fit():
    # tracks of 3 frames: 2 target observations each, fewer than d = 3
    df = _table(lengths=(12,), first=(0,), track_len=3)
    with pytest.warns(UserWarning, match=r"PerCellLinear: \d+ of \d+ target cells have fewer "
                      r"target observations than min_observations=3.*use the global matrix"):
        table = heldout_table(None, _rec(df), 0.25,
                              baselines={"global": GlobalLinear(radius=5.0),
                                         "per-cell": PerCellLinear(radius=5.0)})
    t = table.set_index(["model", "split", "population"])["r2"]
    # every cell falls back: the per-cell fit is the global one
    assert t[("per-cell", "heldout", "all")] == pytest.approx(t[("global", "heldout", "all")])


# ------------------------------------------------------------------ select
def test_time_blocks_have_no_leakage():
    df = _table(lengths=(10, 16), first=(0, 3), gap=0.1)
    rec = _rec(df)
    cv = TimeBlockSplit(n_splits=3)
    o = rec.obs
    seen = np.zeros(o.n_obs, int)
    for (train, test), frames in zip(cv.split(rec), cv.test_frames(rec)):
        assert np.intersect1d(train, test).size == 0
        np.testing.assert_array_equal(test, np.flatnonzero(frames[o.frame]))
        seen[test] += 1
        # each session's block is one contiguous run of time indices
        for s in range(rec.n_sessions):
            ti = np.unique(o.time_index[test][o.session[test] == s])
            assert ti.size and np.all(np.diff(ti) == 1)
        # the fold's training data pair no target or source in the block
        tr = keep_observations(rec, ~frames[o.frame])
        pairs = F.build_pairs(tr.obs, 5.0, True, "none", None)
        assert not frames[tr.obs.frame[pairs.src]].any()
        assert not frames[tr.obs.frame[pairs.tgt_obs]].any()
    assert np.all(seen == 1)
    # block lengths follow numpy.array_split per session (10 -> 4, 3, 3)
    first = cv.test_frames(rec)[0]
    assert (first & (o.frame_session == 0)).sum() == 4
    with pytest.raises(ValueError, match="n_splits"):
        list(TimeBlockSplit(n_splits=12).split(rec))


def test_table_split_with_context_matches_grid_search():
    df = _table(lengths=(18,), first=(0,), gap=0.05).drop(columns="session")
    cv = TimeBlockSplit(n_splits=3)
    for k, (train, test) in enumerate(cv.split(df)):
        tf = df["frame"].to_numpy()
        block = np.unique(tf[test])
        if k > 0:  # the one context frame before the block is in both
            assert np.intersect1d(tf[train], tf[test]).tolist() == [block.min()]
        else:
            assert np.intersect1d(train, test).size == 0
    grid = {"alpha": [0.0, 3.0]}
    gs = GridSearchCV(PerCellLinear(radius=5.0), grid, cv=cv, scoring=one_step_r2).fit(df)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = grid_search(PerCellLinear(radius=5.0), df, grid, cv=cv)
    np.testing.assert_allclose(ours["mean_r2"], gs.cv_results_["mean_test_score"])
    assert ours.attrs["best_params"] == gs.best_params_
    assert ours["best"].sum() == 1 and ours.loc[ours["best"], "rank"].item() == 1


def test_grid_search_parallel_and_licchie_with_criteria():
    df = _table(lengths=(10, 12), first=(0, 0))
    rec = _rec(df)
    grid = {"alpha": [0.0, 1.0, 10.0]}
    one = grid_search(PerCellLinear(radius=5.0), rec, grid, cv=2, n_jobs=1)
    two = grid_search(PerCellLinear(radius=5.0), rec, grid, cv=2, n_jobs=2)
    np.testing.assert_allclose(one["mean_r2"], two["mean_r2"])
    assert len(one.attrs["folds"]) == 6
    est = LICCHIE(n_components=1, radius=5.0, n_neighbors=3, lambdas=(1.0, 0.0, 0.0, 0.01, 0.0),
                  n_init=1, max_iter=3, random_state=0, verbose=0)
    res = grid_search(est, rec, {"n_components": [1, 2], "lambdas.l1_W": [0.01]}, cv=2,
                      information_criteria=True)
    assert list(res["n_components"]) == [1, 2]
    assert {"mean_r2", "std_r2", "mean_mse", "std_mse", "aic", "bic", "dof"} <= set(res.columns)
    assert np.isfinite(res[["mean_r2", "aic", "bic"]].to_numpy()).all()
    assert res.attrs["best_estimator_params"]["lambdas"]["l1_W"] == 0.01
    # more motifs, more degrees of freedom
    assert res["dof"].iloc[1] > res["dof"].iloc[0]
    assert licchie.select.grid_search is grid_search


# --------------------------------------------------------------- real data
def _shared_data():
    import os
    from pathlib import Path
    env = os.environ.get("LICCHIE_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


TEB = _shared_data() / "mammary_teb_2d_trackmate" / "raw"


@pytest.mark.skipif(not TEB.is_dir(), reason=(
    f"the shared TrackMate movies ({TEB}) are not here; CI has ../shared/data next to the "
    "clone, or set LICCHIE_SHARED_DATA"))
def test_mammary_movies_baselines_table():
    feats = ["AREA", "CIRCULARITY", "SOLIDITY"]
    df = licchie.read_trackmate(TEB / "*.csv", population="epithelial", features=feats)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rec = Recording.from_table(df, cell="cell", frame="frame", features=feats,
                                   session="session")
        table = heldout_table(None, rec, 0.2, baselines="default")
    span = df.groupby("session")["frame"].agg(lambda f: f.max() - f.min() + 1)
    s = table.attrs["sessions"].set_index("session").loc[span.index]
    assert len(s) == 96
    np.testing.assert_array_equal(s["n_heldout_frames"],
                                  np.maximum(1, np.round(0.2 * span.to_numpy())))
    held = table[table["split"] == "heldout"]
    assert held["n_observations"].nunique() == 1 and held["n_observations"].iloc[0] > 1000
    assert np.isfinite(held["r2"]).all()
