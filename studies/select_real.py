"""licchie.select on the 96 mammary TEB movies: K-fold over time blocks.

    nice python studies/select_real.py --out docs/studies/select-mammary.csv

Two grids, each scored by held-out one-step R^2 over ``--cv`` contiguous time
blocks of every movie (:func:`licchie.select.grid_search`): the per-cell
baseline's ridge ``alpha``, and LICCHIE's ``n_components`` x
``pooling_groups`` (``radius=30``, ``n_init=1`` and a 30 s search budget to
keep the run small; other parameters at their defaults).
"""
import argparse
import time

import pandas as pd

import licchie
from licchie.baselines import PerCellLinear
from heldout_real import mammary


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cv", type=int, default=3)
    ap.add_argument("--n-jobs", type=int, default=1)
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    rec = mammary()
    t0 = time.perf_counter()
    pc = licchie.select.grid_search(PerCellLinear(radius=30.0), rec,
                                    {"alpha": [0.0, 1.0, 6.0, 36.0]}, cv=a.cv, n_jobs=a.n_jobs)
    pc.insert(0, "model", "per-cell linear")
    print(f"per-cell grid: {time.perf_counter() - t0:.1f} s", flush=True)
    est = licchie.LICCHIE(radius=30.0, random_state=0, n_init=1,
                          solver_options={"search_time": 30.0})
    t0 = time.perf_counter()
    lc = licchie.select.grid_search(est, rec, {"n_components": [2, 8],
                                               "pooling_groups": ["class", "class_time"]},
                                    cv=a.cv, n_jobs=a.n_jobs)
    lc.insert(0, "model", "LICCHIE")
    print(f"LICCHIE grid: {time.perf_counter() - t0:.1f} s", flush=True)
    table = pd.concat([pc, lc], ignore_index=True)
    with pd.option_context("display.width", 160, "display.float_format", "{:.3f}".format):
        print(table.to_string(index=False))
    if a.out:
        table.to_csv(a.out, index=False, float_format="%.4f")


if __name__ == "__main__":
    main()
