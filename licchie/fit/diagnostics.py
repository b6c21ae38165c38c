"""Diagnostics of a fit: source excitation and the agreement of starts."""
from __future__ import annotations

import warnings

import numpy as np
from scipy.optimize import linear_sum_assignment


def source_excitation(Z, W, R, noise_var, snr=10.0):
    """How much of each source effect the pairs' source states determine.

    A motif acts on a source only through ``r_j . z_e``, so the part of
    ``r_j`` in directions that the sources of the pairs using it never visit
    is not determined by the data (MODEL.md, Identifiability, from the
    source side).  With ``S_j = sum_e W[e, j]^2 z_e z_e^T``, a direction
    (eigenvector of ``S_j``) is *excited* when its eigenvalue is at least
    ``snr`` times the noise's share of it, ``noise_var * sum_e W[e, j]^2``.

    Parameters
    ----------
    Z : float64 (n_pairs, d)  pair-weighted source states ``g_e x[k_e]``
    W : float64 (n_pairs, J)
    R : float64 (d, J)  unit source effects
    noise_var : float  per-feature noise variance
    snr : float  variance ratio that counts as excited (10: about 3x the
        noise in amplitude)

    Returns
    -------
    float64 (J,)
        ``|P_j r_j|`` in [0, 1], the norm of ``r_j`` on its excited directions;
        NaN for a motif that no pair uses.
    """
    J = W.shape[1]
    out = np.full(J, np.nan)
    for j in range(J):
        w2 = W[:, j] * W[:, j]
        total = float(w2.sum())
        if not total > 0:
            continue
        ev, V = np.linalg.eigh((Z * w2[:, None]).T @ Z)
        keep = ev >= snr * noise_var * total
        out[j] = min(1.0, float(np.linalg.norm(V[:, keep].T @ R[:, j])))
    return out


def motif_agreement(C1, R1, C2, R2):
    """Hungarian-matched |cosine| of vec M_j between two motif sets.

    The cosine of ``vec(c r^T)`` and ``vec(c' r'^T)`` for unit vectors is
    ``(c.c')(r.r')``, so no d x d motif is formed.

    Returns
    -------
    sim : float64 (J1,)
        For each motif of the first set, |cosine| with its match (0 when the
        second set has fewer motifs).
    match : int64 (J1,)
        Index of the matched motif in the second set, or -1.
    """
    return matched_cosines(np.abs((C1.T @ C2) * (R1.T @ R2)))


def matched_cosines(cos):
    """Hungarian matching on a (J1, J2) |cosine| matrix: ``(sim, match)`` as
    :func:`motif_agreement` returns them (0 and -1 for unmatched motifs)."""
    rows, cols = linear_sum_assignment(-cos)
    sim = np.zeros(cos.shape[0])
    match = np.full(cos.shape[0], -1, np.int64)
    sim[rows] = cos[rows, cols]
    match[rows] = cols
    return sim, match


def stability(results, best):
    """Per-motif agreement of the best start with every other start.

    Returns float64 (J, n_other) of matched |cosine| (empty second axis with a
    single start).
    """
    ref = results[best]
    others = [r for k, r in enumerate(results) if k != best]
    J = ref.C.shape[1]
    out = np.zeros((J, len(others)))
    for k, r in enumerate(others):
        out[:, k], _ = motif_agreement(ref.C, ref.R, r.C, r.R)
    return out


#: profiles whose weights' absolute sum exceeds this multiple of the
#: interaction they add up to are called cancelling (see profile_cancellation)
CANCELLATION_LIMIT = 10.0
# share of profiles above CANCELLATION_LIMIT at which a fit warns, and at
# which pooling_groups="auto" gives up class x frame profiles for class ones
CANCELLATION_SHARE = 0.1


def profile_cancellation(Wbar, C, R, group_spaces=None):
    """How much each pooling profile's motifs cancel one another.

    ``kappa_g = sum_j |Wbar[g, j]| / ||sum_j Wbar[g, j] M_j||_F`` with the
    unit motifs ``M_j = c_j r_j^T`` (with feature spaces, the block of the
    group's class, scaled by its effects' norms): 1 when one motif carries
    the profile, large when big opposite contributions of near-dependent
    motifs add up to a small interaction.  Such a profile fits its own
    training pairs but predicts other pairs (a frame outside training, a new
    cell) unstably: the cancellation does not carry over.  The norm uses the
    Gram ``(C^T C) o (R^T R)``, so no d x d matrix is formed.

    Parameters
    ----------
    Wbar : float64 (n_groups, J)
    C, R : float64 (d, J), or (n_spaces, d, J) with feature spaces
    group_spaces : int64 (n_groups, 2), optional
        (target space, source space) of each group, with feature spaces.

    Returns
    -------
    float64 (n_groups,)
        ``kappa_g >= 1`` (up to rounding); NaN for an all-zero profile.
    """
    Wbar = np.asarray(Wbar, dtype=np.float64)
    out = np.full(Wbar.shape[0], np.nan)
    if group_spaces is None:
        grams = {None: (C.T @ C) * (R.T @ R)}
        keys = [None] * Wbar.shape[0]
    else:
        keys = [tuple(int(v) for v in pq) for pq in group_spaces]
        grams = {pq: (C[pq[0]].T @ C[pq[0]]) * (R[pq[1]].T @ R[pq[1]]) for pq in set(keys)}
    for g, key in enumerate(keys):
        G = grams[key]
        w = Wbar[g]
        num = float(np.abs(w) @ np.sqrt(np.maximum(np.diag(G), 0.0)))
        if not num > 0:
            continue
        den = float(np.sqrt(max(w @ G @ w, 0.0)))
        out[g] = num / den if den > 0 else np.inf
    return out


def cancelled_share(kappa):
    """Share of the pooling profiles that cancel (``kappa`` above
    :data:`CANCELLATION_LIMIT`, NaN left out; 0 when none is finite)."""
    kappa = np.asarray(kappa, dtype=np.float64)
    kappa = kappa[~np.isnan(kappa)]
    return float(np.mean(kappa > CANCELLATION_LIMIT)) if kappa.size else 0.0


def warn_cancelling_profiles(kappa, stacklevel=2):
    """Warn when over a tenth of the pooling profiles cancel (``kappa`` above
    :data:`CANCELLATION_LIMIT`; ``kappa`` from :func:`profile_cancellation`).

    Measured (docs/evaluation.md, "Cancelling profiles"): no fit of the
    synthetic suite comes near it; on the sparse mammary movies with class x
    frame pooling, where held-out R^2 explodes, it fires.
    """
    kappa = np.asarray(kappa, dtype=np.float64)
    kappa = kappa[~np.isnan(kappa)]
    if kappa.size == 0:
        return
    share = cancelled_share(kappa)
    if share > CANCELLATION_SHARE:
        warnings.warn(
            f"{share:.0%} of the pooling profiles cancel: their weights' absolute sum is over "
            f"{CANCELLATION_LIMIT:g} times the interaction they add up to (median "
            f"{np.median(kappa):.1f}, max {np.max(kappa):.3g}; "
            "group_weights_['cancellation']). Such profiles fit their own frames by large "
            "opposite contributions and predict other frames and cells unstably. This "
            "happens when pooling groups have few pairs (sparse recordings): fit "
            "pooling_groups='class' (or 'class_session') and compare on held-out time "
            "blocks (licchie.select.grid_search).", UserWarning, stacklevel=stacklevel + 1)
