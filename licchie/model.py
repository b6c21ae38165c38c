"""The LICCHIE estimator: labeled data in, labeled motifs and weights out.

Validation of the parameters, delegation of the fit to :mod:`licchie.fit`
and labelling of its results (:mod:`licchie.labels`); model files are in
:mod:`licchie.modelfile`, the prose summary in :mod:`licchie._summary`, the checks of the
``lambdas`` and ``solver_options`` values in :mod:`licchie.params`.
"""
from __future__ import annotations

import sys
import warnings
from numbers import Integral, Real

import numpy as np
import xarray as xr
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.validation import check_is_fitted

from . import fit as F
from .fit import global_start as FG
from . import labels as L
from . import modelfile
from . import scaling as S
from ._summary import STABILITY_HIGH, STABILITY_LOW, summary_text
from .data import as_recording
from ._setup import Prepared, _progress, _warn_gains, _warn_self_only
from .params import (SOLVER_OPTIONS, Lambdas, reject_bool_counts, resolve_lambdas,
                     resolve_solver_options, seed_sequence)

__all__ = ["LICCHIE", "Lambdas", "Prepared", "resolve_lambdas", "STABILITY_HIGH",
           "STABILITY_LOW", "SOLVER_OPTIONS"]

# Storage of the pair-sized tensors (the ``dtype`` parameter).
_DTYPES = {"float64": np.float64, "float32": np.float32}


class LICCHIE(BaseEstimator):
    """Latent interaction motifs between cells (MODEL.md).

    A target observation's next state is explained by directed, feature-level
    interaction matrices ``A_e`` from the cells near it in the previous frame;
    the ``A_e`` are built from ``n_components`` shared rank-one motifs
    ``c_j r_j^T`` (target effect x source effect) with sparse, pair-varying
    weights ``W[e, j]``.

    Parameters
    ----------
    n_components : int, default 8
        Number of motifs J.
    radius : float, default 10.0
        A source at frame t-1 pairs with a target at frame t when their
        positions are at most ``radius`` apart (position units).
    lambdas : 5-tuple of float or dict, default (10.0, 0.0, 0.0, 0.001, 10.0)
        The objective's weights (low_rank lam1 > 0, smoothness lam2, l1_A
        lam3, l1_W lam4, pooling lam5; :class:`Lambdas`), or a dict with
        some of these names (the others keep their defaults).  ``pooling``
        is the pull of each pair's weights toward its group's profile: 0 is
        the paper's model; > 0 makes motifs identifiable (docs,
        "Identifiability").
    pooling_groups : {"auto", "class", "class_session", "class_time"}, default "auto"
        Groups for pooling: interaction class (target population, source
        population; the self pair its own class), class x session, or class
        x session x time window.  ``"auto"`` fits ``"class_time"`` and fits
        again with ``"class"`` when, at the fitted motifs, one profile per
        class predicts held-out target cells of the same frames better in
        more than half of the frames (5-fold cross-validation over cells,
        ``pooling_cv_``), or when more
        than a tenth of the class x frame profiles cancel
        (``group_weights_["cancellation"]`` above 10: a profile rests on a
        handful of pairs and fits them with large opposite contributions,
        which predicts other frames very badly); ``pooling_groups_`` says
        which was kept (docs/model-choices.md, "Pooling groups").  Compare settings on
        held-out time blocks with :func:`licchie.select.grid_search`.
    pooling_window : int, default 1
        Window length in frames for ``"class_time"`` (and ``"auto"``).
        Frames without a fitted window (held-out frames) use their class's
        nearest training window.
    target_gain : {"auto", True, False}, default "auto"
        With pooling > 0, pool each pair's weights toward ``gamma_t *
        Wbar[g(e)]`` instead of ``Wbar[g(e)]``: every target observation has
        its own gain ``gamma_t`` (fitted; mean 1 over each set of targets
        that share groups, e.g. each frame with class x frame pooling), so an
        interaction type keeps its shape over the motifs while cells differ in
        how strongly they respond (an extension beyond MODEL.md; docs,
        "Choices beyond MODEL.md").  The gains are the ``target_gain``
        coordinate of ``weights_``; predictions with group profiles use
        gain 1, the typical target.  The global search of a pooled fit
        then fits the gains too (docs/global-search.md, "Target gains in
        the search"): 2-4x the fit time, and unbounded gains can inflate
        some pairs' matrices.  The motifs' verdict is then at most
        "medium" (the search judges its minima at one set of gains and can
        miss lower ones).  ``"auto"`` fits without gains, runs the gain
        check (``gain_check_``) and fits again with gains only when the
        check says the data ask for them (local backend, one feature
        space; otherwise it warns); ``target_gain_`` says which was kept.
    pair_weight : {"none", "gaussian", "distance"}, default "none"
        ``g_e``: 1, ``exp(-d^2 / 2h^2)``, or ``d`` (zeroes the self pair).
    bandwidth : float, optional
        ``h`` of the Gaussian pair weight; defaults to ``radius``.
    include_self : bool, default True
        Keep the cell's own previous observation as a pair even beyond
        ``radius``.  With False it is an ordinary pair, kept only within the
        radius.
    n_neighbors : int, default 10
        M, nearest pairs in stacked-state space linked by the smoothness term.
    sigma : float, default 0.3
        Smoothness edge weight ``exp(-sigma * ||s_e - s_e'||)``.
    init : {"auto", "search", "parafac", "groups", "classes"}, default "auto"
        How each start begins.  ``"auto"``: ``"search"`` for pooled fits
        (pooling > 0), else ``"parafac"``.  ``"search"``: the global search
        of the exactly pooled reduced problem, whose best distinct minima
        are polished on the full objective (docs/global-search.md).
        ``"parafac"`` is MODEL.md's: one A-step with
        lam1 = 0, then PARAFAC of the stacked ``A_e`` (random init from the
        start's seed).  ``"groups"``: a least-squares interaction matrix per
        interaction class and time window, their PARAFAC, then alternating
        least squares on the objective with the ``A_e`` eliminated, and one
        A-step.  Starts after the first fit their group matrices on a
        bootstrap resample of the targets, so that their agreement also
        measures how much the motifs depend on the particular cells.
        ``"groups"`` is much better when the motifs are identifiable
        (pooling > 0) and ``lam1`` is not small against the squared norm
        of a target's inputs (docs, "Initialisation").  ``"classes"``: for
        motifs that each belong to few interaction classes; a time-varying
        matrix per class and frame with a nuclear norm on each class's
        target side (few target effects per class), the motifs shared out
        among the classes, a reduced-rank regression per class and a CP per
        class (module :mod:`licchie.fit.classes`; README, "Class-structured
        start").  Bootstrap starts as ``"groups"``.
    n_init : int, default 3
        Starts (with ``"search"``: polished minima of the search); the
        lowest objective is kept.
    max_iter : int, default 100
    tol : float, default 1e-6
        Stop when the relative decrease of the objective over an iteration is
        below ``tol``.
    dtype : {"float64", "float32"}, default "float64"
        Storage of the interaction matrices ``A_e`` (and the other
        pairs x d x d tensors of the fit), which dominate its memory.
        ``"float32"`` halves that memory; sums over pairs, the objective,
        the Gram matrices and the per-target solves stay in float64, and
        the motifs, weights and objective differ from a float64 fit by about
        float32 rounding (docs/performance.md, "float32").  The first
        float32 fit in an environment compiles the float32 kernels.
    solver_options : dict, optional
        Research knobs of the solver (unknown keys are an error):

        ``extrapolate`` (bool, default True)
            End every iteration with a trial step along the iteration's
            change, kept only if it lowers the objective (monotone; docs,
            "Algorithm").
        ``record_steps`` (bool, default False)
            Record the objective after every step (A, components, weights)
            rather than after every iteration.  Each record is one
            evaluation of the objective, about a sixth of an iteration.
        ``init_max_iter`` (int, default 100)
            CP-ALS iterations of the PARAFAC in the ``"parafac"`` start
            (stopped earlier at its relative tolerance 1e-8).  Each costs
            about two passes over the interaction tensor: at 1 M pairs,
            d = 19, J = 10 about 0.8 s, so the default takes longer than a
            short fit's iterations; a smaller value gives a rougher start for
            the alternation to refine (docs/performance.md).
        ``class_restarts`` (int, default 0)
            After the starts, restart the source effects of each interaction
            class's motifs (those whose weights lie mostly in that class)
            this many times at random in the best start, refit their weights
            without pooling, run ``max_iter`` iterations and keep the result
            when the objective is lower (the best start is first run
            ``max_iter`` more iterations, so every comparison is between
            equally long runs).  Costs ``(1 + n_classes * class_restarts) *
            max_iter`` iterations; the trials are in ``class_restarts_``.
            The comparisons come before ``settle_weights``, which can lower
            the objective by more than a restart did.
            Only the best start is restarted, so the stability compares its
            final motifs with the other starts' (README, "Class restarts").
        ``search_evals`` (int, default 36000), ``search_time`` (float, default 300)
            Budget of the global search of pooled fits (``init="auto"``):
            reduced-loss evaluations for all ``n_searches`` (default 3)
            searches together, so a seed reproduces the fit on any machine;
            ``search_time`` seconds cap it with a warning.  A search also
            stops after ``search_patience`` (default 20) moves without
            progress.  Measured trade-off of the budget: docs/global-search.md,
            "Search budget".
        ``polish_screen`` (int, default 10)
            Distinct minima of the search (best reduced loss first) that are
            each polished 20 iterations on the full objective; the
            ``n_init`` lowest are then polished fully (0: the ``n_init``
            lowest reduced losses, as before 0.3).
        ``settle_weights`` (bool, default True)
            End a pooled fit with the weights that minimise the objective at
            the best start's motifs (:meth:`transform`'s computation:
            coordinate descent on the A-eliminated objective, up to
            ``100 * max_iter`` sweeps, where ``lambdas`` smoothness and l1_A
            are 0; else the alternation, up to ``10 * max_iter``
            iterations), kept when the objective falls; its end (or the
            alternation's iterations) is in ``objective_history_`` with
            stage ``"weights at fitted motifs"``.
    random_state : int, RandomState instance or None, default None
        Seeds the starts: an int always gives the same fit; a RandomState
        is drawn from (once per fit).
    n_jobs : int or None
        Numba threads during the fit (restored afterwards); -1 for all.
        With more than one, the pooled search's independent searches
        (``solver_options["n_searches"]``) also run at once on that many
        worker processes (:func:`licchie.fit.search.search`, joblib's
        reusable pool; the fit is the same as with one, bit for bit).
    verbose : int, default 0
        0 is silent; >= 1 shows a progress bar (on stderr).  The plain-text
        report is :meth:`summary`.
    standardize : {None, "population", "population_session"}, default None
        Standardise each feature inside the model by the mean and standard
        deviation of the target's population (and session) over the training
        data (:mod:`licchie.scaling`); kept in ``scaling_`` and the model
        file, applied by ``predict`` and ``transform``.  Motifs and weights
        are then in model (z) units; ``motifs(units="original")`` and
        ``interaction_matrices(units="original")`` convert.  None fits the
        features as given (docs/model-choices.md, "Standardisation").
    backend : {"local", "dask"}, default "local"
        ``"dask"`` fits on a Dask cluster, one partition per session
        (:mod:`licchie.distributed`, docs/distributed.md): the client given to
        :meth:`fit` or the current default ``distributed.Client``.

    Attributes
    ----------
    components_ : xarray.Dataset
        ``target_effect (component, feature)``, ``source_effect (component,
        feature)`` (unit vectors), ``stability (component)`` and
        ``source_excitation (component)``: the norm of each source effect on
        the directions that the source states of its pairs (weighted by
        ``W[e, j]^2``) carry at ``attrs["snr"]`` (10) times the noise
        variance, the noise estimated by the low-rank model's residual
        (``attrs["noise_sd"]``).  Below 1, part of the fitted source effect
        rests on weak or absent observations, however stable; it does not say
        whether that part is right (README, "Source excitation").
    weights_ : xarray.DataArray (pair, component)
        With pair coords ``target``, ``source`` (cell ids), ``time`` (the
        target's frame), ``session``, ``target_population``,
        ``source_population``, ``is_self``, ``pooling_group`` and
        ``target_gain`` (the gain of the pair's target; all 1 unless
        ``target_gain=True``).
    group_weights_ : xarray.DataArray (group, component)
        Group profiles ``Wbar`` (group means of the weights; with
        ``target_gain``, the profile of a target with gain 1).
    stability_ : xarray.DataArray (component)
        Per motif, the mean Hungarian-matched |cosine| with the other starts;
        ``attrs["mean"]`` is the overall score.  NaN with ``n_init == 1``.
    objective_history_ : xarray.DataArray (step, term)
        Every term of the objective (weighted by its lambda) and their total
        after every iteration of the best start (the ``weights`` stage ends an
        iteration; an accepted extrapolation adds an ``extrapolate`` row; with
        ``record_steps`` also after the ``A`` and ``components`` steps); coords
        ``iteration`` and ``stage`` (init, A, components, weights, extrapolate,
        and for ``settle_weights`` a last block ``"weights at fitted motifs"``
        from the iteration ``n_iter_`` on, kept from its first row below the
        alternation's last objective, so the total never rises).
    start_objectives_ : ndarray (n_init,)
        Final objective of every start (of the best one after
        ``class_restarts`` and ``settle_weights``).
    pooling_groups_ : str
        The pooling groups of the fit (``pooling_groups`` with ``"auto"``
        resolved to ``"class_time"`` or ``"class"``); ``predict`` and
        ``transform`` use these.
    pooling_fallback_ : str or None
        With ``"auto"``: why the fit fell back to one profile per class (more
        than a tenth of the class x frame profiles cancel, or class profiles
        predict held-out targets better), else None.
    pooling_cv_ : dict or None
        With ``"auto"``: the cross-validation of
        ``"class_time"`` against ``"class"`` profiles at the class x frame
        fit's motifs (:func:`licchie.fit.grouping_cv`): the held-out squared
        errors summed over all cells (``"class_time"``, ``"class"``) and the
        share of frames in which class x frame had the lower one
        (``"class_time_frames"``; below 0.5, the fit fell back to class
        profiles).  None otherwise.  A fit that ``target_gain="auto"``
        refitted with gains keeps the gain-free fit's groups, cross-validation
        and fallback reason (the cross-validation fits profiles without gains).
    gain_check_ : dict or None
        For a pooled fit without ``target_gain``: the held-out check for
        per-target gains at the fitted motifs (:mod:`licchie.fit.gain_heldout`):
        ``heldout_share`` (the share of the gain-free error that a gain
        fitted per target on its other features removes), ``gain_q10``,
        ``gain_q90`` (quantiles of the fitted gains) and ``suggests_gains``
        (``heldout_share`` >= 0.7: ``target_gain="auto"`` fits again with
        gains, ``target_gain=False`` warns).  After an ``"auto"`` refit,
        the check of the gain-free fit that triggered it.  None otherwise.
    target_gain_ : bool
        Whether the kept fit pools with per-target gains.
    class_restarts_ : pandas.DataFrame or None
        With ``solver_options["class_restarts"] > 0``: one row per trial
        (``class``, ``draw``, ``motifs``, ``objective``, ``accepted``); the first row is the best
        start's continuation.  Not saved in model files.
    scaling_ : xarray.Dataset or None
        With ``standardize``: ``mean`` and ``scale`` (population[, session],
        feature) learned in ``fit``.
    n_iter_, converged_, best_start_, n_pairs_, n_edges_
    """


    _parameter_constraints = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "radius": [Interval(Real, 0, None, closed="neither"), Options(Real, {np.inf})],
        "lambdas": [tuple, list, dict],
        "pooling_groups": [StrOptions(set(F.POOLING_GROUPS) | {"auto"})],
        "pooling_window": [None, Interval(Integral, 1, None, closed="left")],
        "target_gain": ["boolean", StrOptions({"auto"})],
        "pair_weight": [StrOptions(set(F.PAIR_WEIGHTS))],
        "bandwidth": [None, Interval(Real, 0, np.inf, closed="neither")],
        "include_self": ["boolean"],
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "sigma": [Interval(Real, 0, np.inf, closed="left")],
        "init": [StrOptions({"auto", "search", "parafac", "groups", "classes"})],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, np.inf, closed="left")],
        "dtype": [StrOptions(set(_DTYPES))],
        "solver_options": [None, dict],
        "random_state": ["random_state"],
        "n_jobs": [None, Interval(Integral, 1, None, closed="left"), Options(Integral, {-1})],
        "verbose": ["verbose"],
        "standardize": [None, StrOptions(set(S.STANDARDIZE))],
        "backend": [StrOptions({"local", "dask"})],
    }

    def __init__(self, n_components=8, radius=10.0, *, lambdas=tuple(Lambdas()),
                 pooling_groups="auto", pooling_window=1, target_gain="auto",
                 pair_weight="none", bandwidth=None, include_self=True, n_neighbors=10,
                 sigma=0.3, init="auto", n_init=3, max_iter=100, tol=1e-6,
                 dtype="float64", solver_options=None, random_state=None, n_jobs=None,
                 verbose=0, standardize=None, backend="local"):
        self.n_components = n_components
        self.radius = radius
        self.lambdas = lambdas
        self.pooling_groups = pooling_groups
        self.pooling_window = pooling_window
        self.target_gain = target_gain
        self.pair_weight = pair_weight
        self.bandwidth = bandwidth
        self.include_self = include_self
        self.n_neighbors = n_neighbors
        self.sigma = sigma
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.dtype = dtype
        self.solver_options = solver_options
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.standardize = standardize
        self.backend = backend

    # ------------------------------------------------------------------ checks
    def _validate_params(self):
        """scikit-learn's checks of ``_parameter_constraints``, then those of
        the values inside ``lambdas`` and ``solver_options`` and between
        parameters (hand-written messages where the generic one would not
        say what to do)."""
        super()._validate_params()
        reject_bool_counts(self.get_params(deep=False),
                           ("n_components", "pooling_window", "n_neighbors", "n_init",
                            "max_iter", "n_jobs"), "LICCHIE")
        resolve_lambdas(self.lambdas)
        resolve_solver_options(self.solver_options)
        if self.pooling_groups in ("class_time", "auto") and self.pooling_window is None:
            raise ValueError("The 'pooling_window' parameter of LICCHIE must be an int >= 1 "
                             f"when pooling_groups={self.pooling_groups!r} (the window "
                             "length in frames). Got None instead.")

    def _pooling(self):
        """The pooling groups in use: the fitted model's (``pooling_groups_``,
        ``"auto"`` resolved by ``fit``), before a fit the ones ``fit`` tries
        first."""
        for name in ("_fitting_groups", "pooling_groups_"):
            used = getattr(self, name, None)
            if used is not None:
                return used
        return "class_time" if self.pooling_groups == "auto" else self.pooling_groups

    def _gains(self):
        """Whether the fit pools with target gains: the fitted model's
        (``target_gain_``), before a fit what ``fit`` tries first (``"auto"``:
        without)."""
        for name in ("_fitting_gains", "target_gain_"):
            used = getattr(self, name, None)
            if used is not None:
                return bool(used)
        return self.target_gain is True

    def _check_problem(self, rec, pairs):
        d = rec.n_features
        if pairs.n_pairs == 0:
            raise ValueError(L.no_pairs_message(rec.obs, self.radius))
        spaces = F.feature_spaces(rec.obs)  # None: one feature set
        if spaces is not None:
            L.check_spaces(self, rec.obs, spaces.for_pairs(rec.obs, pairs))
        elif self.n_components > d * d:
            raise ValueError(
                f"n_components={self.n_components} is larger than the data can support: "
                f"with {d} features there are at most d*d = {d * d} independent d x d "
                f"motifs. Use n_components <= {d * d} (typically far fewer).")
        if self.n_components > pairs.n_pairs:
            raise ValueError(
                f"n_components={self.n_components} is larger than the number of pairs "
                f"({pairs.n_pairs}); use fewer components or a larger radius.")
        return spaces

    # --------------------------------------------------------------------- fit
    def _prepare(self, X):
        """Pairs, smoothness graph and the fit's :class:`Problem` for ``X``.

        The one place that sets up a fit (``fit`` uses it; so can studies and
        benchmarks that drive :mod:`licchie.fit` themselves).  Validates the
        parameters; touches no attribute of the estimator.

        Returns
        -------
        Prepared
        """
        self._validate_params()
        lam = resolve_lambdas(self.lambdas)
        rec = as_recording(X)
        obs = rec.obs
        pairs = F.build_pairs(obs, self.radius, self.include_self, self.pair_weight,
                              self.bandwidth, self._pooling(), self.pooling_window)
        spaces = self._check_problem(rec, pairs)
        _warn_self_only(rec, pairs, self.radius)
        Xf = obs.features if spaces is None else F.zero_filled(obs.features)
        if pairs.n_pairs - 1 < self.n_neighbors:
            warnings.warn(f"n_neighbors={self.n_neighbors} but only {pairs.n_pairs} pairs: "
                          f"using {pairs.n_pairs - 1}.", UserWarning, stacklevel=3)
        with F.numba_threads(self.n_jobs):
            graph = (F.build_graph(Xf, pairs, self.n_neighbors, self.sigma)
                     if lam.smoothness > 0 else F.empty_graph(pairs.n_pairs))
            if spaces is not None:
                graph = F.within_classes(graph, spaces.for_pairs(obs, pairs).pair_class)
            ridge = F.RIDGE_REL * max(float(np.mean(Xf * Xf)), np.finfo(float).tiny)
            # the fit works with graph neighbours close in memory; its results
            # are mapped back to the pairs' order
            fpairs, fgraph, perm, order = pairs, graph, None, None
            if F.REORDER_PAIRS:
                order = F.locality_order(Xf, pairs)
                fpairs, fgraph, perm = F.reorder(pairs, graph, order)
            problem = F.Problem(Xf, fpairs, fgraph, tuple(lam), ridge, _DTYPES[self.dtype],
                                target_order=order,
                                target_gain=self._gains() and lam.pooling > 0,
                                spaces=None if spaces is None else spaces.for_pairs(obs, fpairs))
        return Prepared(rec, pairs, graph, problem, fpairs, fgraph, order, perm)

    def fit(self, X, y=None, client=None):
        """Fit motifs and weights to a recording.

        Parameters
        ----------
        X : xarray.Dataset, Recording, pandas.DataFrame or list of these
            Dataset in the schema of MODEL.md ("Data"); a list is several
            sessions.
        y : ignored
        client : distributed.Client, optional
            Fit on this Dask cluster (implies ``backend="dask"``).

        Returns
        -------
        self
        """
        self._validate_params()
        # the fit below reads whether it fits gains from here (_gains)
        self._fitting_gains = self.target_gain is True
        # "auto": the gain-free searches, by pooling groups, which a refit with
        # gains takes as its gain search's round 0 instead of searching again
        self._gain_free_searches = {}
        self._verdict = None   # (result, info, init, lambdas) of the last local fit
        try:
            cv, fallback = self._fit_pooling(X, client)
            check = self.gain_check_
            if (self.target_gain == "auto" and check is not None and check["suggests_gains"]
                    and self._gain_refit_blocker(client) is None):
                if self.verbose:
                    print(f"target_gain='auto': per-target gains remove "
                          f"{check['heldout_share']:.0%} of the error (gain check); fitting "
                          "again with target gains", file=sys.stderr)
                self._fitting_gains = True
                # the pooling groups are chosen once, by the gain-free fit: the
                # groups' cross-validation fits profiles without gains, and on
                # a fit with gains it once chose class profiles (owned_gains
                # seed 1, objective 15.9 -> 178.8; docs/global-search.md,
                # "Pooling groups of a refit with gains")
                self._fit_pooling(X, client, chosen=self.pooling_groups_)
                self.gain_check_ = check  # the evidence for the refit
            self.target_gain_ = (self._fitting_gains
                                 and resolve_lambdas(self.lambdas).pooling > 0)
            if self._verdict is not None:   # the local fit's (fit_dask adds its own)
                out = {"components_": self.components_, "stability_": self.stability_}
                with F.numba_threads(self.n_jobs):   # the fit's threads, BLAS at one
                    L.add_verdict(out, *self._verdict)
                self.components_, self.stability_ = out["components_"], out["stability_"]
        finally:
            del self._fitting_gains, self._gain_free_searches, self._verdict
        self.pooling_fallback_ = fallback
        if not self.target_gain_:
            _warn_gains(self.gain_check_, self._gain_refit_blocker(client))
        self.pooling_cv_ = (None if cv is None else
                            {"class_time": float(cv.fine), "class": float(cv.coarse),
                             "class_time_frames": float(cv.fine_share)})
        return self

    def _gain_refit_blocker(self, client):
        """Why a fit with gains is not available for this fit (None: it is):
        gains are fitted locally and for one feature space."""
        if "population" in self.components_.dims:
            return "populations with different feature sets"
        if self.backend == "dask" or client is not None:
            return "backend='dask'"
        return None

    def _fit_pooling(self, X, client, chosen=None):
        """The fit with ``pooling_groups`` resolved ("auto": class x frame, or
        class profiles when those predict held-out cells better or the
        class x frame profiles cancel).  Returns the groups' cross-validation
        and the fallback reason (None: no fallback, or ``chosen`` given).

        ``chosen``: groups that "auto" has already chosen (the refit with
        gains keeps the gain-free fit's): fitted as they are, without the
        groups' check.
        """
        auto = self.pooling_groups == "auto"
        check = auto and chosen is None
        fallback = cv = None
        # the fit below reads the groups it fits from here (_pooling) and
        # whether it checks them (_groups_fixed); a failed fit leaves no
        # fitted attribute behind
        self._fitting_groups = (chosen if chosen is not None
                                else "class_time" if auto else self.pooling_groups)
        self._groups_fixed = not check
        try:
            cv = self._fit_groups(X, client)
            if check and resolve_lambdas(self.lambdas).pooling > 0:
                fallback = _fallback_reason(self.group_weights_["cancellation"].values, cv)
                if fallback is not None:
                    if self.verbose:
                        print(f"pooling_groups='auto': {fallback}; fitting one profile per "
                              "interaction class", file=sys.stderr)
                    self._fitting_groups = "class"
                    self._fit_groups(X, client)
            if auto and resolve_lambdas(self.lambdas).pooling > 0:
                F.warn_cancelling_profiles(self.group_weights_["cancellation"].values,
                                           stacklevel=3)
            self.pooling_groups_ = self._fitting_groups
        finally:
            del self._fitting_groups, self._groups_fixed
        return cv, fallback

    def _fit_groups(self, X, client):
        """One fit with the pooling groups ``self._pooling()``; sets the fitted
        attributes.

        Returns the cross-validated comparison of class x frame with class
        profiles at the fitted motifs (:func:`licchie.fit.grouping_cv`) for
        ``pooling_groups="auto"`` fitting class x frame, else None.
        """
        if self.backend == "dask" or client is not None:
            from .distributed import fit_dask
            fitted = fit_dask(self, X, client)
            cv = fitted.pop("_grouping_cv")
            for name, value in fitted.items():
                setattr(self, name, value)
            return cv
        opts = resolve_solver_options(self.solver_options)
        seq = seed_sequence(self.random_state)
        seeds = seq.generate_state(self.n_init)
        X, scaling = S.fit_scaled_recording(X, self.standardize)  # model units
        with F.numba_threads(self.n_jobs):
            prep = self._prepare(X)
            obs, problem, fpairs = prep.recording.obs, prep.problem, prep.fit_pairs
            init = self._init_method()
            progress = _progress(self.verbose, self.n_init * self.max_iter)
            info = None
            try:
                if init == "search" and problem.spaces is not None:
                    # population feature spaces: multi-start reduced search
                    results, info = F.spaces_search_starts(
                        problem, obs, self.n_components, seq, self.n_init, self.max_iter,
                        self.tol, opts, progress)
                elif init == "search":
                    searches = self._gain_free_searches  # set by fit
                    results, info = FG.search_starts(
                        problem, obs, self.n_components, seq,
                        self.n_init, self.max_iter, self.tol, opts, progress,
                        show_search=self.verbose > 0,
                        gain_free_search=(searches.get(self._pooling())
                                          if problem.target_gain else None))
                    if self.target_gain == "auto" and not problem.target_gain:
                        searches[self._pooling()] = info.result
                else:
                    results = self._local_starts(problem, obs, fpairs, init, seeds, opts,
                                                 progress)
            finally:
                if progress is not None:
                    progress.close()
            trials = None
            if opts["class_restarts"] > 0:
                results, trials = self._restart_classes(prep, results, seeds, opts)
            best = int(np.argmin([r.objective for r in results]))
            cv = None
            if self._checks_groups():
                # judged at the motifs, which the settle step below keeps
                cv = F.grouping_cv(problem.X, problem.pairs, obs, results[best].C,
                                   results[best].R, problem.spaces)
            replaced = cv is not None and cv.prefers_coarse
            if (opts["settle_weights"] and resolve_lambdas(self.lambdas).pooling > 0
                    and not replaced):
                # the weights that minimise the objective at the best start's
                # motifs (the computation transform repeats on these data);
                # not for a fit that "auto" replaces by the class fit anyway
                F.settle_weights(results[best], problem,
                                 F.frozen.ITER_PER_FIT_ITER * self.max_iter, self.tol,
                                 bool(opts["extrapolate"]))
            gcheck = None
            if (resolve_lambdas(self.lambdas).pooling > 0 and not problem.target_gain
                    and not replaced):
                # does the typical target respond with a scale of its profile?
                # at the fitted motifs, on the pairs in either order (not for
                # a fit that "auto" replaces by the class fit)
                gcheck = F.gain_check(problem.X, problem.pairs, results[best].C,
                                      results[best].R, problem.spaces)
        # each pair's target gain (1 without target_gain), in the fit's order
        for r in results:
            r.pair_gain = (np.ones(fpairs.n_pairs) if r.gamma is None
                           else r.gamma[problem.pair_target])
        if prep.perm is not None:  # back to the pairs' order (the starts kept no A)
            inv = F.inverse_permutation(prep.perm)
            for r in results:
                r.W = np.ascontiguousarray(r.W[inv])
                r.pair_gain = r.pair_gain[inv]
        pairs, n_edges = prep.pairs, prep.graph.n_edges
        spaces = (None if problem.spaces is None  # for the pairs in the caller's order
                  else problem.spaces.for_pairs(obs, pairs))
        del prep, problem, fpairs
        best = int(np.argmin([r.objective for r in results]))
        fitted = L.fitted_attributes(obs, pairs, n_edges, results, best, spaces)
        # the verdict is added by fit once this fit is the one that stays
        # (a refit with gains or the class fallback replaces it)
        self._verdict = (results[best], info, init, resolve_lambdas(self.lambdas))
        fitted["class_restarts_"] = trials
        fitted["scaling_"] = scaling
        fitted["gain_check_"] = None if gcheck is None else gcheck.as_dict()
        self._warn_fit(results, fitted, init)
        for name, value in fitted.items():
            setattr(self, name, value)
        return cv

    def _checks_groups(self):
        """Whether this fit cross-validates its pooling groups: ``"auto"``,
        pooled, while it fits class x frame."""
        return (self.pooling_groups == "auto" and self._pooling() == "class_time"
                and resolve_lambdas(self.lambdas).pooling > 0 and not self._groups_fixed)

    def _init_method(self):
        """``init`` with ``"auto"`` resolved: the global search for pooled fits
        (lambda5 > 0), MODEL.md's PARAFAC start for the paper's model."""
        if self.init != "auto":
            return self.init
        return "search" if resolve_lambdas(self.lambdas).pooling > 0 else "parafac"

    def _local_starts(self, problem, obs, fpairs, init, seeds, opts, progress):
        """``n_init`` starts of the alternation from local initialisations."""
        A_init = F.initial_interactions(problem) if init == "parafac" else None
        init_group = (F.init_groups(obs, fpairs) if init == "groups" else
                      F.init_classes(obs, fpairs) if init == "classes" else None)

        def start(s):
            return F.run_start(problem, A_init, self.n_components, int(seeds[s]),
                               self.max_iter, self.tol, progress, start_label=f"start {s + 1}",
                               extrapolate=bool(opts["extrapolate"]), init=init,
                               init_group=init_group, bootstrap=s > 0,
                               record_steps=bool(opts["record_steps"]), keep_A=False,
                               parafac_iter=int(opts["init_max_iter"]))
        return F.side_by_side(start, [(s,) for s in range(self.n_init)], problem)

    def _warn_fit(self, results, fitted, init):
        n_bad = sum(r.n_cd_not_converged for r in results)
        if n_bad:
            warnings.warn(f"{n_bad} coordinate-descent sub-problems hit their iteration "
                          "limit; the objective may be slightly above its block minima.",
                          UserWarning, stacklevel=3)
        if not fitted["converged_"]:
            warnings.warn(f"The best start did not reach tol={self.tol} in max_iter="
                          f"{self.max_iter} iterations; increase max_iter.",
                          UserWarning, stacklevel=3)
        if resolve_lambdas(self.lambdas).pooling > 0 and self.pooling_groups != "auto":
            # with "auto", fit warns once it has chosen the groups
            F.warn_cancelling_profiles(fitted["group_weights_"]["cancellation"].values,
                                       stacklevel=3)
        if self.n_init == 1 and init != "search":
            warnings.warn("n_init=1: the stability diagnostic needs at least 2 starts and "
                          "is NaN. Motifs cannot be judged reproducible; use n_init >= 3.",
                          UserWarning, stacklevel=3)

    def _restart_classes(self, prep, results, seeds, opts):
        """:func:`licchie.fit.class_restarts` on the best start (fit order).

        Returns the starts with the best one replaced, and the trials
        (a DataFrame, ``class_restarts_``).
        """
        import pandas as pd

        fpairs = prep.fit_pairs
        best = int(np.argmin([r.objective for r in results]))
        pair_class, names = F.pair_groups(prep.recording.obs, fpairs.tgt, fpairs.src,
                                          fpairs.is_self, "class")
        n_runs = 1 + len(names) * opts["class_restarts"]
        progress = _progress(self.verbose, n_runs * self.max_iter)
        seed = int(np.random.SeedSequence([int(seeds[best]), 1]).generate_state(1)[0])
        try:
            res, rows = F.class_restarts(
                prep.problem, results[best], pair_class, names, opts["class_restarts"],
                self.max_iter, self.tol, seed, progress,
                log=None, start_label="restarts",
                extrapolate=bool(opts["extrapolate"]),
                record_steps=bool(opts["record_steps"]))
        finally:
            if progress is not None:
                progress.close()
        res.A = None
        results = list(results)
        results[best] = res
        return results, pd.DataFrame(rows)

    # --------------------------------------------------------------- results
    def _check_fitted(self):
        check_is_fitted(self, "components_",
                        msg="This %(name)s instance is not fitted yet. Call 'fit' with a "
                            "recording first (or licchie.load a saved model).")

    @property
    def target_effect_(self):
        """(component, feature); with population feature sets (population,
        component, feature), NaN where a population lacks the feature."""
        self._check_fitted()
        return self.components_["target_effect"]

    @property
    def source_effect_(self):
        self._check_fitted()
        return self.components_["source_effect"]

    def motifs(self, component=None, units="model"):
        """Motif maps ``M_j = c_j r_j^T``.

        Parameters
        ----------
        component : int or list of int, optional
        units : {"model", "original"}, default "model"
            ``"original"`` (with ``standardize``) gives ``(s_p * c_j)(r_j /
            s_q)^T`` per target population p and source population q (and
            session): the map that acts on source features in their own
            units (:mod:`licchie.scaling`).  Without ``standardize`` both are
            the same.

        Returns
        -------
        xarray.DataArray (component, target_feature, source_feature)
            With the motif's stability and source excitation as coordinates:
            never read a motif without them.  In original units with
            ``standardize``: (component, target_population,
            source_population[, session], target_feature, source_feature).
        """
        self._check_fitted()
        if "population" in self.components_.dims:
            da = L.population_motifs(self)
            if self._original_units(units):
                da = S.motifs_in_units(da, self.scaling_)
            return da if component is None else da.sel(component=component)
        C = self.components_["target_effect"].values
        R = self.components_["source_effect"].values
        M = np.einsum("ji,jm->jim", C, R)
        feat = list(self.components_["feature"].values)
        da = xr.DataArray(M, dims=("component", "target_feature", "source_feature"),
                          coords={"component": self.components_["component"].values,
                                  "target_feature": feat, "source_feature": feat,
                                  "stability": ("component", self.stability_.values),
                                  "source_excitation": (
                                      "component",
                                      self.components_["source_excitation"].values)},
                          name="motif")
        if self._original_units(units):
            da = S.motifs_in_units(da, self.scaling_)
        return da if component is None else da.sel(component=component)

    def _original_units(self, units):
        if units not in ("model", "original"):
            raise ValueError(f"units must be 'model' or 'original'; got {units!r}.")
        return units == "original" and getattr(self, "scaling_", None) is not None

    def interaction_matrices(self, pairs=None, units="model"):
        """``A_e = sum_j W[e, j] c_j r_j^T`` for a subset of pairs.

        Parameters
        ----------
        pairs : array of int, boolean mask or slice, optional
            Positions along ``weights_.pair``.  Default: every pair (dense
            n_pairs x d x d: ask for a subset on large problems).
        units : {"model", "original"}, default "model"
            ``"original"`` (with ``standardize``):
            ``diag(s_target) A_e diag(1 / s_source)``, the matrix acting on
            the source's centred features in their own units.

        Returns
        -------
        xarray.DataArray (pair, target_feature, source_feature)
        """
        self._check_fitted()
        Wsel = self.weights_ if pairs is None else self.weights_.isel(pair=pairs)
        if "population" in self.components_.dims:
            return L.population_interactions(self, Wsel)
        C = np.ascontiguousarray(self.components_["target_effect"].values.T)
        R = np.ascontiguousarray(self.components_["source_effect"].values.T)
        B = F.K.lowrank_reconstruct(np.ascontiguousarray(Wsel.values), C, R)
        if self._original_units(units):
            st, ss = S.pair_scales(self.scaling_, Wsel)
            B = B * st[:, :, None] / ss[:, None, :]
        feat = list(self.components_["feature"].values)
        coords = {k: v for k, v in Wsel.coords.items() if "pair" in v.dims}
        return xr.DataArray(B, dims=("pair", "target_feature", "source_feature"),
                            coords={**coords, "target_feature": feat, "source_feature": feat},
                            name="interaction")

    def predict(self, X, weights="auto"):
        """One-step prediction of every target observation.

        Parameters
        ----------
        X : xarray.Dataset, Recording, DataFrame or list
        weights : {"auto", "fitted", "group"}, default "auto"
            ``"fitted"`` uses each pair's fitted weights and is only possible
            on the training data; ``"group"`` uses the group profile
            ``Wbar[g(e)]`` for every pair, as for held-out data (MODEL.md,
            "Evaluation"); ``"auto"`` picks ``"fitted"`` when ``X`` is the
            training data (same observations, checked by fingerprint) and
            ``"group"`` otherwise.

        Returns
        -------
        xarray.DataArray (cell, time, feature) for a Dataset input (NaN where
        there is no prediction: unobserved, first frame, or no pair);
        otherwise a pandas.DataFrame with one row per predicted observation.
        """
        self._check_fitted()
        if weights not in ("auto", "fitted", "group"):
            raise ValueError(f"weights must be 'auto', 'fitted' or 'group'; got {weights!r}.")
        raw = as_recording(X)
        obs = S.scaled_recording(self, raw).obs  # model units (as is without standardize)
        feat = list(self.components_["feature"].values)
        if list(obs.feature_names) != feat:
            raise ValueError(f"The data's features {list(obs.feature_names)} differ from "
                             f"the fitted features {feat}; pass data with the same "
                             "features in the same order.")
        same = L.fingerprint(obs) == self.data_fingerprint_
        if weights == "fitted" and not same:
            raise ValueError("weights='fitted' needs the training data: these observations "
                             "differ from the ones the model was fitted on. Use "
                             "weights='group' (or 'auto') for new or held-out data.")
        pairs = F.build_pairs(obs, self.radius, self.include_self, self.pair_weight,
                              self.bandwidth, self._pooling(), self.pooling_window)
        if same and weights != "group":
            W = np.ascontiguousarray(self.weights_.values)
        else:
            W = L.group_weights_for(self, pairs, obs)
        if "population" in self.components_.dims:
            yhat = L.population_predict(self, obs, pairs, W)
            yhat = S.to_original_targets(self, raw.obs, pairs.tgt_obs, yhat)
            return L.format_prediction(X, obs, pairs, yhat, feat)
        C = np.ascontiguousarray(self.components_["target_effect"].values.T)
        R = np.ascontiguousarray(self.components_["source_effect"].values.T)
        yhat = F.K.predict_lowrank(obs.features, pairs.tgt_ptr, pairs.src, pairs.gain, W,
                                   C, R)
        yhat = S.to_original_targets(self, raw.obs, pairs.tgt_obs, yhat)
        return L.format_prediction(X, obs, pairs, yhat, feat)

    def transform(self, X, profiles="refit", max_iter=None, tol=None):
        """Weights of (new) data with the fitted motifs frozen (transfer).

        Minimises the objective over ``A_e``, ``W`` and the pooling profiles
        with ``C``, ``R`` (and ``scaling_``) fixed; on the training data it
        returns ``weights_`` to the fit's convergence.  ``profiles="frozen"``
        holds the pooling profiles at the training ones.  Details and the
        objective: :func:`licchie.transfer.transform`.

        Parameters
        ----------
        X : xarray.Dataset, Recording, DataFrame or list
            New (or the training) data, with the fitted features, in
            original units.
        profiles : {"refit", "frozen"}, default "refit"
        max_iter : int, optional
            Default ``10 * max_iter``.  With default lambdas the solver is
            coordinate descent (with target gains, at the gains of its
            start), allowed ``10 * max_iter`` sweeps and stopping at ``tol
            / 100`` (:func:`licchie.fit.frozen.descend`); else the
            alternation's iterations.
        tol : float, optional
            Default ``tol``.

        Returns
        -------
        xarray.DataArray (pair, component), labelled like ``weights_``
            attrs ``objective``, ``n_iter`` (sweeps or iterations),
            ``converged``, ``profiles``.
        """
        from .transfer import transform
        return transform(self, X, profiles=profiles, max_iter=max_iter, tol=tol)

    def summary(self):
        """A plain-text report: objective, iterations, stability per motif."""
        self._check_fitted()
        return summary_text(self)

    # ------------------------------------------------------------------- files
    def save(self, path):
        """Write the fitted model to one netCDF4 file, atomically.

        The file is written to a temporary file in the same folder and renamed
        over ``path``, so a failure never leaves a half-written model
        (:mod:`licchie.modelfile`; read it back with :func:`licchie.load`).
        """
        self._check_fitted()
        modelfile.save(self, path)

    def to_dataset(self):
        """The fitted model as one xarray.Dataset (the saved file's content)."""
        self._check_fitted()
        return modelfile.to_dataset(self)


def _fallback_reason(kappa, cv):
    """Why ``pooling_groups="auto"`` drops class x frame profiles, or None.

    ``kappa``: the class x frame fit's profile cancellation; ``cv``: its
    :class:`licchie.fit.GroupingCV` (None: not computed, e.g. on Dask).
    """
    share = F.cancelled_share(kappa)
    if share > F.CANCELLATION_SHARE:
        return f"{share:.0%} of the class x frame profiles cancel"
    if cv is not None and cv.prefers_coarse:
        return (f"class profiles predict held-out cells better in "
                f"{1.0 - cv.fine_share:.0%} of the frames (5-fold cross-validation over cells)")
    return None
