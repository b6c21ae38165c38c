"""The class-structured start (``init="classes"``).

A start for pooled data whose motifs each belong to a few interaction
classes.  It works on the reduced problem of :mod:`licchie.kernels.reduced`
(``A`` eliminated exactly for ``lam2 = lam3 = 0``): every target ``s`` in
frame ``f`` has its class source sums ``zbar[s, g] = sum_{e in s, g(e)=g}
g_e x[k_e]``, its state ``y[s]`` and its weight ``kappa[s]``.

1. **Class matrices** (convex).  A time-varying matrix ``B[f, g]`` per frame
   and interaction class, ``y[s] ~ gain[s] sum_g B[f, g] zbar[s, g]``, with a
   nuclear norm on each class's target-side unfolding ``[B[0,g] ... B[F-1,g]]``
   (``d x F d``): few target effects per class.  Solved by FISTA
   (singular-value thresholding per class).  The data leave ``B`` undetermined
   in the source directions a class's sources never visit, but its target-side
   column space is pinned: its left singular vectors are the start's target
   directions.
2. **Allocation.**  The ``J`` motifs go to the classes with the largest
   singular values, then single moves of one motif between two classes are
   kept while they lower the fit of step 3.
3. **Reduced-rank regression** per class with the target directions ``U_g``
   fixed: ``B[f, g] = U_g A_g[f] R_g^T`` with ``R_g`` common to all frames,
   alternating exact least squares for ``A`` (per frame) and ``R`` (all frames
   at once), and each target's gain.  Started from the dominant source
   directions of a per-frame ridge fit, then each class's ``R_g`` is restarted
   at random a few times (seeded) and kept when the fit improves.
4. **Motifs.**  Per class, the CP decomposition of ``A_g[f]`` (frames x
   ``r_g`` x ``r_g``) rotates ``U_g`` and ``R_g`` into ``r_g`` rank-one
   motifs and gives their time courses, hence every pair's start weights.

Everything here is a heuristic for the starting point; the main iterations
then minimise ``L`` from it (every motif may then be used by every class).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class ClassData:
    """Targets sorted by frame, with their class source sums.

    Attributes
    ----------
    order : int64 (n_targets,)  targets (the problem's index) in frame order
    fptr : int64 (n_frames + 1,)  frame segments of ``order``
    frame : int64 (n_targets,)  frame segment of each sorted target
    zbar : float64 (n_targets, G, d)
    y : float64 (n_targets, d)
    w : float64 (n_targets,)  kappa (times bootstrap counts)
    npairs : float64 (n_targets, G)  pairs of each class
    pair_pos : int64 (n_pairs,)  sorted position of each pair's target
    pair_class : int64 (n_pairs,)
    """
    order: np.ndarray
    fptr: np.ndarray
    frame: np.ndarray
    zbar: np.ndarray
    y: np.ndarray
    w: np.ndarray
    npairs: np.ndarray
    pair_pos: np.ndarray
    pair_class: np.ndarray

    @property
    def n_frames(self):
        return self.fptr.shape[0] - 1

    @property
    def n_classes(self):
        return self.zbar.shape[1]

    def segments(self):
        return zip(self.fptr[:-1], self.fptr[1:])

    def frame_sum(self, a):
        """Sum of ``a`` (n_targets, ...) over each frame's targets."""
        return np.add.reduceat(a, self.fptr[:-1], axis=0)


def class_data(Z, Y, kappa, pair_target, target_frame, pair_class, n_classes,
               weights=None):
    """:class:`ClassData` from the reduced inputs.

    ``Z`` (n_pairs, d) are the pair-weighted source states, ``Y``/``kappa``
    per target, ``target_frame`` the frame of each target, ``pair_class``
    the interaction class of each pair; ``weights`` optional per-target
    multipliers of ``kappa`` (bootstrap counts).
    """
    nt, d = Y.shape
    order = np.argsort(target_frame, kind="stable")
    pos = np.empty(nt, np.int64)
    pos[order] = np.arange(nt)
    frames, first = np.unique(target_frame[order], return_index=True)
    fptr = np.append(first, nt).astype(np.int64)
    frame = np.repeat(np.arange(frames.size), np.diff(fptr))
    zbar = np.zeros((nt, n_classes, d))
    pp = pos[pair_target]
    np.add.at(zbar, (pp, pair_class), Z)
    npairs = np.zeros((nt, n_classes))
    np.add.at(npairs, (pp, pair_class), 1.0)
    w = kappa[order] * (1.0 if weights is None else weights[order])
    return ClassData(order, fptr, frame, zbar, np.ascontiguousarray(Y[order]), w, npairs,
                     pp, pair_class)


def _normalise(gain, keep):
    """Gains over their median magnitude (one free scale for all of them)."""
    nz = keep & (gain != 0)
    m = float(np.median(np.abs(gain[nz]))) if np.any(nz) else 1.0
    return gain / m if m > 0 else gain, m


def fitted_gains(p, y, w, thr=None):
    """Per-target least-squares gain of prediction ``p`` for ``y``, with an
    L1 threshold ``thr`` (the L1 of the implied weights per unit gain)."""
    pp = w * np.einsum("sd,sd->s", p, p)
    py = w * np.einsum("sd,sd->s", p, y)
    if thr is not None:
        py = np.sign(py) * np.maximum(np.abs(py) - thr, 0.0)
    return np.where(pp > 0, py / np.where(pp > 0, pp, 1.0), 0.0)


# ----------------------------------------------------------------- step 1
def _unfold(B, g):
    """Target-side unfolding of class g: (d, n_frames * d)."""
    F, _, d, _ = B.shape
    return B[:, g].transpose(1, 0, 2).reshape(d, F * d)


def _fold(M, B, g):
    F, _, d, _ = B.shape
    B[:, g] = M.reshape(d, F, d).transpose(1, 0, 2)


def class_predict(cd: ClassData, B):
    """``sum_g B[f, g] zbar[s, g]`` for every target: (n_targets, d)."""
    out = np.empty_like(cd.y)
    G, d = cd.n_classes, cd.y.shape[1]
    for f, (a, b) in enumerate(cd.segments()):
        out[a:b] = cd.zbar[a:b].reshape(b - a, G * d) @ B[f].transpose(1, 0, 2).reshape(
            d, G * d).T
    return out


def _class_gradient(cd, wr):
    """Gradient of ``sum_s ||r_s||^2 w_s`` factor: ``-2 sum_s wr_s zbar_s^T`` per frame."""
    G, d = cd.n_classes, cd.y.shape[1]
    out = np.empty((cd.n_frames, G, d, d))
    for f, (a, b) in enumerate(cd.segments()):
        M = -2.0 * wr[a:b].T @ cd.zbar[a:b].reshape(b - a, G * d)        # (d, G d)
        out[f] = M.reshape(d, G, d).transpose(1, 0, 2)
    return out


def class_matrices(cd: ClassData, gain, mu_rel=0.05, n_iter=600, B0=None):
    """Step 1: FISTA for the nuclear-norm-regularised class matrices.

    Minimises ``sum_s w_s ||y_s - gain_s sum_g B[f,g] zbar[s,g]||^2 + mu
    sum_g ||unfold_g(B)||_*`` with ``mu = mu_rel`` times the largest
    unfolding norm of the gradient at ``B = 0`` (the smallest ``mu`` at which
    ``B = 0`` is the solution).

    Returns
    -------
    B : float64 (n_frames, G, d, d), mu : float
    """
    G, d = cd.n_classes, cd.y.shape[1]
    wg2 = cd.w * gain * gain
    # the loss is block-diagonal over frames: its Lipschitz constant is the
    # largest over frames of 2 * lambda_max(sum_s w g^2 zbar zbar^T)
    lip = 0.0
    for a, b in cd.segments():
        Zf = cd.zbar[a:b].reshape(b - a, G * d)
        lip = max(lip, 2.0 * float(np.linalg.eigvalsh((Zf * wg2[a:b, None]).T @ Zf)[-1]))
    if lip <= 0:
        return np.zeros((cd.n_frames, G, d, d)), 0.0
    step = 1.0 / lip
    g0 = _class_gradient(cd, (cd.w * gain)[:, None] * cd.y)
    mu = mu_rel * max(np.linalg.norm(_unfold(g0, g), 2) for g in range(G))
    B = np.zeros((cd.n_frames, G, d, d)) if B0 is None else B0.copy()
    V = B.copy()
    t = 1.0
    for _ in range(n_iter):
        r = cd.y - gain[:, None] * class_predict(cd, V)
        Bn = V - step * _class_gradient(cd, (cd.w * gain)[:, None] * r)
        for g in range(G):
            U, s, Vt = np.linalg.svd(_unfold(Bn, g), full_matrices=False)
            s = np.maximum(s - step * mu, 0.0)
            _fold((U * s) @ Vt, Bn, g)
        tn = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
        V = Bn + ((t - 1.0) / tn) * (Bn - B)
        B, t = Bn, tn
    return B, mu


# ----------------------------------------------------------------- step 3
@dataclass
class Slots:
    """Motif slots: class ``cls[j]`` and target direction ``U[:, j]``."""
    cls: np.ndarray
    U: np.ndarray

    @classmethod
    def from_counts(cls, bases, counts):
        c = np.concatenate([np.full(n, g, np.int64) for g, n in enumerate(counts)])
        U = np.concatenate([bases[g][:, :n] for g, n in enumerate(counts)], axis=1)
        return cls(c, np.ascontiguousarray(U))

    def blocks(self):
        same = self.cls[:, None] == self.cls[None, :]
        return np.nonzero(same)


def _slot_sources(cd, slots, R):
    """``R[:, k] . zbar[s, cls[k]]`` for every target and slot: (n_targets, J)."""
    return np.einsum("sjd,dj->sj", cd.zbar[:, slots.cls, :], R)


def _source_moments(cd: ClassData, zsel, weights):
    """Per frame ``sum_s weights_s zsel_s zsel_s^T``: (n_frames, J, d, J, d)."""
    _, J, d = zsel.shape
    out = np.empty((cd.n_frames, J, d, J, d))
    for f, (a, b) in enumerate(cd.segments()):
        Zf = zsel[a:b].reshape(b - a, J * d)
        out[f] = ((Zf * weights[a:b, None]).T @ Zf).reshape(J, d, J, d)
    return out


def rrr_fit(cd: ClassData, slots: Slots, R0, gain, fit_gain, lam4, n_iter=150,
            ridge_rel=1e-6, tol=1e-8):
    """Step 3: reduced-rank regression of every class on its slots.

    Model ``y_s ~ gain_s sum_j U_j sum_k A[f, j, k] (R_k . zbar[s, cls_k])``
    with ``A[f, j, k] = 0`` unless slots j and k share a class.  Stops after
    ``n_iter`` iterations or when the fit changes by less than ``tol``
    (relative).  Each block update is exact for the fit plus a ridge of
    ``ridge_rel`` times the mean Gram diagonal, so without gains the fit can
    rise by about that much, no more.  The gains' L1 threshold can drive most of them to 0 when
    ``lam4`` is large against ``kappa``, and the alternation then runs away:
    it stops at the last finite state (fit ``inf`` if there is none).

    Returns
    -------
    A (n_frames, J, J), R (d, J) unit columns, gain (n_targets,), fit (weighted
    squared residual after the last iteration)
    """
    J = slots.cls.size
    blocks = slots.blocks()
    UU = slots.U.T @ slots.U
    yU = cd.y @ slots.U                                                 # (nt, J)
    zsel = cd.zbar[:, slots.cls, :]                                      # (nt, J, d)
    R, gain = R0.copy(), gain.copy()
    fit = np.inf
    last = (np.zeros((cd.n_frames, J, J)), R, gain, np.inf)
    for _ in range(n_iter):
        with np.errstate(all="ignore"):
            try:
                A, R, gain, r = _rrr_iteration(cd, slots, R, gain, fit_gain, lam4, blocks,
                                               UU, yU, zsel, ridge_rel)
            except np.linalg.LinAlgError:
                return last
            prev, fit = fit, float(cd.w @ np.einsum("sd,sd->s", r, r))
        if not (np.isfinite(fit) and np.all(np.isfinite(A)) and np.all(np.isfinite(R))
                and np.all(np.isfinite(gain))):
            return last
        last = (A, R, gain, fit)
        if abs(prev - fit) <= tol * fit:
            break
    return last


def _rrr_iteration(cd, slots, R, gain, fit_gain, lam4, blocks, UU, yU, zsel, ridge_rel):
    """One alternation of :func:`rrr_fit`: A per frame, then R, then the gains.

    Returns (A, R, gain, residual (n_targets, d))."""
    d = cd.y.shape[1]
    J = slots.cls.size
    jj, kk = blocks
    nA = jj.size
    # A per frame
    zt = np.einsum("sjd,dj->sj", zsel, R)
    wg = cd.w * gain
    wg2 = cd.w * gain * gain
    M = cd.frame_sum(wg2[:, None, None] * zt[:, :, None] * zt[:, None, :])
    Ry = cd.frame_sum(wg[:, None, None] * yU[:, :, None] * zt[:, None, :])
    gram = UU[jj][:, jj][None] * M[:, kk][:, :, kk]
    tr = np.einsum("faa->f", gram) / nA
    gram += (ridge_rel * np.maximum(tr, np.finfo(float).tiny))[:, None, None] * np.eye(nA)
    a = np.linalg.solve(gram, Ry[:, jj, kk][..., None])[..., 0]
    A = np.zeros((cd.n_frames, J, J))
    A[:, jj, kk] = a
    # R from all frames: y_s ~ gain_s sum_k Q_f[:, k] (R_k . zsel[s, k])
    Q = np.einsum("ij,fjk->fik", slots.U, A)                             # (F, d, J)
    QQ = np.einsum("fik,fil->fkl", Q, Q)
    gramR = np.einsum("fkl,fkmln->kmln", QQ, _source_moments(cd, zsel, wg2)).reshape(
        J * d, J * d)
    yQ = np.einsum("sd,sdk->sk", cd.y, Q[cd.frame])
    rhsR = np.einsum("s,sk,skm->km", wg, yQ, zsel).reshape(J * d)
    rr = ridge_rel * max(float(np.trace(gramR)) / (J * d), np.finfo(float).tiny)
    R = np.linalg.solve(gramR + rr * np.eye(J * d), rhsR).reshape(J, d).T
    n = np.linalg.norm(R, axis=0)
    n = np.where(n > 0, n, 1.0)
    R = R / n
    A = A * n[None, None, :]
    pred = np.einsum("sik,sk->si", Q[cd.frame] * n[None, None, :],
                     np.einsum("sjd,dj->sj", zsel, R))
    if fit_gain:
        # the L1 of the implied pair weights per unit gain
        blk = np.zeros((cd.n_frames, cd.n_classes))
        np.add.at(blk.T, slots.cls[kk], np.abs(A[:, jj, kk]).T)
        thr = 0.5 * lam4 * np.einsum("sg,sg->s", cd.npairs, blk[cd.frame])
        gain = fitted_gains(pred, cd.y, cd.w, thr)
    r = cd.y - gain[:, None] * pred
    if fit_gain:  # one free scale between the gains and A
        gain, m = _normalise(gain, cd.w > 0)
        A = A * m
    return A, R, gain, r


def ridge_sources(cd: ClassData, slots: Slots, gain, fit_gain, ridge_rel=1e-3, rounds=3):
    """Dominant source directions of each class from a per-frame ridge fit.

    Fits ``y_s ~ gain_s sum_j U_j (phi[f, j] . zbar[s, cls_j])`` frame by frame
    (with ``fit_gain``, alternated ``rounds`` times with the gains); the
    ridge keeps ``phi`` near 0 in the source directions a frame does not
    excite.  Returns ``R`` (d, J), the leading right singular vectors of each
    class's stacked ``phi``, and the gains.
    """
    d = cd.y.shape[1]
    J = slots.cls.size
    zsel = cd.zbar[:, slots.cls, :]
    UU = slots.U.T @ slots.U
    yU = cd.y @ slots.U
    gain = gain.copy()
    phi = np.empty((cd.n_frames, J, d))
    for _ in range(rounds if fit_gain else 1):
        wg = cd.w * gain
        moments = _source_moments(cd, zsel, cd.w * gain * gain)
        for f, (a, b) in enumerate(cd.segments()):
            gram = (UU[:, None, :, None] * moments[f]).reshape(J * d, J * d)
            rhs = np.einsum("s,sj,sjm->jm", wg[a:b], yU[a:b], zsel[a:b]).reshape(J * d)
            rr = ridge_rel * max(float(np.trace(gram)) / (J * d), np.finfo(float).tiny)
            phi[f] = np.linalg.solve(gram + rr * np.eye(J * d), rhs).reshape(J, d)
        if fit_gain:
            pred = np.einsum("ij,sj->si", slots.U, np.einsum("sjm,sjm->sj", phi[cd.frame], zsel))
            gain, _ = _normalise(fitted_gains(pred, cd.y, cd.w), cd.w > 0)
    R = np.zeros((d, J))
    for g in np.unique(slots.cls):
        js = np.flatnonzero(slots.cls == g)
        _, _, Vt = np.linalg.svd(phi[:, js].reshape(-1, d), full_matrices=False)
        R[:, js] = Vt[:js.size].T
    return R, gain


def allocate(cd, bases, svals, J, gain, fit_gain, lam4, n_iter=40, max_moves=None):
    """Step 2: motifs per class, from the singular values then single moves.

    Returns the counts per class (sum J) and their fit.
    """
    G = len(bases)
    cap = [b.shape[1] for b in bases]
    ranked = sorted(((s, g) for g in range(G) for s in svals[g][:cap[g]]), reverse=True)
    counts = [0] * G
    for _, g in ranked[:J]:
        counts[g] += 1

    def score(c):
        slots = Slots.from_counts(bases, c)
        R0, g0 = ridge_sources(cd, slots, gain, fit_gain)
        return rrr_fit(cd, slots, R0, g0, fit_gain, lam4, n_iter)[3]

    best = score(counts)
    moves = 0
    while max_moves is None or moves < max_moves:
        cand = []
        for a in range(G):
            for b in range(G):
                if a != b and counts[a] > 0 and counts[b] < cap[b]:
                    c = list(counts)
                    c[a] -= 1
                    c[b] += 1
                    cand.append((score(c), c))
        if not cand:
            break
        f, c = min(cand, key=lambda x: x[0])
        if not f < best * (1 - 1e-6):
            break
        best, counts = f, c
        moves += 1
    return counts, best


def class_motifs(A, R, slots: Slots, seed, n_cp=5):
    """Step 4: per class, CP of the frames' ``A`` blocks into rank-one motifs.

    Returns C (d, J), R (d, J) unit columns and the time courses (n_frames, J).
    """
    import tensorly as tl
    from tensorly.decomposition import parafac

    rng = np.random.default_rng(seed)
    F, J, _ = A.shape
    C_out = np.zeros_like(slots.U)
    R_out = np.zeros_like(R)
    course = np.zeros((F, J))
    for g in np.unique(slots.cls):
        js = np.flatnonzero(slots.cls == g)
        T = A[:, js][:, :, js]
        if js.size == 1:
            C_out[:, js[0]] = slots.U[:, js[0]]
            R_out[:, js[0]] = R[:, js[0]]
            course[:, js[0]] = T[:, 0, 0]
            continue
        best = None
        # CP-ALS on the unit-scaled blocks (their scale can be extreme when the
        # gains ran away), the scale put back into the time courses
        scale = float(np.abs(T).max())
        if scale > 0 and np.isfinite(scale):
            T = T / scale
            with tl.backend_context("numpy"), np.errstate(over="ignore", invalid="ignore"):
                for _ in range(n_cp):
                    try:
                        cp, err = parafac(tl.tensor(T), rank=js.size, init="random",
                                          n_iter_max=2000, tol=1e-12, linesearch=True,
                                          random_state=int(rng.integers(2**31 - 1)),
                                          return_errors=True)
                    except np.linalg.LinAlgError:
                        continue
                    if best is None or err[-1] < best[0]:
                        best = (err[-1], cp)
        if best is None or not np.isfinite(best[0]):  # nothing to rotate: keep the slots
            C_out[:, js] = slots.U[:, js]
            R_out[:, js] = R[:, js]
            course[:, js] = np.einsum("fjj->fj", T) * (scale if scale > 0 else 1.0)
            continue
        a, b, c = (np.asarray(x, dtype=np.float64) for x in best[1].factors)
        Cg = slots.U[:, js] @ b
        Rg = R[:, js] @ c
        nC = np.linalg.norm(Cg, axis=0)
        nR = np.linalg.norm(Rg, axis=0)
        ok = (nC > 0) & (nR > 0)
        nC = np.where(ok, nC, 1.0)
        nR = np.where(ok, nR, 1.0)
        C_out[:, js] = Cg / nC
        R_out[:, js] = Rg / nR
        course[:, js] = a * (nC * nR) * ok * scale
    return C_out, R_out, course


def class_init(cd: ClassData, J, seed, fit_gain, lam4, mu_rel=0.05, restarts=4, sweeps=2,
               stage1_rounds=2, stage1_iter=600):
    """The whole class-structured start on :class:`ClassData`.

    Returns
    -------
    W : float64 (n_pairs, J)  start weights of every pair
    C, R : float64 (d, J)  unit columns
    info : dict  (counts per class, fits)
    """
    rng = np.random.default_rng(seed)
    nt, G, d = cd.zbar.shape
    gain = np.ones(nt)
    B = None
    for _ in range(stage1_rounds if fit_gain else 1):
        B, _ = class_matrices(cd, gain, mu_rel, stage1_iter, B)
        if fit_gain:
            gain, _ = _normalise(fitted_gains(class_predict(cd, B), cd.y, cd.w), cd.w > 0)
    bases, svals = [], []
    for g in range(G):
        U, s, _ = np.linalg.svd(_unfold(B, g), full_matrices=False)
        bases.append(U)
        svals.append(s)
    J_alloc = min(J, G * d)
    counts, _ = allocate(cd, bases, svals, J_alloc, gain, fit_gain, lam4)
    slots = Slots.from_counts(bases, counts)
    R0, g0 = ridge_sources(cd, slots, gain, fit_gain)
    A, R, gam, fit = rrr_fit(cd, slots, R0, g0, fit_gain, lam4)
    if not (np.isfinite(fit) and np.all(np.isfinite(B))):
        raise ValueError(
            "init='classes' could not build a start for these data: its reduced-rank "
            "regression did not stay finite (with target gains this happens when lam4 is "
            "large against the fidelity weight, e.g. a small lam1). Use init='groups'.")
    # restart each class's source directions at random; keep improvements
    for _, g in [(s, g) for s in range(sweeps) for g in np.unique(slots.cls)]:
        js = np.flatnonzero(slots.cls == g)
        for _ in range(restarts):
            Ri = R.copy()
            Ri[:, js] = rng.normal(size=(d, js.size))
            Ri[:, js] /= np.linalg.norm(Ri[:, js], axis=0)
            A2, R2, g2, f2 = rrr_fit(cd, slots, Ri, gam, fit_gain, lam4, n_iter=300)
            if f2 < fit * (1 - 1e-9):
                A, R, gam, fit = A2, R2, g2, f2
    C, R, course = class_motifs(A, R, slots, int(rng.integers(2**31 - 1)))
    # every pair: its target's gain times its class's motifs' time courses
    W = np.zeros((cd.pair_pos.shape[0], J))
    pf = cd.frame[cd.pair_pos]
    own = slots.cls[None, :] == cd.pair_class[:, None]                   # (n_pairs, J_alloc)
    W[:, :J_alloc] = np.where(own, gam[cd.pair_pos, None] * course[pf], 0.0)
    if J > J_alloc:  # more motifs than the classes can hold: random extras
        C = np.concatenate([C, rng.normal(size=(d, J - J_alloc))], axis=1)
        R = np.concatenate([R, rng.normal(size=(d, J - J_alloc))], axis=1)
        C /= np.linalg.norm(C, axis=0)
        R /= np.linalg.norm(R, axis=0)
    return W, np.ascontiguousarray(C), np.ascontiguousarray(R), dict(counts=counts, fit=fit)
