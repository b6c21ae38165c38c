"""The A-step: every target's incoming interaction matrices, in parallel.

For target ``(n,t)`` with pairs ``e`` (sources ``z_e = g_e x[k_e,t-1]``) and
output feature ``i``, the rows ``a`` (the ``i``-th rows of its ``A_e`` side by
side, length S*d) minimise (MODEL.md, "Fitting", step 1)

    (y_i - a.z)^2 + sum_l lam_l (a_l - p_l)^2 + lam3 sum_l |a_l|

with ``lam_l = lam1 + lam2 * sum_{e'~e} w(e,e')`` for the entries of pair
``e`` and ``p = (lam1 B_e + lam2 sum w A_e'^old) / lam_l``.  Neighbour
matrices are read from the previous iterate (a Jacobi sweep), so targets are
independent.  For ``lam3 = 0`` the minimiser is a rank-one update,

    a = p + Lam^-1 z (y_i - p.z) / (1 + z' Lam^-1 z)          O(S d) per row.

For ``lam3 > 0`` the minimiser is ``a_l = soft(lam_l p_l + z_l rho, h) /
lam_l`` (``h = lam3 / 2``) where the residual ``rho = y_i - a.z`` is the root
of a monotone piecewise-linear function: for a fixed sign pattern it has a
closed form, and the pattern is found from the previous rows' residual (one
or two Newton steps) or, failing that, by bisection over the sorted
breakpoints.  Cyclic coordinate descent then starts from that point: it
confirms it in one sweep when the row is well conditioned, and it restores
full precision where ``a`` computed from ``rho`` is not (``lam_l`` tiny next
to ``z_l^2``, e.g. the ridge below).  Coordinate descent from the previous
rows, as before, needed hundreds of sweeps per row: the rank-one coupling
makes it converge slowly.

A pair with ``lam_l = 0`` (no low-rank term and no graph neighbours) gets
``lam_l = ridge`` and ``p = 0``: the limit of a vanishing ridge, i.e. the
minimum-norm fit.

Targets are processed in tasks of ``_TARGETS_PER_TASK`` on Numba's number of
threads (:mod:`._parallel`).

``A`` may be float32 (``LICCHIE(dtype="float32")``, half the memory): each
target's prior means and solution are then computed in a float64 buffer and
rounded once when stored.  Numba compiles the float32 version on its first
call only.
"""
import numpy as np
from numba import njit

from . import _parallel
from ._config import JIT
from ._linalg import heapsort
from .spaces import class_motifs

_TARGETS_PER_TASK = 64


@njit(**JIT)
def _pattern_root(P, z, lam, n, yi, h, rho_ref, side):
    """Root of ``f(rho) = rho - y_i + sum_l z_l soft(lam_l p_l + z_l rho, h) /
    lam_l`` on the linear piece containing ``rho_ref``.

    ``side`` = -1 / +1 takes the piece at minus / plus infinity instead.
    With ``s_l`` the sign pattern of ``lam_l p_l + z_l rho`` beyond ``h``
    there, ``f`` is linear: ``rho (1 + sum_{s_l != 0} z_l^2 / lam_l) - y_i
    + sum_{s_l != 0} z_l (p_l - s_l h / lam_l)``.  Branch-free: the patterns
    are unpredictable.
    """
    num = yi
    den = 1.0
    for l in range(n):
        zl = z[l]
        il = 1.0 / lam[l]
        if side == 0:
            u = lam[l] * P[l] + zl * rho_ref
            s = (1.0 if u > h else 0.0) - (1.0 if u < -h else 0.0)
        else:
            s = side * ((1.0 if zl > 0.0 else 0.0) - (1.0 if zl < 0.0 else 0.0))
        act = s * s
        num -= act * (zl * (P[l] - s * h * il))
        den += act * (zl * zl * il)
    return num / den


@njit(**JIT)
def _lasso_row(P, z, lam, n, yi, h, a, bp, cd_max_iter, cd_tol):
    """Exact start, then coordinate descent, for one (target, row) problem.

    ``P, z, lam`` (length ``n = S d``): prior means, sources and diagonal;
    ``a`` holds the previous rows on entry and the result on exit.  Returns
    True if the coordinate-descent stopping rule is met.
    """
    # residual of the previous rows, then up to two Newton steps on f: each
    # accepted if the root stays on the piece it was computed on
    rho = yi
    for l in range(n):
        rho -= a[l] * z[l]
    found = False
    for _ in range(2):
        r1 = _pattern_root(P, z, lam, n, yi, h, rho, 0)
        bad = 0
        for l in range(n):
            zl = z[l]
            lp = lam[l] * P[l]
            u0 = lp + zl * rho
            u1 = lp + zl * r1
            s = (1.0 if u0 > h else 0.0) - (1.0 if u0 < -h else 0.0)
            ok = (((s > 0.0) & (u1 >= h)) | ((s < 0.0) & (u1 <= -h))
                  | ((s == 0.0) & (abs(u1) <= h)))
            bad += 0 if ok else 1
        rho = r1
        if bad == 0:
            found = True
            break
    if not found:
        # bisection over the sorted breakpoints lam p + z rho = +-h
        nb = 0
        for l in range(n):
            zl = z[l]
            if zl != 0.0:
                bp[nb] = (h - lam[l] * P[l]) / zl
                bp[nb + 1] = (-h - lam[l] * P[l]) / zl
                nb += 2
        heapsort(bp, nb)
        bs = bp
        lo = 0
        hi = nb
        while lo < hi:
            mid = (lo + hi) >> 1
            r = bs[mid]
            f = r - yi
            for l in range(n):
                zl = z[l]
                u = lam[l] * P[l] + zl * r
                f += zl * (max(u - h, 0.0) + min(u + h, 0.0)) / lam[l]
            if f >= 0.0:
                hi = mid
            else:
                lo = mid + 1
        if lo == 0:
            rho = _pattern_root(P, z, lam, n, yi, h, 0.0, -1)
        elif lo == nb:
            rho = _pattern_root(P, z, lam, n, yi, h, 0.0, 1)
        else:
            rho = _pattern_root(P, z, lam, n, yi, h, 0.5 * (bs[lo - 1] + bs[lo]), 0)
    for l in range(n):
        u = lam[l] * P[l] + z[l] * rho
        a[l] = (max(u - h, 0.0) + min(u + h, 0.0)) / lam[l]
    r = yi
    for l in range(n):
        r -= a[l] * z[l]
    # the coordinate descent's stopping rule, checked for all coordinates
    # at once (each one's optimal value given all the others): usually met
    dmax = 0.0
    amax = 0.0
    for l in range(n):
        zl = z[l]
        u = zl * (r + zl * a[l]) + lam[l] * P[l]
        new = (max(u - h, 0.0) + min(u + h, 0.0)) / (zl * zl + lam[l])
        dmax = max(dmax, abs(new - a[l]))
        amax = max(amax, abs(a[l]))
    if dmax <= cd_tol * amax:
        return True
    # else coordinate descent from there (rounding in rho is amplified by
    # z_l / lam_l in a_l when lam_l is tiny)
    for sweep in range(cd_max_iter):
        dmax = 0.0
        amax = 0.0
        for l in range(n):
            zl = z[l]
            lq = lam[l]
            old = a[l]
            rl = r + zl * old
            num = zl * rl + lq * P[l]
            if num > h:
                new = (num - h) / (zl * zl + lq)
            elif num < -h:
                new = (num + h) / (zl * zl + lq)
            else:
                new = 0.0
            a[l] = new
            r = rl - zl * new
            dlt = abs(new - old)
            if dlt > dmax:
                dmax = dlt
            if abs(new) > amax:
                amax = abs(new)
        if dmax <= cd_tol * amax:
            return True
    return False


@njit(**JIT)
def _prior_means(s0, S, Ao, X, src, gain, nbr_ptr, nbr_idx, nbr_w, W, M, cls, lam1,
                 lam2, ridge, z, lam, P):
    """For the pairs ``s0:s0+S`` of one target: sources ``z``, diagonal
    ``lam`` and the prior means ``P_q = (lam1 B_e + lam2 sum w A_f) / lam_q``,
    written into the float64 rows ``P[q]`` (whatever the dtype of ``Ao``: the
    sums over neighbours and the update that follows stay in float64, and a
    float32 ``A_new`` is rounded once, when the result is stored).  Returns
    ``z' Lam^-1 z``."""
    d = X.shape[1]
    dd = d * d
    J = W.shape[1]
    zlz = 0.0
    for q in range(S):
        e = s0 + q
        g = gain[e]
        k = src[e]
        for m in range(d):
            z[q, m] = g * X[k, m]
        wsum = 0.0
        for kk in range(nbr_ptr[e], nbr_ptr[e + 1]):
            wsum += nbr_w[kk]
        lq = lam1 + lam2 * wsum
        Pf = P[q]
        for k2 in range(dd):
            Pf[k2] = 0.0
        if lq <= 0.0:
            lq = ridge
        else:
            if lam1 > 0.0:
                for j in range(J):
                    wj = lam1 * W[e, j]
                    Mj = M[cls[e], j]
                    for k2 in range(dd):
                        Pf[k2] += wj * Mj[k2]
            if lam2 > 0.0:
                # four neighbours per pass (same order of additions per
                # entry as one at a time; more loads in flight)
                k0 = nbr_ptr[e]
                k1 = nbr_ptr[e + 1]
                while k0 + 4 <= k1:
                    w0 = lam2 * nbr_w[k0]
                    w1 = lam2 * nbr_w[k0 + 1]
                    w2 = lam2 * nbr_w[k0 + 2]
                    w3 = lam2 * nbr_w[k0 + 3]
                    F0 = Ao[nbr_idx[k0]]
                    F1 = Ao[nbr_idx[k0 + 1]]
                    F2 = Ao[nbr_idx[k0 + 2]]
                    F3 = Ao[nbr_idx[k0 + 3]]
                    for k2 in range(dd):
                        Pf[k2] = (((Pf[k2] + w0 * F0[k2]) + w1 * F1[k2])
                                  + w2 * F2[k2]) + w3 * F3[k2]
                    k0 += 4
                for kk in range(k0, k1):
                    wk = lam2 * nbr_w[kk]
                    Af = Ao[nbr_idx[kk]]
                    for k2 in range(dd):
                        Pf[k2] += wk * Af[k2]
            inv = 1.0 / lq
            for k2 in range(dd):
                Pf[k2] *= inv
        lam[q] = lq
        il = 1.0 / lq
        for m in range(d):
            zlz += z[q, m] * z[q, m] * il
    return zlz


@njit(**JIT)
def _task_targets(task, T):
    """Targets ``t0:t1`` of ``task``."""
    t0 = task * _TARGETS_PER_TASK
    return t0, min(T, t0 + _TARGETS_PER_TASK)


@njit(**JIT)
def _task_setup(task0, task1, T, tgt_ptr, X, A_old, A_new):
    """Flat views and per-call buffers of tasks ``task0:task1``.

    Returns ``(Ao, An, z, lam, P)``: ``A_old`` and ``A_new`` as (E, d*d) (the
    prior means, neighbour sums and scalings all run over d*d contiguous
    entries), and ``z`` (smax, d), ``lam`` (smax,), ``P`` (smax, d*d) sized
    for the largest number ``smax`` of pairs of a target in the tasks.
    """
    E = A_old.shape[0]
    d = X.shape[1]
    smax = 0
    for t in range(task0 * _TARGETS_PER_TASK, min(T, task1 * _TARGETS_PER_TASK)):
        smax = max(smax, tgt_ptr[t + 1] - tgt_ptr[t])
    return (A_old.reshape((E, d * d)), A_new.reshape((E, d * d)), np.empty((smax, d)),
            np.empty(smax), np.empty((smax, d * d)))


@njit(**JIT)
def _ridge_tasks(task0, task1, A_old, X, tgt_obs, tgt_ptr, src, gain, nbr_ptr, nbr_idx,
                 nbr_w, W, M, cls, lam1, lam2, ridge, A_new):
    """Tasks ``task0:task1`` (``_TARGETS_PER_TASK`` targets each) of
    :func:`a_step` with ``lam3 = 0``: the rank-one update."""
    T = tgt_obs.shape[0]
    d = X.shape[1]
    dd = d * d
    Ao, An, z, lam, P = _task_setup(task0, task1, T, tgt_ptr, X, A_old, A_new)
    for task in range(task0, task1):
        t0, t1 = _task_targets(task, T)
        for t in range(t0, t1):
            s0 = tgt_ptr[t]
            S = tgt_ptr[t + 1] - s0
            y = X[tgt_obs[t]]
            zlz = _prior_means(s0, S, Ao, X, src, gain, nbr_ptr, nbr_idx, nbr_w, W, M,
                               cls, lam1, lam2, ridge, z, lam, P)
            den = 1.0 + zlz
            for i in range(d):
                pz = 0.0
                for q in range(S):
                    Pr = P[q, i * d:(i + 1) * d]
                    for m in range(d):
                        pz += Pr[m] * z[q, m]
                coef = (y[i] - pz) / den
                for q in range(S):
                    Pr = P[q, i * d:(i + 1) * d]
                    il = coef / lam[q]
                    for m in range(d):
                        Pr[m] += z[q, m] * il
            for q in range(S):
                Aq = An[s0 + q]
                Pq = P[q]
                for k2 in range(dd):
                    Aq[k2] = Pq[k2]


@njit(**JIT)
def _lasso_tasks(task0, task1, A_old, X, tgt_obs, tgt_ptr, src, gain, nbr_ptr, nbr_idx,
                 nbr_w, W, M, cls, lam1, lam2, lam3, ridge, cd_max_iter, cd_tol, A_new,
                 not_conv):
    """Tasks ``task0:task1`` of :func:`a_step` with ``lam3 > 0`` (compiled
    only when used)."""
    T = tgt_obs.shape[0]
    d = X.shape[1]
    Ao, An, z, lam, P = _task_setup(task0, task1, T, tgt_ptr, X, A_old, A_new)
    h = 0.5 * lam3
    # one row's problem laid out flat (length S d)
    nmax = lam.shape[0] * d
    prow = np.empty(nmax)
    zrow = np.empty(nmax)
    lrow = np.empty(nmax)
    arow = np.empty(nmax)
    bp = np.empty(2 * nmax)
    # the target loop of _ridge_tasks, deliberately not shared: a common
    # kernel taking the row solver would compile the LASSO for every fit
    for task in range(task0, task1):
        t0, t1 = _task_targets(task, T)
        for t in range(t0, t1):
            s0 = tgt_ptr[t]
            S = tgt_ptr[t + 1] - s0
            y = X[tgt_obs[t]]
            _prior_means(s0, S, Ao, X, src, gain, nbr_ptr, nbr_idx, nbr_w, W, M, cls,
                         lam1, lam2, ridge, z, lam, P)
            n = S * d
            for q in range(S):
                for m in range(d):
                    zrow[q * d + m] = z[q, m]
                    lrow[q * d + m] = lam[q]
            for i in range(d):
                for q in range(S):
                    e = s0 + q
                    for m in range(d):
                        prow[q * d + m] = P[q, i * d + m]
                        arow[q * d + m] = Ao[e, i * d + m]
                if not _lasso_row(prow, zrow, lrow, n, y[i], h, arow, bp, cd_max_iter,
                                  cd_tol):
                    not_conv[task] += 1
                for q in range(S):
                    e = s0 + q
                    for m in range(d):
                        An[e, i * d + m] = arow[q * d + m]


def a_step(A_old, X, tgt_obs, tgt_ptr, src, gain, nbr_ptr, nbr_idx, nbr_w,
           W, C, R, lam1, lam2, lam3, ridge, cd_max_iter, cd_tol, A_new, pair_class=None,
           class_space=None):
    """One Jacobi A-step over all targets.

    Parameters
    ----------
    A_old : float64 or float32 (n_pairs, d, d), C-contiguous
        Current interaction matrices (read for neighbours and warm starts).
        Everything else is computed in float64 whatever this dtype.
    X : float64 (n_obs, d)
        Observed features.
    tgt_obs : int64 (n_targets,)
        Observation of each target (targets with at least one pair).
    tgt_ptr : int64 (n_targets + 1,)
        Pairs of target ``t`` are ``tgt_ptr[t]:tgt_ptr[t+1]``.
    src : int64 (n_pairs,)
    gain : float64 (n_pairs,)
        Pair weights ``g_e``.
    nbr_ptr, nbr_idx, nbr_w :
        Symmetric smoothness graph (:func:`symmetric_graph`).
    W : float64 (n_pairs, J)
    C, R : float64 (d, J), or (n_spaces, d, J) with ``pair_class``
        Unit-norm target and source effects (per feature space).
    lam1, lam2, lam3, ridge : float
    cd_max_iter : int
    cd_tol : float
        With ``lam3 > 0``, coordinate descent (from the exact start, see the
        module docstring) stops when the largest change of a sweep is below
        ``cd_tol`` times the largest entry.
    A_new : same dtype as ``A_old`` (n_pairs, d, d), C-contiguous
        Output, written in place (must not alias ``A_old``); a float32
        ``A_new`` receives the float64 solution rounded once.
    pair_class : int64 (n_pairs,), optional
    class_space : int64 (n_classes, 2), optional
        Population feature spaces (:func:`class_motifs`): pair ``e``'s
        low-rank prior uses the motifs of its class.  With zero-filled
        missing features and an ``A_old`` that is zero outside each pair's
        (target space, source space) block, the result is exactly zero
        there too (those entries see zero sources, zero targets and zero
        priors), provided graph edges join pairs of one class only.

    Returns
    -------
    int
        Number of (target, row) problems whose coordinate descent hit
        ``cd_max_iter`` (0 when ``lam3 == 0``).
    """
    M, cls = class_motifs(C, R, pair_class, class_space, src.shape[0])
    n_tasks = (tgt_obs.shape[0] + _TARGETS_PER_TASK - 1) // _TARGETS_PER_TASK
    if lam3 == 0.0:
        _parallel.run(_ridge_tasks, n_tasks, A_old, X, tgt_obs, tgt_ptr, src, gain, nbr_ptr,
                      nbr_idx, nbr_w, W, M, cls, float(lam1), float(lam2), float(ridge),
                      A_new)
        return 0
    not_conv = np.zeros(n_tasks, np.int64)
    _parallel.run(_lasso_tasks, n_tasks, A_old, X, tgt_obs, tgt_ptr, src, gain, nbr_ptr,
                  nbr_idx, nbr_w, W, M, cls, float(lam1), float(lam2), float(lam3),
                  float(ridge),
                  int(cd_max_iter), float(cd_tol), A_new, not_conv)
    return int(not_conv.sum())
