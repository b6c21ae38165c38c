"""Held-out R^2 on the synthetic suite: class x frame pooling against class pooling.

For each (regime, seed) and each ``pooling_groups`` setting, LICCHIE (the
suite's :func:`suite.make_model`: package defaults, true J and radius) is
fitted on the first 80% of the frames and the last 20% are predicted one
step ahead with group profiles.  For ``"class_time"`` the held-out frames
have no window of their own; two rules are scored on the same fit:

* ``mean``: the class's mean profile over its training windows (what
  ``predict(weights="group")`` does, and the held-out predictor);
* ``last``: the class's profile in the last training window (the held-out
  predictor of 0.2.x's ``group_profile_prediction``, kept here to compare).

Usage (from the repository root)::

    NUMBA_NUM_THREADS=1 nice python -m studies.pooling_heldout --regimes shared heldout6 \\
        --seeds 0 1 --out docs/studies/pooling-heldout.csv

Rows are appended as each fit finishes (``<out>``, one per regime, seed and
setting: recovery of the 80% fit, held-out R^2 per rule, fit seconds).
"""
from __future__ import annotations

import argparse
import csv
import os
import time
import warnings

import numpy as np

from licchie import evaluate as E
from licchie import fit as F
from licchie.evaluate.prediction import prediction_scores
from licchie.labels import format_prediction
from licchie.synthetic import SUITE, make_suite_recording

from studies.suite import make_model  # the one place that builds the estimator

COLUMNS = ["regime", "seed", "pooling_groups", "recovery", "heldout_r2_mean",
           "heldout_r2_last", "fit_seconds"]


def last_window_prediction(model, ds):
    """Every pair at its group's profile; an unseen window of a class takes the
    class's latest earlier training window (0.2.x's held-out rule)."""
    from licchie.data import as_recording
    obs = as_recording(ds).obs
    pairs = F.build_pairs(obs, model.radius, model.include_self, model.pair_weight,
                          model.bandwidth, model._pooling(), model.pooling_window)
    gw = model.group_weights_
    known = {}
    for k, g in enumerate(gw["group"].values.tolist()):
        cls, start = str(g).rsplit("@", 1)
        known.setdefault(cls, []).append((int(start), k))
    W = np.zeros((pairs.n_pairs, gw.sizes["component"]))
    for k, g in enumerate(pairs.group_names):
        cls, start = g.rsplit("@", 1)
        cand = known.get(cls)
        if not cand:
            continue
        earlier = [c for c in cand if c[0] <= int(start)]
        pick = max(earlier) if earlier else min(cand)
        W[pairs.group == k] = gw.values[pick[1]]
    C = np.ascontiguousarray(model.components_["target_effect"].values.T)
    R = np.ascontiguousarray(model.components_["source_effect"].values.T)
    yhat = F.K.predict_lowrank(obs.features, pairs.tgt_ptr, pairs.src, pairs.gain, W, C, R)
    return format_prediction(ds, obs, pairs, yhat, list(model.components_["feature"].values))


def one(regime, seed, pooling_groups):
    ds, truth = make_suite_recording(regime, seed)
    t_split = int(round(0.8 * ds.sizes["time"]))
    model = make_model(seed, ds, truth, pooling_groups=pooling_groups)
    train = ds.isel(time=slice(0, t_split))
    held = ds["time"].values[t_split:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        t0 = time.perf_counter()
        model.fit(train)
        secs = time.perf_counter() - t0
        r2_mean = prediction_scores(model.predict(ds, weights="group"), ds, held)["r2"]
        r2_last = (prediction_scores(last_window_prediction(model, ds), ds, held)["r2"]
                   if pooling_groups == "class_time" else r2_mean)
    rec = float(E.motif_recovery(model, truth)["similarity"].mean())
    return dict(regime=regime, seed=seed, pooling_groups=pooling_groups, recovery=rec,
                heldout_r2_mean=r2_mean, heldout_r2_last=r2_last, fit_seconds=secs)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--regimes", nargs="+", default=["shared", "heldout6"], choices=list(SUITE))
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--pooling-groups", nargs="+", default=["class_time", "class"])
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    new = not os.path.exists(a.out)
    with open(a.out, "a", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS)
        if new:
            w.writeheader()
        for regime in a.regimes:
            for seed in a.seeds:
                for pg in a.pooling_groups:
                    row = one(regime, seed, pg)
                    w.writerow(row)
                    fh.flush()
                    print(", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                    for k, v in row.items()), flush=True)


if __name__ == "__main__":
    main()
