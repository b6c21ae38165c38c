"""Model selection over contiguous time blocks (MODEL.md, "Evaluation").

Choosing ``n_components`` and the ``lambdas`` by held-out one-step
prediction, K-fold over contiguous blocks of time:

* :class:`TimeBlockSplit` -- a scikit-learn cross-validator: each session's
  frames (its first to its last observed frame) cut into ``n_splits``
  contiguous blocks; fold ``k`` holds out block ``k`` of every session.
  It splits Recordings (indices are observations) and tables (indices are
  rows), so :class:`sklearn.model_selection.GridSearchCV` can be used on a
  table with ``scoring=one_step_r2``.
* :func:`grid_search` -- the convenience: every setting of a grid on every
  fold (parallel through joblib), one DataFrame of mean and std held-out
  R^2 and MSE per setting, the best setting marked; optionally AIC/BIC of
  each setting fitted on all the data.
* :func:`one_step_r2`, :func:`neg_one_step_mse` -- scikit-learn scorers.

**No leakage.**  A fold fits on the observations outside its block only.
A pair belongs to its target's frame: a training target whose source frame
is in the block (the frame just after the block) has no pair in the fit,
and a held-out target is scored with its one-step prediction from the
observed frame before it (for the block's first frame, the last training
frame before the block: an input, never a fitted target).  Held-out frames
are never fitted.  With :class:`GridSearchCV` on a table, the test rows of a
fold also contain that one context frame before the block (with
``context=True``, the default): it has no previous frame among the test
rows, so it is predicted and scored by nobody, and the scores are those of
:func:`grid_search`.
"""
from __future__ import annotations

import numbers
import time
import warnings

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import BaseCrossValidator, ParameterGrid

from .evaluate.heldout import keep_observations, observation_predictions, score_frames

__all__ = ["TimeBlockSplit", "grid_search", "one_step_r2", "neg_one_step_mse"]


def _block_index(offset, n, n_splits):
    """Block of frames ``offset`` (0..n-1 from a session's first frame): the
    ``n`` frames cut as ``numpy.array_split`` cuts them."""
    ends = np.array([len(a) for a in np.array_split(np.arange(n), n_splits)]).cumsum()
    return np.searchsorted(ends, offset, side="right")


def _blocks(session, t, n_splits):
    """Block (0..n_splits-1) of every element from its (session, time) pair.

    Each session's span, first to last time present, is cut into
    ``n_splits`` contiguous blocks of near-equal length (``numpy.array_split``
    of its frames).

    Returns
    -------
    block : ndarray, shape (n,), int64
    spans : dict session -> (first, last)
    """
    block = np.empty(session.shape[0], dtype=np.int64)
    spans, short = {}, []
    for s in np.unique(session):
        m = session == s
        t0, t1 = int(t[m].min()), int(t[m].max())
        n = t1 - t0 + 1
        if n < n_splits:
            short.append(f"{s} ({n} frames)")
            continue
        block[m] = _block_index(t[m] - t0, n, n_splits)
        spans[s] = (t0, t1)
    if short:
        raise ValueError(f"n_splits={n_splits} time blocks need at least {n_splits} frames per "
                         f"session; too short: {', '.join(map(str, short[:10]))}.  Use fewer "
                         "splits or drop these sessions.")
    return block, spans


class TimeBlockSplit(BaseCrossValidator):
    """K-fold over contiguous time blocks, per session (scikit-learn splitter).

    Parameters
    ----------
    n_splits : int >= 2, default 5
    context : bool, default True
        For tables only: the test rows of a fold also hold the frame just
        before its block (unscored: see the module docstring), so that the
        block's first frame can be predicted from the test rows alone.
    frame, session : str, default "frame", "session"
        Columns of a table with the frame numbers and (if present) the
        session labels.

    Notes
    -----
    ``split(X)`` takes a table (``pandas.DataFrame``, one row per
    observation: indices are row positions) or anything
    :func:`licchie.as_recording` takes (indices are observations of the
    Recording).  An estimator reads a table with
    :meth:`licchie.Recording.from_table`'s default column names, which has
    no session column: for several sessions use :func:`grid_search`, which
    takes Recordings.
    """

    def __init__(self, n_splits=5, context=True, frame="frame", session="session"):
        self.n_splits = n_splits
        self.context = context
        self.frame = frame
        self.session = session

    def _check(self):
        k = self.n_splits
        if not (isinstance(k, numbers.Integral) and not isinstance(k, bool) and k >= 2):
            raise ValueError(f"n_splits must be an int >= 2; got {k!r}.")

    def get_n_splits(self, X=None, y=None, groups=None):
        return int(self.n_splits)

    def _rows(self, X):
        """(session, time) of every index of ``X``."""
        if isinstance(X, pd.DataFrame):
            if self.frame not in X.columns:
                raise ValueError(f"TimeBlockSplit needs the frame column {self.frame!r} in the "
                                 f"table (columns: {list(X.columns)[:12]}); pass frame=<name>.")
            if self.session in X.columns:
                sess = pd.factorize(X[self.session])[0].astype(np.int64)
                if sess.max(initial=0) > 0:
                    warnings.warn(
                        f"The table has {sess.max() + 1} sessions, but an estimator reads a "
                        "table without its session column (Recording.from_table defaults), so "
                        "their frames would be mixed; use licchie.select.grid_search with "
                        "Recording.from_table(df, session=...) for several sessions.",
                        UserWarning, stacklevel=3)
            else:
                sess = np.zeros(len(X), dtype=np.int64)
            return sess, X[self.frame].to_numpy().astype(np.int64)
        from .data import as_recording
        o = as_recording(X).obs
        return o.session, o.time_index

    def _iter_test_indices(self, X=None, y=None, groups=None):  # pragma: no cover - unused
        raise NotImplementedError

    def split(self, X, y=None, groups=None):
        """Yield (train, test) index arrays, one pair per block.

        Parameters
        ----------
        X : pandas.DataFrame or Recording-like
        y, groups : ignored

        Yields
        ------
        train, test : ndarray of int64
            Disjoint except, for a table with ``context=True``, the context
            frame before the block, which is in both (an input of the test
            rows, a target of the training rows).
        """
        self._check()
        sess, t = self._rows(X)
        block, spans = _blocks(sess, t, int(self.n_splits))
        is_table = isinstance(X, pd.DataFrame)
        for k in range(int(self.n_splits)):
            test = block == k
            train = ~test
            if is_table and self.context and k > 0:
                # the last frame before the block, per session
                first = np.full(sess.shape[0], np.iinfo(np.int64).max)
                for s in spans:
                    m = sess == s
                    if test[m].any():
                        first[m] = t[m & test].min()
                test = test | (t == first - 1)
            yield np.flatnonzero(train), np.flatnonzero(test)

    def test_frames(self, rec):
        """Held-out frames of every fold of a Recording.

        Parameters
        ----------
        rec : Recording

        Returns
        -------
        list of ndarray, shape (n_frames,), bool
            Fold ``k``'s block, frames of ``rec.obs`` (empty frames inside a
            session's span included).
        """
        self._check()
        o = rec.obs
        _, spans = _blocks(o.session, o.time_index, int(self.n_splits))
        fs, ft = o.frame_session, o.frame_time_index
        fblock = np.full(o.n_frames, -1, dtype=np.int64)
        for s, (t0, t1) in spans.items():
            m = (fs == s) & (ft >= t0) & (ft <= t1)
            fblock[m] = _block_index(ft[m] - t0, t1 - t0 + 1, int(self.n_splits))
        return [fblock == k for k in range(int(self.n_splits))]


# ----------------------------------------------------------------- scorers
def _score_all(estimator, X):
    from .data import as_recording
    rec = as_recording(X)
    idx, yhat = observation_predictions(estimator, rec, heldout=True)
    return score_frames(rec.obs, idx, yhat, np.ones(rec.obs.n_frames, bool), False)[0]


def one_step_r2(estimator, X, y=None):
    """Held-out one-step R^2 of a fitted model on ``X`` (a scikit-learn scorer).

    LICCHIE predicts with group profiles (MODEL.md, "Evaluation").  Use as
    ``GridSearchCV(..., scoring=licchie.select.one_step_r2)``.
    """
    return _score_all(estimator, X)["r2"]


def neg_one_step_mse(estimator, X, y=None):
    """Minus the held-out one-step MSE (a scikit-learn scorer: greater is better)."""
    return -_score_all(estimator, X)["mse"]


# ------------------------------------------------------------- grid search
def _expand(params):
    """``lambdas.<name>`` keys merged into one ``lambdas`` dict."""
    out, lam = {}, {}
    for k, v in params.items():
        if k.startswith("lambdas."):
            lam[k.split(".", 1)[1]] = v
        else:
            out[k] = v
    if lam:
        base = out.get("lambdas", {})
        if not isinstance(base, dict):
            from .params import Lambdas
            base = dict(zip(Lambdas._fields, base))
        out["lambdas"] = {**base, **lam}
    return out


def _fit_fold(estimator, params, rec, frames):
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        # one warning per fold and setting would drown the table; the user
        # sees them when fitting the chosen setting
        warnings.simplefilter("ignore")
        fitted = clone(estimator).set_params(**_expand(params)).fit(
            keep_observations(rec, ~frames[rec.obs.frame]))
        idx, yhat = observation_predictions(fitted, rec, heldout=True)
    r = score_frames(rec.obs, idx, yhat, frames, by_population=False)[0]
    r["fit_seconds"] = time.perf_counter() - t0
    return r


def grid_search(estimator, X, param_grid, cv=5, n_jobs=1, information_criteria=False,
                verbose=0):
    """Held-out one-step prediction of every setting of a grid, K-fold over time blocks.

    Parameters
    ----------
    estimator : LICCHIE or a baseline
        Unfitted; cloned for every fit.
    X : Recording, xarray.Dataset, pandas.DataFrame or list of these
    param_grid : dict or list of dicts
        As :class:`sklearn.model_selection.ParameterGrid`, e.g.
        ``{"n_components": [2, 4, 8], "lambdas.l1_W": [0.001, 0.01]}``; a
        key ``lambdas.<name>`` sets one lambda (merged into ``lambdas``).
    cv : int or TimeBlockSplit, default 5
    n_jobs : int, default 1
        Fits run in parallel (joblib; one process per job: keep each
        estimator's own ``n_jobs`` at 1).
    information_criteria : bool, default False
        Also fit every setting on all the data and report its AIC and BIC
        (:func:`licchie.evaluate.model_information_criteria`; LICCHIE only):
        one more fit per setting.
    verbose : int, default 0
        joblib's verbosity.

    Returns
    -------
    pandas.DataFrame
        One row per setting: its parameters, ``mean_r2``, ``std_r2``,
        ``mean_mse``, ``std_mse`` (over folds), ``mean_fit_seconds``,
        ``rank`` (1 = highest mean R^2) and ``best``; ``aic``, ``bic``,
        ``dof`` with ``information_criteria``.  ``attrs["best_params"]`` is
        the best setting (ready for ``set_params`` after
        ``lambdas.<name>`` keys are merged: use ``attrs["best_estimator_params"]``),
        ``attrs["folds"]`` the per-fold scores.
    """
    from joblib import Parallel, delayed

    from .data import as_recording
    rec = as_recording(X)
    splitter = TimeBlockSplit(cv) if isinstance(cv, numbers.Integral) else cv
    folds = splitter.test_frames(rec)
    grid = list(ParameterGrid(param_grid))
    tasks = [(i, k) for i in range(len(grid)) for k in range(len(folds))]
    res = Parallel(n_jobs=n_jobs, verbose=verbose)(
        delayed(_fit_fold)(estimator, grid[i], rec, folds[k]) for i, k in tasks)
    fold_rows = [{"setting": i, "fold": k, **grid[i], **r} for (i, k), r in zip(tasks, res)]
    per = pd.DataFrame(fold_rows)
    rows = []
    for i, p in enumerate(grid):
        f = per[per["setting"] == i]
        rows.append({**{k: _display(v) for k, v in p.items()},
                     "mean_r2": f["r2"].mean(), "std_r2": f["r2"].std(ddof=0),
                     "mean_mse": f["mse"].mean(), "std_mse": f["mse"].std(ddof=0),
                     "mean_fit_seconds": f["fit_seconds"].mean()})
    table = pd.DataFrame(rows)
    table["rank"] = table["mean_r2"].rank(ascending=False, method="min").astype(int)
    best = int(np.nanargmax(table["mean_r2"].to_numpy())) if table["mean_r2"].notna().any() else 0
    table["best"] = np.arange(len(table)) == best
    if information_criteria:
        from .evaluate.selection import model_information_criteria
        from .model import LICCHIE

        def _ic(p):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                m = clone(estimator).set_params(**_expand(p)).fit(rec)
            return model_information_criteria(m, rec) if isinstance(m, LICCHIE) else {}
        ics = Parallel(n_jobs=n_jobs, verbose=verbose)(delayed(_ic)(p) for p in grid)
        for key in ("aic", "bic", "dof"):
            table[key] = [ic.get(key, np.nan) for ic in ics]
    table.attrs["best_params"] = grid[best]
    table.attrs["best_estimator_params"] = _expand(grid[best])
    table.attrs["folds"] = per
    return table


def _display(v):
    # lists and dicts do not sit well in a DataFrame cell that pandas compares
    return repr(v) if isinstance(v, (dict, list)) else v
