"""Where motif recovery breaks down between the small identifiable case and the paper's size.

The identifiability study (README) recovers the true motifs (>= 0.95) on small
pooled recordings (16 cells, 30 frames, d = J = 4, ``balance=0``, density 0.7,
class x frame pooling); at the paper's size (35 cells, 50 frames, d = 10,
J = 8, the generator's defaults ``balance=0.5``, density 0.2) recovery is
0.34-0.54.  This script locates the factor responsible and asks whether the
objective or the optimiser is the limit:

* ``truth``: every fit row can also be started from the ground truth (true
  motifs, true weights, true per-pair ``A_e``) and iterated with the same
  steps.  If that run ends at a LOWER objective than the best of the fit's
  starts while keeping the true motifs, the optimiser/start is the limit; if the
  fit's starts reach a lower objective with other motifs, the objective (lambdas,
  pooling grouping) does not single out the truth.
* ``walk``: from the small case to the paper's size one generator factor at a
  time (d and J, density, cells/frames, balance), then the pooling window
  (1 -> 5 -> whole recording).
* ``settings``: fitting choices at the paper's size (no change to the data).
* ``seeds``: the best settings on seeds 0, 1, 2.

    python -m studies.recovery_diagnosis                 # everything, ~40 min, 1 core
    python -m studies.recovery_diagnosis --sections walk --no-truth

Fits run serially on one Numba thread.  Writes ``docs/studies/recovery-diagnosis.csv``
and ``docs/studies/recovery-diagnosis.png`` (``--out``).
"""
from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np

from studies._common import BASE_FIT, PAPER_DATA, fit_and_recover, recovery, truth_start

SMALL_DATA = dict(n_cells=(10, 6), n_frames=30, n_features=4, n_components=4,
                  density=0.7, balance=0.0, noise=0.01)


def one_row(section, step, data, fit, seed, with_truth):
    from licchie.synthetic import make_recording

    ds, truth = make_recording(regime="pooled", seed=seed, **data)
    model, sim, secs = fit_and_recover(ds, truth, fit, seed)
    row = dict(section=section, step=step, seed=seed, d=data["n_features"],
               J=data["n_components"], cells=sum(data["n_cells"]), frames=data["n_frames"],
               density=data["density"], balance=data["balance"],
               lambdas="/".join(f"{v:g}" for v in fit["lambdas"][:4]),
               pooling=fit["lambdas"][4],
               groups=fit["pooling_groups"], window=fit["pooling_window"] or 0,
               init=fit["init"], n_init=fit["n_init"], max_iter=fit["max_iter"],
               recovery=float(sim.mean()), recovery_min=float(sim.min()),
               stability=float(model.stability_.attrs["mean"]),
               objective=float(model.start_objectives_.min()),
               objective_worst_start=float(model.start_objectives_.max()),
               fit_seconds=secs, per_motif=" ".join(f"{v:.2f}" for v in sim))
    if with_truth:
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            at, fin, C, R = truth_start(ds, truth, fit)
        row.update(objective_at_truth=at, objective_truth_start=fin,
                   recovery_truth_start=float(recovery(truth, C, R).mean()),
                   truth_seconds=time.perf_counter() - t0)
        # > 1: the truth start ends lower than every fitted start (optimiser-limited)
        row["fit_over_truth"] = row["objective"] / fin
    return row


def walk_rows():
    """Cumulative: small case -> paper size, one factor per step."""
    data = dict(SMALL_DATA)
    fit = dict(BASE_FIT)
    rows = [("small case (test_identifiability)", dict(data), dict(fit))]
    data.update(n_features=10, n_components=8)
    rows.append(("d 4->10, J 4->8", dict(data), dict(fit)))
    data.update(density=0.2)
    rows.append(("density 0.7->0.2", dict(data), dict(fit)))
    data.update(n_cells=(25, 10), n_frames=50)
    rows.append(("cells 16->35, frames 30->50", dict(data), dict(fit)))
    data.update(balance=0.5)
    rows.append(("balance 0->0.5 (= paper data)", dict(data), dict(fit)))
    fit.update(pooling_window=5)
    rows.append(("pooling window 1->5", dict(data), dict(fit)))
    fit.update(pooling_groups="class", pooling_window=None)
    rows.append(("pooling window 5->class", dict(data), dict(fit)))
    # one factor at a time back from the paper's data
    rows.append(("paper data but balance 0", dict(PAPER_DATA, balance=0.0), dict(BASE_FIT)))
    rows.append(("paper data but density 0.7", dict(PAPER_DATA, density=0.7), dict(BASE_FIT)))
    rows.append(("paper data but J = d = 10", dict(PAPER_DATA, n_components=10),
                 dict(BASE_FIT)))
    return rows


SETTINGS = {
    "README: class x 5 frames": dict(BASE_FIT, pooling_window=5),
    "class x frame": dict(BASE_FIT),
    "class x frame, lam5 1": dict(BASE_FIT, lambdas=(10.0, 0.0, 0.0, 0.001, 1.0)),
    "class x frame, lam5 0.1": dict(BASE_FIT, lambdas=(10.0, 0.0, 0.0, 0.001, 0.1)),
    "class x frame, lam5 100": dict(BASE_FIT, lambdas=(10.0, 0.0, 0.0, 0.001, 100.0)),
    "class x frame, lam1 1": dict(BASE_FIT, lambdas=(1.0, 0.0, 0.0, 0.001, 10.0)),
    "class x frame, lam1 100": dict(BASE_FIT, lambdas=(100.0, 0.0, 0.0, 0.001, 10.0)),
    "class x frame, 500 iter": dict(BASE_FIT, max_iter=500),
    "class x frame, 6 starts": dict(BASE_FIT, n_init=6),
}


def plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 0.32 * len(rows) + 1.2))
    labels = [f"[{r['section']}] {r['step']}" + (f" s{r['seed']}" if r['section'] == 'seeds'
                                                  else "") for r in rows]
    y = np.arange(len(rows))[::-1]
    ax.barh(y + 0.2, [r["recovery"] for r in rows], 0.4, label="recovery (fit)")
    ax.barh(y - 0.2, [r["stability"] for r in rows], 0.4, label="stability (fit)")
    if any("recovery_truth_start" in r for r in rows):
        ax.scatter([r.get("recovery_truth_start", np.nan) for r in rows], y + 0.2, marker="|",
                   s=120, color="k", label="recovery, started at the truth")
    ax.axvline(0.9, color="grey", ls="--", lw=0.8)
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=7)
    ax.set_xlim(0, 1.02)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_xlabel("mean matched |cos| with the true motifs / across starts")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sections", nargs="+", default=["walk", "settings", "seeds"],
                    choices=["walk", "settings", "seeds"])
    ap.add_argument("--settings", nargs="*", default=None,
                    help="names from SETTINGS (default: all)")
    ap.add_argument("--best", default="class x frame",
                    help="SETTINGS entry run on seeds 0, 1, 2")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--no-truth", action="store_true", help="skip the truth starts")
    ap.add_argument("--out", default="docs/studies/recovery-diagnosis")
    ap.add_argument("--append", action="store_true", help="append to an existing CSV")
    a = ap.parse_args(argv)

    import numba
    import pandas as pd
    numba.set_num_threads(1)

    jobs = []
    if "walk" in a.sections:
        jobs += [("walk", name, d, f, 0) for name, d, f in walk_rows()]
    if "settings" in a.sections:
        names = a.settings if a.settings is not None else list(SETTINGS)
        jobs += [("settings", n, dict(PAPER_DATA), SETTINGS[n], 0) for n in names]
    if "seeds" in a.sections:
        jobs += [("seeds", a.best, dict(PAPER_DATA), SETTINGS[a.best], s) for s in a.seeds]
    rows = []
    csv = a.out + ".csv"
    if a.append and os.path.exists(csv):
        rows = pd.read_csv(csv).to_dict("records")
    cols = ["section", "step", "seed", "recovery", "recovery_min", "stability", "objective",
            "objective_truth_start", "recovery_truth_start", "fit_over_truth", "fit_seconds"]
    for section, step, data, fit, seed in jobs:
        r = one_row(section, step, data, fit, seed, not a.no_truth)
        rows.append(r)
        print("  ".join(f"{k}={r[k]:.4g}" if isinstance(r.get(k), float) else f"{k}={r.get(k)}"
                        for k in cols if k in r), flush=True)
        os.makedirs(os.path.dirname(csv) or ".", exist_ok=True)
        pd.DataFrame(rows).to_csv(csv, index=False)
    df = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(df[[c for c in cols if c in df]].round(3).to_string(index=False))
    plot(rows, a.out + ".png")
    print(f"wrote {csv} and {a.out}.png")


if __name__ == "__main__":
    main()
