"""Is the planted truth the reduced problem's global minimum on the suite's ``owned`` seeds?

For each seed: the package's default search on the exactly pooled reduced
problem, the reduced loss at the planted motifs (profiles solved exactly),
the recovery of the search's best, and per class the conditioning of the
true profile matrix of the motifs the class owns (over its class x frame
groups).  Usage::

    NUMBA_NUM_THREADS=1 python studies/owned_diagnosis.py --seeds 0 2 4 [--polish]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import licchie
from licchie.fit import global_start as FG
from licchie.fit.diagnostics import motif_agreement
from licchie.fit.search import _Sweeper, lbfgs, search
from licchie.fit.verdict import diagnose
from licchie.params import resolve_solver_options
from licchie.synthetic import make_suite_recording


def reduced_problem(regime, seed):
    ds, truth = make_suite_recording(regime, seed)
    model = licchie.LICCHIE(n_components=int(truth.sizes["component"]),
                            radius=float(ds.attrs["radius"]), random_state=seed, verbose=0)
    prep = model._prepare(ds)
    data, move = FG.reduced_data(prep.problem, prep.recording.obs)
    return data, move, truth


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--regime", default="owned")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 2, 4])
    p.add_argument("--evals", type=int, default=None)
    a = p.parse_args(argv)
    opts = resolve_solver_options(None)
    for seed in a.seeds:
        data, move, truth = reduced_problem(a.regime, seed)
        Ct, Rt = truth["target_effect"].values.T.copy(), truth["source_effect"].values.T.copy()
        sw = _Sweeper(data)
        Wt, Lt = sw.profiles(Ct, Rt)
        Wp, Cp, Rp, Lp, _ = lbfgs(data, Ct, Rt, 2000)
        t0 = time.perf_counter()
        res = search(data, Ct.shape[1], n_searches=int(opts["n_searches"]),
                     time_budget=float(opts["search_time"]), seed=np.random.SeedSequence(seed),
                     move_groups=move, patience=int(opts["search_patience"]),
                     eval_budget=int(a.evals or opts["search_evals"]))
        ts = time.perf_counter() - t0
        sim_best = motif_agreement(Ct, Rt, res.C, res.R)[0]
        sim_pol = motif_agreement(Ct, Rt, Cp, Rp)[0]
        dg = diagnose(data, res, seed=seed)
        sim_found_to_truth, match = motif_agreement(res.C, res.R, Ct, Rt)
        print(f"seed {seed}: reduced loss truth {Lt:.6g}, truth polished {Lp:.6g} "
              f"(recovery {sim_pol.mean():.3f}, min {sim_pol.min():.3f}); search best {res.loss:.6g} "
              f"(recovery {sim_best.mean():.3f}) {ts:.1f} s, {len(res.candidates)} candidates")
        for j in range(Ct.shape[1]):
            print(f"   found {j}: |cos| {sim_found_to_truth[j]:.3f} -> true {match[j]} "
                  f"score {dg.score[j]:.2f} {dg.verdict[j]:6s} gap {dg.gap[j]:.2f} "
                  f"reach {dg.reach[j]:.2f} boot {dg.bootstrap[j]:.2f} det {dg.determination[j]:.2f}")
        # true profiles of owned motifs per class, over the class's groups
        for c in np.unique(move):
            gs = np.flatnonzero(move == c)
            js = np.flatnonzero(np.abs(Wt[gs]).sum(0) > 0.05 * np.abs(Wt[gs]).sum(0).max())
            if js.size >= 2:
                s = np.linalg.svd(Wt[np.ix_(gs, js)], compute_uv=False)
                print(f"   class {c}: motifs {js.tolist()} profile singular values "
                      f"{np.round(s / s[0], 3).tolist()}")


if __name__ == "__main__":
    main()
