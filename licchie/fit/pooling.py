"""Pooling of the weights toward group profiles, target gains, and column scales.

The pooling term of MODEL.md pulls every pair's weights ``W[e]`` toward its
group's profile ``Wbar[g(e)]`` (with ``target_gain``, toward
``gamma[t(e)] Wbar[g(e)]``).  Here are the exact profile/gain updates
(:func:`pooled_profiles`), the free scales they leave
(:func:`gain_components`, :func:`normalise_gains`), the per-target
least-squares gain of the starts (:func:`fitted_gains`), and the
one normalisation of the low-rank factors, unit columns of ``C`` and ``R``
with their scale moved into the weights (:func:`unit_columns`).
"""
from __future__ import annotations

import numpy as np

from .. import kernels as K
from .lstsq import safe_ratio


def fitted_gains(p, y, w=None, thr=None, fallback=0.0, prior=0.0):
    """Per-target least-squares gain of the prediction ``p`` for ``y``.

    ``argmin_g w_s ||y_s - g p_s||^2`` for every target ``s``, with an
    optional L1 threshold ``thr`` on the gain's numerator (the L1 of the
    implied weights per unit gain) and an optional prior
    ``prior (g - 1)^2`` (:func:`licchie.fit.gains.joint_minimum`).

    Parameters
    ----------
    p, y : float64 (n_targets, d)
    w : float64 (n_targets,) or None
        Per-target weights (None: all ones, and no multiplication, so the
        result is bit-identical to the unweighted formula).
    thr : float64 (n_targets,) or None
    fallback : float or float64 (n_targets,)
        The gain of a target whose prediction is zero.
    prior : float
        Weight of the prior toward 1 (0: none).

    Returns
    -------
    float64 (n_targets,)
    """
    pp = np.einsum("sd,sd->s", p, p)
    py = np.einsum("sd,sd->s", p, y)
    if w is not None:
        pp = w * pp
        py = w * py
    if thr is not None:
        py = np.sign(py) * np.maximum(np.abs(py) - thr, 0.0)
    if prior:
        py, pp = py + prior, pp + prior
    return safe_ratio(py, pp, fallback)


def pooled_profiles(W, group, n_groups, tid, gamma=None, rounds=20, comps=None,
                    tol=1e-9):
    """Group profiles and target gains that minimise the gain pooling term.

    ``sum_e ||W[e] - gamma[t(e)] Wbar[g(e)]||^2`` over ``Wbar`` and ``gamma``,
    alternating exact updates from ``gamma`` (all ones if None) in
    :func:`licchie.kernels.gain_profile_rounds`, so the term never rises
    above its value at the given gains.  The product ``gamma Wbar`` has one
    free scale per :func:`gain_components` component (``comps``, computed if
    None): the gains are then normalised to mean 1 in each, so that ``Wbar``
    is the profile of a typical target.

    Parameters
    ----------
    W, group, n_groups, tid, rounds, tol
        As :func:`licchie.kernels.gain_profile_rounds` (every target present
        in ``tid``; any dtype, converted here).
    gamma : float64 (n_targets,) or None
        Starting gains (None: all ones).
    comps : tuple or None
        :func:`gain_components` of ``group`` and ``tid`` (computed if None).

    Returns
    -------
    Wbar : float64 (n_groups, J), gamma : float64 (n_targets,)
    """
    nt = int(tid.max()) + 1 if tid.size else 0
    gamma = np.ones(nt) if gamma is None else np.ascontiguousarray(gamma, dtype=np.float64)
    Wbar, gamma = K.gain_profile_rounds(np.ascontiguousarray(W, dtype=np.float64),
                                        np.ascontiguousarray(group, dtype=np.int64),
                                        int(n_groups),
                                        np.ascontiguousarray(tid, dtype=np.int64),
                                        gamma, int(rounds), float(tol))
    if comps is None:
        comps = gain_components(group, tid, n_groups)
    gamma, Wbar = normalise_gains(gamma, Wbar, comps)
    return np.ascontiguousarray(Wbar), gamma


# below this share of its mean |gain| a component's mean gain counts as
# cancelled (normalise_gains).  Not a cosmetic choice: the reduced start's
# profile ridge and gain tolerance see the normalised scale.  At 0.05 it also
# re-normalised frames of the suite's pooled seed 0 whose gains half cancel
# (mean 0.009-0.04 of the mean |gain|) and changed that fit (recovery 0.902
# -> 0.830; docs/global-search.md, "A gain normalisation that changes gain
# fits"); at 1e-3 it guards the degenerate means only
GAIN_MEAN_FLOOR = 1e-3


def gain_components(group, tid, n_groups):
    """Connected components of groups and targets (linked by a pair).

    ``gamma_t Wbar[g]`` is unchanged when the gains of one component are
    multiplied by ``a`` and its profiles divided by ``a``: each component has
    its own free scale (with class x frame pooling, every frame).

    Returns
    -------
    group_label : int64 (n_groups,), target_label : int64 (n_targets,), n : int
    """
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    nt = int(tid.max()) + 1 if tid.size else 0
    n = n_groups + nt
    adj = sp.csr_matrix((np.ones(group.size), (group, n_groups + tid)), shape=(n, n))
    n_comp, label = connected_components(adj, directed=False)
    return label[:n_groups], label[n_groups:], n_comp


def normalise_gains(gamma, Wbar, comps):
    """Gains divided, profiles multiplied by the mean gain of their component
    (``Wbar`` may be None when only the gains are wanted).

    Where a component's gains cancel (``|mean| < GAIN_MEAN_FLOOR`` times
    its mean ``|gain|``: half of them negative, to three digits) the mean
    |gain| is the divisor instead: dividing by a mean near 0 makes the gains
    huge and the profiles tiny (the same products, but the reduced start's
    profile ridge and gain tolerance act on that scale), and no target of
    such a set is typical.  A component of zero gains is left as it is.
    """
    g_label, t_label, n = comps
    cnt = np.maximum(np.bincount(t_label, minlength=n), 1)
    mean = np.bincount(t_label, weights=gamma, minlength=n) / cnt
    size = np.bincount(t_label, weights=np.abs(gamma), minlength=n) / cnt
    scale = np.where(np.abs(mean) >= GAIN_MEAN_FLOOR * size, mean, size)
    scale = np.where((scale != 0) & np.isfinite(scale), scale, 1.0)
    return gamma / scale[t_label], None if Wbar is None else Wbar * scale[g_label][:, None]


def normalise_median(gain, keep):
    """Gains over their median magnitude among ``keep`` (one free scale for all
    of them): ``(gain / m, m)``."""
    nz = keep & (gain != 0)
    m = float(np.median(np.abs(gain[nz]))) if np.any(nz) else 1.0
    return gain / m if m > 0 else gain, m


def unit_columns(W, C, R, rng=None, Wbar=None):
    """Unit columns of ``C`` and ``R``, their scale moved into ``W`` (and ``Wbar``).

    ``W[:, j] c_j r_j^T`` is unchanged.  A dead column (a zero or non-finite
    norm) restarts, when ``rng`` is given, at random directions drawn from it
    with zero weight (written into the given arrays); without ``rng`` the
    result is None.

    Parameters
    ----------
    W : float64 (n_pairs, J)
    C, R : float64 (d, J)
    rng : numpy.random.Generator or None
    Wbar : float64 (n_groups, J) or None

    Returns
    -------
    W, C, R, Wbar : C-contiguous arrays (``Wbar`` None when not given), or None
    """
    nc = np.linalg.norm(C, axis=0)
    nr = np.linalg.norm(R, axis=0)
    for j in range(C.shape[1]):
        if not (nc[j] > 0 and nr[j] > 0 and np.isfinite(nc[j] * nr[j])):
            if rng is None:
                return None
            C[:, j] = rng.normal(size=C.shape[0])
            R[:, j] = rng.normal(size=R.shape[0])
            W[:, j] = 0.0
            if Wbar is not None:
                Wbar[:, j] = 0.0
            nc[j] = np.linalg.norm(C[:, j])
            nr[j] = np.linalg.norm(R[:, j])
    s = nc * nr
    return (np.ascontiguousarray(W * s), np.ascontiguousarray(C / nc),
            np.ascontiguousarray(R / nr),
            None if Wbar is None else np.ascontiguousarray(Wbar * s))
