"""Slow, obviously-correct references for the Numba kernels.

Plain NumPy/SciPy, loops welcome, no Numba and no cleverness: every function
here restates MODEL.md as directly as possible so that the kernels in
``licchie.kernels`` can be checked against it (tests/test_kernels.py).  No
test functions live here (the layout follows stumpy's ``tests/naive.py``).

Conventions shared with the kernels: observations are grouped by frame
(``frame_ptr`` CSR), ``prev_frame[f]`` is the session's previous frame or -1,
pairs are grouped by target (``tgt_ptr`` CSR), the smoothness graph is a CSR
adjacency listing every undirected edge from both ends.
"""
from __future__ import annotations

import numpy as np


# --------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------

def euclid(a, b):
    """``sqrt(sum_k (a_k - b_k)^2)``, summed left to right in float64.

    The sequential sum is the IEEE computation the kernels perform, so
    distances compare exactly (which matters at ``dist == radius``).
    """
    acc = 0.0
    for k in range(len(a)):
        t = float(a[k]) - float(b[k])
        acc += t * t
    return float(np.sqrt(acc))


def sq_euclid(a, b):
    """Squared Euclidean distance, summed left to right."""
    acc = 0.0
    for k in range(len(a)):
        t = float(a[k]) - float(b[k])
        acc += t * t
    return acc


def frame_of(frame_ptr):
    """Frame index of every observation from the CSR pointer."""
    n_frames = len(frame_ptr) - 1
    out = np.empty(frame_ptr[-1], np.int64)
    for f in range(n_frames):
        out[frame_ptr[f]:frame_ptr[f + 1]] = f
    return out


def motif(C, R, j):
    """``M_j = c_j r_j^T``."""
    return np.outer(C[:, j], R[:, j])


def lowrank(W, C, R):
    """``B_e = sum_j W[e, j] c_j r_j^T`` for every row of ``W``."""
    n, J = W.shape
    d = C.shape[0]
    B = np.zeros((n, d, d))
    for e in range(n):
        for j in range(J):
            B[e] += W[e, j] * motif(C, R, j)
    return B


def edges(nbr_ptr, nbr_idx, nbr_w):
    """Undirected edges ``{(min, max): weight}`` of a CSR adjacency."""
    out = {}
    for e in range(len(nbr_ptr) - 1):
        for k in range(nbr_ptr[e], nbr_ptr[e + 1]):
            f = int(nbr_idx[k])
            out[(min(e, f), max(e, f))] = float(nbr_w[k])
    return out


def csr_from_edges(n, edge_weights):
    """CSR adjacency (both directions, ascending) from ``{(a, b): w}``."""
    lists = [[] for _ in range(n)]
    for (a, b), w in edge_weights.items():
        lists[a].append((b, w))
        lists[b].append((a, w))
    ptr = np.zeros(n + 1, np.int64)
    idx, wts = [], []
    for e in range(n):
        for f, w in sorted(lists[e]):
            idx.append(f)
            wts.append(w)
        ptr[e + 1] = len(idx)
    return ptr, np.array(idx, np.int64), np.array(wts, np.float64)


# --------------------------------------------------------------------------
# pairs
# --------------------------------------------------------------------------

def self_sources(cell, frame, prev_frame):
    """Observation of the same cell at the previous frame of its session, or -1."""
    n = len(cell)
    out = np.full(n, -1, np.int64)
    for o in range(n):
        p = prev_frame[frame[o]]
        if p < 0:
            continue
        for k in range(n):
            if frame[k] == p and cell[k] == cell[o]:
                out[o] = k
    return out


def radius_pairs(positions, frame_ptr, prev_frame, self_src, radius, include_self):
    """Brute force over every (target at f, source at prev_frame[f]).

    A source pairs when its distance is ``<= radius``; the target's own
    previous observation is kept beyond the radius when ``include_self``.
    Sources ascend within a target.
    """
    n_obs = positions.shape[0]
    fo = frame_of(frame_ptr)
    tgt_ptr = np.zeros(n_obs + 1, np.int64)
    src, dist = [], []
    for o in range(n_obs):
        p = prev_frame[fo[o]]
        if p >= 0:
            for k in range(frame_ptr[p], frame_ptr[p + 1]):
                dk = euclid(positions[o], positions[k])
                if dk <= radius or (include_self and k == self_src[o]):
                    src.append(k)
                    dist.append(dk)
        tgt_ptr[o + 1] = len(src)
    return tgt_ptr, np.array(src, np.int64), np.array(dist, np.float64)


def pair_gains(dist, kind, bandwidth):
    """``g_e``: 0 none -> 1, 1 gaussian -> exp(-d^2/(2h^2)), 2 distance -> d."""
    out = np.empty(len(dist))
    for e, de in enumerate(dist):
        if kind == 0:
            out[e] = 1.0
        elif kind == 1:
            out[e] = np.exp(-de ** 2 / (2.0 * bandwidth ** 2))
        else:
            out[e] = de
    return out


# --------------------------------------------------------------------------
# smoothness graph
# --------------------------------------------------------------------------

def stacked_states(X, tgt, src):
    """``s_e = [x[tgt_e]; x[src_e]]``."""
    return np.array([np.concatenate([X[t], X[s]]) for t, s in zip(tgt, src)]
                    ).reshape(len(src), 2 * X.shape[1])


def knn_order(S, q):
    """All other rows of ``S`` by increasing (squared distance, index)."""
    cand = [(sq_euclid(S[q], S[c]), c) for c in range(S.shape[0]) if c != q]
    cand.sort()
    return cand


def symmetric_graph(S, knn_idx, sigma):
    """Union of the kNN relation in both directions, weights exp(-sigma*dist)."""
    E = S.shape[0]
    ew = {}
    for e in range(E):
        for f in knn_idx[e]:
            f = int(f)
            if f < 0:
                continue
            key = (min(e, f), max(e, f))
            ew[key] = float(np.exp(-sigma * euclid(S[key[0]], S[key[1]])))
    return csr_from_edges(E, ew)


# --------------------------------------------------------------------------
# the A-step, one target at a time, as an explicit least-squares problem
# --------------------------------------------------------------------------

def a_step_design(A_old, X, o_tgt, pairs, src, gain, nbr_ptr, nbr_idx, nbr_w,
                  B, lam1, lam2, ridge):
    """Least-squares form of one target's A-step (MODEL.md, Fitting, step 1).

    Unknowns: the target's ``A_e`` (``S x d x d``, flattened C-order).
    Returns ``(D, t)`` such that the smooth part of the target's objective is
    ``||D a - t||^2``:

    * fidelity: ``y - sum_e g_e A_e x[src_e]`` (d rows);
    * low rank: ``sqrt(lam1) (A_e - B_e)``;
    * smoothness: ``sqrt(lam2 w) (A_e - A_old[f])`` for every neighbour ``f``
      of ``e`` -- every neighbour, those of the same target included, at its
      previous value (the Jacobi sweep);
    * a pair with ``lam1 + lam2 sum w == 0`` gets ``sqrt(ridge) A_e`` (a
      ridge toward zero, the kernel's documented choice).
    """
    d = X.shape[1]
    S = len(pairs)
    n = S * d * d

    def col(q, i, m):
        return (q * d + i) * d + m

    rows, rhs = [], []
    y = X[o_tgt]
    for i in range(d):
        r = np.zeros(n)
        for q, e in enumerate(pairs):
            for m in range(d):
                r[col(q, i, m)] = gain[e] * X[src[e], m]
        rows.append(r)
        rhs.append(y[i])
    for q, e in enumerate(pairs):
        nb = [(int(nbr_idx[k]), float(nbr_w[k])) for k in range(nbr_ptr[e], nbr_ptr[e + 1])]
        total = lam1 + lam2 * sum(w for _, w in nb)
        blocks = []
        if total <= 0.0:
            blocks.append((ridge, np.zeros((d, d))))
        else:
            if lam1 > 0:
                blocks.append((lam1, B[e]))
            if lam2 > 0:
                for f, w in nb:
                    if w > 0:
                        blocks.append((lam2 * w, A_old[f]))
        for weight, target in blocks:
            sw = np.sqrt(weight)
            for i in range(d):
                for m in range(d):
                    r = np.zeros(n)
                    r[col(q, i, m)] = sw
                    rows.append(r)
                    rhs.append(sw * target[i, m])
    return np.array(rows), np.array(rhs)


def lasso_kkt_violation(D, t, a, lam):
    """Largest violation of the optimality conditions of
    ``||D a - t||^2 + lam ||a||_1`` at ``a`` (0 at the exact minimiser).

    Gradient of the smooth part ``g = 2 D^T (D a - t)``; optimal iff
    ``g_l + lam sign(a_l) = 0`` where ``a_l != 0`` and ``|g_l| <= lam`` where
    ``a_l == 0``.
    """
    g = 2.0 * D.T @ (D @ a - t)
    viol = np.where(a != 0.0, np.abs(g + lam * np.sign(a)),
                    np.maximum(np.abs(g) - lam, 0.0))
    return float(viol.max()) if viol.size else 0.0


def a_step(A_old, X, tgt_obs, tgt_ptr, src, gain, nbr_ptr, nbr_idx, nbr_w, W, C, R,
           lam1, lam2, ridge):
    """Reference A-step for ``lam3 = 0``: every target by dense least squares.

    ``np.linalg.lstsq`` gives the minimum-norm solution, which is the limit of
    the kernel's vanishing ridge when a target's problem is underdetermined.
    """
    A_new = np.full_like(A_old, np.nan)
    B = lowrank(W, C, R)
    d = X.shape[1]
    for t in range(len(tgt_obs)):
        pairs = list(range(tgt_ptr[t], tgt_ptr[t + 1]))
        if not pairs:
            continue
        D, rhs = a_step_design(A_old, X, tgt_obs[t], pairs, src, gain, nbr_ptr, nbr_idx,
                               nbr_w, B, lam1, lam2, ridge)
        a = np.linalg.lstsq(D, rhs, rcond=None)[0]
        A_new[pairs[0]:pairs[-1] + 1] = a.reshape(len(pairs), d, d)
    return A_new


def a_step_normal_equations(A_old, X, tgt_obs, tgt_ptr, src, gain, nbr_ptr, nbr_idx,
                            nbr_w, W, C, R, lam1, lam2, ridge):
    """The same A-step (``lam3 = 0``) written per output row as in MODEL.md:
    ``(z z^T + diag(lam)) a = z y_i + lam * p`` solved with ``np.linalg.solve``."""
    A_new = np.full_like(A_old, np.nan)
    B = lowrank(W, C, R)
    d = X.shape[1]
    for t in range(len(tgt_obs)):
        s0, s1 = tgt_ptr[t], tgt_ptr[t + 1]
        S = s1 - s0
        if S == 0:
            continue
        z = np.concatenate([gain[e] * X[src[e]] for e in range(s0, s1)])
        lam = np.empty(S * d)
        P = np.zeros((S, d, d))
        for q, e in enumerate(range(s0, s1)):
            nb = range(nbr_ptr[e], nbr_ptr[e + 1])
            total = lam1 + lam2 * sum(nbr_w[k] for k in nb)
            if total <= 0:
                lam[q * d:(q + 1) * d] = ridge
                continue
            lam[q * d:(q + 1) * d] = total
            P[q] = (lam1 * B[e] + lam2 * sum(nbr_w[k] * A_old[nbr_idx[k]] for k in nb)) / total
        y = X[tgt_obs[t]]
        for i in range(d):
            p = np.concatenate([P[q, i] for q in range(S)])
            a = np.linalg.solve(np.outer(z, z) + np.diag(lam), z * y[i] + lam * p)
            A_new[s0:s1, i, :] = a.reshape(S, d)
    return A_new


# --------------------------------------------------------------------------
# CP contractions
# --------------------------------------------------------------------------

def contract_ar(A, W, R):
    """``sum_e W[e, j] A_e r_j``."""
    return np.einsum("ej,eim,mj->ij", W, A, R)


def contract_atc(A, W, C):
    """``sum_e W[e, j] A_e^T c_j``."""
    return np.einsum("ej,eim,ij->mj", W, A, C)


def bilinear_cr(A, C, R):
    """``c_j^T A_e r_j``."""
    return np.einsum("ij,eim,mj->ej", C, A, R)


def lowrank_reconstruct(W, C, R):
    """``sum_j W[e, j] c_j r_j^T``."""
    return np.einsum("ej,ij,mj->eim", W, C, R)


# --------------------------------------------------------------------------
# component step (MODEL.md, Fitting, step 2)
# --------------------------------------------------------------------------

def component_step(A, W, C, R):
    """Each ``c_j`` in turn, then each ``r_j``, from the dense residuals
    ``E_e = A_e - sum_{i != j} W[e, i] c_i r_i^T`` (current values of the
    others): ``c_j = sum_e W[e,j] E_e r_j / ||.||`` (kept when the sum is 0)."""
    C = C.copy()
    R = R.copy()
    E_pairs, d, _ = A.shape
    J = W.shape[1]
    for j in range(J):
        v = np.zeros(d)
        for e in range(E_pairs):
            Ee = A[e] - sum(W[e, i] * motif(C, R, i) for i in range(J) if i != j)
            v += W[e, j] * Ee @ R[:, j]
        if np.linalg.norm(v) > 0:
            C[:, j] = v / np.linalg.norm(v)
    for j in range(J):
        v = np.zeros(d)
        for e in range(E_pairs):
            Ee = A[e] - sum(W[e, i] * motif(C, R, i) for i in range(J) if i != j)
            v += W[e, j] * Ee.T @ C[:, j]
        if np.linalg.norm(v) > 0:
            R[:, j] = v / np.linalg.norm(v)
    return C, R


def lowrank_term(A, W, C, R):
    """``sum_e ||A_e - sum_j W[e,j] c_j r_j^T||_F^2``."""
    return float(sum(np.sum((A[e] - lowrank(W[e:e + 1], C, R)[0]) ** 2)
                     for e in range(A.shape[0])))


# --------------------------------------------------------------------------
# weight step (MODEL.md, Fitting, step 3)
# --------------------------------------------------------------------------

def weight_design(A_e, C, R, Wbar_g, lam1, lam5):
    """``(D, t)`` with ``||D w - t||^2 = lam1 ||vec A_e - sum_j w_j vec M_j||^2
    + lam5 ||w - Wbar_g||^2``."""
    J = C.shape[1]
    Dm = np.stack([motif(C, R, j).ravel() for j in range(J)], axis=1)
    D = np.vstack([np.sqrt(lam1) * Dm, np.sqrt(lam5) * np.eye(J)])
    t = np.concatenate([np.sqrt(lam1) * A_e.ravel(), np.sqrt(lam5) * Wbar_g])
    return D, t


def weight_lasso_sklearn(A_e, C, R, Wbar_g, lam1, lam4, lam5):
    """The pair's LASSO solved by scikit-learn on the explicit design.

    sklearn minimises ``||t - D w||^2 / (2 n) + alpha ||w||_1``; dividing ours
    by ``2 n`` gives ``alpha = lam4 / (2 n)``.
    """
    from sklearn.linear_model import Lasso, LinearRegression

    D, t = weight_design(A_e, C, R, Wbar_g, lam1, lam5)
    n = D.shape[0]
    if lam4 == 0:
        return LinearRegression(fit_intercept=False).fit(D, t).coef_
    model = Lasso(alpha=lam4 / (2 * n), fit_intercept=False, tol=1e-14,
                  max_iter=200000, selection="cyclic")
    return model.fit(D, t).coef_


def group_mean(W, group, n_groups):
    """Mean of the rows of each group (0 for an empty group)."""
    out = np.zeros((n_groups, W.shape[1]))
    for g in range(n_groups):
        rows = [W[e] for e in range(W.shape[0]) if group[e] == g]
        if rows:
            out[g] = np.mean(rows, axis=0)
    return out



def gain_profile_rounds(W, group, n_groups, tid, gamma, rounds, tol):
    """Profiles and gains of the gain pooling term by alternating exact updates
    (one target and one group at a time, plain loops over the pairs)."""
    gam = np.array(gamma, dtype=np.float64)
    J = W.shape[1]
    Wbar = np.zeros((n_groups, J))
    for _ in range(rounds):
        for g in range(n_groups):
            rows = np.flatnonzero(group == g)
            den = sum(gam[tid[e]] ** 2 for e in rows)
            Wbar[g] = (sum(gam[tid[e]] * W[e] for e in rows) / den if den > 0
                       else np.zeros(J))
        new = gam.copy()
        for t in range(gam.size):
            rows = np.flatnonzero(tid == t)
            den = sum(Wbar[group[e]] @ Wbar[group[e]] for e in rows)
            if den > 0:
                new[t] = sum(Wbar[group[e]] @ W[e] for e in rows) / den
        done = np.max(np.abs(new - gam), initial=0.0) <= tol * max(
            1.0, float(np.max(np.abs(new), initial=0.0)))
        gam = new
        if done:
            break
    return Wbar, gam

def gain_eliminated_loss(Y, Z, tg_ptr, tg_group, Wbar, C, R, mu=0.0, rho=0.0):
    """The pooled loss at each target's best gain, and its gradient by the
    chain rule through the target's prediction (the gain held at its
    optimum: its own derivative multiplies a zero).  ``mu``: each gain's
    prior ``mu (gamma - 1)^2``; ``rho``: a ridge ``rho gamma^2 |Wbar[g]|^2``
    on the pooled weights of every (target, group) row; both added to the loss.

    Returns ``F, dF/dWbar, dF/dC, dF/dR``.
    """
    F = 0.0
    gW, gC, gR = np.zeros_like(Wbar), np.zeros_like(C), np.zeros_like(R)
    for i in range(Y.shape[0]):
        rows = range(tg_ptr[i], tg_ptr[i + 1])
        # p_i = sum_g C diag(Wbar[g]) R^T z_{i,g}
        v = sum((Wbar[tg_group[a]] * (R.T @ Z[a]) for a in rows), np.zeros(C.shape[1]))
        p = C @ v
        q_i = rho * sum((Wbar[tg_group[a]] @ Wbar[tg_group[a]] for a in rows), 0.0)
        gam = (Y[i] @ p + mu) / (p @ p + mu + q_i) if p @ p + mu + q_i > 0 else 0.0
        res = Y[i] - gam * p
        F += res @ res + mu * (gam - 1.0) ** 2 + gam ** 2 * q_i
        q = -2.0 * gam * res                     # dF/dp at the optimal gain
        gC += np.outer(q, v)
        u = C.T @ q                               # dF/dv
        for a in rows:
            g = tg_group[a]
            gW[g] += u * (R.T @ Z[a]) + 2.0 * rho * gam ** 2 * Wbar[g]
            gR += np.outer(Z[a], u * Wbar[g])
    return F, gW, gC, gR


def frozen_phi_parts(U, Y, kappa, tgt_ptr, tspace, C, group, n_groups, P, fixed, lam4, lam5,
                     W, pgain=None):
    """The A-eliminated objective at fixed motifs (``licchie.kernels.frozen``):
    ``(Phi, gradient of its smooth part)``, one target and one group at a time.

    ``Phi = sum_t kappa_t |y_t - sum_{e in t} sum_j W[e, j] U[e, j] C[s_t][:, j]|^2
    + lam4 |W|_1 + lam5 sum_e |W[e] - gamma_e P_e|^2`` with ``gamma_e`` the
    pair's gain (``pgain``; all 1 if None) and ``P_e`` the profile of e's
    group that minimises the pooling term, ``sum gamma W / sum gamma^2``
    over the group (the mean without gains), or the fixed profile.
    """
    J = W.shape[1]
    gains = np.ones(W.shape[0]) if pgain is None else np.asarray(pgain, dtype=np.float64)
    fid, grad = 0.0, np.zeros_like(W)
    for t in range(Y.shape[0]):
        Ct = C[tspace[t]]
        rows = range(tgt_ptr[t], tgt_ptr[t + 1])
        pred = sum((Ct @ (W[e] * U[e]) for e in rows), np.zeros(Y.shape[1]))
        r = Y[t] - pred
        fid += kappa[t] * (r @ r)
        for e in rows:
            grad[e] = -2.0 * kappa[t] * U[e] * (Ct.T @ r)
    pool = 0.0
    for g in range(n_groups):
        members = np.flatnonzero(group == g)
        if members.size == 0:
            continue
        ge = gains[members]
        if fixed:
            profile = P[g]
        else:
            norm = ge @ ge
            profile = (ge @ W[members]) / norm if norm > 0 else np.zeros(J)
        dev = W[members] - ge[:, None] * profile
        pool += np.sum(dev * dev)
        # the eliminated profile's own derivative multiplies sum(gamma dev) = 0
        grad[members] += 2.0 * lam5 * dev
    return fid + lam4 * np.abs(W).sum() + lam5 * pool, grad


def anderson_point(iterates):
    """Anderson extrapolation of ``iterates`` (K + 1 arrays of one shape):
    ``sum_k c_k x_k`` over ``k = 1..K`` with ``c`` minimising
    ``|sum_k c_k (x_k - x_{k-1})|`` subject to ``sum_k c_k = 1``, from the
    equality-constrained least squares' KKT system."""
    X = np.stack([np.ravel(x) for x in iterates], axis=1)
    D = np.diff(X, axis=1)
    K = D.shape[1]
    kkt = np.zeros((K + 1, K + 1))
    kkt[:K, :K] = 2.0 * D.T @ D
    kkt[:K, K] = kkt[K, :K] = 1.0
    c = np.linalg.solve(kkt, np.r_[np.zeros(K), 1.0])[:K]
    return (X[:, 1:] @ c).reshape(np.shape(iterates[0]))


def lasso_optimality_gap(grad, W, lam):
    """Largest violation of ``0 in grad + lam * sign(W)`` (subgradient at 0)."""
    on = W != 0
    viol = np.where(on, np.abs(grad + lam * np.sign(W)), np.maximum(np.abs(grad) - lam, 0.0))
    return float(np.max(viol, initial=0.0))


# --------------------------------------------------------------------------
# objective and predictions
# --------------------------------------------------------------------------

def predict_pairs(A, X, tgt_ptr, src, gain):
    """``xhat_t = sum_{e into t} g_e A_e x[src_e]``."""
    T = len(tgt_ptr) - 1
    out = np.zeros((T, X.shape[1]))
    for t in range(T):
        for e in range(tgt_ptr[t], tgt_ptr[t + 1]):
            out[t] += gain[e] * A[e] @ X[src[e]]
    return out


def predict_lowrank(X, tgt_ptr, src, gain, W, C, R):
    """:func:`predict_pairs` with ``A_e = sum_j W[e,j] c_j r_j^T``."""
    return predict_pairs(lowrank(W, C, R), X, tgt_ptr, src, gain)


def objective_terms(A, X, tgt_obs, tgt_ptr, src, gain, nbr_ptr, nbr_idx, nbr_w,
                    W, C, R, Wbar, group):
    """The six unweighted terms of MODEL.md's objective, densely:
    ``[fidelity, low_rank, smoothness, l1_A, l1_W, pooling]``.

    Fidelity is summed over targets with at least one pair (a target without
    pairs only adds a constant); each undirected smoothness edge counts once.
    """
    xhat = predict_pairs(A, X, tgt_ptr, src, gain)
    fidelity = float(sum(np.sum((X[tgt_obs[t]] - xhat[t]) ** 2) for t in range(len(tgt_obs))))
    low = lowrank_term(A, W, C, R)
    smooth = 0.0
    for (a, b), w in edges(nbr_ptr, nbr_idx, nbr_w).items():
        smooth += w * np.sum((A[a] - A[b]) ** 2)
    l1a = float(np.abs(A).sum())
    l1w = float(np.abs(W).sum())
    pool = float(sum(np.sum((W[e] - Wbar[group[e]]) ** 2) for e in range(W.shape[0])))
    return np.array([fidelity, low, smooth, l1a, l1w, pool])


# --------------------------------------------------------------------------
# input builders (not references: they only lay data out as kernels expect)
# --------------------------------------------------------------------------

def recording(masks, positions, features=None, rng=None):
    """Flat, frame-grouped observation arrays from per-session dense arrays.

    Parameters
    ----------
    masks : list of bool (n_cells_s, T_s)
        Which cell is seen in which frame; unseen observations are simply
        absent (no NaN placeholders).
    positions : list of float (n_cells_s, T_s, s)
    features : list of float (n_cells_s, T_s, d), optional
    rng : numpy Generator, optional
        Shuffles the observations within each frame (kernels must not rely
        on any order inside a frame).

    Returns
    -------
    dict with ``positions, features, cell, frame, frame_ptr, prev_frame,
    frame_session, frame_time_index, n_cells`` (cells unique across sessions;
    ``prev_frame`` is -1 at each session's first frame).
    """
    cell, frame, pos, feat = [], [], [], []
    frame_ptr, prev_frame, frame_session, frame_time = [0], [], [], []
    offset = 0
    f = 0
    s = positions[0].shape[2] if positions else 2
    d = features[0].shape[2] if features else 1
    for si, mask in enumerate(masks):
        n, T = mask.shape
        for t in range(T):
            seen = np.flatnonzero(mask[:, t])
            if rng is not None:
                seen = rng.permutation(seen)
            for c in seen:
                cell.append(offset + c)
                frame.append(f)
                pos.append(positions[si][c, t])
                feat.append(features[si][c, t] if features is not None else np.zeros(d))
            frame_ptr.append(len(cell))
            prev_frame.append(f - 1 if t > 0 else -1)
            frame_session.append(si)
            frame_time.append(t)
            f += 1
        offset += n
    return dict(
        positions=np.ascontiguousarray(np.array(pos, np.float64).reshape(len(cell), s)),
        features=np.ascontiguousarray(np.array(feat, np.float64).reshape(len(cell), d)),
        cell=np.array(cell, np.int64),
        frame=np.array(frame, np.int64),
        frame_ptr=np.array(frame_ptr, np.int64),
        prev_frame=np.array(prev_frame, np.int64),
        frame_session=np.array(frame_session, np.int64),
        frame_time_index=np.array(frame_time, np.int64),
        n_cells=offset,
    )


def cholesky_rows(M, k, pivot_rel):
    """:func:`licchie.kernels._linalg.cholesky` one row at a time, every sum
    over ``c`` in increasing order (the kernel's order before it took rows
    in pairs): the lower factor, or None when a pivot is rejected."""
    L = np.zeros((k, k))
    for a in range(k):
        for b in range(a + 1):
            s = M[a, b]
            for c in range(b):
                s -= L[a, c] * L[b, c]
            if b == a:
                if not (s > pivot_rel * M[a, a]):
                    return None
                L[a, a] = np.sqrt(s)
            else:
                L[a, b] = s / L[b, b]
    return L
