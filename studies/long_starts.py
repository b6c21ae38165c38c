"""Truth start against fitted starts, run far longer, and the L1 weight (issue 3).

:mod:`studies.starts_study` compared starts after 150 iterations (truth
start: 500).  This runs the truth start and one fitted start (its index as
in that study: the lowest objective there) for many more iterations with
``tol=1e-12``, to see which basin the objective prefers once both are near
convergence.  With ``--fit`` it first runs the whole fit (BASE_FIT of
``studies/_common.py``, 3 starts, 150 iterations) and reports its
recovery; ``--lam4`` changes the L1 weight of W for everything.
2 Numba threads; about 1.5 min per seed at 3000 iterations.

    python -m studies.long_starts 1 --start 15          # this session: 0 15, 1 15, 2 7
    python -m studies.long_starts 1 --lam4 0.05 --fit --iterations 1000 --start -1
"""
import argparse
import time
import warnings

import numpy as np

from studies._common import (BASE_FIT, PAPER_DATA, fit_and_recover, problem,
                             recovery, truth_start)


def main(argv=None):
    from licchie import fit as F
    from licchie.synthetic import make_recording

    ap = argparse.ArgumentParser()
    ap.add_argument("seed", type=int)
    ap.add_argument("--start", type=int, default=15,
                    help="fitted start to run long (-1: none)")
    ap.add_argument("--iterations", type=int, default=3000)
    ap.add_argument("--lam4", type=float, default=BASE_FIT["lambdas"][3])
    ap.add_argument("--fit", action="store_true", help="also run the whole fit first")
    a = ap.parse_args(argv)
    seed, its = a.seed, a.iterations
    fit = dict(BASE_FIT, lambdas=tuple(BASE_FIT["lambdas"][:3]) + (a.lam4,))
    ds, truth = make_recording(regime="pooled", seed=seed, **PAPER_DATA)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if a.fit:
            m, sim, secs = fit_and_recover(ds, truth, fit, seed, n_jobs=2)
            print(f"seed {seed} lam4 {a.lam4}: fit objective "
                  f"{m.start_objectives_.min().item():.3f}  recovery {sim.mean():.3f}  "
                  f"stability {m.stability_.attrs['mean']:.3f}  ({secs:.0f} s)", flush=True)
        long = dict(fit, init="groups", max_iter=its, tol=1e-12)
        with F.numba_threads(2):
            t0 = time.perf_counter()
            _, fin, C, R = truth_start(ds, truth, long)
            print(f"seed {seed} lam4 {a.lam4} truth start, {its} its: {fin:.4f}  recovery "
                  f"{recovery(truth, C, R).mean():.3f}  ({time.perf_counter() - t0:.0f} s)",
                  flush=True)
            if a.start < 0:
                return
            obs, pairs, prob = problem(ds, long)
            # TODO(_prepare): copies LICCHIE.fit's setup of the starts (initial A, start
            # groups); take them from LICCHIE._prepare(X) once the estimator has it.
            A_init = F.initial_interactions(prob)
            init_group = F.init_groups(obs, pairs)
            seeds = np.random.SeedSequence(seed).generate_state(a.start + 1)
            for n in (150, its):
                t0 = time.perf_counter()
                res = F.run_start(prob, A_init, PAPER_DATA["n_components"],
                                  int(seeds[a.start]), n, 1e-12, init="groups",
                                  init_group=init_group, bootstrap=a.start > 0,
                                  keep_A=False, record_steps=False)
                print(f"seed {seed} start {a.start}, {res.n_iter} its (converged "
                      f"{res.converged}): {res.objective:.4f}  recovery "
                      f"{recovery(truth, res.C, res.R).mean():.3f}  "
                      f"({time.perf_counter() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
