"""Population feature spaces (MODEL.md "Populations", paper App. A.2).

Populations with the same feature list form one *feature space*; each space
``s`` has its own target and source effects ``C[s], R[s]`` (d, J), zero on
the features it lacks and of unit norm per component on the others.  A pair
from source space ``q`` to target space ``p`` (its *class*) uses
``A_e ~ sum_j W[e, j] C[p][:, j] R[q][:, j]^T``, the ``m_p x m_q`` block of
a union-layout ``A_e`` that is exactly zero elsewhere (the layout and why
the A-step keeps those zeros: :mod:`licchie.kernels.spaces`).

With one feature space the fit never builds a :class:`Spaces` (``Problem.spaces``
is None) and runs the model of MODEL.md unchanged.

The exact block steps per space (this module; docs/model-choices.md,
"Population feature spaces"):

* components: for the rows of space ``p`` every pair into ``p`` shares one
  denominator, so ``c_j^(p)`` is the unit vector along
  ``sum_q [S_pq,j r_j^(q) - sum_{i != j} (W_pq^T W_pq)[j, i] (r_i^(q) . r_j^(q)) c_i^(p)]``
  with ``S_pq,j = sum_{e in (p, q)} W[e, j] A_e``; then likewise every
  ``r_j^(q)`` with the new ``C``;
* weights: each class's pairs solve the weight LASSO with the class's Gram
  ``(C[p]^T C[p]) o (R[q]^T R[q])``.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .. import kernels as K


@dataclass
class Spaces:
    """The feature spaces of a fit and the class of every pair.

    Attributes
    ----------
    features : bool (n_spaces, d)
        The features of each space (rows of the union feature axis).
    population_space : int64 (n_populations,)
        Space of each population (-1: a population without observations).
    pair_class : int64 (n_pairs,)
        ``p * n_spaces + q`` for a pair from space ``q`` to space ``p``.
    """

    features: np.ndarray
    population_space: np.ndarray
    pair_class: np.ndarray

    @property
    def n_spaces(self) -> int:
        return self.features.shape[0]

    @property
    def n_classes(self) -> int:
        return self.n_spaces ** 2

    @cached_property
    def class_space(self):
        """int64 (n_classes, 2): (target space, source space) of each class."""
        S = self.n_spaces
        return np.ascontiguousarray(np.stack(np.divmod(np.arange(S * S), S), axis=1),
                                    dtype=np.int64)

    @cached_property
    def class_pairs(self):
        """The pairs of each class (list of int64 arrays, in pair order)."""
        order = np.argsort(self.pair_class, kind="stable")
        cuts = np.searchsorted(self.pair_class[order], np.arange(self.n_classes + 1))
        return [order[cuts[c]:cuts[c + 1]] for c in range(self.n_classes)]

    def for_pairs(self, obs, pairs):
        """These spaces with the classes of ``pairs`` (in their order)."""
        pop = obs.population
        cls = (self.population_space[pop[pairs.tgt]] * self.n_spaces
               + self.population_space[pop[pairs.src]])
        return Spaces(self.features, self.population_space,
                      np.ascontiguousarray(cls, dtype=np.int64))

    def class_sizes(self):
        """int64 (n_classes,): ``m_p * m_q``, the entries of each class's block."""
        m = self.features.sum(axis=1)
        cs = self.class_space
        return m[cs[:, 0]] * m[cs[:, 1]]

    def flat(self, F):
        """Per-space unit effects ``F`` (n_spaces, d, J) as one unit vector per
        component ((n_spaces * d, J))."""
        return np.ascontiguousarray(F.reshape(-1, F.shape[2]) / np.sqrt(self.n_spaces))


    # ------------------------------------------------------------ factors
    def unit(self, W, C, R, rng=None):
        """Unit columns of every ``C[s]`` and ``R[s]``, their scale moved into W.

        A dead column (zero or non-finite norm) restarts at a random unit
        direction on the space's features with zero weight on the pairs
        that use it when ``rng`` is given; without ``rng`` the result is None.

        Returns
        -------
        (W, C, R) C-contiguous, or None
        """
        W = np.array(W, dtype=np.float64, order="C")
        C = np.array(C, dtype=np.float64, order="C")
        R = np.array(R, dtype=np.float64, order="C")
        nc = np.linalg.norm(C, axis=1)  # (S, J)
        nr = np.linalg.norm(R, axis=1)
        cs = self.class_space
        for F, nf, side in ((C, nc, 0), (R, nr, 1)):
            dead = ~((nf > 0) & np.isfinite(nf))
            if not dead.any():
                continue
            if rng is None:
                return None
            for s, j in zip(*np.nonzero(dead)):
                F[s, :, j] = rng.normal(size=F.shape[1]) * self.features[s]
                nf[s, j] = np.linalg.norm(F[s, :, j])
                for c in np.flatnonzero(cs[:, side] == s):
                    W[self.class_pairs[c], j] = 0.0
        for c, idx in enumerate(self.class_pairs):
            p, q = cs[c]
            W[idx] *= nc[p] * nr[q]
        C /= nc[:, None, :]
        R /= nr[:, None, :]
        return W, C, R

    def split(self, W, C, R, seed):
        """Union-layout factors (one ``C``, ``R`` (d, J)) as per-space factors:
        each space keeps its features' rows, normalised (a PARAFAC start)."""
        C3 = C[None, :, :] * self.features[:, :, None]
        R3 = R[None, :, :] * self.features[:, :, None]
        return self.unit(W, C3, R3, np.random.default_rng([int(seed), 15]))

    def lowrank(self, W, C, R, dtype=np.float64):
        """``B_e = sum_j W[e, j] C[p][:, j] R[q][:, j]^T`` (n, d, d) for the pairs' classes."""
        d = C.shape[1]
        out = np.zeros((W.shape[0], d, d), dtype=dtype)
        for c, idx in enumerate(self.class_pairs):
            if len(idx):
                p, q = self.class_space[c]
                out[idx] = K.lowrank_reconstruct(np.ascontiguousarray(W[idx]), C[p], R[q],
                                                 dtype)
        return out

    def predict(self, X, tgt_ptr, src, W, gain, C, R):
        """``K.predict_lowrank`` with each pair's class effects (n_targets, d)."""
        out = np.zeros((tgt_ptr.shape[0] - 1, X.shape[1]))
        for c, idx in enumerate(self.class_pairs):
            if len(idx):
                p, q = self.class_space[c]
                Wc = np.zeros_like(W)
                Wc[idx] = W[idx]
                out += K.predict_lowrank(X, tgt_ptr, src, gain, Wc, C[p], R[q])
        return out

    # ------------------------------------------------------------ block steps
    def component_step(self, A, W, C, R):
        """Exact unit-sphere updates of every ``C[p]``, then every ``R[q]``."""
        S_ = self.n_spaces
        cs = self.class_space
        Ssum = K.weighted_sum_classes(A, W, self.pair_class, self.n_classes)
        G = [W[idx].T @ W[idx] for idx in self.class_pairs]
        used = [len(idx) > 0 for idx in self.class_pairs]
        C = C.copy()
        R = R.copy()
        ones = np.ones((W.shape[1], W.shape[1]))
        for p in range(S_):
            P = np.zeros(C.shape[1:])
            Geff = np.zeros(ones.shape)
            for c in np.flatnonzero((cs[:, 0] == p) & used):
                q = cs[c, 1]
                P += K.times_columns(Ssum[c], R[q])
                Geff += G[c] * (R[q].T @ R[q])
            if np.any(Geff):
                # rows outside the space are exactly 0 already; the mask
                # only guards the block structure against rounding elsewhere
                C[p] = K.unit_sphere_sweep(P * self.features[p][:, None], Geff, ones, C[p])
        for q in range(S_):
            P = np.zeros(R.shape[1:])
            Geff = np.zeros(ones.shape)
            for c in np.flatnonzero((cs[:, 1] == q) & used):
                p = cs[c, 0]
                P += K.times_columns(Ssum[c], C[p], transpose=True)
                Geff += G[c] * (C[p].T @ C[p])
            if np.any(Geff):
                R[q] = K.unit_sphere_sweep(P * self.features[q][:, None], Geff, ones, R[q])
        return C, R

    def weight_step(self, A, W, C, R, prior, index, lam1, lam4, lam5, max_iter, tol):
        """The weight LASSO of every class with its own Gram; returns (W, n_bad)."""
        b = K.bilinear_classes(A, C, R, self.pair_class, self.class_space)
        W_new = np.array(W, dtype=np.float64, order="C")
        n_bad = 0
        for c, idx in enumerate(self.class_pairs):
            if not len(idx):
                continue
            p, q = self.class_space[c]
            G = (C[p].T @ C[p]) * (R[q].T @ R[q])
            Wc, nb = K.weight_lasso(np.ascontiguousarray(b[idx]), prior,
                                    np.ascontiguousarray(index[idx]), G, lam1, lam4, lam5,
                                    np.ascontiguousarray(W[idx]), max_iter, tol)
            W_new[idx] = Wc
            n_bad += nb
        return W_new, n_bad


def feature_spaces(obs):
    """The feature spaces of a recording's populations, or None for one space.

    Populations with identical feature sets (the features finite for one of
    their observations) share a space, so a recording whose populations all
    have the same features is the model of MODEL.md.

    Returns
    -------
    Spaces (without pairs: :meth:`Spaces.for_pairs`) or None

    Raises
    ------
    ValueError
        When a population with observations has no finite feature.
    """
    X = obs.features
    finite = np.isfinite(X)
    if finite.all():
        return None
    pop = obs.population
    n_pop = len(obs.population_names)
    has = np.zeros((n_pop, X.shape[1]), bool)
    seen = np.zeros(n_pop, bool)
    for p in range(n_pop):
        rows = pop == p
        seen[p] = rows.any()
        has[p] = finite[rows].any(axis=0)
    empty = [obs.population_names[p] for p in range(n_pop) if seen[p] and not has[p].any()]
    if empty:
        raise ValueError(
            f"Population(s) {empty} have no finite feature: every observation of theirs "
            "is NaN in every feature. Give each population at least one feature, or drop "
            "those populations from the data.")
    spaces, space_of = [], np.full(n_pop, -1, np.int64)
    for p in np.flatnonzero(seen):
        for s, f in enumerate(spaces):
            if np.array_equal(f, has[p]):
                space_of[p] = s
                break
        else:
            space_of[p] = len(spaces)
            spaces.append(has[p])
    if len(spaces) == 1:
        return None
    return Spaces(np.array(spaces), space_of, np.zeros(0, np.int64))


def zero_filled(X):
    """``X`` with its missing (NaN) features set to 0, the union layout's fill."""
    return np.ascontiguousarray(np.where(np.isfinite(X), X, 0.0))


def motif_agreement(C1, R1, C2, R2):
    """:func:`licchie.fit.diagnostics.motif_agreement` for per-space effects
    (n_spaces, d, J): the similarity of two motifs is the mean over spaces of
    ``|c.c'| |r.r'|``.  Each space's sign is free (a sign flip of ``c^(p)``
    and ``r^(p)`` together is absorbed by the weights of the classes that
    use one of them), so spaces are compared one at a time.

    Returns
    -------
    sim : float64 (J1,), match : int64 (J1,)
    """
    from .diagnostics import matched_cosines

    return matched_cosines(np.mean(np.abs(np.matmul(C1.transpose(0, 2, 1), C2)
                                          * np.matmul(R1.transpose(0, 2, 1), R2)), axis=0))
