"""Linear baselines of the paper (§5.1; MODEL.md, "Baselines"), and persistence.

:class:`Persistence` predicts that nothing changes: the next state of a cell
is its current state (the source of its self pair).  The two linear baselines
explain a target observation by the same sum over its pairs as LICCHIE
(MODEL.md, "Pairs" and "Model"), but with one interaction matrix shared by
many pairs instead of low-rank, pair-varying ``A_e``::

    GlobalLinear:   x[n,t] ~ sum_{e into (n,t)} g_e A~   x[k_e,t-1]
    PerCellLinear:  x[n,t] ~ sum_{e into (n,t)} g_e A~_n x[k_e,t-1]

Because ``A~`` does not depend on the pair, the sum collapses to
``A~ z[n,t]`` with the aggregated source state ``z[n,t] = sum_e g_e
x[k_e,t-1]``; each fit is an ordinary least-squares problem
``min sum ||x[n,t] - A~ z[n,t]||^2`` over the target observations that have
at least one pair (targets without pairs have no prediction, as in LICCHIE);
:class:`PerCellLinear` adds a ridge penalty pulling each ``A~_n`` toward
the global ``A~``.
There is no intercept, as in LICCHIE's model.  ``numpy.linalg.lstsq`` gives
the minimum-norm solution when the aggregated states do not span R^d.

Pairs, pair weights ``g_e`` and the pair coordinates of the results are
exactly LICCHIE's (:func:`licchie.fit.build_pairs`,
``licchie.labels.pair_coords``), so :meth:`interaction_matrices` lines up
with ``LICCHIE.weights_`` and with the ground truth of
:func:`licchie.synthetic.make_recording`.
"""
from __future__ import annotations

import numbers
import warnings

import numpy as np
import xarray as xr
from sklearn.base import BaseEstimator

from . import fit as F
from .data import as_recording
from .labels import format_prediction, no_pairs_message, pair_coords, r2 as _r2

__all__ = ["GlobalLinear", "PerCellLinear", "Persistence"]


def _param_error(cls, name, constraint, value):
    return ValueError(f"The {name!r} parameter of {cls} must be {constraint}. "
                      f"Got {value!r} instead.")


class _LinearBaseline(BaseEstimator):
    """Shared pairing, checks, prediction and result formatting."""

    def _validate_params(self):
        name = type(self).__name__
        r = self.radius
        if not (isinstance(r, numbers.Real) and not isinstance(r, bool) and r > 0
                and not np.isnan(r)):
            raise _param_error(name, "radius", "a number > 0 (inf allowed)", r)
        if self.pair_weight not in F.PAIR_WEIGHTS:
            raise _param_error(name, "pair_weight", f"one of {sorted(F.PAIR_WEIGHTS)}",
                               self.pair_weight)
        b = self.bandwidth
        if b is not None and not (isinstance(b, numbers.Real) and np.isfinite(b) and b > 0):
            raise _param_error(name, "bandwidth", "None or a finite number > 0", b)

    def _pairs(self, obs):
        return F.build_pairs(obs, self.radius, self.include_self, self.pair_weight,
                             self.bandwidth)

    def _design(self, X, fitting):
        """Recording, pairs, aggregated sources Z (n_targets, d), targets Y."""
        rec = as_recording(X)
        obs = rec.obs
        if not fitting:
            feat = list(self.feature_names_in_)
            if list(obs.feature_names) != feat:
                raise ValueError(f"The data's features {list(obs.feature_names)} differ "
                                 f"from the fitted features {feat}; pass data with the "
                                 "same features in the same order.")
        if not np.all(np.isfinite(obs.features)):
            raise NotImplementedError(
                "Some observations have NaN features (populations with different "
                "feature sets, MODEL.md 'Populations'); this is not supported yet.")
        pairs = self._pairs(obs)
        if pairs.n_pairs == 0:
            raise ValueError(no_pairs_message(obs, self.radius))
        Xf = obs.features
        Z = aggregate_sources(Xf, pairs)
        Y = Xf[pairs.tgt_obs]
        return rec, obs, pairs, Z, Y

    def _check_fitted(self):
        if not hasattr(self, "global_matrix_"):
            raise AttributeError(f"This {type(self).__name__} instance is not fitted yet. "
                                 "Call 'fit' with a recording first.")

    def _finish_fit(self, obs, pairs, Z, Y):
        feat = list(obs.feature_names)
        self.feature_names_in_ = np.array(feat, dtype=object)
        self.n_features_in_ = len(feat)
        self.n_pairs_ = pairs.n_pairs
        self.n_targets_ = int(pairs.tgt_obs.shape[0])
        self._train_pairs = pairs
        self._train_obs = obs
        self.in_sample_r2_ = _r2(Y, self._predict_targets(obs, pairs, Z))

    def predict(self, X):
        """One-step prediction of every target observation.

        Parameters
        ----------
        X : xarray.Dataset, Recording, DataFrame or list

        Returns
        -------
        xarray.DataArray (cell, time, feature) for a Dataset input (NaN where
        there is no prediction: unobserved, first frame, or no pair);
        otherwise a pandas.DataFrame with one row per predicted observation
        (the same types as :meth:`licchie.LICCHIE.predict`).
        """
        self._check_fitted()
        _, obs, pairs, Z, _ = self._design(X, fitting=False)
        yhat = self._predict_targets(obs, pairs, Z)
        return format_prediction(X, obs, pairs, yhat, list(self.feature_names_in_))

    def interaction_matrices(self, pairs=None):
        """The baseline's ``A_e`` of every training pair (``A~`` or ``A~_n``).

        Parameters
        ----------
        pairs : array of int, boolean mask or slice, optional
            Positions along the pair dimension (same pairs, same order as
            ``LICCHIE.weights_`` with the same pairing parameters).

        Returns
        -------
        xarray.DataArray (pair, target_feature, source_feature)
            With LICCHIE's pair coordinates ``target``, ``source``, ``time``,
            ``session``, ``target_population``, ``source_population``,
            ``is_self``, ``pooling_group``.
        """
        self._check_fitted()
        obs, p = self._train_obs, self._train_pairs
        A = self._pair_matrices(obs, p)
        feat = list(self.feature_names_in_)
        da = xr.DataArray(A, dims=("pair", "target_feature", "source_feature"),
                          coords={**pair_coords(obs, p), "target_feature": feat,
                                  "source_feature": feat}, name="interaction")
        return da if pairs is None else da.isel(pair=pairs)


class GlobalLinear(_LinearBaseline):
    """One interaction matrix ``A~`` for all pairs, by least squares.

    ``x[n,t] ~ sum_{e into (n,t)} g_e A~ x[k_e,t-1]`` (paper §5.1 baseline
    (a), "global time-fixed linear model").

    Parameters
    ----------
    radius, include_self, pair_weight, bandwidth
        Pairing, exactly as in :class:`licchie.LICCHIE`.

    Attributes
    ----------
    global_matrix_ : xarray.DataArray (target_feature, source_feature)
        ``A~``.
    in_sample_r2_ : float
        R^2 of the one-step prediction of the training targets.
    n_pairs_, n_targets_, feature_names_in_, n_features_in_
    """

    def __init__(self, radius=10.0, include_self=True, pair_weight="none", bandwidth=None):
        self.radius = radius
        self.include_self = include_self
        self.pair_weight = pair_weight
        self.bandwidth = bandwidth

    def fit(self, X, y=None):
        """Least-squares ``A~`` from a recording (``y`` ignored)."""
        self._validate_params()
        _, obs, pairs, Z, Y = self._design(X, fitting=True)
        A = lstsq_matrix(Z, Y)
        self.global_matrix_ = _matrix_da(A, obs.feature_names)
        self._finish_fit(obs, pairs, Z, Y)
        return self

    def _predict_targets(self, obs, pairs, Z):
        return Z @ self.global_matrix_.values.T

    def _pair_matrices(self, obs, pairs):
        return np.broadcast_to(self.global_matrix_.values,
                               (pairs.n_pairs,) + self.global_matrix_.shape).copy()

    def motifs(self, n_components):
        """Rank-one motifs of ``A~``: its top singular triplets ``u_j v_j^T``.

        Returns an xarray.Dataset like ``LICCHIE.components_``
        (``target_effect``/``source_effect (component, feature)``, unit
        vectors; ``stability`` NaN: a baseline has no starts to compare) plus
        ``scale (component)``, the singular values.  With ``n_components > d``
        the extra motifs have zero scale.
        """
        self._check_fitted()
        U, s, Vt = np.linalg.svd(self.global_matrix_.values)
        return _motif_ds(U.T, Vt, s, n_components, self.feature_names_in_)


class PerCellLinear(_LinearBaseline):
    """One interaction matrix ``A~_n`` per target cell, ridge-pulled to the global ``A~``.

    ``x[n,t] ~ sum_{e into (n,t)} g_e A~_n x[k_e,t-1]`` (paper §5.1 baseline
    (b), "per-cell linear dynamics"), one problem per target cell over that
    cell's target observations::

        A~_n = argmin_A  sum_t ||x[n,t] - A z[n,t]||^2  +  alpha * s * ||A - A~||_F^2

    where ``A~`` is the global least-squares matrix (:class:`GlobalLinear`)
    and ``s = ||Z||_F^2 / (n_targets d)`` is the mean squared entry of the
    aggregated sources of all training targets, so that ``alpha`` counts
    pseudo-observations: a cell with ``n`` observations along a
    well-determined direction keeps about ``n / (n + alpha)`` of its own
    deviation from ``A~``.  Each row of ``A~_n`` has ``d`` unknowns, so a cell
    with few more than ``d`` target observations is nearly under-determined;
    without the penalty (``alpha=0``) its matrix can be huge and its held-out
    predictions explode (the issue measured a held-out MSE of 32,612 on short
    tracks).  The default ``alpha = d`` (one pseudo-observation per unknown
    of a row) bounds those cells while long tracks keep most of their own
    fit; ``alpha=0`` is plain least squares, the behaviour before the
    penalty existed (numpy's minimum-norm solution when a cell's states do
    not span R^d).  Measured when the default was chosen (held-out MSE of z-scored
    features, last 30% of the frames of the 96 mammary TrackMate movies, d=6,
    radius 30): alpha 0 / 1 / 3 / 10 / 100 gave 2.68 / 0.90 / 0.78 / 0.72 /
    0.68 (global linear 0.68, persistence 0.45); on five small synthetic
    recordings (d=4) any alpha >= 1 removed the explosions of alpha=0
    (per-pair MSE against the truth within 30% of global linear, not 1.4-420x).

    **Fallback.**  A cell with fewer than ``min_observations`` target
    observations (default ``d``) gets ``A~`` itself, and so do cells that were
    never a target during the fit when predicting.  A warning names the number
    of such cells, and (with ``alpha=0``) of cells with fewer than ``2 d``
    observations, whose unregularised fits are poorly determined.

    Parameters
    ----------
    radius, include_self, pair_weight, bandwidth
        Pairing, exactly as in :class:`licchie.LICCHIE`.
    min_observations : int or None, default None
        Fewest target observations for a cell's own ``A~_n``; None means
        ``d``.
    alpha : float >= 0 or None, default None
        Ridge strength toward ``A~``, in pseudo-observations (see above);
        None means ``d``.  ``alpha=0`` reproduces unregularised per-cell
        least squares; ``alpha -> inf`` gives ``A~`` for every cell.

    Attributes
    ----------
    cell_matrices_ : xarray.DataArray (cell, target_feature, source_feature)
        ``A~_n`` of every cell of the training data, with coords
        ``n_observations`` (its target observations) and ``fallback`` (True
        where the global matrix is used).
    global_matrix_ : xarray.DataArray (target_feature, source_feature)
    alpha_ : float
        The ``alpha`` used (``d`` when ``alpha`` is None).
    ridge_ : float
        The penalty ``alpha_ * s`` actually used.
    in_sample_r2_, n_pairs_, n_targets_, feature_names_in_, n_features_in_
    """

    def __init__(self, radius=10.0, include_self=True, pair_weight="none", bandwidth=None,
                 min_observations=None, alpha=None):
        self.radius = radius
        self.include_self = include_self
        self.pair_weight = pair_weight
        self.bandwidth = bandwidth
        self.min_observations = min_observations
        self.alpha = alpha

    def fit(self, X, y=None):
        """Ridge-regularised ``A~_n`` per target cell (``y`` ignored)."""
        self._validate_params()
        m = self.min_observations
        if m is not None and not (isinstance(m, numbers.Integral) and not isinstance(m, bool)
                                  and m >= 1):
            raise _param_error("PerCellLinear", "min_observations", "None or an int >= 1", m)
        a = self.alpha
        if a is not None and not (isinstance(a, numbers.Real) and not isinstance(a, bool)
                                  and np.isfinite(a) and a >= 0):
            raise _param_error("PerCellLinear", "alpha", "None or a finite number >= 0", a)
        _, obs, pairs, Z, Y = self._design(X, fitting=True)
        d = obs.n_features
        a = float(d if a is None else a)
        need = d if m is None else int(m)
        A_glob = lstsq_matrix(Z, Y)
        ridge = a * float(np.sum(Z * Z)) / max(Z.size, 1)
        n_cells = obs.cell_ids.shape[0]
        tcell = obs.cell[pairs.tgt_obs]
        counts = np.bincount(tcell, minlength=n_cells)
        mats = np.broadcast_to(A_glob, (n_cells, d, d)).copy()
        fallback = counts < need
        order = np.argsort(tcell, kind="stable")
        bounds = np.concatenate([[0], np.cumsum(counts)])
        for c in np.flatnonzero(~fallback):
            rows = order[bounds[c]:bounds[c + 1]]
            mats[c] = (lstsq_matrix(Z[rows], Y[rows]) if ridge == 0.0
                       else ridge_matrix(Z[rows], Y[rows], A_glob, ridge))
        _warn_short_tracks(counts, fallback, d, need, a)
        feat = list(obs.feature_names)
        self.global_matrix_ = _matrix_da(A_glob, feat)
        self.cell_matrices_ = xr.DataArray(
            mats, dims=("cell", "target_feature", "source_feature"),
            coords={"cell": obs.cell_ids, "target_feature": feat, "source_feature": feat,
                    "n_observations": ("cell", counts), "fallback": ("cell", fallback)},
            name="cell_interaction")
        self.min_observations_ = need
        self.alpha_ = a
        self.ridge_ = ridge
        self._finish_fit(obs, pairs, Z, Y)
        return self

    def _cell_lookup(self, obs):
        """Matrix of every cell of ``obs`` (by cell label; unseen -> global)."""
        known = {c: k for k, c in enumerate(self.cell_matrices_["cell"].values.tolist())}
        mats = self.cell_matrices_.values
        out = np.broadcast_to(self.global_matrix_.values,
                              (obs.cell_ids.shape[0],) + self.global_matrix_.shape).copy()
        for k, c in enumerate(obs.cell_ids.tolist()):
            if c in known:
                out[k] = mats[known[c]]
        return out

    def _predict_targets(self, obs, pairs, Z):
        mats = self._cell_lookup(obs)[obs.cell[pairs.tgt_obs]]
        return np.einsum("nab,nb->na", mats, Z)

    def _pair_matrices(self, obs, pairs):
        return self._cell_lookup(obs)[obs.cell[pairs.tgt]]

    def motifs(self, n_components, random_state=0):
        """Rank-one motifs of the stacked ``A~_n`` (cells x d x d).

        CP/PARAFAC of rank ``n_components`` (tensorly, random init seeded by
        ``random_state``; LICCHIE's own initialisation,
        :func:`licchie.fit.parafac_init`), unit effects.  Returns a Dataset
        like ``LICCHIE.components_`` with ``stability`` NaN and
        ``scale (component)``, the root-mean-square weight of the motif over
        the cells.
        """
        self._check_fitted()
        A = np.ascontiguousarray(self.cell_matrices_.values)
        W, C, R = F.parafac_init(A, int(n_components), int(random_state))
        scale = np.sqrt(np.mean(W * W, axis=0))
        order = np.argsort(-scale, kind="stable")
        return _motif_ds(C.T[order], R.T[order], scale[order], n_components,
                         self.feature_names_in_)


class Persistence(_LinearBaseline):
    """"Next state = current state": each target predicted by its own previous state.

    The prediction of target ``(n, t)`` is ``x[n, t-1]``, the source of its
    self pair.  A target without a self pair (its cell was not observed in
    the previous frame, or the data have no track identity) but with other
    pairs is predicted by the gain-weighted mean of its sources,
    ``sum_e g_e x[k_e,t-1] / sum_e g_e`` (the plain mean with the default
    ``pair_weight="none"``, and whenever the gains sum to 0): "the
    neighbourhood stays as it is".  Targets are exactly those of
    :class:`GlobalLinear` and LICCHIE with the same pairing, so their scores
    are comparable.  Nothing is learned: ``fit`` records the features and the
    in-sample score.  :meth:`interaction_matrices` gives ``A_e = c_e I`` with
    ``sum_e g_e A_e x[k_e,t-1]`` the prediction (``I`` on self pairs with
    the default pair weights, 0 on the other pairs of a target that has one).

    Parameters
    ----------
    radius, pair_weight, bandwidth
        Pairing, exactly as in :class:`licchie.LICCHIE` (they decide which
        targets have a prediction and the mean of targets without self
        pair).
    include_self : bool, default True
        Must be True: persistence predicts from the self pair.  Accepted so
        that the pairing keywords of the other baselines can be passed as is.

    Attributes
    ----------
    self_fraction_ : float
        Fraction of the training targets predicted from their self pair
        (the rest from the mean of their sources).
    in_sample_r2_, n_pairs_, n_targets_, feature_names_in_, n_features_in_
    """

    def __init__(self, radius=10.0, include_self=True, pair_weight="none", bandwidth=None):
        self.radius = radius
        self.include_self = include_self
        self.pair_weight = pair_weight
        self.bandwidth = bandwidth

    def fit(self, X, y=None):
        """Record the features (``y`` ignored); nothing is estimated."""
        self._validate_params()
        if self.include_self is not True:
            raise _param_error("Persistence", "include_self",
                               "True (persistence predicts from the self pair)",
                               self.include_self)
        _, obs, pairs, Z, Y = self._design(X, fitting=True)
        self._finish_fit(obs, pairs, Z, Y)
        self.self_fraction_ = float(np.mean(_self_pair_of_target(pairs) >= 0)
                                    if pairs.tgt_obs.size else 0.0)
        return self

    def _check_fitted(self):
        if not hasattr(self, "in_sample_r2_"):
            raise AttributeError("This Persistence instance is not fitted yet. "
                                 "Call 'fit' with a recording first.")

    def _predict_targets(self, obs, pairs, Z):
        w = _persistence_weights(pairs)
        if w.size == 0:
            return np.zeros((0, obs.n_features))
        return np.add.reduceat(w[:, None] * obs.features[pairs.src], pairs.tgt_ptr[:-1], axis=0)

    def _pair_matrices(self, obs, pairs):
        # A_e = c_e I with sum_e g_e A_e x_e the prediction (c_e = w_e / g_e;
        # w_e where g_e = 0, so that the pair still shows its share)
        w = _persistence_weights(pairs)
        g = pairs.gain
        c = np.where(g > 0, w / np.where(g > 0, g, 1.0), w)
        return c[:, None, None] * np.eye(obs.n_features)[None]

    def motifs(self, n_components):
        """Rank-one motifs of the identity: ``e_j e_j^T`` with scale 1.

        Returns an xarray.Dataset like ``LICCHIE.components_`` (see
        :meth:`GlobalLinear.motifs`); motifs beyond ``d`` have zero scale.
        """
        self._check_fitted()
        d = self.n_features_in_
        return _motif_ds(np.eye(d), np.eye(d), np.ones(d), n_components,
                         self.feature_names_in_)


# ----------------------------------------------------------------- helpers
def _self_pair_of_target(pairs):
    """Position of each target's self pair in ``pairs`` (-1 where there is none)."""
    out = np.full(pairs.tgt_obs.shape[0], -1, dtype=np.int64)
    where = np.flatnonzero(pairs.is_self)
    # targets are CSR groups: the group of pair e is the k with ptr[k] <= e < ptr[k+1]
    out[np.searchsorted(pairs.tgt_ptr, where, side="right") - 1] = where
    return out


def _persistence_weights(pairs):
    """Weight of every pair's source in the persistence prediction, shape (n_pairs,).

    1 on self pairs, 0 on the other pairs of a target with a self pair; on
    the ``m`` pairs of a target without one, ``g_e / sum_e' g_e'`` (the
    gain-weighted mean), or ``1 / m`` when those gains sum to 0.
    """
    counts = np.diff(pairs.tgt_ptr)
    if counts.size == 0:
        return np.zeros(0)
    gsum = np.repeat(np.add.reduceat(pairs.gain, pairs.tgt_ptr[:-1]), counts)
    w = np.where(gsum > 0, pairs.gain / np.where(gsum > 0, gsum, 1.0),
                 1.0 / np.repeat(counts, counts))
    w[np.repeat(_self_pair_of_target(pairs) >= 0, counts)] = 0.0
    w[pairs.is_self] = 1.0
    return w


def aggregate_sources(X, pairs):
    """``z[n,t] = sum_{e into (n,t)} g_e x[k_e,t-1]`` for every target (rows of
    ``pairs.tgt_obs``)."""
    contrib = pairs.gain[:, None] * X[pairs.src]
    n_t = pairs.tgt_obs.shape[0]
    if n_t == 0:
        return np.zeros((0, X.shape[1]))
    return np.add.reduceat(contrib, pairs.tgt_ptr[:-1], axis=0)


def lstsq_matrix(Z, Y):
    """``argmin_A sum_i ||Y[i] - A Z[i]||^2`` (minimum norm), as a d x d matrix."""
    sol, *_ = np.linalg.lstsq(Z, Y, rcond=None)
    return np.ascontiguousarray(sol.T)


def ridge_matrix(Z, Y, A0, ridge):
    """``argmin_A sum_i ||Y[i] - A Z[i]||^2 + ridge ||A - A0||_F^2``, a d x d matrix.

    Solved as least squares for ``D = A - A0`` on the rows of ``Z`` stacked
    on ``sqrt(ridge) I`` (residual targets ``Y - Z A0^T`` stacked on zeros),
    which stays accurate when ``Z^T Z`` is nearly singular.

    Parameters
    ----------
    Z, Y : ndarray, shape (n, d)
    A0 : ndarray, shape (d, d)
    ridge : float > 0
    """
    d = Z.shape[1]
    Za = np.vstack([Z, np.sqrt(ridge) * np.eye(d)])
    Ra = np.vstack([Y - Z @ A0.T, np.zeros((d, Y.shape[1]))])
    sol, *_ = np.linalg.lstsq(Za, Ra, rcond=None)
    return np.ascontiguousarray(A0 + sol.T)


def _warn_short_tracks(counts, fallback, d, need, alpha):
    """Warn about cells with too few target observations for their own ``A~_n``.

    Parameters
    ----------
    counts : ndarray, shape (n_cells,), int
        Target observations of every cell (0 for cells never a target).
    fallback : ndarray, shape (n_cells,), bool
        Cells given the global matrix.
    d : int
        Features: the unknowns of every row of ``A~_n`` (``d * d`` in all).
    need : int
        ``min_observations`` in use.
    alpha : float
        The ridge strength in use.
    """
    targets = counts > 0
    n_fb = int((fallback & targets).sum())
    weak = int((~fallback & (counts < 2 * d)).sum()) if alpha == 0 else 0
    if not n_fb and not weak:
        return
    parts = []
    if n_fb:
        parts.append(f"{n_fb} of {int(targets.sum())} target cells have fewer target "
                     f"observations than min_observations={need} (default d={d}, the unknowns "
                     f"of each row of their {d}x{d} matrix) and use the global matrix")
    if weak:
        parts.append(f"{weak} cells have fewer than 2d={2 * d} target observations and, "
                     "with alpha=0, nearly under-determined matrices that can explode on "
                     "held-out frames; use alpha > 0 (the default alpha=None means d) to "
                     "shrink them toward the global matrix")
    warnings.warn("PerCellLinear: " + "; ".join(parts) + ".", UserWarning, stacklevel=3)


def _matrix_da(A, feat):
    feat = list(feat)
    return xr.DataArray(A, dims=("target_feature", "source_feature"),
                        coords={"target_feature": feat, "source_feature": feat},
                        name="interaction")


def _motif_ds(C, R, scale, J, feat):
    """components_-like Dataset from (k, d) unit effects, padded to J motifs."""
    d = len(feat)
    J = int(J)
    Cj = np.zeros((J, d))
    Rj = np.zeros((J, d))
    sj = np.zeros(J)
    k = min(J, C.shape[0])
    Cj[:k], Rj[:k], sj[:k] = C[:k], R[:k], scale[:k]
    # beyond the available rank: unit basis vectors with zero scale
    for j in range(k, J):
        Cj[j, j % d] = 1.0
        Rj[j, (j // d) % d] = 1.0
    comp = np.arange(J)
    return xr.Dataset({"target_effect": (("component", "feature"), Cj),
                       "source_effect": (("component", "feature"), Rj),
                       "scale": ("component", sj),
                       "stability": ("component", np.full(J, np.nan))},
                      coords={"component": comp, "feature": list(feat)})

