"""Does the gain check tell regimes with per-target gains from regimes without?

At the *true* motifs of every regime of the synthetic suite (no fit: the
check's statistic depends only on the data and the motifs it is given),
:func:`licchie.fit.gain_check` for seeds 0-2, at paper size or at a quarter
of the cells and frames (``--small``: 5 features, 3 motifs).  The check at
the fits' own motifs is a column of ``studies/suite.py`` (``gain_share``).

Usage::

    NUMBA_NUM_THREADS=1 python -m studies.gain_check_truth [--small] [--regimes ...]

Prints one line per (regime, seed): the held-out share and the 10 % / 90 %
quantiles of the fitted gains (docs/global-search.md, "A check for
per-target gains").
"""
from __future__ import annotations

import argparse
import warnings

import numpy as np

import licchie
from licchie.fit import gain_check
from licchie.synthetic import SUITE, make_suite_recording

SMALL = dict(n_cells=(12, 6), n_frames=20, n_features=5, n_components=3)


def check_at_truth(regime, seed, small=False):
    ds, truth = make_suite_recording(regime, seed, **(SMALL if small else {}))
    m = licchie.LICCHIE(n_components=int(truth.sizes["component"]),
                        radius=float(ds.attrs["radius"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prep = m._prepare(ds)
    C = np.ascontiguousarray(truth["target_effect"].values.T)
    R = np.ascontiguousarray(truth["source_effect"].values.T)
    return gain_check(prep.problem.X, prep.problem.pairs, C, R)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--regimes", nargs="+", default=[r for r in SUITE if r != "shared_4x"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--small", action="store_true")
    a = ap.parse_args(argv)
    for regime in a.regimes:
        for seed in a.seeds:
            g = check_at_truth(regime, seed, a.small)
            print(f"{regime:14s} {seed}  share {g.heldout_share:6.3f}  gains "
                  f"{g.gain_q10:.2f}-{g.gain_q90:.2f}  {'GAINS' if g.suggests_gains else ''}",
                  flush=True)


if __name__ == "__main__":
    main()
