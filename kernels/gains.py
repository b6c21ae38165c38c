"""The exactly pooled reduced loss with every target's gain eliminated.

With one gain ``gamma_i`` per target the reduced loss (:mod:`.pooled`) is

    F(Wbar, C, R, gamma) = sum_i || x_i - gamma_i p_i ||^2,
    p_i = sum_g C diag(Wbar[g]) R^T z_{i,g} = C v_i,
    v_i[j] = sum_g Wbar[g, j] r_j^T z_{i,g}.

For fixed ``(Wbar, C, R)`` each gain is a one-dimensional least squares,
``gamma_i = <x_i, p_i> / |p_i|^2`` (0 where ``p_i = 0``), so

    F(Wbar, C, R) = sum_i |x_i|^2 - <x_i, p_i>^2 / |p_i|^2,

a function of ``(Wbar, C, R)`` alone whose gradient, by the envelope
theorem, is that of ``F`` at the optimal gains:
``dF/dp_i = q_i = -2 gamma_i (x_i - gamma_i p_i)``, then
``dF/dC = sum_i q_i v_i^T``, ``u_i = C^T q_i``,
``dF/dWbar[g, j] = sum_{i} u_i[j] r_j^T z_{i,g}`` and
``dF/dr_j = sum_{i,g} u_i[j] Wbar[g, j] z_{i,g}``.
Two optional terms keep the gains and weights finite (see
:func:`gain_eliminated_loss`): a prior ``mu (gamma_i - 1)^2`` and a ridge
``gamma_i^2 q_i``, ``q_i = rho sum_g |Wbar[g]|^2`` over the target's rows,
on its pooled weights; then ``gamma_i = (<x_i, p_i> + mu) / (|p_i|^2 + mu +
q_i)`` and the gradient gains ``2 rho gamma_i^2 Wbar[g]`` per row.
One pass over the (target, group) rows, in fixed blocks of
``_TARGETS_PER_TASK`` targets on the kernel threads, each block's partial
summed in block order, so the result does not depend on the number of
threads.
"""
import numpy as np
from numba import njit

from . import _parallel
from ._config import JIT

# targets per task of the parallel pass.  A problem of one block (the paper's
# size has about 1,700 targets) runs the serial pass of before, bit for bit:
# with blocks of 512 the changed rounding alone moved a fit with gains on
# owned_gains seed 0 from recovery 0.923 (objective 17.0) to 0.551 (39.8),
# docs/global-search.md, "A prior on the gains ...".  From 100 k pairs on
# (several thousand targets) the blocks run on the threads.
_TARGETS_PER_TASK = 4096


@njit(**JIT)
def _loss_range(i0, i1, Y, Z, tg_ptr, tg_group, Wbar, C, R, gW, gC, gR, mu, rho):
    """The loss and gradient of targets ``i0:i1`` (see :func:`gain_eliminated_loss`)."""
    d, J = C.shape
    gW[:] = 0.0
    gC[:] = 0.0
    gR[:] = 0.0
    v = np.empty(J)
    u = np.empty(J)
    p = np.empty(d)
    w = np.empty(J)
    most = 0
    for i in range(i0, i1):
        most = max(most, tg_ptr[i + 1] - tg_ptr[i])
    zr = np.empty((most, J))   # r_j^T z_{i,g} of the target's rows, for the gradient
    F = 0.0
    for i in range(i0, i1):
        v[:] = 0.0
        a0 = tg_ptr[i]
        q = 0.0
        for a in range(a0, tg_ptr[i + 1]):
            g = tg_group[a]
            if rho > 0.0:
                for j in range(J):
                    q += Wbar[g, j] * Wbar[g, j]
            # r_j^T z for every j, each summed over m in increasing order (the
            # loop over j innermost vectorises; the same bits as a dot per j)
            zra = zr[a - a0]
            zra[:] = 0.0
            for m in range(d):
                zm = Z[a, m]
                for j in range(J):
                    zra[j] += R[m, j] * zm
            for j in range(J):
                v[j] += Wbar[g, j] * zra[j]
        xp = 0.0
        pp = 0.0
        xx = 0.0
        for m in range(d):
            s = 0.0
            for j in range(J):
                s += C[m, j] * v[j]
            p[m] = s
            xp += Y[i, m] * s
            pp += s * s
            xx += Y[i, m] * Y[i, m]
        q *= rho
        if not pp + mu + q > 0.0:
            F += xx   # no prediction: the gain is 0 and nothing moves it
            continue
        gam = (xp + mu) / (pp + mu + q)
        F += mu * (gam - 1.0) * (gam - 1.0) + gam * gam * q
        # q = -2 gamma (x - gamma p), into p
        for m in range(d):
            r = Y[i, m] - gam * p[m]
            F += r * r
            p[m] = -2.0 * gam * r
        u[:] = 0.0   # u = C^T q, each u[j] summed over m in increasing order
        for m in range(d):
            pm = p[m]
            for j in range(J):
                gC[m, j] += pm * v[j]
                u[j] += C[m, j] * pm
        ridge = 2.0 * rho * gam * gam   # d(gamma^2 q_i) / dWbar[g] = ridge * Wbar[g]
        for a in range(a0, tg_ptr[i + 1]):
            g = tg_group[a]
            zra = zr[a - a0]
            for j in range(J):
                gW[g, j] += u[j] * zra[j] + ridge * Wbar[g, j]
                w[j] = u[j] * Wbar[g, j]
            for m in range(d):
                zm = Z[a, m]
                for j in range(J):
                    gR[m, j] += w[j] * zm
    return F


@njit(**JIT)
def _loss_tasks(t0, t1, Y, Z, tg_ptr, tg_group, Wbar, C, R, mu, rho, F_part, gW_part,
                gC_part, gR_part):
    nt = tg_ptr.shape[0] - 1
    for k in range(t0, t1):
        F_part[k] = _loss_range(k * _TARGETS_PER_TASK, min(nt, (k + 1) * _TARGETS_PER_TASK),
                                Y, Z, tg_ptr, tg_group, Wbar, C, R, gW_part[k], gC_part[k],
                                gR_part[k], mu, rho)


def gain_eliminated_loss(Y, Z, tg_ptr, tg_group, Wbar, C, R, gW, gC, gR, mu=0.0, rho=0.0):
    """``F(Wbar, C, R)`` with the optimal gains, and its gradient (see the module).

    Parameters
    ----------
    Y : float64 (n_targets, d)
        The targets' states ``x_i``.
    Z : float64 (n_rows, d)
        Summed source states ``z_{i,g}``, one row per (target, group), the
        rows of target ``i`` at ``tg_ptr[i]:tg_ptr[i + 1]``.
    tg_ptr : int64 (n_targets + 1,)
    tg_group : int64 (n_rows,)
        The group of each row.
    Wbar : float64 (n_groups, J)
    C, R : float64 (d, J)
    gW : float64 (n_groups, J), gC, gR : float64 (d, J)
        Out: the gradient (overwritten).
    mu : float
        Weight of each gain's prior ``mu (gamma_i - 1)^2`` (0: none).  It
        makes the optimal gain ``(<x_i, p_i> + mu) / (|p_i|^2 + mu)``, bounded
        when the prediction ``p_i`` vanishes (see
        :func:`licchie.fit.gains.joint_minimum`).
    rho : float
        Weight of the ridge ``rho gamma_i^2 |Wbar[g]|^2`` on the pooled
        weights of every (target, group) row (0: none).

    Returns
    -------
    float : the loss (prior and ridge included).
    """
    nt = tg_ptr.shape[0] - 1
    n_tasks = max(1, -(-nt // _TARGETS_PER_TASK))
    if n_tasks == 1:
        return _loss_range(0, nt, Y, Z, tg_ptr, tg_group, Wbar, C, R, gW, gC, gR, float(mu),
                           float(rho))
    # one partial loss and gradient per fixed block of targets, summed in
    # block order: the same result for any number of threads
    F_part = np.empty(n_tasks)
    gW_part = np.empty((n_tasks,) + gW.shape)
    gC_part = np.empty((n_tasks,) + gC.shape)
    gR_part = np.empty((n_tasks,) + gR.shape)
    _parallel.run(_loss_tasks, n_tasks, Y, Z, tg_ptr, tg_group, Wbar, C, R, float(mu),
                  float(rho), F_part, gW_part, gC_part, gR_part)
    gW[:] = gW_part.sum(axis=0)
    gC[:] = gC_part.sum(axis=0)
    gR[:] = gR_part.sum(axis=0)
    return float(F_part.sum())
