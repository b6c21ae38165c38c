"""Does the gain search pick a better basin when the gain block starts from several gains? (2026-12-06)

The fit with ``target_gain=True`` runs ``gain_search``: after each round its
best candidate is taken to a joint minimum of ``(Wbar, C, R, gamma)`` by
``GainSolver`` from the round's gains only.  Here, for every round of the
same search (same seeds and budgets as the package), the ``top`` best
candidates are each taken to a joint minimum from two starting gains: the
round's and all gains 1.  Printed per (round, candidate, start): the joint
reduced loss and the mean matched |cos| of the motifs to the truth.  If a
lower joint loss goes with a higher recovery, choosing among these joint
minima would lift the fit.

    NUMBA_NUM_THREADS=2 python -m studies.gain_starts owned_gains 1
"""
from __future__ import annotations

import sys
import time
import warnings

import numpy as np

import licchie
from licchie.fit import gains as FGN
from licchie.fit import global_start as FG
from licchie.fit.search import motif_cos, search
from licchie.synthetic import make_suite_recording


class _Captured(Exception):
    pass


def capture(regime, seed):
    """The reduced data, gain components and search options of the package fit."""
    box = {}

    def grab(data, J, comps, **kw):
        box.update(data=data, J=J, comps=comps, kw=kw)
        raise _Captured

    ds, truth = make_suite_recording(regime, seed)
    est = licchie.LICCHIE(n_components=int(truth.sizes["component"]),
                          radius=float(ds.attrs["radius"]), random_state=seed,
                          target_gain=True)
    keep, FG.gain_search = FG.gain_search, grab
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(ds)
    except _Captured:
        pass
    finally:
        FG.gain_search = keep
    Ct = truth.target_effect.values.T / np.linalg.norm(truth.target_effect.values, axis=1)
    Rt = truth.source_effect.values.T / np.linalg.norm(truth.source_effect.values, axis=1)
    return box, Ct, Rt


def main(regime, seed, top=3, rounds=3, later_share=0.5):
    box, Ct, Rt = capture(regime, seed)
    data, J, comps, kw = box["data"], box["J"], box["comps"], dict(box["kw"])
    kw.pop("first", None)
    budget = kw.pop("eval_budget")
    ss = kw.pop("seed")
    nt = data.agg["rows"]["Y"].shape[0]
    gamma = np.ones(nt)
    solver = FGN.GainSolver(data, comps)
    t0 = time.perf_counter()
    for k in range(rounds):
        child = ss if k == 0 else np.random.SeedSequence(
            ss.entropy, spawn_key=tuple(ss.spawn_key) + (FGN._LATER_ROUNDS, k))
        res = search(data if k == 0 else FGN.with_gains(data, gamma), J, seed=child,
                     eval_budget=int(budget * (1.0 if k == 0 else later_share)), **kw)
        next_gamma = None
        for i, c in enumerate(res.candidates[:top]):
            # round 0 runs at gains 1: one start
            starts = (("round", gamma),) if k == 0 else (("round", gamma), ("ones", np.ones(nt)))
            for name, g0 in starts:
                solver.best_gamma, solver.best_loss = g0, np.inf
                Wb, C, R, F, n = solver(None, c.C, c.R)
                sim = float(np.mean(motif_cos(Ct, Rt, C, R)[0]))
                tag = " <- package" if (i == 0 and name == "round") else ""
                print(f"{regime} {seed} round {k} cand {i} (reduced {c.loss:.4g}) from "
                      f"{name:5s}: joint {F:.5g} |cos| {sim:.3f} evals {n}{tag}", flush=True)
                if i == 0 and name == "round":
                    next_gamma = solver.gains(Wb, C, R)
        gamma = next_gamma
    print(f"{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
