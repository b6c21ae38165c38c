"""Per-start objective and recovery at the paper's size (does taking more starts help?).

Replicates LICCHIE.fit's loop of starts (same seeds: SeedSequence(seed).generate_state,
start 0 without bootstrap, later starts with bootstrap for init="groups") but keeps
every start's motifs, so that the recovery of each start can be measured.  The
first n starts of a 30-start run are exactly the starts of an n_init=n fit (the
seed stream is a prefix), so n_init = 3, 10, 30 are read off one run.

    NUMBA_NUM_THREADS=1 python -m studies.starts_study --seed 0 --init groups \
        --starts 0 10 --out /tmp/starts/g0.csv
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from studies._common import BASE_FIT, PAPER_DATA, problem, recovery, truth_start


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--init", default="groups", choices=["groups", "parafac"])
    ap.add_argument("--bootstrap", default="fit", choices=["fit", "never", "always"])
    ap.add_argument("--starts", nargs=2, type=int, default=[0, 10])
    ap.add_argument("--truth", action="store_true")
    ap.add_argument("--tag", default="")
    ap.add_argument("--out", default="/tmp/starts/run.csv", help="one CSV per run (overwritten)")
    a = ap.parse_args(argv)

    import pandas as pd
    from licchie import fit as F
    from licchie.synthetic import make_recording

    fit = dict(BASE_FIT, init=a.init)
    ds, truth = make_recording(regime="pooled", seed=a.seed, **PAPER_DATA)
    rows = []
    with F.numba_threads(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if a.truth:
            t0 = time.perf_counter()
            at, fin, C, R = truth_start(ds, truth, dict(fit, max_iter=500))
            rows.append(dict(seed=a.seed, init="truth", tag=a.tag, start=-1, objective=fin,
                             recovery=float(recovery(truth, C, R).mean()),
                             seconds=time.perf_counter() - t0, n_iter=np.nan))
            print(rows[-1], flush=True)
        obs, pairs, prob = problem(ds, fit)
        t0 = time.perf_counter()
        # TODO(_prepare): copies LICCHIE.fit's setup of the starts (initial A, start
        # groups); take them from LICCHIE._prepare(X) once the estimator has it.
        A_init = F.initial_interactions(prob)
        init_group = F.init_groups(obs, pairs) if a.init == "groups" else None
        setup = time.perf_counter() - t0
        seeds = np.random.SeedSequence(a.seed).generate_state(a.starts[1])
        for s in range(*a.starts):
            boot = {"fit": s > 0, "never": False, "always": True}[a.bootstrap]
            t0 = time.perf_counter()
            res = F.run_start(prob, A_init, PAPER_DATA["n_components"], int(seeds[s]),
                              fit["max_iter"], fit["tol"], init=a.init,
                              init_group=init_group, bootstrap=boot, keep_A=False)
            secs = time.perf_counter() - t0
            sim = recovery(truth, res.C, res.R)
            rows.append(dict(seed=a.seed, init=a.init, tag=a.tag, start=s, bootstrap=boot,
                             objective=res.objective, init_objective=float(
                                 np.sum(res.history[0][2])),
                             recovery=float(sim.mean()), recovery_min=float(sim.min()),
                             seconds=secs, setup_seconds=setup, n_iter=res.n_iter,
                             C=" ".join(f"{v:.6g}" for v in res.C.ravel()),
                             R=" ".join(f"{v:.6g}" for v in res.R.ravel())))
            print({k: v for k, v in rows[-1].items() if k not in ("C", "R")}, flush=True)
            pd.DataFrame(rows).to_csv(a.out, index=False)
    pd.DataFrame(rows).to_csv(a.out, index=False)


if __name__ == "__main__":
    main()
