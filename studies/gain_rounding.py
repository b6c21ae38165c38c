"""The suite with the gain-eliminated loss summed in smaller blocks: how much rounding moves fits with gains (2026-12-07).

Runs :mod:`studies.suite` (same arguments) with
``licchie.kernels.gains._TARGETS_PER_TASK`` set to ``--block`` (the package:
4,096, so a paper-size problem is one block).  Smaller blocks sum the same
terms in another order, so only the last digits of each evaluation of the
joint solves change; fits without gains do not change at all.  Numba's
on-disk cache is turned off for the run (the block size is compiled into
the kernel).

    NUMBA_NUM_THREADS=1 python -m studies.gain_rounding --block 512 -- \\
        --regimes owned_gains pooled shared_gains --out /tmp/gain-rounding.csv

docs/global-search.md, "A prior on the gains (tried, not kept), and rounding".
"""
from __future__ import annotations

import argparse
import os


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--block", type=int, default=512)
    p.add_argument("suite_args", nargs=argparse.REMAINDER)
    a = p.parse_args()
    if a.block < 1:
        p.error(f"--block must be >= 1, got {a.block}")
    os.environ["LICCHIE_CACHE"] = "0"   # before the kernels are imported
    from licchie.kernels import gains as KG
    KG._TARGETS_PER_TASK = a.block
    from studies import suite
    suite.main(a.suite_args)


if __name__ == "__main__":
    main()
