"""The settle step (weights at fixed motifs) by coordinate descent, against the
alternation it replaced, in one process.

For each suite regime: a one-start fit without the settle step gives motifs;
then, from the same start (``fit.frozen.weights_at_motifs``), the
alternation of A-step and weight step (1000 iterations, the fit's ``tol``:
the settle step before 2026-12-07) and the descent on the A-eliminated
objective (``fit.frozen.descend``, the default since), and the descent run
to ``tol`` 1e-12 as the reference minimiser.  The descent also runs without
its Anderson extrapolation (``fit.frozen.ANDERSON_WINDOW = 0``, the descent
before the evening of 2026-12-07).  Prints one CSV row per regime:
objectives, seconds (medians of ``--repeat`` runs), the time ratios, and each
result's relative distance in W from the reference.

    NUMBA_NUM_THREADS=1 python benchmarks/settle_descent.py shared owned sessions \\
        shared_3d shared:class spaces > docs/studies/settle-descent.csv
    NUMBA_NUM_THREADS=1 python benchmarks/settle_descent.py --no-alternation \\
        shared owned pooled owned_gains heldout6 sessions shared_3d spaces

``--no-alternation`` leaves out the alternation (its columns are NaN).

``regime:class`` fits class pooling; ``spaces`` is
``licchie.synthetic.spaces.make_space_recording`` (population feature spaces).
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np

from licchie import LICCHIE
from licchie.fit import frozen as FZ
from licchie.synthetic import make_suite_recording
from licchie.synthetic.spaces import make_space_recording
from licchie.transfer import _frozen_effects


def _timed(fn, repeat):
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return out, float(np.median(times))


def _alternation(problem, C, R, max_iter, tol):
    """weights_at_motifs as it was: the alternation from the same start."""
    keep = FZ.exact_applies
    FZ.exact_applies = lambda _: False
    try:
        return FZ.weights_at_motifs(problem, C, R, max_iter, tol)
    finally:
        FZ.exact_applies = keep


def _plain_descent(problem, C, R, max_iter, tol):
    """weights_at_motifs with the descent's sweeps alone (no extrapolation)."""
    keep = FZ.ANDERSON_WINDOW
    FZ.ANDERSON_WINDOW = 0
    try:
        return FZ.weights_at_motifs(problem, C, R, max_iter, tol)
    finally:
        FZ.ANDERSON_WINDOW = keep


def run(spec, seed, repeat, alternation=True):
    regime, _, groups = spec.partition(":")
    groups = groups or "class_time"
    if regime == "spaces":
        ds, truth = make_space_recording(seed)
        J, radius = truth["C"].shape[-1], 1.5
    else:
        ds, truth = make_suite_recording(regime, seed)
        J, radius = int(truth.sizes["component"]), float(ds.attrs["radius"])
    m = LICCHIE(n_components=J, radius=radius, n_init=1, pooling_groups=groups,
                target_gain=False, random_state=0, solver_options={"settle_weights": False})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.fit(ds)
    prep = m._prepare(ds)
    pr = prep.problem
    C, R = _frozen_effects(m, pr, prep.recording.obs)
    n_iter = FZ.ITER_PER_FIT_ITER * m.max_iter
    FZ.weights_at_motifs(pr, C, R, 2, m.tol)  # compile outside the timings
    _plain_descent(pr, C, R, 2, m.tol)
    if alternation:
        old, t_old = _timed(lambda: _alternation(pr, C, R, n_iter, m.tol), repeat)
    else:
        old, t_old = FZ.FrozenResult(W=None, Wbar=None), np.nan
    plain, t_plain = _timed(lambda: _plain_descent(pr, C, R, n_iter, m.tol), repeat)
    new, t_new = _timed(lambda: FZ.weights_at_motifs(pr, C, R, n_iter, m.tol), repeat)
    ref = FZ.weights_at_motifs(pr, C, R, 100 * n_iter, 1e-12)

    def off(W):
        if W is None:
            return np.nan
        return float(np.linalg.norm(W - ref.W) / np.linalg.norm(ref.W))

    return dict(regime=regime, groups=groups, seed=seed, n_pairs=pr.pairs.n_pairs,
                n_groups=pr.pairs.n_groups, fit_objective=float(m.objective_history_[-1, -1]),
                alternation_objective=old.objective, alternation_iterations=old.n_iter,
                alternation_seconds=t_old, alternation_W_off=off(old.W),
                plain_descent_objective=plain.objective, plain_descent_sweeps=plain.n_iter,
                plain_descent_seconds=t_plain, plain_descent_W_off=off(plain.W),
                descent_objective=new.objective, descent_sweeps=new.n_iter,
                descent_seconds=t_new, descent_W_off=off(new.W),
                speedup=t_old / t_new, extrapolation_speedup=t_plain / t_new,
                reference_objective=ref.objective,
                reference_sweeps=ref.n_iter)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("regimes", nargs="+")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-alternation", action="store_true",
                    help="leave out the alternation (slow; its columns are NaN)")
    a = ap.parse_args()
    header = False
    for spec in a.regimes:
        row = run(spec, a.seed, a.repeat, alternation=not a.no_alternation)
        if not header:
            print(",".join(row))
            header = True
        print(",".join(f"{v:.6g}" if isinstance(v, float) else str(v) for v in row.values()))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
