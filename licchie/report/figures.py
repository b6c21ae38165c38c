"""Figures and Markdown summary of a comparison (paper Fig. 2).

:func:`write_report` writes PNG figures and a Markdown summary of the result
of :func:`licchie.report.run_comparison` (needs matplotlib, the ``report``
extra: without it the figures are skipped and the summary says so).

Motifs are never shown without their stability number (MODEL.md,
"Identifiability"): a motif that the starts do not agree on is not
determined by the data.
"""
from __future__ import annotations

import os

import numpy as np

from .. import evaluate as E
from ..params import resolve_lambdas
from .comparison import METHODS, format_table


def write_report(folder, res, truth, table=None):
    """Write PNG figures and ``report.md`` into ``folder``.

    Figures (paper Fig. 2): ``motifs.png`` (true vs inferred motifs, each
    with its matched |cosine| and stability), ``pair_mse.png`` (per-pair MSE
    distributions), ``mean_mse.png`` (mean per-pair MSE per method),
    ``objective.png`` (LICCHIE's objective history), ``weights.png``
    (true and inferred weights over time), ``cell_types.png``.

    Returns
    -------
    list of str
        The files written.  Without matplotlib only ``report.md`` is written
        (it says the figures were skipped).
    """
    os.makedirs(folder, exist_ok=True)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        plt = None
    figs = {}
    if plt is not None:
        figs["motifs"] = _fig_motifs(plt, res, truth)
        figs["pair_mse"] = _fig_pair_mse(plt, res)
        figs["mean_mse"] = _fig_mean_mse(plt, res)
        figs["objective"] = _fig_objective(plt, res)
        figs["weights"] = _fig_weights(plt, res, truth)
        figs["cell_types"] = _fig_cell_types(plt, res)
    written = []
    for name, fig in figs.items():
        path = os.path.join(folder, f"{name}.png")
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        written.append(path)
    md = _markdown(res, table if table is not None else format_table(res),
                   figures=plt is not None)
    path = os.path.join(folder, "report.md")
    with open(path, "w") as fh:
        fh.write(md)
    written.append(path)
    return written


def _stab_text(v):
    return "n/a" if not np.isfinite(v) else f"{v:.2f}"


def _fig_motifs(plt, res, truth):
    Ct = truth["target_effect"].values
    Rt = truth["source_effect"].values
    J = Ct.shape[0]
    fig, axes = plt.subplots(J, 4, figsize=(8.4, 2.0 * J + 0.6), squeeze=False,
                             constrained_layout=True)
    vmax = 0.0
    maps = []
    for j in range(J):
        row = [("truth", np.outer(Ct[j], Rt[j]), "")]
        for m in METHODS:
            rec = res["motifs"][m]
            comp = res["baseline_motifs"][m]
            k = int(rec["match"].values[j])
            s = float(rec["sign"].values[j])
            M = s * np.outer(comp["target_effect"].values[k], comp["source_effect"].values[k])
            stab = float(rec["matched_stability"].values[j])
            label = (f"|cos| {rec['similarity'].values[j]:.2f}, "
                     f"SSIM {rec['ssim'].values[j]:.2f}\nstability {_stab_text(stab)}")
            row.append((m, M, label))
        maps.append(row)
        vmax = max(vmax, *(np.abs(x[1]).max() for x in row))
    for j, row in enumerate(maps):
        for c, (name, M, label) in enumerate(row):
            ax = axes[j, c]
            im = ax.imshow(M, cmap="RdBu_r", vmin=-vmax, vmax=vmax)
            ax.set_xticks([])
            ax.set_yticks([])
            title = (f"true M{j}" if name == "truth" else f"{name}\n{label}")
            ax.set_title(title, fontsize=7)
    stab = res["models"]["LICCHIE"].stability_.attrs["mean"]
    fig.suptitle("True motifs (left) and the matched inferred motifs (sign-aligned); "
                 f"LICCHIE mean stability {stab:.2f}\nrows: target feature, columns: "
                 "source feature", fontsize=9)
    fig.colorbar(im, ax=axes, shrink=0.3, aspect=30)
    return fig


def _fig_pair_mse(plt, res):
    fig, axes = plt.subplots(len(METHODS), 1, figsize=(6, 1.9 * len(METHODS)), sharex=True)
    allv = np.concatenate([res["pair_mse"][m].values for m in METHODS])
    pos = allv[allv > 0]
    lo = np.log10(pos.min()) if pos.size else -6
    hi = np.log10(pos.max()) if pos.size else 0
    bins = np.logspace(lo, hi, 50)
    for ax, m in zip(axes, METHODS):
        v = res["pair_mse"][m].values
        ax.hist(np.clip(v, bins[0], None), bins=bins, color="C0" if m == "LICCHIE" else "C7")
        ax.set_xscale("log")
        ax.axvline(v.mean(), color="k", ls="--", lw=1)
        ax.set_title(f"{m}: mean {v.mean():.3g}, median {np.median(v):.3g}", fontsize=8)
        ax.set_ylabel("pairs")
    axes[-1].set_xlabel("per-pair MSE of A_e vs truth")
    fig.tight_layout()
    return fig


def _fig_mean_mse(plt, res):
    fig, ax = plt.subplots(figsize=(4.5, 3))
    vals = [res["pair_mse"][m].attrs["mean"] for m in METHODS]
    ax.bar(range(len(METHODS)), vals, color=["C7", "C7", "C0"])
    ax.set_xticks(range(len(METHODS)))
    ax.set_xticklabels(METHODS, fontsize=8)
    ax.set_ylabel("mean per-pair MSE of A_e")
    for k, v in enumerate(vals):
        ax.text(k, v, f"{v:.3g}", ha="center", va="bottom", fontsize=8)
    ax.set_yscale("log")
    fig.tight_layout()
    return fig


def _fig_objective(plt, res):
    h = res["models"]["LICCHIE"].objective_history_
    fig, ax = plt.subplots(figsize=(6, 3.5))
    x = np.arange(h.sizes["step"])
    for t in h["term"].values:
        v = h.sel(term=t).values
        if np.any(v > 0):
            ax.plot(x, np.where(v > 0, v, np.nan), lw=2 if t == "total" else 1,
                    color="k" if t == "total" else None, label=str(t))
    ax.set_yscale("log")
    stage = np.asarray(h["stage"].values).astype(str)
    jumps = np.flatnonzero(np.isin(stage, ("continue", "restart")))
    for k, i in enumerate(jumps):
        # a class restart (or the continuation before them) starts a new run:
        # L jumps up there and the run's end is lower than the last one's
        ax.axvline(i, color="0.6", lw=0.6, ls=":",
                   label="continuation / accepted class restart" if k == 0 else None)
    ax.set_xlabel("step (A, components, weights[, extrapolate] per iteration)")
    ax.set_ylabel("objective term (weighted)")
    lic = res["models"]["LICCHIE"]
    ax.set_title(f"LICCHIE objective, best start ({lic.n_iter_} iterations, "
                 f"{'converged' if lic.converged_ else 'not converged'}); "
                 f"stability {lic.stability_.attrs['mean']:.2f}", fontsize=8)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _fig_weights(plt, res, truth):
    """True W and LICCHIE's W (matched to the true motifs, sign-aligned) over time."""
    lic = res["models"]["LICCHIE"]
    rec = res["motifs"]["LICCHIE"]
    Wi = lic.weights_
    Wt = truth["weights"]
    i_inf, i_true, _, _ = E.align_pairs(Wi, Wt)
    match = rec["match"].values
    sign = rec["sign"].values
    J = Wt.sizes["component"]
    Winf = np.zeros((i_true.size, J))
    for j in range(J):
        if match[j] >= 0:
            Winf[:, j] = sign[j] * Wi.values[i_inf, match[j]]
    Wtru = Wt.values[i_true]
    # pairs sorted by time, then interaction class
    t = Wt["time"].values[i_true]
    cls = Wt["interaction_class"].values[i_true] if "interaction_class" in Wt.coords \
        else np.zeros(i_true.size)
    order = np.lexsort((cls, t))
    fig, axes = plt.subplots(2, 1, figsize=(9, 4.6), sharex=True)
    for ax, W, title in ((axes[0], Wtru, "true W"),
                         (axes[1], Winf, "LICCHIE W (component matched to true motif, "
                                         "sign-aligned)")):
        v = np.quantile(np.abs(W), 0.99) or 1.0
        im = ax.imshow(W[order].T, aspect="auto", cmap="RdBu_r", vmin=-v, vmax=v,
                       interpolation="nearest")
        ax.set_ylabel("true motif")
        ax.set_title(title, fontsize=8)
        fig.colorbar(im, ax=ax, pad=0.01)
    ts = t[order]
    ticks = [k for k in range(len(ts)) if k == 0 or ts[k] != ts[k - 1]]
    step = max(1, len(ticks) // 10)
    axes[1].set_xticks(ticks[::step])
    axes[1].set_xticklabels([str(ts[k]) for k in ticks[::step]], fontsize=7)
    axes[1].set_xlabel("pairs, ordered by time (labels) then interaction class")
    axes[1].set_yticks(range(J))
    labels = [f"M{j} (stab {_stab_text(float(rec['matched_stability'].values[j]))})"
              for j in range(J)]
    axes[1].set_yticklabels(labels, fontsize=6)
    axes[0].set_yticks(range(J))
    axes[0].set_yticklabels([f"M{j}" for j in range(J)], fontsize=6)
    fig.tight_layout()
    return fig


def _fig_cell_types(plt, res):
    fig, ax = plt.subplots(figsize=(5, 3))
    tasks = ["source", "target", "both"]
    width = 0.25
    for k, (src, col) in enumerate((("LICCHIE", "C0"), ("truth", "C2"))):
        df = res["cell_types"][src]
        ax.bar(np.arange(3) + (k - 0.5) * width, df.loc[tasks, "accuracy"], width,
               color=col, label=f"accuracy from {src} W")
    maj = res["cell_types"]["LICCHIE"].loc[tasks, "majority_rate"].values
    ax.scatter(np.arange(3), maj, marker="_", s=600, color="k", label="majority-class rate",
               zorder=3)
    ax.set_xticks(range(3))
    ax.set_xticklabels(tasks)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("5-fold CV accuracy")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def _markdown(res, table, figures):
    lic = res["models"]["LICCHIE"]
    stab = lic.stability_.attrs["mean"]
    lines = ["# LICCHIE vs linear baselines on synthetic data", "",
             f"LICCHIE: {lic.n_components} motifs, pooling {resolve_lambdas(lic.lambdas).pooling} "
             f"({lic._pooling()}), {lic.n_iter_} iterations "
             f"({'converged' if lic.converged_ else 'not converged'}), best of "
             f"{lic.n_init} starts. **Motif stability {stab:.3f}** (agreement across "
             "starts; below 0.9 the motifs are not reproducible, MODEL.md "
             "\"Identifiability\").", "",
             "```", table, "```", "", "```", lic.summary(), "```", ""]
    if figures:
        lines += [
            f"- [Motifs: true vs inferred, with |cos| and stability]"
            f"(motifs.png) (Fig. 2d; LICCHIE mean stability {stab:.2f})",
            "- [Per-pair MSE distributions](pair_mse.png) (Fig. 2e)",
            "- [Mean per-pair MSE](mean_mse.png) (Fig. 2f)",
            "- [Objective history](objective.png)",
            f"- [Weights over time, true and inferred](weights.png) (Fig. 2b; "
            f"stability {stab:.2f})",
            "- [Cell-type prediction from W](cell_types.png) (Fig. 2c)", ""]
    else:
        lines += ["Figures skipped: matplotlib is not installed "
                  "(`pip install \"licchie[report]\"`).", ""]
    return "\n".join(lines)
