"""Wall time of default fits, seed 0 of suite regimes, one after another in one process.

A small warm-up fit first (Numba's cache, the search's worker processes),
then one default fit (``target_gain="auto"`` included) per regime; prints
its seconds, the recovery of the planted motifs and the objective.  Run
it on two versions in one session (a git worktree for the older) to
compare them on the same machine state.

    NUMBA_NUM_THREADS=2 python benchmarks/fit_times.py shared heldout6 pooled
"""
import argparse
import sys
import time
import warnings

import numpy as np

from licchie import LICCHIE
from licchie.fit import search as S
from licchie.synthetic import SUITE, make_suite_recording


def fit(regime, seed, **kw):
    """``(seconds, recovery, objective, model)`` of one default fit."""
    ds, truth = make_suite_recording(regime, seed, **kw)
    J = int(truth.sizes["component"])
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = LICCHIE(n_components=J, radius=float(ds.attrs["radius"]),
                    random_state=seed).fit(ds)
    dt = time.perf_counter() - t
    C = m.components_["target_effect"].transpose("feature", "component").values
    R = m.components_["source_effect"].transpose("feature", "component").values
    used = truth["motif_used"].values.astype(bool)
    rec = np.mean(S.motif_cos(truth["target_effect"].values.T,
                              truth["source_effect"].values.T, C, R)[0][used])
    obj = float(m.objective_history_.isel(step=-1).sel(term="total"))
    return dt, rec, obj, m


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("regimes", nargs="+", choices=sorted(SUITE))
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    fit("shared", 0, n_cells=(12, 6), n_frames=20, n_features=5, n_components=3)
    for regime in a.regimes:
        dt, rec, obj, m = fit(regime, a.seed)
        print(f"{regime:14s} {dt:6.1f} s  recovery {rec:.4f}  objective {obj:.6f}  "
              f"groups {m.pooling_groups_}  gains {m.target_gain_}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
