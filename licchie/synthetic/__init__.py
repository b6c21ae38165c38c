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

:data:`SUITE` names regimes that vary what a fitter may silently rely on
(motifs shared by many classes or owned by one, per-target gains or none,
time-varying or constant class profiles, one or several sessions, 2D or 3D,
paper size or 4x); :func:`make_suite_recording` builds one of them from a
seed.  The suite exists to vary the regime: never tune a setting to one of
its members.

Layout: ``recording.py`` (:func:`make_recording`: validation, sessions,
labelled output), ``_simulate.py`` (one session's simulation, plain NumPy),
``suite.py`` (:data:`SUITE`).

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
   the self pair as its own class ``"self"`` (or, with
   ``self_classes="population"``, one self class per target population,
   ``"self A"``, ...) -- has a profile over the motifs.
   ``round(density * G * J)`` of the ``G x J`` (class, motif) entries are
   active (spread so that every class and every motif is used when there are
   enough entries); with ``motif_usage`` every motif is instead active in a
   fixed number of classes (about half: ``"shared"``; one: ``"owned"``).
   Each active entry has a random sign, an amplitude in [0.5, 1.5] and a
   smooth time course (a sinusoid or a Gaussian bump on an offset, never
   below 0.2 of the amplitude; ``profile_time="constant"``: none).  A
   pair's weights are its class profile at its time times ``(1 + deviation
   * N(0, 1))`` entrywise, so zeros stay zero.

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
      is at most ``max_spectral_radius < 1`` (``max_spectral_radius=None``:
      no cap, ``f_n = b_n``);
   c. *frame renormalisation*: one scalar ``s_t`` per frame, so that the
      noiseless new frame ``y_n = s_t c_n f_n u_n`` (all cells, hidden ones
      included) has the root-mean-square of frame 0 (1 after
      standardisation), where ``c_n = min(1, max_norm_ratio * m / (s_t f_n
      |u_n|))`` clamps any cell whose feature vector would be longer than
      ``max_norm_ratio`` times the frame's root-mean-square norm
      ``m = sqrt(d) * rms(frame 0)``; ``s_t`` solves
      ``sum_n min(s_t f_n |u_n|, max_norm_ratio * m)^2 = N m^2`` by
      bisection.  The signal therefore neither diverges nor
      decays into the noise.  (``frame_scaling="constant"``: one ``s`` for
      all frames, the geometric mean of the per-frame ones, and only the
      clamps ``c_n``.)

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
9. **Sessions** (``n_sessions > 1``): the motifs are drawn once; then every
   session runs steps 1-8 with its own cells, in order.  Class profiles are
   drawn in the first session and shared (``session_profiles="shared"``) or
   redrawn on the same active entries in every session (``"per_session"``).
   Frames of different sessions never pair.
"""
from __future__ import annotations

from .recording import make_recording
from .suite import SUITE, make_suite_recording

__all__ = ["make_recording", "SUITE", "make_suite_recording"]
