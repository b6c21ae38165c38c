"""A Dask fit with the settle step against the local fit (docs/distributed.md, 2026-12-06).

One default fit of a suite regime (seed 0) locally on one Numba thread and on a
local Dask cluster of two worker processes with one thread each; prints both
fit times, the relative difference of the final objectives, the largest
weight difference, how many settle steps each history holds, and how far
``transform`` of the training data is from the Dask fit's ``weights_``.

    python -m studies.dask_settle sessions
"""
import sys
import time
import warnings

import numpy as np

import licchie
from licchie.fit.frozen import FINAL_STAGE
from licchie.synthetic import make_suite_recording


def main(regime="sessions"):
    import distributed

    warnings.simplefilter("ignore")
    ds, truth = make_suite_recording(regime, 0)
    kw = dict(n_components=int(truth.sizes["component"]), radius=float(ds.attrs["radius"]),
              random_state=0, n_jobs=1)
    t = time.perf_counter()
    loc = licchie.LICCHIE(**kw).fit(ds)
    t_loc = time.perf_counter() - t
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as lc, distributed.Client(lc) as cl:
        t = time.perf_counter()
        dk = licchie.LICCHIE(**kw).fit(ds, client=cl)
        t_dask = time.perf_counter() - t
    a, b = float(loc.objective_history_[-1, -1]), float(dk.objective_history_[-1, -1])
    print(f"local {t_loc:.1f} s, dask {t_dask:.1f} s; objective {a:.10g} vs {b:.10g} "
          f"(relative {abs(a - b) / abs(a):.2e})")
    print("settle steps in the history: dask",
          int(np.sum(dk.objective_history_["stage"].values == FINAL_STAGE)), "local",
          int(np.sum(loc.objective_history_["stage"].values == FINAL_STAGE)))
    print("max |W dask - W local|", float(np.max(np.abs(dk.weights_.values - loc.weights_.values))),
          "max |W|", float(np.max(np.abs(loc.weights_.values))))
    t = time.perf_counter()
    tr = dk.transform(ds)
    print(f"transform {time.perf_counter() - t:.1f} s: max |transform - weights_| "
          f"{float(np.max(np.abs(tr.values - dk.weights_.values))):.3g}")


if __name__ == "__main__":
    main(*sys.argv[1:])
