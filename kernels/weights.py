"""The weight step: one small LASSO per pair, batched.

For pair ``e`` (MODEL.md, "Fitting", step 3)

    min_w  lam1 ||vec A_e - D w||^2 + lam5 ||w - Wbar[g(e)]||^2 + lam4 ||w||_1

with ``D^T D = G = (C^T C) o (R^T R)`` and ``D^T vec A_e = b_e``
(:func:`bilinear_cr`).  Expanded, this is ``w^T Q w - 2 q^T w + lam4 |w|_1``
with ``Q = lam1 G + lam5 I`` and ``q = lam1 b_e + lam5 Wbar[g(e)]``, J
unknowns per pair, warm-started at the current weights.

For a sign pattern ``s`` the minimiser is the solution of the linear system
``Q_SS w_S = q_S - h s_S`` (``h = lam4 / 2``, ``S = {j: s_j != 0}``, the rest
0), and it is *the* minimiser if it satisfies the LASSO's optimality
conditions: ``sign(w_S) = s_S`` and ``|q_j - (Q w)_j| <= h`` off ``S``; for a
positive definite ``Q`` they identify the unique minimiser.  Each pair
therefore

1. solves on the warm start's signs (they change little between outer
   iterations), and accepts the result if it passes the check;
2. else takes a few primal-dual active-set steps (semi-smooth Newton): the
   next pattern is the signs of ``soft(w + g / Q_jj, h / Q_jj)`` at the last
   solution ``w`` with gradient ``g = q - Q w``, solved and checked the same
   way;
3. else runs cyclic coordinate descent (scikit-learn's
   ``enet_coordinate_descent_gram``) from the warm start, and after every
   sweep whose signs equal the previous sweep's (and were not tried yet)
   tries the exact solve on them.

The linear solves use a Cholesky factor of the active block, or, when fewer
coordinates are inactive than active, the precomputed inverse ``P = Q^-1``
(``(Q_SS)^-1 = P_SS - P_SN P_NN^-1 P_NS``, so only the small inactive block is
factorised).  A pivot below ``_PIVOT_REL`` of its diagonal entry rejects the
solve (too ill-conditioned; coordinate descent decides).  Coordinate descent
alone converges linearly at a rate set by ``cond(Q)``: with typical motifs
(``cond ~ 40``) it needed 50-200 sweeps per pair for ``tol = 1e-10``.
"""
import numpy as np
from numba import njit

from . import _parallel
from ._config import JIT
from ._linalg import cholesky, cholesky_solve

# pairs per parallel task
_PAIRS_PER_TASK = 256
# a Cholesky pivot below this fraction of its diagonal entry rejects the
# solve (the block is too ill-conditioned to beat coordinate descent)
_PIVOT_REL = 1e-8
# primal-dual active-set steps before falling back to coordinate descent
_PDAS_STEPS = 4


@njit(**JIT)
def _inverse(Q, L, P):
    """``P = Q^-1`` through a Cholesky factor; False if Q is not (safely)
    positive definite."""
    J = Q.shape[0]
    if not cholesky(Q, J, L, _PIVOT_REL):
        return False
    for c in range(J):
        col = P[c]  # Q symmetric: row c of the inverse = column c
        for a in range(J):
            col[a] = 0.0
        col[c] = 1.0
        cholesky_solve(L, J, col)
    return True


@njit(**JIT)
def _solve_on_signs(Q, P, have_P, q, h, sgn, idx, nidx, M, L, r, t, w):
    """``w`` = solution of ``Q_SS w_S = q_S - h sgn_S``, 0 off ``S``.

    Returns False if the factorisation was rejected.  Buffers: ``idx, nidx``
    (J) int, ``M, L`` (J, J), ``r, t`` (J).
    """
    J = q.shape[0]
    k = 0
    n = 0
    for j in range(J):
        w[j] = 0.0
        if sgn[j] != 0:
            idx[k] = j
            r[k] = q[j] - h * sgn[j]
            k += 1
        else:
            nidx[n] = j
            n += 1
    if k == 0:
        return True
    if have_P and n < k:
        # (Q_SS)^-1 r = P_SS r - P_SN P_NN^-1 P_NS r
        for a in range(n):
            Pa = P[nidx[a]]
            for c in range(a + 1):
                M[a, c] = Pa[nidx[c]]
            s = 0.0
            for c in range(k):
                s += Pa[idx[c]] * r[c]
            t[a] = s
        if cholesky(M, n, L, _PIVOT_REL):
            cholesky_solve(L, n, t)
            for a in range(k):
                Pa = P[idx[a]]
                s = 0.0
                for c in range(k):
                    s += Pa[idx[c]] * r[c]
                for c in range(n):
                    s -= Pa[nidx[c]] * t[c]
                w[idx[a]] = s
            return True
    for a in range(k):
        Qa = Q[idx[a]]
        for c in range(a + 1):
            M[a, c] = Qa[idx[c]]
    if not cholesky(M, k, L, _PIVOT_REL):
        return False
    cholesky_solve(L, k, r)
    for a in range(k):
        w[idx[a]] = r[a]
    return True


@njit(**JIT)
def _optimal(Q, q, h, sgn, w, g):
    """Whether ``w`` (solved on ``sgn``) satisfies the optimality conditions;
    writes the gradient ``g = q - Q w`` off the pattern."""
    J = q.shape[0]
    ok = True
    for j in range(J):
        if sgn[j] != 0:
            g[j] = h * sgn[j]
            if not (w[j] * sgn[j] > 0.0):
                ok = False
        else:
            s = q[j]
            for k in range(J):
                s -= Q[j, k] * w[k]
            g[j] = s
            if Q[j, j] > 0.0 and not (abs(s) <= h):
                ok = False
    return ok


@njit(**JIT)
def _weight_tasks(task0, task1, b, Wbar, group, Q, P, have_P, lam1, lam4, lam5, max_iter,
                  tol, W, flags):
    """Tasks ``task0:task1`` (``_PAIRS_PER_TASK`` pairs each) of
    :func:`weight_lasso`; ``W`` holds the warm start on entry."""
    E, J = b.shape
    h = 0.5 * lam4
    # buffers, once per call (each pair overwrites what it reads)
    q = np.empty(J)
    sgn = np.empty(J, np.int64)
    prev = np.empty(J, np.int64)
    tried = np.empty(J, np.int64)
    idx = np.empty(J, np.int64)
    nidx = np.empty(J, np.int64)
    M = np.empty((J, J))
    L = np.empty((J, J))
    r = np.empty(J)
    t = np.empty(J)
    g = np.empty(J)
    wt = np.empty(J)
    for task in range(task0, task1):
        e0 = task * _PAIRS_PER_TASK
        e1 = min(E, e0 + _PAIRS_PER_TASK)
        for e in range(e0, e1):
            gr = group[e]
            w = W[e]
            for j in range(J):
                q[j] = lam1 * b[e, j] + lam5 * Wbar[gr, j]
                sg = (w[j] > 0.0) - (w[j] < 0.0)
                if not (Q[j, j] > 0.0):
                    sg = 0
                sgn[j] = sg
                tried[j] = sg
            # 1-2: the warm start's signs, then primal-dual active-set steps
            conv = False
            for step in range(_PDAS_STEPS + 1):
                if not _solve_on_signs(Q, P, have_P, q, h, sgn, idx, nidx, M, L, r, t, wt):
                    break
                if _optimal(Q, q, h, sgn, wt, g):
                    conv = True
                    break
                changed = False
                for j in range(J):
                    qjj = Q[j, j]
                    sg = 0
                    if qjj > 0.0:
                        v = wt[j] + g[j] / qjj
                        c = h / qjj
                        sg = (v > c) - (v < -c)
                    if sg != sgn[j]:
                        changed = True
                    tried[j] = sgn[j]
                    sgn[j] = sg
                if not changed:
                    break
            if conv:
                for j in range(J):
                    w[j] = wt[j]
                continue
            # 3: coordinate descent from the warm start
            for j in range(J):
                prev[j] = (w[j] > 0.0) - (w[j] < 0.0)
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
                        if s > h:
                            new = (s - h) / qjj
                        elif s < -h:
                            new = (s + h) / qjj
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
                # tried last: solve on them
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
                    if (_solve_on_signs(Q, P, have_P, q, h, sgn, idx, nidx, M, L, r, t, wt)
                            and _optimal(Q, q, h, sgn, wt, g)):
                        for j in range(J):
                            w[j] = wt[j]
                        conv = True
                        break
            if not conv:
                flags[task] += 1


def weight_lasso(b, Wbar, group, G, lam1, lam4, lam5, W_init, max_iter, tol):
    """Batched Gram LASSO for the pair weights.

    Parameters
    ----------
    b : float64 (n_pairs, J)
        ``<vec A_e, vec M_j>``.
    Wbar : float64 (n_groups, J)
        Group profiles.
    group : int64 (n_pairs,)
    G : float64 (J, J)
        Gram of the motifs.
    lam1, lam4, lam5 : float
    W_init : float64 (n_pairs, J)
        Warm start (not modified).
    max_iter : int
    tol : float
        Coordinate descent (step 3 of the module docstring) stops when the
        largest change of a sweep is below ``tol`` times its largest weight,
        or when an exact solve passes the optimality check.

    Returns
    -------
    W : float64 (n_pairs, J)
    n_not_converged : int
    """
    E, J = b.shape
    Q = float(lam1) * np.asarray(G, dtype=np.float64)
    Q[np.diag_indices(J)] += float(lam5)
    Q = np.ascontiguousarray(Q)
    P = np.empty((J, J))
    have_P = _inverse(Q, np.empty((J, J)), P)
    W = np.array(W_init, dtype=np.float64, order="C")
    n_tasks = (E + _PAIRS_PER_TASK - 1) // _PAIRS_PER_TASK
    flags = np.zeros(n_tasks, np.int64)
    _parallel.run(_weight_tasks, n_tasks, b, Wbar, group, Q, P, have_P, float(lam1),
                  float(lam4), float(lam5), int(max_iter), float(tol), W, flags)
    return W, int(flags.sum())


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


@njit(**JIT)
def gain_profiles(W, group, tid, gamma, num, den, Wbar):
    """The profiles that minimise ``sum_e ||W[e] - gamma[tid[e]] Wbar[group[e]]||^2``
    at fixed gains, into ``Wbar`` (n_groups, J): ``sum gamma W / sum gamma^2``
    over each group, 0 for a group with no gain mass.  ``num`` (n_groups, J)
    and ``den`` (n_groups,) are scratch.  Sums run over the pairs in order."""
    n_groups, J = Wbar.shape
    num[:] = 0.0
    den[:] = 0.0
    for e in range(W.shape[0]):
        g = group[e]
        ge = gamma[tid[e]]
        den[g] += ge * ge
        for j in range(J):
            num[g, j] += ge * W[e, j]
    for g in range(n_groups):
        for j in range(J):
            Wbar[g, j] = num[g, j] / den[g] if den[g] > 0 else 0.0


@njit(**JIT)
def gain_profile_rounds(W, group, n_groups, tid, gamma, rounds, tol):
    """Alternate group profiles and per-target gains for the gain pooling term.

    Minimises ``sum_e ||W[e] - gamma[tid[e]] Wbar[group[e]]||^2`` by exact
    block updates, profiles first: at most ``rounds`` rounds, fewer once no
    gain moves by more than ``tol`` relative to the largest gain.  A group
    with no gain mass gets profile 0; a target whose prediction is 0 keeps
    its gain.  Sums run over the pairs in order (one pass per block), so the
    result does not depend on the number of threads.

    Parameters
    ----------
    W : float64 (n_pairs, J)
    group : int64 (n_pairs,)
    n_groups : int
    tid : int64 (n_pairs,)
        Target of each pair, ``0 .. n_targets - 1``.
    gamma : float64 (n_targets,)
        Starting gains (not modified).
    rounds : int
    tol : float

    Returns
    -------
    Wbar : float64 (n_groups, J), gamma : float64 (n_targets,)
        Not normalised (the caller fixes each component's free scale).
    """
    E, J = W.shape
    nt = gamma.shape[0]
    gam = gamma.copy()
    Wbar = np.zeros((n_groups, J))
    num = np.empty((n_groups, J))
    den = np.empty(n_groups)
    num_t = np.empty(nt)
    den_t = np.empty(nt)
    for _ in range(rounds):
        gain_profiles(W, group, tid, gam, num, den, Wbar)
        num_t[:] = 0.0
        den_t[:] = 0.0
        for e in range(E):
            g = group[e]
            pp = 0.0
            pw = 0.0
            for j in range(J):
                pp += Wbar[g, j] * Wbar[g, j]
                pw += Wbar[g, j] * W[e, j]
            t = tid[e]
            den_t[t] += pp
            num_t[t] += pw
        step = 0.0
        big = 1.0
        for t in range(nt):
            new = num_t[t] / den_t[t] if den_t[t] > 0 else gam[t]
            step = max(step, abs(new - gam[t]))
            big = max(big, abs(new))
            gam[t] = new
        if step <= tol * big:
            break
    return Wbar, gam
