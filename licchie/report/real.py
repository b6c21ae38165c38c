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
  ``[phenotype]`` table: ``sweep.png``, the weight sweeps (Fig. 4a), and
  ``source_extremes.png``, the phenotype score at each source feature's
  empirical minimum and maximum at weight 2 (Fig. 4c);
- ``report.md``, the page that links them, with the summary and a table of
  verdicts.

The class summary and source extremes are computed by the small helpers
here (:func:`class_weight_summary`, :func:`source_extremes`); when
:mod:`licchie.evaluate` has equivalents, these are the two to swap.
"""
from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd

__all__ = ["write_real_report", "class_weight_summary", "source_extremes"]


def _class_labels(w):
    """Interaction class of every pair, ``"src -> tgt"`` or ``"self (tgt)"``."""
    src = np.asarray(w["source_population"].values).astype(str)
    tgt = np.asarray(w["target_population"].values).astype(str)
    lab = np.char.add(np.char.add(src, " -> "), tgt).astype(object)
    is_self = np.asarray(w["is_self"].values).astype(bool)
    lab[is_self] = np.char.add(np.char.add("self (", tgt[is_self]), ")")
    return lab


def class_weight_summary(model):
    """Pair weights summarised per interaction class and motif (Fig. 3c).

    Parameters
    ----------
    model : fitted LICCHIE

    Returns
    -------
    pandas.DataFrame, one row per (class, component)
        ``class`` (``"src -> tgt"``, or ``"self (tgt)"`` for self pairs),
        ``component``, ``n_pairs``, ``mean``, ``median``, ``q10``, ``q90``,
        ``positive_fraction``.
    """
    w = model.weights_
    lab = _class_labels(w)
    W = np.asarray(w.values)
    rows = []
    for c in sorted(set(lab.tolist())):
        m = lab == c
        for j in range(W.shape[1]):
            v = W[m, j]
            rows.append(dict(**{"class": c}, component=j, n_pairs=int(m.sum()),
                             mean=float(v.mean()), median=float(np.median(v)),
                             q10=float(np.quantile(v, 0.1)), q90=float(np.quantile(v, 0.9)),
                             positive_fraction=float(np.mean(v > 0))))
    return pd.DataFrame(rows)


def source_extremes(model, sources, reference, labels, phenotype, weight=2.0,
                    n_neighbors=150):
    """Phenotype score with each source feature at its minimum and maximum (Fig. 4c).

    For motif ``j`` and source feature ``f``, the source state is the mean
    source with ``f`` set to its empirical minimum (maximum) over
    ``sources``; the target is ``mean(reference) + weight * c_j (r_jᵀ x)``,
    scored as in :func:`licchie.weight_sweep_states`.

    Parameters
    ----------
    model : fitted LICCHIE
    sources : float (n_sources, d)
    reference : float (n_reference, d);  labels : (n_reference,)
    phenotype : str
        The label whose score is reported.
    weight : float, default 2 (the paper's maximal activation)

    Returns
    -------
    pandas.DataFrame, one row per (component, feature)
        ``component``, ``feature``, ``score_min``, ``score_max``, ``score_mean``
        (all features at their means).
    """
    from ..sweeps import frequency_normalised_scores
    C = model.components_["target_effect"].values
    R = model.components_["source_effect"].values
    feats = [str(f) for f in model.components_["feature"].values]
    src = np.asarray(sources, dtype=float)
    ref = np.asarray(reference, dtype=float)
    lab = np.asarray(labels).astype(str)
    mean_src, base = src.mean(axis=0), ref.mean(axis=0)
    lo, hi = src.min(axis=0), src.max(axis=0)
    J, d = C.shape
    queries, keys = [], []
    for j in range(J):
        queries.append(base + weight * C[j] * (R[j] @ mean_src))
        keys.append((j, None, "mean"))
        for f in range(d):
            for end, val in (("min", lo[f]), ("max", hi[f])):
                x = mean_src.copy()
                x[f] = val
                queries.append(base + weight * C[j] * (R[j] @ x))
                keys.append((j, f, end))
    classes, q = frequency_normalised_scores(ref, lab, np.asarray(queries), n_neighbors)
    if phenotype not in classes:
        raise ValueError(f"phenotype {phenotype!r} is not among the labels {list(classes)}.")
    score = q[:, list(classes).index(phenotype)]
    rows = {}
    for (j, f, end), s in zip(keys, score):
        if f is None:
            mean_score = s
            continue
        row = rows.setdefault((j, f), dict(component=j, feature=feats[f]))
        row["score_" + end] = float(s)
        row["score_mean"] = float(mean_score)
    return pd.DataFrame(list(rows.values()))


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


def _motif_block(model, j, target_population, source_population, rows, cols):
    """``M_j`` between two populations, rows ``rows`` (target features) by
    columns ``cols`` (source features).  The one place that reads the motif's
    effects for a population pair: with population-specific effects (paper
    A.2) this is what changes."""
    feats = [str(f) for f in model.components_["feature"].values]
    M = model.motifs().values[j]
    return M[np.ix_([feats.index(f) for f in rows], [feats.index(f) for f in cols])]


def _fig_motif(plt, model, j, pop_features, vmax):
    feats = [str(f) for f in model.components_["feature"].values]
    panels = [("all populations", None, None, feats, feats)]
    if pop_features and len({tuple(v) for v in pop_features.values()}) > 1:
        panels = [(f"{s} -> {t}", t, s, pop_features[t], pop_features[s])
                  for t, s in _population_pairs(model)
                  if t in pop_features and s in pop_features]
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
    fig.suptitle(f"{_title(model, j)}: {_reason(model, j)}", fontsize=8)
    fig.colorbar(im, ax=axes, shrink=0.6)
    return fig


def _fig_motifs(plt, model, vmax):
    feats = [str(f) for f in model.components_["feature"].values]
    J = model.n_components
    fig, axes = plt.subplots(1, J, figsize=(3.3 * J + 0.8, 3.9), squeeze=False,
                             constrained_layout=True)
    M = model.motifs().values
    for j in range(J):
        im = _motif_panel(axes[0, j], M[j], feats, feats, vmax, _title(model, j))
        if j:
            axes[0, j].set_ylabel("")
    fig.colorbar(im, ax=axes, shrink=0.7)
    return fig


def _fig_class_weights(plt, model, summary):
    classes = sorted(summary["class"].unique())
    J = model.n_components
    mean = summary.pivot(index="class", columns="component", values="mean").loc[classes]
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
    lab = _class_labels(model.weights_)
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
    lab = _class_labels(w)
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


def _fig_sweep(plt, model, sweep, phenotype):
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
    J = model.n_components
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


def _data_for_sweeps(model, cfg, frames, log):
    """Source and labelled reference states of the config's [phenotype]."""
    from ..config import config_recording, phenotype_labels
    _, table = config_recording(cfg, log=log, frames=frames)
    feats = [str(f) for f in model.components_["feature"].values]
    missing = [f for f in feats if f not in table.columns]
    if missing:
        raise ValueError(f"the data of {cfg.path} lack the model's feature(s) {missing}; pass "
                         "--data with the config the model was fitted from.")
    labels = phenotype_labels(cfg, table)
    pop_feats = table.attrs["population_features"]
    ph = cfg.phenotype

    def states(pop):
        rows = table[table["population"] == pop]
        own = rows[pop_feats[pop]].notna().all(axis=1).to_numpy()
        # a feature the population does not have is 0 in z units (its mean)
        return rows[feats].to_numpy(dtype=float)[own].copy(), rows.index.to_numpy()[own]

    ref, ref_rows = states(ph["population"])
    ref = np.nan_to_num(ref, nan=0.0)
    lab = labels[ref_rows]
    keep = np.asarray([x is not None for x in lab])
    src_pop = ph.get("source_population", ph["population"])
    src, _ = states(src_pop)
    return np.nan_to_num(src, nan=0.0), ref[keep], lab[keep].astype(str), src_pop


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
    vmax = float(np.abs(model.motifs().values).max()) or 1.0

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
    save("motifs.png", _fig_motifs(plt, model, vmax), "all motifs, one colour scale (Fig. S3)")
    per_pop = bool(pop_features) and len({tuple(v) for v in pop_features.values()}) > 1
    for j in range(model.n_components):
        save(f"motif_{j}.png", _fig_motif(plt, model, j, pop_features, vmax),
             f"motif {j}" + (", one panel per population pair" if per_pop else "")
             + f", with its verdict's reason (Fig. 3b)")
    summary = class_weight_summary(model)
    summary.to_csv(os.path.join(out, "class_weights.csv"), index=False)
    written.append(os.path.join(out, "class_weights.csv"))
    save("class_weights.png", _fig_class_weights(plt, model, summary),
         "weights by interaction class (Fig. 3c)")
    save("class_weights_time.png", _fig_class_time(plt, model),
         "mean weight per class over time")
    notes = []
    if cfg is not None and cfg.phenotype:
        ph = cfg.phenotype
        phen = ph.get("above", "high")
        src, ref, lab, src_pop = _data_for_sweeps(
            model, cfg, frames or meta["frames"] or cfg.data.get("frames"), log)
        title = (f"{src_pop} sources -> {ph['population']} targets; '{phen}' = "
                 f"{ph['feature']} > {ph['threshold']:g}")
        if len(np.unique(lab)) < 2:
            notes.append(f"Weight sweeps skipped: every labelled {ph['population']} state "
                         f"is '{lab[0] if len(lab) else 'none'}'.")
        else:
            sweep = weight_sweep_states(model, src, ref, lab, n_neighbors=150,
                                        random_state=0)
            sweep.attrs["title"] = title
            sweep.to_netcdf(os.path.join(out, "sweep.nc"))
            written.append(os.path.join(out, "sweep.nc"))
            save("sweep.png", _fig_sweep(plt, model, sweep, phen),
                 f"weight sweeps, {title} (Fig. 4a)")
            ext = source_extremes(model, src, ref, lab, phen)
            ext.to_csv(os.path.join(out, "source_extremes.csv"), index=False)
            written.append(os.path.join(out, "source_extremes.csv"))
            save("source_extremes.png", _fig_extremes(plt, model, ext, phen, title),
                 "source-feature extremes at w = 2 (Fig. 4c)")
    elif cfg is not None:
        notes.append("Weight sweeps and source extremes skipped: the config has no "
                     "[phenotype] table (examples/behav3d.toml shows one).")
    else:
        notes.append(f"Weight sweeps and source extremes skipped: {why_no_data}; pass "
                     "--data config.toml.")
    path = os.path.join(out, "report.md")
    with open(path, "w") as fh:
        fh.write(_markdown(model, model_path, feats, figs, notes))
    written.append(path)
    return written


def _markdown(model, model_path, feats, figs, notes):
    C = model.components_["target_effect"].values
    R = model.components_["source_effect"].values
    lines = [f"# LICCHIE report: {os.path.basename(os.fspath(model_path))}", "",
             "Read only `high` motifs biologically: `medium` and `low` ones are not pinned "
             "down by these data (README, \"Reading the diagnostics\").  Features are in "
             "z units of their population.", "",
             "| motif | verdict | stability | reason | target effect (largest) | "
             "source effect (largest) |", "|---|---|---|---|---|---|"]
    for j in range(model.n_components):
        lines.append(f"| M{j} | {model.components_['verdict'].values[j]} | "
                     f"{float(model.stability_.values[j]):.2f} | {_reason(model, j)} | "
                     f"{_top(C[j], feats)} | {_top(R[j], feats)} |")
    lines += ["", "## Figures", ""]
    lines += [f"- [{what}]({name})" for name, what in figs]
    lines += ["- [class_weights.csv](class_weights.csv): the numbers of the class figure"]
    lines += [""] + [f"{n}" for n in notes] + ["", "## Fit summary", "", "```",
                                                model.summary(), "```", ""]
    return "\n".join(lines)
