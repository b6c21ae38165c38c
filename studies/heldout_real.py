"""Held-out one-step R^2 of LICCHIE (defaults) against the baselines on the shared real data.

    nice python studies/heldout_real.py behav3d --frames 100 --out docs/studies/heldout-behav3d.csv
    nice python studies/heldout_real.py mammary --out docs/studies/heldout-mammary.csv

``behav3d``: the BEHAV3D co-culture well (CD4, CD8 T cells tracked,
organoids untracked), the six z-scored shape/intensity features of
``examples/behav3d.py``, frames 1..``--frames``.  ``mammary``: the 96 TEB
TrackMate movies as 96 sessions, six z-scored features (log area,
circularity, solidity, aspect ratio, mean and std intensity).  Features are
z-scored over the whole table (every model sees the same units).  The last
``--fraction`` of every session's frames is held out
(:func:`licchie.evaluate.heldout_table`); LICCHIE has its defaults except
``radius`` (a length in the data's units) and ``random_state``.
"""
import argparse
import os
import sys
import time
import warnings

import numpy as np
import pandas as pd

import licchie

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "..", "..", "shared", "data")
if not os.path.isdir(DATA):
    DATA = os.path.join(HERE, "..", "..", "shared", "data")
MAMMARY_FEATURES = ["AREA", "CIRCULARITY", "SOLIDITY", "ELLIPSE_ASPECTRATIO",
                    "MEAN_INTENSITY_CH1", "STD_INTENSITY_CH1"]


def behav3d(frames):
    sys.path.insert(0, os.path.join(HERE, "..", "examples"))
    from behav3d import load_well
    t, feats = load_well(os.path.join(DATA, "behav3d_coculture_well0"))
    t = t[t["frame"] <= frames]
    return licchie.Recording.from_table(t, cell="track", frame="frame",
                                        position=("x", "y", "z"), features=feats,
                                        time_values="time_s", untracked="organoid",
                                        cell_per_population=True)


def mammary():
    df = licchie.read_trackmate(os.path.join(DATA, "mammary_teb_2d_trackmate", "raw", "*.csv"),
                                population="epithelial", features=MAMMARY_FEATURES)
    df["AREA"] = np.log(df["AREA"])
    f = MAMMARY_FEATURES
    df[f] = (df[f] - df[f].mean()) / df[f].std()
    return licchie.Recording.from_table(df, cell="cell", frame="frame", features=f,
                                        session="session")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", choices=("behav3d", "mammary"))
    ap.add_argument("--frames", type=int, default=100, help="behav3d: frames 1..N")
    ap.add_argument("--fraction", type=float, default=0.2)
    ap.add_argument("--radius", type=float, default=30.0)
    ap.add_argument("--pooling-groups", default=None,
                    help="LICCHIE's pooling_groups (default: LICCHIE's default)")
    ap.add_argument("--no-baselines", action="store_true", help="LICCHIE only")
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    rec = behav3d(a.frames) if a.data == "behav3d" else mammary()
    print(rec, flush=True)
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        kw = {} if a.pooling_groups is None else {"pooling_groups": a.pooling_groups}
        table = licchie.evaluate.heldout_table(
            licchie.LICCHIE(radius=a.radius, random_state=0, **kw), rec, fraction=a.fraction,
            baselines=None if a.no_baselines else "default")
        if kw:
            table["model"] = table["model"].replace(
                "LICCHIE", f"LICCHIE (pooling_groups={a.pooling_groups!r})")
    for w in caught:
        print("warning:", str(w.message)[:300])
    print(f"total {time.perf_counter() - t0:.1f} s")
    print(table.attrs["sessions"].describe().to_string())
    with pd.option_context("display.width", 160, "display.float_format", "{:.3f}".format):
        print(table.to_string(index=False))
    if a.out:
        table.to_csv(a.out, index=False, float_format="%.4f")


if __name__ == "__main__":
    main()
