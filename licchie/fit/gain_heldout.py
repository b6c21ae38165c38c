"""Do the data ask for per-target gains?  A held-out check of a gain-free pooled fit.

A pooled fit without ``target_gain`` assumes that every target of a group
responds to its sources with the group's profile.  When targets differ in
how strongly they respond (a per-target gain ``gamma_t``, the model of
``target_gain=True``), that fit is misspecified: the profiles average over
strong and weak responders, and the motifs move away from the truth
(docs/global-search.md, "Ceiling: the truth is identifiable with gains, not
without").  Nothing in the fit's own numbers says so: its verdict judges
the motifs of the model it was given.

The check asks the data directly, at the fitted motifs ``C, R`` and in the
exactly pooled limit (every pair at its group's profile, profiles solved
exactly, as :mod:`licchie.fit.granularity` does):

1. gain-free: the profiles at ``C, R`` and every target's squared error
   ``e1_i = |y_i - p_i|^2`` (``y_i`` its state, ``p_i`` its prediction);
2. with gains: profiles and per-target gains alternated ``ROUNDS`` times at
   the same ``C, R`` (each step exact, as in :mod:`licchie.fit.gains`); with
   those profiles' prediction ``q_i``, every feature ``f`` of every target is
   predicted by a gain fitted on its *other* features,
   ``gamma_i^(-f) = <y_i, q_i>_(-f) / |q_i|^2_(-f)``, giving ``eg_i``.

``heldout_share = 1 - sum(eg) / sum(e1)`` is the share of the gain-free
fit's error that per-target gains remove on features they were not fitted
to.  It says "gains" at :data:`HELDOUT_SHARE` or more.  Measured on the
synthetic suite (docs/global-search.md, "A check for per-target gains"):
at the fits' own motifs, paper size, 0.78-0.92 on the regimes with gains
and at most 0.56 without; at the true motifs 0.97-0.99 with gains and
0.17-0.62 without.  A target's per-pair deviations from its profile also
look like a small gain, so the share without gains is not near 0; on small
problems (5 features, 18 cells, 20 frames) it reached 0.78 without gains at
the true motifs, so there the check can say "gains" wrongly.

Why held-out features and not held-out frames: a gain belongs to one target
observation, so only other features of the same observation can test it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .gains import with_gains
from .granularity import predictions, profiles
from .pooling import fitted_gains, gain_components, normalise_gains
from .search import PooledData
from .spaces_search import group_space_classes

# The check says "gains" when held-out gains remove at least this share of
# the gain-free error (module docstring; docs/global-search.md)
HELDOUT_SHARE = 0.7
ROUNDS = 20   # profile / gain alternations at the fitted motifs


@dataclass
class GainCheck:
    """The held-out comparison of per-target gains against gain 1.

    ``heldout_share``: 1 - (error with held-out gains) / (gain-free error),
    summed over targets; ``gain_q10``, ``gain_q90``: quantiles of the fitted
    gains (mean 1 per frame with class x frame pooling).
    """

    heldout_share: float
    gain_q10: float
    gain_q90: float

    @property
    def suggests_gains(self) -> bool:
        return bool(self.heldout_share >= HELDOUT_SHARE)

    def as_dict(self):
        return {**asdict(self), "suggests_gains": self.suggests_gains}


def heldout_gain_errors(Y, P):
    """Squared errors of every target with leave-one-feature-out gains.

    Parameters
    ----------
    Y, P : float64 (n_targets, d)
        States and predictions (gain 1).

    Returns
    -------
    float64 (n_targets,)
        ``sum_f (y_f - gamma^(-f) p_f)^2``; a feature whose other features
        carry no prediction keeps gain 1.
    """
    Y = np.asarray(Y, dtype=np.float64)
    P = np.asarray(P, dtype=np.float64)
    pp = np.einsum("td,td->t", P, P)[:, None]
    py = np.einsum("td,td->t", P, Y)[:, None]
    den = pp - P * P
    num = py - P * Y
    ok = den > 1e-12 * pp
    gamma = np.where(ok, num / np.where(ok, den, 1.0), 1.0)
    return np.sum((Y - gamma * P) ** 2, axis=1)


def gain_check(X, pairs, C, R, spaces=None, rounds=ROUNDS):
    """The held-out gain check of a gain-free pooled fit (module docstring).

    Parameters
    ----------
    X : float64 (n_obs, d)
        The features the fit saw (``Problem.X``).
    pairs : Pairs
        With the fit's pooling groups.
    C, R : float64 (d, J), or (n_spaces, d, J) with population feature spaces
        The fitted effects.
    spaces : Spaces or None
        Population feature spaces of ``pairs``.
    rounds : int

    Returns
    -------
    GainCheck
    """
    p = pairs
    data = PooledData.from_pairs(X, p.tgt_obs, p.tgt_ptr, p.src, p.gain, p.group,
                                 p.n_groups, keep_rows=True)
    gc = None if spaces is None else group_space_classes(p, spaces)
    cs = None if spaces is None else spaces.class_space
    C = np.ascontiguousarray(C, dtype=np.float64)
    R = np.ascontiguousarray(R, dtype=np.float64)
    rows = data.agg["rows"]
    Y = rows["Y"]
    Wbar = profiles(data, C, R, gc, cs)
    e1 = float(np.sum((Y - predictions(rows, Wbar, C, R, gc, cs)) ** 2))
    comps = gain_components(p.group, p.pair_target, p.n_groups)
    gamma = np.ones(Y.shape[0])
    for _ in range(int(rounds)):
        P = predictions(rows, Wbar, C, R, gc, cs)
        gamma, Wbar = normalise_gains(fitted_gains(P, Y, fallback=gamma), Wbar, comps)
        Wbar = profiles(with_gains(data, gamma), C, R, gc, cs)
    eg = float(np.sum(heldout_gain_errors(Y, predictions(rows, Wbar, C, R, gc, cs))))
    share = 1.0 - eg / e1 if e1 > 0 else 0.0
    q10, q90 = np.quantile(gamma, [0.1, 0.9]) if gamma.size else (np.nan, np.nan)
    return GainCheck(share, float(q10), float(q90))
