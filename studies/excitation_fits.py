"""Per-motif recovery, source excitation and stability of the paper-size fits.

The fit of :mod:`studies.target_gain_study` with target gains
(``studies._common.BASE_FIT``: ``init="groups"``, class x frame pooling,
lambda = (10, 0, 0, 0.001), lambda5 = 10, 3 starts x 150 iterations) on the
pooled paper-size recording of each seed: every true motif with the recovery,
``source_excitation`` and stability of its matched fitted motif.

    python -m studies.excitation_fits 0 1 2 [--out docs/studies/source-excitation-fits.csv]

About 90 s per seed with 2 threads.
"""
import warnings

from studies._common import (BASE_FIT, PAPER_DATA, CsvLog, fit_and_recover,
                             seed_args)


def main(argv=None):
    from licchie.fit import motif_agreement
    from licchie.synthetic import make_recording

    a = seed_args(argv)
    log = CsvLog("seed,noise_sd_estimate,true_motif,fitted_motif,recovery,source_excitation,"
                 "stability")
    for seed in a.seeds:
        ds, truth = make_recording(regime="pooled", seed=seed, **PAPER_DATA)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m, _, _ = fit_and_recover(ds, truth, dict(BASE_FIT, target_gain=True), seed,
                                      n_jobs=2)
        C = m.components_["target_effect"].values.T
        R = m.components_["source_effect"].values.T
        exc = m.components_["source_excitation"]
        sim, match = motif_agreement(truth["target_effect"].values.T,
                                     truth["source_effect"].values.T, C, R)
        for i, j in enumerate(match):
            log.emit(f"{seed},{exc.attrs['noise_sd']:.4f},{i},{j},{sim[i]:.2f},"
                     f"{exc.values[j]:.2f},{m.stability_.values[j]:.2f}")
    log.write(a.out)


if __name__ == "__main__":
    main()
