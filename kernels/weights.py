"""The weight step: one small LASSO per pair, batched.

For pair ``e`` (MODEL.md, "Fitting", step 3)

    min_w  lam1 ||vec A_e - D w||^2 + lam5 ||w - Wbar[g(e)]||^2 + lam4 ||w||_1

with ``D^T D = G = (C^T C) o (R^T R)`` and ``D^T vec A_e = b_e``
(:func:`bilinear_cr`).  Expanded, this is ``w^T Q w - 2 q^T w + lam4 |w|_1``
with ``Q = lam1 G + lam5 I`` and ``q = lam1 b_e + lam5 Wbar[g(e)]``: a
precomputed-Gram coordinate descent (scikit-learn's
``enet_coordinate_descent_gram``) in J unknowns, warm-started at the current
weights.
"""
import numpy as np
from numba import njit, prange

from ._config import JIT, PJIT


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
        its largest weight.

    Returns
    -------
    W : float64 (n_pairs, J)
    n_not_converged : int
    """
    E, J = b.shape
    W = W_init.copy()
    Q = lam1 * G
    for j in range(J):
        Q[j, j] += lam5
    half = 0.5 * lam4
    flags = np.zeros(E, np.int64)
    for e in prange(E):
        g = group[e]
        w = W[e]
        conv = False
        for it in range(max_iter):
            dmax = 0.0
            wmax = 0.0
            for j in range(J):
                qjj = Q[j, j]
                old = w[j]
                if qjj <= 0.0:
                    new = 0.0
                else:
                    s = lam1 * b[e, j] + lam5 * Wbar[g, j]
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
        if not conv:
            flags[e] = 1
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
