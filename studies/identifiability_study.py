"""Identifiability study: motif recovery and the stability diagnostic.

Fits LICCHIE on synthetic recordings across weight regime, pooling strength
(lam5), noise, number of motifs J and recording size, and records for each
fit the recovery of the true motifs (needs the truth) and the stability
diagnostic (does not).  The question is whether stability, computed without
the truth, tells recoverable settings from unrecoverable ones.

    python -m studies.identifiability_study                # ~20-40 min on 2 cores
    python -m studies.identifiability_study --quick --out /tmp/study

Writes ``identifiability-study.csv`` and ``identifiability.png`` (recovery
against stability, one point per fit, coloured by regime and pooling) into
``--out`` (default ``docs/studies``).
"""
from __future__ import annotations

import argparse
import itertools
import os
import time
import warnings


def r_in_span_c(truth):
    """Mean over motifs of |P_C r_j|: how much of each source effect lies in span(C).

    After the first frame every state of the simulated linear network lies in
    span(C) (plus noise), so the rest of r_j is seen only through frame-0
    sources and the noise: mean over motifs of ``|P_C r_j|``.
    """
    import numpy as np

    C = truth["target_effect"].values.T
    R = truth["source_effect"].values.T
    P = C @ np.linalg.pinv(C)
    return float(np.mean(np.linalg.norm(P @ R, axis=0)))


def one_fit(regime, pooling, noise, J, n_cells, n_frames, d, seed, max_iter, n_init,
            init="groups", balance=0.0):
    import numpy as np

    from licchie import LICCHIE
    from licchie.fit import motif_agreement
    from licchie.synthetic import make_recording

    ds, truth = make_recording(regime=regime, n_cells=n_cells, n_frames=n_frames,
                               n_features=d, n_components=J, noise=noise, seed=seed,
                               density=0.7 if regime == "pooled" else 0.2,
                               balance=balance)
    pooled = pooling > 0
    model = LICCHIE(n_components=J, radius=10.0, n_neighbors=10, sigma=0.3,
                    lambdas=((10.0, 0.0, 0.0, 0.001) if pooled else (1.0, 0.1, 0.0, 0.01))
                    + (pooling,), pooling_groups="class_time" if pooled else "class",
                    pooling_window=1 if pooled else None, n_init=n_init,
                    max_iter=max_iter, tol=1e-9, random_state=seed, verbose=0,
                    init=init)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(ds)
    sim, _ = motif_agreement(truth["target_effect"].values.T, truth["source_effect"].values.T,
                             model.components_["target_effect"].values.T,
                             model.components_["source_effect"].values.T)
    return dict(init=init, regime=regime, pooling=pooling, noise=noise, J=J,
                cells=sum(n_cells), frames=n_frames, d=d, seed=seed, balance=balance,
                r_in_span_C=r_in_span_c(truth),
                recovery=float(sim.mean()), recovery_min=float(sim.min()),
                stability=float(model.stability_.attrs["mean"]),
                excitation_mean=float(np.nanmean(model.components_["source_excitation"])),
                excitation_min=float(np.nanmin(model.components_["source_excitation"])),
                objective=float(model.start_objectives_.min()),
                n_pairs=int(model.n_pairs_), seconds=time.perf_counter() - t0)


def grid(quick):
    """Rows of the study.  Pooled data use ``balance=0`` (each class exactly its
    own profile) unless the row varies it; the default d = 4, J = 2 leaves
    part of every r_j outside span(C), so J = 4 = d rows are added."""
    base = dict(noise=0.01, J=2, n_cells=(10, 6), n_frames=30, d=4, balance=0.0)
    rows = []
    seeds = [0] if quick else [0, 1]
    for regime, pooling, seed in itertools.product(["pooled", "paper"], [0.0, 10.0], seeds):
        rows.append(dict(base, regime=regime, pooling=pooling, seed=seed))
    for regime, pooling, seed in itertools.product(["pooled", "paper"], [0.0, 10.0], seeds):
        rows.append(dict(base, regime=regime, pooling=pooling, seed=seed, J=4))
    if not quick:
        for noise in (0.1, 0.3):
            rows.append(dict(base, regime="pooled", pooling=10.0, seed=0, noise=noise))
        for J in (1, 3):
            rows.append(dict(base, regime="pooled", pooling=10.0, seed=0, J=J))
        for n_cells, n_frames in (((5, 3), 15), ((20, 12), 50)):
            rows.append(dict(base, regime="pooled", pooling=10.0, seed=0, n_cells=n_cells,
                             n_frames=n_frames, J=4))
        rows.append(dict(base, regime="pooled", pooling=10.0, seed=0, J=4, balance=0.5))
    return rows


def plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    inits = sorted({r["init"] for r in rows})
    fig, axes = plt.subplots(1, len(inits), figsize=(5.2 * len(inits), 4.5), squeeze=False)
    style = {("pooled", True): ("tab:blue", "o"), ("pooled", False): ("tab:cyan", "s"),
             ("paper", True): ("tab:red", "^"), ("paper", False): ("tab:orange", "v")}
    for ax, init in zip(axes[0], inits):
        for (regime, pooled), (col, mk) in style.items():
            for full in (True, False):
                sel = [r for r in rows if r["init"] == init and r["regime"] == regime
                       and (r["pooling"] > 0) == pooled and (r["J"] == r["d"]) == full]
                if sel:
                    ax.scatter([r["stability"] for r in sel], [r["recovery"] for r in sel],
                               marker=mk, facecolors=col if full else "none", edgecolors=col,
                               label=f"{regime} data, pooling {'on' if pooled else 'off'}, "
                                     f"{'J = d' if full else 'J < d'}")
        ax.axvline(0.9, color="grey", lw=0.8, ls="--")
        ax.axhline(0.95, color="grey", lw=0.8, ls=":")
        ax.set_xlabel("stability (agreement across starts; no truth needed)")
        ax.set_ylabel("recovery (matched |cosine| with the true motifs)")
        ax.set_xlim(0, 1.02)
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize=6, loc="lower left")
        ax.set_title(f"init={init!r}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="docs/studies")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--max-iter", type=int, default=150)
    ap.add_argument("--n-init", type=int, default=3)
    ap.add_argument("--init", choices=("groups", "parafac", "both"), default="both")
    a = ap.parse_args(argv)
    os.makedirs(a.out, exist_ok=True)
    rows = []
    inits = ("groups", "parafac") if a.init == "both" else (a.init,)
    for init, cfg in itertools.product(inits, grid(a.quick)):
        r = one_fit(cfg["regime"], cfg["pooling"], cfg["noise"], cfg["J"], cfg["n_cells"],
                    cfg["n_frames"], cfg["d"], cfg["seed"], a.max_iter, a.n_init, init,
                    cfg["balance"])
        rows.append(r)
        print(" ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                       for k, v in r.items()), flush=True)
    import pandas as pd
    pd.DataFrame(rows).to_csv(os.path.join(a.out, "identifiability-study.csv"), index=False)
    plot(rows, os.path.join(a.out, "identifiability.png"))
    print(f"wrote {a.out}/identifiability-study.csv and {a.out}/identifiability.png")


if __name__ == "__main__":
    main()
