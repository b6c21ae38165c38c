"""Do the data support one profile per time window?  Cross-validated pooling groups.

``pooling_groups="auto"`` fits class x time-window profiles and keeps them
only when they predict *other cells of the same frames* better than one
profile per interaction class does.  The comparison is made at the fitted
motifs ``C, R``, in the exactly pooled limit of the reduced problem
(:mod:`licchie.kernels.pooled`; every pair at its group's profile, the
``A_e`` eliminated): the target cells are split into ``N_FOLDS`` folds, the
profiles of each grouping are solved exactly on the other folds, and every
held-out target's squared error is kept.  The verdict is a vote of the
frames: class x frame is kept when its held-out error summed over a frame's
targets is the lower one in at least half of the frames.

Why held-out cells and not held-out frames: a class x window profile has no
data outside its window, so only other cells of the same window can test
it.  Why a vote of frames and not the summed error: a window whose training
folds hold one or two cells has an exact but wild profile, and one such
window can outweigh every other frame of the recording (a three-session
suite fit whose class x frame profiles recover the motifs at 0.995 summed to
30,287 against 4,612 for class profiles; docs/model-choices.md, "Pooling
groups").  Why this and not a count threshold: whether per-window variation
is signal or noise depends on the noise, the number of cells per window and
how much the profiles really move, not on any one of them.

The folds are fixed (cells permuted by a generator seeded with 0, then dealt
round robin), so the choice does not depend on ``random_state`` and does not
draw from the fit's seed sequence.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..kernels import pooled as KP
from .search import PooledData, _Sweeper
from .spaces_search import SpacesReduced, group_space_classes

N_FOLDS = 5


@dataclass
class GroupingCV:
    """Held-out errors of the fine (class x window) and coarse (class) groupings.

    ``fine``, ``coarse``: squared errors summed over all held-out targets;
    ``fine_share``: the share of frames (with a held-out target) in which
    the fine grouping's summed error is the lower one (a tie counts half).
    """

    fine: float
    coarse: float
    fine_share: float

    @property
    def prefers_coarse(self) -> bool:
        return bool(self.fine_share < 0.5)


def target_folds(target_cell, n_folds=N_FOLDS):
    """Fold of every target: all observations of one cell share a fold.

    Parameters
    ----------
    target_cell : int64 (n_targets,)
        The cell of each target observation.

    Returns
    -------
    int64 (n_targets,), values in ``0..n_folds-1``
    """
    cells, inv = np.unique(np.asarray(target_cell), return_inverse=True)
    deal = np.random.default_rng(0).permutation(cells.size) % int(n_folds)
    return deal[inv.reshape(-1)].astype(np.int64)


def _spaces_of(n_groups, group_class, class_space):
    """(target space, source space) of every group (all 0 for one space)."""
    if group_class is None:
        z = np.zeros(n_groups, np.int64)
        return z, z
    return class_space[group_class, 0], class_space[group_class, 1]


def profiles(data: PooledData, C, R, group_class=None, class_space=None):
    """The exact profiles ``Wbar`` (n_groups, J) of ``data`` at fixed effects.

    ``C, R``: (d, J), or (n_spaces, d, J) with ``group_class`` (n_groups,)
    and ``class_space`` (n_classes, 2) (per-space effects, solved by
    :meth:`licchie.fit.spaces_search.SpacesReduced.profiles`).
    """
    if group_class is None:
        return _Sweeper(data).profiles(C, R)[0]
    return SpacesReduced(data, group_class, class_space).profiles(C, R)[0]


def predictions(rows, Wbar, C, R, group_class=None, class_space=None):
    """Every target's exactly pooled prediction (n_targets, d).

    ``p_i = sum_g C[p_g] diag(Wbar[g]) R[q_g]^T z_{i,g}`` from the rows of
    :func:`licchie.kernels.pooled.aggregate` (``keep_rows=True``); one
    feature space goes through the kernel, per-space effects one (target
    space, source space) at a time (memory of one row per (target, group)).
    """
    if C.ndim == 2:
        return KP.predict_targets(rows, Wbar, C, R)
    g = rows["tg_group"]
    gp, gq = _spaces_of(Wbar.shape[0], group_class, class_space)
    out = np.zeros((rows["tg_ptr"].shape[0] - 1, C.shape[1]))
    key = gp[g] * C.shape[0] + gq[g]
    for k in np.unique(key):
        a = np.flatnonzero(key == k)
        p, q = divmod(int(k), C.shape[0])
        u = (rows["Z"][a] @ R[q]) * Wbar[g[a]]
        np.add.at(out, rows["tgt_row"][a], u @ C[p].T)
    return out


def heldout_errors(data: PooledData, folds, C, R, group_class=None, class_space=None,
                   labels=None):
    """Every target's squared error at the profiles solved without its fold.

    Parameters
    ----------
    data : PooledData
        Aggregated with ``block=folds`` and ``keep_rows=True``.
    folds : int64 (n_targets,)
    C, R, group_class, class_space : as for :func:`profiles`
    labels : int64 (n_groups,) or None
        Solve the profiles of the coarser grouping ``g -> labels[g]``
        instead (``group_class`` then describes the coarse groups) and
        predict every fine group with its coarse group's profile.

    Returns
    -------
    float64 (n_targets,)
    """
    rows = data.agg["rows"]
    Y = rows["Y"]
    solve = data if labels is None else data.coarsened(labels, int(labels.max()) + 1)
    fine_class = (None if group_class is None or labels is None
                  else group_class[labels])
    err = np.zeros(Y.shape[0])
    for k in range(data.n_blocks):
        held = folds == k
        if not held.any():
            continue
        w = np.ones(data.n_blocks)
        w[k] = 0.0
        Wbar = profiles(solve.reweighted(w), C, R, group_class, class_space)
        if labels is not None:
            Wbar = Wbar[labels]
        pred = predictions(rows, Wbar, C, R,
                           group_class if labels is None else fine_class, class_space)
        err[held] = np.sum((Y[held] - pred[held]) ** 2, axis=1)
    return err


def frame_vote(err_fine, err_coarse, frame):
    """Share of frames whose summed ``err_fine`` is below their summed
    ``err_coarse`` (a tie counts half; NaN without frames)."""
    f = np.unique(frame, return_inverse=True)[1].reshape(-1)
    a = np.bincount(f, weights=err_fine)
    b = np.bincount(f, weights=err_coarse)
    if a.size == 0:
        return float("nan")
    return float(np.mean((a < b) + 0.5 * (a == b)))


def grouping_cv(X, pairs, obs, C, R, spaces=None, coarse=None, n_folds=N_FOLDS):
    """Cross-validated errors of the pairs' groups and of a coarser grouping.

    Parameters
    ----------
    X : float64 (n_obs, d)
        The features the fit saw (``Problem.X``).
    pairs : Pairs
        Their groups are the fine ones (class x time window).
    obs : Observations
    C, R : float64 (d, J), or (n_spaces, d, J) with population feature spaces
        The fitted effects (any scale: the profiles absorb it).
    spaces : Spaces or None
        Population feature spaces of ``pairs`` (``Problem.spaces``).
    coarse : int64 (n_groups,), optional
        The coarse group of every fine group; every fine group lies in
        exactly one.  Default: its interaction class.
    n_folds : int

    Returns
    -------
    GroupingCV
    """
    p = pairs
    if coarse is None:
        from .global_start import group_classes
        coarse = group_classes(p, obs)
    fine_class = None if spaces is None else group_space_classes(p, spaces)
    return cross_validate(X, p.tgt_obs, p.tgt_ptr, p.src, p.gain, p.group, p.n_groups,
                          coarse, obs.cell[p.tgt_obs], obs.frame[p.tgt_obs], C, R,
                          fine_class, None if spaces is None else spaces.class_space,
                          n_folds)


def cross_validate(X, tgt_obs, tgt_ptr, src, gain, group, n_groups, coarse, target_cell,
                   target_frame, C, R, group_class=None, class_space=None, n_folds=N_FOLDS):
    """:func:`grouping_cv` on plain arrays.

    Parameters
    ----------
    X, tgt_obs, tgt_ptr, src, gain, group, n_groups
        As for :func:`licchie.kernels.pooled.aggregate` (fine groups).
    coarse : int64 (n_groups,)
    target_cell, target_frame : int64 (n_targets,)
        Folds keep a cell's targets together; the vote is over frames.
    C, R : float64 (d, J) or (n_spaces, d, J)
    group_class : int64 (n_groups,) or None
        The feature-space class of every fine group (per-space effects).
    class_space : int64 (n_classes, 2) or None
    n_folds : int

    Returns
    -------
    GroupingCV
    """
    folds = target_folds(target_cell, n_folds)
    data = PooledData.from_pairs(X, tgt_obs, tgt_ptr, src, gain, group, n_groups,
                                 block=folds, n_blocks=n_folds, keep_rows=True)
    coarse = np.asarray(coarse, dtype=np.int64)
    C, R = np.ascontiguousarray(C, dtype=np.float64), np.ascontiguousarray(R, dtype=np.float64)
    coarse_class = None
    if group_class is not None:
        coarse_class = np.zeros(int(coarse.max()) + 1, np.int64)
        coarse_class[coarse] = group_class
    e_fine = heldout_errors(data, folds, C, R, group_class, class_space)
    e_coarse = heldout_errors(data, folds, C, R, coarse_class, class_space, labels=coarse)
    return GroupingCV(float(e_fine.sum()), float(e_coarse.sum()),
                      frame_vote(e_fine, e_coarse, target_frame))
