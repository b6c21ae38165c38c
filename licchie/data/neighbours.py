"""How many neighbours a radius gives: choose it before fitting.

LICCHIE explains a target by its radius pairs (MODEL.md, "Pairs"): the cells
of the previous frame within ``radius``, plus its own previous observation
(the self pair).  With a radius smaller than the typical spacing between
cells almost every target has only its self pair, and the fit silently
becomes a per-cell self model.  :func:`neighbour_counts` shows, per
(target population, source population), how many non-self sources the
targets get, and :func:`check_radius` warns (:class:`RadiusWarning`) when
almost every target has no neighbour but itself, with a radius to try.

Both use the package's own pair construction (:func:`licchie.fit.find_pairs`
on ``as_recording(X).obs``), so the counts are the fit's pairs exactly.
"""
from __future__ import annotations

import numbers
import warnings

import numpy as np
import pandas as pd

from .recording import as_recording

__all__ = ["RadiusWarning", "check_radius", "neighbour_counts", "suggest_radius"]

# Targets with only their self pair, as a fraction of all targets, from which
# the radius is called too small.
SELF_ONLY_THRESHOLD = 0.9
# Suggested radius: this many times the median nearest-neighbour distance
# between consecutive frames, so a typical target gets a neighbour or more.
SUGGEST_FACTOR = 1.5


class RadiusWarning(UserWarning):
    """The radius leaves almost every target with only its self pair."""


def _check_radius_value(radius):
    if not (isinstance(radius, numbers.Real) and not isinstance(radius, bool)
            and radius > 0 and not np.isnan(radius)):
        raise ValueError(f"radius must be a number > 0 (inf allowed), got {radius!r}.")
    return float(radius)


def _non_self_counts(obs, radius):
    """Non-self sources within ``radius`` of every target, by source population.

    Parameters
    ----------
    obs : Observations
    radius : float

    Returns
    -------
    targets : ndarray, shape (n_targets,), int64
        Observations in a frame that has a previous frame (every potential
        target, with or without pairs).
    counts : ndarray, shape (n_targets, n_populations), int64
        ``counts[i, q]``: sources of population ``q`` within ``radius`` of
        target ``targets[i]`` in the previous frame, its own previous
        observation excluded.
    """
    from ..fit import find_pairs  # the fit's own pairs; imported late (fit imports data)
    tgt_ptr, src, _, self_src = find_pairs(obs, radius, include_self=False)
    n_pop = len(obs.population_names)
    tgt = np.repeat(np.arange(obs.n_obs, dtype=np.int64), np.diff(tgt_ptr))
    keep = src != self_src[tgt]  # include_self=False keeps an in-radius self source
    counts = np.zeros((obs.n_obs, n_pop), dtype=np.int64)
    np.add.at(counts, (tgt[keep], obs.population[src[keep]]), 1)
    targets = np.flatnonzero(obs.prev_frame[obs.frame] >= 0).astype(np.int64)
    return targets, counts[targets]


def suggest_radius(X, factor=SUGGEST_FACTOR):
    """A radius that gives a typical target a neighbour: ``factor`` x the median
    nearest-neighbour distance between consecutive frames.

    Parameters
    ----------
    X : Recording, Observations, xarray.Dataset, pandas.DataFrame or list
        Anything :func:`licchie.as_recording` accepts.
    factor : float, default 1.5

    Returns
    -------
    float
        NaN when no target has a non-self observation in its previous frame.
    """
    d = previous_frame_distances(as_recording(X).obs, exclude_self=True)
    if not d.size:
        return float("nan")
    return float(factor) * float(np.median(d))


def previous_frame_distances(obs, exclude_self=True):
    """Distance from every observation to the nearest observation of its
    previous frame (the same session one step earlier).

    Parameters
    ----------
    obs : Observations
    exclude_self : bool
        Skip the cell's own previous observation (when cells are tracked).

    Returns
    -------
    float64 (n,)
        Finite distances only, for the observations that have a previous
        frame with someone else in it.
    """
    from scipy.spatial import cKDTree
    skip = exclude_self and obs.has_identity
    best = []
    for f in range(obs.n_frames):
        p = obs.prev_frame[f]
        if p < 0:
            continue
        a, b = obs.frame_ptr[f], obs.frame_ptr[f + 1]
        pa, pb = obs.frame_ptr[p], obs.frame_ptr[p + 1]
        if b == a or pb == pa:
            continue
        k = min(2, pb - pa) if skip else 1
        dist, idx = cKDTree(obs.positions[pa:pb]).query(obs.positions[a:b], k=[1, 2][:k])
        if skip:
            # the nearest previous observation may be the cell itself: skip it
            own = obs.cell[pa + idx[:, 0]] == obs.cell[a:b]
            other = dist[:, 1] if k == 2 else np.full(b - a, np.inf)
            dist = np.where(own, other, dist[:, 0])
        dist = np.ravel(dist)
        best.append(dist[np.isfinite(dist)])
    return np.concatenate(best) if best else np.zeros(0)


def _radius_message(self_only, radius, suggested):
    hint = (f"try radius >= {suggested:.3g} ({SUGGEST_FACTOR} x the median distance from a "
            "cell to its nearest other cell in the previous frame)"
            if np.isfinite(suggested) else
            "no frame has another cell to pair with, so no radius will help")
    return (f"Radius too small: {self_only:.0%} of the targets have no other cell of the "
            f"previous frame within radius={radius:g} (at most their self pair), so the fit "
            f"reduces to a per-cell self model; {hint}.  "
            "See licchie.data.neighbours.neighbour_counts(X, radius).")


def check_radius(X, radius, threshold=SELF_ONLY_THRESHOLD):
    """Warn when almost every target has only its self pair.

    Parameters
    ----------
    X : Recording, Observations, xarray.Dataset, pandas.DataFrame or list
        Anything :func:`licchie.as_recording` accepts.
    radius : float
    threshold : float in (0, 1], default 0.9
        Warn when at least this fraction of the targets has no non-self
        source within ``radius``.

    Returns
    -------
    float
        The fraction of targets without a non-self source (NaN when the
        recording has no targets).

    Warns
    -----
    RadiusWarning
        At or above ``threshold``, naming the fraction and a radius to try
        (:func:`suggest_radius`).
    """
    rec = as_recording(X)
    radius = _check_radius_value(radius)
    targets, counts = _non_self_counts(rec.obs, radius)
    return _warn_if_self_only(rec, targets, counts, radius, threshold)


def _warn_if_self_only(rec, targets, counts, radius, threshold):
    if not (isinstance(threshold, numbers.Real) and 0 < threshold <= 1):
        raise ValueError(f"threshold must be a fraction in (0, 1], got {threshold!r}.")
    if targets.size == 0:
        return float("nan")
    return warn_self_only(rec, counts.sum(axis=1) == 0, radius, threshold, stacklevel=4)


def warn_self_only(rec, no_other, radius, threshold=SELF_ONLY_THRESHOLD, stacklevel=3):
    """Warn (``RadiusWarning``) when at least ``threshold`` of the targets have
    no source but their own previous observation.

    Parameters
    ----------
    rec : Recording
    no_other : bool (n_targets,)
        True for a target without a non-self source within the radius.
    radius, threshold : float
    stacklevel : int
        Of the warning, so that it points at the user's call.

    Returns
    -------
    float
        The fraction of such targets (NaN without targets).
    """
    if no_other.size == 0:
        return float("nan")
    self_only = float(np.mean(no_other))
    if self_only >= threshold:
        warnings.warn(_radius_message(self_only, radius, suggest_radius(rec)),
                      RadiusWarning, stacklevel=stacklevel)
    return self_only


def neighbour_counts(X, radius, threshold=SELF_ONLY_THRESHOLD):
    """Distribution of in-radius neighbour counts per population pair.

    A target is an observation in a frame with a previous frame (of the same
    session); its neighbours of population ``q`` are the observations of
    ``q`` in the previous frame within ``radius`` (the fit's radius pairs),
    the target cell's own previous observation (its self pair) excluded.

    Parameters
    ----------
    X : Recording, Observations, xarray.Dataset, pandas.DataFrame or list
        Anything :func:`licchie.as_recording` accepts.
    radius : float
        As ``LICCHIE(radius=...)``.
    threshold : float in (0, 1], default 0.9
        Warn (:func:`check_radius`) when at least this fraction of all
        targets has no neighbour at all.

    Returns
    -------
    pandas.DataFrame, one row per (target population, source population)
        Columns ``target_population``, ``source_population``, ``n_targets``
        (targets of the target population), ``mean``, ``median`` and ``max``
        of their neighbour counts from the source population, and
        ``zero_fraction`` (fraction of those targets without such a
        neighbour).  ``df.attrs`` holds ``radius``, ``self_only_fraction``
        (fraction of all targets without any neighbour) and
        ``suggested_radius`` (:func:`suggest_radius`).

    Warns
    -----
    RadiusWarning
        When ``self_only_fraction >= threshold``.

    Examples
    --------
    >>> from licchie.data.neighbours import neighbour_counts
    >>> neighbour_counts(recording, radius=20.0)            # doctest: +SKIP
      target_population source_population  n_targets  mean  median  max  zero_fraction
    0              CD8               CD8       2900  1.7     1.0    9          0.31
    """
    rec = as_recording(X)
    radius = _check_radius_value(radius)
    obs = rec.obs
    targets, counts = _non_self_counts(obs, radius)
    self_only = _warn_if_self_only(rec, targets, counts, radius, threshold)
    pops = list(rec.population_names)
    tpop = obs.population[targets]
    rows = []
    for p, pname in enumerate(pops):
        c = counts[tpop == p]
        for q, qname in enumerate(pops):
            col = c[:, q]
            n = col.shape[0]
            rows.append(dict(target_population=pname, source_population=qname, n_targets=n,
                             mean=float(col.mean()) if n else float("nan"),
                             median=float(np.median(col)) if n else float("nan"),
                             max=int(col.max()) if n else 0,
                             zero_fraction=float(np.mean(col == 0)) if n else float("nan")))
    df = pd.DataFrame(rows, columns=["target_population", "source_population", "n_targets",
                                     "mean", "median", "max", "zero_fraction"])
    df.attrs.update(radius=radius, self_only_fraction=self_only,
                    suggested_radius=suggest_radius(rec))
    return df
