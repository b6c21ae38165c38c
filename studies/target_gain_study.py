"""Pooling with target gains at the paper's size (issue 3).

The generator gives every target its own gain on top of its class profile
(``balance`` and the spectral cap), which MODEL.md's pooling cannot express.
For each seed this runs, with and without ``target_gain``:

* the truth start (true motifs, weights and ``A_e``) for ``--truth-iter``
  iterations: does the objective keep the true motifs?
* the whole fit (``studies._common.BASE_FIT``: ``init="groups"``, class x
  frame pooling, lambda = (10, 0, 0, 0.001), lambda5 = 10, 3 starts) for
  ``--max-iter`` iterations: recovery, stability, objective, per-pair MSE.

    python -m studies.target_gain_study 0 1 2 [--max-iter 150] [--truth-iter 500] \
        > docs/studies/target-gain-study.csv

2 Numba threads; about 4 min per seed on a 2-core machine.
"""
import argparse
import warnings

import numpy as np

from studies._common import (BASE_FIT, PAPER_DATA, fit_and_recover, recovery,
                             truth_start)


def main(argv=None):
    from licchie import fit as F
    from licchie.synthetic import make_recording

    ap = argparse.ArgumentParser()
    ap.add_argument("seeds", type=int, nargs="+")
    ap.add_argument("--max-iter", type=int, default=150)
    ap.add_argument("--truth-iter", type=int, default=500)
    a = ap.parse_args(argv)
    print("seed,target_gain,truth_objective,truth_recovery,fit_objective,fit_recovery,"
          "stability,pair_mse_mean,pair_mse_median,fit_seconds", flush=True)
    for seed in a.seeds:
        ds, truth = make_recording(regime="pooled", seed=seed, **PAPER_DATA)
        At = truth["interaction"].values
        for gain in (False, True):
            fit = dict(BASE_FIT, target_gain=gain)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with F.numba_threads(2):
                    _, fin, C, R = truth_start(ds, truth, dict(fit, max_iter=a.truth_iter,
                                                               tol=1e-12))
            m, sim, secs = fit_and_recover(ds, truth, dict(fit, max_iter=a.max_iter), seed,
                                           n_jobs=2)
            mse = ((m.interaction_matrices().values - At) ** 2).mean(axis=(1, 2))
            print(f"{seed},{gain},{fin:.4f},{recovery(truth, C, R).mean():.4f},"
                  f"{m.start_objectives_.min():.4f},{sim.mean():.4f},"
                  f"{m.stability_.attrs['mean']:.4f},{mse.mean():.5g},{np.median(mse):.5g},"
                  f"{secs:.1f}", flush=True)


if __name__ == "__main__":
    main()
