"""The simulation of one session of :func:`licchie.synthetic.make_recording`.

Plain NumPy on plain arrays; the steps are numbered as in the package
docstring.  The order in which the random generator is drawn from is part of
the output (a recording is a function of its seed), so any new option draws
only when it is not at its default.
"""
from __future__ import annotations

import numpy as np


def motifs(rng, d, J):
    """Unit target/source effects whose motifs are Frobenius-orthonormal (step 5).

    Returns
    -------
    C, R : ndarray, shape (J, d) each, rows unit
    """
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


def spectral_radius(wsum, C, R):
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


def pairs_for_frame(pos_t, pos_prev, visible_prev, radius, include_self, chunk=2048):
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


def knn_candidates(x0, k):
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


def active_entries(rng, G, J, density, motif_usage=None):
    """Which (class, motif) entries of the pooled profiles are non-zero.

    ``motif_usage=None``: ``round(density * G * J)`` entries, spread so that
    every class and every motif is used when there are enough of them.
    An int ``k``: every motif is used by exactly ``min(k, G)`` classes, and
    every class by at least one motif when ``J * k >= G``.

    Returns
    -------
    ndarray, shape (G, J), bool
    """
    active = np.zeros((G, J), bool)
    if motif_usage is None:
        n_active = int(round(density * G * J))
        n_active = min(max(n_active, 1), G * J)
        m = max(G, J)
        if n_active >= m:
            gp, jp = rng.permutation(G), rng.permutation(J)
            for i in range(m):
                active[gp[i % G], jp[i % J]] = True
        rest = np.flatnonzero(~active.ravel())
        need = n_active - int(active.sum())
        if need > 0:
            active.ravel()[rng.choice(rest, size=need, replace=False)] = True
        return active
    k = min(int(motif_usage), G)
    gp, jp = rng.permutation(G), rng.permutation(J)
    if J * k >= G:
        # cover every class first, each motif taking at most ceil(G / J) <= k
        for i in range(G):
            active[gp[i], jp[i % J]] = True
    for j in range(J):
        need = k - int(active[:, j].sum())
        if need > 0:
            free = np.flatnonzero(~active[:, j])
            active[rng.choice(free, size=need, replace=False), j] = True
    return active


def class_courses(rng, active, n_frames, profile_time="smooth"):
    """(class, time, motif) weight profiles on the active entries; index t = frame.

    Each active entry has a random sign and an amplitude in [0.5, 1.5];
    ``"smooth"`` multiplies it by a time course (a sinusoid or a Gaussian
    bump on an offset, never below 0.2), ``"constant"`` does not.
    """
    G, J = active.shape
    t = np.arange(n_frames, dtype=float)
    prof = np.zeros((G, n_frames, J))
    for g, j in zip(*np.nonzero(active)):
        amp = rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 1.5)
        if profile_time == "constant":
            prof[g, :, j] = amp
            continue
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


def frame_scale(a, m, kappa, fixed=None):
    """Frame factor s and per-target clamps c_n <= 1 of the output norms (step 7c).

    Target ``n`` ends with norm ``min(s a_n, kappa m)`` (``c_n = min(1,
    kappa m / (s a_n))``) and ``s`` solves ``sum_n min(s a_n, kappa m)^2 =
    N m^2``: the frame's root-mean-square is that of frame 0 and no cell's
    feature vector is longer than ``kappa`` times the frame's root-mean-square
    norm ``m``.  The left side is non-decreasing in ``s``; when it cannot reach
    ``N m^2`` (too few non-zero outputs) every non-zero output is clamped.
    ``fixed`` imposes ``s`` (only the clamps are computed).
    """
    N = a.size
    pos = a > 0
    if fixed is not None:
        s = float(fixed)
    elif not np.any(pos) or m <= 0:
        return 1.0, np.ones(N)
    else:
        s = _solve_scale(a, pos, N * m * m, kappa * m)
    clamp = np.ones(N)
    cap = kappa * m
    over = pos & (s * a > cap)
    clamp[over] = cap / (s * a[over])
    return s, clamp


def _solve_scale(a, pos, target, cap):
    def total(s):
        return float(np.sum(np.minimum(s * a, cap) ** 2))

    if total(cap / a[pos].min()) < target:       # all clamped, still short
        return cap / a[pos].min()
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
    return hi


def class_names(pop_names, self_classes):
    """Interaction class names: ``"A<-B"`` (target A, source B), then the self class(es)."""
    P = len(pop_names)
    names = [f"{pop_names[a]}<-{pop_names[b]}" for a in range(P) for b in range(P)]
    if self_classes == "population":
        return names + [f"self {p}" for p in pop_names]
    return names + ["self"]


def simulate_session(rng, counts, C, R, opts, profiles=None):
    """Simulate one session (steps 1-8 of the package docstring).

    Parameters
    ----------
    rng : numpy.random.Generator
    counts : list of int
        Cells per population.
    C, R : ndarray, shape (J, d)
        Unit target and source effects of the motifs.
    opts : dict
        The validated keyword arguments of ``make_recording`` (``T``, ``d``,
        ``J``, ``s``, ``radius``, ...; see ``recording.py``).
    profiles : ndarray, shape (G, T, J), optional
        Class profiles shared with an earlier session (``"pooled"``); drawn
        here when None, on the active entries ``opts["active"]`` (G, J) when
        given.

    Returns
    -------
    dict of ndarrays: positions ``pos (N, T, s)``, ``visible (N, T)``,
    ``state (N, T, d)``, ``free (N, T)``, ``frame_scale (T-1,)`` and the
    pairs of visible targets (``tgt``, ``src``, ``time``, ``W (E, J)``,
    ``grp``, ``inter``, ``gain``, ``clamped``), plus ``profiles``,
    ``active (G, J)`` and ``class_weights (G, T-1, J)`` for ``"pooled"``, and ``box``, ``amp``,
    ``omega`` of the motion.
    """
    o = opts
    T, d, J, s = o["T"], o["d"], o["J"], o["s"]
    radius = o["radius"]
    P = len(counts)
    pop = np.repeat(np.arange(P), counts)
    N = pop.size

    # ---- positions (all frames first) ---------------------------------------
    unit_ball = np.pi if s == 2 else 4.0 / 3.0 * np.pi
    box = radius * (N * unit_ball / o["mean_neighbors"]) ** (1.0 / s)
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
    visible = rng.random((N, T)) >= o["hidden_fraction"]
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
    pooled = o["regime"] == "pooled"
    per_population_self = o["self_classes"] == "population"
    G = P * P + (P if per_population_self else 1)
    candidates = None
    if pooled:
        if profiles is None:
            active = o.get("active")
            if active is None:
                active = active_entries(rng, G, J, o["density"], o["motif_usage"])
            profiles = class_courses(rng, active, T, o["profile_time"])   # (G, T, J)
    else:
        candidates = knn_candidates(x0, int(o["n_neighbors"]))

    def dynamics(fixed_scale):
        return _dynamics(rng, o, pos, visible, x0, rms0, pop, G, profiles, candidates,
                         C, R, fixed_scale)

    if o["frame_scaling"] == "constant":
        # one scale for all frames: the geometric mean of the per-frame ones,
        # replaying the same random draws
        saved = rng.bit_generator.state
        first = dynamics(None)
        rng.bit_generator.state = saved
        out = dynamics(float(np.exp(np.mean(np.log(first["frame_scale"])))))
    else:
        out = dynamics(None)
    out.update(pos=pos, visible=visible, box=box, amp=amp, omega=omega)
    if pooled:
        out["profiles"] = profiles
        out["active"] = (profiles != 0).any(axis=1)
    return out


def _dynamics(rng, o, pos, visible, x0, rms0, pop, G, profiles, candidates, C, R,
              fixed_scale):
    """Steps 3, 4, 6b-8: pairs, weights, scaling and features, frame by frame."""
    T, d, J = o["T"], o["d"], o["J"]
    N, P = pop.size, int(pop.max()) + 1 if pop.size else 0
    pooled = profiles is not None
    self_group = np.full(N, P * P, np.int64)
    if o["self_classes"] == "population":
        self_group = P * P + pop
    balance, rho_cap = o["balance"], o["max_spectral_radius"]
    state = np.empty((N, T, d))
    state[:, 0] = x0
    free = np.zeros((N, T), bool)
    scales = np.zeros(T - 1)
    class_weights = np.zeros((G, T - 1, J)) if pooled else None
    out = {k: [] for k in ("tgt", "src", "time", "W", "grp", "inter", "gain", "clamped")}
    for t in range(1, T):
        tgt, src = pairs_for_frame(pos[:, t], pos[:, t - 1], visible[:, t - 1],
                                   o["radius"], o["include_self"])
        has_pair = np.zeros(N, bool)
        has_pair[tgt] = True
        lonely = np.flatnonzero(~has_pair)
        free[lonely, t] = True
        # lonely targets evolve from their own hidden state (not a model pair)
        tgt_all = np.concatenate([tgt, lonely])
        src_all = np.concatenate([src, lonely])
        is_self = tgt_all == src_all
        grp = np.where(is_self, self_group[tgt_all], pop[tgt_all] * P + pop[src_all])
        nE = tgt_all.size
        if pooled:
            dev = 1.0 + o["deviation"] * rng.standard_normal((nE, J))
            W0 = profiles[grp, t] * dev
            inter = np.ones(nE, bool)
        else:
            inter = is_self.copy()
            if candidates.size:
                keys = tgt_all * N + src_all
                at = np.minimum(np.searchsorted(candidates, keys), candidates.size - 1)
                inter |= candidates[at] == keys
            mask = rng.random((nE, J)) < o["density"]
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
        if rho_cap is not None:
            # per-target cap of the spectral radius of sum_e f_n B_e
            wsum = np.zeros((N, J))
            np.add.at(wsum, tgt_all, W0)
            rho = spectral_radius(wsum, C, R) * f
            big = rho > rho_cap
            f[big] *= rho_cap / rho[big]
            W0 = W0 * f[tgt_all, None]
            H *= f[:, None]
        elif balance > 0:
            W0 = W0 * f[tgt_all, None]
            H *= f[:, None]
        a = np.sqrt(np.sum((H @ C) ** 2, axis=1))         # |y_n| before scaling
        s_t, clamp = frame_scale(a, rms0 * np.sqrt(d), o["max_norm_ratio"], fixed_scale)
        scales[t - 1] = s_t
        f *= clamp
        W = W0 * (s_t * clamp)[tgt_all, None]
        H = np.zeros((N, J))
        np.add.at(H, tgt_all, W * proj[src_all])
        state[:, t] = H @ C + o["noise"] * rng.standard_normal((N, d))
        if pooled:
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
        out["clamped"].append(clamp[tgt_all[keep]] < 1)
    res = {k: np.concatenate(v) for k, v in out.items()}
    res.update(state=state, free=free, frame_scale=scales, class_weights=class_weights)
    return res
