"""Truth start against the best fitted start, both run far longer (issue 3).

``benchmarks/starts_study.py`` compared starts after 150 iterations (truth
start: 500).  This runs the truth start and one fitted start (its index as
in that study: the lowest objective there) for many more iterations with
``tol=1e-12``, to see which basin the objective prefers once both are near
convergence.  2 Numba threads; about 1.5 min per seed at 3000 iterations.

    python benchmarks/long_starts.py SEED START [ITERATIONS=3000]
    # this session: 0 15, 1 15, 2 7 (the best groups starts of starts_study.py)
"""
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from recovery_diagnosis import BASE_FIT, PAPER_DATA, _problem, recovery, truth_start  # noqa


def main(argv):
    from licchie import _fit as F
    from licchie.synthetic import make_recording

    seed, start = int(argv[0]), int(argv[1])
    its = int(argv[2]) if len(argv) > 2 else 3000
    fit = dict(BASE_FIT, init="groups", max_iter=its, tol=1e-12)
    ds, truth = make_recording(regime="pooled", seed=seed, **PAPER_DATA)
    with F.numba_threads(2), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        _, fin, C, R = truth_start(ds, truth, fit)
        print(f"seed {seed} truth start, {its} its: {fin:.4f}  recovery "
              f"{recovery(truth, C, R).mean():.3f}  ({time.perf_counter() - t0:.0f} s)",
              flush=True)
        obs, pairs, prob = _problem(ds, fit)
        A_init = F.initial_interactions(prob)
        init_group = F.init_groups(obs, pairs)
        seeds = np.random.SeedSequence(seed).generate_state(start + 1)
        for n in (150, its):
            t0 = time.perf_counter()
            res = F.run_start(prob, A_init, PAPER_DATA["n_components"], int(seeds[start]), n,
                              1e-12, init="groups", init_group=init_group,
                              bootstrap=start > 0, keep_A=False, record_steps=False)
            print(f"seed {seed} start {start}, {res.n_iter} its (converged {res.converged}): "
                  f"{res.objective:.4f}  recovery {recovery(truth, res.C, res.R).mean():.3f}  "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
