"""The A-step: every target's incoming interaction matrices, in parallel.

For target ``(n,t)`` with pairs ``e`` (sources ``z_e = g_e x[k_e,t-1]``) and
output feature ``i``, the rows ``a`` (the ``i``-th rows of its ``A_e`` side by
side, length S*d) minimise (MODEL.md, "Fitting", step 1)

    (y_i - a.z)^2 + sum_l lam_l (a_l - p_l)^2 + lam3 sum_l |a_l|

with ``lam_l = lam1 + lam2 * sum_{e'~e} w(e,e')`` for the entries of pair
``e`` and ``p = (lam1 B_e + lam2 sum w A_e'^old) / lam_l``.  Neighbour
matrices are read from the previous iterate (a Jacobi sweep), so targets are
independent.  For ``lam3 = 0`` the minimiser is a rank-one update,

    a = p + Lam^-1 z (y_i - p.z) / (1 + z' Lam^-1 z)          O(S d) per row,

and for ``lam3 > 0`` cyclic coordinate descent, warm-started at the previous
rows.  A pair with ``lam_l = 0`` (no low-rank term and no graph neighbours)
gets ``lam_l = ridge`` and ``p = 0``: the limit of a vanishing ridge, i.e.
the minimum-norm fit.
"""
import numpy as np
from numba import njit, prange

from ._config import PJIT

_TARGETS_PER_TASK = 64


@njit(**PJIT)
def a_step(A_old, X, tgt_obs, tgt_ptr, src, gain, nbr_ptr, nbr_idx, nbr_w,
           W, C, R, lam1, lam2, lam3, ridge, cd_max_iter, cd_tol, A_new):
    """One Jacobi A-step over all targets.

    Parameters
    ----------
    A_old : float (n_pairs, d, d)
        Current interaction matrices (read for neighbours and warm starts).
    X : float (n_obs, d)
        Observed features.
    tgt_obs : int64 (n_targets,)
        Observation of each target (targets with at least one pair).
    tgt_ptr : int64 (n_targets + 1,)
        Pairs of target ``t`` are ``tgt_ptr[t]:tgt_ptr[t+1]``.
    src : int64 (n_pairs,)
    gain : float (n_pairs,)
        Pair weights ``g_e``.
    nbr_ptr, nbr_idx, nbr_w :
        Symmetric smoothness graph (:func:`symmetric_graph`).
    W : float (n_pairs, J)
    C, R : float (d, J)
        Unit-norm target and source effects.
    lam1, lam2, lam3, ridge : float
    cd_max_iter : int
    cd_tol : float
        Coordinate descent stops when the largest change of a sweep is below
        ``cd_tol`` times the largest entry.
    A_new : float (n_pairs, d, d)
        Output, written in place (must not alias ``A_old``).

    Returns
    -------
    int
        Number of (target, row) problems whose coordinate descent hit
        ``cd_max_iter`` (0 when ``lam3 == 0``).
    """
    T = tgt_obs.shape[0]
    d = X.shape[1]
    J = W.shape[1]
    n_tasks = (T + _TARGETS_PER_TASK - 1) // _TARGETS_PER_TASK
    not_conv = np.zeros(n_tasks, np.int64)
    for task in prange(n_tasks):
        t0 = task * _TARGETS_PER_TASK
        t1 = min(T, t0 + _TARGETS_PER_TASK)
        smax = 0
        for t in range(t0, t1):
            smax = max(smax, tgt_ptr[t + 1] - tgt_ptr[t])
        # buffers sized once per task, not per target
        z = np.empty((smax, d))
        P = np.empty((smax, d, d))
        lam = np.empty(smax)
        row = np.empty((smax, d))
        wc = np.empty(J)
        for t in range(t0, t1):
            s0 = tgt_ptr[t]
            S = tgt_ptr[t + 1] - s0
            y = X[tgt_obs[t]]
            for q in range(S):
                e = s0 + q
                g = gain[e]
                for m in range(d):
                    z[q, m] = g * X[src[e], m]
                wsum = 0.0
                for k in range(nbr_ptr[e], nbr_ptr[e + 1]):
                    wsum += nbr_w[k]
                lq = lam1 + lam2 * wsum
                Pq = P[q]
                for i in range(d):
                    for m in range(d):
                        Pq[i, m] = 0.0
                if lq <= 0.0:
                    lam[q] = ridge
                    continue
                lam[q] = lq
                if lam1 > 0.0:
                    for i in range(d):
                        for j in range(J):
                            wc[j] = lam1 * W[e, j] * C[i, j]
                        for m in range(d):
                            acc = 0.0
                            for j in range(J):
                                acc += wc[j] * R[m, j]
                            Pq[i, m] = acc
                if lam2 > 0.0:
                    for k in range(nbr_ptr[e], nbr_ptr[e + 1]):
                        f = nbr_idx[k]
                        wk = lam2 * nbr_w[k]
                        Af = A_old[f]
                        for i in range(d):
                            for m in range(d):
                                Pq[i, m] += wk * Af[i, m]
                inv = 1.0 / lq
                for i in range(d):
                    for m in range(d):
                        Pq[i, m] *= inv
            for i in range(d):
                if lam3 == 0.0:
                    pz = 0.0
                    zlz = 0.0
                    for q in range(S):
                        il = 1.0 / lam[q]
                        for m in range(d):
                            pz += P[q, i, m] * z[q, m]
                            zlz += z[q, m] * z[q, m] * il
                    coef = (y[i] - pz) / (1.0 + zlz)
                    for q in range(S):
                        il = coef / lam[q]
                        out = A_new[s0 + q, i]
                        for m in range(d):
                            out[m] = P[q, i, m] + z[q, m] * il
                else:
                    half = 0.5 * lam3
                    r = y[i]
                    for q in range(S):
                        for m in range(d):
                            row[q, m] = A_old[s0 + q, i, m]
                            r -= row[q, m] * z[q, m]
                    converged = False
                    for sweep in range(cd_max_iter):
                        dmax = 0.0
                        amax = 0.0
                        for q in range(S):
                            lq = lam[q]
                            for m in range(d):
                                zl = z[q, m]
                                old = row[q, m]
                                rl = r + zl * old
                                num = zl * rl + lq * P[q, i, m]
                                if num > half:
                                    new = (num - half) / (zl * zl + lq)
                                elif num < -half:
                                    new = (num + half) / (zl * zl + lq)
                                else:
                                    new = 0.0
                                row[q, m] = new
                                r = rl - zl * new
                                dlt = abs(new - old)
                                if dlt > dmax:
                                    dmax = dlt
                                if abs(new) > amax:
                                    amax = abs(new)
                        if dmax <= cd_tol * amax:
                            converged = True
                            break
                    if not converged:
                        not_conv[task] += 1
                    for q in range(S):
                        for m in range(d):
                            A_new[s0 + q, i, m] = row[q, m]
    return not_conv.sum()
