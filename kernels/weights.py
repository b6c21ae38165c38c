"""The weight step: one small LASSO per pair, batched.

For pair ``e`` (MODEL.md, "Fitting", step 3)

    min_w  lam1 ||vec A_e - D w||^2 + lam5 ||w - Wbar[g(e)]||^2 + lam4 ||w||_1

with ``D^T D = G = (C^T C) o (R^T R)`` and ``D^T vec A_e = b_e``
(:func:`bilinear_cr`).  Expanded, this is ``w^T Q w - 2 q^T w + lam4 |w|_1``
with ``Q = lam1 G + lam5 I`` and ``q = lam1 b_e + lam5 Wbar[g(e)]``: a
precomputed-Gram coordinate descent (scikit-learn's
``enet_coordinate_descent_gram``) in J unknowns, warm-started at the current
weights.

Coordinate descent converges linearly at a rate set by the conditioning of
``Q``; with ``cond(Q) ~ 40`` (typical motifs) a pair needs 50-200 sweeps to
reach ``tol = 1e-10``.  So once the signs of ``w`` have settled (the same for
two sweeps) the kernel tries the exact minimiser for that sign pattern: one
Cholesky solve of the active block.  It is accepted only if it satisfies the
LASSO's optimality conditions exactly (signs as assumed, every inactive
gradient within ``lam4 / 2``), which for a positive definite ``Q`` identify
the unique minimiser; otherwise coordinate descent simply continues.  The
result is the minimiser to rounding instead of to ``tol``.
"""
import numpy as np
from numba import njit, prange

from ._config import JIT, PJIT

# pairs per parallel task (buffers are allocated once per task)
_PAIRS_PER_TASK = 256
# a Cholesky pivot below this fraction of its diagonal entry rejects the
# exact solve (the block is too ill-conditioned to beat coordinate descent)
_PIVOT_REL = 1e-8


@njit(**JIT)
def _exact_on_signs(Q, q, half, sgn, idx, L, rhs, w_out):
    """Exact LASSO minimiser on the sign pattern ``sgn``, if it is one.

    Solves ``Q_SS w_S = q_S - half sgn_S`` on ``S = {j: sgn[j] != 0}`` by
    Cholesky and checks the optimality conditions: ``sign(w_S) == sgn_S`` and
    ``|q_j - (Q w)_j| <= half`` off ``S`` (coordinates with ``Q_jj <= 0``
    stay 0, as in the coordinate descent).  Writes ``w_out`` and returns True
    only if both hold.
    """
    J = q.shape[0]
    k = 0
    for j in range(J):
        w_out[j] = 0.0
        if sgn[j] != 0:
            idx[k] = j
            k += 1
    # Cholesky of the active block, compressed to k x k
    for a in range(k):
        ia = idx[a]
        for b in range(a + 1):
            s = Q[ia, idx[b]]
            for c in range(b):
                s -= L[a, c] * L[b, c]
            if b == a:
                if not (s > _PIVOT_REL * Q[ia, ia]):
                    return False
                L[a, a] = np.sqrt(s)
            else:
                L[a, b] = s / L[b, b]
    for a in range(k):
        s = q[idx[a]] - half * sgn[idx[a]]
        for c in range(a):
            s -= L[a, c] * rhs[c]
        rhs[a] = s / L[a, a]
    for a in range(k - 1, -1, -1):
        s = rhs[a]
        for c in range(a + 1, k):
            s -= L[c, a] * rhs[c]
        rhs[a] = s / L[a, a]
        if not (rhs[a] * sgn[idx[a]] > 0.0):
            return False
    for j in range(J):
        if sgn[j] != 0 or Q[j, j] <= 0.0:
            continue
        g = q[j]
        for a in range(k):
            g -= Q[j, idx[a]] * rhs[a]
        if not (abs(g) <= half):
            return False
    for a in range(k):
        w_out[idx[a]] = rhs[a]
    return True


@njit(**PJIT)
def weight_lasso(b, Wbar, group, G, lam1, lam4, lam5, W_init, max_iter, tol):
    """Batched Gram LASSO for the pair weights.

    Parameters
    ----------
    b : float (n_pairs, J)
        ``<vec A_e, vec M_j>``.
    Wbar : float (n_groups, J)
        Group profiles.
    group : int64 (n_pairs,)
    G : float (J, J)
        Gram of the motifs.
    lam1, lam4, lam5 : float
    W_init : float (n_pairs, J)
        Warm start (not modified).
    max_iter : int
    tol : float
        A pair stops when the largest change of a sweep is below ``tol`` times
        its largest weight, or when the exact minimiser of its settled sign
        pattern passes the optimality check (see the module docstring).

    Returns
    -------
    W : float64 (n_pairs, J)
    n_not_converged : int
    """
    E, J = b.shape
    W = np.empty((E, J))
    Q = np.empty((J, J))
    for j in range(J):
        for k in range(J):
            Q[j, k] = lam1 * G[j, k]
        Q[j, j] += lam5
    half = 0.5 * lam4
    n_tasks = (E + _PAIRS_PER_TASK - 1) // _PAIRS_PER_TASK
    flags = np.zeros(max(n_tasks, 1), np.int64)
    for task in prange(n_tasks):
        e0 = task * _PAIRS_PER_TASK
        e1 = min(E, e0 + _PAIRS_PER_TASK)
        q = np.empty(J)
        sgn = np.empty(J, np.int64)
        prev = np.empty(J, np.int64)
        tried = np.empty(J, np.int64)
        L = np.empty((J, J))
        idx = np.empty(J, np.int64)
        rhs = np.empty(J)
        wt = np.empty(J)
        for e in range(e0, e1):
            g = group[e]
            w = W[e]
            for j in range(J):
                w[j] = W_init[e, j]
                q[j] = lam1 * b[e, j] + lam5 * Wbar[g, j]
                sg = (w[j] > 0.0) - (w[j] < 0.0)
                sgn[j] = sg
                prev[j] = sg
                tried[j] = sg
            # the warm start's signs are usually right (they change little
            # between outer iterations): try them before any sweep
            conv = _exact_on_signs(Q, q, half, sgn, idx, L, rhs, wt)
            if conv:
                for j in range(J):
                    w[j] = wt[j]
                continue
            for it in range(max_iter):
                dmax = 0.0
                wmax = 0.0
                for j in range(J):
                    qjj = Q[j, j]
                    old = w[j]
                    if qjj <= 0.0:
                        new = 0.0
                    else:
                        s = q[j]
                        for k in range(J):
                            if k != j:
                                s -= Q[j, k] * w[k]
                        if s > half:
                            new = (s - half) / qjj
                        elif s < -half:
                            new = (s + half) / qjj
                        else:
                            new = 0.0
                    w[j] = new
                    dlt = abs(new - old)
                    if dlt > dmax:
                        dmax = dlt
                    if abs(new) > wmax:
                        wmax = abs(new)
                if dmax <= tol * wmax:
                    conv = True
                    break
                # signs settled (same as after the previous sweep) and not
                # tried yet: try the exact minimiser on them
                same = True
                fresh = False
                for j in range(J):
                    sg = (w[j] > 0.0) - (w[j] < 0.0)
                    sgn[j] = sg
                    if sg != prev[j]:
                        same = False
                    if sg != tried[j]:
                        fresh = True
                    prev[j] = sg
                if same and fresh:
                    for j in range(J):
                        tried[j] = sgn[j]
                    if _exact_on_signs(Q, q, half, sgn, idx, L, rhs, wt):
                        for j in range(J):
                            w[j] = wt[j]
                        conv = True
                        break
            if not conv:
                flags[task] += 1
    return W, flags.sum()


@njit(**JIT)
def group_mean(W, group, n_groups):
    """Mean of the rows of ``W`` per group (0 for an empty group).

    Parameters
    ----------
    W : float (n_pairs, J)
    group : int64 (n_pairs,)
    n_groups : int

    Returns
    -------
    float64 (n_groups, J)
    """
    E, J = W.shape
    out = np.zeros((n_groups, J))
    cnt = np.zeros(n_groups)
    for e in range(E):
        g = group[e]
        cnt[g] += 1.0
        for j in range(J):
            out[g, j] += W[e, j]
    for g in range(n_groups):
        if cnt[g] > 0:
            for j in range(J):
                out[g, j] /= cnt[g]
    return out
