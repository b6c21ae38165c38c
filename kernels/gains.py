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
One serial pass over the (target, group) rows, so the result does not depend
on the number of threads.
"""
import numpy as np
from numba import njit

from ._config import JIT


@njit(**JIT)
def gain_eliminated_loss(Y, Z, tg_ptr, tg_group, Wbar, C, R, gW, gC, gR):
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

    Returns
    -------
    float : the loss.
    """
    nt = tg_ptr.shape[0] - 1
    d, J = C.shape
    gW[:] = 0.0
    gC[:] = 0.0
    gR[:] = 0.0
    v = np.empty(J)
    u = np.empty(J)
    p = np.empty(d)
    most = 0
    for i in range(nt):
        most = max(most, tg_ptr[i + 1] - tg_ptr[i])
    zr = np.empty((most, J))   # r_j^T z_{i,g} of the target's rows, for the gradient
    F = 0.0
    for i in range(nt):
        v[:] = 0.0
        a0 = tg_ptr[i]
        for a in range(a0, tg_ptr[i + 1]):
            g = tg_group[a]
            for j in range(J):
                s = 0.0
                for m in range(d):
                    s += R[m, j] * Z[a, m]
                zr[a - a0, j] = s
                v[j] += Wbar[g, j] * s
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
        if not pp > 0.0:
            F += xx   # no prediction: the gain is 0 and nothing moves it
            continue
        gam = xp / pp
        # q = -2 gamma (x - gamma p), into p
        for m in range(d):
            r = Y[i, m] - gam * p[m]
            F += r * r
            p[m] = -2.0 * gam * r
        for j in range(J):
            s = 0.0
            for m in range(d):
                gC[m, j] += p[m] * v[j]
                s += C[m, j] * p[m]
            u[j] = s
        for a in range(a0, tg_ptr[i + 1]):
            g = tg_group[a]
            for j in range(J):
                gW[g, j] += u[j] * zr[a - a0, j]
                w = u[j] * Wbar[g, j]
                if w != 0.0:
                    for m in range(d):
                        gR[m, j] += w * Z[a, m]
    return F
