"""The weights at fixed motifs: coordinate descent on the A-eliminated objective.

With ``lam2 = lam3 = 0`` and the effects ``C``, ``R`` fixed, eliminating the
``A_e`` exactly (:mod:`.reduced`) and the pooling profiles (the group means
of the weights) leaves a LASSO in the weights alone::

    Phi(W) = sum_t kappa_t || y_t - sum_{e in t} sum_j W[e, j] u_ej c_j ||^2
             + lam4 sum_{e,j} |W[e, j]|
             + lam5 sum_{e,j} (W[e, j] - gamma_e P[g(e), j])^2,

with ``u_ej = r_j . z_e``, ``gamma_e`` the pair's target gain (all 1 for
MODEL.md's pooling; fixed here) and ``P`` either the profiles that minimise
the pooling term (eliminated: ``P[g] = sum_e gamma_e W[e] / sum_e
gamma_e^2`` over the group, the group means without gains) or fixed
profiles.  ``Phi`` is convex, so cyclic coordinate descent with exact
coordinate minimisation converges to its minimum; it replaces the
alternation of A-step and weight step, which crawls when many pairs share
one profile.

As a function of one weight ``w = W[e, j]`` the eliminated pooling term is
``lam5 ((1 - gamma_e^2 / G) w^2 - 2 gamma_e S_e w / G)`` plus a constant,
with ``G = sum gamma^2`` and ``S_e = sum gamma W`` over the group's other
pairs (without gains ``lam5 (n - 1) / n (w - m)^2``, ``m`` the mean of the
group's other weights), so each update is a soft threshold of a
one-dimensional quadratic.  One serial pass in pair order per sweep, so the
result does not depend on the number of threads; Anderson extrapolation
every few sweeps follows the directions that the sweeps only crawl along.
"""
import numpy as np
from numba import njit

from ._config import JIT

# sweeps between two recomputations of the residuals from scratch
_FRESH_EVERY = 16


@njit(**JIT)
def _residuals(U, Y, tgt_ptr, tspace, C, W, resid):
    """``resid[t] = y_t - sum_{e in t} sum_j W[e, j] u_ej c_j`` from scratch."""
    nt, d = Y.shape
    J = W.shape[1]
    for t in range(nt):
        s = tspace[t]
        for a in range(d):
            resid[t, a] = Y[t, a]
        for e in range(tgt_ptr[t], tgt_ptr[t + 1]):
            for j in range(J):
                v = W[e, j] * U[e, j]
                if v != 0.0:
                    for a in range(d):
                        resid[t, a] -= v * C[s, a, j]


@njit(**JIT)
def _phi(kappa, group, pgain, W, P, fixed, gsum, gcount, lam4, lam5, resid):
    """``Phi(W)`` from the residuals; the group sums ``gsum`` of ``gamma W``
    are recomputed here (``gcount``: the groups' sums of ``gamma^2``)."""
    nt, d = resid.shape
    n_pairs, J = W.shape
    fid = 0.0
    for t in range(nt):
        r2 = 0.0
        for a in range(d):
            r2 += resid[t, a] * resid[t, a]
        fid += kappa[t] * r2
    gsum[:, :] = 0.0
    l1 = 0.0
    for e in range(n_pairs):
        g = group[e]
        ge = pgain[e]
        for j in range(J):
            l1 += abs(W[e, j])
            gsum[g, j] += ge * W[e, j]
    # squared deviations from the centre in a second pass (the one-pass
    # sum w^2 - (sum w)^2 / n cancels when the deviations are small)
    pool = 0.0
    for e in range(n_pairs):
        g = group[e]
        ge = pgain[e]
        for j in range(J):
            if fixed:
                dv = W[e, j] - ge * P[g, j]
            elif gcount[g] > 0.0:
                dv = W[e, j] - ge * (gsum[g, j] / gcount[g])
            else:
                dv = W[e, j]
            pool += dv * dv
    return fid + lam4 * l1 + lam5 * pool


@njit(**JIT)
def frozen_weight_cd(U, Y, kappa, tgt_ptr, tspace, C, group, n_groups, pgain, P, fixed,
                     lam4, lam5, W, max_sweeps, tol, resid, gptr, gpairs, ptarget, torder,
                     anderson):
    """Minimise ``Phi`` (module docstring) over ``W`` in place.

    Parameters
    ----------
    U : float64 (n_pairs, J)
        ``u_ej = r_j . z_e`` (``r_j`` of the pair's source feature space).
    Y : float64 (n_targets, d)
    kappa : float64 (n_targets,)
    tgt_ptr : int64 (n_targets + 1,)
        Pairs of target ``t`` at ``tgt_ptr[t]:tgt_ptr[t + 1]``.
    tspace : int64 (n_targets,)
        Feature space of each target: its effects are ``C[tspace[t]]``.
    C : float64 (n_spaces, d, J)
    group : int64 (n_pairs,)
    n_groups : int
    pgain : float64 (n_pairs,)
        ``gamma_e``: the gain of each pair's target (all 1 without gains).
    P : float64 (n_groups, J)
        Fixed profiles (read only when ``fixed``).
    fixed : bool
        Pool toward ``gamma_e P`` instead of the eliminated profiles.
    lam4, lam5 : float >= 0
    W : float64 (n_pairs, J)
        Start, overwritten with the result.
    max_sweeps : int
    tol : float
        Stop after the first sweep whose decrease of ``Phi`` is at most
        ``tol * Phi``.
    resid : float64 (n_targets, d)
        Overwritten with the residuals ``y_t - prediction`` at the result.
    gptr, gpairs : int64 (n_groups + 1,), (n_pairs,)
        The pairs of group ``g`` at ``gpairs[gptr[g]:gptr[g + 1]]``, those of
        one target together, in ``torder``'s order.
    ptarget : int64 (n_pairs,)
        Target of each pair.
    torder : int64 (n_targets,)
        The order in which a sweep visits the targets.  The result depends
        on the order (not on where the targets sit in memory), so a fit
        passes its targets' order in the data.
    anderson : int >= 0
        Window ``K`` of Anderson extrapolation (0: none).  After every ``K``
        sweeps the affine combination of the last ``K`` iterates that
        cancels their successive changes best (least squares) is tried and
        kept when it lowers ``Phi`` (Bertrand & Massias, "Anderson
        acceleration of coordinate descent", AISTATS 2021).  Sweeps alone
        crawl along the directions the data fix weakly (2,000-4,000 sweeps
        at paper size); the extrapolation follows them.  Memory: ``K + 2``
        copies of ``W`` (the window and a trial point).

    Returns
    -------
    history : float64 (n_sweeps + 1,)
        ``Phi`` at the start and after every sweep (and its extrapolation).
    converged : bool
    """
    nt, d = Y.shape
    n_pairs, J = W.shape
    gsum = np.zeros((n_groups, J))
    gcount = np.zeros(n_groups)
    for e in range(n_pairs):
        gcount[group[e]] += pgain[e] * pgain[e]
    cc = np.zeros((C.shape[0], J))
    for s in range(C.shape[0]):
        for j in range(J):
            for a in range(d):
                cc[s, j] += C[s, a, j] * C[s, a, j]
    gmax = 0
    for g in range(n_groups):
        gmax = max(gmax, gptr[g + 1] - gptr[g])
    hbuf = np.empty((gmax, J))
    tbuf = np.empty(gmax, np.int64)
    vbuf = np.empty((J, gmax))
    obuf = np.empty(gmax)
    delta = np.empty(J)
    K = max(anderson, 0)
    # the window's iterates (slot 0: where it began) and a trial point
    window = np.empty((K + 1 if K > 0 else 0, n_pairs, J))
    trial = np.empty((n_pairs if K > 0 else 0, J))
    trial_resid = np.empty((nt if K > 0 else 0, d))
    history = np.empty(max_sweeps + 1)
    _residuals(U, Y, tgt_ptr, tspace, C, W, resid)
    prev = _phi(kappa, group, pgain, W, P, fixed, gsum, gcount, lam4, lam5, resid)
    history[0] = prev
    if K > 0:
        window[0, :, :] = W
    converged = False
    n = 0
    for sweep in range(max_sweeps):
        _cd_sweep(U, kappa, tgt_ptr, tspace, C, group, pgain, P, fixed, lam4, lam5, W,
                  resid, torder, cc, gsum, gcount)
        _group_shifts(U, kappa, tspace, C, pgain, P, fixed, lam4, lam5, W, resid, gptr,
                      gpairs, ptarget, cc, gsum, gcount, hbuf, tbuf, vbuf, obuf, delta)
        n = sweep + 1
        if n % _FRESH_EVERY == 0:
            # from scratch now and then, so rounding in the running residuals
            # never builds up (the group sums are rebuilt by every _phi)
            _residuals(U, Y, tgt_ptr, tspace, C, W, resid)
        cur = _phi(kappa, group, pgain, W, P, fixed, gsum, gcount, lam4, lam5, resid)
        if K > 0:
            k = (n - 1) % K + 1
            window[k, :, :] = W
            if k == K:
                if _anderson_point(window, trial):
                    _residuals(U, Y, tgt_ptr, tspace, C, trial, trial_resid)
                    value = _phi(kappa, group, pgain, trial, P, fixed, gsum, gcount, lam4,
                                 lam5, trial_resid)
                    if value < cur:
                        cur = value
                        W[:, :] = trial
                        resid[:, :] = trial_resid
                    else:  # the group sums back to those of W
                        _phi(kappa, group, pgain, W, P, fixed, gsum, gcount, lam4, lam5, resid)
                window[0, :, :] = W
        history[n] = cur
        if prev - cur <= tol * abs(cur):
            converged = True
            break
        prev = cur
    _residuals(U, Y, tgt_ptr, tspace, C, W, resid)
    history[n] = _phi(kappa, group, pgain, W, P, fixed, gsum, gcount, lam4, lam5, resid)
    return history[:n + 1], converged


@njit(**JIT)
def _cd_sweep(U, kappa, tgt_ptr, tspace, C, group, pgain, P, fixed, lam4, lam5, W, resid,
              torder, cc, gsum, gcount):
    """One pass of exact coordinate minimisation over every weight, targets
    in ``torder``; ``resid`` and the group sums ``gsum`` follow the changes."""
    d = resid.shape[1]
    J = W.shape[1]
    half_l1 = 0.5 * lam4
    for ti in range(torder.shape[0]):
        t = torder[ti]
        s = tspace[t]
        k = kappa[t]
        for e in range(tgt_ptr[t], tgt_ptr[t + 1]):
            g = group[e]
            ge = pgain[e]
            # the pooling term's curvature in one weight of this pair, and
            # (lpm) its pull: toward gamma_e times the profile of the rest
            if fixed:
                lp = lam5
            elif gcount[g] > 0.0:
                lp = lam5 * ((gcount[g] - ge * ge) / gcount[g])
            else:
                lp = lam5
            for j in range(J):
                u = U[e, j]
                w0 = W[e, j]
                a = k * u * u * cc[s, j]
                b = 0.0
                if u != 0.0:
                    for q in range(d):
                        b += C[s, q, j] * resid[t, q]
                    b *= k * u
                if fixed:
                    lpm = lam5 * ge * P[g, j]
                elif gcount[g] > 0.0:
                    lpm = lam5 * ge * ((gsum[g, j] - ge * w0) / gcount[g])
                else:
                    lpm = 0.0
                quad = a + lp
                lin = a * w0 + b + lpm
                if quad > 0.0 and abs(lin) > half_l1:
                    w = (lin - half_l1 if lin > 0.0 else lin + half_l1) / quad
                else:
                    w = 0.0
                dw = w - w0
                if dw != 0.0:
                    W[e, j] = w
                    gsum[g, j] += ge * dw
                    v = dw * u
                    if v != 0.0:
                        for q in range(d):
                            resid[t, q] -= v * C[s, q, j]


@njit(**JIT)
def _anderson_point(window, out):
    """The Anderson extrapolation of the iterates ``window[0..K]`` into ``out``.

    With the changes ``D_k = window[k] - window[k - 1]`` (k = 1..K), the
    weights ``c`` (summing to 1) minimise ``|sum_k c_k D_k|``: ``c`` is
    proportional to ``(D^T D)^-1 1``, the Gram matrix scaled to unit trace and
    given a relative ridge of 1e-10 (the changes are nearly collinear late
    in a descent).  ``out = sum_k c_k window[k]``.  Returns False (``out``
    untouched) when the changes are all zero or the solve is not finite.
    """
    K = window.shape[0] - 1
    n_pairs, J = window.shape[1], window.shape[2]
    gram = np.zeros((K, K))
    for e in range(n_pairs):
        for j in range(J):
            for a in range(K):
                da = window[a + 1, e, j] - window[a, e, j]
                if da != 0.0:
                    for b in range(a, K):
                        gram[a, b] += da * (window[b + 1, e, j] - window[b, e, j])
    trace = 0.0
    for a in range(K):
        trace += gram[a, a]
    if not trace > 0.0:
        return False
    for a in range(K):
        for b in range(a, K):
            gram[a, b] /= trace
            gram[b, a] = gram[a, b]
        gram[a, a] += 1e-10
    z = np.linalg.solve(gram, np.ones(K))
    total = 0.0
    for a in range(K):
        total += z[a]
    if not (np.isfinite(total) and total != 0.0):
        return False
    for e in range(n_pairs):
        for j in range(J):
            v = 0.0
            for a in range(K):
                v += z[a] * window[a + 1, e, j]
            out[e, j] = v / total
    return True


@njit(**JIT)
def _group_shifts(U, kappa, tspace, C, pgain, P, fixed, lam4, lam5, W, resid, gptr, gpairs,
                  ptarget, cc, gsum, gcount, hbuf, tbuf, vbuf, obuf, delta):
    """Move the weights of each group along its profile: ``W[e, j] += gamma_e delta``
    with ``delta`` the exact minimiser.

    Coordinate descent alone crawls along these directions: the pooling term
    holds a group's weights to ``gamma_e`` times one profile, so only moving
    the profile is free, and the data fix it weakly (the pooling term does
    not change).  As a function of ``delta`` the objective is ``a delta^2 - 2
    b delta + lam4 sum_e |gamma_e| |delta + W[e, j] / gamma_e|`` (plus the
    pooling term's change toward fixed profiles), a convex piecewise
    quadratic whose minimiser is found among its breakpoints in sorted
    order (pairs with gain 0 do not move).  Components one after the other
    (the residuals updated in between); one gathering pass over the group's
    pairs for all of them.
    """
    d = resid.shape[1]
    J = W.shape[1]
    for g in range(gptr.shape[0] - 1):
        p0, p1 = gptr[g], gptr[g + 1]
        if p1 == p0:
            continue
        # h[i, j] = sum of gamma u over the group's pairs of its i-th target
        # (pairs in target order); the breakpoints -W / gamma of every
        # component and their weights |gamma| (pairs with gain 0 left out)
        nt = 0
        n = 0
        unit = True
        for k in range(p0, p1):
            e = gpairs[k]
            t = ptarget[e]
            ge = pgain[e]
            if nt == 0 or tbuf[nt - 1] != t:
                tbuf[nt] = t
                hbuf[nt, :] = 0.0
                nt += 1
            for j in range(J):
                hbuf[nt - 1, j] += ge * U[e, j]
            if ge != 0.0:
                for j in range(J):
                    vbuf[j, n] = -W[e, j] / ge
                obuf[n] = abs(ge)
                unit = unit and ge == 1.0
                n += 1
        if n == 0:
            continue
        moved = False
        for j in range(J):
            a = 0.0
            b = 0.0
            for i in range(nt):
                h = hbuf[i, j]
                if h != 0.0:
                    t = tbuf[i]
                    s = tspace[t]
                    a += kappa[t] * h * h * cc[s, j]
                    cr = 0.0
                    for q in range(d):
                        cr += C[s, q, j] * resid[t, q]
                    b += kappa[t] * h * cr
            if fixed:
                # the pooling term sum_e (W + gamma delta - gamma P)^2 is
                # sum_e gamma^2 (delta - P - v_e)^2 with v_e = -W / gamma
                a += lam5 * gcount[g]
                for k in range(n):
                    b += lam5 * obuf[k] * obuf[k] * (vbuf[j, k] + P[g, j])
            if unit:
                x = _piecewise_minimiser(a, b, lam4, vbuf[j, :n])
            else:
                x = _weighted_piecewise_minimiser(a, b, lam4, vbuf[j, :n], obuf[:n])
            delta[j] = x
            if x != 0.0:
                moved = True
                gsum[g, j] += gcount[g] * x
                for i in range(nt):
                    v = x * hbuf[i, j]
                    if v != 0.0:
                        t = tbuf[i]
                        s = tspace[t]
                        for q in range(d):
                            resid[t, q] -= v * C[s, q, j]
        if moved:
            for k in range(p0, p1):
                e = gpairs[k]
                ge = pgain[e]
                if ge != 0.0:
                    for j in range(J):
                        W[e, j] += ge * delta[j]


@njit(**JIT)
def _weighted_piecewise_minimiser(a, b, lam, v, w):
    """``argmin_x a x^2 - 2 b x + lam sum_k w_k |x - v_k|`` for weights ``w_k > 0``.

    As :func:`_piecewise_minimiser` (which is the case ``w = 1``), with the
    breakpoints visited in sorted order through an index; 0 when the
    minimiser is not unique.  Kept apart from it: the index costs an
    allocation per call (thousands per sweep), which the case without gains,
    sorting in place, does not pay."""
    n = v.shape[0]
    if lam == 0.0 or n == 0:
        return b / a if a > 0.0 else 0.0
    order = np.argsort(v)
    total = 0.0
    for k in range(n):
        total += w[k]
    below = 0.0   # weight of the breakpoints strictly below the current stretch
    m = 0
    while True:
        # open stretch (v[m-1], v[m]) in sorted order: slope
        # 2 a x - 2 b + lam (below - (total - below))
        lo = v[order[m - 1]] if m > 0 else -np.inf
        hi = v[order[m]] if m < n else np.inf
        if a > 0.0:
            x = (2.0 * b - lam * (2.0 * below - total)) / (2.0 * a)
            if lo < x < hi:
                return x
        if m == n:
            return 0.0
        # at the breakpoint hi (all breakpoints equal to it): subgradient
        # [base + lam (2 below - total), base + lam (2 (below + at) - total)]
        at = w[order[m]]
        c = 1
        while m + c < n and v[order[m + c]] == hi:
            at += w[order[m + c]]
            c += 1
        base = 2.0 * a * hi - 2.0 * b
        if base + lam * (2.0 * below - total) <= 0.0 <= base + lam * (2.0 * (below + at) - total):
            return hi
        below += at
        m += c


@njit(**JIT)
def _piecewise_minimiser(a, b, lam, v):
    """``argmin_x a x^2 - 2 b x + lam sum_k |x - v_k|`` (``v`` is sorted in place).

    0 when the minimiser is not unique (``a = 0`` on a flat stretch)."""
    n = v.shape[0]
    if lam == 0.0 or n == 0:
        return b / a if a > 0.0 else 0.0
    v.sort()
    m = 0    # breakpoints strictly below the current stretch
    while True:
        # open stretch (v[m-1], v[m]): slope 2 a x - 2 b + lam (2 m - n)
        lo = v[m - 1] if m > 0 else -np.inf
        hi = v[m] if m < n else np.inf
        if a > 0.0:
            x = (2.0 * b - lam * (2.0 * m - n)) / (2.0 * a)
            if lo < x < hi:
                return x
        if m == n:
            return 0.0
        # at the breakpoint hi (multiplicity c): subgradient
        # [2 a hi - 2 b + lam (2 m - n), ... + lam (2 (m + c) - n)]
        c = 1
        while m + c < n and v[m + c] == hi:
            c += 1
        base = 2.0 * a * hi - 2.0 * b
        if base + lam * (2.0 * m - n) <= 0.0 <= base + lam * (2.0 * (m + c) - n):
            return hi
        m += c
