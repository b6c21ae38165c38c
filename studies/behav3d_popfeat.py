"""The BEHAV3D well with population-specific features (paper App. A.2).

    python -m studies.behav3d_popfeat [--frames N] [--data DIR] [--threads K]

T cells (CD4, CD8; tracked) carry the six shape/intensity features of
``examples/behav3d.py`` plus Speed and Displacement Length; the untracked
organoids have no speed in the Imaris export and carry the six only (NaN in
the two T-cell features).  Each population's features are z-scored within
the population.  Prints the set-up, the fit time and the per-population
effects of every motif.  The data default to ``../shared/data`` next to
the repository (or next to its parent folder, for a git worktree).
"""
import argparse
import os
import time

import numba
import numpy as np
import pandas as pd

import licchie
from licchie.io import read_imaris

HERE = os.path.dirname(os.path.abspath(__file__))
# the six features of examples/behav3d.py (every population has them)
FEATURES = {"Area": "log_area", "Volume": "log_volume", "Sphericity": "sphericity",
            "Ellipticity (oblate)": "oblate", "Ellipticity (prolate)": "prolate",
            "Intensity Mean Ch=4 Img=1": "dead_dye"}

TCELL_ONLY = {"Speed": "speed", "Displacement Length": "displacement"}


def load(root, frames):
    """Long table (one row per observation) and the feature names."""
    tables = []
    for kind in ("tcells", "organoids"):
        for name in sorted(os.listdir(os.path.join(root, kind))):
            pop = {"CD4green": "CD4", "CD8blue": "CD8", "organoids": "organoid"}[
                name.split("_10k_")[1].split("_")[0]]
            tables.append(read_imaris(os.path.join(root, kind, name), population=pop))
    t = pd.concat(tables, ignore_index=True)
    t = t[t["frame"] <= frames].copy()
    t["cell"] = np.where(t["track"].isna(), "o" + t["id"].astype(str),
                         t["population"] + "-" + t["track"].astype(str))
    t = t.rename(columns={**FEATURES, **TCELL_ONLY})
    for c in ("log_area", "log_volume"):
        t[c] = np.log(t[c])
    feats = list(FEATURES.values()) + list(TCELL_ONLY.values())
    org = t["population"] == "organoid"
    t.loc[org, list(TCELL_ONLY.values())] = np.nan  # organoids lack them
    # z-score within each population (a feature a population lacks stays NaN)
    g = t.groupby("population")[feats]
    t[feats] = (t[feats] - g.transform("mean")) / g.transform("std")
    return t, feats


def main(argv=None):
    ap = argparse.ArgumentParser()
    well = os.path.join("shared", "data", "behav3d_coculture_well0")
    default = next((p for p in (os.path.join(HERE, "..", "..", well),
                                os.path.join(HERE, "..", "..", "..", well))
                    if os.path.isdir(p)), os.path.join(HERE, "..", "..", well))
    ap.add_argument("--data", default=default)
    ap.add_argument("--frames", type=int, default=301)
    ap.add_argument("--components", type=int, default=4)
    ap.add_argument("--n-init", type=int, default=3)
    ap.add_argument("--max-iter", type=int, default=100)
    ap.add_argument("--radius", type=float, default=30.0)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    t, feats = load(a.data, a.frames)
    rec = licchie.Recording.from_table(t, cell="cell", frame="frame",
                                       position=("x", "y", "z"), features=feats,
                                       time_values="time_s")
    print(f"{rec.obs.n_obs} observations, frames 1..{a.frames}, features {feats}; "
          f"read in {time.perf_counter() - t0:.1f} s", flush=True)
    model = licchie.LICCHIE(n_components=a.components, radius=a.radius,
                            n_init=a.n_init, max_iter=a.max_iter, random_state=0,
                            n_jobs=min(a.threads, numba.config.NUMBA_NUM_THREADS))
    t1 = time.perf_counter()
    model.fit(rec)
    fit_s = time.perf_counter() - t1
    print(f"fit: {fit_s:.1f} s on {a.threads} thread(s); {model.n_pairs_} pairs, "
          f"{model.n_iter_} iterations, converged {model.converged_}, "
          f"in-sample R2 {model.in_sample_r2_:.3f}", flush=True)
    C = model.target_effect_
    R = model.source_effect_
    for j in range(a.components):
        print(f"motif {j}: stability {float(model.stability_[j]):.2f}")
        for pop in C["population"].values:
            c = {k: round(float(v), 2) for k, v in C.sel(population=pop, component=j).to_series().dropna().items()}
            r = {k: round(float(v), 2) for k, v in R.sel(population=pop, component=j).to_series().dropna().items()}
            print(f"  {pop:9s} target {c}\n  {'':9s} source {r}")
    return model, fit_s


if __name__ == "__main__":
    main()
