"""Evaluation of a fit against ground truth and held-out data (MODEL.md, "Evaluation").

Every function takes labeled objects (a fitted estimator, its
``components_``/``weights_``/``interaction_matrices()``, the ``truth`` of
:func:`licchie.synthetic.make_recording`) and returns labeled results.

* :func:`motif_recovery` -- Hungarian matching of inferred to true motifs on
  |cosine| of ``vec M_j`` (:func:`licchie._fit.motif_agreement`), per motif
  and mean, with the SSIM of the matched maps (:func:`ssim`).
* :func:`per_pair_mse` -- mean squared error of every pair's ``A_e`` against
  the truth, pairs aligned by their (session, time, target, source) keys.
* :func:`heldout_prediction` -- fit on the frames before ``t_split``,
  one-step prediction error and R^2 on the frames from ``t_split`` on (held-out
  pairs of LICCHIE use their group's profile, ``weights="group"``), and the
  in-sample R^2.
* :func:`cell_type_prediction` -- logistic regression (5-fold CV) of the
  source, target and (target, source) populations from the weights ``W``.
* :func:`information_criteria` / :func:`model_information_criteria` --
  AIC and BIC.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import xarray as xr

from . import _fit as F

__all__ = ["motif_recovery", "ssim", "per_pair_mse", "heldout_prediction",
           "group_profile_prediction", "prediction_scores", "cell_type_prediction",
           "information_criteria", "model_information_criteria", "degrees_of_freedom"]


# ------------------------------------------------------------------ motifs
def _effects(obj):
    """(C, R), each (d, J) with unit columns, from a fit, a Dataset or a tuple.

    Accepts a fitted LICCHIE (its ``components_``), any Dataset with
    ``target_effect``/``source_effect (component, feature)`` (``components_``,
    the ``truth`` of make_recording, a baseline's ``motifs(J)``), or a tuple
    ``(target_effect, source_effect)`` of (J, d) arrays.  Also returns the
    per-motif stability (NaN when unknown).
    """
    if hasattr(obj, "components_"):
        obj = obj.components_
    if isinstance(obj, xr.Dataset):
        C = np.asarray(obj["target_effect"].transpose("component", "feature").values).T
        R = np.asarray(obj["source_effect"].transpose("component", "feature").values).T
        stab = (np.asarray(obj["stability"].values, float) if "stability" in obj
                else np.full(C.shape[1], np.nan))
    else:
        c, r = obj
        C, R = np.asarray(c, float).T, np.asarray(r, float).T
        stab = np.full(C.shape[1], np.nan)
    if C.shape != R.shape:
        raise ValueError(f"target and source effects differ in shape: {C.shape} vs {R.shape}")
    return np.ascontiguousarray(C), np.ascontiguousarray(R), stab


def motif_recovery(inferred, truth):
    """Match inferred motifs to the true ones and score them.

    Each true motif ``M*_j = c*_j r*_j^T`` is matched to one inferred motif by
    the Hungarian method on ``|cos(vec M*_j, vec M_k)| = |c*_j.c_k| |r*_j.r_k|``
    (:func:`licchie._fit.motif_agreement`).  A motif and its negative are the
    same motif (the sign moves into ``W``), hence the absolute value; the
    matched inferred map is multiplied by the sign of the cosine before its
    SSIM with the true map is computed.

    Parameters
    ----------
    inferred, truth
        A fitted LICCHIE, a Dataset with ``target_effect``/``source_effect
        (component, feature)`` (``components_``, ``truth``, a baseline's
        ``motifs(J)``) or a tuple ``(target_effect, source_effect)`` of
        (J, d) arrays.

    Returns
    -------
    xarray.Dataset over ``component`` (the true motifs)
        ``similarity`` (matched |cosine|, 0 for a true motif left without a
        match when fewer motifs were inferred), ``match`` (index of the
        inferred motif, -1 if none), ``sign`` (+1/-1), ``ssim`` (NaN without
        a match), ``matched_stability`` (the inferred motif's stability, NaN
        for a baseline).  ``attrs``: ``mean_similarity``, ``mean_ssim``
        (over matched motifs) and ``ssim_backend``.
    """
    Ct, Rt, _ = _effects(truth)
    Ci, Ri, stab = _effects(inferred)
    if Ct.shape[0] != Ci.shape[0]:
        raise ValueError(f"The inferred motifs have {Ci.shape[0]} features, the true ones "
                         f"{Ct.shape[0]}.")
    sim, match = F.motif_agreement(Ct, Rt, Ci, Ri)
    J = Ct.shape[1]
    sign = np.ones(J)
    ss = np.full(J, np.nan)
    mstab = np.full(J, np.nan)
    backend = None
    for j in range(J):
        k = match[j]
        if k < 0:
            continue
        sign[j] = 1.0 if (Ct[:, j] @ Ci[:, k]) * (Rt[:, j] @ Ri[:, k]) >= 0 else -1.0
        true_map = np.outer(Ct[:, j], Rt[:, j])
        inf_map = sign[j] * np.outer(Ci[:, k], Ri[:, k])
        ss[j], backend = _ssim_with_backend(true_map, inf_map)
        mstab[j] = stab[k]
    matched = match >= 0
    return xr.Dataset(
        {"similarity": ("component", sim), "match": ("component", match),
         "sign": ("component", sign), "ssim": ("component", ss),
         "matched_stability": ("component", mstab)},
        coords={"component": np.arange(J)},
        attrs={"mean_similarity": float(np.mean(sim)),
               "mean_ssim": float(np.mean(ss[matched])) if matched.any() else float("nan"),
               "ssim_backend": backend or "none"})


def ssim(reference, image, data_range=None, win_size=None):
    """Structural similarity of two 2-D maps (mean SSIM, Wang et al. 2004).

    Uses :func:`skimage.metrics.structural_similarity` when scikit-image is
    installed, else a numpy implementation of exactly the same computation
    (scikit-image's defaults): a square uniform window of ``win_size`` (7,
    or the largest odd number <= the smaller side of a smaller map), sample
    (co)variances (``N / (N - 1)``), ``K1 = 0.01``, ``K2 = 0.03``,
    ``C1 = (K1 L)^2``, ``C2 = (K2 L)^2``, and the mean of the SSIM map over
    the windows that fit inside the map.  Maps whose smaller side is below 3
    have no room for a window: their SSIM is computed once over the whole
    map (same formula).

    ``data_range`` ``L`` defaults to the range of ``reference`` (max - min;
    1 if the reference is constant): the motif maps of LICCHIE have no fixed
    range, and the true map is the reference.

    Returns
    -------
    float
    """
    return _ssim_with_backend(reference, image, data_range, win_size)[0]


def _ssim_with_backend(reference, image, data_range=None, win_size=None):
    a = np.asarray(reference, dtype=np.float64)
    b = np.asarray(image, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"ssim needs two 2-D maps of the same shape; got {a.shape} and "
                         f"{b.shape}.")
    if data_range is None:
        rng = float(a.max() - a.min())
        data_range = rng if rng > 0 else 1.0
    small = min(a.shape)
    if win_size is None:
        win_size = min(7, small if small % 2 else small - 1)
    if win_size < 3:
        return _ssim_global(a, b, data_range), "numpy-global"
    try:
        from skimage.metrics import structural_similarity
    except ImportError:
        return _ssim_numpy(a, b, data_range, win_size), "numpy"
    return float(structural_similarity(a, b, win_size=win_size,
                                       data_range=data_range)), "scikit-image"


def _ssim_terms(ux, uy, vx, vy, vxy, L):
    C1 = (0.01 * L) ** 2
    C2 = (0.03 * L) ** 2
    return ((2 * ux * uy + C1) * (2 * vxy + C2)) / ((ux ** 2 + uy ** 2 + C1) * (vx + vy + C2))


def _ssim_numpy(a, b, L, win):
    """scikit-image's default SSIM (uniform window, sample covariance, cropped)."""
    from numpy.lib.stride_tricks import sliding_window_view
    n = win * win
    wa = sliding_window_view(a, (win, win)).reshape(-1, n)
    wb = sliding_window_view(b, (win, win)).reshape(-1, n)
    ux, uy = wa.mean(1), wb.mean(1)
    norm = n / (n - 1.0)
    vx = norm * ((wa * wa).mean(1) - ux * ux)
    vy = norm * ((wb * wb).mean(1) - uy * uy)
    vxy = norm * ((wa * wb).mean(1) - ux * uy)
    return float(np.mean(_ssim_terms(ux, uy, vx, vy, vxy, L)))


def _ssim_global(a, b, L):
    n = a.size
    ux, uy = a.mean(), b.mean()
    norm = n / (n - 1.0) if n > 1 else 1.0
    vx = norm * np.mean((a - ux) ** 2)
    vy = norm * np.mean((b - uy) ** 2)
    vxy = norm * np.mean((a - ux) * (b - uy))
    return float(_ssim_terms(ux, uy, vx, vy, vxy, L))


# ---------------------------------------------------------- pair matrices
_KEYS = ("session", "time", "target", "source")


def _interaction_of(truth):
    if isinstance(truth, xr.DataArray):
        return truth
    if "interaction" in truth:
        return truth["interaction"]
    # make_recording(interaction=False): rebuild A_e = sum_j W[e,j] c_j r_j^T
    A = np.einsum("ej,ja,jb->eab", truth["weights"].values, truth["target_effect"].values,
                  truth["source_effect"].values)
    pc = {k: v for k, v in truth.coords.items() if v.dims == ("pair",)}
    feat = list(truth["feature"].values)
    return xr.DataArray(A, dims=("pair", "target_feature", "source_feature"),
                        coords={**pc, "target_feature": feat, "source_feature": feat})


def _key_frame(da, use_session):
    keys = [k for k in _KEYS if use_session or k != "session"]
    missing = [k for k in keys if k not in da.coords]
    if missing:
        raise ValueError(f"The pair matrices lack the pair coordinate(s) {missing}; pass "
                         "interaction_matrices() of a fit or the truth of make_recording.")
    return pd.DataFrame({k: np.asarray(da[k].values).astype(str) if k == "session"
                         else np.asarray(da[k].values) for k in keys})


def align_pairs(inferred, truth):
    """Positions ``(i_inferred, i_truth)`` of the pairs both sides have.

    Pairs are matched on their (session, time, target, source) coordinates,
    never on order; the result follows the truth's order.  When both sides
    have a single session the session labels are ignored (a recording's one
    session may be labeled differently by the generator and by a fit).

    Returns
    -------
    i_inf, i_true : int64 arrays, n_only_inferred, n_only_truth : int
    """
    ns_i = len(np.unique(inferred["session"].values)) if "session" in inferred.coords else 1
    ns_t = len(np.unique(truth["session"].values)) if "session" in truth.coords else 1
    use_session = not (ns_i <= 1 and ns_t <= 1)
    ki = _key_frame(inferred, use_session)
    kt = _key_frame(truth, use_session)
    ki["_i"] = np.arange(len(ki))
    kt["_t"] = np.arange(len(kt))
    if ki.duplicated(subset=list(ki.columns[:-1])).any():
        raise ValueError("The inferred pair matrices have duplicate (session, time, target, "
                         "source) keys.")
    m = ki.merge(kt, on=list(ki.columns[:-1]), how="inner")
    m = m.sort_values("_t", kind="stable")
    return (m["_i"].to_numpy(np.int64), m["_t"].to_numpy(np.int64),
            len(ki) - len(m), len(kt) - len(m))


def per_pair_mse(inferred, truth):
    """Per-pair MSE between inferred and true interaction matrices.

    ``mse_e = mean_{a,b} (A_e[a,b] - A*_e[a,b])^2`` (mean over the d x d
    entries), for every pair present in both, aligned by (session, time,
    target, source) keys (:func:`align_pairs`).

    Parameters
    ----------
    inferred : xarray.DataArray (pair, target_feature, source_feature)
        ``interaction_matrices()`` of LICCHIE or of a baseline.
    truth : xarray.Dataset or DataArray
        The truth of :func:`licchie.synthetic.make_recording` (its
        ``interaction``, or rebuilt from its weights and effects) or any
        DataArray with the same pair coordinates.

    Returns
    -------
    xarray.DataArray (pair)
        With the truth's pair coordinates of the matched pairs; ``attrs``:
        ``mean``, ``median``, ``n_matched``, ``n_only_inferred``,
        ``n_only_truth`` (pairs of one side missing from the other; a
        warning is issued when any truth pair is missing).
    """
    At = _interaction_of(truth)
    i_inf, i_true, n_oi, n_ot = align_pairs(inferred, At)
    if i_inf.size == 0:
        raise ValueError("No pair of the inferred matrices matches a true pair by (session, "
                         "time, target, source): were they fitted with the same radius and "
                         "include_self on the same recording?")
    if n_ot:
        warnings.warn(f"{n_ot} true pairs have no inferred matrix (different radius or "
                      "include_self?); the MSE covers the matched pairs only.", UserWarning,
                      stacklevel=2)
    ft = list(At["target_feature"].values)
    fs = list(At["source_feature"].values)
    Ai = inferred.transpose("pair", "target_feature", "source_feature")
    Ai = Ai.sel(target_feature=ft, source_feature=fs).values[i_inf]
    Av = At.transpose("pair", "target_feature", "source_feature").values[i_true]
    mse = np.mean((Ai - Av) ** 2, axis=(1, 2))
    pc = {k: ("pair", np.asarray(v.values)[i_true]) for k, v in At.coords.items()
          if v.dims == ("pair",)}
    return xr.DataArray(mse, dims="pair", coords=pc, name="pair_mse",
                        attrs={"mean": float(mse.mean()), "median": float(np.median(mse)),
                               "n_matched": int(mse.size), "n_only_inferred": int(n_oi),
                               "n_only_truth": int(n_ot)})


# --------------------------------------------------------------- prediction
def group_profile_prediction(model, X):
    """LICCHIE's one-step prediction with every pair at its group's profile.

    The held-out predictor of MODEL.md ("Evaluation"):
    ``A_e = sum_j Wbar[g(e), j] M_j``.  For ``pooling_groups="class"`` this
    is exactly ``model.predict(X, weights="group")``.  For ``"class_time"``
    the groups are time windows: a pair whose window was never seen in the
    fit (held-out frames after the training frames) uses its class's profile
    in the nearest earlier window seen (the latest, for a forecast), or the
    nearest later one when there is no earlier one; a pair of a class never
    seen predicts zero, as in ``predict``.  ``X`` must be a Dataset (or
    anything :func:`licchie.data.as_recording` takes) whose time axis starts
    where the training data's did, because the windows count time steps from
    the first frame.

    Returns the same types as ``LICCHIE.predict``.
    """
    from .labels import format_prediction
    from .data import as_recording
    if model.pooling_groups != "class_time":
        return model.predict(X, weights="group")
    obs = as_recording(X).obs
    feat = list(model.components_["feature"].values)
    if list(obs.feature_names) != feat:
        raise ValueError(f"The data's features {list(obs.feature_names)} differ from the "
                         f"fitted features {feat}.")
    pairs = F.build_pairs(obs, model.radius, model.include_self, model.pair_weight,
                          model.bandwidth, model.pooling_groups, model.pooling_window)
    gw = model.group_weights_
    known = {}
    for k, g in enumerate(gw["group"].values.tolist()):
        cls, start = str(g).rsplit("@", 1)
        known.setdefault(cls, []).append((int(start), k))
    J = gw.sizes["component"]
    W = np.zeros((pairs.n_pairs, J))
    for k, g in enumerate(pairs.group_names):
        cls, start = g.rsplit("@", 1)
        start = int(start)
        cand = known.get(cls)
        if not cand:
            continue
        earlier = [c for c in cand if c[0] <= start]
        pick = max(earlier) if earlier else min(cand)
        W[pairs.group == k] = gw.values[pick[1]]
    C = np.ascontiguousarray(model.components_["target_effect"].values.T)
    R = np.ascontiguousarray(model.components_["source_effect"].values.T)
    yhat = F.K.predict_lowrank(obs.features, pairs.tgt_ptr, pairs.src, pairs.gain, W, C, R)
    return format_prediction(X, obs, pairs, yhat, feat)


def prediction_scores(prediction, ds, times=None):
    """MSE and R^2 of a one-step prediction (cell, time, feature) against ``ds``.

    Scored on the observations with a prediction (finite) and finite
    features, restricted to the time labels ``times`` when given.
    ``mse`` is the mean over those observations and features; ``r2 = 1 -
    SS_res / SS_tot`` with ``SS_tot`` around each feature's mean over the
    scored observations (as ``LICCHIE.in_sample_r2_``).
    """
    y = ds["features"].transpose("cell", "time", "feature").values
    p = prediction.transpose("cell", "time", "feature").values
    ok = np.isfinite(p).all(-1) & np.isfinite(y).all(-1)
    if times is not None:
        ok &= np.isin(ds["time"].values, np.asarray(times))[None, :]
    yy, pp = y[ok], p[ok]
    if yy.shape[0] == 0:
        return {"mse": float("nan"), "r2": float("nan"), "n_targets": 0}
    ss = float(np.sum((yy - yy.mean(axis=0)) ** 2))
    r2 = 1.0 - float(np.sum((yy - pp) ** 2)) / ss if ss > 0 else float("nan")
    return {"mse": float(np.mean((yy - pp) ** 2)), "r2": r2, "n_targets": int(yy.shape[0])}


def heldout_prediction(estimator, ds, t_split, fitted=None):
    """One-step prediction on held-out frames (MODEL.md, "Evaluation").

    The estimator (LICCHIE or a baseline; cloned, never refitted in place)
    is fitted on the frames ``ds.time[:t_split]`` (positions along the time
    axis).  The full recording is then predicted one step ahead and the
    targets at frames ``t_split`` and later are scored: each uses the
    observed sources of the frame before (so the first held-out frame is
    predicted from the last training frame).  LICCHIE's held-out pairs have
    no fitted weights and use their group's profile
    (:func:`group_profile_prediction`); a baseline uses its fitted matrices
    (``PerCellLinear`` the global one for cells it never saw).

    Parameters
    ----------
    estimator : LICCHIE, GlobalLinear or PerCellLinear
    ds : xarray.Dataset
        A recording in the MODEL.md schema.
    t_split : int
        Number of training frames, ``2 <= t_split < ds.sizes["time"]``.
    fitted : estimator, optional
        An estimator already fitted on ``ds.isel(time=slice(0, t_split))``
        (skips the fit).

    Returns
    -------
    dict
        ``mse``, ``r2`` (held-out), ``n_targets`` (held-out target
        observations), ``in_sample_r2`` (training targets, fitted weights),
        ``estimator`` (the fit on the training frames).
    """
    from sklearn.base import clone

    from .model import LICCHIE
    T = ds.sizes["time"]
    if not (2 <= int(t_split) < T):
        raise ValueError(f"t_split must be in [2, {T - 1}] (number of training frames); "
                         f"got {t_split}.")
    train = ds.isel(time=slice(0, int(t_split)))
    if fitted is None:
        fitted = clone(estimator).fit(train)
    if isinstance(fitted, LICCHIE):
        pred = group_profile_prediction(fitted, ds)
    else:
        pred = fitted.predict(ds)
    out = prediction_scores(pred, ds, times=ds["time"].values[int(t_split):])
    out["in_sample_r2"] = float(fitted.in_sample_r2_)
    out["estimator"] = fitted
    return out


# ---------------------------------------------------------------- cell types
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


# ------------------------------------------------------------ model choice
def degrees_of_freedom(weights, n_features, atol=0.0):
    """``nnz(W) + J (2 d - 2)`` (MODEL.md, "Model selection").

    Each unit-norm effect ``c_j``, ``r_j`` has ``d - 1`` free parameters.
    """
    W = np.asarray(getattr(weights, "values", weights))
    J = W.shape[1]
    return int(np.count_nonzero(np.abs(W) > atol)) + J * (2 * int(n_features) - 2)


def information_criteria(rss, n, dof):
    """AIC and BIC of a Gaussian model with unknown noise variance.

    ``AIC = n ln(RSS / n) + 2 k`` and ``BIC = n ln(RSS / n) + k ln n`` (the
    profile log-likelihood of i.i.d. Gaussian residuals, constants dropped:
    only differences between fits on the same data mean anything).

    Parameters
    ----------
    rss : float
        Residual sum of squares (> 0; 0 gives -inf).
    n : int
        Number of residuals (scalar observations).
    dof : int
        Degrees of freedom ``k``.

    Returns
    -------
    dict with ``aic``, ``bic``, ``rss``, ``n``, ``dof``
    """
    rss = float(rss)
    n = int(n)
    if n <= 0 or rss < 0:
        raise ValueError(f"information_criteria needs n > 0 and rss >= 0; got n={n}, "
                         f"rss={rss}.")
    with np.errstate(divide="ignore"):
        fit = n * np.log(rss / n)
    return {"aic": float(fit + 2.0 * dof), "bic": float(fit + dof * np.log(n)),
            "rss": rss, "n": n, "dof": int(dof)}


def model_information_criteria(model, X):
    """AIC/BIC of a fitted LICCHIE on its training data ``X``.

    ``RSS`` is the fidelity term of the final objective,
    ``sum ||x[n,t] - sum_e g_e A_e x[k_e,t-1]||^2`` over the target
    observations with at least one pair (MODEL.md: targets without pairs
    only add a constant and are left out); ``n`` is the number of those
    targets times ``d``; ``k = nnz(W) + J (2 d - 2)``
    (:func:`degrees_of_freedom`).  Note that ``k`` can exceed ``n`` when
    ``W`` is dense (several pairs per target, J weights each); the criteria
    are then dominated by the penalty and only comparable between fits with
    the same data.

    Returns the dict of :func:`information_criteria`.
    """
    from .data import as_recording
    obs = as_recording(X).obs
    pairs = F.build_pairs(obs, model.radius, model.include_self, model.pair_weight,
                          model.bandwidth)
    d = obs.n_features
    n = int(pairs.tgt_obs.shape[0]) * d
    rss = float(model.objective_history_.isel(step=-1).sel(term="fidelity"))
    return information_criteria(rss, n, degrees_of_freedom(model.weights_, d))
