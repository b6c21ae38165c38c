"""Class restarts at the paper's size: do they find the source effects the fit misses?

For each seed: the pooled paper-size recording (``licchie demo --seed S``) is
fitted with the demo's preset (``licchie.cli.DEMO_FITS["full"]["pooled"]``) without
class restarts.  From that fit, with the same iterations each (``max_iter``
of the preset):

* ``continue``: the fit run ``max_iter`` more iterations;
* ``oracle swap``: the motifs of the class whose true motifs are recovered
  worst replaced by the true ones (target and source effects and their true
  weights), then run ``max_iter`` iterations: does the objective prefer the
  truth, and is it a basin the iterations stay in?
* ``class restarts``: :func:`licchie.fit.class_restarts` with the preset's
  ``class_restarts`` draws per class (what ``LICCHIE(solver_options={"class_restarts": K})`` does
  after its starts).

    python -m studies.class_restarts_study 0 1 2 [--out docs/studies/class-restarts-study.csv]

About 8 min per seed with 2 threads.
"""
import time
import warnings

import numpy as np

from studies._common import CsvLog, problem, recovery, seed_args


def main(argv=None):
    from licchie import fit as F
    from licchie.cli import DEMO_FITS, demo_models
    from licchie.synthetic import make_recording

    a = seed_args(argv)
    preset = DEMO_FITS["full"]["pooled"][0]
    n_draws, N = preset["solver_options"]["class_restarts"], preset["max_iter"]
    log = CsvLog("seed,run,objective,recovery,per_motif,stability,seconds")

    def row(seed, run, L, C, R, stab, secs):
        sim = recovery(truth, C, R)
        log.emit(f"{seed},{run},{L:.4f},{sim.mean():.4f},{' '.join(f'{v:.2f}' for v in sim)},"
                 f"{stab},{secs:.1f}")

    for seed in a.seeds:
        ds, truth = make_recording(regime="pooled", seed=seed)
        model, _ = demo_models("pooled", seed, float(ds.attrs.get("radius", 10.0)),
                               verbose=0, full=True, class_restarts=0)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(ds)
        W = np.ascontiguousarray(model.weights_.values)
        C = np.ascontiguousarray(model.components_["target_effect"].values.T)
        R = np.ascontiguousarray(model.components_["source_effect"].values.T)
        row(seed, "fit (demo preset without class restarts)", model.start_objectives_.min(),
            C, R, f"{model.stability_.attrs['mean']:.4f}", time.perf_counter() - t0)

        obs, pairs, prob = problem(ds, preset)
        J = truth.sizes["component"]
        Wt = truth["weights"].values
        if not (np.array_equal(truth["target"].values, model.weights_["target"].values)
                and np.array_equal(truth["time"].values, model.weights_["time"].values)):
            raise RuntimeError("the fit's pairs are not the truth's pairs")
        # the oracle: the worst class's motifs replaced by the true ones
        Ct = truth["target_effect"].values.T
        Rt = truth["source_effect"].values.T
        sim, match = F.motif_agreement(Ct, Rt, C, R)
        cw = truth["class_weights"]
        cls_of = {j: str(cw["group"].values[np.argmax(np.abs(cw.sel(component=j)).sum("frame")
                                                       .values)]) for j in range(J)}
        by_class = {}
        for j, g in cls_of.items():
            by_class.setdefault(g, []).append(j)
        worst = min(by_class, key=lambda g: np.mean(sim[by_class[g]]))
        W1, C1, R1 = W.copy(), C.copy(), R.copy()
        for j in by_class[worst]:
            k = int(match[j])
            C1[:, k], R1[:, k], W1[:, k] = Ct[:, j], Rt[:, j], Wt[:, j]
        t0 = time.perf_counter()
        res = F.run_start(prob, None, J, seed, N, preset["tol"], init="given",
                          factors=(W1, C1, R1))
        true = " ".join(str(j) for j in by_class[worst])
        row(seed, f"oracle swap of class {worst} (true motifs {true}) +{N} iterations",
            res.objective, res.C, res.R, "", time.perf_counter() - t0)

        # the continuation is also where the class restarts begin
        t0 = time.perf_counter()
        cont = F.run_start(prob, None, J, seed, N, preset["tol"], init="given",
                           factors=(W, C, R))
        cont_secs = time.perf_counter() - t0
        row(seed, f"continue +{N} iterations", cont.objective, cont.C, cont.R, "", cont_secs)

        pair_class, names = F.pair_groups(obs, pairs.tgt, pairs.src, pairs.is_self, "class")
        t0 = time.perf_counter()
        trials = []
        res, rows = F.class_restarts(prob, cont, pair_class, names, n_draws, N,
                                     preset["tol"], seed, log=trials.append,
                                     continue_first=False)
        secs = cont_secs + time.perf_counter() - t0
        for line in trials:
            print("   ", line.strip(), flush=True)
        row(seed, f"class restarts ({n_draws} per class; {N} iterations each; "
            f"{sum(r['accepted'] for r in rows[1:])} of {len(rows) - 1} accepted)",
            res.objective, res.C, res.R, "", secs)
    log.write(a.out)


if __name__ == "__main__":
    main()
