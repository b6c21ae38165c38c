"""The recovery ceiling of the reduced problem with and without target gains.

For each (regime, seed) of the synthetic suite, at package defaults (class x
frame pooling, window 1): the exactly pooled reduced problem is solved
locally *from the true motifs*, once without gains (L-BFGS,
:func:`licchie.fit.search.lbfgs`) and once with one gain per target
observation (:class:`licchie.fit.gains.GainSolver`).  The matched ``|cos|``
of the local optimum nearest the truth is the best a global search of that
problem can recover (its ceiling); its loss says whether a search that
recovers less found a lower minimum (then the problem, not the search, is
the limit) or stopped above it (then the search is).

    NUMBA_NUM_THREADS=1 python -m studies.gain_ceiling --regimes shared_gains \\
        owned_gains pooled shared owned --seeds 0 1 2 > /tmp/gain-ceiling.csv
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np
from threadpoolctl import threadpool_limits

from licchie import LICCHIE
from licchie.fit import gains as FGN
from licchie.fit import global_start as FG
from licchie.fit import search as S
from licchie.synthetic import SUITE, make_suite_recording


def ceiling(regime, seed):
    ds, truth = make_suite_recording(regime, seed)
    J = int(truth.sizes["component"])
    m = LICCHIE(n_components=J, radius=float(ds.attrs["radius"]), target_gain=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prep = m._prepare(ds)
    problem, obs = prep.problem, prep.recording.obs
    data, _ = FG.reduced_data(problem, obs)
    C = np.ascontiguousarray(truth["target_effect"].values.T)
    R = np.ascontiguousarray(truth["source_effect"].values.T)
    used = truth["motif_used"].values.astype(bool)
    rows = []
    t0 = time.perf_counter()
    _, C0, R0, L0, n0 = S.lbfgs(data, C, R, 3000)
    t1 = time.perf_counter()
    solver = FGN.GainSolver(data, problem.gain_components, rounds=200, inner=300)
    Wg, Cg, Rg, Lg, ng = solver(None, C, R, 3000)
    t2 = time.perf_counter()
    gam = solver.gains(Wg, Cg, Rg)
    for name, (Cx, Rx, L, n, sec) in {"no_gains": (C0, R0, L0, n0, t1 - t0),
                                      "gains": (Cg, Rg, Lg, ng, t2 - t1)}.items():
        sim, _ = S.motif_cos(C, R, Cx, Rx)
        rows.append(dict(regime=regime, seed=seed, problem=name,
                         ceiling=float(np.mean(sim[used])), worst=float(np.min(sim[used])),
                         loss=L, evals=n, seconds=sec,
                         gain_q01=float(np.quantile(gam, 0.01)) if name == "gains" else 1.0,
                         gain_q99=float(np.quantile(gam, 0.99)) if name == "gains" else 1.0))
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--regimes", nargs="+", default=["shared_gains", "owned_gains", "pooled"],
                   choices=list(SUITE))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    a = p.parse_args(argv)
    cols = ["regime", "seed", "problem", "ceiling", "worst", "loss", "evals", "seconds",
            "gain_q01", "gain_q99"]
    print(",".join(cols), flush=True)
    with threadpool_limits(1, user_api="blas"):
        for regime in a.regimes:
            for seed in a.seeds:
                for r in ceiling(regime, seed):
                    print(",".join(f"{r[c]:.6g}" if isinstance(r[c], float) else str(r[c])
                                   for c in cols), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
