"""A whole well (or set of movies) from its tracker exports, in one table.

:func:`read_well` reads several populations, each from its own export
(Imaris statistics folder, TrackMate spots CSV/XML, or any CSV table), each
tracked or untracked, each with its own feature list, and returns the one
long table that :meth:`licchie.Recording.from_table` takes, together with the
keyword arguments that build the Recording from it (``untracked``
populations, ``cell_per_population=True``):

    >>> table, kw = read_well(populations)                    # doctest: +SKIP
    >>> rec = licchie.Recording.from_table(table, **kw)       # doctest: +SKIP

Features a population does not list are NaN in its rows (MODEL.md
"Populations": a population's features are those ever finite for it).
Track ids are namespaced by population by ``from_table`` (two populations
reusing TrackID 1 are two cells).  :mod:`licchie.config` builds the
population list from a TOML file (``licchie fit config.toml``).
"""
from __future__ import annotations

import difflib
import os

import numpy as np
import pandas as pd

__all__ = ["read_well", "SOURCES", "POPULATION_KEYS"]

# Where a population's rows come from: exactly one of these keys.
SOURCES = ("imaris", "trackmate", "table")
# Every key a population entry may have (for spelling suggestions).
POPULATION_KEYS = ("name", *SOURCES, "tracked", "features", "log", "where", "columns",
                   "session")
# Column roles of a generic table (``columns = {...}``), with their default names.
_TABLE_ROLES = {"cell": "cell", "frame": "frame", "x": "x", "y": "y", "z": "z",
                "session": None}


def _close(name, options):
    hits = difflib.get_close_matches(str(name), [str(o) for o in options], n=3, cutoff=0.5)
    return f" (close matches: {hits})" if hits else ""


def _read_source(pop):
    """Rows of one population: columns ``track`` (id or missing), ``frame``,
    ``x``, ``y``[, ``z``], ``session`` (or missing) and its value columns."""
    from . import io
    source = [k for k in SOURCES if pop.get(k) is not None]
    name = pop["name"]
    if len(source) != 1:
        raise ValueError(f"population {name!r}: give exactly one of {list(SOURCES)} (where its "
                         f"rows come from); got {source or 'none'}.")
    kind = source[0]
    where = pop[kind]
    if kind == "imaris":
        if not os.path.isdir(where):
            raise FileNotFoundError(f"population {name!r}: no Imaris statistics folder "
                                    f"{where!r}; check the path (relative paths are relative "
                                    "to the config file).")
        t = io.read_imaris(where, population=name)
        t["session"] = pd.NA
        return t, kind
    if kind == "trackmate":
        t = io.read_trackmate(where)
        # read_trackmate's cell: the track id, or "spot<ID>" for a spot in no track
        t["track"] = t["cell"]
        return t.drop(columns=["cell"]), kind
    if not os.path.isfile(where):
        raise FileNotFoundError(f"population {name!r}: no table {where!r}; check the path.")
    t = pd.read_csv(where)
    cols = dict(_TABLE_ROLES, **(pop.get("columns") or {}))
    unknown = [k for k in cols if k not in _TABLE_ROLES]
    if unknown:
        raise ValueError(f"population {name!r}: unknown column role(s) {unknown} in columns="
                         f"{_close(unknown[0], _TABLE_ROLES)}; roles are "
                         f"{list(_TABLE_ROLES)}.")
    rename = {}
    for role, col in cols.items():
        if col is None or (role == "z" and col not in t.columns and "z" not in
                           (pop.get("columns") or {})):
            continue
        if role == "cell" and col not in t.columns and pop.get("tracked") is False:
            continue
        if col not in t.columns:
            raise ValueError(f"population {name!r}: {where!r} has no {role} column {col!r}"
                             f"{_close(col, t.columns)}; set columns = {{{role} = \"...\"}}.")
        rename[col] = {"cell": "track"}.get(role, role)
    t = t.rename(columns=rename)
    if "session" not in t.columns:
        t["session"] = pd.NA
    if "track" not in t.columns:
        t["track"] = pd.NA
    return t, kind


def _filter_rows(t, pop):
    where = pop.get("where") or {}
    for col, value in where.items():
        if col not in t.columns:
            raise ValueError(f"population {pop['name']!r}: where= names column {col!r}, which "
                             f"the file lacks{_close(col, t.columns)}.")
        values = value if isinstance(value, list) else [value]
        kept = t[t[col].isin(values)]
        if kept.empty:
            have = sorted(map(str, pd.unique(t[col])))[:10]
            raise ValueError(f"population {pop['name']!r}: no row has {col} in {values} "
                             f"(values: {have}).")
        t = kept
    return t


def read_well(populations, *, frames=None, standardize="none", session=None,
              log=None):
    """Read every population of a well into one long table.

    Parameters
    ----------
    populations : sequence of dict
        One entry per population with keys ``name`` (its label); exactly one
        source: ``imaris`` (folder of Imaris statistics, :func:`read_imaris`),
        ``trackmate`` (spots CSV/CSV.gz/XML file, pattern or list;
        :func:`read_trackmate`, one session per file) or ``table`` (a CSV
        file, with ``columns = {cell, frame, x, y, z, session}`` naming its
        columns when they differ from those names); ``features`` (list of
        column names, required); optionally ``tracked`` (default True: rows
        with the same track id are one cell; False: every row is its own
        cell, no self pairs), ``log`` (features to log-transform first),
        ``where`` (``{column: value or [values]}``, rows to keep, e.g. one
        population of a shared table) and ``session`` (label of a source
        without sessions).
    frames : (int, int), optional
        First and last frame kept (inclusive, in the files' numbering).
    standardize : {"none", "population"}, default "none"
        ``"population"``: z-score every feature within each population here.
        Prefer ``LICCHIE(standardize="population")`` (what ``licchie fit``
        does): the model then keeps the statistics, applies them to new data
        and reports motifs in original units.
    session : str, optional
        Session label of the sources without their own (Imaris folders,
        tables without a session column); default ``"0"``.
    log : callable, optional
        Progress messages (e.g. ``print``).

    Returns
    -------
    table : pandas.DataFrame, one row per observation
        ``track`` (str id, missing for untracked rows), ``frame``, ``x``,
        ``y``[, ``z``], ``population``, ``session``, the union of the
        features (NaN in the rows of a population that does not list one),
        and, per feature, its raw value as ``"raw:<feature>"`` (before the
        log and the z-score; for phenotype labels).  ``table.attrs``:
        ``features`` (the union, in order of first listing),
        ``population_features`` (population -> its list), ``scale``
        (population -> {feature: (mean, sd)} of the z-score).
    from_table_kwargs : dict
        ``cell``, ``frame``, ``position``, ``features``, ``population``,
        ``session``, ``untracked`` and ``cell_per_population`` for
        :meth:`Recording.from_table`.

    Raises
    ------
    FileNotFoundError
        A source that does not exist.
    ValueError
        A population without a name or features, two populations of one
        name, a feature the population's file lacks (with close matches), a
        feature that is constant within a population (it cannot be
        z-scored), a log of a non-positive value, or populations of
        different dimension (2D and 3D).
    """
    log = log or (lambda *a, **k: None)
    if standardize not in ("population", "none"):
        raise ValueError(f"standardize must be 'population' or 'none', got {standardize!r}.")
    if not populations:
        raise ValueError("No populations given; name at least one (its file and features).")
    names = [p.get("name") for p in populations]
    if any(not isinstance(n, str) or not n for n in names):
        raise ValueError("Every population needs a name (a non-empty string).")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"Population name(s) {dup} occur twice; give each population its "
                         "own name (rows of one population can come from one source only).")
    tables, union, pop_feats, scale, untracked = [], [], {}, {}, []
    for pop in populations:
        name = pop["name"]
        t, kind = _read_source(pop)
        t = _filter_rows(t, pop)
        if frames is not None:
            t = t[(t["frame"] >= frames[0]) & (t["frame"] <= frames[1])]
        feats = pop.get("features")
        if not feats or isinstance(feats, str):
            raise ValueError(f"population {name!r}: features must be a non-empty list of "
                             f"column names (the file has {_some_features(t)}).")
        missing = [f for f in feats if f not in t.columns]
        if missing:
            raise ValueError(f"population {name!r}: feature {missing[0]!r} is not in its "
                             f"{kind} data{_close(missing[0], t.columns)}.  Use the column "
                             f"names of the file (it has {_some_features(t)}).")
        for f in pop.get("log") or ():
            if f not in feats:
                raise ValueError(f"population {name!r}: log lists {f!r}, which is not one of "
                                 f"its features {feats}.")
        tracked = pop.get("tracked", True)
        if tracked and t["track"].isna().all() and len(t):
            raise ValueError(f"population {name!r} has no track ids in its {kind} data "
                             "(e.g. Imaris organoids without TrackID); set tracked = false "
                             "(each observation becomes its own cell).")
        out = pd.DataFrame({
            "track": _track_strings(t["track"]) if tracked else pd.Series(
                None, index=t.index, dtype=object),
            "frame": pd.to_numeric(t["frame"]).astype(np.int64)})
        for c in ("x", "y", "z"):
            if c in t.columns:
                out[c] = pd.to_numeric(t[c], errors="coerce").astype(float)
        out["population"] = name
        sess = t["session"] if "session" in t.columns else pd.Series(pd.NA, index=t.index)
        own = pop.get("session", session if session is not None else "0")
        out["session"] = sess.astype(object).where(sess.notna(), own).astype(str)
        scale[name] = {}
        for f in feats:
            raw = pd.to_numeric(t[f], errors="coerce").astype(float)
            out["raw:" + f] = raw
            v = raw
            if f in (pop.get("log") or ()):
                bad = (v <= 0).sum()
                if bad:
                    raise ValueError(f"population {name!r}: log of feature {f!r} with {bad} "
                                     "value(s) <= 0; drop it from log = [...].")
                v = np.log(v)
            mu, sd = float(v.mean()), float(v.std())
            if not np.isfinite(sd) or sd == 0:
                raise ValueError(f"population {name!r}: feature {f!r} is constant (or "
                                 "never observed) in the rows read; it cannot be "
                                 "z-scored and carries no information: remove it from "
                                 "features.")
            if standardize == "population":
                v = (v - mu) / sd
                scale[name][f] = (mu, sd)
            out[f] = v
        if not tracked:
            untracked.append(name)
        for f in feats:
            if f not in union:
                union.append(f)
        pop_feats[name] = list(feats)
        n_tracks = len(out.dropna(subset=["track"]).drop_duplicates(["session", "track"]))
        n_sess = out["session"].nunique()
        log(f"  {name}: {len(out):,} rows from {kind}"
            f"{f' ({n_sess} sessions)' if n_sess > 1 else ''}, "
            f"{f'tracked, {n_tracks:,} tracks' if tracked else 'untracked'}, "
            f"{len(feats)} features")
        tables.append(out)
    dims = {name: ("z" in t.columns) for name, t in zip(names, tables)}
    if len(set(dims.values())) > 1:
        raise ValueError(f"Populations differ in dimension (has z: {dims}); all must be 2D or "
                         "all 3D.")
    table = pd.concat(tables, ignore_index=True)
    front = ["track", "frame", "x", "y"] + (["z"] if "z" in table.columns else [])
    rest = [c for c in table.columns if c not in front + ["population", "session"] + union]
    table = table[front + ["population", "session"] + union + rest]
    table.attrs.update(features=list(union), population_features=pop_feats, scale=scale)
    kwargs = dict(cell="track", frame="frame", position=tuple(front[2:]), features=list(union),
                  population="population", session="session", untracked=untracked or None,
                  cell_per_population=True)
    return table, kwargs


def _track_strings(track):
    from .data.tables import _id_strings
    return pd.Series(_id_strings(track.to_numpy()), index=track.index, dtype=object)


def _some_features(t):
    skip = {"id", "track", "frame", "x", "y", "z", "population", "session", "time", "time_s"}
    cols = [str(c) for c in t.columns if c not in skip]
    return cols[:15] + (["..."] if len(cols) > 15 else [])
