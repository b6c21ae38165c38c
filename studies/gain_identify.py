"""Search failure or the problem's own answer?  Fits with gains against the truth's basin.

For each (regime, seed): the package's default fit (``target_gain="auto"``),
then the exactly pooled reduced problem with gains solved locally
(:func:`licchie.fit.gains.joint_minimum`, gains eliminated) from the fit's
motifs and from the true motifs, both from gains 1.  When the truth's local
minimum has the lower loss the search missed a better basin (a search
failure); when the fit's has, the problem prefers the fit's motifs and no
estimator of this loss recovers the truth on these data (the recovery at
the truth's minimum is then an upper bound, not a target).

    NUMBA_NUM_THREADS=1 python -m studies.gain_identify --regimes owned_gains pooled \\
        --seeds 0 1 2 3 4 > docs/studies/gain-identify.csv
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np

from licchie import LICCHIE
from licchie.fit import gains as FGN
from licchie.fit import global_start as FG
from licchie.fit import search as S
from licchie.synthetic import SUITE, make_suite_recording

EVALS = 30000   # enough to converge at paper size (about 12 k from the truth)


def identify(regime, seed):
    ds, truth = make_suite_recording(regime, seed)
    J = int(truth.sizes["component"])
    C_true = np.ascontiguousarray(truth["target_effect"].values.T)
    R_true = np.ascontiguousarray(truth["source_effect"].values.T)
    used = truth["motif_used"].values.astype(bool)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LICCHIE(n_components=J, radius=float(ds.attrs["radius"]), random_state=0)
        model.fit(ds)
        fit_seconds = time.perf_counter() - t0
        gm = LICCHIE(n_components=J, radius=float(ds.attrs["radius"]), target_gain=True)
        prep = gm._prepare(ds)
    data, _ = FG.reduced_data(prep.problem, prep.recording.obs)
    comps = prep.problem.gain_components
    ones = np.ones(data.agg["rows"]["Y"].shape[0])
    comp = model.components_
    C_fit = np.ascontiguousarray(comp["target_effect"].transpose("feature", "component").values)
    R_fit = np.ascontiguousarray(comp["source_effect"].transpose("feature", "component").values)
    row = dict(regime=regime, seed=seed, gains_fitted=bool(model.target_gain_),
               fit_recovery=float(np.mean(S.motif_cos(C_true, R_true, C_fit, R_fit)[0][used])),
               fit_seconds=fit_seconds)
    for name, (C, R) in {"from_fit": (C_fit, R_fit), "from_truth": (C_true, R_true)}.items():
        _, C1, R1, F, n, _ = FGN.joint_minimum(data, comps, C, R, ones, max_eval=EVALS)
        row[f"{name}_loss"] = F
        row[f"{name}_recovery"] = float(np.mean(S.motif_cos(C_true, R_true, C1, R1)[0][used]))
        row[f"{name}_evals"] = n
    row["limit"] = ("search" if row["from_truth_loss"] < row["from_fit_loss"] * (1 - 1e-6)
                    else "problem")
    return row


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--regimes", nargs="+", default=["owned_gains", "pooled"],
                   choices=list(SUITE))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    a = p.parse_args(argv)
    header = None
    for regime in a.regimes:
        for seed in a.seeds:
            r = identify(regime, seed)
            if header is None:
                header = list(r)
                print(",".join(header), flush=True)
            print(",".join(f"{r[c]:.6g}" if isinstance(r[c], float) else str(r[c])
                           for c in header), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
