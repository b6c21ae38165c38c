"""The pooled search's cost at scale against the full fit's iteration budget.

Random data with class x frame groups (``bench_search._random_problem``:
5 classes, 50 frames, 5 pairs per target, d = 19, J = 10) at the given
numbers of pairs: the aggregation (once per fit) and the default search
(``solver_options`` defaults: ``search_evals`` evaluations over
``n_searches`` searches), timed in
this process; the ratio against the full fit's iteration budget:
``--iteration-seconds`` per million pairs (one iteration of the full fit,
docs/performance.md: about 4 s at 1 M pairs on 2 cores; an iteration is
linear in the pairs) times ``--max-iter`` (the default 100).
With ``--workers K`` the search also runs on K worker processes (as a fit
with ``n_jobs=K`` does), after a warm-up that starts them; the line gives
both times, their ratio and whether the two results are equal.

    python -m benchmarks.search_scale --pairs 100000 1000000
    python -m benchmarks.search_scale --pairs 100000 --workers 2

With ``--gains`` it times the search of a fit with target gains instead
(:func:`licchie.fit.gains.gain_search`: the gain-free search as round 0,
then two rounds at fitted gains with half the budget each, and a joint
solve of profiles, motifs and gains after every round) on ``--workers``
processes, plus the refinement's joint solve (``gains.refine_start``), which
a fit with gains adds after its polish.

    python -m benchmarks.search_scale --pairs 100000 1000000 --workers 2 --gains
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks.bench_search import _gain_components, _random_problem
from licchie.fit import search as S
from licchie.params import SOLVER_OPTIONS


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--iteration-seconds", type=float, default=4.0)
    ap.add_argument("--max-iter", type=int, default=100)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--gains", action="store_true",
                    help="time the search of a fit with target gains")
    a = ap.parse_args(argv)
    if a.gains:
        return gains(a)
    for n in a.pairs:
        args, classes = _random_problem(n)
        t0 = time.perf_counter()
        data = S.PooledData.from_pairs(*args)
        t_agg = time.perf_counter() - t0
        kw = dict(n_searches=SOLVER_OPTIONS["n_searches"], time_budget=None, seed=0,
                  move_groups=classes, patience=SOLVER_OPTIONS["search_patience"],
                  eval_budget=SOLVER_OPTIONS["search_evals"])
        t0 = time.perf_counter()
        res = S.search(data, 10, **kw)
        t_search = time.perf_counter() - t0
        if a.workers > 1:
            S.search(data, 10, n_searches=2, n_starts=1, n_trials=0, time_budget=None,
                     max_sweeps=2, n_workers=a.workers)   # starts the workers
            t0 = time.perf_counter()
            par = S.search(data, 10, n_workers=a.workers, **kw)
            t_par = time.perf_counter() - t0
            print(f"{n:>9} pairs: search {t_search:.1f} s in this process, {t_par:.1f} s "
                  f"on {a.workers} workers (ratio {t_search / t_par:.2f}); same result: "
                  f"{par.loss == res.loss and np.array_equal(par.C, res.C)}", flush=True)
        budget = a.iteration_seconds * n / 1e6 * a.max_iter
        print(f"{n:>9} pairs: aggregation {t_agg:.1f} s, search {t_search:.1f} s "
              f"({res.n_trials} moves, {len(res.candidates)} minima); "
              f"(aggregation + search) / iteration budget ({budget:.0f} s) = "
              f"{(t_agg + t_search) / budget:.2f}", flush=True)


def gains(a):
    """The search of a fit with target gains (see the module docstring)."""
    from licchie.fit import gains as FGN

    for n in a.pairs:
        args, classes = _random_problem(n)
        t0 = time.perf_counter()
        data = S.PooledData.from_pairs(*args, keep_rows=True)
        t_agg = time.perf_counter() - t0
        comps = _gain_components(args)
        kw = dict(n_searches=SOLVER_OPTIONS["n_searches"], time_budget=None, seed=0,
                  move_groups=classes, patience=SOLVER_OPTIONS["search_patience"],
                  eval_budget=SOLVER_OPTIONS["search_evals"], n_workers=a.workers)
        if a.workers > 1:   # start the workers
            S.search(data, 10, n_searches=2, n_starts=1, n_trials=0, time_budget=None,
                     max_sweeps=2, n_workers=a.workers)
        t0 = time.perf_counter()
        res, gamma = FGN.gain_search(data, 10, comps, **kw)
        t_search = time.perf_counter() - t0
        t0 = time.perf_counter()
        FGN.refine_start(data, comps, res.C, res.R)
        t_refine = time.perf_counter() - t0
        budget = a.iteration_seconds * n / 1e6 * a.max_iter
        total = t_agg + t_search + t_refine
        print(f"{n:>9} pairs, {data.agg['rows']['Z'].shape[0]} rows, {a.workers} workers: "
              f"aggregation {t_agg:.1f} s, gain search {t_search:.1f} s, refinement "
              f"{t_refine:.1f} s; (all) / iteration budget ({budget:.0f} s) = "
              f"{total / budget:.2f}", flush=True)


if __name__ == "__main__":
    main()
