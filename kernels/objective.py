"""The objective's six terms (MODEL.md) and the low-rank one-step prediction.

All sums of :func:`objective_terms` are taken per fixed block of targets,
each block writing its own partial, merged in block order: the result is the
same for any number of threads.  :func:`predict_lowrank` is computed once
per fit, serially.
"""
import numpy as np
from numba import njit

from . import _parallel
from ._config import JIT
from .spaces import class_motifs

_TARGETS_PER_TASK = 64


@njit(**JIT)
def _objective_tasks(task0, task1, A, X, tgt_obs, tgt_ptr, src, gain, nbr_ptr, nbr_idx,
                     nbr_w, W, M, cls, Wbar, group, part):
    """Tasks ``task0:task1`` (``_TARGETS_PER_TASK`` targets each) of
    :func:`objective_terms`, one row of ``part`` per task."""
    T = tgt_obs.shape[0]
    E = A.shape[0]
    d = X.shape[1]
    dd = d * d
    J = W.shape[1]
    Af = A.reshape((E, dd))
    yhat = np.empty(d)
    B = np.empty(dd)
    lr = np.empty(dd)
    l1 = np.empty(dd)
    sm = np.empty(dd)
    for task in range(task0, task1):
        t0 = task * _TARGETS_PER_TASK
        t1 = min(T, t0 + _TARGETS_PER_TASK)
        acc = part[task]
        # the task's entry-wise partial sums
        lr[:] = 0.0
        l1[:] = 0.0
        sm[:] = 0.0
        for t in range(t0, t1):
            o = tgt_obs[t]
            for i in range(d):
                yhat[i] = 0.0
            for e in range(tgt_ptr[t], tgt_ptr[t + 1]):
                g = gain[e]
                k = src[e]
                Ae = Af[e]
                for i in range(d):
                    s = 0.0
                    for m in range(d):
                        s += Ae[i * d + m] * X[k, m]
                    yhat[i] += g * s
                # low rank and L1 of A
                for k2 in range(dd):
                    B[k2] = 0.0
                for j in range(J):
                    wj = W[e, j]
                    if wj != 0.0:  # most weights are 0 after the LASSO; M is finite
                        Mj = M[cls[e], j]
                        for k2 in range(dd):
                            B[k2] += wj * Mj[k2]
                for k2 in range(dd):
                    r = Ae[k2] - B[k2]
                    lr[k2] += r * r
                    l1[k2] += abs(Ae[k2])
                # smoothness, each edge once (from its lower end)
                for kk in range(nbr_ptr[e], nbr_ptr[e + 1]):
                    f = nbr_idx[kk]
                    if f > e:
                        Ff = Af[f]
                        wk = nbr_w[kk]
                        for k2 in range(dd):
                            # float64 difference also for a float32 A
                            df = np.float64(Ae[k2]) - Ff[k2]
                            sm[k2] += wk * (df * df)
                gr = group[e]
                for j in range(J):
                    acc[4] += abs(W[e, j])
                    dw = W[e, j] - Wbar[gr, j]
                    acc[5] += dw * dw
            for i in range(d):
                r = X[o, i] - yhat[i]
                acc[0] += r * r
        for k2 in range(dd):
            acc[1] += lr[k2]
            acc[2] += sm[k2]
            acc[3] += l1[k2]


def objective_terms(A, X, tgt_obs, tgt_ptr, src, gain, nbr_ptr, nbr_idx, nbr_w,
                    W, C, R, Wbar, group, pair_class=None, class_space=None):
    """Unweighted terms of the objective (MODEL.md, "Objective").

    Parameters
    ----------
    A : float64 or float32 (n_pairs, d, d), C-contiguous
        Every product and sum is taken in float64 whatever its dtype.
    X : float (n_obs, d)
    tgt_obs, tgt_ptr, src, gain : pair structure (see :func:`a_step`)
    nbr_ptr, nbr_idx, nbr_w : symmetric smoothness graph
    W : float (n_pairs, J)
    C, R : float (d, J), or (n_spaces, d, J) with ``pair_class``
    Wbar : float (n_groups, J)
    group : int64 (n_pairs,)
    pair_class, class_space : int64 (n_pairs,), (n_classes, 2), optional
        Population feature spaces: pair ``e``'s low-rank term uses the motifs
        of its class (:func:`class_motifs`).  Entries outside a pair's
        (target space, source space) block count with their motif entry 0.

    Returns
    -------
    float64 (6,)
        ``[fidelity, low_rank, smoothness, l1_A, l1_W, pooling]``; the
        objective is ``t[0] + lam1 t[1] + lam2 t[2] + lam3 t[3] + lam4 t[4]
        + lam5 t[5]``.  Each undirected smoothness edge is counted once.

    Notes
    -----
    The sums over the d*d entries of a pair are kept entry by entry across
    the pairs of a block (``d*d`` partial sums per term, added up at the end
    of the block): independent additions vectorise, where one running sum
    per term would be a chain of dependent additions.
    """
    M, cls = class_motifs(C, R, pair_class, class_space, src.shape[0])
    n_tasks = (tgt_obs.shape[0] + _TARGETS_PER_TASK - 1) // _TARGETS_PER_TASK
    part = np.zeros((n_tasks, 6))
    _parallel.run(_objective_tasks, n_tasks, A, X, tgt_obs, tgt_ptr, src, gain, nbr_ptr,
                  nbr_idx, nbr_w, W, M, cls, Wbar, group, part)
    out = np.zeros(6)
    for task in range(n_tasks):  # in task order, whatever the threads
        out += part[task]
    return out


@njit(**JIT)
def predict_lowrank(X, tgt_ptr, src, gain, W, C, R):
    """``xhat_t = sum_e g_e sum_j W[e,j] c_j (r_j . x[src_e])`` in O(J d) per pair.

    Parameters
    ----------
    X : float (n_obs, d)
    tgt_ptr : int64 (n_targets + 1,)
    src : int64 (n_pairs,)
    gain : float (n_pairs,)
    W : float (n_pairs, J)
    C, R : float (d, J)

    Returns
    -------
    float64 (n_targets, d)
    """
    T = tgt_ptr.shape[0] - 1
    d = X.shape[1]
    J = W.shape[1]
    out = np.zeros((T, d))
    for t in range(T):
        proj = np.empty(J)
        for e in range(tgt_ptr[t], tgt_ptr[t + 1]):
            g = gain[e]
            k = src[e]
            for j in range(J):
                s = 0.0
                for m in range(d):
                    s += R[m, j] * X[k, m]
                proj[j] = g * W[e, j] * s
            for i in range(d):
                s = 0.0
                for j in range(J):
                    s += C[i, j] * proj[j]
                out[t, i] += s
    return out
