"""Cell types from the weights (paper Fig. 2c).

* :func:`cell_type_prediction` -- logistic regression (5-fold CV) of the
  source, target and (target, source) populations from the weights ``W``.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd



def cell_type_prediction(weights, cv=5, random_state=0):
    """Predict the populations of a pair from its weights (paper Fig. 2c).

    Features: the pair's row ``W[e, :]`` (standardised), classifier:
    multinomial logistic regression (scikit-learn, ``max_iter=2000``),
    stratified ``cv``-fold cross-validation (shuffled, seeded), all pairs
    (self pairs included).  Three tasks: the source population, the target
    population, and both (the label ``"target<-source"``).

    Parameters
    ----------
    weights : xarray.DataArray (pair, component)
        ``LICCHIE.weights_`` or the truth's ``weights`` (needs the pair
        coordinates ``target_population`` and ``source_population``).

    Returns
    -------
    pandas.DataFrame indexed by task (``source``, ``target``, ``both``)
        ``accuracy`` and ``accuracy_std`` (over folds), ``balanced_accuracy``,
        ``majority_rate`` (accuracy of always guessing the most frequent
        class: the chance level to compare with), ``n_classes``,
        ``n_pairs``.  A task with a single class has NaN scores.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_validate
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    Wv = np.asarray(weights.transpose("pair", ...).values, dtype=float)
    tp = np.asarray(weights["target_population"].values).astype(str)
    sp = np.asarray(weights["source_population"].values).astype(str)
    tasks = {"source": sp, "target": tp,
             "both": np.char.add(np.char.add(tp, "<-"), sp)}
    rows = {}
    for name, y in tasks.items():
        classes, counts = np.unique(y, return_counts=True)
        row = {"accuracy": np.nan, "accuracy_std": np.nan, "balanced_accuracy": np.nan,
               "majority_rate": float(counts.max() / counts.sum()),
               "n_classes": int(classes.size), "n_pairs": int(y.size)}
        if classes.size >= 2:
            k = int(min(cv, counts.min())) if counts.min() >= 2 else 0
            if k >= 2:
                clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
                folds = StratifiedKFold(n_splits=k, shuffle=True, random_state=random_state)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    res = cross_validate(clf, Wv, y, cv=folds,
                                         scoring=("accuracy", "balanced_accuracy"))
                row.update(accuracy=float(res["test_accuracy"].mean()),
                           accuracy_std=float(res["test_accuracy"].std()),
                           balanced_accuracy=float(res["test_balanced_accuracy"].mean()))
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index")
