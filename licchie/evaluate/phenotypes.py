"""Phenotypes from the weights (paper Fig. 4b).

* :func:`phenotype_prediction` -- cross-validated logistic regression of a
  target phenotype from the weights of its pairs (per pair, or per target
  observation), accuracy and balanced accuracy beside two chance baselines
  (always the majority class; a stratified random guess) and the same
  classifier on shuffled labels.
* :func:`pair_labels` -- a phenotype per pair, looked up at the pair's
  target (or source) cell and time.

The weights are typically those of held-out frames from
``LICCHIE.transform`` (motifs frozen), as in the paper.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import xarray as xr

__all__ = ["phenotype_prediction", "pair_labels", "interaction_class"]


def interaction_class(weights):
    """Each pair's interaction class: ``"self:P"`` for a self pair, else
    ``"P<-Q"`` (target population P, source population Q); str (n_pairs,)."""
    tp = np.asarray(weights["target_population"].values).astype(str)
    sp = np.asarray(weights["source_population"].values).astype(str)
    self_ = np.asarray(weights["is_self"].values).astype(bool)
    return np.where(self_, np.char.add("self:", tp),
                    np.char.add(np.char.add(tp, "<-"), sp)).astype(object)


def _missing(v):
    return v is None or (isinstance(v, float) and v != v) or str(v) in ("", "nan", "None")


def pair_labels(weights, labels, on="target"):
    """The phenotype of every pair's target (or source) observation.

    Parameters
    ----------
    weights : xarray.DataArray (pair, component)
        With the pair coords of ``LICCHIE.weights_`` (``target``, ``source``,
        ``time``).
    labels : array-like (n_pairs,), xarray.DataArray or pandas.Series
        Per pair as is; a DataArray with dims ``("cell",)`` or ``("cell",
        "time")``; or a Series indexed by cell or by (cell, time).  The
        ``time`` is the target's frame; with ``on="source"`` the source is
        looked up at the frame before it.  Missing labels: None, NaN or "".
    on : {"target", "source"}

    Returns
    -------
    object ndarray (n_pairs,), None where there is no label.
    """
    if on not in ("target", "source"):
        raise ValueError(f"on must be 'target' or 'source'; got {on!r}.")
    n = weights.sizes["pair"]
    cells = np.asarray(weights[on].values)
    # the pair's time is the target's frame; a source is looked up by cell only
    times = np.asarray(weights["time"].values) if on == "target" else None
    if isinstance(labels, xr.DataArray):
        if labels.dims == ("cell",):
            labels = labels.to_series()
        elif set(labels.dims) == {"cell", "time"}:
            labels = labels.transpose("cell", "time").to_series()
        else:
            raise ValueError(f"labels as a DataArray must have dims ('cell',) or ('cell', "
                             f"'time'); got {labels.dims}.")
    if isinstance(labels, pd.Series):
        if labels.index.nlevels == 2:
            if on == "source":
                raise ValueError("Per-(cell, time) labels of sources need the source's "
                                 "frame; pass per-pair labels or per-cell labels instead.")
            key = pd.MultiIndex.from_arrays([cells, times])
            out = labels.reindex(key).to_numpy(dtype=object)
        else:
            out = labels.reindex(cells).to_numpy(dtype=object)
    else:
        out = np.asarray(labels, dtype=object)
        if out.shape != (n,):
            raise ValueError(f"labels must have one entry per pair ({n}), or be a "
                             "DataArray/Series indexed by cell (and time); got shape "
                             f"{out.shape}.")
    return np.array([None if _missing(v) else v for v in out], dtype=object)


def _target_features(weights, keep):
    """Per target observation, the mean weights of its pairs in each kind of
    pair (self, or source population): (n_targets, J * n_kinds), and the
    index of a representative pair per target."""
    W = np.asarray(weights.transpose("pair", "component").values, dtype=float)[keep]
    kind = np.where(np.asarray(weights["is_self"].values)[keep], "self",
                    np.asarray(weights["source_population"].values).astype(str)[keep])
    key = pd.MultiIndex.from_arrays([
        np.asarray(weights["session"].values)[keep] if "session" in weights.coords
        else np.zeros(keep.sum(), int),
        np.asarray(weights["target"].values)[keep], np.asarray(weights["time"].values)[keep]])
    codes, uniq = pd.factorize(key)
    kinds = sorted(set(kind.tolist()))
    J = W.shape[1]
    X = np.zeros((len(uniq), J * len(kinds)))
    for k, name in enumerate(kinds):
        sel = kind == name
        s = np.zeros((len(uniq), J))
        np.add.at(s, codes[sel], W[sel])
        cnt = np.bincount(codes[sel], minlength=len(uniq))[:, None]
        X[:, k * J:(k + 1) * J] = s / np.maximum(cnt, 1)
    first = np.full(len(uniq), -1)
    first[codes[::-1]] = np.arange(len(codes))[::-1]
    return X, first


def _cv_scores(make, X, y, folds, groups):
    from sklearn.model_selection import cross_validate
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = cross_validate(make(), X, y, cv=folds, groups=groups,
                           scoring=("accuracy", "balanced_accuracy"))
    a, b = r["test_accuracy"], r["test_balanced_accuracy"]
    return {"accuracy": float(a.mean()), "accuracy_std": float(a.std()),
            "balanced_accuracy": float(b.mean()), "balanced_accuracy_std": float(b.std())}


def _split_scores(make, X, y, Xt, yt):
    from sklearn.metrics import accuracy_score, balanced_accuracy_score
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = make().fit(X, y).predict(Xt)
    return {"accuracy": float(accuracy_score(yt, p)), "accuracy_std": np.nan,
            "balanced_accuracy": float(balanced_accuracy_score(yt, p)),
            "balanced_accuracy_std": np.nan}


def _design(weights, labels, by, target_population, source_population):
    if not isinstance(weights, xr.DataArray) or "pair" not in weights.dims:
        raise TypeError("weights must be a (pair, component) DataArray such as "
                        "LICCHIE.weights_ or LICCHIE.transform(X).")
    lab = pair_labels(weights, labels)
    keep = np.array([v is not None for v in lab])
    if target_population is not None:
        keep &= np.asarray(weights["target_population"].values).astype(str) == str(
            target_population)
    if source_population is not None:
        keep &= np.asarray(weights["source_population"].values).astype(str) == str(
            source_population)
    if by == "pair":
        X = np.asarray(weights.transpose("pair", "component").values, dtype=float)[keep]
        rows = np.flatnonzero(keep)
    elif by == "target":
        X, first = _target_features(weights, keep)
        rows = np.flatnonzero(keep)[first]
    else:
        raise ValueError(f"by must be 'pair' or 'target'; got {by!r}.")
    y = lab[rows].astype(str)
    cell = np.asarray(weights["target"].values)[rows].astype(str)
    return X, y, cell


def phenotype_prediction(weights, labels, *, by="pair", target_population=None,
                         source_population=None, test_weights=None, test_labels=None,
                         cv=5, group_cells=True, random_state=0):
    """Predict a target phenotype from the weights (paper Fig. 4b).

    Classifier: standardised features, logistic regression (scikit-learn,
    ``max_iter=2000``, ``class_weight="balanced"`` so that a rare phenotype
    is not ignored).  Scored by stratified ``cv``-fold cross-validation over
    ``weights`` (shuffled, seeded; with ``group_cells`` the folds keep all
    observations of one target cell together, so a cell's other frames
    cannot give its label away), or, with ``test_weights``, fitted on
    ``weights`` and scored on ``test_weights`` (e.g. train on the fit's
    frames, test on held-out frames from ``LICCHIE.transform``).

    Parameters
    ----------
    weights : xarray.DataArray (pair, component)
        ``LICCHIE.weights_`` or ``LICCHIE.transform(X)``.
    labels : array-like, xarray.DataArray or pandas.Series
        The phenotype of each pair's target (:func:`pair_labels`): per pair,
        per cell, or per (cell, time).  Pairs without a label are left out.
    by : {"pair", "target"}, default "pair"
        One sample per pair (features ``W[e, :]``) or per target observation
        (features: the mean weights of its pairs of each kind -- self pair,
        each source population -- side by side, zero for a kind it lacks).
    target_population, source_population : str, optional
        Use only pairs with this target (source) population.
    test_weights, test_labels : optional
        A held-out set scored by the classifier fitted on all of ``weights``.
    cv : int, default 5
    group_cells : bool, default True
    random_state : int

    Returns
    -------
    pandas.DataFrame indexed by ``method``
        ``logistic`` (the weights), ``shuffled_labels`` (the same classifier
        on labels permuted within the training set: what the features give
        by chance), ``dummy_stratified`` (random guesses with the class
        frequencies) and ``majority`` (always the most frequent class); columns
        ``accuracy``, ``accuracy_std``, ``balanced_accuracy``,
        ``balanced_accuracy_std`` (over folds; NaN for a single split),
        ``n_samples``, ``n_classes``, ``majority_rate`` and ``classes``
        (``name:count`` of the scored samples).
    """
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y, cell = _design(weights, labels, by, target_population, source_population)
    if y.size == 0:
        raise ValueError("No pair has a label (after the population filters): check "
                         "that the labels' cell (and time) ids match the weights' "
                         "'target' (and 'time') coordinates.")
    classes, counts = np.unique(y, return_counts=True)
    if classes.size < 2:
        raise ValueError(f"Only one phenotype ({classes[0]!r}) among the labelled pairs; "
                         "phenotype prediction needs at least two.")
    rng = np.random.default_rng(random_state)
    makers = {
        "logistic": lambda: make_pipeline(StandardScaler(), LogisticRegression(
            max_iter=2000, class_weight="balanced")),
        "dummy_stratified": lambda: DummyClassifier(strategy="stratified",
                                                    random_state=random_state),
        "majority": lambda: DummyClassifier(strategy="most_frequent"),
    }
    rows = {}
    if test_weights is None:
        k = int(min(cv, counts.min()))
        if k < 2:
            raise ValueError(f"The rarest phenotype has {counts.min()} sample(s); "
                             "cross-validation needs at least 2 of each.")
        groups = cell if group_cells else None
        if group_cells and np.unique(cell).size < k:
            groups = None
        folds = (StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=random_state)
                 if groups is not None else
                 StratifiedKFold(n_splits=k, shuffle=True, random_state=random_state))
        for name, make in makers.items():
            rows[name] = _cv_scores(make, X, y, folds, groups)
        rows["shuffled_labels"] = _cv_scores(makers["logistic"], X, rng.permutation(y),
                                             folds, groups)
        n, cls, cnt = y.size, classes, counts
    else:
        Xt, yt, _ = _design(test_weights, test_labels if test_labels is not None else labels,
                            by, target_population, source_population)
        if yt.size == 0:
            raise ValueError("No test pair has a label.")
        for name, make in makers.items():
            rows[name] = _split_scores(make, X, y, Xt, yt)
        rows["shuffled_labels"] = _split_scores(makers["logistic"], X, rng.permutation(y),
                                                Xt, yt)
        cls, cnt = np.unique(yt, return_counts=True)
        n = yt.size
    out = pd.DataFrame.from_dict(rows, orient="index")
    out = out.loc[["logistic", "shuffled_labels", "dummy_stratified", "majority"]]
    out.index.name = "method"
    out["n_samples"] = int(n)
    out["n_classes"] = int(cls.size)
    out["majority_rate"] = float(cnt.max() / cnt.sum())
    out["classes"] = ", ".join(f"{c}:{k}" for c, k in zip(cls, cnt))
    return out
