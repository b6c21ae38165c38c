"""Why the verdict of a ``target_gain=True`` fit stops at "medium" (2026-12-06).

For each (regime, seed): the package fit with ``target_gain=True`` (its
search result and verdict captured), then, at fixed motifs, the profiles
and the gains re-solved alternately (exact profiles, then closed-form
gains) for two motif sets, the search's best and the *true* motifs, each
from two starting gains: the gains the search ran at and all gains 1.
Printed per fit: the reduced loss of each (``rounds`` alternations), and per
motif of the search's best its matched |cos| to the truth and the
diagnosis's score.  A true-motif loss below the best's means the search
missed a lower minimum; different losses from the two starting gains mean
the profiles-and-gains block has several minima at fixed motifs, so a
verdict at one set of gains cannot see the others.

    NUMBA_NUM_THREADS=2 python -m studies.gain_verdict owned_gains 2
"""
from __future__ import annotations

import sys
import time
import warnings

import numpy as np

import licchie
from licchie.fit import gains as FGN
from licchie.fit import global_start as FG
from licchie.fit.search import _Sweeper, motif_cos
from licchie.synthetic import make_suite_recording


def reprofiled_loss(raw, comps, C, R, gamma, rounds):
    """Reduced loss after ``rounds`` alternations of exact profiles and gains at fixed C, R."""
    for _ in range(rounds):
        Wbar, _ = _Sweeper(FGN.with_gains(raw, gamma)).profiles(C, R)
        gamma, Wbar, loss = FGN.target_gains(raw, Wbar, C, R, comps, gamma)
    return loss


def probe(regime, seed, rounds=(30, 100)):
    captured = {}
    gain_search, diagnose = FG.gain_search, FG.diagnose

    def capture_search(data, J, comps, **kw):
        res, gamma = gain_search(data, J, comps, **kw)
        captured.update(raw=data, comps=comps, gamma=gamma)
        return res, gamma

    def capture_diagnosis(data, res, **kw):
        captured.update(res=res, diag=diagnose(data, res, **kw))
        return captured["diag"]

    ds, truth = make_suite_recording(regime, seed)
    est = licchie.LICCHIE(n_components=int(truth.sizes["component"]),
                          radius=float(ds.attrs["radius"]), random_state=seed, target_gain=True)
    FG.gain_search, FG.diagnose = capture_search, capture_diagnosis
    try:
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(ds)
        sec = time.perf_counter() - t
    finally:
        FG.gain_search, FG.diagnose = gain_search, diagnose
    raw, comps, gamma, res = (captured[k] for k in ("raw", "comps", "gamma", "res"))
    Ct = truth.target_effect.values.T / np.linalg.norm(truth.target_effect.values, axis=1)
    Rt = truth.source_effect.values.T / np.linalg.norm(truth.source_effect.values, axis=1)
    sim, _ = motif_cos(res.C, res.R, Ct, Rt)
    print(f"{regime} seed {seed}: fit {sec:.1f} s, search's reduced loss {res.loss:.4g}")
    print("  per motif of the search's best: |cos| to truth", np.round(sim, 3))
    print("                                   verdict score", np.round(captured["diag"].score, 3))
    for n in rounds:
        for name, (C, R) in {"best": (res.C, res.R), "truth": (Ct, Rt)}.items():
            a = reprofiled_loss(raw, comps, C, R, gamma, n)
            b = reprofiled_loss(raw, comps, C, R, np.ones_like(gamma), n)
            print(f"  {name:5s} motifs, {n:3d} rounds: loss {a:.4g} from the search's gains, "
                  f"{b:.4g} from gains 1")


if __name__ == "__main__":
    probe(sys.argv[1], int(sys.argv[2]))
