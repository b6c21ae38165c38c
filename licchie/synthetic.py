"""Synthetic recordings with a known ground truth (paper §5.1, Table S3).

:func:`make_recording` simulates cells of several populations that move on
trigonometric trajectories and whose features evolve by LICCHIE's model
(``MODEL.md``) with known rank-one motifs::

    x[n,t] = sum_{e into (n,t)} A_e x[k_e,t-1] + noise,
    A_e    = sum_j W[e,j] c_j r_j^T,    |c_j| = |r_j| = 1,
    <c_i r_i^T, c_j r_j^T>_F = delta_ij.

It returns the recording as an :class:`xarray.Dataset` in the ``MODEL.md``
schema and the ground truth as a second Dataset.  Both write to netCDF with
``Dataset.to_netcdf`` and read back with ``xarray.open_dataset``.

How the simulation works, step by step (every choice the paper leaves open is
fixed here):

1. **Populations and motion.**  Population ``p`` (named ``"A"``, ``"B"``, ...)
   has ``n_cells[p] * scale`` cells.  Each cell has a home position drawn
   uniformly in a box ``[0, L]^s`` and moves on
   ``home + a_p * (sin(w_p t + phi_1), cos(w_p t + phi_2)[, sin(w_p t + phi_3)])``
   with a population-specific amplitude ``a_p`` and angular frequency
   ``w_p`` and per-cell random phases.  The box side ``L`` is chosen so that
   a disc (ball) of radius ``radius`` holds ``mean_neighbors`` cells on
   average: the density of cells, hence the number of pairs per target, does
   not change with ``scale``.  All positions are generated first; motion does
   not depend on features.
2. **Visibility.**  Each observation ``(n, t)`` with ``t >= 1`` is hidden
   independently with probability ``hidden_fraction`` (frame 0 is always
   visible).  Hidden observations are NaN in ``ds`` and do not exist as
   sources or targets, but the generator keeps simulating the hidden cell's
   state internally.
3. **Pairs** are exactly those of ``MODEL.md``: ``(n,t) <- (k,t-1)`` for every
   *visible* source ``k`` with ``|pos[n,t] - pos[k,t-1]| <= radius`` (brute
   force Euclidean distances), plus the self pair ``k = n`` even beyond the
   radius when ``include_self`` (the self pair needs a visible source too).
   With ``include_self=False`` the self pair is a pair like any other (kept
   only within the radius).  Pair weight ``g_e = 1``.  The same rule gives the
   internal pairs of hidden targets (they evolve from the visible sources too;
   only the pairs of visible targets are part of the truth).
4. **Free evolution.**  A target without any pair (its own previous
   observation hidden and no visible cell within the radius) evolves from its
   own hidden previous state through a self-pair matrix drawn like any self
   pair.  This term is not a pair of the model (its source is not observed);
   such visible targets are flagged in ``truth.free_evolution`` and are not
   explained by the model (for the fit they only add a constant).
5. **Motifs.**  ``C`` and ``R`` are columns of two independent random
   orthogonal ``d x d`` matrices.  For ``J <= d`` motif ``j`` is
   ``c_j = U[:, j]``, ``r_j = V[:, j]`` (both sets orthonormal); for
   ``d < J <= d^2`` motif ``j`` uses a distinct column pair ``(U[:, a], V[:, b])``
   (the diagonal first, then off-diagonal pairs in random order), which keeps
   the ``M_j`` Frobenius-orthonormal because two motifs always differ in
   ``a`` or ``b``.
6. **Weights** (before the scaling of step 7), by ``regime``:

   ``"pooled"`` (default, identifiable): each interaction class -- target
   population x source population (``"A<-B"`` is target A, source B), plus
   the self pair as its own class ``"self"`` -- has a profile over the motifs.
   ``round(density * G * J)`` of the ``G x J`` (class, motif) entries are
   active (spread so that every class and every motif is used when there are
   enough entries), each with a random sign, an amplitude in [0.5, 1.5] and a
   smooth time course (a sinusoid or a Gaussian bump on an offset, never
   below 0.2 of the amplitude).  A pair's weights are its class profile at
   its time times ``(1 + deviation * N(0, 1))`` entrywise, so zeros stay
   zero.

   ``"paper"`` (the paper's text read literally, not identifiable): candidate
   edges are the ``n_neighbors`` nearest cells of each cell in frame-0
   feature space (Euclidean, brute force); a pair interacts when its source is
   a candidate of its target, or when it is the self pair.  Interacting pairs
   get per-pair, per-time weights, each entry non-zero with probability
   ``density`` and then ``N(0, 1)``; non-interacting pairs (in-radius
   neighbours that are not kNN candidates) have ``W = 0`` and ``A_e = 0``.
7. **Scaling** (paper: "we scaled updates to keep the spectral radius below
   1"; Table S3: features scaled "standard").  Per frame ``t``, with
   ``B_e = sum_j W0[e,j] M_j`` the unscaled matrices and
   ``u_n = sum_e B_e x[k_e,t-1]`` the unscaled update of target ``n``:

   a. *balance* ``b_n = (median_m |u_m| / |u_n|) ** balance`` (default
      ``balance=0.5``; ``balance=0`` gives ``b_n = 1``);
   b. *spectral cap*: ``f_n = b_n * min(1, max_spectral_radius / rho(b_n sum_e B_e))``,
      so the spectral radius of the target's summed update ``f_n sum_e B_e``
      is at most ``max_spectral_radius < 1``;
   c. *frame renormalisation*: one scalar ``s_t`` per frame, so that the
      noiseless new frame ``y_n = s_t c_n f_n u_n`` (all cells, hidden ones
      included) has the root-mean-square of frame 0 (1 after
      standardisation), where ``c_n = min(1, max_norm_ratio * m / (s_t f_n
      |u_n|))`` clamps any cell whose feature vector would be longer than
      ``max_norm_ratio`` times the frame's root-mean-square norm
      ``m = sqrt(d) * rms(frame 0)``; ``s_t`` solves
      ``sum_n min(s_t f_n |u_n|, max_norm_ratio * m)^2 = N m^2`` by
      bisection.  The signal therefore neither diverges nor
      decays into the noise.

   The saved weights are the ones actually used, ``W[e] = s_t c_n f_n W0[e]``,
   and the saved ``A_e = sum_j W[e,j] c_j r_j^T``, so ``x[n,t] = sum_e A_e
   x[k_e,t-1] + noise`` holds exactly (up to rounding).  ``frame_scale``
   stores ``s_t`` and ``target_gain`` stores ``c_n f_n`` (1 for a target that
   was neither balanced, capped nor clamped).  Because the renormalisation is
   folded into ``W``, the bound of step b holds for the update *before*
   renormalisation: ``rho(sum_e A_e) <= max_spectral_radius * s_t``.  (The two
   wishes conflict: a linear recursion whose every update has spectral radius
   below 1 loses scale geometrically, and one that keeps its scale has an
   effective spectral radius of 1.)  The renormalisation is one scalar per
   frame, not a per-feature standardisation, because a per-feature factor
   ``D`` would turn ``D c_j r_j^T`` into a different motif, whereas a scalar
   moves into ``W``.  For the pooled regime ``class_weights`` stores the
   class profiles times ``s_t``, so a pair with ``target_gain == 1`` has
   ``W[e] = class_weights[g, t] * (1 + deviation * xi)`` exactly.

   Why ``balance``: without it (``balance=0``) the linear network localises.
   Cells in dense, coherent neighbourhoods grow from frame to frame and
   isolated cells (a sparse rank-one self pair) shrink, so after a few dozen
   frames 10-30% of the cells are at the noise level (seeds 0-3, default
   sizes, noise 0.01) while ``max_norm_ratio`` bounds the large ones.  The
   default ``balance=0.5`` pulls each cell's scale halfway (in log) toward the
   frame's median and leaves almost no cell at the noise level in the pooled
   regime, at the price of one scalar per target in ``W``: a pooled pair has
   ``W[e] = target_gain * class_weights[g, t] * (1 + deviation * xi)``, the
   same direction for every pair of a class.  Use ``balance=0`` for pairs
   that deviate from their class profile only by ``deviation`` (apart from
   capped or clamped targets).  In the paper regime many targets have no
   non-zero weight at all (20% density over few interacting pairs); their
   features become pure noise whatever ``balance`` is (Table S3's "update of
   features if no effect: keep" would need ``A_e = I``, which is not a
   low-rank sum, so it is not done).

8. **Features.**  Frame 0: population-specific Gaussians (random mean and
   per-feature standard deviation per population), then standardised per
   feature over all cells (Table S3: "scaling features method standard").
   Frame ``t``: ``x[n,t] = y_n + noise * N(0, I)``.
"""
from __future__ import annotations

import string
from numbers import Integral, Real

import numpy as np
import xarray as xr

__all__ = ["make_recording"]

_REGIMES = ("pooled", "paper")


def _population_names(n_pop):
    letters = string.ascii_uppercase
    return [letters[p] if p < len(letters) else f"P{p}" for p in range(n_pop)]


def _check(name, ok, constraint, value):
    if not ok:
        raise ValueError(
            f"The {name!r} parameter of make_recording must be {constraint}. "
            f"Got {value!r} instead.")


def _motifs(rng, d, J):
    """Unit target/source effects whose motifs are Frobenius-orthonormal."""
    def orthogonal(m):
        q, r = np.linalg.qr(rng.standard_normal((m, m)))
        return q * np.sign(np.diag(r))  # Haar-distributed

    U = orthogonal(d)
    V = orthogonal(d)
    if J <= d:
        a = b = np.arange(J)
    else:
        off = np.array([(i, k) for i in range(d) for k in range(d) if i != k])
        pick = off[rng.permutation(len(off))[: J - d]]
        a = np.concatenate([np.arange(d), pick[:, 0]])
        b = np.concatenate([np.arange(d), pick[:, 1]])
    return np.ascontiguousarray(U[:, a].T), np.ascontiguousarray(V[:, b].T)


def _spectral_radius(wsum, C, R):
    """Spectral radius of sum_j wsum[n, j] c_j r_j^T for each row n.

    For J <= d the non-zero eigenvalues of ``C^T diag(w) R`` (d x d) are those
    of ``diag(w) R C^T`` (J x J), which is cheaper.
    """
    J, d = C.shape
    if J <= d:
        mats = wsum[:, :, None] * (R @ C.T)[None, :, :]
    else:
        mats = np.einsum("nj,ja,jb->nab", wsum, C, R)
    if mats.shape[0] == 0:
        return np.zeros(0)
    return np.abs(np.linalg.eigvals(mats)).max(axis=1)


def _pairs_for_frame(pos_t, pos_prev, visible_prev, radius, include_self, chunk=2048):
    """All (target, source) index pairs of one frame, sorted by (target, source).

    Targets are all cells (visible or not; the caller keeps the visible ones),
    sources only the cells visible in the previous frame.
    """
    N = pos_t.shape[0]
    src_ids = np.flatnonzero(visible_prev)
    src_pos = pos_prev[src_ids]
    tgt_list, src_list = [], []
    r2 = radius * radius * (1.0 + 1e-9)
    for lo in range(0, N, chunk):
        block = pos_t[lo:lo + chunk]
        d2 = np.zeros((block.shape[0], src_pos.shape[0]))
        for ax in range(pos_t.shape[1]):
            diff = block[:, ax, None] - src_pos[None, :, ax]
            d2 += diff * diff
        # candidates by squared distance, then the exact test |diff| <= radius
        ti, si = np.nonzero(d2 <= r2)
        diff = block[ti] - src_pos[si]
        ok = np.sqrt(np.add.reduce(diff * diff, axis=-1)) <= radius
        tgt_list.append(ti[ok] + lo)
        src_list.append(src_ids[si[ok]])
    tgt = np.concatenate(tgt_list) if tgt_list else np.zeros(0, np.int64)
    src = np.concatenate(src_list) if src_list else np.zeros(0, np.int64)
    if include_self:
        cells = np.flatnonzero(visible_prev)
        have = np.zeros(N, bool)
        have[tgt[tgt == src]] = True
        extra = cells[~have[cells]]
        tgt = np.concatenate([tgt, extra])
        src = np.concatenate([src, extra])
    order = np.lexsort((src, tgt))
    return tgt[order].astype(np.int64), src[order].astype(np.int64)


def _knn_candidates(x0, k):
    """Sorted keys n * N + m of the k nearest cells m != n in frame-0 features."""
    N = x0.shape[0]
    k = min(k, N - 1)
    if k <= 0:
        return np.zeros(0, np.int64)
    keys = []
    for lo in range(0, N, 2048):
        block = x0[lo:lo + 2048]
        dist = np.zeros((block.shape[0], N))
        for f in range(x0.shape[1]):
            diff = block[:, f, None] - x0[None, :, f]
            dist += diff * diff
        rows = np.arange(lo, min(lo + 2048, N))
        dist[rows - lo, rows] = np.inf
        nn = np.argpartition(dist, k - 1, axis=1)[:, :k]
        keys.append((rows[:, None] * N + nn).ravel())
    return np.sort(np.concatenate(keys))


def _class_profiles(rng, G, J, n_frames, density):
    """Smooth, sparse (class, time, motif) weight profiles; index t = frame."""
    n_active = int(round(density * G * J))
    n_active = min(max(n_active, 1), G * J)
    active = np.zeros((G, J), bool)
    m = max(G, J)
    if n_active >= m:
        gp, jp = rng.permutation(G), rng.permutation(J)
        for i in range(m):
            active[gp[i % G], jp[i % J]] = True
    rest = np.flatnonzero(~active.ravel())
    need = n_active - int(active.sum())
    if need > 0:
        active.ravel()[rng.choice(rest, size=need, replace=False)] = True
    t = np.arange(n_frames, dtype=float)
    prof = np.zeros((G, n_frames, J))
    for g, j in zip(*np.nonzero(active)):
        amp = rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 1.5)
        if rng.random() < 0.5:
            cycles = rng.uniform(0.5, 2.0)
            course = 0.6 + 0.4 * np.sin(2 * np.pi * cycles * t / n_frames
                                        + rng.uniform(0, 2 * np.pi))
        else:
            centre = rng.uniform(0, n_frames)
            width = rng.uniform(0.1, 0.3) * n_frames
            course = 0.2 + 0.8 * np.exp(-0.5 * ((t - centre) / width) ** 2)
        prof[g, :, j] = amp * course
    return prof


def make_recording(n_cells=(25, 10), n_frames=50, n_features=10, n_components=8,
                   regime="pooled", noise=0.01, hidden_fraction=0.0, n_dims=2,
                   radius=10.0, include_self=True, density=0.2, scale=1, seed=0,
                   *, deviation=0.05, n_neighbors=10, mean_neighbors=5.0,
                   max_spectral_radius=0.95, max_norm_ratio=3.0, balance=0.5, interaction=True):
    """Simulate a recording with known motifs (paper §5.1, Table S3).

    The simulation is described step by step in the module docstring.

    Parameters
    ----------
    n_cells : int or sequence of int
        Cells per population (``scale`` multiplies them).  Populations are
        named ``"A"``, ``"B"``, ...
    n_frames : int
        Number of frames ``T >= 2``.
    n_features : int
        Number of features ``d`` (one feature space shared by all populations).
    n_components : int
        Number of motifs ``J``, ``1 <= J <= d**2``.
    regime : {"pooled", "paper"}
        ``"pooled"``: class profiles with small per-pair deviations
        (identifiable); ``"paper"``: per-pair, per-time random sparse weights
        on kNN candidate edges.
    noise : float
        Standard deviation of the Gaussian noise added to every feature in
        every frame after the first (features have unit scale).
    hidden_fraction : float in [0, 1)
        Probability that an observation (cell, frame >= 1) is hidden.
    n_dims : {2, 3}
        Spatial dimensions.
    radius : float
        Interaction radius ``R`` (Table S3: 10).
    include_self : bool
        Keep the self pair beyond the radius.
    density : float in (0, 1]
        Fraction of non-zero weights: of (class, motif) entries for
        ``"pooled"``, of the weights of interacting pairs for ``"paper"``.
    scale : float
        Multiplies the number of cells of every population; the box grows so
        that the density of cells (and neighbours per target) stays the same.
    seed : int
        Seed of :func:`numpy.random.default_rng`; the output is a function of
        the arguments.
    deviation : float
        Relative per-pair deviation from the class profile (``"pooled"``).
    n_neighbors : int
        ``k`` of the frame-0 feature kNN candidate edges (``"paper"``).
    mean_neighbors : float
        Expected number of other cells within ``radius`` of a cell, which sets
        the size of the box.
    max_spectral_radius : float in (0, 1)
        Bound on the spectral radius of each target's summed update before the
        frame's renormalisation, ``sum_e A_e / frame_scale[t]``.
    max_norm_ratio : float >= 1
        No cell's feature vector is longer than this many times the frame's
        root-mean-square norm.
    balance : float in [0, 1]
        Pull of each target's output norm toward the frame's median before
        the cap (0: none, 1: every cell the same norm).
    interaction : bool
        Store the ``A_e`` (``interaction``) in the truth.  They are
        ``sum_j W[e,j] c_j r_j^T`` and take ``8 d^2`` bytes per pair.

    Returns
    -------
    ds : xarray.Dataset
        ``features (cell, time, feature)``, ``position (cell, time, space)``
        (NaN where hidden) and ``population (cell)``.
    truth : xarray.Dataset
        ``target_effect``/``source_effect (component, feature)`` (the ``c_j``
        and ``r_j``), ``weights (pair, component)``,
        ``interaction (pair, target_feature, source_feature)``, pair
        coordinates ``target``, ``source``, ``time``, ``session``,
        ``target_population``, ``source_population``, ``interaction_class``
        (``"A<-B"``, ..., ``"self"``), ``is_self``, ``interacting`` (False
        for the paper regime's in-radius non-candidates, whose ``A_e`` is 0),
        ``target_gain``; ``state (cell, time, feature)`` (all simulated
        features, hidden ones included), ``visible (cell, time)``,
        ``free_evolution (cell, time)`` (visible targets without pairs),
        ``frame_scale (frame)``, and for ``"pooled"``
        ``class_weights (group, frame, component)``.  The ``frame`` dimension
        holds the target time labels ``1..T-1``; it is not called ``time``
        because ``time`` is already a pair coordinate, and the class
        coordinate ``group`` is not a pair coordinate for the same reason
        (pairs carry ``interaction_class``).
    """
    # ---- validation -------------------------------------------------------
    if isinstance(n_cells, Integral):
        n_cells = (int(n_cells),)
    n_cells = tuple(n_cells)
    _check("n_cells", len(n_cells) > 0 and all(isinstance(c, Integral) and c > 0
                                                for c in n_cells),
           "a positive int or a non-empty sequence of positive ints", n_cells)
    _check("n_frames", isinstance(n_frames, Integral) and n_frames >= 2,
           "an int >= 2", n_frames)
    _check("n_features", isinstance(n_features, Integral) and n_features >= 1,
           "an int >= 1", n_features)
    _check("n_components", isinstance(n_components, Integral)
           and 1 <= n_components <= n_features ** 2,
           f"an int in [1, n_features**2 = {n_features ** 2}]", n_components)
    _check("regime", regime in _REGIMES, f"one of {_REGIMES}", regime)
    _check("noise", isinstance(noise, Real) and noise >= 0, "a float >= 0", noise)
    _check("hidden_fraction", isinstance(hidden_fraction, Real)
           and 0 <= hidden_fraction < 1, "a float in [0, 1)", hidden_fraction)
    _check("n_dims", n_dims in (2, 3), "2 or 3", n_dims)
    _check("radius", isinstance(radius, Real) and radius > 0, "a float > 0", radius)
    _check("density", isinstance(density, Real) and 0 < density <= 1,
           "a float in (0, 1]", density)
    _check("scale", isinstance(scale, Real) and scale > 0, "a float > 0", scale)
    _check("deviation", isinstance(deviation, Real) and deviation >= 0,
           "a float >= 0", deviation)
    _check("n_neighbors", isinstance(n_neighbors, Integral) and n_neighbors >= 1,
           "an int >= 1", n_neighbors)
    _check("mean_neighbors", isinstance(mean_neighbors, Real) and mean_neighbors > 0,
           "a float > 0", mean_neighbors)
    _check("max_spectral_radius", isinstance(max_spectral_radius, Real)
           and 0 < max_spectral_radius < 1, "a float in (0, 1)", max_spectral_radius)
    _check("max_norm_ratio", isinstance(max_norm_ratio, Real) and max_norm_ratio >= 1,
           "a float >= 1", max_norm_ratio)
    _check("balance", isinstance(balance, Real) and 0 <= balance <= 1,
           "a float in [0, 1]", balance)

    rng = np.random.default_rng(seed)
    T, d, J, s = int(n_frames), int(n_features), int(n_components), int(n_dims)
    radius = float(radius)
    counts = [max(1, int(round(c * scale))) for c in n_cells]
    P = len(counts)
    pop_names = _population_names(P)
    pop = np.repeat(np.arange(P), counts)
    N = pop.size

    # ---- motifs -------------------------------------------------------------
    C, R = _motifs(rng, d, J)                      # (J, d) each, rows unit

    # ---- positions (all frames first) ---------------------------------------
    unit_ball = np.pi if s == 2 else 4.0 / 3.0 * np.pi
    box = radius * (N * unit_ball / mean_neighbors) ** (1.0 / s)
    amp = radius * rng.uniform(0.3, 1.0, size=P)
    omega = 2 * np.pi / T * rng.uniform(1.0, 4.0, size=P)
    home = rng.uniform(0, box, size=(N, s))
    phase = rng.uniform(0, 2 * np.pi, size=(N, s))
    t_axis = np.arange(T, dtype=float)
    arg = omega[pop][:, None, None] * t_axis[None, :, None] + phase[:, None, :]
    wave = np.sin(arg)
    wave[:, :, 1] = np.cos(arg[:, :, 1])
    pos = home[:, None, :] + amp[pop][:, None, None] * wave    # (N, T, s)

    # ---- visibility ---------------------------------------------------------
    visible = rng.random((N, T)) >= hidden_fraction
    visible[:, 0] = True

    # ---- frame 0 features ---------------------------------------------------
    mu = rng.normal(0.0, 1.5, size=(P, d))
    sd = rng.uniform(0.5, 1.0, size=(P, d))
    x0 = mu[pop] + sd[pop] * rng.standard_normal((N, d))
    x0 = x0 - x0.mean(axis=0)
    std0 = x0.std(axis=0)
    x0 = x0 / np.where(std0 > 0, std0, 1.0)
    rms0 = float(np.sqrt(np.mean(x0 ** 2)))

    # ---- interaction classes ------------------------------------------------
    G = P * P + 1
    group_names = [f"{pop_names[a]}<-{pop_names[b]}" for a in range(P) for b in range(P)]
    group_names.append("self")
    self_group = G - 1
    if regime == "pooled":
        profiles = _class_profiles(rng, G, J, T, density)   # (G, T, J)
        class_weights = np.zeros((G, T - 1, J))
    else:
        candidates = _knn_candidates(x0, int(n_neighbors))

    # ---- dynamics -----------------------------------------------------------
    state = np.empty((N, T, d))
    state[:, 0] = x0
    free = np.zeros((N, T), bool)
    frame_scale = np.zeros(T - 1)
    out = {k: [] for k in ("tgt", "src", "time", "W", "grp", "inter", "gain")}
    for t in range(1, T):
        tgt, src = _pairs_for_frame(pos[:, t], pos[:, t - 1], visible[:, t - 1],
                                    radius, include_self)
        has_pair = np.zeros(N, bool)
        has_pair[tgt] = True
        lonely = np.flatnonzero(~has_pair)
        free[lonely, t] = True
        # lonely targets evolve from their own hidden state (not a model pair)
        tgt_all = np.concatenate([tgt, lonely])
        src_all = np.concatenate([src, lonely])
        is_self = tgt_all == src_all
        grp = np.where(is_self, self_group, pop[tgt_all] * P + pop[src_all])
        nE = tgt_all.size
        if regime == "pooled":
            dev = 1.0 + deviation * rng.standard_normal((nE, J))
            W0 = profiles[grp, t] * dev
            inter = np.ones(nE, bool)
        else:
            inter = is_self.copy()
            if candidates.size:
                keys = tgt_all * N + src_all
                at = np.minimum(np.searchsorted(candidates, keys), candidates.size - 1)
                inter |= candidates[at] == keys
            mask = rng.random((nE, J)) < density
            W0 = np.where(mask & inter[:, None], rng.standard_normal((nE, J)), 0.0)
        # unscaled update y_n = C^T H_n with H_n = sum_e W0_e * (R x_k)
        proj = state[:, t - 1] @ R.T                       # (N, J)
        H = np.zeros((N, J))
        np.add.at(H, tgt_all, W0 * proj[src_all])
        a = np.sqrt(np.sum((H @ C) ** 2, axis=1))
        # balance: pull each target's output norm toward the frame's median
        f = np.ones(N)
        if balance > 0 and np.any(a > 0):
            ref = np.median(a[a > 0])
            f[a > 0] = (ref / a[a > 0]) ** balance
        # per-target cap of the spectral radius of sum_e f_n B_e
        wsum = np.zeros((N, J))
        np.add.at(wsum, tgt_all, W0)
        rho = _spectral_radius(wsum, C, R) * f
        big = rho > max_spectral_radius
        f[big] *= max_spectral_radius / rho[big]
        W0 = W0 * f[tgt_all, None]
        H *= f[:, None]
        a = np.sqrt(np.sum((H @ C) ** 2, axis=1))         # |y_n| before scaling
        s_t, clamp = _frame_scale(a, rms0 * np.sqrt(d), max_norm_ratio)
        frame_scale[t - 1] = s_t
        f *= clamp
        W = W0 * (s_t * clamp)[tgt_all, None]
        H = np.zeros((N, J))
        np.add.at(H, tgt_all, W * proj[src_all])
        state[:, t] = H @ C + noise * rng.standard_normal((N, d))
        if regime == "pooled":
            class_weights[:, t - 1] = profiles[:, t] * s_t
        # keep the pairs of visible targets only
        keep = np.flatnonzero(visible[tgt_all, t] & ~free[tgt_all, t])
        out["tgt"].append(tgt_all[keep])
        out["src"].append(src_all[keep])
        out["time"].append(np.full(keep.size, t, np.int64))
        out["W"].append(W[keep])
        out["grp"].append(grp[keep])
        out["inter"].append(inter[keep])
        out["gain"].append(f[tgt_all[keep]])

    tgt = np.concatenate(out["tgt"])
    src = np.concatenate(out["src"])
    ptime = np.concatenate(out["time"])
    W = np.concatenate(out["W"])
    grp = np.concatenate(out["grp"])
    inter = np.concatenate(out["inter"])
    gain = np.concatenate(out["gain"])

    # ---- labelled output ----------------------------------------------------
    feature_names = [f"f{i}" for i in range(d)]
    space_names = ["x", "y", "z"][:s]
    cell_ids = np.arange(N, dtype=np.int64)
    times = np.arange(T, dtype=np.int64)
    pop_labels = np.array(pop_names)[pop]
    feats = np.where(visible[:, :, None], state, np.nan)
    posv = np.where(visible[:, :, None], pos, np.nan)
    attrs = dict(
        generator="licchie.synthetic.make_recording",
        regime=regime, n_cells=list(counts), n_frames=T, n_features=d,
        n_components=J, noise=float(noise), hidden_fraction=float(hidden_fraction),
        n_dims=s, radius=radius, include_self=int(bool(include_self)),
        density=float(density), scale=float(scale), seed=int(seed) if seed is not None else -1,
        deviation=float(deviation), n_neighbors=int(n_neighbors),
        mean_neighbors=float(mean_neighbors), max_spectral_radius=float(max_spectral_radius),
        max_norm_ratio=float(max_norm_ratio), balance=float(balance), box_size=float(box), pair_weight="none",
        population_amplitude=amp.tolist(), population_angular_frequency=omega.tolist(),
    )
    ds = xr.Dataset(
        {
            "features": (("cell", "time", "feature"), feats),
            "position": (("cell", "time", "space"), posv),
            "population": ("cell", pop_labels),
        },
        coords={"cell": cell_ids, "time": times, "feature": feature_names,
                "space": space_names},
        attrs=attrs,
    )

    data_vars = {
        "target_effect": (("component", "feature"), C),
        "source_effect": (("component", "feature"), R),
        "weights": (("pair", "component"), W),
        "state": (("cell", "time", "feature"), state),
        "visible": (("cell", "time"), visible),
        "free_evolution": (("cell", "time"), free & visible),
    }
    if interaction:
        data_vars["interaction"] = (("pair", "target_feature", "source_feature"),
                                    np.einsum("ej,ja,jb->eab", W, C, R))
    data_vars["frame_scale"] = (("frame",), frame_scale)
    if regime == "pooled":
        data_vars["class_weights"] = (("group", "frame", "component"), class_weights)
    truth = xr.Dataset(
        data_vars,
        coords={
            "component": np.arange(J, dtype=np.int64),
            "feature": feature_names,
            "target_feature": feature_names,
            "source_feature": feature_names,
            "cell": cell_ids,
            "time": ("pair", times[ptime]),
            "target": ("pair", cell_ids[tgt]),
            "source": ("pair", cell_ids[src]),
            "session": ("pair", np.full(tgt.size, "0")),
            "target_population": ("pair", pop_labels[tgt]),
            "source_population": ("pair", pop_labels[src]),
            "interaction_class": ("pair", np.array(group_names)[grp]),
            "is_self": ("pair", tgt == src),
            "interacting": ("pair", inter),
            "target_gain": ("pair", gain),
        },
        attrs=attrs,
    )
    truth = truth.assign_coords(frame=("frame", times[1:]))
    if regime == "pooled":
        truth = truth.assign_coords(group=("group", group_names))
    return ds, truth


def _frame_scale(a, m, kappa):
    """Frame factor s and per-target clamps c_n <= 1 of the output norms.

    Target ``n`` ends with norm ``min(s a_n, kappa m)`` (``c_n = min(1,
    kappa m / (s a_n))``) and ``s`` solves ``sum_n min(s a_n, kappa m)^2 =
    N m^2``: the frame's root-mean-square is that of frame 0 and no cell's
    feature vector is longer than ``kappa`` times the frame's root-mean-square
    norm ``m``.  The left side is non-decreasing in ``s``; when it cannot reach
    ``N m^2`` (too few non-zero outputs) every non-zero output is clamped.
    """
    N = a.size
    pos = a > 0
    if not np.any(pos) or m <= 0:
        return 1.0, np.ones(N)
    target = N * m * m
    cap = kappa * m

    def total(s):
        return float(np.sum(np.minimum(s * a, cap) ** 2))

    if total(cap / a[pos].min()) < target:       # all clamped, still short
        s = cap / a[pos].min()
    else:
        lo, hi = 0.0, 1.0
        while total(hi) < target:
            lo, hi = hi, 2.0 * hi
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            if total(mid) < target:
                lo = mid
            else:
                hi = mid
            if hi - lo <= 1e-15 * hi:
                break
        s = hi
    clamp = np.ones(N)
    over = pos & (s * a > cap)
    clamp[over] = cap / (s * a[over])
    return s, clamp
