"""Per-motif verdict on the global search's best solution (issue 14).

**Per-motif diagnostic** (:func:`diagnose`), built so that a shared wrong
basin cannot make it confident.  Four scores in [0, 1] per motif ``j``:

- ``gap``: ``min(1, gap_j / GAP_REF)``, ``gap_j`` the relative loss excess
  ``(L_k - L_best) / L_best`` of the best *competing* candidate, one whose
  matched motif has ``|cos| < AGREE_COS`` with motif ``j`` (infinite when no
  candidate competes).  A different motif at nearly the same loss means the
  data do not pick it.
- ``reach``: the fraction of independent searches whose own best agrees with
  motif ``j`` (``|cos| >= AGREE_COS``), doubled and capped at 1 (half of the
  searches suffice); a single search scores at most 0.8 (it cannot tell).
- ``bootstrap``: the ``BOOT_Q`` quantile over resamples of the blocks of
  targets (frames, sessions) of the matched ``|cos|`` between motif ``j`` and
  the best re-polished by ALS on the resampled statistics; 0.8 when there is
  one block (no resampling possible).
- ``determination``: ``1 / sqrt(1 + z^2 sigma^2 / lambda_j)``, a cosine of the
  ``z = 2`` sigma angle of the motif's worst determined direction, where
  ``lambda_j`` is the smallest curvature of the loss along the unit sphere of
  ``r_j`` (profiles of motif ``j`` eliminated, Gauss-Newton) or of ``c_j``,
  and ``sigma^2 = L_best / (n_targets d - n_params)``, the residual variance.
  A source direction that no source of the motif's groups visits has zero
  curvature, hence score 0, whatever the candidates agree on.  On real data
  the residual is mostly misfit, which only lowers the score (fails safe).

The motif's ``score`` is the minimum of the four; ``"high"`` when
``score >= 0.9``, ``"medium"`` when ``>= 0.6``, else ``"low"``; the
explanation names the limiting score.  Taking the minimum is what makes it
fail safe: every score can only veto.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..kernels import pooled as KP
from .search import PooledData, SearchResult, _weighted, lbfgs, motif_cos

AGREE_COS = 0.9    # a motif "agrees" with another at this matched |cos|
GAP_REF = 0.1      # relative loss excess at which a competitor no longer matters
BOOT_Q = 0.1       # bootstrap quantile of the per-motif agreement
HIGH, MEDIUM = 0.9, 0.6


@dataclass
class Diagnosis:
    """Per-motif verdict of :func:`diagnose` (arrays of shape (J,), motifs of the best).

    ``gap_loss`` is the relative loss excess of the best competing candidate
    (inf: none); ``agreement`` the lowest matched ``|cos|`` with any distinct
    minimum within ``GAP_REF`` of the best loss (1: none); the scores are in
    [0, 1] and ``score`` is their minimum.
    """

    score: np.ndarray
    verdict: list
    explanation: list
    gap: np.ndarray
    reach: np.ndarray
    bootstrap: np.ndarray
    determination: np.ndarray
    gap_loss: np.ndarray
    agreement: np.ndarray
    n_searches: int
    n_candidates: int


def _determination(data, Wbar, C, R, loss, z=2.0):
    """Per-motif cosine of the ``z``-sigma angle of its worst determined direction."""
    d, J = C.shape
    G = data.n_groups
    co_g, co_idx, S = data.co_g, data.co_idx, data.S
    n_obs = int(data.n_targets.sum()) * d
    n_par = G * J + 2 * (d - 1) * J
    sigma2 = max(loss, 0.0) / max(1, n_obs - n_par)
    P = KP.project(S, R)
    Wg, Wh = Wbar[co_g], Wbar[co_idx]
    out = np.zeros(J)
    for j in range(J):
        # Gauss-Newton Hessian of r_j with the profiles of motif j eliminated
        Hrr = np.einsum("e,eab->ab", Wg[:, j] * Wh[:, j], S)
        Hww = np.zeros((G, G))
        Hww[co_g, co_idx] = P[:, j, j]
        Hrw = np.zeros((d, G))
        np.add.at(Hrw.T, co_g, (Wh[:, j, None] * np.einsum("eba,b->ea", S, R[:, j])))
        sol = np.linalg.lstsq(Hww, Hrw.T, rcond=1e-12)[0]
        schur = Hrr - Hrw @ sol
        Q, _ = np.linalg.qr(np.column_stack([R[:, j], np.eye(d)]))
        U = Q[:, 1:d]
        lam_r = float(np.linalg.eigvalsh(U.T @ schur @ U).min()) if d > 1 else np.inf
        lam_c = float(np.einsum("e,e->", Wg[:, j] * Wh[:, j], P[:, j, j]))
        lam = min(lam_r, lam_c)
        scale = max(float(np.trace(Hrr)), lam_c, np.finfo(float).tiny)
        if not lam > 1e-12 * scale:
            out[j] = 0.0
        else:
            out[j] = 1.0 / np.sqrt(1.0 + z * z * sigma2 / lam)
    return out


def diagnose(data: PooledData, result: SearchResult, n_boot=10, seed=0, max_eval=150):
    """Per-motif trust in the search's best solution (rule in the module docstring).

    Parameters
    ----------
    data : PooledData
        The statistics the search ran on (its blocks are resampled).
    result : SearchResult
    n_boot : int
        Bootstrap resamples of the blocks (each re-polished from the best).
    seed : int
    max_eval : int
        Local-solver evaluations per resample.

    Returns
    -------
    Diagnosis
    """
    Wbar, C, R, L = result.Wbar, result.C, result.R, result.loss
    J = C.shape[1]
    used = _weighted(Wbar)
    ref = max(abs(L), np.finfo(float).tiny)
    gap_loss = np.full(J, np.inf)
    agree = np.ones(J)
    for c in result.candidates:
        if c.C is C and c.R is R:
            continue
        sim, _ = motif_cos(C, R, c.C, c.R)
        rel = (c.loss - L) / ref
        gap_loss = np.where(sim < AGREE_COS, np.minimum(gap_loss, rel), gap_loss)
        if rel <= GAP_REF:
            agree = np.minimum(agree, sim)
    gap = np.minimum(1.0, np.maximum(gap_loss, 0.0) / GAP_REF)
    n_s = len(result.search_best)
    hits = np.zeros(J)
    for b in result.search_best:
        hits += motif_cos(C, R, b[2], b[3])[0] >= AGREE_COS
    reach = np.minimum(1.0, 2.0 * hits / n_s) if n_s >= 2 else np.full(J, 0.8)
    if data.n_blocks >= 2 and n_boot > 0:
        rng = np.random.default_rng(seed)
        sims = np.zeros((n_boot, J))
        for k in range(n_boot):
            w = rng.multinomial(data.n_blocks, np.full(data.n_blocks, 1.0 / data.n_blocks))
            _, Cb, Rb, _, _ = lbfgs(data.reweighted(w), C, R, max_eval)
            sims[k] = motif_cos(C, R, Cb, Rb)[0]
        boot = np.quantile(sims, BOOT_Q, axis=0)
    else:
        boot = np.full(J, 0.8)
    det = _determination(data, Wbar, C, R, L)
    parts = {"gap": gap, "reach": reach, "bootstrap": boot, "determination": det}
    why = {
        "gap": "a different motif fits almost as well (loss {:+.1%})",
        "reach": "only {} of {} independent searches found it",
        "bootstrap": "resampled data move it (|cos| {:.2f} at the {:.0%} quantile)",
        "determination": "the data do not pin its direction (2-sigma |cos| {:.2f})",
    }
    score = np.minimum.reduce([gap, reach, boot, det])
    score[~used] = 0.0
    verdict, expl = [], []
    for j in range(J):
        v = "high" if score[j] >= HIGH else "medium" if score[j] >= MEDIUM else "low"
        verdict.append(v)
        if not used[j]:
            expl.append("unused: no group gives it weight")
            continue
        worst = min(parts, key=lambda k: parts[k][j])
        if v == "high":
            expl.append(f"determined: every check >= {HIGH} (weakest: {worst})")
            continue
        arg = {"gap": (gap_loss[j],), "reach": (int(hits[j]), n_s),
               "bootstrap": (boot[j], BOOT_Q), "determination": (det[j],)}[worst]
        expl.append(why[worst].format(*arg) if np.all(np.isfinite(arg)) else worst)
    return Diagnosis(score, verdict, expl, gap, reach, boot, det, gap_loss, agree, n_s,
                     len(result.candidates))
