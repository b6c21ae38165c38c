"""The report of a fit on real data (paper §5.2-5.3): ``licchie report model.nc``.

:func:`write_real_report` writes, for a model file of ``licchie fit``:

- ``motif_<j>.png``: the motif map ``M_j = c_j r_jᵀ`` with feature names on
  both axes, one panel per (target, source) population pair when the
  populations have their own features, the verdict and stability in every
  title (Fig. 3b, S3);
- ``motifs.png``: every motif side by side, same colour scale;
- ``class_weights.png``: mean weight per interaction class (source ->
  target population, self pairs apart) and motif, and the distribution of
  the pair weights per class (Fig. 3c);
- ``class_weights_time.png``: each class's mean weight over time;
- with the data (the config stored in the model file, or ``--data``) and a
  ``[phenotype]`` table: ``sweep.png``, the weight sweeps (Fig. 4a),
  ``source_extremes.png``, the phenotype score at each source feature's
  empirical minimum and maximum at weight 2 (Fig. 4c), and
  ``phenotype_prediction.csv``, the phenotype predicted from the weights by
  cross-validated logistic regression beside the chance rows (Fig. 4b);
- ``motifs_original_units.csv`` (with ``standardize``): every motif in the
  features' own units, per population pair;
- ``report.md``, the page that links them, with the summary, a table of
  verdicts and the units.

The numbers come from :mod:`licchie.evaluate` (class summaries, source
extremes, phenotype prediction) and :mod:`licchie.sweeps`; this module only
draws them.
"""
from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd

from ..evaluate.interactions import class_weight_summary
from ..evaluate.phenotypes import interaction_class

__all__ = ["write_real_report"]


# ------------------------------------------------------------------ figures
def _colour(k):
    import matplotlib
    return matplotlib.colormaps["tab20"](k % 20)


def _title(model, j):
    comp = model.components_
    return (f"M{j}: {comp['verdict'].values[j]} {float(model.stability_.values[j]):.2f}")


def _reason(model, j):
    return str(model.components_["verdict_reason"].values[j])


def _motif_panel(ax, M, rows, cols, vmax, title):
    im = ax.imshow(M, cmap="RdBu_r", vmin=-vmax, vmax=vmax)
    ax.set_xticks(range(len(cols)))
    ax.set_xticklabels(cols, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(rows, fontsize=7)
    ax.set_xlabel("source feature", fontsize=7)
    ax.set_ylabel("target feature", fontsize=7)
    ax.set_title(title, fontsize=8)
    return im


def _population_pairs(model):
    w = model.weights_
    pairs = pd.DataFrame({"t": np.asarray(w["target_population"].values).astype(str),
                          "s": np.asarray(w["source_population"].values).astype(str)})
    return sorted(set(map(tuple, pairs.drop_duplicates().to_numpy().tolist())))


def _per_population(model):
    return "population" in model.components_.dims


def _motif_block(model, j, target_population, source_population, rows, cols):
    """``M_j`` between two populations in the model's units, rows ``rows``
    (target features) by columns ``cols`` (source features): the one place
    that reads a motif for a population pair (population feature spaces,
    paper A.2, give every pair its own effects)."""
    from ..sweeps import motif_effects
    feats = [str(f) for f in model.components_["feature"].values]
    C, R, _, _ = motif_effects(model, target_population, source_population)
    M = np.outer(C[j], R[j])
    return M[np.ix_([feats.index(f) for f in rows], [feats.index(f) for f in cols])]


def _panels(model, pop_features):
    """(name, target population, source population, rows, cols) of every panel."""
    feats = [str(f) for f in model.components_["feature"].values]
    if not (_per_population(model) or (
            pop_features and len({tuple(v) for v in pop_features.values()}) > 1)):
        return [("all populations", None, None, feats, feats)]
    if not pop_features:  # a model without its config: features from the effects
        has = np.isfinite(model.components_["target_effect"]).all("component")
        pop_features = {str(p): [f for f, h in zip(feats, has.sel(population=p).values) if h]
                        for p in has["population"].values}
    return [(f"{s} -> {t}", t, s, pop_features[t], pop_features[s])
            for t, s in _population_pairs(model) if t in pop_features and s in pop_features]


def _fig_motif(plt, model, j, pop_features, vmax):
    panels = _panels(model, pop_features)
    n = len(panels)
    ncol = min(n, 3)
    nrow = int(np.ceil(n / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.6 * ncol + 0.8, 3.4 * nrow + 0.6),
                             squeeze=False, constrained_layout=True)
    for k, (name, tpop, spop, rows, cols) in enumerate(panels):
        im = _motif_panel(axes.flat[k], _motif_block(model, j, tpop, spop, rows, cols),
                          rows, cols, vmax, f"{_title(model, j)}  ({name})")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.suptitle(f"{_title(model, j)}: {_reason(model, j)}\n{_units(model)}", fontsize=8)
    fig.colorbar(im, ax=axes, shrink=0.6)
    return fig


def _fig_motifs(plt, model, pop_features, vmax):
    """Every motif side by side; one row per population pair when the
    populations have their own effects."""
    panels = _panels(model, pop_features)
    J = model.n_components
    fig, axes = plt.subplots(len(panels), J, figsize=(3.3 * J + 0.8, 3.6 * len(panels) + 0.3),
                             squeeze=False, constrained_layout=True)
    for r, (name, tpop, spop, rows, cols) in enumerate(panels):
        for j in range(J):
            title = _title(model, j) + (f" ({name})" if len(panels) > 1 else "")
            im = _motif_panel(axes[r, j], _motif_block(model, j, tpop, spop, rows, cols),
                              rows, cols, vmax, title)
            if j:
                axes[r, j].set_ylabel("")
    fig.suptitle(_units(model), fontsize=8)
    fig.colorbar(im, ax=axes, shrink=0.7)
    return fig


def _units(model):
    if getattr(model, "scaling_", None) is None:
        return "features in the units of the data"
    return (f"features standardised per {model.scaling_.attrs['method'].replace('_', ' x ')} "
            "(model units; motifs_original_units.csv has the features' own units)")


def _fig_class_weights(plt, model, summary):
    summary = summary.reset_index()
    classes = sorted(summary["interaction_class"].unique())
    J = model.n_components
    mean = summary.pivot(index="interaction_class", columns="component",
                         values="mean").loc[classes]
    fig, axes = plt.subplots(1, 2, figsize=(4 + 1.2 * J + 3 * J, 0.45 * len(classes) + 2.2),
                             gridspec_kw={"width_ratios": [J, 3 * J]}, constrained_layout=True)
    v = float(np.nanmax(np.abs(mean.values))) or 1.0
    ax = axes[0]
    im = ax.imshow(mean.values, cmap="RdBu_r", vmin=-v, vmax=v, aspect="auto")
    for (r, c), x in np.ndenumerate(mean.values):
        ax.text(c, r, f"{x:.2f}", ha="center", va="center", fontsize=7,
                color="white" if abs(x) > 0.6 * v else "black")
    ax.set_yticks(range(len(classes)))
    ax.set_yticklabels(classes, fontsize=7)
    ax.set_xticks(range(J))
    ax.set_xticklabels([_title(model, j) for j in range(J)], rotation=45, ha="right",
                       fontsize=7)
    ax.set_title("mean pair weight per interaction class", fontsize=8)
    fig.colorbar(im, ax=ax, shrink=0.7)
    ax = axes[1]
    lab = interaction_class(model.weights_)
    W = np.asarray(model.weights_.values)
    width = 0.8 / max(len(classes), 1)
    for k, c in enumerate(classes):
        m = lab == c
        data = [W[m, j] for j in range(J)]
        pos = np.arange(J) + (k - (len(classes) - 1) / 2) * width
        bp = ax.boxplot(data, positions=pos, widths=width * 0.9, showfliers=False,
                        patch_artist=True)
        for box in bp["boxes"]:
            box.set_facecolor(_colour(k))
        ax.plot([], [], color=_colour(k), lw=6, label=c)
    ax.axhline(0, color="0.5", lw=0.6)
    ax.set_xticks(range(J))
    ax.set_xticklabels([_title(model, j) for j in range(J)], fontsize=7)
    ax.set_ylabel("pair weight")
    ax.set_title("pair weights by interaction class (box: quartiles, whiskers 1.5 IQR)",
                 fontsize=8)
    ax.legend(fontsize=6, ncol=2)
    return fig


def _fig_class_time(plt, model):
    w = model.weights_
    lab = interaction_class(w)
    t = np.asarray(w["time"].values)
    if not np.issubdtype(t.dtype, np.number):
        return None
    W = np.asarray(w.values)
    J = W.shape[1]
    fig, axes = plt.subplots(J, 1, figsize=(8, 1.9 * J + 0.5), sharex=True, squeeze=False,
                             constrained_layout=True)
    df = pd.DataFrame(W, columns=range(J)).assign(cls=lab, t=t)
    means = df.groupby(["cls", "t"]).mean()
    for j in range(J):
        ax = axes[j, 0]
        for k, c in enumerate(sorted(set(lab.tolist()))):
            s = means.loc[c][j]
            ax.plot(s.index, s.values, lw=0.8, color=_colour(k), label=c)
        ax.axhline(0, color="0.5", lw=0.5)
        ax.set_ylabel("mean weight", fontsize=7)
        ax.set_title(_title(model, j), fontsize=8)
    axes[0, 0].legend(fontsize=6, ncol=3)
    axes[-1, 0].set_xlabel("time (frame label)")
    return fig


# ------------------------------------------------------------------ the report
def _top(v, feats, k=2):
    return ", ".join(f"{feats[i]} {v[i]:+.2f}" for i in np.argsort(-np.abs(v))[:k])


def _model_and_meta(path):
    import xarray as xr

    from ..modelfile import load
    model = load(path)
    with xr.open_dataset(path, engine="netcdf4") as f:
        attrs = dict(f.attrs)
    meta = {"config": attrs.get("config"), "config_path": attrs.get("config_path"),
            "population_features": json.loads(attrs["population_features"])
            if "population_features" in attrs else None,
            "frames": json.loads(attrs["frames"]) if attrs.get("frames") else None}
    return model, meta


def write_real_report(model_path, out=None, data=None, frames=None, log=None):
    """Write the figures and ``report.md`` of a fitted model (module docstring).

    Parameters
    ----------
    model_path : str
        A model file (``licchie fit``; any ``LICCHIE.save`` file works for
        the data-free figures).
    out : str, optional
        Output folder; default the config's ``[output] report``, else
        ``<model file without .nc>_report``.
    data : str, optional
        The config file of the data; default the config stored in the model
        file by ``licchie fit``.
    frames : (int, int), optional
        Frames of the data for the sweeps; default those of the fit.
    log : callable, optional

    Returns
    -------
    list of str
        Files written, ``report.md`` last.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..config import load_config
    from ..sweeps import weight_sweep_states
    log = log or (lambda *a, **k: None)
    model, meta = _model_and_meta(model_path)
    cfg, why_no_data = None, None
    if data is not None:
        cfg = load_config(data)
    elif meta["config"]:
        try:
            cfg = load_config(meta["config_path"], text=meta["config"])
        except (ValueError, FileNotFoundError) as exc:
            why_no_data = f"the fit's data are not readable here ({exc})"
    else:
        why_no_data = "the model file has no config (fit with `licchie fit config.toml`)"
    if out is None:
        out = (cfg.output_report if cfg is not None else
               os.path.splitext(os.fspath(model_path))[0] + "_report")
    os.makedirs(out, exist_ok=True)
    pop_features = meta["population_features"]
    if cfg is not None and pop_features is None:
        pop_features = {p["name"]: p["features"] for p in cfg.populations}
    feats = [str(f) for f in model.components_["feature"].values]
    written, figs = [], []
    vmax = float(np.nanmax(np.abs(model.motifs().values))) or 1.0

    def save(name, fig, what):
        if fig is None:
            return
        path = os.path.join(out, name)
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        written.append(path)
        figs.append((name, what))
        log(f"  {name}")

    log(f"Writing the report of {model_path} to {out}/ ...")
    save("motifs.png", _fig_motifs(plt, model, pop_features, vmax),
         "all motifs, one colour scale (Fig. S3)")
    per_pop = len(_panels(model, pop_features)) > 1
    for j in range(model.n_components):
        save(f"motif_{j}.png", _fig_motif(plt, model, j, pop_features, vmax),
             f"motif {j}" + (", one panel per population pair" if per_pop else "")
             + f", with its verdict's reason (Fig. 3b)")
    summary = class_weight_summary(model.weights_)
    summary.to_csv(os.path.join(out, "class_weights.csv"))
    written.append(os.path.join(out, "class_weights.csv"))
    save("class_weights.png", _fig_class_weights(plt, model, summary),
         "weights by interaction class (Fig. 3c)")
    save("class_weights_time.png", _fig_class_time(plt, model),
         "mean weight per class over time")
    notes = []
    if cfg is not None and cfg.phenotype:
        from .phenotype import phenotype_report
        notes = phenotype_report(model, cfg, frames or meta["frames"] or cfg.data.get("frames"),
                                  log, save, out, written, plt)
    elif cfg is not None:
        notes.append("Weight sweeps, source extremes and phenotype prediction skipped: the "
                     "config has no [phenotype] table (examples/behav3d.toml shows one).")
    else:
        notes.append(f"Weight sweeps, source extremes and phenotype prediction skipped: "
                     f"{why_no_data}; pass --data config.toml.")
    if getattr(model, "scaling_", None) is not None:
        orig = model.motifs(units="original").to_dataframe().dropna().reset_index()
        orig = orig[[c for c in orig.columns if c not in ("stability", "source_excitation")]]
        orig.to_csv(os.path.join(out, "motifs_original_units.csv"), index=False)
        written.append(os.path.join(out, "motifs_original_units.csv"))
    path = os.path.join(out, "report.md")
    with open(path, "w") as fh:
        fh.write(_markdown(model, model_path, feats, figs, notes))
    written.append(path)
    return written


def _effects_text(model, name, feats):
    """Largest entries of each motif's effect; per population when the
    populations have their own effects."""
    E = model.components_[name]
    if "population" not in E.dims:
        return [_top(v, feats) for v in E.values]
    E = E.transpose("population", "component", "feature")
    pops = [str(p) for p in E["population"].values]
    return ["; ".join(f"{p}: {_top(np.nan_to_num(E.values[k, j]), feats)}"
                      for k, p in enumerate(pops)) for j in range(E.sizes["component"])]


def _units_text(model):
    sc = getattr(model, "scaling_", None)
    if sc is None:
        return ("Features are in the units of the data (the model has no `standardize`).", [])
    lines = ["| population | feature | mean | sd |", "|---|---|---|---|"]
    m = sc["mean"]
    if "session" in m.dims:
        m, s = m.isel(session=0), sc["scale"].isel(session=0)
    else:
        s = sc["scale"]
    for p in m["population"].values:
        for f in m["feature"].values:
            mu, sd = float(m.sel(population=p, feature=f)), float(s.sel(population=p, feature=f))
            if np.isfinite(mu):
                lines.append(f"| {p} | {f} | {mu:.4g} | {sd:.4g} |")
    return (f"Motif maps, effects and weights are in model units: every feature standardised "
            f"per {sc.attrs['method'].replace('_', ' x ')} with the statistics below (kept in "
            "the model file, `scaling_`).  In the features' own units a motif between target "
            "population p and source population q is `(s_p * c_j)(r_j / s_q)^T`: "
            "[motifs_original_units.csv](motifs_original_units.csv).", lines)


def _markdown(model, model_path, feats, figs, notes):
    C = _effects_text(model, "target_effect", feats)
    R = _effects_text(model, "source_effect", feats)
    units, scale_table = _units_text(model)
    lines = [f"# LICCHIE report: {os.path.basename(os.fspath(model_path))}", "",
             "Read only `high` motifs biologically: `medium` and `low` ones are not pinned "
             "down by these data (README, \"Reading the diagnostics\").  " + units, "",
             "| motif | verdict | stability | reason | target effect (largest) | "
             "source effect (largest) |", "|---|---|---|---|---|---|"]
    for j in range(model.n_components):
        lines.append(f"| M{j} | {model.components_['verdict'].values[j]} | "
                     f"{float(model.stability_.values[j]):.2f} | {_reason(model, j)} | "
                     f"{C[j]} | {R[j]} |")
    lines += ["", "## Figures", ""]
    lines += [f"- [{what}]({name})" for name, what in figs]
    lines += ["- [class_weights.csv](class_weights.csv): the numbers of the class figure"]
    lines += [""] + [f"{n}" for n in notes]
    if scale_table:
        lines += ["", "## Units", ""] + scale_table
    lines += ["", "## Fit summary", "", "```", model.summary(), "```", ""]
    return "\n".join(lines)
