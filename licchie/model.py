"""The LICCHIE estimator: labeled data in, labeled motifs and weights out."""
from __future__ import annotations

import json
import numbers
import os
import tempfile
import warnings

import numpy as np
import xarray as xr
from sklearn.base import BaseEstimator

from . import fit as F
from .data import as_recording

__all__ = ["LICCHIE", "load", "STABILITY_HIGH", "STABILITY_LOW"]

# Storage of the pair-sized tensors (the ``dtype`` parameter).
_DTYPES = {"float64": np.float64, "float32": np.float32}

# Reading of the stability diagnostic (docs: "Reading the stability number").
STABILITY_HIGH = 0.9
STABILITY_LOW = 0.7
# source excitation: variance ratio over the noise that counts as excited
# (about 3x the noise in amplitude), and the share below which summary warns
EXCITATION_SNR = 10.0
EXCITATION_LOW = 0.9


def _param_error(name, constraint, value):
    return ValueError(f"The {name!r} parameter of LICCHIE must be {constraint}. "
                      f"Got {value!r} instead.")


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
    n_neighbors : int, default 10
        M, nearest pairs in stacked-state space linked by the smoothness term.
    sigma : float, default 0.3
        Smoothness edge weight ``exp(-sigma * ||s_e - s_e'||)``.
    lambdas : tuple of 4 floats, default (1.0, 0.1, 0.0, 0.01)
        (low rank lam1 > 0, smoothness lam2, L1 on A lam3, L1 on W lam4).
    pooling : float, default 0.0
        lam5, pull of each pair's weights toward its group's profile.  0 is
        the paper's model; > 0 makes motifs identifiable (docs,
        "Identifiability").
    pooling_groups : {"class", "class_time"}, default "class"
        Groups for pooling: interaction class (target population, source
        population; the self pair its own class), or class x time window.
    pooling_window : int, optional
        Window length in frames for ``"class_time"``.
    target_gain : bool, default False
        With ``pooling > 0``, pool each pair's weights toward ``gamma_t *
        Wbar[g(e)]`` instead of ``Wbar[g(e)]``: every target observation has
        its own gain ``gamma_t`` (fitted; mean 1 over each set of targets
        that share groups, e.g. each frame with class x frame pooling), so an
        interaction type keeps its shape over the motifs while cells differ in
        how strongly they respond (an extension beyond MODEL.md; docs,
        "Choices beyond MODEL.md").  The gains are the ``target_gain``
        coordinate of ``weights_``; predictions with group profiles use
        gain 1, the typical target.
    pair_weight : {"none", "gaussian", "distance"}, default "none"
        ``g_e``: 1, ``exp(-d^2 / 2h^2)``, or ``d`` (zeroes the self pair).
    bandwidth : float, optional
        ``h`` of the Gaussian pair weight; defaults to ``radius``.
    include_self : bool, default True
        Keep the cell's own previous observation as a pair even beyond
        ``radius``.  With False it is an ordinary pair, kept only within the
        radius.
    n_init : int, default 5
        Starts (PARAFAC random initialisations); the lowest objective is kept
        and the agreement between starts is the stability diagnostic.
    max_iter : int, default 50
    tol : float, default 1e-6
        Stop when the relative decrease of the objective over an iteration is
        below ``tol``.
    random_state : int or None
    n_jobs : int or None
        Numba threads during the fit (restored afterwards); -1 for all.
    verbose : int, default 1
        1 shows a progress bar, 0 is silent.
    extrapolate : bool, default True
        End every iteration with a trial step along the iteration's change,
        kept only if it lowers the objective (monotone; docs, "Algorithm").
    init : {"parafac", "groups", "classes"}, default "parafac"
        How each start begins.  ``"parafac"`` is MODEL.md's: one A-step with
        lam1 = 0, then PARAFAC of the stacked ``A_e`` (random init from the
        start's seed).  ``"groups"``: a least-squares interaction matrix per
        interaction class and time window, their PARAFAC, then alternating
        least squares on the objective with the ``A_e`` eliminated, and one
        A-step.  Starts after the first fit their group matrices on a
        bootstrap resample of the targets, so that their agreement also
        measures how much the motifs depend on the particular cells.
        ``"groups"`` is much better when the motifs are identifiable
        (``pooling > 0``) and ``lam1`` is not small against the squared norm
        of a target's inputs (docs, "Initialisation").  ``"classes"``: for
        motifs that each belong to few interaction classes; a time-varying
        matrix per class and frame with a nuclear norm on each class's
        target side (few target effects per class), the motifs shared out
        among the classes, a reduced-rank regression per class and a CP per
        class (module :mod:`licchie.fit.classes`; README, "Class-structured
        start").  Bootstrap starts as ``"groups"``.
    class_restarts : int, default 0
        After the starts, restart the source effects of each interaction
        class's motifs (those whose weights lie mostly in that class) this
        many times at random in the best start, refit their weights without
        pooling, run ``max_iter`` iterations and keep the result when the
        objective is lower (the best start is first run ``max_iter`` more
        iterations, so every comparison is between equally long runs).
        Costs ``(1 + n_classes * class_restarts) * max_iter`` iterations; the
        trials are in ``class_restarts_``.  Only the best start is restarted,
        so the stability compares its final motifs with the other starts'
        (README, "Class restarts").
    init_max_iter : int, default 100
        CP-ALS iterations of the PARAFAC in the ``"parafac"`` start (stopped
        earlier at its relative tolerance 1e-8).  Each costs about two passes
        over the interaction tensor: at 1 M pairs, d = 19, J = 10 about 0.8 s,
        so the default takes longer than a short fit's iterations; a smaller
        value gives a rougher start for the alternation to refine
        (docs/performance.md).
    record_steps : bool, default False
        Record the objective after every step (A, components, weights) rather
        than after every iteration.  Each record is one evaluation of the
        objective, about a sixth of an iteration's time.
    dtype : {"float64", "float32"}, default "float64"
        Storage of the interaction matrices ``A_e`` (and the other
        pairs x d x d tensors of the fit), which dominate its memory.
        ``"float32"`` halves that memory; sums over pairs, the objective,
        the Gram matrices and the per-target solves stay in float64, and
        the motifs, weights and objective differ from a float64 fit by about
        float32 rounding (docs/performance.md, "float32").  The first
        float32 fit in an environment compiles the float32 kernels.

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
        ``iteration`` and ``stage`` (init, A, components, weights, extrapolate).
    start_objectives_ : ndarray (n_init,)
        Final objective of every start (of the best one after
        ``class_restarts``).
    class_restarts_ : pandas.DataFrame or None
        With ``class_restarts > 0``: one row per trial (``class``, ``draw``,
        ``motifs``, ``objective``, ``accepted``); the first row is the best
        start's continuation.  Not saved in model files.
    n_iter_, converged_, best_start_, n_pairs_, n_edges_
    """

    def __init__(self, n_components=8, radius=10.0, n_neighbors=10, sigma=0.3,
                 lambdas=(1.0, 0.1, 0.0, 0.01), pooling=0.0, pooling_groups="class",
                 pooling_window=None, target_gain=False, pair_weight="none",
                 bandwidth=None, include_self=True, n_init=5, max_iter=50, tol=1e-6, random_state=None,
                 n_jobs=None, verbose=1, extrapolate=True, init="parafac",
                 record_steps=False, dtype="float64", init_max_iter=100, class_restarts=0):
        self.n_components = n_components
        self.radius = radius
        self.n_neighbors = n_neighbors
        self.sigma = sigma
        self.lambdas = lambdas
        self.pooling = pooling
        self.pooling_groups = pooling_groups
        self.pooling_window = pooling_window
        self.target_gain = target_gain
        self.pair_weight = pair_weight
        self.bandwidth = bandwidth
        self.include_self = include_self
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.extrapolate = extrapolate
        self.init = init
        self.record_steps = record_steps
        self.init_max_iter = init_max_iter
        self.dtype = dtype
        self.class_restarts = class_restarts

    # ------------------------------------------------------------------ checks
    def _validate_params(self):
        def integer(name, lo):
            v = getattr(self, name)
            if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < lo:
                raise _param_error(name, f"an int >= {lo}", v)

        def real(name, lo, strict=False, allow_inf=False):
            v = getattr(self, name)
            ok = isinstance(v, numbers.Real) and not isinstance(v, bool) and not np.isnan(v)
            ok = ok and (v > lo if strict else v >= lo) and (allow_inf or np.isfinite(v))
            if not ok:
                rel = ">" if strict else ">="
                raise _param_error(name, f"a {'' if allow_inf else 'finite '}number {rel} {lo}", v)

        integer("n_components", 1)
        integer("n_neighbors", 1)
        integer("n_init", 1)
        integer("max_iter", 1)
        integer("init_max_iter", 1)
        real("radius", 0, strict=True, allow_inf=True)
        real("sigma", 0)
        real("pooling", 0)
        real("tol", 0)
        lam = self.lambdas
        if (not hasattr(lam, "__len__") or len(lam) != 4
                or not all(isinstance(v, numbers.Real) and np.isfinite(v) and v >= 0
                           for v in lam)):
            raise _param_error("lambdas", "4 finite numbers >= 0 (low rank, smoothness, "
                               "L1 on A, L1 on W)", lam)
        if lam[0] <= 0:
            raise _param_error("lambdas", "a tuple whose first entry (lam1, the low-rank "
                               "term) is > 0: with lam1 = 0 the motifs are decoupled from "
                               "the interaction matrices and nothing is learned; use e.g. "
                               "lambdas=(1.0, 0.1, 0.0, 0.01)", lam)
        if self.pair_weight not in F.PAIR_WEIGHTS:
            raise _param_error("pair_weight", f"one of {sorted(F.PAIR_WEIGHTS)}",
                               self.pair_weight)
        if self.bandwidth is not None:
            real("bandwidth", 0, strict=True)
        if self.pooling_groups not in ("class", "class_time"):
            raise _param_error("pooling_groups", "'class' or 'class_time'",
                               self.pooling_groups)
        if self.pooling_groups == "class_time":
            w = self.pooling_window
            if not isinstance(w, numbers.Integral) or w < 1:
                raise _param_error("pooling_window", "an int >= 1 when pooling_groups="
                                   "'class_time'", w)
        if not isinstance(self.target_gain, (bool, np.bool_)):
            raise _param_error("target_gain", "True or False", self.target_gain)
        if self.init not in ("parafac", "groups", "classes"):
            raise _param_error("init", "'parafac', 'groups' or 'classes'", self.init)
        integer("class_restarts", 0)
        if not (isinstance(self.dtype, str) and self.dtype in _DTYPES):
            raise _param_error("dtype", "'float64' or 'float32' (a string)", self.dtype)
        if self.n_jobs is not None and (not isinstance(self.n_jobs, numbers.Integral)
                                        or (self.n_jobs < 1 and self.n_jobs != -1)):
            raise _param_error("n_jobs", "None, -1 or an int >= 1", self.n_jobs)

    def _check_problem(self, rec, pairs):
        d = rec.n_features
        if pairs.n_pairs == 0:
            raise ValueError(_no_pairs_message(rec.obs, self.radius))
        if self.n_components > d * d:
            raise ValueError(
                f"n_components={self.n_components} is larger than the data can support: "
                f"with {d} features there are at most d*d = {d * d} independent d x d "
                f"motifs. Use n_components <= {d * d} (typically far fewer).")
        if self.n_components > pairs.n_pairs:
            raise ValueError(
                f"n_components={self.n_components} is larger than the number of pairs "
                f"({pairs.n_pairs}); use fewer components or a larger radius.")

    # --------------------------------------------------------------------- fit
    def fit(self, X, y=None):
        """Fit motifs and weights to a recording.

        Parameters
        ----------
        X : xarray.Dataset, Recording, pandas.DataFrame or list of these
            Dataset in the schema of MODEL.md ("Data"); a list is several
            sessions.
        y : ignored

        Returns
        -------
        self
        """
        self._validate_params()
        rec = as_recording(X)
        obs = rec.obs
        pairs = F.build_pairs(obs, self.radius, self.include_self, self.pair_weight,
                              self.bandwidth, self.pooling_groups, self.pooling_window)
        self._check_problem(rec, pairs)
        Xf = obs.features
        if not np.all(np.isfinite(Xf)):
            raise NotImplementedError(
                "Some observations have NaN features (populations with different "
                "feature sets, MODEL.md 'Populations'); this is not supported yet.")
        if pairs.n_pairs - 1 < self.n_neighbors:
            warnings.warn(f"n_neighbors={self.n_neighbors} but only {pairs.n_pairs} pairs: "
                          f"using {pairs.n_pairs - 1}.", UserWarning, stacklevel=2)
        lam = tuple(float(v) for v in self.lambdas) + (float(self.pooling),)
        seeds = np.random.SeedSequence(self.random_state).generate_state(self.n_init)
        with F.numba_threads(self.n_jobs):
            graph = F.build_graph(Xf, pairs, self.n_neighbors, self.sigma)
            ridge = F.RIDGE_REL * max(float(np.mean(Xf * Xf)), np.finfo(float).tiny)
            # the fit works with graph neighbours close in memory; the results
            # are mapped back to the pairs' order below
            fpairs, fgraph, perm, order = pairs, graph, None, None
            if F.REORDER_PAIRS:
                order = F.locality_order(Xf, pairs)
                fpairs, fgraph, perm = F.reorder(pairs, graph, order)
            problem = F.Problem(Xf, fpairs, fgraph, lam, ridge, _DTYPES[self.dtype],
                                target_order=order,
                                target_gain=bool(self.target_gain) and lam[4] > 0)
            A_init = F.initial_interactions(problem)
            init_group = (F.init_groups(obs, fpairs) if self.init == "groups" else
                          F.init_classes(obs, fpairs) if self.init == "classes" else None)
            progress = _progress(self.verbose, self.n_init * self.max_iter)
            results = []
            try:
                for s in range(self.n_init):
                    results.append(F.run_start(problem, A_init, self.n_components,
                                               int(seeds[s]), self.max_iter, self.tol,
                                               progress, start_label=f"start {s + 1}",
                                               extrapolate=bool(self.extrapolate),
                                               init=self.init, init_group=init_group,
                                               bootstrap=s > 0,
                                               record_steps=bool(self.record_steps),
                                               keep_A=False,
                                               parafac_iter=int(self.init_max_iter)))
            finally:
                if progress is not None:
                    progress.close()
            self.class_restarts_ = None
            if self.class_restarts > 0:
                results = self._restart_classes(problem, obs, fpairs, results, seeds)
        # each pair's target gain (1 without target_gain), in the fit's order
        for r in results:
            r.pair_gain = (np.ones(fpairs.n_pairs) if r.gamma is None
                           else r.gamma[problem.pair_target])
        if perm is not None:  # back to the pairs' order (the starts kept no A)
            inv = F.inverse_permutation(perm)
            for r in results:
                r.W = np.ascontiguousarray(r.W[inv])
                r.pair_gain = r.pair_gain[inv]
        del problem, fpairs, fgraph, A_init
        finals = np.array([r.objective for r in results])
        best = int(np.argmin(finals))
        self._set_results(rec, pairs, graph, results, best)
        n_bad = sum(r.n_cd_not_converged for r in results)
        if n_bad:
            warnings.warn(f"{n_bad} coordinate-descent sub-problems hit their iteration "
                          "limit; the objective may be slightly above its block minima.",
                          UserWarning, stacklevel=2)
        if not self.converged_:
            warnings.warn(f"The best start did not reach tol={self.tol} in max_iter="
                          f"{self.max_iter} iterations; increase max_iter.",
                          UserWarning, stacklevel=2)
        if self.n_init == 1:
            warnings.warn("n_init=1: the stability diagnostic needs at least 2 starts and "
                          "is NaN. Motifs cannot be judged reproducible; use n_init >= 3.",
                          UserWarning, stacklevel=2)
        if self.verbose:
            print(self.summary())
        return self

    def _restart_classes(self, problem, obs, fpairs, results, seeds):
        """:func:`licchie.fit.class_restarts` on the best start (fit order)."""
        import pandas as pd

        best = int(np.argmin([r.objective for r in results]))
        pair_class, names = F.pair_groups(obs, fpairs.tgt, fpairs.src, fpairs.is_self,
                                          "class")
        n_runs = 1 + len(names) * self.class_restarts
        progress = _progress(self.verbose, n_runs * self.max_iter)
        seed = int(np.random.SeedSequence([int(seeds[best]), 1]).generate_state(1)[0])
        try:
            res, rows = F.class_restarts(
                problem, results[best], pair_class, names, self.class_restarts,
                self.max_iter, self.tol, seed, progress,
                log=None, start_label="restarts",
                extrapolate=bool(self.extrapolate), record_steps=bool(self.record_steps))
        finally:
            if progress is not None:
                progress.close()
        res.A = None
        results = list(results)
        results[best] = res
        self.class_restarts_ = pd.DataFrame(rows)
        return results

    def _set_results(self, rec, pairs, graph, results, best):
        obs = rec.obs
        res = results[best]
        J = self.n_components
        comp = np.arange(J)
        feat = list(obs.feature_names)
        stab_runs = F.stability(results, best)
        stab = stab_runs.mean(axis=1) if stab_runs.shape[1] else np.full(J, np.nan)
        self.stability_ = xr.DataArray(stab, dims="component", coords={"component": comp},
                                       name="stability",
                                       attrs={"mean": float(np.mean(stab)),
                                              "n_starts": len(results)})
        self.stability_runs_ = xr.DataArray(stab_runs, dims=("component", "other_start"),
                                            coords={"component": comp})
        pred = F.K.predict_lowrank(obs.features, pairs.tgt_ptr, pairs.src, pairs.gain,
                                   res.W, res.C, res.R)
        y = obs.features[pairs.tgt_obs]
        # the low-rank model's residual (not the A_e's, which can fit the noise):
        # noise plus misfit, so the excitation it implies errs on the low side
        noise_var = float(np.mean((y - pred) ** 2)) if y.size else 0.0
        exc = F.source_excitation(pairs.gain[:, None] * obs.features[pairs.src], res.W, res.R,
                                  noise_var, EXCITATION_SNR)
        self.components_ = xr.Dataset(
            {"target_effect": (("component", "feature"), res.C.T.copy()),
             "source_effect": (("component", "feature"), res.R.T.copy()),
             "stability": ("component", stab),
             "source_excitation": ("component", exc,
                                   {"snr": EXCITATION_SNR, "noise_sd": np.sqrt(noise_var)})},
            coords={"component": comp, "feature": feat})
        self.weights_ = xr.DataArray(res.W, dims=("pair", "component"),
                                     coords={**_pair_coords(obs, pairs), "component": comp,
                                             "target_gain": ("pair", res.pair_gain)},
                                     name="weights")
        self.group_weights_ = xr.DataArray(res.Wbar, dims=("group", "component"),
                                           coords={"group": list(pairs.group_names),
                                                   "component": comp},
                                           name="group_weights")
        hist = np.array([np.append(h[2], h[2].sum()) for h in res.history])
        self.objective_history_ = xr.DataArray(
            hist, dims=("step", "term"),
            coords={"term": list(F.TERMS) + ["total"],
                    "iteration": ("step", [h[0] for h in res.history]),
                    "stage": ("step", [h[1] for h in res.history])},
            name="objective")
        self.start_objectives_ = np.array([r.objective for r in results])
        self.n_iter_ = res.n_iter
        self.converged_ = bool(res.converged)
        self.best_start_ = best
        self.n_pairs_ = pairs.n_pairs
        self.n_edges_ = graph.n_edges
        self.feature_names_in_ = np.array(feat, dtype=object)
        self.n_features_in_ = len(feat)
        self.space_names_ = tuple(obs.space_names)
        self.data_fingerprint_ = _fingerprint(obs)
        self.in_sample_r2_ = _r2(y, pred)

    # --------------------------------------------------------------- results
    def _check_fitted(self):
        if not hasattr(self, "components_"):
            raise AttributeError("This LICCHIE instance is not fitted yet. Call 'fit' with a "
                                 "recording first (or licchie.load a saved model).")

    @property
    def target_effect_(self):
        return self.components_["target_effect"]

    @property
    def source_effect_(self):
        return self.components_["source_effect"]

    def motifs(self, component=None):
        """Motif maps ``M_j = c_j r_j^T``.

        Returns
        -------
        xarray.DataArray (component, target_feature, source_feature)
            With the motif's stability and source excitation as coordinates:
            never read a motif without them.
        """
        self._check_fitted()
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
        return da if component is None else da.sel(component=component)

    def interaction_matrices(self, pairs=None):
        """``A_e = sum_j W[e, j] c_j r_j^T`` for a subset of pairs.

        Parameters
        ----------
        pairs : array of int, boolean mask or slice, optional
            Positions along ``weights_.pair``.  Default: every pair (dense
            n_pairs x d x d: ask for a subset on large problems).

        Returns
        -------
        xarray.DataArray (pair, target_feature, source_feature)
        """
        self._check_fitted()
        Wsel = self.weights_ if pairs is None else self.weights_.isel(pair=pairs)
        C = np.ascontiguousarray(self.components_["target_effect"].values.T)
        R = np.ascontiguousarray(self.components_["source_effect"].values.T)
        B = F.K.lowrank_reconstruct(np.ascontiguousarray(Wsel.values), C, R)
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
        rec = as_recording(X)
        obs = rec.obs
        feat = list(self.components_["feature"].values)
        if list(obs.feature_names) != feat:
            raise ValueError(f"The data's features {list(obs.feature_names)} differ from "
                             f"the fitted features {feat}; pass data with the same "
                             "features in the same order.")
        same = _fingerprint(obs) == self.data_fingerprint_
        if weights == "fitted" and not same:
            raise ValueError("weights='fitted' needs the training data: these observations "
                             "differ from the ones the model was fitted on. Use "
                             "weights='group' (or 'auto') for new or held-out data.")
        pairs = F.build_pairs(obs, self.radius, self.include_self, self.pair_weight,
                              self.bandwidth, self.pooling_groups, self.pooling_window)
        if same and weights != "group":
            W = np.ascontiguousarray(self.weights_.values)
        else:
            W = self._group_weights_for(pairs, obs)
        C = np.ascontiguousarray(self.components_["target_effect"].values.T)
        R = np.ascontiguousarray(self.components_["source_effect"].values.T)
        yhat = F.K.predict_lowrank(obs.features, pairs.tgt_ptr, pairs.src, pairs.gain, W,
                                   C, R)
        return format_prediction(X, obs, pairs, yhat, feat)

    def _group_weights_for(self, pairs, obs):
        """Each pair's group profile ``Wbar[g(e)]`` (zero for unseen groups).

        With ``pooling_groups="class_time"`` the window of a pair is looked up
        on the training data's time axis by (session, time label) of its
        target, so a recording that starts later than the training data (a
        held-out stretch) gets the windows its frames had in training; a
        frame the training data never had gets its class's mean profile over
        the training windows.
        """
        J = self.n_components
        gw = {g: self.group_weights_.values[k]
              for k, g in enumerate(self.group_weights_["group"].values)}
        W = np.zeros((pairs.n_pairs, J))
        if self.pooling_groups == "class_time" and pairs.n_pairs:
            names = self._training_windows(obs, pairs)
        else:
            names = np.asarray(pairs.group_names, dtype=object)[pairs.group]
        unknown = outside = 0
        if self.pooling_groups == "class_time":
            # a window the model never saw (frames after the training data)
            # gets its class's mean profile over the training windows
            by_class = {}
            for g, v in gw.items():
                by_class.setdefault(str(g).rsplit("@", 1)[0], []).append(v)
            for cls, vs in by_class.items():
                gw.setdefault(f"{cls}@?", np.mean(vs, axis=0))
        for g in np.unique(names):
            sel = names == g
            if g in gw:
                W[sel] = gw[g]
                outside += int(sel.sum()) if str(g).endswith("@?") else 0
            else:
                unknown += int(sel.sum())
        if outside:
            warnings.warn(f"{outside} pairs fall in frames outside the training data's time "
                          "windows; they use their class's mean profile over the training "
                          "windows.", UserWarning, stacklevel=3)
        if unknown:
            warnings.warn(f"{unknown} pairs belong to groups the model never saw (new "
                          "populations or time windows?); they predict zero.", UserWarning,
                          stacklevel=3)
        return W

    def _training_windows(self, obs, pairs):
        """Each pair's ``class@window`` name with the window its target's
        (session, time label) had in the training data (``class@?`` when the
        training data had no pair at that time)."""
        import pandas as pd

        wt = self.weights_
        train = pd.DataFrame({
            "session": wt["session"].values.astype(str),
            "time": wt["time"].values,
            "window": pd.Series(wt["pooling_group"].values.astype(str))
                        .str.rsplit("@", n=1).str[1].values,
        }).drop_duplicates(["session", "time"])
        new = pd.DataFrame({
            "session": np.asarray(obs.session_names, dtype=object)[obs.session[pairs.tgt]]
                         .astype(str),
            "time": _time_labels(obs, pairs.tgt),
        })
        window = new.merge(train, on=["session", "time"], how="left")["window"].fillna("?")
        cls = pd.Series(np.asarray(pairs.group_names, dtype=object)).str.rsplit(
            "@", n=1).str[0].values[pairs.group]
        return (cls + "@" + window.values).astype(object)

    def summary(self):
        """A plain-text report: objective, iterations, stability per motif."""
        self._check_fitted()
        h = self.objective_history_.isel(step=-1)
        st = self.stability_
        lines = [
            f"LICCHIE fit: {self.n_components} motifs, {self.n_pairs_} pairs, "
            f"{self.n_edges_} smoothness edges, {self.n_features_in_} features",
            f"  objective {float(h.sel(term='total')):.6g} after {self.n_iter_} iterations "
            f"({'converged' if self.converged_ else 'NOT converged'}; best of "
            f"{len(self.start_objectives_)} starts)   in-sample R^2 {self.in_sample_r2_:.3f}",
            "  terms: " + ", ".join(f"{t} {float(h.sel(term=t)):.4g}" for t in F.TERMS)
            + ("  (pooling with target gains)" if self.target_gain and self.pooling > 0
               else ""),
            f"  motif stability (agreement across starts, 1 = identical): "
            f"{st.attrs['mean']:.3f}  [{_stability_word(st.attrs['mean'])}]",
            "  per motif: " + "  ".join(f"{j}:{v:.2f}" for j, v in enumerate(st.values)),
        ]
        cr = getattr(self, "class_restarts_", None)
        if cr is not None and len(cr) > 1:
            trials = cr.iloc[1:]
            lines.append(f"  class restarts: {int(trials['accepted'].sum())} of {len(trials)} "
                         f"accepted (objective {cr['objective'].iloc[0]:.6g} after the "
                         f"continuation, {float(h.sel(term='total')):.6g} at the end)")
        exc = self.components_["source_excitation"]
        if np.any(np.isfinite(exc.values)):
            lines.append(
                f"  source excitation (share of each source effect on directions the "
                f"sources carry at >= {exc.attrs['snr']:g}x the noise variance): "
                + "  ".join(f"{j}:{v:.2f}" for j, v in enumerate(exc.values)))
            low = [j for j, v in enumerate(exc.values) if v < EXCITATION_LOW]
            if low:
                lines.append(
                    f"  Motifs {low}: part of the source effect points where the sources "
                    "of their pairs carry little or no signal; that part is weakly "
                    "determined or not at all, whatever the stability (README, source "
                    "excitation).")
        if not (st.attrs["mean"] >= STABILITY_HIGH):
            advice = ("try pooling > 0" if not self.pooling > 0 else
                      "try more iterations, fewer components or more data")
            lines.append("  Motifs below 0.9 are not reproducible across starts: the data "
                         f"do not pin them down (README, stability); {advice}.")
        if not self.pooling > 0:
            lines.append("  pooling=0: the data do not determine the source effects "
                         "(MODEL.md, Identifiability); agreement across starts then "
                         "reflects the regularisers, not the cells. Use pooling > 0 "
                         "before reading a source effect biologically.")
        return "\n".join(lines)

    # ------------------------------------------------------------------- files
    def save(self, path):
        """Write the fitted model to one netCDF4 file, atomically.

        The file is written to a temporary file in the same folder and renamed
        over ``path``, so a failure never leaves a half-written model.
        """
        self._check_fitted()
        ds = self.to_dataset()
        _atomic_to_netcdf(ds, path)

    def to_dataset(self):
        """The fitted model as one xarray.Dataset (the saved file's content)."""
        self._check_fitted()
        params = self.get_params()
        params["lambdas"] = list(params["lambdas"])
        ds = xr.Dataset(
            {"target_effect": self.components_["target_effect"],
             "source_effect": self.components_["source_effect"],
             "stability": ("component", self.stability_.values),
             "stability_runs": self.stability_runs_,
             "source_excitation": self.components_["source_excitation"],
             "weights": self.weights_,
             "group_weights": self.group_weights_,
             "objective_history": self.objective_history_,
             "start_objective": ("start", self.start_objectives_)},
            attrs={"licchie_model": 1,
                   "licchie_version": _version(),
                   "params": json.dumps(params),
                   "n_iter": int(self.n_iter_),
                   "converged": int(self.converged_),
                   "best_start": int(self.best_start_),
                   "n_pairs": int(self.n_pairs_),
                   "n_edges": int(self.n_edges_),
                   "in_sample_r2": float(self.in_sample_r2_),
                   "data_fingerprint": self.data_fingerprint_,
                   "space": json.dumps(list(self.space_names_))})
        ds["is_self"] = ds["is_self"].astype(np.int8)
        return ds


def load(path):
    """Read a model written by :meth:`LICCHIE.save`.

    Returns
    -------
    LICCHIE
        Fitted, with the same attributes (bit-exact) as the saved one.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No model file at {path!r}; check the path.")
    try:
        with xr.open_dataset(path, engine="netcdf4") as f:
            ds = f.load()
    except Exception as exc:  # netCDF4 raises OSError, ValueError, RuntimeError ...
        raise ValueError(f"Could not read {path!r} as a netCDF4 file ({exc}). Is it a "
                         "model written by LICCHIE.save?") from exc
    need = ["target_effect", "source_effect", "weights", "group_weights",
            "objective_history", "stability"]
    missing = [v for v in need if v not in ds]
    if ds.attrs.get("licchie_model") != 1 or missing:
        raise ValueError(f"{path!r} is not a LICCHIE model file (missing "
                         f"{missing or 'the licchie_model attribute'}). Write models with "
                         "LICCHIE.save.")
    model = LICCHIE(**_params_from_json(ds.attrs["params"]))
    comp = ds["component"].values
    stab = ds["stability"].values
    model.stability_ = xr.DataArray(stab, dims="component", coords={"component": comp},
                                    name="stability",
                                    attrs={"mean": float(np.mean(stab)),
                                           "n_starts": int(ds.sizes["start"])})
    model.stability_runs_ = ds["stability_runs"]
    # files written before the excitation diagnostic existed have NaN there
    exc = (ds["source_excitation"] if "source_excitation" in ds else
           xr.DataArray(np.full(comp.size, np.nan), dims="component",
                        attrs={"snr": EXCITATION_SNR, "noise_sd": np.nan}))
    model.components_ = xr.Dataset({"target_effect": ds["target_effect"],
                                    "source_effect": ds["source_effect"],
                                    "stability": ("component", stab),
                                    "source_excitation": exc})
    w = ds["weights"]
    w = w.assign_coords(is_self=w["is_self"].astype(bool))
    model.weights_ = w
    model.group_weights_ = ds["group_weights"]
    model.objective_history_ = ds["objective_history"]
    model.start_objectives_ = ds["start_objective"].values
    model.n_iter_ = int(ds.attrs["n_iter"])
    model.converged_ = bool(ds.attrs["converged"])
    model.best_start_ = int(ds.attrs["best_start"])
    model.n_pairs_ = int(ds.attrs["n_pairs"])
    model.n_edges_ = int(ds.attrs["n_edges"])
    model.in_sample_r2_ = float(ds.attrs["in_sample_r2"])
    model.data_fingerprint_ = str(ds.attrs["data_fingerprint"])
    feat = ds["feature"].values
    model.feature_names_in_ = np.array(list(feat), dtype=object)
    model.n_features_in_ = len(feat)
    model.space_names_ = tuple(json.loads(ds.attrs["space"]))
    return model


# ----------------------------------------------------------------- helpers
def _params_from_json(text):
    p = json.loads(text)
    p["lambdas"] = tuple(p["lambdas"])
    return p


def _version():
    from . import __version__
    return __version__


def _atomic_to_netcdf(ds, path):
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"Cannot write {path!r}: folder {folder!r} does not exist. "
                                "Create it first.")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".licchie-", suffix=".nc.part")
    os.close(fd)
    try:
        ds.to_netcdf(tmp, engine="netcdf4", format="NETCDF4")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def format_prediction(X, obs, pairs, yhat, feat):
    """Predictions ``yhat`` (n_targets, d) in the caller's terms.

    A DataArray (cell, time, feature) aligned with ``X`` when ``X`` is a
    Dataset (NaN where there is no prediction), else a long DataFrame with
    one row per predicted observation.
    """
    if isinstance(X, xr.Dataset):
        out = np.full((X.sizes["cell"], X.sizes["time"], len(feat)), np.nan)
        out[obs.cell[pairs.tgt_obs], obs.time_index[pairs.tgt_obs]] = yhat
        return xr.DataArray(out, dims=("cell", "time", "feature"),
                            coords={"cell": X["cell"].values, "time": X["time"].values,
                                    "feature": feat}, name="prediction")
    import pandas as pd
    o = pairs.tgt_obs
    df = pd.DataFrame(yhat, columns=feat)
    df.insert(0, "time", _time_labels(obs, o))
    df.insert(0, "cell", obs.cell_ids[obs.cell[o]])
    df.insert(0, "session", np.asarray(obs.session_names, dtype=object)[obs.session[o]])
    return df


def _time_labels(obs, o):
    sess = obs.session[o]
    ti = obs.time_index[o]
    vals = [obs.time_values[s][k] for s, k in zip(sess, ti)]
    return np.asarray(vals)


def _pair_coords(obs, pairs):
    """Labeled coordinates of every pair (all along the 'pair' dim)."""
    t, s = pairs.tgt, pairs.src
    pops = np.asarray(obs.population_names, dtype=object)
    coords = {
        "target": ("pair", obs.cell_ids[obs.cell[t]]),
        "source": ("pair", obs.cell_ids[obs.cell[s]]),
        "time": ("pair", _time_labels(obs, t) if len(t) else np.zeros(0)),
        "session": ("pair", np.asarray(obs.session_names, dtype=object)[obs.session[t]]
                    .astype(str)),
        "target_population": ("pair", pops[obs.population[t]].astype(str)),
        "source_population": ("pair", pops[obs.population[s]].astype(str)),
        "is_self": ("pair", pairs.is_self.astype(bool)),
        "pooling_group": ("pair", np.asarray(pairs.group_names, dtype=object)[pairs.group]
                  .astype(str)),
    }
    return coords


def _fingerprint(obs):
    """Digest of the observations a fit saw (to recognise the training data)."""
    import hashlib
    h = hashlib.sha256()
    for a in (obs.features, obs.positions, obs.cell, obs.frame, obs.prev_frame):
        h.update(np.ascontiguousarray(a).tobytes())
    h.update(repr([list(map(str, obs.cell_ids)), obs.feature_names,
                   obs.population_names, obs.session_names]).encode())
    return h.hexdigest()


def _r2(y, yhat):
    ss = float(np.sum((y - y.mean(axis=0)) ** 2))
    return 1.0 - float(np.sum((y - yhat) ** 2)) / ss if ss > 0 else float("nan")


def _stability_word(v):
    if not np.isfinite(v):
        return "unknown: needs n_init >= 2"
    if v >= STABILITY_HIGH:
        return "high: motifs reproducible across starts"
    if v >= STABILITY_LOW:
        return "moderate: interpret with care"
    return "LOW: motifs not determined by the data"


def _progress(verbose, total):
    if not verbose:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, desc="LICCHIE fit", unit="iter", leave=False)


def _no_pairs_message(obs, radius):
    """Say how far apart consecutive-frame cells actually are."""
    from scipy.spatial import cKDTree
    best = []
    for f in range(obs.n_frames):
        p = obs.prev_frame[f]
        if p < 0:
            continue
        a, b = obs.frame_ptr[f], obs.frame_ptr[f + 1]
        pa, pb = obs.frame_ptr[p], obs.frame_ptr[p + 1]
        if b > a and pb > pa:
            dist, _ = cKDTree(obs.positions[pa:pb]).query(obs.positions[a:b], k=1)
            best.append(dist)
    if not best:
        return ("No pairs: no frame has observations in the frame before it (the data "
                "need at least two consecutive frames of the same session).")
    d = np.concatenate(best)
    return (f"No pairs within radius={radius}: the nearest cell in the previous frame is "
            f"{d.min():.4g} away at best (median over targets {np.median(d):.4g}). Use a "
            f"radius of at least {np.median(d):.4g} (position units), or check that "
            "positions and radius use the same units.")
