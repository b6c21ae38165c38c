"""Neighbour counts per population pair and the radius warning, against brute force."""
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from licchie import from_table
from licchie.data.neighbours import (RadiusWarning, check_radius, neighbour_counts,
                                     suggest_radius)


def _table(seed, dim, n_cells, n_frames, spread, tracked=True, sessions=1):
    """Random walkers of two populations, some observations missing."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(sessions):
        pos = rng.uniform(0, spread, (n_cells, dim))
        pop = rng.integers(0, 2, n_cells)
        for t in range(n_frames):
            pos = pos + rng.normal(0, 1.0, pos.shape)
            for c in range(n_cells):
                if rng.random() < 0.2:
                    continue  # not observed in this frame
                rows.append(dict(session=f"s{s}", cell=c, frame=t, population="AB"[pop[c]],
                                 f=rng.normal(), **dict(zip("xyz", pos[c]))))
    df = pd.DataFrame(rows)
    if not tracked:
        df["cell"] = np.arange(len(df))
    return df


def _brute(df, radius, tracked=True):
    """(target pop, source pop) -> list of non-self counts; nearest other-cell distances."""
    dims = [c for c in "xyz" if c in df.columns]
    out = {(p, q): [] for p in "AB" for q in "AB"}
    nearest = []
    for (_, t), cur in df.groupby(["session", "frame"]):
        sess = cur["session"].iloc[0]
        first = df.loc[df["session"] == sess, "frame"].min()
        if t == first:
            continue  # no previous frame: not a target
        prev = df[(df["session"] == sess) & (df["frame"] == t - 1)]
        for _, r in cur.iterrows():
            d = np.sqrt(((prev[dims].to_numpy() - r[dims].to_numpy(float)) ** 2).sum(1))
            other = (prev["cell"].to_numpy() != r["cell"]) if tracked else np.ones(len(prev), bool)
            if other.any():
                nearest.append(d[other].min())
            for q in "AB":
                out[(r["population"], q)].append(
                    int(((d <= radius) & other & (prev["population"].to_numpy() == q)).sum()))
    return out, np.array(nearest)


@settings(max_examples=12)
@given(seed=st.integers(0, 10_000), dim=st.sampled_from([2, 3]),
       n_cells=st.integers(2, 9), n_frames=st.integers(2, 5),
       radius=st.floats(0.5, 12.0), tracked=st.booleans(), sessions=st.integers(1, 2))
def test_counts_match_brute_force(seed, dim, n_cells, n_frames, radius, tracked, sessions):
    df = _table(seed, dim, n_cells, n_frames, spread=10.0, tracked=tracked, sessions=sessions)
    rec = from_table(df, cell="cell", frame="frame", session="session", features=["f"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RadiusWarning)
        got = neighbour_counts(rec, radius)
    ref, nearest = _brute(df, radius, tracked)
    present = sorted(set(df["population"]))
    assert list(zip(got["target_population"], got["source_population"])) == \
        [(p, q) for p in present for q in present]
    for _, row in got.iterrows():
        c = np.array(ref[(row["target_population"], row["source_population"])])
        assert row["n_targets"] == len(c)
        if len(c):
            assert row["mean"] == pytest.approx(c.mean())
            assert row["median"] == pytest.approx(np.median(c))
            assert row["max"] == c.max()
            assert row["zero_fraction"] == pytest.approx(np.mean(c == 0))
        else:
            assert np.isnan(row["mean"])
    per_target = np.concatenate([np.add(ref[(p, "A")], ref[(p, "B")]) for p in "AB"])
    if per_target.size:
        assert got.attrs["self_only_fraction"] == pytest.approx(np.mean(per_target == 0))
    if nearest.size:
        assert got.attrs["suggested_radius"] == pytest.approx(1.5 * np.median(nearest))
    else:
        assert np.isnan(got.attrs["suggested_radius"])


def test_radius_too_small_warns_with_a_suggestion():
    df = _table(3, 2, 30, 6, spread=200.0)
    rec = from_table(df, cell="cell", frame="frame", features=["f"])
    suggested = suggest_radius(rec)
    with pytest.warns(RadiusWarning, match=rf"Radius too small: \d+% of the targets .*"
                      rf"radius=0\.5.*try radius >= {suggested:.3g}"):
        frac = check_radius(rec, 0.5)
    assert frac >= 0.9
    with pytest.warns(RadiusWarning, match="Radius too small"):
        neighbour_counts(df, 0.5)  # a table (default column names) works too
    # a radius around the suggestion gives most targets a neighbour: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error", RadiusWarning)
        frac = check_radius(rec, suggested)
    assert frac < 0.9
    # the threshold is the user's: at the measured fraction it warns
    assert frac > 0
    with pytest.warns(RadiusWarning, match=f"{frac:.0%} of the targets"):
        assert check_radius(rec, suggested, threshold=frac) == frac


def test_bad_arguments():
    df = _table(1, 2, 4, 3, spread=5.0)
    with pytest.raises(ValueError, match="radius must be a number > 0"):
        neighbour_counts(df, 0.0)
    with pytest.raises(ValueError, match="radius must be a number > 0"):
        check_radius(df, float("nan"))
    with pytest.raises(ValueError, match="threshold must be a fraction"):
        check_radius(df, 1.0, threshold=1.5)


def test_fit_warns_when_the_radius_leaves_only_self_pairs():
    """issue 15: a radius too small must not silently make a per-cell self model."""
    import warnings as _w

    from licchie import LICCHIE
    from licchie.data.neighbours import RadiusWarning
    from licchie.synthetic import make_recording
    ds, _ = make_recording(n_cells=(6, 4), n_frames=6, n_features=3, n_components=2, seed=0)
    m = LICCHIE(n_components=2, radius=1e-6, lambdas=(1.0, 0.1, 0.0, 0.01, 0.0),
                n_init=1, max_iter=2)
    with pytest.warns(RadiusWarning, match="Radius too small"):
        with _w.catch_warnings():
            _w.simplefilter("ignore", UserWarning)
            _w.simplefilter("always", RadiusWarning)
            m.fit(ds)
    with _w.catch_warnings():
        _w.simplefilter("ignore", UserWarning)
        _w.simplefilter("error", RadiusWarning)
        LICCHIE(n_components=2, radius=10.0, lambdas=(1.0, 0.1, 0.0, 0.01, 0.0),
                n_init=1, max_iter=2).fit(ds)
