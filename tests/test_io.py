"""Imaris statistics exports (BEHAV3D's input) -> long table -> Recording."""
import gzip
import os

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from licchie import Recording
from licchie.io import read_imaris



def _shared_data():
    """The shared data folder: $LICCHIE_SHARED_DATA, else ../shared/data next to the clone."""
    env = os.environ.get("LICCHIE_SHARED_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


DATA = str(_shared_data() / "behav3d_coculture_well0")


def _write(folder, name, title, header, rows, gz=False):
    text = "\n" + title + "\n ==================== \n" + header + ",\n" + \
        "".join(",".join(map(str, r)) + ",\n" for r in rows)
    path = os.path.join(folder, name + (".csv.gz" if gz else ".csv"))
    if gz:
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        with open(path, "w") as fh:
            fh.write(text)


@pytest.fixture
def export(tmp_path):
    d = str(tmp_path)
    _write(d, "x_Position", "Position",
           "Position X,Position Y,Position Z,Unit,Category,Collection,Time,TrackID,ID",
           [(1.0, 2.0, 3.0, "um", "Surface", "Position", 1, 1000010, 10),
            (4.0, 5.0, 6.0, "um", "Surface", "Position", 1, 1000011, 11),
            (1.5, 2.5, 3.5, "um", "Surface", "Position", 2, 1000010, 12)], gz=True)
    _write(d, "x_Area", "Area", "Area,Unit,Category,Time,TrackID,ID",
           [(100.0, "um^2", "Surface", 1, 1000010, 10),
            (200.0, "um^2", "Surface", 1, 1000011, 11),
            (110.0, "um^2", "Surface", 2, 1000010, 12)])
    _write(d, "x_Intensity_Mean_Ch=4", "Intensity Mean Ch=4 Img=1",
           "Intensity Mean,Unit,Category,Channel,Image,Time,TrackID,ID",
           [(2.5, "", "Surface", 4, "Image 1", 1, 1000010, 10),
            (12.0, "", "Surface", 4, "Image 1", 2, 1000010, 12)])  # object 11 missing
    _write(d, "x_Time", "Time", "Time,Unit,Category,Time,TrackID,ID",
           [(0, "s", "Surface", 1, 1000010, 10), (0, "s", "Surface", 1, 1000011, 11),
            (120, "s", "Surface", 2, 1000010, 12)])
    _write(d, "x_Overall", "Overall", "Variable,Value,Unit,Time,ID",
           [("Number of Surfaces per Time Point", 2, "", 1, "")])
    return d


def test_read_imaris_joins_statistics_by_object(export):
    df = read_imaris(export, population="CD8")
    assert list(df["id"]) == [10, 11, 12]
    assert list(df["frame"]) == [1, 1, 2]
    assert list(df["track"]) == [1000010, 1000011, 1000010]
    np.testing.assert_array_equal(df[["x", "y", "z"]].values,
                                  [[1, 2, 3], [4, 5, 6], [1.5, 2.5, 3.5]])
    np.testing.assert_array_equal(df["Area"], [100.0, 200.0, 110.0])
    np.testing.assert_array_equal(df["Intensity Mean Ch=4 Img=1"], [2.5, np.nan, 12.0])
    np.testing.assert_array_equal(df["time_s"], [0, 0, 120])
    assert "Overall" not in df.columns and set(df["population"]) == {"CD8"}


def test_read_imaris_untracked_objects_and_errors(export, tmp_path):
    df = read_imaris(export)
    assert df["population"].iloc[0] == os.path.basename(export)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="No Imaris statistics files"):
        read_imaris(empty)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.csv").write_text("id,frame\n1,2\n")
    with pytest.raises(ValueError, match="not an Imaris statistics export"):
        read_imaris(bad)
    nopos = tmp_path / "nopos"
    nopos.mkdir()
    _write(str(nopos), "x_Area", "Area", "Area,Unit,Category,Time,ID",
           [(1.0, "um^2", "Surface", 1, 5)])
    with pytest.raises(ValueError, match="no Position"):
        read_imaris(nopos)
    clash = tmp_path / "clash"
    clash.mkdir()
    _write(str(clash), "p", "Position", "Position X,Position Y,Position Z,Unit,Category,"
           "Collection,Time,TrackID,ID", [(0, 0, 0, "um", "S", "P", 1, 7, 5)])
    _write(str(clash), "q", "Area", "Area,Unit,Category,Time,TrackID,ID",
           [(1.0, "um^2", "S", 2, 7, 5)])
    with pytest.raises(ValueError, match="object ID 5 has Time 2 here but 1"):
        read_imaris(clash)


@pytest.mark.skipif(not os.path.isdir(DATA), reason=(
    f"the shared BEHAV3D recording ({DATA}) is not here; CI has ../shared/data next to the "
    "clone, or set LICCHIE_SHARED_DATA"))
def test_behav3d_well_reads_into_a_recording():
    folders = sorted(
        os.path.join(DATA, kind, f) for kind in ("tcells", "organoids")
        for f in os.listdir(os.path.join(DATA, kind)))
    tables = {os.path.basename(f).split("_10k_")[1].split("_")[0]: read_imaris(f)
              for f in folders}
    # row and track counts stated in the data's PROVENANCE.md
    assert len(tables["CD4green"]) == 23281 and tables["CD4green"]["track"].nunique() == 681
    assert len(tables["CD8blue"]) == 30791 and tables["CD8blue"]["track"].nunique() == 919
    assert len(tables["organoids"]) == 11467 and tables["organoids"]["track"].isna().all()
    feats = ["Area", "Sphericity", "Intensity Mean Ch=4 Img=1"]
    t = pd.concat([tables["CD8blue"].assign(population="CD8"),
                   tables["organoids"].assign(population="organoid")], ignore_index=True)
    # organoids have no identity: each observation is its own cell
    t["cell"] = np.where(t["track"].isna(), "o" + t["id"].astype(str),
                         "t" + t["track"].astype(str))
    rec = Recording.from_table(t[t["frame"] <= 20], cell="cell", frame="frame",
                               position=("x", "y", "z"), features=feats)
    sel = t[t["frame"] <= 20]
    assert rec.obs.n_obs == len(sel)
    assert list(rec.obs.feature_names) == feats


# ------------------------------------------------------------------ TrackMate
from licchie import from_table  # noqa: E402
from licchie.io import read_trackmate  # noqa: E402


TEB = _shared_data() / "mammary_teb_2d_trackmate" / "raw"

_TM_COLUMNS = "LABEL,ID,TRACK_ID,QUALITY,POSITION_X,POSITION_Y,POSITION_Z,POSITION_T,FRAME," \
    "RADIUS,VISIBILITY,MANUAL_SPOT_COLOR,AREA,CIRCULARITY"
# TrackMate >= 7: long names, short names and units below the column names
_TM_EXTRA = ["Label,Spot ID,Track ID,Quality,X,Y,Z,T,Frame,Radius,Visibility,"
             "Manual spot color,Area,Circularity",
             "Label,Spot ID,Track ID,Quality,X,Y,Z,T,Frame,R,Visibility,Spot color,Area,Circ.",
             ",,,(quality),(micron),(micron),(micron),(sec),,(micron),,,(micron^2),"]
# (ID, TRACK_ID, x, y, frame, area, circularity); spot 9 is in no track
_TM_SPOTS = [(3, 0, 1.0, 2.0, 0, 10.0, 0.5), (4, 1, 5.0, 6.0, 0, 20.0, 0.6),
             (5, 0, 1.5, 2.5, 1, 11.0, 0.55), (9, "None", 7.0, 7.0, 1, 30.0, 0.7),
             (6, 1, 5.5, 6.5, 1, 21.0, 0.65)]


def _tm_csv(path, extra=True, spots=_TM_SPOTS, gz=False):
    rows = [_TM_COLUMNS] + (_TM_EXTRA if extra else [])
    for i, tr, x, y, f, a, c in spots:
        rows.append(f"ID{i},{i},{tr},1.0,{x},{y},0.0,{f * 2.0},{f},3.0,1,,{a},{c}")
    text = "\n".join(rows) + "\n"
    if gz:
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        Path(path).write_text(text)
    return str(path)


def _tm_xml(path, spots=_TM_SPOTS):
    by_frame = {}
    for i, tr, x, y, f, a, c in spots:
        by_frame.setdefault(f, []).append(
            f'<Spot ID="{i}" name="ID{i}" QUALITY="1.0" POSITION_X="{x}" POSITION_Y="{y}" '
            f'POSITION_Z="0.0" POSITION_T="{f * 2.0}" FRAME="{f}" RADIUS="3.0" '
            f'VISIBILITY="1" AREA="{a}" CIRCULARITY="{c}" />')
    frames = "".join(f'<SpotsInFrame frame="{f}">{"".join(s)}</SpotsInFrame>'
                     for f, s in sorted(by_frame.items()))
    tracks = {}
    for i, tr, *_ in spots:
        if tr != "None":
            tracks.setdefault(tr, []).append(i)
    edges = "".join(
        f'<Track name="Track_{tr}" TRACK_ID="{tr}">'
        + "".join(f'<Edge SPOT_SOURCE_ID="{a}" SPOT_TARGET_ID="{b}" EDGE_TIME="0.5" />'
                  for a, b in zip(ids[:-1], ids[1:])) + "</Track>"
        for tr, ids in tracks.items())
    Path(path).write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<TrackMate version="7.11.1">'
        '<Model spatialunits="micron" timeunits="sec"><FeatureDeclarations />'
        f'<AllSpots nspots="{len(spots)}">{frames}</AllSpots>'
        f'<AllTracks>{edges}</AllTracks><FilteredTracks /></Model><Settings /></TrackMate>')
    return str(path)


def _check_synthetic(df, population=None):
    pre = "" if population is None else population + "-"
    assert list(df.columns[:6]) == ["id", "track", "cell", "frame", "x", "y"]
    assert "z" not in df.columns  # POSITION_Z is 0 everywhere: a 2D movie
    assert list(df["id"]) == [3, 4, 5, 6, 9]
    assert df["track"].dtype == "Int64"
    assert df["track"].isna().tolist() == [False, False, False, False, True]
    assert list(df["cell"]) == [pre + "0", pre + "1", pre + "0", pre + "1", pre + "spot9"]
    assert list(df["frame"]) == [0, 0, 1, 1, 1]
    np.testing.assert_array_equal(df["x"], [1.0, 5.0, 1.5, 5.5, 7.0])
    np.testing.assert_array_equal(df["time"], [0.0, 0.0, 2.0, 2.0, 2.0])
    np.testing.assert_array_equal(df["AREA"], [10.0, 20.0, 11.0, 21.0, 30.0])
    assert {"QUALITY", "RADIUS", "AREA", "CIRCULARITY"} <= set(df.columns)
    assert not {"VISIBILITY", "MANUAL_SPOT_COLOR", "LABEL", "POSITION_T"} & set(df.columns)
    assert set(df["population"]) == {population or "all"}


@pytest.mark.parametrize("extra", [True, False])
def test_read_trackmate_csv_header_rows(tmp_path, extra):
    df = read_trackmate(_tm_csv(tmp_path / "m1.csv", extra=extra))
    _check_synthetic(df)
    assert set(df["session"]) == {"m1"}


def test_read_trackmate_csv_gz_and_population(tmp_path):
    df = read_trackmate(_tm_csv(tmp_path / "m1.csv.gz", gz=True), population="CD8")
    _check_synthetic(df, "CD8")
    rec = from_table(df, cell="cell", frame="frame", features=["AREA", "CIRCULARITY"])
    assert rec.n_cells == 3 and rec.n_obs == 5 and rec.population_names == ("CD8",)


def test_read_trackmate_xml_tracks_from_edges(tmp_path):
    df = read_trackmate(_tm_xml(tmp_path / "m1.xml"))
    _check_synthetic(df)
    # the same spots read from CSV and from XML give the same table
    csv = read_trackmate(_tm_csv(tmp_path / "m1.csv"))
    pd.testing.assert_frame_equal(df[csv.columns], csv, check_dtype=False)
    # without TRACK_ID attributes the tracks are numbered in file order
    p = tmp_path / "old.xml"
    p.write_text((tmp_path / "m1.xml").read_text().replace(' TRACK_ID="0"', "")
                 .replace(' TRACK_ID="1"', ""))
    old = read_trackmate(p)
    assert old["track"].tolist()[:4] == [0, 1, 0, 1] and old["track"].isna().sum() == 1


def test_read_trackmate_sessions_and_populations(tmp_path):
    a = _tm_csv(tmp_path / "a.csv")
    b = _tm_xml(tmp_path / "b.xml")
    df = read_trackmate([a, b], population="T")
    assert list(df["session"]) == ["a"] * 5 + ["b"] * 5
    both = read_trackmate(str(tmp_path / "*.csv"))
    assert set(both["session"]) == {"a"}
    # two populations reusing TRACK_IDs do not clash once namespaced
    two = pd.concat([read_trackmate(a, population="T"), read_trackmate(a, population="O")],
                    ignore_index=True)
    rec = from_table(two, cell="cell", frame="frame", features=["AREA"])
    assert rec.n_cells == 6
    rec = from_table(df, cell="cell", frame="frame", session="session", features=["AREA"])
    assert rec.n_sessions == 2 and rec.n_cells == 6


def test_read_trackmate_keeps_z_of_3d_movies(tmp_path):
    spots = [(1, 0, 1.0, 2.0, 0, 1.0, 0.5), (2, 0, 1.0, 2.0, 1, 1.0, 0.5)]
    p = _tm_csv(tmp_path / "m.csv", spots=spots)
    Path(p).write_text(Path(p).read_text().replace(",0.0,0.0,", ",4.0,0.0,", 1))
    df = read_trackmate(p, features=["AREA"])
    assert list(df.columns) == ["id", "track", "cell", "frame", "x", "y", "z", "time", "AREA",
                                "population", "session"]
    assert df["z"].tolist() == [4.0, 0.0]


def test_read_trackmate_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="No such TrackMate file"):
        read_trackmate(tmp_path / "nope.csv")
    with pytest.raises(FileNotFoundError, match="No file matches"):
        read_trackmate(str(tmp_path / "*.csv"))
    with pytest.raises(FileNotFoundError, match="It is a folder"):
        read_trackmate(tmp_path)
    bad = tmp_path / "bad.csv"
    bad.write_text("id,frame,x\n1,2,3\n")
    with pytest.raises(ValueError, match=r"not a TrackMate spots table.*FRAME.*POSITION_X"):
        read_trackmate(bad)
    edges = tmp_path / "edges.csv"
    edges.write_text("LABEL,TRACK_ID,SPOT_SOURCE_ID,SPOT_TARGET_ID\nx,0,1,2\n")
    with pytest.raises(ValueError, match="edges table.*spots table"):
        read_trackmate(edges)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ValueError, match="empty"):
        read_trackmate(empty)
    binary = tmp_path / "binary.csv.gz"
    binary.write_bytes(b"\x00\x01 not gzip")
    with pytest.raises(ValueError, match="cannot read"):
        read_trackmate(binary)
    broken = tmp_path / "broken.xml"
    broken.write_text("<TrackMate><Model><AllSpots>")
    with pytest.raises(ValueError, match="not valid XML"):
        read_trackmate(broken)
    nospots = tmp_path / "nospots.xml"
    nospots.write_text("<TrackMate><Model><AllSpots /></Model></TrackMate>")
    with pytest.raises(ValueError, match="no <Spot>"):
        read_trackmate(nospots)
    other = tmp_path / "spots.txt"
    other.write_text("x")
    with pytest.raises(ValueError, match="expected a TrackMate"):
        read_trackmate(other)
    good = _tm_csv(tmp_path / "good.csv")
    with pytest.raises(ValueError, match=r"no feature column\(s\) \['AREAS'\].*AREA"):
        read_trackmate(good, features=["AREAS"])
    with pytest.raises(ValueError, match="empty list"):
        read_trackmate([])


@pytest.mark.skipif(not TEB.is_dir(), reason=(
    f"the shared TrackMate movies ({TEB}) are not here; CI has ../shared/data next to the "
    "clone, or set LICCHIE_SHARED_DATA"))
def test_mammary_trackmate_movies_read_into_recordings():
    files = sorted(TEB.glob("*.csv"))
    assert len(files) == 96
    df = read_trackmate(TEB / "*.csv", population="epithelial")
    # counts stated in the data's PROVENANCE.md
    assert len(df) == 14609 and df["session"].nunique() == 96
    assert df.groupby("session")["track"].nunique().sum() == 1388
    assert "z" not in df.columns  # 2D movies
    one = df[df["session"] == files[0].name[:-4]]
    rec = from_table(one, cell="cell", frame="frame", features=["AREA", "CIRCULARITY"])
    assert isinstance(rec, Recording) and rec.n_obs == len(one)
    assert rec.n_cells == one["track"].nunique() and rec.space_names == ("x", "y")
    rec = from_table(df, cell="cell", frame="frame", session="session",
                     features=["AREA", "CIRCULARITY", "MEAN_INTENSITY_CH1"])
    assert rec.n_sessions == 96 and rec.n_obs == 14609
