"""make_recording: validation, the sessions, and the labelled output.

The simulation itself is in ``_simulate.py``; the package docstring
(:mod:`licchie.synthetic`) describes it step by step.
"""
from __future__ import annotations

import string
from numbers import Integral, Real

import numpy as np
import xarray as xr

from . import _simulate as S

__all__ = ["make_recording"]

_REGIMES = ("pooled", "paper")
_USAGES = ("shared", "owned")


def _population_names(n_pop):
    letters = string.ascii_uppercase
    return [letters[p] if p < len(letters) else f"P{p}" for p in range(n_pop)]


def _check(name, ok, constraint, value):
    if not ok:
        raise ValueError(
            f"The {name!r} parameter of make_recording must be {constraint}. "
            f"Got {value!r} instead.")


def _motif_classes(motif_usage, G):
    """Classes per motif of a ``motif_usage`` (None keeps the density rule)."""
    if motif_usage is None:
        return None
    if motif_usage == "shared":
        return min(G, max(2, int(round(G / 2))))
    if motif_usage == "owned":
        return 1
    return int(motif_usage)


def make_recording(n_cells=(25, 10), n_frames=50, n_features=10, n_components=8,
                   regime="pooled", noise=0.01, hidden_fraction=0.0, n_dims=2,
                   radius=10.0, include_self=True, density=0.2, scale=1, seed=0,
                   *, deviation=0.05, n_neighbors=10, mean_neighbors=5.0,
                   max_spectral_radius=0.95, max_norm_ratio=3.0, balance=0.5, interaction=True,
                   motif_usage=None, profile_time="smooth", frame_scaling="per_frame",
                   self_classes="single", n_sessions=1, session_profiles="shared"):
    """Simulate a recording with known motifs (paper §5.1, Table S3).

    The simulation is described step by step in the docstring of
    :mod:`licchie.synthetic`.

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
    max_spectral_radius : float in (0, 1) or None
        Bound on the spectral radius of each target's summed update before the
        frame's renormalisation, ``sum_e A_e / frame_scale[t]``.  None: no
        per-target cap (with ``balance=0`` a target's weights then carry no
        factor of their own except the ``max_norm_ratio`` clamp).
    max_norm_ratio : float >= 1
        No cell's feature vector is longer than this many times the frame's
        root-mean-square norm (``inf``: no clamp).
    balance : float in [0, 1]
        Pull of each target's output norm toward the frame's median before
        the cap (0: none, 1: every cell the same norm).
    interaction : bool
        Store the ``A_e`` (``interaction``) in the truth.  They are
        ``sum_j W[e,j] c_j r_j^T`` and take ``8 d^2`` bytes per pair.
    motif_usage : None, "shared", "owned" or int
        How many interaction classes use each motif (``"pooled"``).  None: the
        ``density`` rule (module docstring, step 6).  ``"shared"``: about half
        of the classes (``max(2, round(G / 2))``), ``"owned"``: exactly one,
        an int ``k``: exactly ``k``.  With a usage set, ``density`` is
        ignored by ``"pooled"``, and every class uses at least one motif when
        ``J * k >= G``.
    profile_time : {"smooth", "constant"}
        Time course of each active (class, motif) entry (``"pooled"``): a
        smooth course (step 6), or its amplitude at every frame.
    frame_scaling : {"per_frame", "constant"}
        ``"per_frame"``: one renormalising scalar per frame (step 7c).
        ``"constant"``: one scalar for the whole session, the geometric mean
        of the per-frame ones of a first pass that replays the same random
        draws; the frames' root-mean-square then drifts instead of being
        exactly that of frame 0, but with ``profile_time="constant"`` a
        class's weights no longer change with time.
    self_classes : {"single", "population"}
        ``"single"``: the self pair is one class ``"self"`` (as the
        estimator's ``pooling_groups="class"``); ``"population"``: one self
        class per target population, ``"self A"``, ``"self B"``, ...
    n_sessions : int
        Independent sessions (recordings) sharing the motifs: each has its
        own cells, motion, visibility, frame-0 features and dynamics, and the
        Dataset gets a ``session`` coordinate on ``cell`` (``"0"``, ``"1"``,
        ...; :func:`licchie.as_recording` then never pairs frames of
        different sessions).  Cell ids run on across sessions.
    session_profiles : {"shared", "per_session"}
        With several sessions (``"pooled"``): one set of class profiles for
        all sessions, or the same active (class, motif) entries with new
        amplitudes and time courses in every session.

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
        ``frame_scale (frame)``, ``motif_used (component)`` (some pair has a
        non-zero weight on the motif; an unused motif cannot be recovered),
        the pair coordinate ``target_clamped`` (the ``max_norm_ratio`` clamp
        bound the target), and for ``"pooled"``
        ``class_weights (group, frame, component)`` and ``class_motifs
        (group, component)`` (the active entries of the class profiles).
        With ``n_sessions > 1``, ``frame_scale`` and ``class_weights`` get a
        leading ``sessions`` dimension and the pair coordinate ``session``
        names each pair's session.  The ``frame`` dimension
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
    _check("max_spectral_radius", max_spectral_radius is None
           or (isinstance(max_spectral_radius, Real) and 0 < max_spectral_radius < 1),
           "None or a float in (0, 1)", max_spectral_radius)
    _check("max_norm_ratio", isinstance(max_norm_ratio, Real) and max_norm_ratio >= 1,
           "a float >= 1", max_norm_ratio)
    _check("balance", isinstance(balance, Real) and 0 <= balance <= 1,
           "a float in [0, 1]", balance)
    _check("motif_usage", motif_usage is None or motif_usage in _USAGES
           or (isinstance(motif_usage, Integral) and not isinstance(motif_usage, bool)
               and motif_usage >= 1),
           f"None, one of {_USAGES} or an int >= 1", motif_usage)
    _check("profile_time", profile_time in ("smooth", "constant"),
           "'smooth' or 'constant'", profile_time)
    _check("frame_scaling", frame_scaling in ("per_frame", "constant"),
           "'per_frame' or 'constant'", frame_scaling)
    _check("self_classes", self_classes in ("single", "population"),
           "'single' or 'population'", self_classes)
    _check("n_sessions", isinstance(n_sessions, Integral) and n_sessions >= 1,
           "an int >= 1", n_sessions)
    _check("session_profiles", session_profiles in ("shared", "per_session"),
           "'shared' or 'per_session'", session_profiles)

    rng = np.random.default_rng(seed)
    T, d, J, s = int(n_frames), int(n_features), int(n_components), int(n_dims)
    radius = float(radius)
    counts = [max(1, int(round(c * scale))) for c in n_cells]
    P = len(counts)
    pop_names = _population_names(P)
    group_names = S.class_names(pop_names, self_classes)
    opts = dict(T=T, d=d, J=J, s=s, radius=radius, include_self=include_self,
                mean_neighbors=mean_neighbors, hidden_fraction=hidden_fraction,
                regime=regime, density=density, deviation=deviation,
                n_neighbors=n_neighbors, max_spectral_radius=max_spectral_radius,
                max_norm_ratio=max_norm_ratio, balance=balance, noise=noise,
                self_classes=self_classes, profile_time=profile_time,
                frame_scaling=frame_scaling,
                motif_usage=_motif_classes(motif_usage, len(group_names)))

    C, R = S.motifs(rng, d, J)                      # (J, d) each, rows unit
    sessions = []
    profiles = None
    for k in range(int(n_sessions)):
        out = S.simulate_session(rng, counts, C, R, opts, profiles)
        if regime == "pooled" and session_profiles == "shared":
            profiles = out["profiles"]
        elif regime == "pooled" and profiles is None:
            # later sessions keep the active entries, with new courses
            opts = dict(opts, active=out["active"])
        sessions.append(out)

    attrs = dict(
        generator="licchie.synthetic.make_recording",
        regime=regime, n_cells=list(counts), n_frames=T, n_features=d,
        n_components=J, noise=float(noise), hidden_fraction=float(hidden_fraction),
        n_dims=s, radius=radius, include_self=int(bool(include_self)),
        density=float(density), scale=float(scale), seed=int(seed) if seed is not None else -1,
        deviation=float(deviation), n_neighbors=int(n_neighbors),
        mean_neighbors=float(mean_neighbors),
        max_spectral_radius=(float(max_spectral_radius) if max_spectral_radius is not None
                             else "none"),
        max_norm_ratio=float(max_norm_ratio), balance=float(balance),
        box_size=float(sessions[0]["box"]), pair_weight="none",
        population_amplitude=sessions[0]["amp"].tolist(),
        population_angular_frequency=sessions[0]["omega"].tolist(),
        motif_usage="density" if motif_usage is None else str(motif_usage),
        profile_time=profile_time, frame_scaling=frame_scaling,
        self_classes=self_classes, n_sessions=int(n_sessions),
        session_profiles=session_profiles,
    )
    return _assemble(sessions, C, R, pop_names, group_names, counts, attrs, interaction)


def _assemble(sessions, C, R, pop_names, group_names, counts, attrs, interaction):
    """The recording and truth Datasets of the simulated sessions."""
    n_sess = len(sessions)
    J, d = C.shape
    T = sessions[0]["state"].shape[1]
    s = sessions[0]["pos"].shape[2]
    N1 = sum(counts)
    pop = np.tile(np.repeat(np.arange(len(counts)), counts), n_sess)
    cell_session = np.repeat(np.arange(n_sess), N1)

    def cat(key, offset=False):
        parts = [o[key] + k * N1 if offset else o[key] for k, o in enumerate(sessions)]
        return np.concatenate(parts) if n_sess > 1 else parts[0]

    tgt, src = cat("tgt", True), cat("src", True)
    ptime, W, grp = cat("time"), cat("W"), cat("grp")
    inter, gain, clamped = cat("inter"), cat("gain"), cat("clamped")
    psession = np.repeat(np.arange(n_sess), [o["tgt"].size for o in sessions])
    state, visible, pos = cat("state"), cat("visible"), cat("pos")
    free = cat("free")
    pooled = attrs["regime"] == "pooled"

    feature_names = [f"f{i}" for i in range(d)]
    space_names = ["x", "y", "z"][:s]
    N = pop.size
    cell_ids = np.arange(N, dtype=np.int64)
    times = np.arange(T, dtype=np.int64)
    pop_labels = np.array(pop_names)[pop]
    session_names = np.array([str(k) for k in range(n_sess)])
    feats = np.where(visible[:, :, None], state, np.nan)
    posv = np.where(visible[:, :, None], pos, np.nan)
    coords = {"cell": cell_ids, "time": times, "feature": feature_names,
              "space": space_names}
    if n_sess > 1:
        coords["session"] = ("cell", session_names[cell_session])
    ds = xr.Dataset(
        {
            "features": (("cell", "time", "feature"), feats),
            "position": (("cell", "time", "space"), posv),
            "population": ("cell", pop_labels),
        },
        coords=coords,
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
    per_session = ("sessions",) if n_sess > 1 else ()

    def stack(key):
        arrs = [o[key] for o in sessions]
        return np.stack(arrs) if n_sess > 1 else arrs[0]

    data_vars["frame_scale"] = (per_session + ("frame",), stack("frame_scale"))
    if pooled:
        data_vars["class_weights"] = (per_session + ("group", "frame", "component"),
                                      stack("class_weights"))
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
            "session": ("pair", session_names[psession]),
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
    if pooled:
        truth = truth.assign_coords(group=("group", group_names))
        truth["class_motifs"] = (("group", "component"), sessions[0]["active"])
    if n_sess > 1:
        truth = truth.assign_coords(sessions=("sessions", session_names))
    # a motif no pair uses has no recovery ceiling: scorers must skip it
    truth["motif_used"] = ("component", (W != 0).any(axis=0))
    truth = truth.assign_coords(target_clamped=("pair", clamped))
    return ds, truth
