"""Reduced loss against the full objective for the search's distinct minima.

For one suite recording: the default fit's search, then each of its best
``K`` distinct minima polished ``SCREEN_ITER`` and ``max_iter`` iterations on
the full objective, with the recovery of each (docs/global-search.md,
"Polish screening").  Usage::

    NUMBA_NUM_THREADS=1 python studies/polish_screen.py owned 1 10
"""
from __future__ import annotations

import sys
import time

import licchie
import licchie.model as LM
from licchie.fit import global_start as FG
from licchie.fit.diagnostics import motif_agreement
from licchie.fit.search import pair_start
from licchie.fit.solver import run_start
from licchie.synthetic import make_suite_recording


def main(regime, seed, K):
    ds, truth = make_suite_recording(regime, seed)
    Ct, Rt = truth["target_effect"].values.T.copy(), truth["source_effect"].values.T.copy()
    J = Ct.shape[1]
    model = licchie.LICCHIE(n_components=J, radius=float(ds.attrs["radius"]),
                            random_state=seed, verbose=0)
    seen = {}
    search_starts = FG.search_starts

    def capture(problem, obs, *a, **k):
        seen["problem"] = problem
        out = search_starts(problem, obs, *a, **k)
        seen["info"] = out[1]
        return out

    LM.FG.search_starts = capture
    try:
        model.fit(ds)
    finally:
        LM.FG.search_starts = search_starts
    res, problem = seen["info"].result, seen["problem"]
    print(f"{regime} seed {seed}: {len(res.candidates)} distinct minima, "
          f"fit objective {model.start_objectives_.min():.5g}")
    for k, c in enumerate(res.candidates[:K]):
        W, C, R = pair_start(c.Wbar, c.C, c.R, problem.pairs.group)
        out = []
        for n_iter in (FG.SCREEN_ITER, model.max_iter):
            t0 = time.perf_counter()
            r = run_start(problem, None, J, seed, n_iter, model.tol, init="given",
                          factors=(W, C, R), record_steps=False, keep_A=False)
            out.append((r.objective, time.perf_counter() - t0))
        print(f"  minimum {k}: reduced {c.loss:.5g} (+{100 * (c.loss / res.loss - 1):.1f} %) "
              f"recovery {motif_agreement(Ct, Rt, c.C, c.R)[0].mean():.3f} | full after "
              f"{FG.SCREEN_ITER} it. {out[0][0]:.5g}, after {model.max_iter} it. "
              f"{out[1][0]:.5g} ({out[1][1]:.1f} s)", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 10)
