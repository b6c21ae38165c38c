"""What the baselines share: parameter checks, pairing, the aggregated sources,
prediction, and the formatting of matrices and motifs.

Each baseline (:mod:`.linear`, :mod:`.persistence`) subclasses
:class:`_LinearBaseline` and provides ``fit``, ``_predict_targets`` and
``_pair_matrices``.

Populations with different feature sets (MODEL.md "Populations"): a
feature a source's population lacks counts as 0 in the aggregated sources
(as in LICCHIE's kernels), a target is fitted and scored only on the
features its population has (the least-squares rows use only the targets
that have that feature, :func:`licchie.baselines.linear.lstsq_matrix`), and
predictions are NaN on the features a target's population lacks.
"""
from __future__ import annotations

import numbers

import numpy as np
import xarray as xr
from sklearn.base import BaseEstimator

from .. import fit as F
from ..data import as_recording
from ..labels import format_prediction, no_pairs_message, pair_coords, r2 as _r2


def _param_error(cls, name, constraint, value):
    return ValueError(f"The {name!r} parameter of {cls} must be {constraint}. "
                      f"Got {value!r} instead.")


class _LinearBaseline(BaseEstimator):
    """Shared pairing, checks, prediction and result formatting.

    The pairing parameters are every baseline's; a subclass with more
    parameters defines its own ``__init__`` (scikit-learn's ``get_params``
    reads the signature of the class's ``__init__``).
    """

    # the fitted attribute whose presence means "fitted" (what predict needs)
    _fitted_attr = "global_matrix_"

    def __init__(self, radius=10.0, include_self=True, pair_weight="none", bandwidth=None):
        self.radius = radius
        self.include_self = include_self
        self.pair_weight = pair_weight
        self.bandwidth = bandwidth

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
        pairs = self._pairs(obs)
        if pairs.n_pairs == 0:
            raise ValueError(no_pairs_message(obs, self.radius))
        Z = aggregate_sources(F.zero_filled(obs.features), pairs)
        Y = obs.features[pairs.tgt_obs]  # NaN on features a target's population lacks
        return rec, obs, pairs, Z, Y

    def _check_fitted(self):
        if not hasattr(self, self._fitted_attr):
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
        self.in_sample_r2_ = _r2(Y, self._masked_targets(obs, pairs, Z))

    def _masked_targets(self, obs, pairs, Z):
        """Predictions, NaN on the features the target's population lacks."""
        yhat = np.array(self._predict_targets(obs, pairs, Z), dtype=float)
        yhat[~population_features(obs)[obs.population[pairs.tgt_obs]]] = np.nan
        return yhat

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
        yhat = self._masked_targets(obs, pairs, Z)
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


def population_features(obs):
    """bool (n_populations, d): the features of each population (those ever
    finite for it, MODEL.md "Populations")."""
    has = np.zeros((len(obs.population_names), obs.n_features), dtype=bool)
    np.logical_or.at(has, obs.population, np.isfinite(obs.features))
    return has


def aggregate_sources(X, pairs):
    """``z[n,t] = sum_{e into (n,t)} g_e x[k_e,t-1]`` for every target (rows of
    ``pairs.tgt_obs``)."""
    contrib = pairs.gain[:, None] * X[pairs.src]
    n_t = pairs.tgt_obs.shape[0]
    if n_t == 0:
        return np.zeros((0, X.shape[1]))
    return np.add.reduceat(contrib, pairs.tgt_ptr[:-1], axis=0)


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
