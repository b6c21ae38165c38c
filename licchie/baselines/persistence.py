"""Persistence: "next state = current state", the baseline every model must beat."""
from __future__ import annotations

import numpy as np

from ._base import _LinearBaseline, _motif_ds, _param_error


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

    # nothing is estimated: the score is the last thing fit sets
    _fitted_attr = "in_sample_r2_"

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

    def _predict_targets(self, obs, pairs, Z):
        w = _persistence_weights(pairs)
        if w.size == 0:
            return np.zeros((0, obs.n_features))
        # a feature a source's population lacks counts as 0 (module _base)
        X0 = np.nan_to_num(obs.features[pairs.src], nan=0.0)
        return np.add.reduceat(w[:, None] * X0, pairs.tgt_ptr[:-1], axis=0)

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
