"""Kernels of the reduced objective: LICCHIE's ``L`` with the ``A_e`` eliminated.

With ``lam2 = lam3 = 0`` the A-step of MODEL.md is exact per target, and its
minimum value turns ``L`` into a function of the low-rank factors alone::

    F(W, C, R) = sum_t kappa_t || y_t - sum_{e in t} B_e z_e ||^2
                 + lam5 sum_e || W[e] - Wbar[g(e)] ||^2,
    kappa_t    = 1 / (1 + sum_{e in t} ||z_e||^2 / lam_e),

where ``B_e = sum_j W[e,j] c_j r_j^T``, ``z_e = g_e x[k_e, t-1]`` and
``lam_e`` is the A-step's diagonal (``lam1`` plus ``lam2`` times the pair's
graph degree).  With ``lam2 > 0`` the neighbours' pull is dropped, so ``F``
is then an approximation used only to *start* a fit.  Fitting ``F`` lets the
data reach the motifs directly, instead of through ``A``, one A-step at a
time; see :func:`licchie.fit.reduced_init`.

The prediction is ``sum_j c_j (r_j . V[t, j])`` with ``V[t, j] = sum_{e in t}
W[e, j] z_e``, and with ``u_ej = r_j . z_e`` it is linear in the weights:
``sum_{e, j} W[e, j] u_ej c_j``.  So for fixed ``C, R`` the weights of one
target solve a ridge problem whose design ``Q_t = [u_ej c_j]`` has the small
Gram ``Q_t Q_t^T = C diag(mu_t) C^T`` with ``mu_tj = sum_{e in t} u_ej^2``.
"""
import numpy as np
from numba import njit

from . import _parallel
from ._config import JIT
from ._linalg import cholesky, cholesky_solve, cholesky_solve_columns

# targets per parallel task
_TARGETS_PER_TASK = 64


def target_source_sums(W, Z, tgt_ptr):
    """``V[t, j] = sum_{e in t} W[e, j] z_e``.

    Parameters
    ----------
    W : float64 (n_pairs, J)
    Z : float64 (n_pairs, d)
        Gain-weighted source states ``g_e x[k_e, t-1]``.
    tgt_ptr : int64 (n_targets + 1,)

    Returns
    -------
    V : float64 (n_targets, J, d)
    """
    nt = tgt_ptr.shape[0] - 1
    V = np.zeros((nt, W.shape[1], Z.shape[1]))
    _parallel.run(_source_sum_tasks, (nt + _TARGETS_PER_TASK - 1) // _TARGETS_PER_TASK,
                  W, Z, tgt_ptr, V)
    return V


@njit(**JIT)
def _source_sum_tasks(t0, t1, W, Z, tgt_ptr, V):
    """The targets of tasks ``t0:t1`` of :func:`target_source_sums`."""
    nt = tgt_ptr.shape[0] - 1
    J = W.shape[1]
    d = Z.shape[1]
    for t in range(t0 * _TARGETS_PER_TASK, min(nt, t1 * _TARGETS_PER_TASK)):
        for e in range(tgt_ptr[t], tgt_ptr[t + 1]):
            for j in range(J):
                w = W[e, j]
                if w != 0.0:
                    for m in range(d):
                        V[t, j, m] += w * Z[e, m]


@njit(**JIT)
def _target_system(C, U, e0, e1, rho, M):
    """Lower Cholesky factor of ``C diag(mu) C^T + rho I`` into ``M`` (d, d)."""
    d, J = C.shape
    for a in range(d):
        for b in range(a + 1):
            M[a, b] = 0.0
    for j in range(J):
        mu = 0.0
        for e in range(e0, e1):
            mu += U[e, j] * U[e, j]
        if mu != 0.0:
            for a in range(d):
                ca = mu * C[a, j]
                for b in range(a + 1):
                    M[a, b] += ca * C[b, j]
    for a in range(d):
        M[a, a] += rho
    # in place; rho > 0 keeps it positive definite, so a pivot that is not
    # positive comes from rounding or non-finite input: NaN, as its root
    if not cholesky(M, d, M, 0.0):
        M[:, :] = np.nan


@njit(**JIT)
def pooled_normal_equations(U, C, Y, kappa, tgt_ptr, group, n_groups, lam5, rho, gamma,
                            block_of, slot, offset, block_n):
    """Normal equations of the group profiles with the deviations eliminated.

    For fixed ``C, R`` and ``W[e] = Wbar[g(e)] + delta_e``, minimising ``F``
    over every ``delta`` leaves, per target, the quadratic
    ``(y - H Wbar)^T Omega (y - H Wbar)`` with
    ``Omega = lam5 (Q Q^T + rho_t I)^-1`` and ``rho_t = lam5 / kappa_t``, where
    ``H`` maps the profiles of the target's groups to its prediction
    (``H_g = gamma_t C diag(sum_{e in t, g(e)=g} u_e)``; ``gamma_t`` the
    target's gain, all ones for MODEL.md's pooling).

    Two groups meet only through a target with pairs in both, so the Gram
    matrix is block diagonal over the components of groups linked by
    targets (with class x frame pooling, the frames); only those blocks are
    stored (:class:`licchie.fit.reduced_start.ProfileBlocks`): a dense
    ``(n_groups J)^2`` Gram was 6 GB for a class x frame fit of 96 movies.

    Parameters
    ----------
    U : float64 (n_pairs, J)
        ``u_ej = r_j . z_e``.
    C : float64 (d, J)
    Y : float64 (n_targets, d)
    kappa : float64 (n_targets,)
    tgt_ptr : int64 (n_targets + 1,)
    group : int64 (n_pairs,)
    n_groups : int
    lam5 : float > 0
    rho : float64 (n_targets,)
        ``lam5 / kappa_t``.
    gamma : float64 (n_targets,)
        Target gains (pooling toward ``gamma_t Wbar[g(e)]``).
    block_of, slot : int64 (n_groups,)
        Each group's block, and its position among the block's groups.
    offset : int64 (n_blocks + 1,)
        Where each block's ``(n J) x (n J)`` matrix starts in ``gram``
        (row-major; ``n = block_n[b]``).
    block_n : int64 (n_blocks,)
        Groups per block.

    Returns
    -------
    gram : float64 (offset[-1],)
        The blocks: entry ``(slot[g] J + j, slot[h] J + i)`` of block ``b``
        couples profile entries ``(g, j)`` and ``(h, i)`` of its groups.
    rhs : float64 (n_groups * J,)

    Raises
    ------
    ValueError
        When one target's groups lie in two blocks (a layout that is not
        the components of the pairs' groups).
    """
    d, J = C.shape
    nt = tgt_ptr.shape[0] - 1
    gram = np.zeros(offset[-1])
    rhs = np.zeros(n_groups * J)
    M = np.empty((d, d))
    # a target's groups lie in one block: per-target scratch for the largest
    most = 0
    for b in range(block_n.shape[0]):
        most = max(most, block_n[b])
    gl = np.empty(most, np.int64)   # the target's groups, in a small list
    H = np.empty((d, most * J))
    OH = np.empty((d, most * J))
    Oy = np.empty(d)
    row = np.empty(most * J)
    for t in range(nt):
        e0, e1 = tgt_ptr[t], tgt_ptr[t + 1]
        _target_system(C, U, e0, e1, rho[t], M)
        ng = 0
        b = -1
        for e in range(e0, e1):
            g = group[e]
            if b < 0:
                b = block_of[g]
            elif block_of[g] != b:   # before gl could overflow
                raise ValueError("a target's groups lie in two blocks of the layout")
            seen = False
            for k in range(ng):
                if gl[k] == g:
                    seen = True
                    break
            if not seen:
                gl[ng] = g
                ng += 1
        if ng == 0:   # a target without pairs adds nothing
            continue
        n = ng * J
        # H columns: (group k, component j) -> C[:, j] * sum of u over the group
        H[:, :n] = 0.0
        for e in range(e0, e1):
            g = group[e]
            k = 0
            while gl[k] != g:
                k += 1
            for j in range(J):
                u = U[e, j] * gamma[t]
                for a in range(d):
                    H[a, k * J + j] += u * C[a, j]
        # Omega H and Omega y
        for a in range(d):
            for c in range(n):
                OH[a, c] = H[a, c]
        cholesky_solve_columns(M, d, OH, n)
        for a in range(d):
            for c in range(n):
                OH[a, c] = lam5 * OH[a, c]
        for a in range(d):
            Oy[a] = Y[t, a]
        cholesky_solve(M, d, Oy)
        for a in range(d):
            Oy[a] *= lam5
        width = block_n[b] * J
        for k1 in range(ng):
            for j1 in range(J):
                c1 = k1 * J + j1
                s = 0.0
                for a in range(d):
                    s += H[a, c1] * Oy[a]
                rhs[gl[k1] * J + j1] += s
                # row c1 of H^T Omega H: every entry summed over a in order
                for c2 in range(n):
                    row[c2] = 0.0
                for a in range(d):
                    h = H[a, c1]
                    for c2 in range(n):
                        row[c2] += h * OH[a, c2]
                base = offset[b] + (slot[gl[k1]] * J + j1) * width
                for k2 in range(ng):
                    q = base + slot[gl[k2]] * J
                    for j2 in range(J):
                        gram[q + j2] += row[k2 * J + j2]
    return gram, rhs


@njit(**JIT)
def _add_profile_prediction(C, U, e0, e1, group, Wbar, scale, out):
    """``out += scale * sum_{e in e0:e1} sum_j Wbar[g(e), j] u_ej c_j``."""
    d, J = C.shape
    for e in range(e0, e1):
        g = group[e]
        for j in range(J):
            s = scale * Wbar[g, j] * U[e, j]
            if s != 0.0:
                for a in range(d):
                    out[a] += s * C[a, j]


def pooled_deviations(U, C, Y, tgt_ptr, group, Wbar, rho, gamma):
    """Per-pair weights ``W[e] = gamma_t Wbar[g(e)] + delta_e`` given the profiles.

    ``delta`` of a target minimises ``kappa ||r - Q delta||^2 + lam5 ||delta||^2``
    with ``r = y - H Wbar``: ``delta = Q^T (Q Q^T + rho I)^-1 r``, i.e.
    ``delta_ej = u_ej (c_j . v)`` with ``v = (Q Q^T + rho I)^-1 r``.
    ``gamma`` (n_targets,) are the target gains (ones: MODEL.md's pooling).

    Returns
    -------
    W : float64 (n_pairs, J)
    """
    nt = tgt_ptr.shape[0] - 1
    W = np.empty((U.shape[0], C.shape[1]))
    _parallel.run(_deviation_tasks, (nt + _TARGETS_PER_TASK - 1) // _TARGETS_PER_TASK,
                  U, C, Y, tgt_ptr, group, Wbar, rho, gamma, W)
    return W


@njit(**JIT)
def _deviation_tasks(t0, t1, U, C, Y, tgt_ptr, group, Wbar, rho, gamma, W):
    """The targets of tasks ``t0:t1`` of :func:`pooled_deviations`."""
    d, J = C.shape
    nt = tgt_ptr.shape[0] - 1
    M = np.empty((d, d))
    r = np.empty(d)
    cv = np.empty(J)
    for t in range(t0 * _TARGETS_PER_TASK, min(nt, t1 * _TARGETS_PER_TASK)):
        e0, e1 = tgt_ptr[t], tgt_ptr[t + 1]
        _target_system(C, U, e0, e1, rho[t], M)
        for a in range(d):
            r[a] = Y[t, a]
        _add_profile_prediction(C, U, e0, e1, group, Wbar, -gamma[t], r)
        cholesky_solve(M, d, r)
        for j in range(J):
            s = 0.0
            for a in range(d):
                s += C[a, j] * r[a]
            cv[j] = s
        for e in range(e0, e1):
            g = group[e]
            for j in range(J):
                W[e, j] = gamma[t] * Wbar[g, j] + U[e, j] * cv[j]


def target_gains(U, C, Y, tgt_ptr, group, Wbar, rho, gamma):
    """Each target's gain minimising ``F`` for fixed profiles and factors.

    With the deviations eliminated a target's part of ``F`` is
    ``(y - gamma h)^T Omega (y - gamma h)``, ``h = sum_{e in t} sum_j
    Wbar[g(e), j] u_ej c_j`` and ``Omega`` proportional to
    ``(Q Q^T + rho_t I)^-1``, so ``gamma = h^T Omega y / h^T Omega h``.  A
    target with ``h = 0`` keeps its gain from ``gamma``.

    Returns
    -------
    float64 (n_targets,)
    """
    nt = tgt_ptr.shape[0] - 1
    out = np.array(gamma, dtype=np.float64)
    _parallel.run(_gain_tasks, (nt + _TARGETS_PER_TASK - 1) // _TARGETS_PER_TASK,
                  U, C, Y, tgt_ptr, group, Wbar, rho, out)
    return out


@njit(**JIT)
def _gain_tasks(t0, t1, U, C, Y, tgt_ptr, group, Wbar, rho, out):
    """The targets of tasks ``t0:t1`` of :func:`target_gains`."""
    d = C.shape[0]
    nt = tgt_ptr.shape[0] - 1
    M = np.empty((d, d))
    h = np.empty(d)
    oh = np.empty(d)
    for t in range(t0 * _TARGETS_PER_TASK, min(nt, t1 * _TARGETS_PER_TASK)):
        e0, e1 = tgt_ptr[t], tgt_ptr[t + 1]
        h[:] = 0.0
        _add_profile_prediction(C, U, e0, e1, group, Wbar, 1.0, h)
        _target_system(C, U, e0, e1, rho[t], M)
        oh[:] = h
        cholesky_solve(M, d, oh)
        num = 0.0
        den = 0.0
        for a in range(d):
            num += oh[a] * Y[t, a]
            den += oh[a] * h[a]
        if den > 0.0:
            out[t] = num / den
