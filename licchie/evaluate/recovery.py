"""Recovery of a fit against ground truth (MODEL.md, "Evaluation").

* :func:`motif_recovery` -- Hungarian matching of inferred to true motifs on
  |cosine| of ``vec M_j`` (:func:`licchie.fit.motif_agreement`), per motif
  and mean, with the SSIM of the matched maps (:func:`ssim`).
* :func:`align_pairs` / :func:`per_pair_mse` -- every pair's ``A_e`` against
  the truth, pairs aligned by their (session, time, target, source) keys.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import xarray as xr

from .. import fit as F



# ------------------------------------------------------------------ motifs
def _effects(obj):
    """(C, R), each (d, J) with unit columns, from a fit, a Dataset or a tuple.

    Accepts a fitted LICCHIE (its ``components_``), any Dataset with
    ``target_effect``/``source_effect (component, feature)`` (``components_``,
    the ``truth`` of make_recording, a baseline's ``motifs(J)``), or a tuple
    ``(target_effect, source_effect)`` of (J, d) arrays.  Also returns the
    per-motif stability (NaN when unknown).
    """
    if hasattr(obj, "components_"):
        obj = obj.components_
    if isinstance(obj, xr.Dataset):
        C = np.asarray(obj["target_effect"].transpose("component", "feature").values).T
        R = np.asarray(obj["source_effect"].transpose("component", "feature").values).T
        stab = (np.asarray(obj["stability"].values, float) if "stability" in obj
                else np.full(C.shape[1], np.nan))
    else:
        c, r = obj
        C, R = np.asarray(c, float).T, np.asarray(r, float).T
        stab = np.full(C.shape[1], np.nan)
    if C.shape != R.shape:
        raise ValueError(f"target and source effects differ in shape: {C.shape} vs {R.shape}")
    return np.ascontiguousarray(C), np.ascontiguousarray(R), stab


def motif_recovery(inferred, truth):
    """Match inferred motifs to the true ones and score them.

    Each true motif ``M*_j = c*_j r*_j^T`` is matched to one inferred motif by
    the Hungarian method on ``|cos(vec M*_j, vec M_k)| = |c*_j.c_k| |r*_j.r_k|``
    (:func:`licchie.fit.motif_agreement`).  A motif and its negative are the
    same motif (the sign moves into ``W``), hence the absolute value; the
    matched inferred map is multiplied by the sign of the cosine before its
    SSIM with the true map is computed.

    Parameters
    ----------
    inferred, truth
        A fitted LICCHIE, a Dataset with ``target_effect``/``source_effect
        (component, feature)`` (``components_``, ``truth``, a baseline's
        ``motifs(J)``) or a tuple ``(target_effect, source_effect)`` of
        (J, d) arrays.

    Returns
    -------
    xarray.Dataset over ``component`` (the true motifs)
        ``similarity`` (matched |cosine|, 0 for a true motif left without a
        match when fewer motifs were inferred), ``match`` (index of the
        inferred motif, -1 if none), ``sign`` (+1/-1), ``ssim`` (NaN without
        a match), ``matched_stability`` (the inferred motif's stability, NaN
        for a baseline).  ``attrs``: ``mean_similarity``, ``mean_ssim``
        (over matched motifs) and ``ssim_backend``.
    """
    Ct, Rt, _ = _effects(truth)
    Ci, Ri, stab = _effects(inferred)
    if Ct.shape[0] != Ci.shape[0]:
        raise ValueError(f"The inferred motifs have {Ci.shape[0]} features, the true ones "
                         f"{Ct.shape[0]}.")
    sim, match = F.motif_agreement(Ct, Rt, Ci, Ri)
    J = Ct.shape[1]
    sign = np.ones(J)
    ss = np.full(J, np.nan)
    mstab = np.full(J, np.nan)
    backend = None
    for j in range(J):
        k = match[j]
        if k < 0:
            continue
        sign[j] = 1.0 if (Ct[:, j] @ Ci[:, k]) * (Rt[:, j] @ Ri[:, k]) >= 0 else -1.0
        true_map = np.outer(Ct[:, j], Rt[:, j])
        inf_map = sign[j] * np.outer(Ci[:, k], Ri[:, k])
        ss[j], backend = _ssim_with_backend(true_map, inf_map)
        mstab[j] = stab[k]
    matched = match >= 0
    return xr.Dataset(
        {"similarity": ("component", sim), "match": ("component", match),
         "sign": ("component", sign), "ssim": ("component", ss),
         "matched_stability": ("component", mstab)},
        coords={"component": np.arange(J)},
        attrs={"mean_similarity": float(np.mean(sim)),
               "mean_ssim": float(np.mean(ss[matched])) if matched.any() else float("nan"),
               "ssim_backend": backend or "none"})


def ssim(reference, image, data_range=None, win_size=None):
    """Structural similarity of two 2-D maps (mean SSIM, Wang et al. 2004).

    Uses :func:`skimage.metrics.structural_similarity` when scikit-image is
    installed, else a numpy implementation of exactly the same computation
    (scikit-image's defaults): a square uniform window of ``win_size`` (7,
    or the largest odd number <= the smaller side of a smaller map), sample
    (co)variances (``N / (N - 1)``), ``K1 = 0.01``, ``K2 = 0.03``,
    ``C1 = (K1 L)^2``, ``C2 = (K2 L)^2``, and the mean of the SSIM map over
    the windows that fit inside the map.  Maps whose smaller side is below 3
    have no room for a window: their SSIM is computed once over the whole
    map (same formula).

    ``data_range`` ``L`` defaults to the range of ``reference`` (max - min;
    1 if the reference is constant): the motif maps of LICCHIE have no fixed
    range, and the true map is the reference.

    Returns
    -------
    float
    """
    return _ssim_with_backend(reference, image, data_range, win_size)[0]


def _ssim_with_backend(reference, image, data_range=None, win_size=None):
    a = np.asarray(reference, dtype=np.float64)
    b = np.asarray(image, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"ssim needs two 2-D maps of the same shape; got {a.shape} and "
                         f"{b.shape}.")
    if data_range is None:
        rng = float(a.max() - a.min())
        data_range = rng if rng > 0 else 1.0
    small = min(a.shape)
    if win_size is None:
        win_size = min(7, small if small % 2 else small - 1)
    if win_size < 3:
        return _ssim_global(a, b, data_range), "numpy-global"
    try:
        from skimage.metrics import structural_similarity
    except ImportError:
        return _ssim_numpy(a, b, data_range, win_size), "numpy"
    return float(structural_similarity(a, b, win_size=win_size,
                                       data_range=data_range)), "scikit-image"


def _ssim_terms(ux, uy, vx, vy, vxy, L):
    C1 = (0.01 * L) ** 2
    C2 = (0.03 * L) ** 2
    return ((2 * ux * uy + C1) * (2 * vxy + C2)) / ((ux ** 2 + uy ** 2 + C1) * (vx + vy + C2))


def _ssim_numpy(a, b, L, win):
    """scikit-image's default SSIM (uniform window, sample covariance, cropped)."""
    from numpy.lib.stride_tricks import sliding_window_view
    n = win * win
    wa = sliding_window_view(a, (win, win)).reshape(-1, n)
    wb = sliding_window_view(b, (win, win)).reshape(-1, n)
    ux, uy = wa.mean(1), wb.mean(1)
    norm = n / (n - 1.0)
    vx = norm * ((wa * wa).mean(1) - ux * ux)
    vy = norm * ((wb * wb).mean(1) - uy * uy)
    vxy = norm * ((wa * wb).mean(1) - ux * uy)
    return float(np.mean(_ssim_terms(ux, uy, vx, vy, vxy, L)))


def _ssim_global(a, b, L):
    n = a.size
    ux, uy = a.mean(), b.mean()
    norm = n / (n - 1.0) if n > 1 else 1.0
    vx = norm * np.mean((a - ux) ** 2)
    vy = norm * np.mean((b - uy) ** 2)
    vxy = norm * np.mean((a - ux) * (b - uy))
    return float(_ssim_terms(ux, uy, vx, vy, vxy, L))


# ---------------------------------------------------------- pair matrices
_KEYS = ("session", "time", "target", "source")


def _interaction_of(truth):
    if isinstance(truth, xr.DataArray):
        return truth
    if "interaction" in truth:
        return truth["interaction"]
    # make_recording(interaction=False): rebuild A_e = sum_j W[e,j] c_j r_j^T
    A = np.einsum("ej,ja,jb->eab", truth["weights"].values, truth["target_effect"].values,
                  truth["source_effect"].values)
    pc = {k: v for k, v in truth.coords.items() if v.dims == ("pair",)}
    feat = list(truth["feature"].values)
    return xr.DataArray(A, dims=("pair", "target_feature", "source_feature"),
                        coords={**pc, "target_feature": feat, "source_feature": feat})


def _key_frame(da, use_session):
    keys = [k for k in _KEYS if use_session or k != "session"]
    missing = [k for k in keys if k not in da.coords]
    if missing:
        raise ValueError(f"The pair matrices lack the pair coordinate(s) {missing}; pass "
                         "interaction_matrices() of a fit or the truth of make_recording.")
    return pd.DataFrame({k: np.asarray(da[k].values).astype(str) if k == "session"
                         else np.asarray(da[k].values) for k in keys})


def align_pairs(inferred, truth):
    """Positions ``(i_inferred, i_truth)`` of the pairs both sides have.

    Pairs are matched on their (session, time, target, source) coordinates,
    never on order; the result follows the truth's order.  When both sides
    have a single session the session labels are ignored (a recording's one
    session may be labeled differently by the generator and by a fit).

    Returns
    -------
    i_inf, i_true : int64 arrays, n_only_inferred, n_only_truth : int
    """
    ns_i = len(np.unique(inferred["session"].values)) if "session" in inferred.coords else 1
    ns_t = len(np.unique(truth["session"].values)) if "session" in truth.coords else 1
    use_session = not (ns_i <= 1 and ns_t <= 1)
    ki = _key_frame(inferred, use_session)
    kt = _key_frame(truth, use_session)
    ki["_i"] = np.arange(len(ki))
    kt["_t"] = np.arange(len(kt))
    if ki.duplicated(subset=list(ki.columns[:-1])).any():
        raise ValueError("The inferred pair matrices have duplicate (session, time, target, "
                         "source) keys.")
    m = ki.merge(kt, on=list(ki.columns[:-1]), how="inner")
    m = m.sort_values("_t", kind="stable")
    return (m["_i"].to_numpy(np.int64), m["_t"].to_numpy(np.int64),
            len(ki) - len(m), len(kt) - len(m))


def per_pair_mse(inferred, truth):
    """Per-pair MSE between inferred and true interaction matrices.

    ``mse_e = mean_{a,b} (A_e[a,b] - A*_e[a,b])^2`` (mean over the d x d
    entries), for every pair present in both, aligned by (session, time,
    target, source) keys (:func:`align_pairs`).

    Parameters
    ----------
    inferred : xarray.DataArray (pair, target_feature, source_feature)
        ``interaction_matrices()`` of LICCHIE or of a baseline.
    truth : xarray.Dataset or DataArray
        The truth of :func:`licchie.synthetic.make_recording` (its
        ``interaction``, or rebuilt from its weights and effects) or any
        DataArray with the same pair coordinates.

    Returns
    -------
    xarray.DataArray (pair)
        With the truth's pair coordinates of the matched pairs; ``attrs``:
        ``mean``, ``median``, ``n_matched``, ``n_only_inferred``,
        ``n_only_truth`` (pairs of one side missing from the other; a
        warning is issued when any truth pair is missing).
    """
    At = _interaction_of(truth)
    i_inf, i_true, n_oi, n_ot = align_pairs(inferred, At)
    if i_inf.size == 0:
        raise ValueError("No pair of the inferred matrices matches a true pair by (session, "
                         "time, target, source): were they fitted with the same radius and "
                         "include_self on the same recording?")
    if n_ot:
        warnings.warn(f"{n_ot} true pairs have no inferred matrix (different radius or "
                      "include_self?); the MSE covers the matched pairs only.", UserWarning,
                      stacklevel=2)
    ft = list(At["target_feature"].values)
    fs = list(At["source_feature"].values)
    Ai = inferred.transpose("pair", "target_feature", "source_feature")
    Ai = Ai.sel(target_feature=ft, source_feature=fs).values[i_inf]
    Av = At.transpose("pair", "target_feature", "source_feature").values[i_true]
    mse = np.mean((Ai - Av) ** 2, axis=(1, 2))
    pc = {k: ("pair", np.asarray(v.values)[i_true]) for k, v in At.coords.items()
          if v.dims == ("pair",)}
    return xr.DataArray(mse, dims="pair", coords=pc, name="pair_mse",
                        attrs={"mean": float(mse.mean()), "median": float(np.median(mse)),
                               "n_matched": int(mse.size), "n_only_inferred": int(n_oi),
                               "n_only_truth": int(n_ot)})
