"""The class-structured start against the groups start at the paper's size.

For each seed: the pooled paper-size recording (``studies._common.PAPER_DATA``),
fitted with target gains and class x frame pooling (``BASE_FIT``: lambda =
(10, 0, 0, 0.001), lambda5 = 10, 3 starts) from ``init="groups"`` (150
iterations, as :mod:`studies.target_gain_study`) and ``init="classes"`` (300
iterations), with the per-pair MSE of ``A_e`` of both linear baselines for
reference.

    python -m studies.class_start_study 0 1 2 [--out docs/studies/class-start-study.csv]

About 5 min per seed with 2 threads.
"""
import warnings

import numpy as np

from studies._common import (BASE_FIT, PAPER_DATA, CsvLog, fit_and_recover,
                             seed_args)

RUNS = (("groups", 150), ("classes", 300))


def main(argv=None):
    from licchie import evaluate as E
    from licchie.baselines import GlobalLinear, PerCellLinear
    from licchie.synthetic import make_recording

    a = seed_args(argv)
    log = CsvLog("seed,method,iterations,objective,recovery,per_motif,stability,"
                 "excitation_mean,pair_mse_mean,pair_mse_median,seconds")
    for seed in a.seeds:
        ds, truth = make_recording(regime="pooled", seed=seed, **PAPER_DATA)
        At = truth["interaction"].values
        for name, est in (("global linear", GlobalLinear(radius=10.0)),
                          ("per-cell linear", PerCellLinear(radius=10.0))):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                est.fit(ds)
            mse = np.asarray(E.per_pair_mse(est.interaction_matrices(), truth))
            log.emit(f"{seed},{name},,,,,,,{mse.mean():.5g},{np.median(mse):.5g},")
        for init, n_iter in RUNS:
            fit = dict(BASE_FIT, target_gain=True, init=init, max_iter=n_iter)
            m, sim, secs = fit_and_recover(ds, truth, fit, seed, n_jobs=2)
            mse = ((m.interaction_matrices().values - At) ** 2).mean(axis=(1, 2))
            log.emit(f"{seed},LICCHIE init={init},{n_iter},{m.start_objectives_.min():.4f},"
                 f"{sim.mean():.4f},{' '.join(f'{v:.2f}' for v in sim)},"
                 f"{m.stability_.attrs['mean']:.4f},"
                 f"{np.nanmean(m.components_['source_excitation'].values):.3f},"
                 f"{mse.mean():.5g},{np.median(mse):.5g},{secs:.1f}")
    log.write(a.out)


if __name__ == "__main__":
    main()
