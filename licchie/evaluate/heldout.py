"""Held-out one-step prediction on Recordings: LICCHIE against the baselines.

* :func:`heldout_split` -- the last ``fraction`` of every session's frames
  held out (sessions of any length, no shifting of time axes).
* :func:`heldout_table` -- fit LICCHIE and the baselines on the training
  frames, score one-step predictions on the training and the held-out frames,
  one tidy DataFrame (model, split, population, R^2, MSE, observations).
* :func:`score_frames` / :func:`observation_predictions` -- the scoring
  shared with :mod:`licchie.select` (K-fold over time blocks).

**Which pairs belong where.**  A pair belongs to its target's frame.  The
training recording keeps only the observations of training frames, so a pair
with a held-out source is never fitted (its source is not there) and a
training target whose source frame is held out has no pair.  Scoring
predicts the whole recording and scores the targets of the scored frames:
the first held-out frame is predicted from the observed states of the last
training frame, as one-step prediction does (inputs are observed, targets
are not fitted).  Held-out pairs of LICCHIE use their group's profile
(MODEL.md, "Evaluation"; :func:`group_profile_prediction`).
"""
from __future__ import annotations

import dataclasses
import functools
import time
from collections import namedtuple

import numpy as np
import pandas as pd

from ..labels import time_labels
from .prediction import group_profile_prediction

__all__ = ["heldout_split", "heldout_table", "score_frames", "observation_predictions",
           "keep_observations", "default_baselines"]

HeldoutSplit = namedtuple("HeldoutSplit", ["train", "full", "heldout_frames", "sessions"])
HeldoutSplit.__doc__ = """The result of :func:`heldout_split`.

train : Recording
    The observations of the training frames (every frame and cell kept, the
    held-out frames empty).
full : Recording
    The whole recording.
heldout_frames : ndarray, shape (n_frames,), bool
    Held-out frames of ``full.obs``.
sessions : pandas.DataFrame
    One row per session: ``session``, ``first_time_index``,
    ``last_time_index``, ``n_frames`` (first to last observed frame),
    ``n_train_frames``, ``n_heldout_frames``.
"""


def keep_observations(rec, keep):
    """The Recording with only the observations ``keep``, frames and cells unchanged.

    Frames whose observations are all dropped stay as empty frames, so time
    indices, ``prev_frame`` and labels keep their meaning: a frame after an
    emptied frame has no pairs (its sources are gone).

    Parameters
    ----------
    rec : Recording
    keep : ndarray, shape (n_obs,), bool

    Returns
    -------
    Recording
    """
    from ..data import Recording
    o = rec.obs
    keep = np.asarray(keep, dtype=bool)
    if keep.shape != (o.n_obs,):
        raise ValueError(f"keep must be a boolean mask of shape ({o.n_obs},); got {keep.shape}.")
    frame = o.frame[keep]
    ptr = np.concatenate([[0], np.cumsum(np.bincount(frame, minlength=o.n_frames))])
    obs = dataclasses.replace(
        o, features=np.ascontiguousarray(o.features[keep]),
        positions=np.ascontiguousarray(o.positions[keep]), cell=o.cell[keep], frame=frame,
        frame_ptr=ptr.astype(np.int64))
    return Recording(obs, cell_session=rec._cell_session, session_labels=rec._session_labels,
                     population_labels=rec._population_labels,
                     feature_labels=rec._feature_labels)


def _session_spans(obs):
    """(session, first, last) time index of the observed frames of each session."""
    nonempty = np.diff(obs.frame_ptr) > 0
    out = []
    for s in range(len(obs.session_names)):
        ti = obs.frame_time_index[(obs.frame_session == s) & nonempty]
        if ti.size:
            out.append((s, int(ti.min()), int(ti.max())))
    return out


def heldout_split(X, fraction=0.2):
    """Hold out the last ``fraction`` of every session's frames.

    Each session is split on its own time axis, from its first to its last
    frame with an observation (sessions of different lengths, or padded to
    a common time axis in a Dataset, need no shifting): the last
    ``max(1, round(fraction * n))`` of its ``n`` frames are held out.

    Parameters
    ----------
    X : Recording, xarray.Dataset, pandas.DataFrame or list of these
        Anything :func:`licchie.as_recording` takes (a list is one session
        per element).
    fraction : float in (0, 1), default 0.2

    Returns
    -------
    HeldoutSplit
        ``train``, ``full`` (Recordings), ``heldout_frames`` (bool per frame
        of ``full.obs``) and ``sessions`` (a DataFrame, one row per session).

    Raises
    ------
    ValueError
        When a session would keep fewer than 2 training frames (no training
        pair); the message names the sessions.
    """
    from ..data import as_recording
    if not (isinstance(fraction, (int, float)) and 0 < fraction < 1):
        raise ValueError(f"fraction must be a number in (0, 1), the share of each session's "
                         f"frames held out; got {fraction!r}.")
    rec = as_recording(X)
    o = rec.obs
    held = np.zeros(o.n_frames, dtype=bool)
    rows, short = [], []
    for s, t0, t1 in _session_spans(o):
        n = t1 - t0 + 1
        n_hold = max(1, int(round(fraction * n)))
        if n - n_hold < 2:
            short.append(f"{o.session_names[s]} ({n} frames)")
        held |= (o.frame_session == s) & (o.frame_time_index > t1 - n_hold)
        rows.append({"session": o.session_names[s], "first_time_index": t0,
                     "last_time_index": t1, "n_frames": n, "n_train_frames": n - n_hold,
                     "n_heldout_frames": n_hold})
    if short:
        raise ValueError(
            f"With fraction={fraction}, {len(short)} session(s) keep fewer than 2 training "
            f"frames: {', '.join(short[:10])}{' ...' if len(short) > 10 else ''}.  Drop these "
            "sessions or use a smaller fraction.")
    train = keep_observations(rec, ~held[o.frame])
    return HeldoutSplit(train, rec, held, pd.DataFrame(rows))


def observation_predictions(fitted, X, heldout=True):
    """One-step predictions of a fitted model, as (observation index, prediction).

    Parameters
    ----------
    fitted : LICCHIE or a baseline, fitted
    X : Recording
        The data to predict (its observations are indexed).
    heldout : bool, default True
        For LICCHIE: True predicts every pair with its group's profile
        (:func:`group_profile_prediction`, the held-out predictor); False
        uses ``predict`` (fitted weights on the training data).

    Returns
    -------
    index : ndarray, shape (n_predicted,), int64
        Observations of ``X.obs`` with a prediction.
    yhat : ndarray, shape (n_predicted, d)
    """
    from ..model import LICCHIE
    if isinstance(fitted, LICCHIE) and heldout:
        pred = group_profile_prediction(fitted, X)
    else:
        pred = fitted.predict(X)
    o = X.obs
    # predictions come back labeled (session, cell, time); find their observations
    allo = np.arange(o.n_obs)
    keys = pd.MultiIndex.from_arrays(
        [np.asarray(o.session_names, dtype=object)[o.session], o.cell_ids[o.cell],
         time_labels(o, allo)])
    idx = keys.get_indexer(pd.MultiIndex.from_arrays(
        [pred["session"].to_numpy(), pred["cell"].to_numpy(), pred["time"].to_numpy()]))
    if (idx < 0).any():
        raise RuntimeError("Some predictions could not be matched to observations "
                           "(duplicate or missing (session, cell, time) labels).")
    feat = [c for c in pred.columns if c not in ("session", "cell", "time")]
    return idx.astype(np.int64), pred[feat].to_numpy(dtype=float)


def score_frames(obs, index, yhat, frames, by_population=True):
    """MSE and R^2 of predictions of the targets in ``frames``.

    ``r2 = 1 - SS_res / SS_tot``, pooled over features, with ``SS_tot``
    around each feature's mean over the scored observations (as
    :func:`prediction_scores`); ``mse`` is the mean over observations and
    features.  Features a target's population lacks (NaN) are left out of
    both.

    Parameters
    ----------
    obs : Observations
    index : ndarray, shape (n,), int64
        Predicted observations.
    yhat : ndarray, shape (n, d)
    frames : ndarray, shape (n_frames,), bool
        Frames whose targets are scored.
    by_population : bool
        Also one row per population (when there are several).

    Returns
    -------
    list of dict
        ``population`` (``"all"`` or a population name), ``r2``, ``mse``,
        ``n_observations``.
    """
    sel = frames[obs.frame[index]]
    index, yhat = index[sel], yhat[sel]
    pops = obs.population[index]
    groups = [("all", np.ones(index.size, bool))]
    if by_population and len(obs.population_names) > 1:
        groups += [(name, pops == p) for p, name in enumerate(obs.population_names)]
    out = []
    for name, m in groups:
        y, p = obs.features[index[m]], yhat[m]
        if y.shape[0] == 0:
            out.append({"population": name, "r2": np.nan, "mse": np.nan,
                        "n_observations": 0})
            continue
        # features a target's population lacks are NaN in y: left out
        fin = np.isfinite(y)
        mean = np.nanmean(np.where(fin, y, np.nan), axis=0)
        ss = float(np.sum(np.where(fin, y - mean, 0.0) ** 2))
        res = np.where(fin, y - p, 0.0) ** 2
        r2 = 1.0 - float(np.sum(res)) / ss if ss > 0 else np.nan
        out.append({"population": name, "r2": r2, "mse": float(np.sum(res) / fin.sum()),
                    "n_observations": int(y.shape[0])})
    return out


def default_baselines(estimator=None):
    """Global linear, per-cell linear (regularised) and persistence, paired as ``estimator``.

    Returns
    -------
    dict name -> unfitted baseline
    """
    from ..baselines import GlobalLinear, PerCellLinear, Persistence
    keys = ("radius", "include_self", "pair_weight", "bandwidth")
    pairing = {k: getattr(estimator, k) for k in keys if hasattr(estimator, k)}
    # persistence predicts from the self pair, which it always needs
    pers = {**pairing, "include_self": True}
    return {"global linear": GlobalLinear(**pairing), "per-cell linear": PerCellLinear(**pairing),
            "persistence": Persistence(**pers)}


def _named_models(estimator, baselines):
    models = {}
    if estimator is not None:
        models["LICCHIE" if type(estimator).__name__ == "LICCHIE"
               else type(estimator).__name__] = estimator
    if isinstance(baselines, str):
        if baselines != "default":
            raise ValueError(f"baselines must be 'default', None, a list or a dict; "
                             f"got {baselines!r}.")
        baselines = default_baselines(estimator)
    elif baselines is None:
        baselines = {}
    elif not isinstance(baselines, dict):
        baselines = {type(b).__name__: b for b in baselines}
    models.update(baselines)
    if not models:
        raise ValueError("Nothing to evaluate: pass an estimator or some baselines.")
    return models


def heldout_table(estimator, X, fraction=0.2, baselines="default", by_population=True,
                  common_targets=True):
    """Held-out one-step prediction of LICCHIE and the baselines, in one table.

    Every model (a clone, never the object passed) is fitted on the first
    frames of each session and scored on the training frames and on the
    last ``fraction`` of each session's frames (:func:`heldout_split`).  On
    the training frames LICCHIE uses its fitted weights (in-sample); on the
    held-out frames it uses each pair's group profile (MODEL.md,
    "Evaluation").  See the module docstring for which pairs belong where.

    Parameters
    ----------
    estimator : LICCHIE or None
        Unfitted (its parameters are used; it is cloned).
    X : Recording, xarray.Dataset, pandas.DataFrame or list of these
    fraction : float in (0, 1), default 0.2
    baselines : "default", None, list or dict name -> estimator
        ``"default"``: global linear, per-cell linear (regularised, default
        ``alpha``) and persistence, with the estimator's pairing parameters
        (:func:`default_baselines`).
    by_population : bool, default True
        Also score each population on its own (when there are several).
    common_targets : bool, default True
        Score every model on the targets that all models predict (they
        differ only when the pairing differs, e.g. persistence needs self
        pairs), so the scores are comparable.

    Returns
    -------
    pandas.DataFrame
        One row per (model, split, population): ``model``, ``split``
        (``"train"``/``"heldout"``), ``population`` (``"all"`` first),
        ``r2``, ``mse``, ``n_observations`` (scored targets), ``fit_seconds``.
        ``attrs["sessions"]`` is the split per session
        (:func:`heldout_split`), ``attrs["fraction"]`` the fraction.

    Examples
    --------
    >>> table = licchie.evaluate.heldout_table(LICCHIE(radius=30.0), rec)  # doctest: +SKIP
    >>> table.query("population == 'all'").pivot(index="model", columns="split",
    ...                                          values="r2")  # doctest: +SKIP
    """
    from sklearn.base import clone
    split = heldout_split(X, fraction)
    models = _named_models(estimator, baselines)
    o = split.full.obs
    train_frames = ~split.heldout_frames
    preds = {}
    for name, model in models.items():
        t0 = time.perf_counter()
        fitted = clone(model).fit(split.train)
        secs = time.perf_counter() - t0
        # train-frame observations are the same in both Recordings (same frames,
        # a subset of the observations): map the training predictions to full.obs
        i_tr, y_tr = observation_predictions(fitted, split.train, heldout=False)
        i_tr = np.flatnonzero(train_frames[o.frame])[i_tr]
        i_ho, y_ho = observation_predictions(fitted, split.full, heldout=True)
        preds[name] = (secs, {"train": (i_tr, y_tr), "heldout": (i_ho, y_ho)})
    common = {}
    for s in ("train", "heldout"):
        sets = [p[1][s][0] for p in preds.values()]
        common[s] = functools.reduce(np.intersect1d, sets) if common_targets else None
    rows = []
    for name, (secs, by_split) in preds.items():
        for s, frames in (("train", train_frames), ("heldout", split.heldout_frames)):
            idx, yhat = by_split[s]
            if common[s] is not None:
                m = np.isin(idx, common[s])
                idx, yhat = idx[m], yhat[m]
            for r in score_frames(o, idx, yhat, frames, by_population):
                rows.append({"model": name, "split": s, **r, "fit_seconds": secs})
    table = pd.DataFrame(rows, columns=["model", "split", "population", "r2", "mse",
                                        "n_observations", "fit_seconds"])
    table.attrs["sessions"] = split.sessions
    table.attrs["fraction"] = fraction
    return table
