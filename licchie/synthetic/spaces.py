"""A small synthetic recording whose populations have different feature sets.

:func:`make_space_recording` simulates two populations with their own
feature lists (MODEL.md "Populations", paper App. A.2): population ``"A"``
has ``features_a`` of the union features, ``"B"`` has ``features_b``; the
other features are NaN.  Cells random-walk in a box; a target observation
``(n,t)`` pairs with every cell within ``radius`` at ``t-1`` and with its own
previous observation, and evolves by

    x[n,t] = sum_e A_e x[k_e,t-1] + noise,
    A_e = sum_j W[e,j] c_j^(p) r_j^(q)^T        (p, q: target, source population)

with unit effects per population (random, on the population's features),
each pair's weights its interaction class's profile (target population,
source population, self or not) times a gain in [0.8, 1.2], a small
innovation in the state, one scale per frame (absorbed by class x frame
pooling) and observation noise.  Plain NumPy.
"""
from __future__ import annotations

import numpy as np
import xarray as xr


def _unit(rng, mask, J):
    F = rng.normal(size=(mask.size, J)) * mask[:, None]
    return F / np.linalg.norm(F, axis=0)


def make_space_recording(seed=0, n_cells=(20, 20), n_times=40, n_components=2,
                         features_a=(0, 1, 2), features_b=(1, 3), radius=1.5,
                         noise_sd=0.05, box=6.0, innovation_sd=0.1, n_dims=2,
                         profile_mix=0.0):
    """Recording (xarray.Dataset, MODEL.md schema) and its truth.

    Parameters
    ----------
    seed : int
    n_cells : (int, int)  cells of populations A and B
    n_times : int
    n_components : int
    features_a, features_b : tuple of int
        Indices into the union features ``f0, f1, ...`` of each population.
    radius : float
    noise_sd : float  observation noise (added after the frame's scaling)
    box : float  side of the square (cube) the cells move in
    n_dims : {2, 3}  dimensions of the positions
    innovation_sd : float
        A fresh random input of every cell at every frame, part of the
        state (so it propagates): it keeps the states excited.
    profile_mix : float in [0, 1]
        Every motif's profile over the classes is mixed towards motif 0's
        (``(1 - mix) w_j + mix w_0``): near 1 the profiles are nearly
        proportional and the data hardly tell the motifs apart (a hard
        regime for the verdict).  0 draws the same recording as before.

    Returns
    -------
    ds : xarray.Dataset
    truth : dict
        ``C``, ``R`` float64 (2, d, J) per population (zero off its
        features), ``profile`` dict (target pop, source pop, is_self) ->
        (J,), ``features`` bool (2, d).
    """
    rng = np.random.default_rng(seed)
    d = max(max(features_a), max(features_b)) + 1
    J = int(n_components)
    has = np.zeros((2, d), bool)
    has[0, list(features_a)] = True
    has[1, list(features_b)] = True
    C = np.stack([_unit(rng, has[p], J) for p in range(2)])
    R = np.stack([_unit(rng, has[p], J) for p in range(2)])
    pop = np.repeat([0, 1], n_cells)
    N = pop.size
    profile = {}
    for p in range(2):
        for q in range(2):
            for self_ in (False, True):
                scale = 1.0 if self_ else 0.5
                profile[(p, q, self_)] = scale * rng.uniform(-1, 1, J)
    if profile_mix:
        for k, w in profile.items():
            profile[k] = (1.0 - profile_mix) * w + profile_mix * w[0]
    s = int(n_dims)
    pos = np.empty((N, n_times, s))
    pos[:, 0] = rng.uniform(0, box, (N, s))
    for t in range(1, n_times):
        pos[:, t] = np.clip(pos[:, t - 1] + rng.normal(0, 0.3, (N, s)), 0, box)
    X = np.zeros((N, n_times, d))
    X[:, 0] = rng.normal(size=(N, d)) * has[pop]
    Y = X.copy()  # observed: the states plus observation noise
    for t in range(1, n_times):
        dist = np.linalg.norm(pos[:, t, None, :] - pos[None, :, t - 1, :], axis=2)
        for n in range(N):
            x = np.zeros(d)
            for k in np.flatnonzero((dist[n] <= radius) | (np.arange(N) == n)):
                w = profile[(pop[n], pop[k], k == n)] * rng.uniform(0.8, 1.2)
                A = np.einsum("j,ij,mj->im", w, C[pop[n]], R[pop[k]])
                x += A @ X[k, t - 1]
            X[n, t] = (x + rng.normal(0, innovation_sd, d)) * has[pop[n]]
        # one scale per frame keeps the states near unit size; class x frame
        # pooling profiles absorb it (as licchie.synthetic's per-frame scaling)
        X[:, t] /= np.sqrt(np.mean(X[:, t] ** 2) * d / has[pop].sum(axis=1).mean())
        Y[:, t] = X[:, t] + rng.normal(0, noise_sd, (N, d)) * has[pop]
    F = np.where(has[pop][:, None, :], Y, np.nan)
    ds = xr.Dataset(
        {"features": (("cell", "time", "feature"), F),
         "position": (("cell", "time", "space"), pos)},
        coords={"cell": np.arange(N), "time": np.arange(n_times),
                "feature": [f"f{j}" for j in range(d)], "space": ["x", "y", "z"][:s],
                "population": ("cell", np.array(["A", "B"])[pop])})
    return ds, {"C": C, "R": R, "profile": profile, "features": has}
