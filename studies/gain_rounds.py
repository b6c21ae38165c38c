"""The suite with a longer gain search: ``gain_search(rounds=R, both_starts=B)`` (2026-12-06).

Runs :mod:`studies.suite` (same arguments) with the package's gain search
replaced by one with ``rounds`` rounds and, with ``--both-starts``, each
round's joint minimum solved from the round's gains and from gains 1 (the
lower kept).  Only fits with target gains change.

    NUMBA_NUM_THREADS=1 python -m studies.gain_rounds --rounds 5 --both-starts -- \\
        --regimes owned_gains pooled shared_gains --out /tmp/gain-rounds.csv

docs/global-search.md, "More gain rounds".
"""
from __future__ import annotations

import argparse
import functools

from licchie.fit import gains as FGN
from licchie.fit import global_start as FG


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--both-starts", action="store_true")
    p.add_argument("suite_args", nargs=argparse.REMAINDER)
    a = p.parse_args()
    FG.gain_search = functools.partial(FGN.gain_search, rounds=a.rounds,
                                       both_starts=a.both_starts)
    from studies import suite
    suite.main(a.suite_args)


if __name__ == "__main__":
    main()
