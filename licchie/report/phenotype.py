"""The phenotype part of ``licchie report`` (paper Figs. 4a-c), from a config's
``[phenotype]``: weight sweeps, source-feature extremes and phenotype
prediction from the weights.  The numbers come from :mod:`licchie.sweeps`
and :mod:`licchie.evaluate`; this module reads the data in the model's units
and draws them.
"""
from __future__ import annotations

import os

import numpy as np
import pandas as pd

from ..evaluate.interactions import source_feature_extremes_states
from ..evaluate.phenotypes import phenotype_prediction

__all__ = ["phenotype_report", "phenotype_data"]


def phenotype_data(model, cfg, frames, log):
    """What the [phenotype] analyses need, from the config's data.

    Returns
    -------
    dict
        ``sources`` (n, d) in the model's units (NaN on features the source
        population lacks) and ``sources_original``, ``reference`` (m, d) and
        ``reference_labels`` (m,) (labelled states of the phenotype's
        population, model units), ``labels`` (pandas.Series by (cell, time)
        for :func:`licchie.evaluate.phenotype_prediction`), ``source_population``.
    """
    from .. import scaling as S
    from ..config import config_recording, observation_labels
    from ..labels import time_labels
    rec, _ = config_recording(cfg, log=log, frames=frames)
    obs = rec.obs
    feats = [str(f) for f in model.components_["feature"].values]
    if [str(f) for f in obs.feature_names] != feats:
        raise ValueError(f"the data of {cfg.path} have features {list(obs.feature_names)}, the "
                         f"model {feats}; pass --data with the config the model was fitted "
                         "from.")
    lab = observation_labels(cfg, obs)
    z = S.scaled_recording(model, rec).obs.features
    names = [str(n) for n in obs.population_names]
    ph = cfg.phenotype
    src_pop = ph.get("source_population", ph["population"])
    seen = np.isfinite(z).any(axis=1)
    src = seen & (obs.population == names.index(src_pop))
    ref = seen & np.array([v is not None for v in lab])
    idx = np.flatnonzero(ref)
    labels = pd.Series(lab[idx].astype(str), index=pd.MultiIndex.from_arrays(
        [obs.cell_ids[obs.cell[idx]], time_labels(obs, idx)]))
    return dict(sources=z[src], sources_original=obs.features[src], reference=z[ref],
                reference_labels=lab[ref].astype(str), labels=labels,
                source_population=src_pop)


def phenotype_report(model, cfg, frames, log, save, out, written, plt):
    """Sweeps (Fig. 4a), source-feature extremes (Fig. 4c) and phenotype
    prediction from the weights (Fig. 4b); returns the notes for report.md."""
    from ..sweeps import weight_sweep_states
    from .real import _per_population
    ph = cfg.phenotype
    phen = ph.get("above", "high")
    data = phenotype_data(model, cfg, frames, log)
    lab, src_pop = data["reference_labels"], data["source_population"]
    title = (f"{src_pop} sources -> {ph['population']} targets; '{phen}' = "
             f"{ph['feature']} > {ph['threshold']:g}")
    if len(np.unique(lab)) < 2:
        return [f"Weight sweeps, source extremes and phenotype prediction skipped: every "
                f"labelled {ph['population']} state is '{lab[0] if len(lab) else 'none'}'."]
    pops = dict(target_population=ph["population"], source_population=src_pop) \
        if _per_population(model) else {}
    sweep = weight_sweep_states(model, data["sources"], data["reference"], lab,
                                n_neighbors=150, random_state=0, **pops)
    sweep.attrs["title"] = title
    sweep.to_netcdf(os.path.join(out, "sweep.nc"))
    written.append(os.path.join(out, "sweep.nc"))
    save("sweep.png", _fig_sweep(plt, model, sweep, phen), f"weight sweeps, {title} (Fig. 4a)")
    rng = np.random.default_rng(0)
    srcs = data["sources"]
    keep = np.sort(rng.choice(len(srcs), min(len(srcs), 20000), replace=False))
    ext = source_feature_extremes_states(
        model, srcs[keep], data["reference"], lab, sources_original=data["sources_original"][keep],
        **pops)
    ext.to_csv(os.path.join(out, "source_extremes.csv"), index=False)
    written.append(os.path.join(out, "source_extremes.csv"))
    save("source_extremes.png", _fig_extremes(plt, model, ext, phen, title),
         "source-feature extremes at w = 2 (Fig. 4c)")
    log("  phenotype prediction from the weights (5-fold CV, cells kept together) ...")
    try:
        pred = phenotype_prediction(model.weights_, data["labels"],
                                    target_population=ph["population"])
    except ValueError as exc:
        return [f"Phenotype prediction skipped: {exc}"]
    pred.to_csv(os.path.join(out, "phenotype_prediction.csv"))
    written.append(os.path.join(out, "phenotype_prediction.csv"))
    cols = ["accuracy", "balanced_accuracy", "n_samples"]
    return [f"### Phenotype from the weights (Fig. 4b)", "",
            f"'{phen}' of {ph['population']} targets ({ph['feature']} > {ph['threshold']:g}) "
            "predicted from each pair's fitted weights by logistic regression (5-fold CV, "
            "a cell's frames in one fold); the rows below `logistic` are chance: the same "
            "classifier on shuffled labels, stratified guessing and always the majority "
            "class.  Read the balanced accuracy (0.5 is chance for two classes).", "",
            _markdown_table(pred[cols]), "",
            "[phenotype_prediction.csv](phenotype_prediction.csv)", ""]


def _markdown_table(df):
    """A DataFrame as a markdown table, floats to 3 decimals (pandas'
    ``to_markdown`` would need the optional ``tabulate`` package)."""
    def cell(v):
        return f"{v:.3f}" if isinstance(v, float) else str(v)
    lines = ["| | " + " | ".join(map(str, df.columns)) + " |",
             "|---" * (len(df.columns) + 1) + "|"]
    lines += ["| " + " | ".join([str(i)] + [cell(v) for v in row]) + " |"
              for i, row in zip(df.index, df.itertuples(index=False))]
    return "\n".join(lines)


def _fig_sweep(plt, model, sweep, phenotype):
    from .real import _title
    fig, ax = plt.subplots(figsize=(6, 3.8), constrained_layout=True)
    s = sweep.sel(phenotype=phenotype)
    for j in range(s.sizes["component"]):
        ax.plot(s["weight"].values, s.values[j], label=_title(model, j))
    ax.axhline(1 / sweep.sizes["phenotype"], color="0.5", ls=":", lw=0.8,
               label="uniform score")
    ax.set_xlabel("motif weight w")
    ax.set_ylabel(f"'{phenotype}' score (frequency-normalised kNN)")
    ax.set_title(f"weight sweep: {sweep.attrs.get('title', '')}", fontsize=8)
    ax.legend(fontsize=7)
    return fig


def _fig_extremes(plt, model, ext, phenotype, title):
    from .real import _title
    J = model.n_components
    ext = ext.rename(columns={"source_feature": "feature", f"score_min_{phenotype}": "score_min",
                              f"score_max_{phenotype}": "score_max",
                              f"score_mean_{phenotype}": "score_mean"})
    feats = list(dict.fromkeys(ext["feature"]))
    fig, axes = plt.subplots(1, J, figsize=(2.6 * J + 1, 0.3 * len(feats) + 2), sharey=True,
                             squeeze=False, constrained_layout=True)
    y = np.arange(len(feats))
    for j in range(J):
        e = ext[ext["component"] == j].set_index("feature").loc[feats]
        ax = axes[0, j]
        ax.hlines(y, e["score_min"], e["score_max"], color="0.6", lw=1)
        ax.scatter(e["score_min"], y, color="C0", s=14, label="feature at its minimum")
        ax.scatter(e["score_max"], y, color="C3", s=14, label="feature at its maximum")
        ax.axvline(float(e["score_mean"].iloc[0]), color="0.3", ls=":", lw=0.8,
                   label="all at the mean")
        ax.set_title(_title(model, j), fontsize=8)
        ax.set_xlabel(f"'{phenotype}' score at w = 2", fontsize=7)
    axes[0, 0].set_yticks(y)
    axes[0, 0].set_yticklabels(feats, fontsize=7)
    axes[0, 0].legend(fontsize=6, loc="lower left")
    fig.suptitle(title, fontsize=8)
    return fig
