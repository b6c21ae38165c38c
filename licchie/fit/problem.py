"""The fixed data of a fit (:class:`Problem`) and its exact block steps.

A :class:`Problem` holds the features, pairs, graph and hyper-parameters; its
methods are the objective and the block updates of MODEL.md (A-step,
component step, weight step, pooling profiles), each a call into the
kernels on plain arrays.  Populations with different feature sets
(``spaces``) take the per-space steps of :mod:`licchie.fit.spaces`.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .. import kernels as K
from .pairs import Graph, Pairs
from .pooling import gain_components, pooled_profiles, unit_columns

TERMS = ("fidelity", "low_rank", "smoothness", "l1_A", "l1_W", "pooling")
# A pair with no low-rank term and no graph neighbours gets this ridge,
# relative to the mean squared feature value: small enough to leave the
# objective unchanged to ~1e-10, large enough to keep the solve finite.
RIDGE_REL = 1e-10


@dataclass
class Problem:
    """Everything a fit needs that does not change during it."""

    X: np.ndarray
    pairs: Pairs
    graph: Graph
    lambdas: tuple  # (lam1, lam2, lam3, lam4, lam5)
    ridge: float = 1e-12
    # dtype of the pair-sized tensors (A_e and B_e); everything else, and
    # every sum over pairs, is float64
    dtype: type = np.float64
    # the targets' positions in the user's order (``order[new] = old``, see
    # :func:`licchie.fit.pairs.reorder`), or None: bootstrap resamples are
    # drawn in that order, so a fit does not depend on the order it works in
    target_order: np.ndarray = None
    # pooling toward gain[t(e)] * Wbar[g(e)], one gain per target (see
    # :func:`pooled_profiles`) instead of toward Wbar[g(e)] (MODEL.md)
    target_gain: bool = False
    # population feature spaces (:class:`~.spaces.Spaces`, for these pairs),
    # or None: one feature space, the model of MODEL.md.  With spaces, C and
    # R are (n_spaces, d, J) and X is zero-filled (union layout).
    spaces: object = None

    @cached_property
    def pair_target(self):
        """int64 (n_pairs,): the target (index into ``pairs.tgt_obs``) of each pair."""
        return self.pairs.pair_target

    @cached_property
    def gain_components(self):
        """:func:`~.pooling.gain_components` of the pooling groups (data only)."""
        return gain_components(self.pairs.group, self.pair_target, self.pairs.n_groups)

    @cached_property
    def _pair_index(self):
        return np.arange(self.pairs.n_pairs, dtype=np.int64)

    def pooling_prior(self, Wbar, gamma):
        """``(prior, index)`` with ``prior[index[e]]`` the pooling target of pair e."""
        if gamma is None:
            return Wbar, self.pairs.group
        return (np.ascontiguousarray(gamma[self.pair_target, None] * Wbar[self.pairs.group]),
                self._pair_index)

    def profiles(self, W, gamma=None):
        """The exact pooling block update: ``(Wbar, gamma)`` for weights W."""
        if not self.target_gain:
            return K.group_mean(W, self.pairs.group, self.pairs.n_groups), None
        return pooled_profiles(W, self.pairs.group, self.pairs.n_groups, self.pair_target,
                               gamma, comps=self.gain_components)

    def _classes(self, C):
        """The kernels' ``pair_class, class_space`` for factors ``C``."""
        if self.spaces is None or C.ndim == 2:
            return None, None
        return self.spaces.pair_class, self.spaces.class_space

    def lowrank(self, W, C, R):
        """``B_e = sum_j W[e, j] M_j`` of every pair (its class's motifs)."""
        if self.spaces is None:
            return K.lowrank_reconstruct(W, C, R, self.dtype)
        return self.spaces.lowrank(W, C, R, self.dtype)

    def unit_factors(self, W, C, R):
        """Unit effects with their scale in W (None for a dead column)."""
        if self.spaces is None:
            unit = unit_columns(W, C, R)
            return None if unit is None else unit[:3]
        return self.spaces.unit(W, C, R)

    def objective(self, A, W, C, R, Wbar, gamma=None):
        prior, index = self.pooling_prior(Wbar, gamma)
        t = K.objective_terms(A, self.X, self.pairs.tgt_obs, self.pairs.tgt_ptr,
                              self.pairs.src, self.pairs.gain, self.graph.nbr_ptr,
                              self.graph.nbr_idx, self.graph.nbr_w, W, C, R, prior,
                              index, *self._classes(C))
        lam1, lam2, lam3, lam4, lam5 = self.lambdas
        weighted = np.array([t[0], lam1 * t[1], lam2 * t[2], lam3 * t[3], lam4 * t[4],
                             lam5 * t[5]])
        return weighted

    def a_step(self, A_old, W, C, R, lam1=None, cd_max_iter=1000, cd_tol=1e-10, out=None):
        """The A-step from ``A_old`` into ``out`` (a new array if None; never
        ``A_old`` itself: the step is a Jacobi sweep)."""
        lam1_, lam2, lam3, _, _ = self.lambdas
        lam1 = lam1_ if lam1 is None else lam1
        A_new = np.empty_like(A_old) if out is None else out
        n_bad = K.a_step(A_old, self.X, self.pairs.tgt_obs, self.pairs.tgt_ptr,
                         self.pairs.src, self.pairs.gain, self.graph.nbr_ptr,
                         self.graph.nbr_idx, self.graph.nbr_w, W, C, R, lam1, lam2, lam3,
                         self.ridge, cd_max_iter, cd_tol, A_new, *self._classes(C))
        return A_new, int(n_bad)

    def component_step(self, A, W, C, R):
        """Exact unit-sphere updates of every c_j, then every r_j."""
        if self.spaces is not None:
            return self.spaces.component_step(A, W, C, R)
        G = W.T @ W
        # sum_e W[e,j] A_e r_j = S_j r_j and sum_e W[e,j] A_e^T c_j = S_j^T c_j
        # with S_j = sum_e W[e,j] A_e, which depends on neither C nor R: one
        # pass over A serves both half-steps
        S = K.weighted_sum(A, W)
        C = K.unit_sphere_sweep(K.times_columns(S, R), G, R.T @ R, C)
        R = K.unit_sphere_sweep(K.times_columns(S, C, transpose=True), G, C.T @ C, R)
        return C, R

    def weight_step(self, A, W, C, R, Wbar, gamma=None, max_iter=1000, tol=1e-10):
        lam1, _, _, lam4, lam5 = self.lambdas
        prior, index = self.pooling_prior(Wbar, gamma)
        if self.spaces is not None:
            W_new, n_bad = self.spaces.weight_step(A, W, C, R, prior, index, lam1, lam4,
                                                   lam5, max_iter, tol)
            Wbar_new, gamma_new = self.profiles(W_new, gamma)
            return W_new, Wbar_new, gamma_new, int(n_bad)
        b = K.bilinear_cr(A, C, R)
        G = (C.T @ C) * (R.T @ R)
        W_new, n_bad = K.weight_lasso(b, prior, index, G, lam1, lam4, lam5, W,
                                      max_iter, tol)
        Wbar_new, gamma_new = self.profiles(W_new, gamma)
        return W_new, Wbar_new, gamma_new, int(n_bad)
