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

__all__ = ["class_weight_summary", "source_extremes", "source_feature_extremes"]


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


def _source_table(model, X, population):
    """Observations of ``X`` (optionally one population) with their features in
    original and model units and their labels."""
    from .. import scaling as S
    from ..data import as_recording
    from ..labels import time_labels

    raw = as_recording(X)
    obs = raw.obs
    z = S.scaled_recording(model, raw).obs.features
    keep = np.all(np.isfinite(obs.features), axis=1)
    pops = np.asarray(obs.population_names, dtype=object)[obs.population]
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
    info, x, z, feat = _source_table(model, X, source_population)
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
    Everything in the model's units.

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

    Returns
    -------
    pandas.DataFrame indexed by source feature
        ``score_min_<phenotype>``, ``score_max_<phenotype>`` (frequency-
        normalised kNN scores), ``difference_<phenotype>`` (max - min), and
        ``value_min``, ``value_max`` (the feature's extremes, original units).
    """
    from .. import scaling as S
    from ..sweeps import _labelled_states, frequency_normalised_scores

    model._check_fitted()
    j = int(component)
    J = model.components_.sizes["component"]
    if not 0 <= j < J:
        raise ValueError(f"component {component} out of range: the model has {J} motifs.")
    _, x, z, feat = _source_table(model, X, source_population)
    # the labelled states in the model's units
    zds = X if getattr(model, "scaling_", None) is None else S.scaled_recording(
        model, X).to_dataset()
    ref, ref_lab = _labelled_states(zds, labels, target_population)
    c = model.components_["target_effect"].values[j]
    r = model.components_["source_effect"].values[j]
    base = ref.mean(axis=0)
    mean = z.mean(axis=0)
    rows = {}
    queries = []
    for i, _ in enumerate(feat):
        for v in (z[:, i].min(), z[:, i].max()):
            s = mean.copy()
            s[i] = v
            queries.append(base + weight * (r @ s) * c)
    classes, q = frequency_normalised_scores(ref, ref_lab, np.array(queries), n_neighbors)
    for i, name in enumerate(feat):
        row = {"value_min": float(x[:, i].min()), "value_max": float(x[:, i].max())}
        for k, cl in enumerate(classes):
            lo, hi = q[2 * i, k], q[2 * i + 1, k]
            row.update({f"score_min_{cl}": lo, f"score_max_{cl}": hi,
                        f"difference_{cl}": hi - lo})
        rows[name] = row
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "source_feature"
    out.attrs.update(component=j, weight=float(weight))
    return out
