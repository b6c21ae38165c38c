"""Labels of a fit whose populations have different feature sets.

With population feature spaces (:mod:`licchie.fit.spaces`) the effects are
labeled per population: ``components_["target_effect"]`` and
``["source_effect"]`` are (population, component, feature), NaN where the
population lacks the feature (populations with the same feature set share
their effects).  Motifs, interaction matrices and predictions are built from
those labels, so a saved and reloaded model needs nothing else.  One feature
set keeps the outputs of :mod:`licchie.labels` unchanged.
"""
from __future__ import annotations

import numpy as np
import xarray as xr

from . import fit as F


def check_spaces(model, obs, spaces):
    """Reject what the population feature spaces do not support, with the fix."""
    from .params import resolve_solver_options

    if model.init in ("groups", "classes"):
        raise NotImplementedError(
            f"init={model.init!r} is not available when populations have different "
            "feature sets (MODEL.md 'Populations'); use init='auto', 'search' or "
            "'parafac', or keep only the features every population has.")
    if model._gains():
        raise NotImplementedError(
            "target_gain=True is not available when populations have different feature "
            "sets; use target_gain='auto' (checks whether gains are needed and warns) or "
            "False, or keep only the features every population has.")
    if resolve_solver_options(model.solver_options)["class_restarts"] > 0:
        raise NotImplementedError(
            "solver_options['class_restarts'] is not available when populations have "
            "different feature sets; set it to 0.")
    m = spaces.features.sum(axis=1)
    used = np.bincount(spaces.pair_class, minlength=spaces.n_classes) > 0
    sizes = spaces.class_sizes()
    biggest = int(sizes[used].max())
    if model.n_components > biggest:
        names = obs.population_names
        sets = "; ".join(f"{names[p]}: {int(m[s])}" for p, s in
                         enumerate(spaces.population_space) if s >= 0)
        raise ValueError(
            f"n_components={model.n_components} is larger than the data can support: "
            f"the largest block of an interaction class has {biggest} entries (features "
            f"per population: {sets}). Use n_components <= {biggest} (typically far "
            "fewer).")


def _space_attributes(obs, pairs, res, spaces):
    """Prediction, targets, noise variance, source excitation and the labeled
    effects of a fit with feature spaces (see :func:`licchie.labels.fitted_attributes`).

    The source excitation of a motif is the smallest over the source spaces
    that its pairs use (each computed on that space's features).
    """
    from .labels import EXCITATION_SNR

    X0 = F.zero_filled(obs.features)
    pred = spaces.predict(X0, pairs.tgt_ptr, pairs.src, res.W, pairs.gain, res.C, res.R)
    y = obs.features[pairs.tgt_obs]
    fin = np.isfinite(y)
    pred[~fin] = np.nan
    noise_var = float(np.mean((y - pred)[fin] ** 2)) if fin.any() else 0.0
    J = res.W.shape[1]
    src_space = spaces.class_space[spaces.pair_class, 1]
    exc = np.full(J, np.nan)
    for q in range(spaces.n_spaces):
        sel = src_space == q
        if not sel.any():
            continue
        f = spaces.features[q]
        Z = pairs.gain[sel, None] * X0[pairs.src[sel]][:, f]
        e = F.source_excitation(Z, res.W[sel], res.R[q][f], noise_var, EXCITATION_SNR)
        exc = np.fmin(exc, e)
    effects = {}
    for name, Fx in (("target_effect", res.C), ("source_effect", res.R)):
        out = np.full((len(obs.population_names), J, Fx.shape[1]), np.nan)
        for p, s in enumerate(spaces.population_space):
            if s >= 0:
                out[p][:, spaces.features[s]] = Fx[s].T[:, spaces.features[s]]
        effects[name] = (("population", "component", "feature"), out)
    return pred, y, noise_var, exc, effects


def _effects(model):
    """``(populations, C, R, has)``: C, R float64 (n_pop, d, J) with NaN, has
    bool (n_pop, d) the features of each population."""
    comps = model.components_
    pops = [str(p) for p in comps["population"].values]
    C = comps["target_effect"].transpose("population", "feature", "component").values
    R = comps["source_effect"].transpose("population", "feature", "component").values
    has = np.isfinite(C).all(axis=2)
    return pops, C, R, has


def population_motifs(model):
    """``M_j`` per (target population, source population): xarray.DataArray
    (component, target_population, source_population, target_feature,
    source_feature), NaN on the features a population lacks."""
    pops, C, R, _ = _effects(model)
    M = np.einsum("pij,qmj->jpqim", C, R)
    feat = list(model.components_["feature"].values)
    comps = model.components_
    return xr.DataArray(M, dims=("component", "target_population", "source_population",
                                 "target_feature", "source_feature"),
                        coords={"component": comps["component"].values,
                                "target_population": pops, "source_population": pops,
                                "target_feature": feat, "source_feature": feat,
                                "stability": ("component", model.stability_.values),
                                "source_excitation": (
                                    "component", comps["source_excitation"].values)},
                        name="motif")


def _pair_populations(pops, names, what):
    index = {p: k for k, p in enumerate(pops)}
    unknown = sorted(set(map(str, names)) - set(index))
    if unknown:
        raise ValueError(f"{what} population(s) {unknown} were not in the training data; "
                         f"the model has effects for {pops} only.")
    return np.array([index[str(n)] for n in names], dtype=np.int64)


def population_interactions(model, Wsel):
    """:meth:`LICCHIE.interaction_matrices` with population feature sets:
    each pair's ``A_e`` from its populations' effects, NaN on the target
    features (rows) and source features (columns) its populations lack."""
    pops, C, R, has = _effects(model)
    C0, R0 = np.nan_to_num(C), np.nan_to_num(R)
    tp = _pair_populations(pops, Wsel["target_population"].values, "Target")
    sp = _pair_populations(pops, Wsel["source_population"].values, "Source")
    W = np.ascontiguousarray(Wsel.values, dtype=np.float64)
    d = C.shape[1]
    B = np.zeros((W.shape[0], d, d))
    for p in np.unique(tp):
        for q in np.unique(sp[tp == p]):
            idx = np.flatnonzero((tp == p) & (sp == q))
            Bc = F.K.lowrank_reconstruct(np.ascontiguousarray(W[idx]),
                                         np.ascontiguousarray(C0[p]),
                                         np.ascontiguousarray(R0[q]))
            Bc[:, ~has[p], :] = np.nan
            Bc[:, :, ~has[q]] = np.nan
            B[idx] = Bc
    feat = list(model.components_["feature"].values)
    coords = {k: v for k, v in Wsel.coords.items() if "pair" in v.dims}
    return xr.DataArray(B, dims=("pair", "target_feature", "source_feature"),
                        coords={**coords, "target_feature": feat, "source_feature": feat},
                        name="interaction")


def population_predict(model, obs, pairs, W):
    """Low-rank one-step prediction (n_targets, d) with population effects;
    NaN on the features a target's population lacks."""
    pops, C, R, has = _effects(model)
    C0, R0 = np.nan_to_num(C), np.nan_to_num(R)
    names = np.asarray(obs.population_names, dtype=object)
    op = _pair_populations(pops, names, "The data's")[obs.population]
    tp, sp = op[pairs.tgt], op[pairs.src]
    fin = np.isfinite(obs.features)
    for p in np.unique(op):
        missing = has[p] & ~fin[op == p].any(axis=0)
        if missing.any():
            feat = list(model.components_["feature"].values)
            raise ValueError(
                f"Population {pops[p]!r} has no values for feature(s) "
                f"{[str(feat[i]) for i in np.flatnonzero(missing)]}, which it had in the "
                "training data; pass data with the same features per population.")
    X0 = F.zero_filled(obs.features)
    out = np.zeros((pairs.tgt_ptr.shape[0] - 1, X0.shape[1]))
    for p in np.unique(tp):
        for q in np.unique(sp[tp == p]):
            Wc = np.zeros_like(W)
            sel = (tp == p) & (sp == q)
            Wc[sel] = W[sel]
            out += F.K.predict_lowrank(X0, pairs.tgt_ptr, pairs.src, pairs.gain, Wc,
                                       np.ascontiguousarray(C0[p]),
                                       np.ascontiguousarray(R0[q]))
    out[~has[op[pairs.tgt_obs]]] = np.nan
    return out
