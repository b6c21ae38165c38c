"""The suite with a prior on the gains (not kept) or a ridge on the pooled weights (kept) in the joint solves (2026-12-07).

Runs :mod:`studies.suite` (same arguments) with
:data:`licchie.fit.gains.GAIN_PRIOR` set to ``--prior`` and
:data:`~licchie.fit.gains.GAIN_RIDGE` to ``--ridge``: every joint solve of
``(Wbar, C, R, gamma)`` (the gain search's rounds and the refinement of a fit
with gains) then lowers the loss plus ``mu (gamma_i - 1)^2`` per target, with
``mu = prior`` times the targets' mean ``|x_i|^2``, plus ``rho gamma_i^2
|Wbar[g]|^2`` per (target, group) row, ``rho = ridge`` times the same mean.
Only fits with target gains change.  The package: ``--prior 0 --ridge 1e-6``.

    NUMBA_NUM_THREADS=1 python -m studies.gain_prior --prior 1e-4 --ridge 0 -- \\
        --regimes owned_gains pooled shared_gains --out /tmp/gain-prior.csv

docs/global-search.md, "A prior on the gains (tried, not kept)".
"""
from __future__ import annotations

import argparse

from licchie.fit import gains as FGN


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--prior", type=float, default=1e-4)
    p.add_argument("--ridge", type=float, default=1e-6)
    p.add_argument("suite_args", nargs=argparse.REMAINDER)
    a = p.parse_args()
    if not a.prior >= 0:
        p.error(f"--prior must be >= 0, got {a.prior}")
    if not a.ridge >= 0:
        p.error(f"--ridge must be >= 0, got {a.ridge}")
    FGN.GAIN_PRIOR = a.prior
    FGN.GAIN_RIDGE = a.ridge
    from studies import suite
    suite.main(a.suite_args)


if __name__ == "__main__":
    main()
