"""Imaris statistics exports (BEHAV3D's input) -> long table -> Recording."""
import gzip
import os

import numpy as np
import pandas as pd
import pytest

from licchie import Recording
from licchie.io import read_imaris

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data",
                    "behav3d_coculture_well0")


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
    "the shared BEHAV3D recording (../shared/data) is not in this checkout; CI has it"))
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
