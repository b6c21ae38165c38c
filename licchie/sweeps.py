"""Weight sweeps: from motifs to phenotypes (paper §5.3, MODEL.md "Evaluation").

For a motif ``M_j = c_j r_jᵀ`` its weight ``w`` is raised from 0 to 2 and
applied to observed source states; every predicted target state is scored
with a distance-weighted k-nearest-neighbour classifier trained on observed,
labelled states (paper: k = 150), normalised by phenotype frequency.  The
curve of a phenotype's score against ``w`` says whether turning the motif up
moves targets toward that phenotype.

Choices beyond the paper (which does not say what the effect is added to):

* The predicted target is ``baseline + w · c_j (r_jᵀ x_src)``: the motif's
  effect on top of a baseline state.  ``baseline="mean"`` (default) is the
  mean labelled state of the target population, so that ``w = 0`` scores a
  typical target; ``"zero"`` uses the effect alone (the paper read
  literally); an array gives your own baseline.
* "Normalised by phenotype frequency": the classifier's distance-weighted
  class fractions are divided by each phenotype's share of the labelled
  states and renormalised to sum to one, so that a rare phenotype (dying
  cells, polarised NK cells) is not swamped by the common one.  At a query
  far from every labelled state the scores therefore tend to the uniform
  ``1 / n_phenotypes``, not to the frequencies.
* Scores are averaged over the sources (at most ``max_sources``, drawn with
  ``random_state``).

Motifs are only worth sweeping when the fit can tell them apart: every
result carries the model's stability per motif as a coordinate.
"""
from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = ["weight_sweep", "weight_sweep_states", "motif_effects"]


def motif_effects(model, target_population=None, source_population=None):
    """The motifs' effects between two populations, in the model's units.

    The one place that reads ``c_j`` and ``r_j`` for a population pair: with
    population feature spaces (paper A.2) ``components_`` holds effects per
    population, NaN on the features a population lacks.

    Parameters
    ----------
    model : fitted LICCHIE
    target_population, source_population : str, optional
        Required when the populations have their own feature sets.

    Returns
    -------
    C, R : float64 (J, d)
        Target and source effects (0 on the features the population lacks).
    target_features, source_features : bool (d,)
        The features of the target (source) population.
    """
    comps = model.components_
    C = comps["target_effect"]
    R = comps["source_effect"]
    if "population" not in C.dims:
        C, R = C.values, R.values
        every = np.ones(C.shape[1], dtype=bool)
        return C, R, every, every
    pops = [str(p) for p in comps["population"].values]
    for what, p in (("target_population", target_population),
                    ("source_population", source_population)):
        if p is None or str(p) not in pops:
            raise ValueError(f"{what} must name one of the populations {pops}: their "
                             f"features differ, so each has its own motif effects; got {p!r}.")
    C = C.sel(population=str(target_population)).transpose("component", "feature").values
    R = R.sel(population=str(source_population)).transpose("component", "feature").values
    tf, sf = np.isfinite(C).all(axis=0), np.isfinite(R).all(axis=0)
    return np.nan_to_num(C), np.nan_to_num(R), tf, sf


def _population_mask(ds, population, argument):
    """Cells of ``population`` (all cells when it is None), as a bool (cell,) array."""
    n_cells = ds.sizes["cell"]
    if population is None:
        return np.ones(n_cells, dtype=bool)
    if "population" not in ds:
        raise ValueError(f"{argument} was given but the recording has no "
                         "'population (cell)' variable.")
    pops = np.asarray(ds["population"].values).astype(str)
    if str(population) not in set(pops.tolist()):
        raise ValueError(f"{argument} {population!r} is not in the recording; "
                         f"populations are {sorted(set(pops.tolist()))}.")
    return pops == str(population)


def _seen(X, finite):
    """Observed states: every feature finite, or (``finite=False``, populations
    with their own feature sets) any feature finite."""
    return np.all(np.isfinite(X), axis=-1) if finite else np.any(np.isfinite(X), axis=-1)


def _labelled_states(ds, labels, population=None, finite=True):
    """Observed feature vectors with a label: ``(X (n, d), y (n,) str)``."""
    if not isinstance(ds, xr.Dataset) or "features" not in ds:
        raise TypeError("weight_sweep needs the recording as an xarray.Dataset with a "
                        "'features (cell, time, feature)' variable (MODEL.md, 'Data').")
    if not isinstance(labels, xr.DataArray):
        raise TypeError("labels must be an xarray.DataArray over ('cell',) or "
                        f"('cell', 'time'); got {type(labels).__name__}.")
    if labels.dims not in (("cell",), ("cell", "time")):
        raise ValueError(f"labels must have dims ('cell',) or ('cell', 'time'); got "
                         f"{labels.dims}. Transpose or select so that they match.")
    F = ds["features"].transpose("cell", "time", "feature")
    try:
        lab = labels.reindex_like(F.isel(feature=0, drop=True) if labels.ndim == 2
                                  else F["cell"])
    except Exception as exc:  # pragma: no cover - xarray's own message is clear
        raise ValueError(f"labels could not be aligned with the recording's cells/times: "
                         f"{exc}") from exc
    if labels.ndim == 1:
        lab = lab.broadcast_like(F.isel(feature=0, drop=True))
    lab = lab.transpose("cell", "time").values
    X = F.values
    seen = _seen(X, finite)
    known = np.array([v is not None and v == v and str(v) != "" for v in lab.ravel()],
                     dtype=bool).reshape(lab.shape)
    keep = seen & known
    keep &= _population_mask(ds, population, "target_population")[:, None]
    if not keep.any():
        raise ValueError("No observed state carries a label (after selecting the target "
                         "population): label some observed cells, or check that the "
                         "labels' cell/time coordinates match the recording's.")
    return X[keep], lab[keep].astype(str)


def _source_states(ds, population, finite=True):
    F = ds["features"].transpose("cell", "time", "feature")
    X = F.values
    seen = _seen(X, finite)
    seen &= _population_mask(ds, population, "source_population")[:, None]
    S = X[seen]
    if S.shape[0] == 0:
        raise ValueError("No observed source state to apply the motifs to.")
    return S


def frequency_normalised_scores(reference, labels, queries, n_neighbors):
    """Distance-weighted kNN class fractions, divided by class frequency.

    Parameters
    ----------
    reference : float (n_ref, d)
    labels : str (n_ref,)
    queries : float (n_query, d)
    n_neighbors : int
        Neighbours per query (at most ``n_ref``).

    Returns
    -------
    classes : str (n_classes,)
        Sorted phenotype names.
    scores : float64 (n_query, n_classes)
        Rows sum to one.  A query that coincides with labelled states takes
        their labels only (scikit-learn's rule for zero distances).
    """
    from sklearn.neighbors import KNeighborsClassifier

    k = min(int(n_neighbors), reference.shape[0])
    clf = KNeighborsClassifier(n_neighbors=k, weights="distance", algorithm="auto")
    clf.fit(reference, labels)
    proba = clf.predict_proba(queries)
    prior = np.array([np.mean(labels == c) for c in clf.classes_])
    q = proba / prior
    q /= q.sum(axis=1, keepdims=True)
    return clf.classes_.astype(str), q


def weight_sweep(model, ds, labels, *, components=None, weights=None, n_neighbors=150,
                 source_population=None, target_population=None, baseline="mean",
                 max_sources=500, random_state=0):
    """Score phenotypes of targets as one motif's weight is raised (paper §5.3).

    Parameters
    ----------
    model : fitted LICCHIE
    ds : xarray.Dataset
        Recording (MODEL.md schema) that supplies the source states and the
        labelled reference states; typically data the model was not fitted on.
        For data that is too big as a dense Dataset (e.g. untracked objects),
        pass arrays to :func:`weight_sweep_states` instead.
    labels : xarray.DataArray, dims ("cell",) or ("cell", "time")
        Phenotype of each cell (or observation); missing labels as None, NaN
        or "".
    components : sequence of int, optional
        Motifs to sweep (default all).
    weights : float array (n_weights,), optional
        Default ``np.linspace(0, 2, 20)`` (the paper's 20 steps from 0 to 2).
    n_neighbors : int, default 150
        k of the classifier (the paper's 150; capped at the number of
        labelled states).
    source_population, target_population : str, optional
        Apply the motif to sources of this population; score against labelled
        states of this population (and use its mean as baseline).
    baseline : {"mean", "zero"} or float array (n_features,)
        What the motif's effect is added to (module docstring).
    max_sources : int or None, default 500
        Sources used (a random subset of this size when there are more).
    random_state : int
        Seed of that subset.

    Returns
    -------
    xarray.DataArray (component, weight, phenotype), named ``phenotype_score``
        Mean frequency-normalised score over the sources.  Coordinate
        ``stability (component)`` is the motif's stability across starts:
        read a curve only for a stable motif.
    """
    model._check_fitted()
    feat = [str(f) for f in model.components_["feature"].values]
    if isinstance(ds, xr.Dataset) and "feature" in ds.coords:
        have = [str(f) for f in ds["feature"].values]
        if have != feat:
            raise ValueError(f"The recording's features {have} differ from the fitted "
                             f"features {feat}; pass data with the same features in the "
                             "same order.")
    if getattr(model, "scaling_", None) is not None:
        # the motifs act on states in the model's units (standardize=...)
        from .scaling import scaled_recording
        ds = scaled_recording(model, ds).to_dataset()
    shared = "population" not in model.components_.dims
    ref, ref_lab = _labelled_states(ds, labels, target_population, finite=shared)
    src = _source_states(ds, source_population, finite=shared)
    return weight_sweep_states(model, src, ref, ref_lab, components=components,
                               weights=weights, n_neighbors=n_neighbors, baseline=baseline,
                               max_sources=max_sources, random_state=random_state,
                               target_population=target_population,
                               source_population=source_population)


def weight_sweep_states(model, sources, reference, reference_labels, *, components=None,
                        weights=None, n_neighbors=150, baseline="mean", max_sources=500,
                        random_state=0, target_population=None, source_population=None):
    """:func:`weight_sweep` on plain arrays of states.

    Parameters
    ----------
    model : fitted LICCHIE
    sources : float (n_sources, n_features)
        Source states the motif is applied to (finite), in the model's
        units (standardised by ``model.scaling_`` when the model has
        ``standardize``; :func:`weight_sweep` does that itself).
    reference : float (n_reference, n_features)
        Labelled target states the classifier is trained on (finite).
    reference_labels : (n_reference,)
        Their phenotypes.
    components, weights, n_neighbors, baseline, max_sources, random_state
        As in :func:`weight_sweep`; ``baseline="mean"`` is the mean of
        ``reference``.
    target_population, source_population : str, optional
        Whose effects to use (:func:`motif_effects`); required when the
        populations have their own feature sets.  Then only the target
        population's features are predicted and scored (the reference may
        be NaN elsewhere), and a source feature the source population lacks
        is ignored (it may be NaN).

    Returns
    -------
    xarray.DataArray (component, weight, phenotype), as :func:`weight_sweep`.
    """
    model._check_fitted()
    C, R, tf, sf = motif_effects(model, target_population, source_population)  # (J, d)
    J, d = C.shape
    src = np.asarray(sources, dtype=float)
    ref = np.asarray(reference, dtype=float)
    ref_lab = np.asarray(reference_labels).astype(str)
    if src.ndim == 2 and src.shape[1] == d:
        src = np.where(sf, src, 0.0)  # features the source population lacks: unused
    if ref.ndim == 2 and ref.shape[1] == d:
        ref = np.where(tf, ref, 0.0)  # constant, so no part of the kNN distance
    for name, arr in (("sources", src), ("reference", ref)):
        if arr.ndim != 2 or arr.shape[1] != d:
            raise ValueError(f"{name} must have shape (n, {d}) (the model's features); got "
                             f"{arr.shape}.")
        if arr.shape[0] == 0:
            raise ValueError(f"{name} is empty.")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} holds NaN or infinite values; drop unobserved states "
                             "first.")
    if ref_lab.shape != (ref.shape[0],):
        raise ValueError(f"reference_labels must have one label per reference state "
                         f"({ref.shape[0]}); got shape {ref_lab.shape}.")
    comps = list(range(J)) if components is None else [int(j) for j in np.atleast_1d(components)]
    bad = [j for j in comps if not 0 <= j < J]
    if bad:
        raise ValueError(f"components {bad} out of range: the model has {J} motifs "
                         f"(0..{J - 1}).")
    w = np.linspace(0.0, 2.0, 20) if weights is None else np.asarray(weights, dtype=float)
    if w.ndim != 1 or w.size == 0 or not np.all(np.isfinite(w)):
        raise ValueError("weights must be a non-empty 1-D array of finite numbers.")
    if int(n_neighbors) < 1:
        raise ValueError(f"n_neighbors must be >= 1; got {n_neighbors}.")
    if max_sources is not None and int(max_sources) < 1:
        raise ValueError(f"max_sources must be >= 1 or None; got {max_sources}.")
    rng = np.random.default_rng(random_state)
    if max_sources is not None and src.shape[0] > max_sources:
        src = src[np.sort(rng.choice(src.shape[0], size=int(max_sources), replace=False))]
    if isinstance(baseline, str):
        if baseline == "mean":
            base = ref.mean(axis=0)
        elif baseline == "zero":
            base = np.zeros(d)
        else:
            raise ValueError(f"baseline must be 'mean', 'zero' or an array of "
                             f"{d} numbers; got {baseline!r}.")
    else:
        base = np.asarray(baseline, dtype=float)
        if base.shape != (d,) or not np.all(np.isfinite(base)):
            raise ValueError(f"baseline must be 'mean', 'zero' or {d} finite numbers; "
                             f"got shape {base.shape}.")
    classes = np.unique(ref_lab)
    out = np.empty((len(comps), w.size, classes.size))
    for a, j in enumerate(comps):
        drive = src @ R[j]  # r_j . x_src, (n_src,)
        Q = base[None, None, :] + w[:, None, None] * drive[None, :, None] * C[j][None, None, :]
        _, q = frequency_normalised_scores(ref, ref_lab, Q.reshape(-1, d), n_neighbors)
        out[a] = q.reshape(w.size, src.shape[0], classes.size).mean(axis=1)
    stab = model.stability_.values[comps]
    return xr.DataArray(
        out, dims=("component", "weight", "phenotype"),
        coords={"component": np.asarray(model.components_["component"].values)[comps],
                "weight": w, "phenotype": classes, "stability": ("component", stab)},
        name="phenotype_score",
        attrs={"n_sources": int(src.shape[0]), "n_reference": int(ref.shape[0]),
               "n_neighbors": int(min(int(n_neighbors), ref.shape[0])),
               "baseline": baseline if isinstance(baseline, str) else "array",
               "normalisation": "distance-weighted kNN fractions / phenotype frequency, "
                                "renormalised"})
