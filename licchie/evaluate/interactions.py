"""Weights by interaction class and the sources that drive a motif (paper Figs. 3c, 4c).

* :func:`class_weight_summary` -- mean, spread and quantiles of ``W`` per
  interaction class (target population <- source population, and the self
  pair of each population) and motif (Fig. 3c).
* :func:`source_extremes` -- for one motif, the source observations with
  the most extreme source-effect projections ``r_j^T x`` and their feature
  values (which source states drive the motif hardest, either way).
* :func:`source_feature_extremes` -- the paper's Fig. 4c: for each source
  feature at its observed minimum and maximum (the others at their mean),
  the phenotype score of a target under the motif at weight ``w``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from .phenotypes import interaction_class

__all__ = ["class_weight_summary", "source_extremes", "source_feature_extremes",
           "source_feature_extremes_states"]


def class_weight_summary(weights, quantiles=(0.05, 0.25, 0.5, 0.75, 0.95)):
    """Weights per interaction class and motif (paper Fig. 3c).

    Parameters
    ----------
    weights : xarray.DataArray (pair, component)
        ``LICCHIE.weights_`` or ``LICCHIE.transform(X)``.
    quantiles : sequence of float in [0, 1]

    Returns
    -------
    pandas.DataFrame, MultiIndex (``interaction_class``, ``component``)
        ``n_pairs``, ``mean``, ``std``, ``mean_abs``, ``nonzero`` (fraction
        of pairs with a non-zero weight) and one column ``q<quantile>`` per
        quantile.  Classes are ``"P<-Q"`` (target P, source Q) and
        ``"self:P"``.  ``.to_xarray()`` gives the (class, component) arrays.
    """
    if not isinstance(weights, xr.DataArray) or "pair" not in weights.dims:
        raise TypeError("weights must be a (pair, component) DataArray such as "
                        "LICCHIE.weights_.")
    q = np.asarray(quantiles, dtype=float)
    if q.ndim != 1 or np.any((q < 0) | (q > 1)):
        raise ValueError(f"quantiles must be numbers in [0, 1]; got {quantiles!r}.")
    W = np.asarray(weights.transpose("pair", "component").values, dtype=float)
    comp = weights["component"].values
    cls = interaction_class(weights)
    rows = []
    for c in sorted(set(cls.tolist())):
        Wc = W[cls == c]
        qs = np.quantile(Wc, q, axis=0) if Wc.shape[0] else np.full((q.size, W.shape[1]),
                                                                      np.nan)
        for j, name in enumerate(comp):
            row = {"interaction_class": c, "component": name, "n_pairs": Wc.shape[0],
                   "mean": Wc[:, j].mean(), "std": Wc[:, j].std(),
                   "mean_abs": np.abs(Wc[:, j]).mean(), "nonzero": np.mean(Wc[:, j] != 0)}
            row.update({f"q{v:g}": qs[k, j] for k, v in enumerate(q)})
            rows.append(row)
    return pd.DataFrame(rows).set_index(["interaction_class", "component"])


def _source_table(model, X, population, finite=True):
    """Observations of ``X`` (optionally one population) with their features in
    original and model units and their labels.  ``finite=False`` keeps
    observations that are NaN only on features their population lacks."""
    from .. import scaling as S
    from ..data import as_recording
    from ..labels import time_labels

    raw = as_recording(X)
    obs = raw.obs
    z = S.scaled_recording(model, raw).obs.features
    pops = np.asarray(obs.population_names, dtype=object)[obs.population]
    fin = np.isfinite(obs.features)
    if finite:
        keep = fin.all(axis=1)
    else:  # a population's features are those ever finite for it (MODEL.md)
        has = np.zeros((len(obs.population_names), fin.shape[1]), dtype=bool)
        np.logical_or.at(has, obs.population, fin)
        keep = (fin | ~has[obs.population]).all(axis=1)
    if population is not None:
        if str(population) not in obs.population_names:
            raise ValueError(f"source_population {population!r} is not in the data; "
                             f"populations are {list(obs.population_names)}.")
        keep &= pops == str(population)
    idx = np.flatnonzero(keep)
    if idx.size == 0:
        raise ValueError("No observed source state to project.")
    info = pd.DataFrame({
        "cell": obs.cell_ids[obs.cell[idx]],
        "time": time_labels(obs, idx),
        "session": np.asarray(obs.session_names, dtype=object)[obs.session[idx]],
        "population": pops[idx]})
    return info, obs.features[idx], z[idx], list(obs.feature_names)


def source_extremes(model, X, component, n=10, source_population=None):
    """The source observations that drive one motif hardest (either sign).

    The drive of a source state on motif j is its projection on the source
    effect, ``r_j^T x`` (x in the model's units: standardised when the model
    has ``standardize``); a pair's contribution is ``W[e, j] (r_j^T x)
    c_j``.

    Parameters
    ----------
    model : fitted LICCHIE
    X : recording (anything ``LICCHIE.predict`` takes)
        Supplies the source states (every observation of
        ``source_population``, or of all populations).
    component : int
    n : int, default 10
        Observations at each end.
    source_population : str, optional

    Returns
    -------
    pandas.DataFrame
        ``2 n`` rows: ``extreme`` ("high" then "low"), ``rank`` (1 = most
        extreme), ``projection``, ``quantile`` (of the projection among all
        the sources), ``cell``, ``time``, ``session``, ``population`` and
        the features in original units.  ``attrs["source_effect"]`` holds
        ``r_j`` by feature.
    """
    model._check_fitted()
    J = model.components_.sizes["component"]
    j = int(component)
    if not 0 <= j < J:
        raise ValueError(f"component {component} out of range: the model has {J} motifs.")
    if int(n) < 1:
        raise ValueError(f"n must be >= 1; got {n}.")
    from ..sweeps import motif_effects
    info, x, z, feat = _source_table(model, X, source_population, finite=False)
    if "population" in model.components_.dims:
        # each source projects on its own population's source effect
        r_rows = np.zeros_like(z)
        for p in np.unique(info["population"].to_numpy()):
            m = info["population"].to_numpy() == p
            r_rows[m] = motif_effects(model, p, p)[1][j]
        proj = np.sum(np.nan_to_num(z) * r_rows, axis=1)
        r = r_rows[0] if source_population is not None else np.full(len(feat), np.nan)
    else:
        r = model.components_["source_effect"].values[j]
        proj = z @ r
    order = np.argsort(proj, kind="stable")
    k = min(int(n), proj.size)
    high, low = order[::-1][:k], order[:k]
    rank = np.argsort(np.argsort(proj, kind="stable"), kind="stable")
    frames = []
    for name, rows in (("high", high), ("low", low)):
        f = info.iloc[rows].reset_index(drop=True)
        f.insert(0, "projection", proj[rows])
        f.insert(0, "rank", np.arange(1, rows.size + 1))
        f.insert(0, "extreme", name)
        f.insert(3, "quantile", (rank[rows] + 0.5) / proj.size)
        f[feat] = x[rows]
        frames.append(f)
    out = pd.concat(frames, ignore_index=True)
    out.attrs["component"] = j
    out.attrs["source_effect"] = dict(zip(feat, map(float, r)))
    return out


def source_feature_extremes(model, X, labels, component, *, weight=2.0,
                            source_population=None, target_population=None,
                            n_neighbors=150):
    """Phenotype scores with each source feature at its extremes (paper Fig. 4c).

    For each source feature: a source state with that feature at its
    observed minimum (then maximum) over ``source_population`` and every
    other feature at its mean; the motif at ``weight`` acts on it,
    ``target = baseline + weight * c_j (r_j^T x_src)`` with the baseline the
    mean labelled target state, and the target is scored like a weight sweep
    (:func:`licchie.sweeps.frequency_normalised_scores`, k = ``n_neighbors``).
    Everything in the model's units (:func:`source_feature_extremes_states`
    on the recording's states).

    Parameters
    ----------
    model : fitted LICCHIE
    X : xarray.Dataset
        Recording with the source states and the labelled targets.
    labels : xarray.DataArray ("cell",) or ("cell", "time")
        Phenotype per cell or observation (as in ``weight_sweep``).
    component : int
    weight : float, default 2.0
        The paper's maximal activation.
    source_population, target_population : str, optional
        Required when the populations have their own feature sets.

    Returns
    -------
    pandas.DataFrame indexed by source feature (those of the source population)
        ``score_min_<phenotype>``, ``score_max_<phenotype>`` (frequency-
        normalised kNN scores), ``difference_<phenotype>`` (max - min),
        ``score_mean_<phenotype>`` (every feature at its mean), and
        ``value_min``, ``value_max`` (the feature's extremes, original units).
    """
    from .. import scaling as S
    from ..sweeps import _labelled_states

    model._check_fitted()
    _check_component(model, component)
    _, x, z, _ = _source_table(model, X, source_population, finite=False)
    # the labelled states in the model's units
    zds = X if getattr(model, "scaling_", None) is None else S.scaled_recording(
        model, X).to_dataset()
    ref, ref_lab = _labelled_states(zds, labels, target_population, finite=False)
    out = source_feature_extremes_states(
        model, z, ref, ref_lab, components=[component], weight=weight,
        target_population=target_population, source_population=source_population,
        n_neighbors=n_neighbors, sources_original=x)
    out = out.drop(columns="component").set_index("source_feature")
    out.attrs.update(component=int(component), weight=float(weight))
    return out


def _check_component(model, component):
    J = model.components_.sizes["component"]
    if not 0 <= int(component) < J:
        raise ValueError(f"component {component} out of range: the model has {J} motifs.")


def source_feature_extremes_states(model, sources, reference, reference_labels, *,
                                   components=None, weight=2.0, target_population=None,
                                   source_population=None, n_neighbors=150,
                                   sources_original=None):
    """:func:`source_feature_extremes` on plain arrays of states, for several motifs.

    Parameters
    ----------
    model : fitted LICCHIE
    sources : float (n_sources, d)
        Source states in the model's units (NaN allowed on the features the
        source population lacks).
    reference : float (n_reference, d);  reference_labels : (n_reference,)
        Labelled target states in the model's units (NaN allowed on the
        features the target population lacks).
    components : sequence of int, optional
        Default every motif.
    weight, n_neighbors
        As in :func:`source_feature_extremes`.
    target_population, source_population : str, optional
        Whose effects (:func:`licchie.sweeps.motif_effects`); required when
        the populations have their own feature sets.
    sources_original : float (n_sources, d), optional
        The same sources in original units, for ``value_min``/``value_max``
        (default ``sources``).

    Returns
    -------
    pandas.DataFrame, one row per (component, source feature of the source population)
        ``component``, ``source_feature``, ``value_min``, ``value_max`` and,
        per phenotype, ``score_min_<p>``, ``score_max_<p>``,
        ``difference_<p>``, ``score_mean_<p>``.
    """
    from ..sweeps import frequency_normalised_scores, motif_effects

    model._check_fitted()
    C, R, tf, sf = motif_effects(model, target_population, source_population)
    feat = [str(f) for f in model.components_["feature"].values]
    comps = range(C.shape[0]) if components is None else [int(j) for j in components]
    for j in comps:
        _check_component(model, j)
    z = np.where(sf, np.asarray(sources, dtype=float), 0.0)
    x = z if sources_original is None else np.asarray(sources_original, dtype=float)
    ref = np.where(tf, np.asarray(reference, dtype=float), 0.0)[:, tf]
    lab = np.asarray(reference_labels).astype(str)
    for name, arr in (("sources", z), ("reference", ref)):
        if arr.shape[0] == 0 or not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be non-empty and finite on the population's "
                             "features; drop unobserved states first.")
    base, mean = ref.mean(axis=0), z.mean(axis=0)
    own = np.flatnonzero(sf)
    queries = []
    for j in comps:
        c = C[j][tf]
        queries.append(base + weight * (R[j] @ mean) * c)
        for i in own:
            for v in (z[:, i].min(), z[:, i].max()):
                s = mean.copy()
                s[i] = v
                queries.append(base + weight * (R[j] @ s) * c)
    classes, q = frequency_normalised_scores(ref, lab, np.array(queries), n_neighbors)
    rows, k = [], 0
    for j in comps:
        at_mean = q[k]
        k += 1
        for i in own:
            row = {"component": j, "source_feature": feat[i],
                   "value_min": float(np.nanmin(x[:, i])),
                   "value_max": float(np.nanmax(x[:, i]))}
            for c_, cl in enumerate(classes):
                lo, hi = q[k, c_], q[k + 1, c_]
                row.update({f"score_min_{cl}": lo, f"score_max_{cl}": hi,
                            f"difference_{cl}": hi - lo, f"score_mean_{cl}": at_mean[c_]})
            rows.append(row)
            k += 2
    out = pd.DataFrame(rows)
    out.attrs.update(weight=float(weight))
    return out
