"""The start on the reduced objective (``A`` eliminated exactly).

With ``lam2 = lam3 = 0`` the A-step has a closed form, and eliminating ``A``
leaves an objective ``F(W, C, R)`` over the low-rank factors alone
(:mod:`licchie.kernels.reduced`).  :func:`reduced_inputs` gives its data
(source states, targets, per-target weights ``kappa``) and
:func:`reduced_init` minimises it by alternating exact least squares: the
refinement step of the ``"groups"`` start, and the data of the
``"classes"`` start.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import sparse

from ..kernels import reduced as KR
from .lstsq import ridge_solve
from .pooling import normalise_gains, unit_columns
from .problem import Problem


def reduced_inputs(problem: Problem):
    """Source states, targets and per-target weights of the reduced objective.

    ``kappa_t = 1 / (1 + sum_{e in t} ||z_e||^2 / lam_e)`` with the A-step's
    diagonal ``lam_e = lam1 + lam2 * (weighted graph degree of e)``: the
    factor by which the exact A-step (``lam2 = lam3 = 0``) shrinks a target's
    squared residual (see :mod:`licchie.kernels.reduced`).
    """
    p = problem.pairs
    lam1, lam2 = problem.lambdas[:2]
    Z = np.ascontiguousarray(p.gain[:, None] * problem.X[p.src])
    Y = np.ascontiguousarray(problem.X[p.tgt_obs])
    deg = np.zeros(p.n_pairs)
    if problem.graph.nbr_idx.size:
        owner = np.repeat(np.arange(p.n_pairs), np.diff(problem.graph.nbr_ptr))
        deg = np.bincount(owner, weights=problem.graph.nbr_w, minlength=p.n_pairs)
    lam_e = np.maximum(lam1 + lam2 * deg, problem.ridge)
    share = np.add.reduceat(np.einsum("ed,ed->e", Z, Z) / lam_e, p.tgt_ptr[:-1])
    kappa = 1.0 / (1.0 + share)
    return Z, Y, kappa


@dataclass
class ProfileBlocks:
    """Independent blocks of the profiles' normal equations, and their storage.

    Two groups are coupled only through a target with pairs in both, so the
    blocks are the groups of one :func:`~.pooling.gain_components` component
    (``group_label``); with class x time pooling the equations fall apart by
    frame.  Block ``b`` (the ``b``-th label in increasing order) holds its
    groups in increasing order, ``J`` unknowns each, and its ``(n J) x (n J)``
    matrix is stored row-major at ``offset[b]`` of one flat array
    (:func:`licchie.kernels.reduced.pooled_normal_equations` fills it).

    Attributes
    ----------
    J : int
    block_of, slot : int64 (n_groups,)
        Each group's block and its position among the block's groups.
    offset : int64 (n_blocks + 1,)
    block_n : int64 (n_blocks,)
        Groups per block.
    """

    J: int
    block_of: np.ndarray
    slot: np.ndarray
    offset: np.ndarray
    block_n: np.ndarray

    @classmethod
    def of(cls, group_label, J):
        """The layout of the components ``group_label`` (int, (n_groups,))."""
        _, block_of = np.unique(np.asarray(group_label), return_inverse=True)
        block_of = block_of.astype(np.int64).ravel()
        block_n = np.bincount(block_of).astype(np.int64)
        order = np.argsort(block_of, kind="stable")   # by block, groups increasing
        first = np.concatenate([[0], np.cumsum(block_n)[:-1]])
        slot = np.empty(block_of.size, np.int64)
        slot[order] = np.arange(block_of.size) - first[block_of[order]]
        offset = np.concatenate([[0], np.cumsum((block_n * J) ** 2)]).astype(np.int64)
        return cls(int(J), block_of, slot, offset, block_n)

    def kernel_args(self):
        """``(block_of, slot, offset, block_n)``, the kernel's last arguments."""
        return self.block_of, self.slot, self.offset, self.block_n

    @cached_property
    def _by_size(self):
        """``(size, blocks, unknowns)`` per matrix size: the blocks of that
        size in increasing order, and their unknowns ``(n_blocks, size)``
        (every call of a fit's settle step reads them: computed once)."""
        J = self.J
        order = np.argsort(self.block_of, kind="stable")
        groups = np.split(order, np.cumsum(self.block_n)[:-1])
        out = []
        for n in np.unique(self.block_n):
            blocks = np.flatnonzero(self.block_n == n)
            idx = np.stack([(groups[b][:, None] * J + np.arange(J)).ravel() for b in blocks])
            out.append((int(n) * J, blocks, idx))
        return out

    def _entries(self, size, blocks):
        """Flat positions ``(n_blocks, size, size)`` of those blocks' matrices."""
        return self.offset[blocks][:, None, None] + np.arange(size * size).reshape(size, size)

    def add_diagonal(self, gram, values):
        """``gram``'s diagonal entry of unknown ``i`` plus ``values[i]`` (in place)."""
        for size, blocks, idx in self._by_size:
            diag = self._entries(size, blocks)[:, np.arange(size), np.arange(size)]
            gram[diag] += values[idx]

    def solve(self, gram, rhs):
        """float64 (n_groups, J): the profiles, one batched solve per block size."""
        out = np.empty(self.block_of.size * self.J)
        for size, blocks, idx in self._by_size:
            sub = gram[self._entries(size, blocks)]
            out[idx] = np.linalg.solve(sub, rhs[idx][:, :, None])[:, :, 0]
        return out.reshape(-1, self.J)

    def from_matrix(self, matrix):
        """The blocks of a square matrix (dense or scipy sparse) over all unknowns."""
        gram = np.zeros(self.offset[-1])
        for size, blocks, idx in self._by_size:
            rows = np.repeat(idx, size, axis=1)
            cols = np.tile(idx, (1, size))
            vals = (np.asarray(matrix[rows.ravel(), cols.ravel()]).ravel()
                    if sparse.issparse(matrix) else matrix[rows, cols].ravel())
            gram[self._entries(size, blocks).ravel()] = vals
        return gram

    def triplets(self, gram):
        """``(row, col, value)`` of the non-zero entries, in row-major order
        (as ``scipy.sparse.coo_matrix`` of the dense matrix lists them)."""
        rows, cols, vals = [], [], []
        for size, blocks, idx in self._by_size:
            rows.append(np.repeat(idx, size, axis=1).ravel())
            cols.append(np.tile(idx, (1, size)).ravel())
            vals.append(gram[self._entries(size, blocks).ravel()])
        rows, cols, vals = (np.concatenate(x) for x in (rows, cols, vals))
        keep = vals != 0
        rows, cols, vals = rows[keep], cols[keep], vals[keep]
        order = np.lexsort((cols, rows))
        return rows[order].astype(np.int64), cols[order].astype(np.int64), vals[order]


def deviation_weight(lam4, lam5, z_sq_sum, n_pairs):
    """The penalty ``lam_dev`` of the per-pair deviations in :func:`reduced_init`.

    Deviations need a penalty to be unique: ``lam5``; without pooling a
    ridge of ``lam4``'s size stands in for the L1 term (or a tiny one, from
    the mean squared source state ``z_sq_sum / n_pairs``).
    """
    zscale = z_sq_sum / n_pairs if n_pairs else 1.0
    return lam5 + max(lam4, 1e-8 * max(zscale, 1e-300))


def profile_ridge(lam4, group_size, J):
    """float64 (n_groups * J,): ``lam4`` per pair of the group on each profile entry.

    Without it, weights on motifs whose source effect the data barely excite
    grow without bound in ``F``, which ignores ``lam2`` and ``lam4``.
    """
    return np.repeat(np.maximum(lam4, 1e-8) * np.maximum(group_size, 1.0), J)


def reduced_init(problem: Problem, J, seed, max_sweeps=200, tol=1e-6, C0=None, R0=None,
                 gain_rounds=5, gain_tol=1e-4):
    """Start factors from the reduced objective (A eliminated), random start.

    Alternating exact least squares on ``F(W, C, R)`` of
    :mod:`licchie.kernels.reduced`: all weights at once (group profiles with
    the per-pair deviations eliminated), then ``C``, then ``R``, the scale of
    ``C`` and ``R`` moved into the weights after each.  The L1 weight ``lam4``
    is left to the main iterations.  Starting factors are random unit
    vectors drawn from ``seed``.

    Returns
    -------
    W, C, R, history
        ``history`` is the value of ``F`` after every sweep.
    """
    rng = np.random.default_rng(seed)
    p = problem.pairs
    d = problem.X.shape[1]
    G = max(p.n_groups, 1)
    lam4, lam5 = float(problem.lambdas[3]), float(problem.lambdas[4])
    Z, Y, kappa = reduced_inputs(problem)
    zz = np.einsum("ed,ed->e", Z, Z)
    lam_dev = deviation_weight(lam4, lam5, float(np.sum(zz)), zz.size)
    rho = lam_dev / kappa
    group_size = np.bincount(p.group, minlength=G).astype(np.float64)
    ridge = profile_ridge(lam4, group_size, J)
    C = rng.normal(size=(d, J)) if C0 is None else np.array(C0, dtype=np.float64)
    R = rng.normal(size=(d, J)) if R0 is None else np.array(R0, dtype=np.float64)
    W = np.zeros((p.n_pairs, J))
    Wbar = np.zeros((G, J))
    W, C, R, Wbar = unit_columns(W, C, R, rng, Wbar)
    history = []

    tid = problem.pair_target
    gamma = np.ones(p.tgt_ptr.shape[0] - 1)
    comps = problem.gain_components
    blocks = ProfileBlocks.of(comps[0], J)

    def profiles(U, C, gamma):
        gram, rhs = KR.pooled_normal_equations(
            U, C, Y, kappa, p.tgt_ptr, p.group, G, lam5, rho, gamma, *blocks.kernel_args())
        blocks.add_diagonal(gram, ridge)
        return blocks.solve(gram, rhs)

    def weights(C, R, gamma):
        U = np.ascontiguousarray(Z @ R)
        if lam5 > 0:
            Wb = profiles(U, C, gamma)
            if problem.target_gain:
                # alternate exact updates of the gains and the profiles
                for _ in range(gain_rounds):
                    g_new = KR.target_gains(U, C, Y, p.tgt_ptr, p.group, Wb, rho, gamma)
                    g_new, _ = normalise_gains(g_new, Wb, comps)
                    change = np.max(np.abs(g_new - gamma))
                    gamma = g_new
                    Wb = profiles(U, C, gamma)
                    if change <= gain_tol:
                        break
        else:
            Wb = np.zeros((G, J))
        W = KR.pooled_deviations(U, C, Y, p.tgt_ptr, p.group, Wb, rho, gamma)
        return W, Wb, gamma

    def value(V, W, Wbar, C, R, gamma):
        S = np.einsum("tjm,mj->tj", V, R)
        res = Y - S @ C.T
        dev = W - gamma[tid, None] * Wbar[p.group]
        return float(kappa @ np.einsum("td,td->t", res, res) + lam5 * np.sum(dev * dev))

    prev = np.inf
    for sweep in range(max_sweeps):
        W, Wbar, gamma = weights(C, R, gamma)
        V = KR.target_source_sums(W, Z, p.tgt_ptr)
        S = np.einsum("tjm,mj->tj", V, R)
        kS = S * kappa[:, None]
        gram = kS.T @ S
        C = ridge_solve(gram, kS.T @ Y, 1e-12).T
        W, C, R, Wbar = unit_columns(W, C, R, rng, Wbar)
        V = KR.target_source_sums(W, Z, p.tgt_ptr)
        Vf = V.reshape(V.shape[0], J * d) * np.sqrt(kappa)[:, None]
        gram = (Vf.T @ Vf) * np.kron(C.T @ C, np.ones((d, d)))
        rhs = np.einsum("t,tj,tjm->jm", kappa, Y @ C, V).reshape(J * d)
        R = ridge_solve(gram, rhs, 1e-6).reshape(J, d).T.copy()
        W, C, R, Wbar = unit_columns(W, C, R, rng, Wbar)
        V = KR.target_source_sums(W, Z, p.tgt_ptr)
        f = value(V, W, Wbar, C, R, gamma)
        history.append(f)
        if abs(prev - f) <= tol * max(abs(f), np.finfo(float).tiny):
            break
        prev = f
    W, Wbar, gamma = weights(C, R, gamma)
    return np.ascontiguousarray(W), C, R, history

