"""Long tables (one row per observation, as trackers export them) into Observations.

:func:`table_observations` is the machinery behind
:meth:`Recording.from_table`: it checks the named columns (``_table_*``
helpers, whose messages say how to fix the table), numbers cells per
(session, track id) and frames per session, and never builds a dense cells x
frames array.
"""
from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import replace

import numpy as np
import pandas as pd
import xarray as xr

from ._util import _SPACE_NAMES, _factorize, _first_duplicates, _fmt, _py, _session_name
from .observations import _assemble, _select_observed

# A table's frames run from each session's first to its last frame value, so
# that gaps stay gaps; timestamps or sparse ids as "frames" would create
# billions of empty frames.  Past this many frames per table row we stop.
_MAX_FRAMES_PER_ROW = 50
_MAX_FRAMES_FREE = 1_000_000


def table_observations(df, *, cell, frame, position, features, population, session,
                       time_values, untracked=None, cell_per_population=False):
    """Observations and Recording labels of a long table.

    Parameters
    ----------
    df : pandas.DataFrame, shape (n_rows, ...)
    cell, frame, position, features, population, session, time_values, untracked,
    cell_per_population
        As in :meth:`Recording.from_table`.

    Returns
    -------
    obs : Observations
    labels : dict
        ``cell_session``, ``session_labels``, ``population_labels`` and
        ``feature_labels``: the keyword arguments of :class:`Recording`.
    """
    if not isinstance(df, pd.DataFrame):
        hint = (" Use Recording.from_dataset for an xarray Dataset."
                if isinstance(df, xr.Dataset) else "")
        raise TypeError(f"from_table needs a pandas DataFrame, got {type(df).__name__}.{hint}")
    position = _table_position(df, position)
    tv_column = time_values if isinstance(time_values, str) else None
    features = _table_columns_check(df, cell=cell, frame=frame, position=position,
                                    features=features, population=population,
                                    session=session, tv_column=tv_column)
    n_rows = len(df)
    if n_rows == 0:
        raise ValueError("The table has no rows; a Recording needs at least one observation.")

    frames = _table_frames(df, frame)
    sess_codes, session_labels = _table_labels(df, session, "session", n_rows)
    pop_codes, pop_labels = _table_labels(df, population, "population", n_rows)
    if population is None:
        pop_labels = np.asarray(["all"])

    feature_values = _table_numeric(df, features, "feature")
    positions = _table_numeric(df, list(position), "position")

    # Every frame from a session's first to its last gets a frame.
    n_sessions = len(session_labels)
    first = np.full(n_sessions, np.iinfo(np.int64).max, dtype=np.int64)
    last = np.full(n_sessions, np.iinfo(np.int64).min, dtype=np.int64)
    np.minimum.at(first, sess_codes, frames)
    np.maximum.at(last, sess_codes, frames)
    n_times = last - first + 1
    total = int(n_times.sum()) if n_rows else 0
    if total > _MAX_FRAMES_FREE + _MAX_FRAMES_PER_ROW * n_rows:
        s = int(np.argmax(n_times))
        raise ValueError(
            f"Column {frame!r} spans {total:,} frames in all for only {n_rows:,} rows "
            f"(session {_py(session_labels[s])!r}: frames {first[s]} to {last[s]}).  "
            "Frames must be consecutive integers (frame f pairs with f - 1).  If the "
            "column holds timestamps or sparse ids, rank them first, e.g. "
            f"df[{frame!r}] = df.groupby(session)[{frame!r}].rank(method='dense')"
            ".astype(int) - 1, and pass the timestamps as time_values.")
    row_time = frames - first[sess_codes]

    untracked_rows = _untracked_rows(untracked, pop_codes, pop_labels, population)
    if cell is not None:
        values = _cell_values(df, cell, pop_codes, pop_labels, untracked_rows,
                              cell_per_population and population is not None)
        row_cell, cell_ids, cell_session = _table_cells(df, cell, sess_codes, n_sessions,
                                                        values)
        # Duplicates first: a placeholder id such as TrackMate's 'None'
        # also mixes populations, and the duplicate message names it.
        _table_no_duplicates(row_cell, frames, cell_ids, cell_session,
                             session_labels, cell, frame, session,
                             pop_codes=pop_codes, pop_labels=pop_labels, population=population)
        cell_population = _table_cell_population(
            row_cell, pop_codes, len(cell_ids), cell_ids, cell, pop_labels, population)
    else:
        row_cell = np.arange(n_rows, dtype=np.int64)

    tv = _table_time_values(df, time_values, tv_column, sess_codes, row_time,
                            first, n_times, frame)

    feature_names = [str(f) for f in features]
    observed, keep, _ = _select_observed(
        feature_values, positions, pop_codes, len(pop_labels), feature_names, "table")
    feature_labels = np.asarray(features, dtype=object)
    if not keep.all():
        feature_values = feature_values[:, keep]
        feature_labels = feature_labels[keep]
        feature_names = [f for f, k in zip(feature_names, keep) if k]

    common = dict(time_values=tv, feature_names=feature_names,
                  space_names=_SPACE_NAMES[:len(position)],
                  population_names=pop_labels,
                  session_names=[_session_name(s) for s in session_labels])
    rows = np.flatnonzero(observed)
    if cell is not None:
        obs, _ = _assemble(sess_codes, row_time, row_cell, feature_values, positions,
                           rows, n_times, cell_ids=cell_ids,
                           cell_population=cell_population, has_identity=True, **common)
    else:
        # Sort first (by row within a frame), then make each observation
        # its own cell, numbered in observation order.
        obs, order = _assemble(sess_codes, row_time, row_cell, feature_values, positions,
                               rows, n_times, cell_ids=np.zeros(0, dtype=np.int64),
                               cell_population=np.zeros(0, dtype=np.int64),
                               has_identity=False, **common)
        n_obs = len(order)
        cell_session = sess_codes[order]
        obs = replace(obs, cell=np.arange(n_obs, dtype=np.int64),
                      cell_ids=np.arange(n_obs, dtype=np.int64),
                      cell_population=pop_codes[order].astype(np.int64))
    return obs, dict(cell_session=cell_session, session_labels=session_labels,
                     population_labels=pop_labels, feature_labels=feature_labels)


def _table_position(df, position):
    if position is None:
        position = ("x", "y", "z") if "z" in df.columns else ("x", "y")
    if isinstance(position, str):
        position = (position,)
    position = tuple(position)
    if len(position) not in (2, 3):
        raise ValueError(
            f"position={position!r} names {len(position)} column(s); give 2 (x, y) or 3 "
            "(x, y, z) position columns, e.g. position=('POSITION_X', 'POSITION_Y').")
    return position


def _close_columns(name, available):
    """Columns that probably mean ``name`` (trackers write POSITION_X for x)."""
    lower = {c.lower(): c for c in available}
    hits = [lower[c] for c in difflib.get_close_matches(name.lower(), list(lower), n=3, cutoff=0.6)]
    hits += [c for c in available if c.lower().endswith("_" + name.lower()) and c not in hits]
    return hits[:3]


def _missing_columns(df, wanted, what, argument):
    available = [str(c) for c in df.columns]
    for col in wanted:
        if col not in df.columns:
            close = _close_columns(str(col), available)
            guess = f" Close matches: {close}." if close else ""
            raise ValueError(
                f"The table has no {what} column {col!r}.{guess} Pass {argument}= naming your "
                f"column (the table has {_fmt(available, 12)}).")


def _table_columns_check(df, *, cell, frame, position, features, population, session, tv_column):
    """Check that the named columns exist; return the feature columns."""
    roles = [(cell, "cell (track id)", "cell"), (frame, "frame", "frame"),
             (population, "population", "population"), (session, "session", "session"),
             (tv_column, "time value", "time_values")]
    for col, what, arg in roles:
        if col is not None:
            if col == population and population == "population" and col not in df.columns:
                raise ValueError(
                    "The table has no population column 'population'.  Pass population=None "
                    "for one population, or population= naming your population column.")
            _missing_columns(df, [col], what, arg)
    _missing_columns(df, position, "position", "position")
    used = [c for c, _, _ in roles if c is not None] + list(position)
    if features is None:
        features = [c for c in df.columns if c not in used
                    and pd.api.types.is_numeric_dtype(df[c])
                    and not pd.api.types.is_bool_dtype(df[c])]
        if not features:
            raise ValueError(
                "The table has no numeric feature columns besides the cell, frame, position, "
                "population and session columns.  Pass features=[...] naming them.")
    else:
        features = [features] if isinstance(features, str) else list(features)
        _missing_columns(df, features, "feature", "features")
        both = [c for c in features if c in used]
        if both:
            raise ValueError(f"Column(s) {both} are used both as features and as another "
                             "role (cell, frame, position, ...); remove them from features=.")
    dup = _first_duplicates([c for c in df.columns if c in set(used) | set(features)])
    if len(dup):
        raise ValueError(f"The table has several columns named {_fmt(dup)}; rename them so "
                         "that each column name is unique.")
    return features


def _table_numeric(df, columns, what):
    bad = [c for c in columns if not pd.api.types.is_numeric_dtype(df[c])]
    if bad:
        raise TypeError(
            f"{what.capitalize()} column(s) {_fmt(bad)} are not numeric (dtype "
            f"{df[bad[0]].dtype}).  Convert them, e.g. df[col] = pd.to_numeric(df[col], "
            "errors='coerce') (unparseable entries become NaN, i.e. not observed), or "
            "leave them out of features=.")
    values = df[list(columns)].to_numpy(dtype=np.float64, na_value=np.nan)
    values = np.ascontiguousarray(values)
    inf = np.isinf(values)
    if inf.any():
        r, c = np.argwhere(inf)[0]
        raise ValueError(
            f"{what.capitalize()} column {columns[c]!r} has infinite values ({int(inf.sum())} "
            f"in the {what} columns, e.g. row {_py(df.index[r])!r}).  Infinite values are not "
            "allowed; NaN means 'not observed'.  Replace them, e.g. "
            "df = df.replace([np.inf, -np.inf], np.nan).")
    return values


def _table_frames(df, frame):
    col = df[frame]
    if pd.api.types.is_bool_dtype(col) or not pd.api.types.is_numeric_dtype(col):
        raise TypeError(
            f"Frame column {frame!r} has dtype {col.dtype}; frames must be integers.  Convert "
            f"it, e.g. df[{frame!r}] = pd.to_numeric(df[{frame!r}]).astype(int), or rank "
            f"timestamps: df[{frame!r}].rank(method='dense').astype(int) - 1.")
    if col.dtype.kind in "iu" and not col.isna().any():
        values = col.to_numpy(dtype=np.int64)
    else:
        values = col.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = ~np.isfinite(values)
        if bad.any():
            raise ValueError(
                f"Frame column {frame!r} has {int(bad.sum())} missing or infinite value(s) (e.g. "
                f"row {_py(df.index[np.argmax(bad)])!r}).  Drop those rows, e.g. "
                f"df = df.dropna(subset=[{frame!r}]).")
        frac = values != np.round(values)
        if frac.any():
            raise ValueError(
                f"Frame column {frame!r} has non-integer values (e.g. {values[np.argmax(frac)]!r}); "
                f"frames must be integers.  Round them (df[{frame!r}].round().astype(int)) or, "
                f"for timestamps, rank them: df[{frame!r}].rank(method='dense').astype(int) - 1 "
                "(and pass the timestamps as time_values).")
    return values.astype(np.int64)


def _missing(df, values):
    """Number of missing ``values`` (one per row of ``df``) and the row label of the first."""
    missing = pd.isna(values)
    n_missing = int(missing.sum())
    return n_missing, (_py(df.index[np.argmax(missing)]) if n_missing else None)


def _table_labels(df, column, what, n_rows):
    if column is None:
        return np.zeros(n_rows, dtype=np.int64), [None] if what == "session" else np.asarray(["all"])
    values = df[column].to_numpy()
    n_missing, row = _missing(df, values)
    if n_missing:
        raise ValueError(
            f"{what.capitalize()} column {column!r} has {n_missing} missing value(s) "
            f"(e.g. row {row!r}).  Fill them "
            f"(df[{column!r}] = df[{column!r}].fillna('unknown')) or drop those rows.")
    codes, uniques = _factorize(values)
    if what == "session":
        return codes, [_py(v) for v in uniques]
    return codes, uniques


def _untracked_rows(untracked, pop_codes, pop_labels, population):
    """Rows of the ``untracked`` populations, bool (n_rows,), or None."""
    if untracked is None:
        return None
    names = [untracked] if isinstance(untracked, str) else list(untracked)
    if population is None:
        raise ValueError(
            f"untracked={untracked!r} names populations but population=None; pass "
            "population= naming the population column, or cell=None if no row is tracked.")
    have = [str(p) for p in pop_labels]
    unknown = [n for n in names if str(n) not in have]
    if unknown:
        close = {n: difflib.get_close_matches(str(n), have, n=2, cutoff=0.5) for n in unknown}
        raise ValueError(
            f"untracked={_fmt(unknown)} names no population of column {population!r} "
            f"(populations: {_fmt(have, 10)}; close matches: {close}).  Name populations "
            "by their labels in that column.")
    wanted = np.isin(np.asarray(have, dtype=object), [str(n) for n in names])
    return wanted[pop_codes]


def _id_strings(values):
    """Track ids as strings: integral floats (5.0, what pandas makes of ids next
    to missing ones) print as ints; missing stays missing."""
    s = pd.Series(values, dtype=object)
    num = pd.to_numeric(s, errors="coerce")
    integral = num.notna() & (num == num.round())
    out = s.astype(str)
    out[integral] = num[integral].astype(np.int64).astype(str)
    out[s.isna().to_numpy()] = None
    return out.to_numpy(dtype=object)


def _cell_values(df, cell, pop_codes, pop_labels, untracked_rows, namespace):
    """Track id of every row, made unique per population and with one id per
    observation in untracked populations.

    Untracked rows get ``"<population>-obs<row>"`` (``row`` the row's position
    in ``df``), so each observation is its own cell: a neighbour, never a self
    pair.  ``namespace`` prefixes tracked ids with their population
    (``"CD8-5"``): trackers number each population's tracks on their own.
    """
    values = df[cell].to_numpy()
    if not namespace and untracked_rows is None:
        return values
    values = _id_strings(values) if namespace else values.astype(object)
    pops = np.asarray([str(p) for p in pop_labels], dtype=object)[pop_codes]
    if namespace:
        ok = ~pd.isna(values)
        values[ok] = pops[ok] + "-" + values[ok]
    if untracked_rows is not None and untracked_rows.any():
        rows = np.flatnonzero(untracked_rows)
        values[rows] = pops[rows] + "-obs" + rows.astype(str).astype(object)
    return values


def _table_cells(df, cell, sess_codes, n_sessions, values=None):
    """Cell index per row: one cell per (session, track id), session-major."""
    values = df[cell].to_numpy() if values is None else values
    n_missing, row = _missing(df, values)
    if n_missing:
        raise ValueError(
            f"Cell column {cell!r} has {n_missing} missing value(s) (e.g. row "
            f"{row!r}), e.g. spots that are in no track.  Drop "
            f"them (df.dropna(subset=[{cell!r}])), pass untracked=[...] naming the populations "
            "that have no tracks (each of their rows becomes its own cell), or cell=None if "
            "the table has no track identity at all.")
    label_codes, labels = _factorize(values)
    key = sess_codes * max(len(labels), 1) + label_codes
    unique_keys, row_cell = np.unique(key, return_inverse=True)
    cell_ids = labels[unique_keys % max(len(labels), 1)]
    cell_session = (unique_keys // max(len(labels), 1)).astype(np.int64)
    return row_cell.astype(np.int64).ravel(), cell_ids, cell_session


def _per_population_ids(cell, population):
    """How to make track ids unique per population, for error messages.

    Imaris and TrackMate number each population's tracks on its own, so
    ``TrackID`` 5 of CD4 and of CD8 cells are different cells; dropping
    "duplicates" would delete one of them.
    """
    return (f"If the populations number their tracks separately (Imaris does), make the ids "
            f"unique per population: pass cell_per_population=True, or e.g. "
            f"df[{cell!r}] = df[{population!r}].astype(str) + '-' + df[{cell!r}].astype(str).")


def _table_cell_population(row_cell, pop_codes, n_cells, cell_ids, cell, pop_labels,
                           population):
    cell_pop = np.zeros(n_cells, dtype=np.int64)
    cell_pop[row_cell] = pop_codes
    bad = cell_pop[row_cell] != pop_codes
    if bad.any():
        c = row_cell[np.argmax(bad)]
        pops = np.unique(pop_codes[row_cell == c])
        raise ValueError(
            f"Cell {_py(cell_ids[c])!r} (column {cell!r}) has several populations "
            f"{_fmt(pop_labels[pops])}; a cell's population must be the same in all its rows.  "
            "Fix the population labels, or split the track into separate cell ids.  "
            + _per_population_ids(cell, population))
    return cell_pop


def _table_no_duplicates(row_cell, frames, cell_ids, cell_session, session_labels,
                         cell, frame, session, *, pop_codes, pop_labels, population):
    order = np.lexsort((frames, row_cell))
    c, f, p = row_cell[order], frames[order], pop_codes[order]
    dup = (c[1:] == c[:-1]) & (f[1:] == f[:-1])
    if not dup.any():
        return
    # Repeats across populations are populations reusing track ids, not
    # duplicates: suggesting drop_duplicates would delete real cells.
    across = dup & (p[1:] != p[:-1])
    at = np.flatnonzero(across if across.any() else dup)[:3] + 1
    examples = []
    for i in at:
        lab = f"cell {_py(cell_ids[c[i]])!r}, frame {f[i]}"
        if session is not None:
            lab = f"session {_py(session_labels[cell_session[c[i]]])!r}, " + lab
        if across.any():
            lab += f": populations {_py(pop_labels[p[i - 1]])!r} and {_py(pop_labels[p[i]])!r}"
        examples.append("(" + lab + ")")
    missing_like = {str(_py(cell_ids[c[i]])).strip().lower() for i in at} & {"none", "nan", "", "na", "null"}
    hint = (f"  Ids such as {sorted(missing_like)} usually mark spots in no track (TrackMate "
            "writes 'None'); drop those rows or read the file with na_values=['None'] and then "
            "drop the missing ids." if missing_like else "")
    if across.any():
        # never drop_duplicates here, even next to placeholder ids: rows of two
        # populations are two cells
        raise ValueError(
            f"{int(across.sum())} row(s) repeat a (session, cell, frame) combination in "
            f"another population, e.g. {', '.join(examples)}; the populations use the same "
            f"cell ids.  These rows are different cells: do not drop them.  "
            + _per_population_ids(cell, population) + hint)
    raise ValueError(
        f"{int(dup.sum())} row(s) repeat a (session, cell, frame) combination, e.g. "
        f"{', '.join(examples)}; each cell may be seen once per frame.{hint}  Remove the "
        f"duplicates (df.drop_duplicates(subset=[{cell!r}, {frame!r}]{' + [session]' if session else ''})), "
        "or pass cell=None if the ids are not track identities.")


def _table_time_values(df, time_values, tv_column, sess_codes, row_time, first, n_times, frame):
    """Time labels of every time index of every session."""
    frames_of = [np.arange(f, f + n, dtype=np.int64) for f, n in zip(first, n_times)]
    if time_values is None:
        return frames_of
    if tv_column is not None:
        values = df[tv_column].to_numpy()
        out = []
        for s, fr in enumerate(frames_of):
            rows = sess_codes == s
            t = row_time[rows]
            v = values[rows]
            labels = np.full(len(fr), np.nan, dtype=np.float64 if values.dtype.kind in "biuf" else object)
            labels[t] = v
            if not (pd.Series(v).groupby(t).nunique(dropna=False) <= 1).all():
                raise ValueError(
                    f"time_values column {tv_column!r} is not constant within a frame; it must "
                    f"give one time per {frame!r}.  Pass a mapping frame -> time instead.")
            out.append(labels)
        return out
    if isinstance(time_values, (Mapping, pd.Series)):
        series = pd.Series(time_values)
        return [series.reindex(fr).to_numpy() for fr in frames_of]
    if callable(time_values):
        return [np.asarray(time_values(fr)) for fr in frames_of]
    raise TypeError(
        f"time_values must be None, a column name, a mapping frame -> time or a callable, "
        f"got {type(time_values).__name__}.")

