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
3. **Reduced-rank regression** per class (:mod:`licchie.fit.class_rrr`) with
   the target directions ``U_g`` fixed: ``B[f, g] = U_g A_g[f] R_g^T`` with
   ``R_g`` common to all frames, alternating exact least squares for ``A``
   (per frame) and ``R`` (all frames at once), and each target's gain.  Started from the dominant source
   directions of a per-frame ridge fit, then each class's ``R_g`` is restarted
   at random a few times (seeded) and kept when the fit improves.
4. **Motifs.**  Per class, the CP decomposition of ``A_g[f]`` (frames x
   ``r_g`` x ``r_g``) rotates ``U_g`` and ``R_g`` into ``r_g`` rank-one
   motifs and gives their time courses, hence every pair's start weights.

Everything here is a heuristic for the starting point; the main iterations
then minimise ``L`` from it (every motif may then be used by every class).

:func:`class_start` builds the start of a :class:`~licchie.fit.problem.Problem`
(:func:`licchie.fit.pairs.init_classes` gives its class data); the steps
work on :class:`ClassData` alone.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .class_rrr import Slots, ridge_sources, rrr_fit
from .pooling import fitted_gains, normalise_median
from .problem import Problem
from .reduced_start import reduced_inputs
from .starts import bootstrap_counts


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
            gain, _ = normalise_median(fitted_gains(class_predict(cd, B), cd.y, cd.w),
                                       cd.w > 0)
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


def class_start(problem: Problem, init_group, J, seed, bootstrap=False):
    """Start factors from :func:`class_init` (``init="classes"``).

    With ``bootstrap`` every target's weight is multiplied by a multinomial
    count drawn from ``seed`` (in the user's order), as
    :func:`licchie.fit.starts.group_init`.

    Returns
    -------
    W, C, R, info
    """
    rng = np.random.default_rng(seed)
    pair_class, n_classes, target_frame = init_group
    Z, Y, kappa = reduced_inputs(problem)
    weights = bootstrap_counts(problem, rng) if bootstrap else None
    cd = class_data(Z, Y, kappa, problem.pair_target, target_frame, pair_class,
                    n_classes, weights)
    return class_init(cd, J, int(rng.integers(2**31 - 1)), problem.target_gain,
                      float(problem.lambdas[3]))
