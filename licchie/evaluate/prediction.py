"""One-step prediction on held-out frames (MODEL.md, "Evaluation").

* :func:`heldout_prediction` -- fit on the frames before ``t_split``,
  one-step prediction error and R^2 on the frames from ``t_split`` on (held-out
  pairs of LICCHIE use their group's profile, :func:`group_profile_prediction`),
  and the in-sample R^2.
* :func:`prediction_scores` -- MSE and R^2 of any one-step prediction.
"""
from __future__ import annotations

import warnings

import numpy as np
import xarray as xr


def group_profile_prediction(model, X):
    """LICCHIE's one-step prediction with every pair at its group's profile.

    The held-out predictor of MODEL.md ("Evaluation"):
    ``A_e = sum_j Wbar[g(e), j] M_j``; it is ``model.predict(X,
    weights="group")``, so a standardised model (``LICCHIE(standardize=...)``)
    predicts in the data's original units through its ``scaling_``, as
    ``predict`` does.

    With ``pooling_groups="class_time"`` a pair takes the window its
    target's (session, time label) had in the training data.  Held-out
    frames (after the training frames, or any frame the fit never saw) have
    no fitted window: their pairs use **their class's profile in the nearest
    training window in time** of their session, for a forecast the last one
    (:func:`licchie.labels.group_weights_for`; docs/model-choices.md,
    "Pooling groups", for why the nearest window and not the class mean).
    That is expected here, so ``predict``'s warning about it is not
    repeated.  A pair of a class the model never saw predicts zero (with
    ``predict``'s warning).

    Parameters
    ----------
    model : LICCHIE, fitted
    X : xarray.Dataset, Recording, DataFrame or list
        In the data's original units (as for ``predict``).

    Returns
    -------
    xarray.DataArray (cell, time, feature) for a Dataset, else a
    pandas.DataFrame with one row per predicted observation (as
    ``LICCHIE.predict``).
    """
    with warnings.catch_warnings():
        # held-out frames lie outside the training windows by construction
        warnings.filterwarnings("ignore", message=r".*outside the training data's time "
                                r"windows", category=UserWarning)
        return model.predict(X, weights="group")


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
    ds : xarray.Dataset, Recording, DataFrame or list of these
        A recording in the MODEL.md schema, or anything
        :func:`licchie.as_recording` takes; then every session is split at
        its own time index ``t_split`` (frames with time index >= t_split
        held out; :func:`licchie.evaluate.heldout_table` splits each
        session at its own fraction instead).
    t_split : int
        Number of training frames, ``2 <= t_split < ds.sizes["time"]`` (for
        a Recording: below its longest session's number of frames).
    fitted : estimator, optional
        An estimator already fitted on ``ds.isel(time=slice(0, t_split))``
        (skips the fit; for a Recording, on its frames before ``t_split``).

    Returns
    -------
    dict
        ``mse``, ``r2`` (held-out), ``n_targets`` (held-out target
        observations), ``in_sample_r2`` (training targets, fitted weights),
        ``estimator`` (the fit on the training frames).
    """
    from sklearn.base import clone

    from ..model import LICCHIE
    if not isinstance(ds, xr.Dataset):
        return _heldout_prediction_recording(estimator, ds, t_split, fitted)
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


def _heldout_prediction_recording(estimator, X, t_split, fitted):
    """:func:`heldout_prediction` for a Recording (or anything as_recording takes)."""
    from sklearn.base import clone

    from ..data import as_recording
    from .heldout import keep_observations, observation_predictions, score_frames
    rec = as_recording(X)
    o = rec.obs
    T = int(o.frame_time_index.max()) + 1 if o.n_frames else 0
    if not (2 <= int(t_split) < T):
        raise ValueError(f"t_split must be in [2, {T - 1}] (number of training frames of "
                         f"each session); got {t_split}.")
    held = o.frame_time_index >= int(t_split)
    train = keep_observations(rec, ~held[o.frame])
    if fitted is None:
        fitted = clone(estimator).fit(train)
    idx, yhat = observation_predictions(fitted, rec, heldout=True)
    r = score_frames(o, idx, yhat, held, by_population=False)[0]
    return {"mse": r["mse"], "r2": r["r2"], "n_targets": r["n_observations"],
            "in_sample_r2": float(fitted.in_sample_r2_), "estimator": fitted}
