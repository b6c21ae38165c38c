"""Readers for tracker exports, into the long table of :meth:`Recording.from_table`.

Both readers return one row per object per frame with the columns ``id``,
``track``, ``frame``, ``x``, ``y``[, ``z``], feature columns and
``population``; :func:`read_trackmate` adds ``cell`` (track ids made unique
per population, one id per untracked spot) and ``session``.

Imaris "Statistics" exports (what BEHAV3D consumes) write one CSV per
statistic per population: a blank line, the statistic's title, a ``====``
line, a header row, then rows of ``value(s),Unit,Category,[Channel,Image,]
[Collection,]Time,[TrackID,]ID``.  :func:`read_imaris` joins one folder of
them into the long table that :meth:`licchie.Recording.from_table` takes.

TrackMate writes a spots table (CSV, one row per spot, the column-name row
sometimes followed by rows of long names, short names and units) or a whole
model as XML; :func:`read_trackmate` reads both, one file per session.
"""
from __future__ import annotations

import glob
import gzip
import io
import os
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd

__all__ = ["read_imaris", "read_trackmate", "read_well"]

# columns of an Imaris statistics file that describe a row, not its values
_META = {"Unit", "Category", "Channel", "Image", "Collection", "Time", "TrackID", "ID"}
# statistics that restate the frame or summarise a whole frame
_SKIP = {"Time Index", "Overall"}


def _read_text(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8-sig", newline="") as fh:
        return fh.read()


def _parse_statistic(path):
    """``(title, DataFrame)`` of one Imaris statistics file, or None to skip it.

    The frame has the file's value columns plus ``Time``, ``ID`` and, when
    present, ``TrackID``.
    """
    text = _read_text(path)
    lines = text.splitlines()
    try:
        bar = next(i for i, ln in enumerate(lines[:10]) if ln.strip().startswith("===="))
    except StopIteration:
        raise ValueError(f"{path}: not an Imaris statistics export (no '====' line under "
                         "the title in its first lines).") from None
    title = next((ln.strip() for ln in reversed(lines[:bar]) if ln.strip()), "")
    if title in _SKIP:
        return None
    df = pd.read_csv(io.StringIO("\n".join(lines[bar + 1:])), sep=",", index_col=False)
    df = df.loc[:, [c for c in df.columns if not str(c).startswith("Unnamed")]]
    df.columns = [str(c).strip() for c in df.columns]
    if "Time.1" in df.columns:  # the "Time" statistic: seconds, then the frame
        df = df.rename(columns={"Time": "time_s", "Time.1": "Time"})
        title = "time_s"
    if "ID" not in df.columns or "Time" not in df.columns or "Variable" in df.columns:
        return None  # a per-frame or per-image summary, not one row per object
    values = [c for c in df.columns if c not in _META]
    if not values:
        return None
    df = df[df["ID"].notna()]
    keep = values + ["Time", "ID"] + (["TrackID"] if "TrackID" in df.columns else [])
    df = df[keep].copy()
    if len(values) == 1 and values[0] != title:
        df = df.rename(columns={values[0]: title})
    return title, df


def read_imaris(folder, population=None):
    """Join one folder of Imaris statistics exports into a long table.

    Parameters
    ----------
    folder : str or path
        Folder holding ``*.csv`` / ``*.csv.gz`` statistics files of one
        population (one object type) in one recording.
    population : str, optional
        Value of the table's ``population`` column; default the folder's name.

    Returns
    -------
    pandas.DataFrame, one row per object per frame
        ``id`` (Imaris object ID, unique per object and frame), ``track``
        (TrackID; ``<NA>`` when the export has no tracks), ``frame`` (Imaris
        ``Time``, 1-based), ``x``, ``y``, ``z`` (from ``Position``), one
        column per other statistic (named by its title, e.g. ``"Intensity
        Mean Ch=4 Img=1"``; several-valued statistics keep their header names,
        e.g. ``"Displacement Delta X"``), ``time_s`` when a ``Time`` statistic
        (seconds) is present, and ``population``.

    Raises
    ------
    FileNotFoundError
        No statistics files in ``folder``.
    ValueError
        A file that is not an Imaris export, a folder without ``Position``,
        or statistics whose rows disagree on an object's frame or track.

    Examples
    --------
    >>> tc = read_imaris("tcells/..._CD8blue_Statistics", population="CD8")  # doctest: +SKIP
    >>> rec = licchie.Recording.from_table(tc, cell="track", frame="frame",
    ...                                     position=("x", "y", "z"),
    ...                                     features=["Area", "Sphericity"])  # doctest: +SKIP
    """
    folder = os.fspath(folder)
    files = sorted(glob.glob(os.path.join(folder, "*.csv")) +
                   glob.glob(os.path.join(folder, "*.csv.gz")))
    if not files:
        raise FileNotFoundError(f"No Imaris statistics files (*.csv, *.csv.gz) in {folder!r}.")
    table = None
    have_position = False
    for path in files:
        parsed = _parse_statistic(path)
        if parsed is None:
            continue
        title, df = parsed
        if title == "Position":
            df = df.rename(columns={"Position X": "x", "Position Y": "y", "Position Z": "z"})
            have_position = True
        dup = df["ID"].duplicated()
        if dup.any():
            raise ValueError(f"{path}: object ID {df['ID'][dup].iloc[0]} appears in several "
                             "rows; expected one row per object per frame.")
        if table is None:
            table = df
            continue
        new = [c for c in df.columns if c not in ("Time", "ID", "TrackID")]
        clash = [c for c in new if c in table.columns]
        if clash:
            raise ValueError(f"{path}: statistic column(s) {clash} already read from another "
                             "file of this folder; keep one export per statistic.")
        table = table.merge(df, on="ID", how="outer", suffixes=("", "__other"))
        for key in ("Time", "TrackID"):
            other = key + "__other"
            if other in table.columns:
                a, b = table[key], table[other]
                bad = a.notna() & b.notna() & (a != b)
                if bad.any():
                    raise ValueError(f"{path}: object ID {table['ID'][bad].iloc[0]} has "
                                     f"{key} {b[bad].iloc[0]} here but {a[bad].iloc[0]} in "
                                     "another file of this folder.")
                table[key] = a.where(a.notna(), b)
                table = table.drop(columns=other)
    if table is None:
        raise ValueError(f"{folder!r} holds no per-object Imaris statistics.")
    if not have_position:
        raise ValueError(f"{folder!r} has no Position statistic (Position X/Y/Z); export it "
                         "from Imaris with the others.")
    out = pd.DataFrame({"id": table["ID"].astype(np.int64)})
    out["track"] = (table["TrackID"].astype("Int64") if "TrackID" in table.columns
                    else pd.Series(pd.NA, index=table.index, dtype="Int64"))
    out["frame"] = table["Time"].astype(np.int64)
    for c in ("x", "y", "z"):
        if c in table.columns:
            out[c] = table[c].astype(float)
    rest = [c for c in table.columns if c not in ("ID", "TrackID", "Time", "x", "y", "z")]
    for c in rest:
        out[c] = pd.to_numeric(table[c], errors="coerce")
    out["population"] = population if population is not None else os.path.basename(
        os.path.normpath(folder))
    return out.sort_values(["frame", "id"], kind="stable").reset_index(drop=True)


# ------------------------------------------------------------------ TrackMate
# Spot columns that are bookkeeping, not features of the cell.
_TM_ROLES = {"LABEL", "ID", "TRACK_ID", "POSITION_X", "POSITION_Y", "POSITION_Z",
             "POSITION_T", "FRAME", "VISIBILITY", "MANUAL_SPOT_COLOR", "MANUAL_COLOR",
             "name", "ROI_N_POINTS"}
_TM_NEEDED = ("FRAME", "POSITION_X", "POSITION_Y")
# Columns of TrackMate's other tables: say which export to use instead.
_TM_OTHER_TABLES = {"SPOT_SOURCE_ID": "edges", "TRACK_DURATION": "tracks",
                    "NUMBER_SPOTS": "tracks"}
_TM_SUFFIXES = (".csv.gz", ".csv", ".xml.gz", ".xml")


def _trackmate_paths(path):
    """Files of ``path`` (one file, a glob pattern, or a list of either), in the
    order given, each pattern's matches sorted."""
    if isinstance(path, (str, os.PathLike)):
        items = [os.fspath(path)]
    else:
        try:
            items = [os.fspath(p) for p in path]
        except TypeError:
            raise TypeError(f"path must be a file name, a glob pattern or a list of them, "
                            f"got {type(path).__name__}.") from None
        if not items:
            raise ValueError("path is an empty list; give at least one TrackMate file.")
    files = []
    for item in items:
        if glob.has_magic(item):
            hits = sorted(glob.glob(item))
            if not hits:
                raise FileNotFoundError(f"No file matches the pattern {item!r}.")
            files.extend(hits)
        elif not os.path.isfile(item):
            hint = (" It is a folder: pass a pattern such as "
                    f"{os.path.join(item, '*.csv')!r}." if os.path.isdir(item) else "")
            raise FileNotFoundError(f"No such TrackMate file: {item!r}.{hint}")
        else:
            files.append(item)
    for f in files:
        if not f.lower().endswith(_TM_SUFFIXES):
            raise ValueError(f"{f!r}: expected a TrackMate spots table (.csv, .csv.gz) or a "
                             "TrackMate XML file (.xml); rename it or export it again.")
    return files


def _session_label(path):
    name = os.path.basename(path)
    for suf in _TM_SUFFIXES:
        if name.lower().endswith(suf):
            return name[:-len(suf)]
    return name


def _is_number(value):
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return value == value and str(value).strip() != ""


def _read_trackmate_csv(path):
    """Spots table of one TrackMate CSV export, extra header rows skipped."""
    try:
        head = pd.read_csv(path, nrows=8, dtype=str, keep_default_na=False,
                           encoding="utf-8-sig")
    except (UnicodeDecodeError, pd.errors.ParserError, EOFError, OSError) as exc:
        raise ValueError(f"{path}: cannot read it as a CSV table ({exc}); is it a TrackMate "
                         "spots table (File > Export > Spots table to CSV)?") from exc
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path}: the file is empty.") from None
    columns = [str(c).strip() for c in head.columns]
    _check_trackmate_columns(path, columns)
    # TrackMate >= 7 writes long names, short names and units below the
    # column names; those rows have no number in the FRAME column.
    n_extra = 0
    for value in head.iloc[:, columns.index("FRAME")]:
        if _is_number(value):
            break
        n_extra += 1
    df = pd.read_csv(path, skiprows=range(1, n_extra + 1), na_values=["None"],
                     encoding="utf-8-sig", low_memory=False)
    df.columns = columns
    return df


def _check_trackmate_columns(path, columns):
    for col, table in _TM_OTHER_TABLES.items():
        if col in columns and "POSITION_X" not in columns:
            raise ValueError(f"{path}: this is TrackMate's {table} table (it has {col}); "
                             "read_trackmate needs the spots table (export 'Spots' to CSV) "
                             "or the TrackMate XML file.")
    missing = [c for c in _TM_NEEDED if c not in columns]
    if missing:
        raise ValueError(
            f"{path}: not a TrackMate spots table: column(s) {missing} missing (it has "
            f"{columns[:12]}{' ...' if len(columns) > 12 else ''}).  Export the spots table "
            "from TrackMate with its default column names (FRAME, POSITION_X, POSITION_Y, "
            "TRACK_ID, ...), or rename your columns to them.")


def _read_trackmate_xml(path):
    """Spots of one TrackMate XML file, with TRACK_ID from the track edges."""
    opener = gzip.open if path.lower().endswith(".gz") else open
    spots, edges = [], []
    track, n_tracks = None, 0
    try:
        with opener(path, "rb") as fh:
            for event, elem in ET.iterparse(fh, events=("start", "end")):
                tag = elem.tag
                if event == "start":
                    if tag == "Track":
                        # older files lack TRACK_ID: number the tracks in file order
                        track = elem.get("TRACK_ID", str(n_tracks))
                        n_tracks += 1
                    continue
                if tag == "Spot":
                    spots.append(dict(elem.attrib))
                    elem.clear()
                elif tag == "Edge":
                    edges.append((elem.get("SPOT_SOURCE_ID"), elem.get("SPOT_TARGET_ID"),
                                  track))
                    elem.clear()
                elif tag == "Track":
                    track = None
                    elem.clear()
    except ET.ParseError as exc:
        raise ValueError(f"{path}: not valid XML ({exc}); is it a TrackMate file "
                         "(File > Save in TrackMate)?") from exc
    except (OSError, EOFError) as exc:
        raise ValueError(f"{path}: cannot read it ({exc}).") from exc
    if not spots:
        raise ValueError(f"{path}: no <Spot> elements under <Model><AllSpots>; is it a "
                         "TrackMate XML file with detected spots?")
    df = pd.DataFrame(spots)
    if "ID" not in df.columns:
        raise ValueError(f"{path}: the <Spot> elements have no ID attribute; the file is "
                         "not a TrackMate model.")
    _check_trackmate_columns(path, list(df.columns))
    df = df.drop(columns=[c for c in ("name",) if c in df.columns])
    for c in df.columns:
        df[c] = pd.to_numeric(df[c], errors="coerce") if c != "LABEL" else df[c]
    track_of = {}
    for src, tgt, tr in edges:
        for spot in (src, tgt):
            if spot is None:
                continue
            if track_of.setdefault(spot, tr) != tr:
                raise ValueError(f"{path}: spot {spot} is in two tracks ({track_of[spot]!r} "
                                 f"and {tr!r}); the file is inconsistent.")
    ids = df["ID"].astype("Int64").astype(str)
    df["TRACK_ID"] = pd.to_numeric(ids.map(track_of), errors="coerce")
    return df


def read_trackmate(path, population=None, features=None):
    """Read TrackMate spots (CSV, CSV.gz or XML) into a long table.

    Parameters
    ----------
    path : str, path, glob pattern or list of them
        TrackMate spots tables (``*.csv``, ``*.csv.gz``; extra header rows of
        long names, short names and units below the column names are
        skipped) or TrackMate XML files (``*.xml``; spots from
        ``<AllSpots>``, each spot's track from the ``<Edge>`` elements of
        ``<AllTracks>``, all tracks whatever the track filters).  Each file
        is one session (recording), labeled by its name without extension.
    population : str, optional
        Population of every spot.  When given, track ids are namespaced by it
        in the ``cell`` column (``"<population>-<TRACK_ID>"``), so tables of
        several populations can be concatenated without clashing ids.
        Default: population ``"all"``, cells not namespaced.
    features : sequence of str, optional
        TrackMate feature columns to keep (e.g. ``["AREA", "CIRCULARITY"]``).
        Default: every numeric spot feature that is not bookkeeping (not
        ``LABEL``, ``ID``, ``TRACK_ID``, ``POSITION_*``, ``FRAME``,
        ``VISIBILITY``, ``MANUAL_*COLOR``) and is not empty in every file.

    Returns
    -------
    pandas.DataFrame, shape (n_spots, 7 + n_features)
        One row per spot, by session (in the order of the files), frame and spot id:
        ``id`` (spot ``ID``), ``track`` (``TRACK_ID``, Int64, ``<NA>`` for a
        spot in no track), ``cell`` (str: the track id, namespaced by the
        population when given; an untracked spot is its own cell
        ``"spot<ID>"``, so it is a neighbour but gets no self pair),
        ``frame`` (``FRAME``, int), ``x``, ``y`` and, unless ``POSITION_Z``
        is 0 everywhere (a 2D movie), ``z``; ``time`` (``POSITION_T``) when
        present; the feature columns under their TrackMate names;
        ``population`` and ``session``.  Column order as the Imaris reader
        :func:`read_imaris` (``id``, ``track``, ``frame``, positions,
        features, ``population``).

    Raises
    ------
    FileNotFoundError
        A missing file, or a pattern that matches nothing.
    ValueError
        A file that is not a TrackMate spots table or XML model (unreadable,
        or missing ``FRAME``/``POSITION_X``/``POSITION_Y``), TrackMate's edges
        or tracks table instead of the spots table, or ``features`` naming
        columns that a file lacks.

    Notes
    -----
    A track that splits or merges has several spots in one frame; the
    ``(cell, frame)`` pair then repeats and :meth:`Recording.from_table`
    says so.  Numeric ``id``, ``track`` and ``time`` columns are not
    features: name the features when building the Recording.

    Examples
    --------
    >>> df = read_trackmate("movies/*.csv", population="epithelial")  # doctest: +SKIP
    >>> feats = [c for c in df.columns if c.isupper()]                 # doctest: +SKIP
    >>> rec = licchie.from_table(df, cell="cell", frame="frame", session="session",
    ...                          features=feats)                       # doctest: +SKIP
    """
    files = _trackmate_paths(path)
    if population is not None and not isinstance(population, str):
        raise TypeError(f"population must be a str or None, got {type(population).__name__}.")
    if features is not None:
        features = [features] if isinstance(features, str) else list(features)
    tables = []
    for f in files:
        df = (_read_trackmate_xml(f) if f.lower().endswith((".xml", ".xml.gz"))
              else _read_trackmate_csv(f))
        if features is not None:
            missing = [c for c in features if c not in df.columns]
            if missing:
                from .data.tables import _close_columns
                close = {c: _close_columns(c, [str(k) for k in df.columns]) for c in missing}
                raise ValueError(f"{f}: no feature column(s) {missing} (close matches: "
                                 f"{close}).  Pass features= with TrackMate column names.")
        tables.append(_trackmate_table(f, df, population, features))
    out = pd.concat(tables, ignore_index=True)
    if "z" in out.columns and (out["z"].fillna(0) == 0).all():
        out = out.drop(columns="z")
    if features is None:
        empty = [c for c in out.columns if c.isupper() and out[c].isna().all()]
        out = out.drop(columns=empty)
    front = ["id", "track", "cell", "frame"] + [c for c in ("x", "y", "z", "time")
                                                if c in out.columns]
    back = ["population", "session"]
    rest = [c for c in out.columns if c not in front and c not in back]
    return out[front + rest + back]


def _trackmate_table(path, df, population, features):
    """One file's spots in the output convention (see :func:`read_trackmate`)."""
    n = len(df)
    if n == 0:
        raise ValueError(f"{path}: the spots table has no rows.")
    frame = pd.to_numeric(df["FRAME"], errors="coerce")
    if frame.isna().any() or (frame != frame.round()).any():
        row = int(np.flatnonzero((frame.isna() | (frame != frame.round())).to_numpy())[0])
        raise ValueError(f"{path}: FRAME is not an integer in data row {row} "
                         f"({df['FRAME'].iloc[row]!r}); is this a TrackMate spots table?")
    ids = (pd.to_numeric(df["ID"], errors="coerce") if "ID" in df.columns
           else pd.Series(np.arange(n)))
    if ids.isna().any() or (ids != ids.round()).any():
        row = int(np.flatnonzero((ids.isna() | (ids != ids.round())).to_numpy())[0])
        raise ValueError(f"{path}: spot ID is not an integer in data row {row}; is this a "
                         "TrackMate spots table?")
    track = (pd.to_numeric(df["TRACK_ID"], errors="coerce")
             if "TRACK_ID" in df.columns else pd.Series(np.nan, index=df.index))
    out = pd.DataFrame({"id": ids.to_numpy(dtype=np.int64),
                        "track": pd.array(track.to_numpy(), dtype="Int64")})
    tracked = out["track"].notna().to_numpy()
    cell = np.where(tracked, out["track"].astype(str).to_numpy(),
                    "spot" + out["id"].astype(str).to_numpy())
    if population is not None:
        cell = np.char.add(population + "-", cell.astype(str)).astype(object)
    out["cell"] = cell.astype(object)
    out["frame"] = frame.astype(np.int64).to_numpy()
    for src, dst in (("POSITION_X", "x"), ("POSITION_Y", "y"), ("POSITION_Z", "z"),
                     ("POSITION_T", "time")):
        if src in df.columns:
            out[dst] = pd.to_numeric(df[src], errors="coerce").to_numpy(dtype=float)
    if features is None:
        features = [c for c in df.columns if c not in _TM_ROLES]
        features = [c for c in features
                    if pd.to_numeric(df[c], errors="coerce").notna().any()
                    or df[c].isna().all()]
    for c in features:
        out[c] = pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=float)
    out["population"] = population if population is not None else "all"
    out["session"] = _session_label(path)
    return out.sort_values(["frame", "id"], kind="stable").reset_index(drop=True)


# the whole-well reader builds on the two above (licchie.well imports them late)
from .well import read_well  # noqa: E402
