"""Where a default fit spends its time: wall seconds per phase, by wrapping the phase functions.

Fits one suite regime and seed with package defaults (``target_gain="auto"``
included) and prints the total, the recovery of the planted motifs and the
seconds spent in each phase.  Phases nest (``gain_search`` holds the later
rounds' searches and joint solves; ``joint solves`` holds the refinement's),
so the lines do not add up to the total.  The first fit in a process
includes Numba's compile or cache load.

    NUMBA_NUM_THREADS=2 python benchmarks/fit_phases.py shared_gains 0
"""
import argparse
import collections
import functools
import sys
import time

import licchie.fit as F
from licchie.fit import gains as FGN
from licchie.fit import global_start as FG
from licchie.fit import search as S
from licchie.synthetic import SUITE

try:
    from benchmarks.fit_times import fit
except ImportError:   # run as a script: python benchmarks/fit_phases.py
    from fit_times import fit

# (module, function, label): the phases timed; a phase called by another
# is counted in both
PHASES = [
    (FG, "search", "search (gain-free)"),
    (FG, "gain_search", "gain search (rounds 1-2 and joint solves)"),
    (S, "search", "searches of rounds 1-2"),
    (FGN, "joint_minimum", "joint solves (all)"),
    (FG, "refine_start", "refinement's joint solve"),
    (FG, "diagnose", "verdict (diagnose)"),
    (FG, "screened", "screen of candidates"),
    (FG, "run_start", "polishes (run_start)"),
    (F, "settle_weights", "settle"),
    (F, "gain_check", "gain check"),
]


def timed(seconds):
    """Wrap every phase so that it adds its wall time to ``seconds[label]``
    (a list: one entry per call)."""
    for mod, name, label in PHASES:
        fn = getattr(mod, name)

        @functools.wraps(fn)
        def wrapper(*a, _fn=fn, _label=label, **k):
            t = time.perf_counter()
            try:
                return _fn(*a, **k)
            finally:
                seconds[_label].append(time.perf_counter() - t)

        setattr(mod, name, wrapper)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("regime", choices=sorted(SUITE))
    p.add_argument("seed", type=int)
    a = p.parse_args(argv)
    seconds = collections.defaultdict(list)
    timed(seconds)
    total, rec, obj, m = fit(a.regime, a.seed)
    print(f"{a.regime} seed {a.seed}: total {total:.1f} s, target_gain_={m.target_gain_}, "
          f"recovery {rec:.4f}, objective {obj:.6f}")
    for label, sec in sorted(seconds.items(), key=lambda kv: -sum(kv[1])):
        each = ("" if len(sec) == 1 or len(sec) > 4
                else "; " + " + ".join(f"{s:.1f}" for s in sec))
        print(f"  {label:44s} {sum(sec):7.1f} s  ({len(sec)} calls{each})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
