"""Step 3 of the class-structured start: reduced-rank regression per class.

See :mod:`licchie.fit.classes` for the whole start.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .lstsq import ridge_solve
from .pooling import fitted_gains, normalise_median

if TYPE_CHECKING:
    from .classes import ClassData


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
    R = ridge_solve(gramR, rhsR, ridge_rel).reshape(J, d).T
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
        gain, m = normalise_median(gain, cd.w > 0)
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
            phi[f] = ridge_solve(gram, rhs, ridge_rel).reshape(J, d)
        if fit_gain:
            pred = np.einsum("ij,sj->si", slots.U, np.einsum("sjm,sjm->sj", phi[cd.frame], zsel))
            gain, _ = normalise_median(fitted_gains(pred, cd.y, cd.w), cd.w > 0)
    R = np.zeros((d, J))
    for g in np.unique(slots.cls):
        js = np.flatnonzero(slots.cls == g)
        _, _, Vt = np.linalg.svd(phi[:, js].reshape(-1, d), full_matrices=False)
        R[:, js] = Vt[:js.size].T
    return R, gain

