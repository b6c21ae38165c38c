"""Linear baselines of the paper (§5.1; MODEL.md, "Baselines").

Both explain a target observation by the same sum over its pairs as LICCHIE
(MODEL.md, "Pairs" and "Model"), but with one interaction matrix shared by
many pairs instead of low-rank, pair-varying ``A_e``::

    GlobalLinear:   x[n,t] ~ sum_{e into (n,t)} g_e A~   x[k_e,t-1]
    PerCellLinear:  x[n,t] ~ sum_{e into (n,t)} g_e A~_n x[k_e,t-1]

Because ``A~`` does not depend on the pair, the sum collapses to
``A~ z[n,t]`` with the aggregated source state ``z[n,t] = sum_e g_e
x[k_e,t-1]``; each fit is an ordinary least-squares problem
``min sum ||x[n,t] - A~ z[n,t]||^2`` over the target observations that have
at least one pair (targets without pairs have no prediction, as in LICCHIE).
There is no intercept, as in LICCHIE's model.  ``numpy.linalg.lstsq`` gives
the minimum-norm solution when the aggregated states do not span R^d.

Pairs, pair weights ``g_e`` and the pair coordinates of the results are
exactly LICCHIE's (:func:`licchie._fit.build_pairs`,
``licchie.labels.pair_coords``), so :meth:`interaction_matrices` lines up
with ``LICCHIE.weights_`` and with the ground truth of
:func:`licchie.synthetic.make_recording`.
"""
from __future__ import annotations

import numbers

import numpy as np
import xarray as xr
from sklearn.base import BaseEstimator

from . import _fit as F
from .data import as_recording
from .labels import format_prediction, no_pairs_message, pair_coords, r2 as _r2

__all__ = ["GlobalLinear", "PerCellLinear"]


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
    """One interaction matrix ``A~_n`` per target cell, by least squares.

    ``x[n,t] ~ sum_{e into (n,t)} g_e A~_n x[k_e,t-1]`` (paper §5.1 baseline
    (b), "per-cell linear dynamics"), one least-squares problem per target
    cell over that cell's target observations.

    **Fallback.**  A cell with fewer than ``min_observations`` target
    observations (default ``d``, the number of unknowns per output feature:
    fewer leave every row of ``A~_n`` under-determined) gets the global
    ``A~`` fitted on all targets instead (:class:`GlobalLinear`), and so do
    cells that were never a target during the fit when predicting.  Cells
    with enough observations whose aggregated states still do not span R^d
    get numpy's minimum-norm least-squares solution.

    Parameters
    ----------
    radius, include_self, pair_weight, bandwidth
        Pairing, exactly as in :class:`licchie.LICCHIE`.
    min_observations : int or None, default None
        Fewest target observations for a cell's own ``A~_n``; None means
        ``d``.

    Attributes
    ----------
    cell_matrices_ : xarray.DataArray (cell, target_feature, source_feature)
        ``A~_n`` of every cell of the training data, with coords
        ``n_observations`` (its target observations) and ``fallback`` (True
        where the global matrix is used).
    global_matrix_ : xarray.DataArray (target_feature, source_feature)
    in_sample_r2_, n_pairs_, n_targets_, feature_names_in_, n_features_in_
    """

    def __init__(self, radius=10.0, include_self=True, pair_weight="none", bandwidth=None,
                 min_observations=None):
        self.radius = radius
        self.include_self = include_self
        self.pair_weight = pair_weight
        self.bandwidth = bandwidth
        self.min_observations = min_observations

    def fit(self, X, y=None):
        """Least-squares ``A~_n`` per target cell (``y`` ignored)."""
        self._validate_params()
        m = self.min_observations
        if m is not None and not (isinstance(m, numbers.Integral) and not isinstance(m, bool)
                                  and m >= 1):
            raise _param_error("PerCellLinear", "min_observations", "None or an int >= 1", m)
        _, obs, pairs, Z, Y = self._design(X, fitting=True)
        d = obs.n_features
        need = d if m is None else int(m)
        A_glob = lstsq_matrix(Z, Y)
        n_cells = obs.cell_ids.shape[0]
        tcell = obs.cell[pairs.tgt_obs]
        counts = np.bincount(tcell, minlength=n_cells)
        mats = np.broadcast_to(A_glob, (n_cells, d, d)).copy()
        fallback = counts < need
        order = np.argsort(tcell, kind="stable")
        bounds = np.concatenate([[0], np.cumsum(counts)])
        for c in np.flatnonzero(~fallback):
            rows = order[bounds[c]:bounds[c + 1]]
            mats[c] = lstsq_matrix(Z[rows], Y[rows])
        feat = list(obs.feature_names)
        self.global_matrix_ = _matrix_da(A_glob, feat)
        self.cell_matrices_ = xr.DataArray(
            mats, dims=("cell", "target_feature", "source_feature"),
            coords={"cell": obs.cell_ids, "target_feature": feat, "source_feature": feat,
                    "n_observations": ("cell", counts), "fallback": ("cell", fallback)},
            name="cell_interaction")
        self.min_observations_ = need
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
        :func:`licchie._fit.parafac_init`), unit effects.  Returns a Dataset
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


# ----------------------------------------------------------------- helpers
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

