"""Basin hopping on the reduced loss with the gains eliminated (probe).

For each (regime, seed): the package's default fit (``random_state=seed``, as
the suite; cached in ``--cache``), its motifs taken to the joint minimum of
``(Wbar, C, R, gamma)`` (what ``refine_start`` does), then basin-hopping moves
(the search's ``_move``: redraws and residual rank-one moves) each solved by
:func:`licchie.fit.gains.joint_minimum` from the incumbent's gains, kept when
the joint loss falls.  Printed: the loss and recovery of every kept move, and
the truth's own joint minimum for reference.

    NUMBA_NUM_THREADS=1 python -m studies.gain_hop --regime pooled --seed 0
"""
from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np

from licchie import LICCHIE
from licchie.fit import gains as FGN
from licchie.fit import global_start as FG
from licchie.fit import search as S
from licchie.synthetic import make_suite_recording


def fitted(regime, seed, cache):
    path = os.path.join(cache, f"{regime}_{seed}.npz")
    ds, truth = make_suite_recording(regime, seed)
    if not os.path.exists(path):
        J = int(truth.sizes["component"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = LICCHIE(n_components=J, radius=float(ds.attrs["radius"]),
                        random_state=seed, verbose=0).fit(ds)
        comp = m.components_
        np.savez(path, C=comp["target_effect"].transpose("feature", "component").values,
                 R=comp["source_effect"].transpose("feature", "component").values,
                 objective=float(m.objective_history_.isel(step=-1).sel(term="total")))
    z = np.load(path)
    return ds, truth, np.ascontiguousarray(z["C"]), np.ascontiguousarray(z["R"])


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--regime", default="pooled")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--trials", type=int, default=40)
    p.add_argument("--evals", type=int, default=1500)
    p.add_argument("--screen", type=int, default=150)
    p.add_argument("--cache", default="/tmp/gainhop")
    p.add_argument("--ridge", type=float, default=0.0)
    p.add_argument("--local", choices=["joint", "fixed"], default="joint",
                   help="after a move: the joint solve only, or first the fixed-gain "
                        "L-BFGS at the incumbent's gains (profiles eliminated)")
    a = p.parse_args(argv)
    os.makedirs(a.cache, exist_ok=True)
    ds, truth, C_fit, R_fit = fitted(a.regime, a.seed, a.cache)
    J = int(truth.sizes["component"])
    Ct = np.ascontiguousarray(truth["target_effect"].values.T)
    Rt = np.ascontiguousarray(truth["source_effect"].values.T)
    used = truth["motif_used"].values.astype(bool)

    def rec(C, R):
        return float(np.mean(S.motif_cos(Ct, Rt, C, R)[0][used]))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm = LICCHIE(n_components=J, radius=float(ds.attrs["radius"]), target_gain=True)
        prep = gm._prepare(ds)
    data, labels = FG.reduced_data(prep.problem, prep.recording.obs)
    comps = prep.problem.gain_components
    nt = data.agg["rows"]["Y"].shape[0]
    t0 = time.perf_counter()
    truth_min = FGN.joint_minimum(data, comps, Ct, Rt, np.ones(nt), max_eval=30000)
    print(f"truth joint min: F={truth_min[3]:.4f} rec={rec(truth_min[1], truth_min[2]):.3f}",
          flush=True)
    FGN.GAIN_RIDGE = a.ridge
    Wb, C, R, F, n, g = FGN.joint_minimum(data, comps, C_fit, R_fit, np.ones(nt),
                                          max_eval=FGN.REFINE_EVALS)
    print(f"fit rec={rec(C_fit, R_fit):.3f}; its joint min F={F:.4f} rec={rec(C, R):.3f} "
          f"evals={n} max|W|={np.abs(Wb).max():.3g} gains {g.min():.3g}..{g.max():.3g}",
          flush=True)
    inc = [F, Wb, C, R, g]
    rng = np.random.default_rng(1000 + a.seed)
    spent = 0
    for t in range(a.trials):
        gdata = FGN.with_gains(data, inc[4])
        C2, R2, name = S._move(rng, gdata, labels, inc[1], inc[2], inc[3])
        if a.local == "fixed":
            _, C2, R2, _, n1 = S.lbfgs(gdata, C2, R2, 1000)
            spent += n1
        Wb2, C2, R2, F2, n2, g2 = FGN.joint_minimum(data, comps, C2, R2, inc[4],
                                                    max_eval=a.screen)
        spent += n2
        if F2 <= inc[0] * (1 + S.SCREEN_TOL) and n2 >= a.screen:
            Wb2, C2, R2, F2, n3, g2 = FGN.joint_minimum(data, comps, C2, R2, g2,
                                                        max_eval=a.evals - a.screen)
            spent += n3
        ok = F2 < inc[0] * (1 - 1e-9)
        if ok:
            inc = [F2, Wb2, C2, R2, g2]
        print(f"{time.perf_counter() - t0:7.1f}s trial {t:3d} {name:12s} F={F2:9.4f} "
              f"{'KEPT' if ok else '    '} inc={inc[0]:.4f} rec={rec(inc[2], inc[3]):.3f} "
              f"evals={spent}", flush=True)


if __name__ == "__main__":
    main()
