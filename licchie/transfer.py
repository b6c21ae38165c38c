"""Transfer: weights on new data with the fitted motifs frozen (``LICCHIE.transform``).

The paper's §5.3 infers weights "on unseen frames" with the motifs of a fit
and asks what they say about phenotypes.  :func:`transform` minimises the
model's objective (MODEL.md, "Objective", with the fit's lambdas, pairs,
pair weights, smoothness graph rule and pooling groups, all built on the new
data) over ``A_e``, ``W`` and the pooling profiles, with the target and
source effects ``C``, ``R`` held at the fitted values and the data in the
fitted model's units (its frozen ``scaling_``).  With ``lam2 = lam3 = 0``
(the defaults) the solver is coordinate descent on the objective with the
``A_e`` and the profiles eliminated exactly
(:func:`licchie.fit.frozen.descend`), which reaches the minimiser; with
target gains it holds the gains of its start's profiles-and-gains block
(:func:`licchie.fit.frozen.descend_gain_weights`); otherwise the fit's own
A-step and weight step (:func:`licchie.fit.frozen.frozen_weights`).

Pooling profiles (``profiles``):

* ``"refit"`` (default): the profiles are free, the group means of the new
  weights, exactly as in the fit.  On the training data this is the fit's
  objective with ``C``, ``R`` fixed, and a pooled fit ends with this very
  computation (:func:`licchie.fit.frozen.settle_weights`), so ``transform``
  returns the fit's weights.
* ``"frozen"``: every group's profile is held at the training profile of its
  interaction class (and window: a frame the training data had keeps its
  window's profile; a frame it did not have takes the class's profile in the
  nearest training window, :func:`licchie.labels.group_weights_for`), so the pooling
  term ``lambda5 ||W[e] - Wbar_train[g(e)]||^2`` pulls the new weights toward
  what the class did in training.  Not with ``target_gain``.

Either way the solver starts from the exact minimiser of the
A-eliminated objective for the frozen ``C``, ``R`` (the fit's reduced start,
:func:`licchie.fit.reduced_init`, with no sweeps over ``C``, ``R``), which
leaves out only the L1 term of ``W`` and the smoothness pull; the solver
adds them.  With population feature spaces the start is each
pair's exactly pooled profile at the frozen effects
(:func:`licchie.fit.spaces_search.profile_start`).
"""
from __future__ import annotations

import warnings

import numpy as np
import xarray as xr

from . import fit as F
from . import labels as L
from . import scaling as S
from .fit.frozen import ITER_PER_FIT_ITER, weights_at_motifs
from .params import resolve_solver_options

__all__ = ["transform", "PROFILES"]

PROFILES = ("refit", "frozen")


def _frozen_effects(model, problem, obs):
    """The fitted ``C, R`` in the layout of ``problem``: (d, J), or (n_spaces,
    d, J) with population feature spaces (zero on a space's missing features;
    each space's effects are those of any of its populations)."""
    comps = model.components_
    if problem.spaces is None:
        return tuple(np.ascontiguousarray(comps[k].values.T, dtype=np.float64)
                     for k in ("target_effect", "source_effect"))
    space = problem.spaces.population_space
    out = []
    for k in ("target_effect", "source_effect"):
        blocks = []
        for s_ in range(problem.spaces.n_spaces):
            name = obs.population_names[int(np.flatnonzero(space == s_)[0])]
            blocks.append(np.nan_to_num(comps[k].sel(population=name).values.T))
        out.append(np.ascontiguousarray(np.stack(blocks), dtype=np.float64))
    return tuple(out)


def transform(model, X, profiles="refit", max_iter=None, tol=None):
    """Weights of new data under a fitted model's frozen motifs.

    Parameters
    ----------
    model : fitted LICCHIE
    X : xarray.Dataset, Recording, DataFrame or list
        New data (or the training data) with the fitted features, in
        original units (the model's standardisation is applied).
    profiles : {"refit", "frozen"}, default "refit"
        Pooling profiles free (as in the fit) or held at the training ones
        (module docstring).
    max_iter : int, optional
        Iterations of the alternation (the descent: ``10 * max_iter``
        sweeps); default ``10 * model.max_iter`` (the weights alone, with
        motifs fixed, converge linearly and are cheap).
    tol : float, optional
        Relative decrease of the objective at which to stop; default
        ``model.tol``.

    Returns
    -------
    xarray.DataArray (pair, component), named ``weights``
        With the pair coordinates of ``model.weights_`` (``target``,
        ``source``, ``time``, ``session``, populations, ``is_self``,
        ``pooling_group``, ``target_gain``) and attrs ``objective``,
        ``n_iter``, ``converged``, ``profiles``.
    """
    model._check_fitted()
    if profiles not in PROFILES:
        raise ValueError(f"profiles must be 'refit' or 'frozen'; got {profiles!r}.")
    max_iter = (ITER_PER_FIT_ITER * int(model.max_iter) if max_iter is None
                else int(max_iter))
    tol = float(model.tol) if tol is None else float(tol)
    if max_iter < 1 or not tol >= 0:
        raise ValueError(f"max_iter must be >= 1 and tol >= 0; got {max_iter}, {tol}.")
    feat = [str(f) for f in model.components_["feature"].values]
    rec = S.scaled_recording(model, X)
    if list(rec.obs.feature_names) != feat:
        raise ValueError(f"The data's features {list(rec.obs.feature_names)} differ from "
                         f"the fitted features {feat}; pass data with the same features "
                         "in the same order.")
    opts = resolve_solver_options(model.solver_options)
    with F.numba_threads(model.n_jobs):
        prep = model._prepare(rec)
        obs, pairs, problem = prep.recording.obs, prep.pairs, prep.problem
        C, R = _frozen_effects(model, problem, obs)
        if profiles == "frozen" and problem.target_gain:
            raise NotImplementedError(
                "profiles='frozen' is not available for a fit with target gains "
                f"(target_gain_ is True; target_gain={model.target_gain!r}); use "
                "profiles='refit', or fit with target_gain=False.")
        perm = prep.perm
        fixed = None
        if profiles == "frozen":
            with warnings.catch_warnings():
                # frames or classes the fit never saw: the class mean, or zero
                warnings.simplefilter("ignore")
                W0 = L.group_weights_for(model, pairs, obs)
            W0f = np.ascontiguousarray(W0 if perm is None else W0[perm])
            g = problem.pairs.group
            n_g = problem.pairs.n_groups
            fixed = np.zeros((n_g, W0f.shape[1]))
            np.add.at(fixed, g, W0f)
            fixed /= np.maximum(np.bincount(g, minlength=n_g), 1)[:, None]
        # the start depends on C, R and the data only (weights_at_motifs)
        res = weights_at_motifs(problem, C, R, max_iter, tol, bool(opts["extrapolate"]),
                                Wbar_fixed=fixed)
    W = res.W
    gain = (np.ones(W.shape[0]) if res.gamma is None else res.gamma[problem.pair_target])
    if perm is not None:
        inv = F.inverse_permutation(perm)
        W, gain = W[inv], gain[inv]
    if res.n_cd_not_converged:
        warnings.warn(f"{res.n_cd_not_converged} coordinate-descent sub-problems hit their "
                      "iteration limit.", UserWarning, stacklevel=3)
    if not res.converged:
        warnings.warn(f"transform did not reach tol={tol} in max_iter={max_iter} "
                      "iterations; increase max_iter.", UserWarning, stacklevel=3)
    comp = model.components_["component"].values
    return xr.DataArray(np.ascontiguousarray(W), dims=("pair", "component"),
                        coords={**L.pair_coords(obs, pairs), "component": comp,
                                "target_gain": ("pair", gain)},
                        name="weights",
                        attrs={"objective": res.objective, "n_iter": res.n_iter,
                               "converged": int(res.converged), "profiles": profiles})
