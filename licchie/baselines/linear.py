"""The two linear baselines of the paper (§5.1; MODEL.md, "Baselines").

:class:`GlobalLinear` fits one ``A~`` for all pairs, :class:`PerCellLinear`
one ``A~_n`` per target cell, ridge-pulled toward ``A~``; both by least
squares on the aggregated sources (see :mod:`licchie.baselines`).
"""
from __future__ import annotations

import numbers
import warnings

import numpy as np
import xarray as xr

from .. import fit as F
from ._base import _LinearBaseline, _matrix_da, _motif_ds, _param_error


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
        super().__init__(radius, include_self, pair_weight, bandwidth)
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


def lstsq_matrix(Z, Y):
    """``argmin_A sum_i ||Y[i] - A Z[i]||^2`` (minimum norm), as a d x d matrix.

    Entries of ``Y`` that are NaN (a feature the target's population lacks)
    are left out: row ``a`` of ``A`` is fitted on the targets with a finite
    ``Y[:, a]`` (NaN when no target has it).
    """
    fin = np.isfinite(Y)
    if fin.all():
        sol, *_ = np.linalg.lstsq(Z, Y, rcond=None)
        return np.ascontiguousarray(sol.T)
    A = np.full((Y.shape[1], Z.shape[1]), np.nan)
    # one solve per set of targets: features present together share it
    patterns, which = np.unique(fin.T, axis=0, return_inverse=True)
    for k, rows in enumerate(patterns):
        if not rows.any():
            continue
        a = np.flatnonzero(which.ravel() == k)
        sol, *_ = np.linalg.lstsq(Z[rows], Y[np.ix_(rows, a)], rcond=None)
        A[a] = sol.T
    return np.ascontiguousarray(A)


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
    # a feature the target lacks (NaN) or a row A0 could not fit (NaN, no
    # target had the feature) adds no residual: that row stays A0's
    R0 = np.nan_to_num(Y - Z @ np.nan_to_num(A0).T)
    Ra = np.vstack([R0, np.zeros((d, Y.shape[1]))])
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
