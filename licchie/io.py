"""Readers for tracker exports that are not already one table.

Imaris "Statistics" exports (what BEHAV3D consumes) write one CSV per
statistic per population: a blank line, the statistic's title, a ``====``
line, a header row, then rows of ``value(s),Unit,Category,[Channel,Image,]
[Collection,]Time,[TrackID,]ID``.  :func:`read_imaris` joins one folder of
them into the long table that :meth:`licchie.Recording.from_table` takes.
"""
from __future__ import annotations

import glob
import gzip
import io
import os

import numpy as np
import pandas as pd

__all__ = ["read_imaris"]

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
