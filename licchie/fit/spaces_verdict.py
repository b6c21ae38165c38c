"""Per-motif verdict of fits with population feature spaces.

The counterpart of :mod:`licchie.fit.verdict` for the reduced multi-start
of :mod:`licchie.fit.spaces_search` (per-space effects ``C, R`` of shape
(n_spaces, d, J), each column unit on its space's features).  The same
four scores in [0, 1] and a fifth, each of which can only veto (``score``
= their minimum; ``"high"`` at ``>= HIGH``, ``"medium"`` at ``>= MEDIUM``):

- ``gap``: ``min(1, gap_j / GAP_REF)``, ``gap_j`` the relative loss excess
  of the best competing local minimum of *all* random starts, one whose
  matched motif has ``|cos| < AGREE_COS`` with motif ``j`` (inf: none).
- ``reach``: the starts whose minimum agrees with motif ``j``
  (``|cos| >= AGREE_COS``), each weighted by ``1 - excess / REACH_GAP``
  (clipped to [0, 1]), ``excess`` the relative loss excess of its minimum
  over the best; ``min(1, hits / REACH_HITS)`` (a start is one local
  solve, not a search: several must land in the motif's basin); at most
  0.8 with fewer than two starts.
- ``bootstrap``: resamples of the blocks of targets (frames), the best
  re-polished by L-BFGS on each resample's reduced loss and moved by one
  Newton step with the full data's curvature (:func:`verdict._linear_bootstrap`'s
  idea); the lower ``BOOT_Q`` quantile of the motif's own ``|cos|``, read at
  the 99 % bound (:func:`verdict._bound`); 0.8 with one block.
- ``determination``: the cosine of the 2-sigma angle of the motif's worst
  determined direction in the joint covariance ``2 sigma^2 H^-1``, ``H``
  the curvature of the spaces' reduced loss on the unit spheres of every
  used space's ``c_j^(p)`` and ``r_j^(q)`` (all motifs together),
  ``sigma^2 = L / (n_obs - n_params)`` with ``n_obs`` the observed target
  features.
- ``noise``: ``cos(a_boot + a_noise)``, ``a_boot`` the angle of the
  bootstrap's bound and ``a_noise`` the mean angle by which the best turns
  when re-polished on the data with Gaussian noise of the residual's size
  (``sqrt(L / n_obs)``, which also holds misfit: it errs large) added to
  every observed feature (``n_noise`` draws).  Noise in the *source*
  features biases the motifs (regression dilution), which neither the
  bootstrap nor the curvature sees: they measure the spread around the
  data's optimum, not its distance from the truth.  Doubling the noise
  turns the motif by about that bias (SIMEX, linear), and the two angles
  add (triangle inequality).  Measured on the suite
  (``studies/spaces_verdict.py``, ``noisy`` seed 6, observation noise 0.3):
  the best reduced minimum was 0.85 from the truth with gap 0.95,
  bootstrap 0.96 and determination 0.99, "high"; polished from the true
  motifs, the reduced loss (in the recording's units) descends 11 % below
  the truth's to the same wrong motifs.  Without the noised data (``noised=None``) the score is
  0.8, so the verdict stops at "medium".

The similarity of two motifs is :func:`licchie.fit.spaces.motif_agreement`
(the mean over spaces of ``|c.c'| |r.r'|``: each space's sign is free).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .search import _weighted
from .spaces import motif_agreement
from .verdict import (AGREE_COS, BOOT_Q, GAP_REF, HIGH, MEDIUM, REACH_GAP, DiagnosedStart,
                      Diagnosis, _bound, _determination, _inverse, explained, fitted_reason)

REACH_HITS = 4.0   # loss-weighted starts in a motif's basin for a full reach score


PARTNER = "the data do not tell it from motif"


WHY = {
    "gap": "a different motif fits almost as well (loss {:+.1%})",
    "reach": "only {:.1f} of {} random starts reached it (weighted by loss)",
    "bootstrap": "resampled data move it (|cos| {:.2f} at the 99% bound)",
    "determination": "the data do not pin its direction (2-sigma |cos| {:.2f})",
    "noise": "noise in the source features may bias it (|cos| {:.2f} with the bootstrap's "
             "bound and the turn that doubled noise gives)",
    "partner": PARTNER + " {} (2-sigma |cos| {:.2f}): their weight profiles are nearly "
               "proportional, or the sources do not excite their shared directions",
}


@dataclass
class SpacesStart(DiagnosedStart):
    """What the spaces' multi-start left for the verdict (:func:`final_verdict`).

    ``C, R`` (n_spaces, d, J) unit per space and ``loss``: the best reduced
    minimum the diagnosis judged; ``losses`` (n_starts,) every start's
    minimum, sorted; the diagnosis computed when the verdict first reads it
    (:class:`~licchie.fit.verdict.DiagnosedStart`).
    """

    diagnose: object
    C: np.ndarray
    R: np.ndarray
    loss: float
    losses: np.ndarray
    target_gain: bool = False


def unit_effects(F):
    """``F`` (n_spaces, d, J) with unit columns (a zero column is left zero)."""
    n = np.linalg.norm(F, axis=1, keepdims=True)
    return F / np.where(n > 0, n, 1.0)


def _sides(red):
    """bool (2, n_spaces): spaces used as a target (row 0: ``C``) and as a
    source (row 1: ``R``) by some group; the others do not enter the loss."""
    S = red.features.shape[0]
    out = np.zeros((2, S), bool)
    out[0, red.gp] = True
    out[1, red.gq] = True
    return out


def tangent_basis(C, R, used, features, sides):
    """Orthonormal basis of the tangent space of the unit spheres of the used
    motifs' effects, each on its space's features.

    Parameters
    ----------
    C, R : float64 (S, d, J), unit columns
    used : bool (J,)
    features : bool (S, d)
    sides : bool (2, S), see :func:`_sides`

    Returns
    -------
    B : float64 (2 S d J, n_dir)
        Columns are directions in ``(C.ravel(), R.ravel())``.
    owner : int64 (n_dir,)
        The motif each column moves.
    """
    S, d, J = C.shape
    n = S * d * J
    blocks, owner = [], []
    for j in np.flatnonzero(used):
        for side, (off, F) in enumerate(((0, C), (n, R))):
            for s in np.flatnonzero(sides[side]):
                f = np.flatnonzero(features[s])
                if f.size < 2:
                    continue
                Q, _ = np.linalg.qr(np.column_stack([F[s, f, j], np.eye(f.size)]))
                Bj = np.zeros((2 * n, f.size - 1))
                Bj[off + s * d * J + f * J + j] = Q[:, 1:]
                blocks.append(Bj)
                owner.append(np.full(f.size - 1, j, np.int64))
    if not blocks:
        return np.zeros((2 * n, 0)), np.zeros(0, np.int64)
    return np.hstack(blocks), np.concatenate(owner)


def _gradient(red, x, shape):
    n = int(np.prod(shape))
    _, gC, gR, _ = red.value_grad(x[:n].reshape(shape), x[n:].reshape(shape))
    return np.concatenate([gC.ravel(), gR.ravel()])


def curvature(red, C, R, B, h=1e-4):
    """Hessian of the spaces' reduced loss on the tangent space ``B``: central
    differences of the exact gradient (``2 B.shape[1]`` gradients)."""
    x0 = np.concatenate([C.ravel(), R.ravel()])
    HB = np.column_stack([(_gradient(red, x0 + h * b, C.shape)
                           - _gradient(red, x0 - h * b, C.shape)) / (2.0 * h) for b in B.T])
    H = B.T @ HB
    return 0.5 * (H + H.T)


def _own_cos(C, R, Cb, Rb):
    """Each motif's agreement with its own resampled self (no re-matching:
    a swap is a failure), mean over spaces of ``|c.c'| |r.r'|``."""
    Cb, Rb = unit_effects(Cb), unit_effects(Rb)
    return np.mean(np.abs(np.sum(C * Cb, axis=1) * np.sum(R * Rb, axis=1)), axis=0)


def _resample(data, rng):
    return rng.multinomial(data.n_blocks, np.full(data.n_blocks, 1.0 / data.n_blocks))


def diagnose_spaces(red, minima, n_obs, n_boot=10, seed=0, max_eval=150, n_linear=50,
                    noised=None, n_noise=3, noise_eval=1000):
    """Per-motif trust in the best local minimum of the spaces' multi-start.

    Parameters
    ----------
    red : SpacesReduced
        The reduced loss the starts minimised (its data's blocks are resampled).
    minima : list of (loss, Wbar, C, R)
        Every start's local minimum, best first.
    n_obs : int
        Observed target features (the residual's degrees of freedom before
        the parameters).
    n_boot, n_linear : int
        Resamples re-polished by L-BFGS (``max_eval`` evaluations each) and
        moved by one Newton step.
    seed : int
    noised : callable ``(sd, rng) -> PooledData``, optional
        The statistics of the data with Gaussian noise of standard deviation
        ``sd`` added to every observed feature; without it the ``noise``
        score is not computed and the motifs stop at "medium".
    n_noise, noise_eval : int
        Noise draws, and L-BFGS evaluations of each one's re-polish.

    Returns
    -------
    Diagnosis
        Of the best minimum's motifs, ``n_searches`` the number of starts;
        ``noise`` and ``noise_shift`` (attributes) the fifth score and the
        mean angle (radians) the added noise turned each motif.
    """
    data = red.d
    L, Wbar = float(minima[0][0]), minima[0][1]
    C, R = unit_effects(minima[0][2]), unit_effects(minima[0][3])
    S, d, J = C.shape
    used = _weighted(Wbar)
    ref = max(abs(L), np.finfo(float).tiny)
    gap_loss = np.full(J, np.inf)
    agree = np.ones(J)
    hits = np.ones(J)   # the best's own start
    for F, _, Cm, Rm in minima[1:]:
        sim, _ = motif_agreement(C, R, unit_effects(Cm), unit_effects(Rm))
        rel = (float(F) - L) / ref
        gap_loss = np.where(sim < AGREE_COS, np.minimum(gap_loss, rel), gap_loss)
        if rel <= GAP_REF:
            agree = np.minimum(agree, sim)
        hits += max(0.0, 1.0 - max(0.0, rel) / REACH_GAP) * (sim >= AGREE_COS)
    gap = np.minimum(1.0, np.maximum(gap_loss, 0.0) / GAP_REF)
    n_s = len(minima)
    reach = np.minimum(1.0, hits / REACH_HITS) if n_s >= 2 else np.full(J, 0.8)
    sides = _sides(red)
    B, owner = tangent_basis(C, R, used, red.features, sides)
    lam, V = np.linalg.eigh(curvature(red, C, R, B))
    rng = np.random.default_rng(seed)
    if data.n_blocks >= 2 and n_boot > 0:
        sims = np.array([_own_cos(C, R, *red.on(data.reweighted(_resample(data, rng)))
                                  .lbfgs(C, R, max_eval)[1:3])
                         for _ in range(n_boot)])
        boot_local = np.quantile(sims, BOOT_Q, axis=0)
    else:
        boot_local = np.full(J, 0.8)
    if data.n_blocks >= 2 and n_linear > 0:
        inv = _inverse(lam, 1e-8, True)
        x0 = np.concatenate([C.ravel(), R.ravel()])
        sims = np.ones((n_linear, J))
        for k in range(n_linear):
            g = B.T @ _gradient(red.on(data.reweighted(_resample(data, rng))), x0, C.shape)
            x = x0 - B @ (V @ (inv * (V.T @ g)))
            n = C.size
            sims[k] = _own_cos(C, R, x[:n].reshape(C.shape), x[n:].reshape(C.shape))
        boot_lin = np.quantile(sims, BOOT_Q, axis=0)
    else:
        boot_lin = np.full(J, 0.8)
    boot = _bound(np.minimum(boot_local, boot_lin))
    if noised is not None and n_noise > 0:
        # errors in the sources bias the motifs (regression dilution); the
        # shift from doubling the noise estimates that bias (SIMEX, linear)
        sd = np.sqrt(max(L, 0.0) / max(1, int(n_obs)))
        turn = np.zeros(J)
        for _ in range(n_noise):
            _, Cn, Rn, _ = red.on(noised(sd, rng)).lbfgs(C, R, noise_eval)
            turn += np.arccos(np.clip(_own_cos(C, R, Cn, Rn), 0.0, 1.0)) / n_noise
        noise = np.cos(np.minimum(np.arccos(np.clip(boot, 0.0, 1.0)) + turn, np.pi / 2))
    else:
        turn, noise = np.full(J, np.nan), np.full(J, 0.8)
    m = red.features.sum(axis=1)
    n_par = data.n_groups * J + J * int(np.sum(np.maximum(m - 1, 0) * sides.sum(axis=0)))
    sigma2 = max(L, 0.0) / max(1, int(n_obs) - n_par)
    det, partner = _determination(None, C, L, used, owner, V,
                                  _inverse(lam, 1e-10, False), sigma2=sigma2)
    dg = _explained(gap, reach, boot, det, partner, used, gap_loss, agree, hits, n_s,
                    boot_local, boot_lin, noise)
    dg.noise_shift = turn
    return dg


def _explained(gap, reach, boot, det, partner, used, gap_loss, agree, hits, n_s,
               boot_local, boot_lin, noise):
    parts = {"gap": gap, "reach": reach, "bootstrap": boot, "determination": det,
             "noise": noise}
    args = {"gap": (gap_loss,), "reach": (hits, n_s), "bootstrap": (boot,),
            "determination": (det,), "noise": (noise,)}
    score, verdict, expl, keys = explained(parts, args, WHY, used, partner, det)
    dg = Diagnosis(score, verdict, expl, gap, reach, boot, det, gap_loss, agree, n_s,
                   n_s, boot_local, boot_lin, partner, keys)
    dg.hits = hits
    dg.noise = noise
    return dg


def final_verdict(C, R, info: SpacesStart):
    """The diagnosis carried over to the fitted per-space motifs ``C, R``
    (n_spaces, d, J): the score capped by each motif's agreement with the
    diagnosed reduced minimum (the polish may move it), as
    :func:`licchie.fit.global_start.final_verdict`.

    Returns
    -------
    score : float64 (J,), verdict : list of str, reason : list of str
    """
    dg = info.diagnosis
    sim, match = motif_agreement(unit_effects(np.asarray(C)), unit_effects(np.asarray(R)),
                                 info.C, info.R)
    score = np.minimum(dg.score[match], sim)
    verdict, reason = [], []
    for j in range(score.shape[0]):
        v = "high" if score[j] >= HIGH else "medium" if score[j] >= MEDIUM else "low"
        why = fitted_reason(dg, WHY, match, j)
        if sim[j] < dg.score[match[j]]:
            why = (f"the full objective moved it away from the reduced optimum "
                   f"(|cos| {sim[j]:.2f})")
        verdict.append(v)
        reason.append(why)
    return score, verdict, reason
