"""Starts of pooled fits with population feature spaces from the reduced problem.

The exactly pooled reduced loss of :mod:`licchie.kernels.pooled` with
per-space effects: a group ``g`` of class ``(p, q)`` has the profile matrix
``sum_j Wbar[g, j] c_j^(p) r_j^(q)^T``, so with ``K_e = C[p]^T C[p]`` (both
groups of a co-occurrence entry share the target, hence ``p``)

    F = xx - 2 sum_{g,j} Wbar[g,j] c_j^(p_g)^T T[g] r_j^(q_g)
           + sum_{e=(g,h)} sum_{j,k} Wbar[g,j] Wbar[h,k] K_e[j,k] P[e,j,k],
    P[e] = R[q_g]^T S[e] R[q_h].

The profiles are solved exactly for every ``(C, R)`` by the kernels' own
solver (``K_e`` folded into ``P``) and L-BFGS runs on the per-space effects
(variable projection, as :func:`licchie.fit.search.lbfgs`); gradients keep
every effect zero off its space's features because the statistics are.
Random starts (drawn first, then run in contiguous chunks on the fit's
``n_jobs`` worker processes when it has several, with the same result),
the lowest reduced losses polished on the full objective.
This is a plain multi-start, not the basin-hopping search of
:mod:`licchie.fit.search` (one feature space only); its per-motif verdict
(:func:`licchie.fit.spaces_verdict.diagnose_spaces`) judges the best
reduced minimum against every start's local minimum (gap, reach), a
bootstrap over frames and the curvature on the per-space unit spheres, the
four scores of :mod:`licchie.fit.verdict`.
"""
from __future__ import annotations

import time

import numba
import numpy as np

from ..kernels import pooled as KP
from .search import PooledData, on_workers
from .solver import run_start, side_by_side
from .spaces import motif_agreement

PER_START = 400   # L-BFGS evaluations of one random start


class SpacesReduced:
    """Reduced loss and gradient with per-space effects ``C, R`` (n_spaces, d, J)."""

    def __init__(self, data: PooledData, group_class, class_space, features=None):
        self.d = data
        self.co_g = data.co_g
        self.gp = class_space[group_class, 0]
        self.gq = class_space[group_class, 1]
        self.features = features   # bool (n_spaces, d): masks the gradient
        self.ep = self.gp[self.co_g]  # target space of each entry

    def _system(self, C, R):
        """The profiles' normal equations at ``C, R`` and what the gradient reuses:
        ``b`` (G, J), ``TR`` (G, d, J), ``SR`` (nnz, d, J), ``P`` (nnz, J, J),
        ``Ke`` (nnz, J, J)."""
        d = self.d
        TR = np.matmul(d.T, R[self.gq])                   # T[g] r^(q_g)
        b = np.einsum("gaj,gaj->gj", TR, C[self.gp])
        SR = np.matmul(d.S, R[self.gq[d.co_idx]])         # S[e] r^(q_h)
        P = np.matmul(R[self.gq[self.co_g]].transpose(0, 2, 1), SR)
        CC = np.matmul(C.transpose(0, 2, 1), C)           # (S, J, J)
        return b, TR, SR, P, CC[self.ep]

    def for_search(self):
        """A copy on :meth:`PooledData.for_search` (for worker processes)."""
        out = object.__new__(SpacesReduced)
        out.__dict__.update(self.__dict__, d=self.d.for_search())
        return out

    def on(self, data: PooledData):
        """The same groups and spaces on other statistics of the same structure
        (a bootstrap's :meth:`PooledData.reweighted`)."""
        out = object.__new__(SpacesReduced)
        out.__dict__.update(self.__dict__, d=data)
        return out

    def profiles(self, C, R):
        """The exact profiles ``Wbar`` (n_groups, J) at ``C, R``, and the loss."""
        b, _, _, P, Ke = self._system(C, R)
        d, J = self.d, C.shape[2]
        Wbar, quad = KP.update_Wbar(b, P * Ke, np.ones((J, J)), d.co_ptr, d.co_idx, d.comps)
        return Wbar, float(d.xx - 2.0 * np.sum(Wbar * b) + quad)

    def value_grad(self, C, R):
        d = self.d
        S_, _, J = C.shape
        b, TR, SR, P, Ke = self._system(C, R)
        Wbar, quad = KP.update_Wbar(b, P * Ke, np.ones((J, J)), d.co_ptr, d.co_idx, d.comps)
        F = float(d.xx - 2.0 * np.sum(Wbar * b) + quad)
        Wg, Wh = Wbar[self.co_g], Wbar[d.co_idx]
        gC = np.zeros_like(C)
        gR = np.zeros_like(R)
        VVe = Wg[:, :, None] * Wh[:, None, :] * P
        Vxg = Wbar[:, None, :] * TR
        GRe = np.matmul(SR * Wh[:, None, :], Ke) * Wg[:, None, :]
        Hg = Wbar[:, None, :] * np.matmul(d.T.transpose(0, 2, 1), C[self.gp])
        eq = self.gq[self.co_g]
        for s in range(S_):
            VV = VVe[self.ep == s].sum(axis=0)
            gC[s] = 2.0 * (C[s] @ VV - Vxg[self.gp == s].sum(axis=0))
            gR[s] = 2.0 * (GRe[eq == s].sum(axis=0) - Hg[self.gq == s].sum(axis=0))
        return F, gC * self.features[:, :, None], gR * self.features[:, :, None], Wbar

    def lbfgs(self, C, R, max_eval=1000, tol=1e-12):
        from scipy.optimize import minimize

        shape = C.shape
        n = C.size

        def f(x):
            F, gC, gR, _ = self.value_grad(x[:n].reshape(shape), x[n:].reshape(shape))
            return F, np.concatenate([gC.ravel(), gR.ravel()])

        res = minimize(f, np.concatenate([C.ravel(), R.ravel()]), jac=True,
                       method="L-BFGS-B", options={"maxfun": int(max_eval), "ftol": tol,
                                                   "gtol": 0.0})
        C, R = res.x[:n].reshape(shape), res.x[n:].reshape(shape)
        F, _, _, Wbar = self.value_grad(C, R)
        return Wbar, C, R, F


def group_space_classes(pairs, spaces):
    """int64 (n_groups,): the feature-space class (``spaces.class_space`` row)
    of every pooling group of ``pairs`` (a group lies in one class)."""
    out = np.zeros(pairs.n_groups, np.int64)
    out[pairs.group] = spaces.pair_class
    return out


def profile_start(problem, C, R):
    """Each pair's exactly pooled profile for fixed per-space ``C, R``.

    The spaces' counterpart of :func:`licchie.fit.reduced_init` with no sweeps:
    the profiles that minimise the reduced loss at these effects, a start
    that depends on ``C, R`` and the data only (so the fit's last step and
    ``transform`` begin at the same point).

    Parameters
    ----------
    problem : Problem
        With population feature spaces.
    C, R : float64 (n_spaces, d, J)

    Returns
    -------
    float64 (n_pairs, J)
    """
    sp, p = problem.spaces, problem.pairs
    data = PooledData.from_pairs(problem.X, p.tgt_obs, p.tgt_ptr, p.src, p.gain, p.group,
                                 p.n_groups)
    red = SpacesReduced(data, group_space_classes(p, sp), sp.class_space, sp.features)
    Wbar = red.profiles(np.ascontiguousarray(C), np.ascontiguousarray(R))[0]
    return np.ascontiguousarray(Wbar[p.group])


def search_starts(problem, obs, n_components, seed, n_polish, max_iter, tol, opts,
                  progress=None, n_workers=None):
    """Random starts of the reduced problem with spaces, the best polished.

    Uses ``opts["search_evals"]`` (L-BFGS evaluations in all) and
    ``opts["search_time"]`` (seconds) as budgets; ``n_workers`` worker
    processes (default: the fit's Numba threads) run the starts, with the
    same result for any number.

    Returns
    -------
    results : list of StartResult (no ``A``), one per polished candidate
    info : SpacesStart
        The verdict's diagnosis (:func:`licchie.fit.spaces_verdict.diagnose_spaces`)
        of the best reduced minimum, judged against every start's minimum.
    """
    from .global_start import reduced_data

    sp = problem.spaces
    data, _ = reduced_data(problem, obs)
    p = problem.pairs
    red = SpacesReduced(data, group_space_classes(p, sp), sp.class_space, sp.features)
    rng = np.random.default_rng(seed.spawn(1)[0] if hasattr(seed, "spawn") else seed)
    J = int(n_components)
    shape = (sp.n_spaces, problem.X.shape[1], J)
    mask = sp.features[:, :, None]
    budget, limit = int(opts["search_evals"]), float(opts["search_time"])
    # every start drawn first, in the order a serial loop draws them; they run
    # in contiguous chunks on the fit's threads' worker processes and come
    # back in that order, so the result does not depend on the workers
    n_starts = max(2, -(-budget // PER_START))
    starts = [(rng.normal(size=shape) * mask, rng.normal(size=shape) * mask)
              for _ in range(n_starts)]
    n_workers = min(numba.get_num_threads() if n_workers is None else int(n_workers),
                    n_starts)
    t0 = time.perf_counter()
    if n_workers > 1:
        bounds = [n_starts * k // n_workers for k in range(n_workers + 1)]
        small = red.for_search()
        chunks = on_workers(_run_starts, [(small, starts[a:b], limit)
                                          for a, b in zip(bounds, bounds[1:])], n_workers)
        cands = [c for chunk in chunks for c in chunk]
    else:
        cands = _run_starts(red, starts, limit)
    evals = PER_START * len(cands)
    if time.perf_counter() - t0 >= limit and evals < budget:
        import warnings
        warnings.warn(
            f"The reduced search stopped at its time limit (solver_options['search_time']="
            f"{limit:g} s) before its evaluation budget: the result depends on this "
            "machine's speed. Raise search_time for a reproducible fit.", UserWarning,
            stacklevel=4)
    cands.sort(key=lambda c: c[0])
    # distinct minima first (matched |cos| of the flattened motifs)
    picked = []
    for c in cands:
        if all(np.min(motif_agreement(*(_unit(x) for x in (c[2], c[3], o[2], o[3])))[0])
               < 0.99 for o in picked):
            picked.append(c)
        if len(picked) >= max(1, int(n_polish)):
            break
    seeds = np.random.default_rng(rng.integers(2**32)).integers(0, 2**31, len(picked))
    # drawn after the polish seeds, which stay those of a fit without verdict
    diag_seed = int(rng.integers(2**31))
    info = _diagnosed(red, p, cands, diag_seed, _noised_data(problem, obs))

    def polish(k, Wbar, C, R):
        W = np.ascontiguousarray(Wbar[p.group])
        W, C, R = sp.unit(W, C, R, np.random.default_rng(int(seeds[k])))
        return run_start(problem, None, J, int(seeds[k]), max_iter, tol, progress,
                         start_label=f"polish {k + 1}",
                         extrapolate=bool(opts["extrapolate"]), init="given",
                         factors=(W, C, R), record_steps=bool(opts["record_steps"]),
                         keep_A=False)
    return side_by_side(polish, [(k, Wbar, C, R) for k, (_, Wbar, C, R) in enumerate(picked)],
                        problem), info


def _noised_data(problem, obs):
    """``(sd, rng) -> PooledData``: the reduced statistics of the problem with
    Gaussian noise of standard deviation ``sd`` on every observed feature."""
    import copy

    from .global_start import reduced_data

    sp = problem.spaces
    mask = sp.features[sp.population_space[obs.population]]   # (n_obs, d)

    def noised(sd, rng):
        p2 = copy.copy(problem)
        p2.X = np.ascontiguousarray(problem.X + rng.normal(0.0, sd, problem.X.shape) * mask)
        return reduced_data(p2, obs)[0]
    return noised


def _diagnosed(red, pairs, minima, seed, noised=None):
    """The verdict's diagnosis of the best of ``minima`` (every start's,
    sorted), computed when the verdict first reads it (:class:`SpacesStart`)."""
    from .spaces_verdict import SpacesStart, diagnose_spaces, unit_effects

    ptr = pairs.tgt_ptr
    has = ptr[1:] > ptr[:-1]   # each target's space: that of its pairs' groups
    space = red.gp[pairs.group[ptr[:-1][has]]]
    n_obs = int(red.features.sum(axis=1)[space].sum())

    def dg():
        return diagnose_spaces(red, minima, n_obs, seed=seed, noised=noised)
    return SpacesStart(dg, unit_effects(minima[0][2]), unit_effects(minima[0][3]),
                       float(minima[0][0]), np.array([float(c[0]) for c in minima]))


def _run_starts(red, starts, limit):
    """L-BFGS from each ``(C0, R0)`` of ``starts`` in turn, ``PER_START``
    evaluations each, until ``limit`` seconds have passed (two starts at
    least): a list of ``(loss, Wbar, C, R)`` in the order of ``starts``."""
    out, t0 = [], time.perf_counter()
    for C0, R0 in starts:
        if len(out) >= 2 and time.perf_counter() - t0 >= limit:
            break
        Wbar, C, R, F = red.lbfgs(C0, R0, max_eval=PER_START)
        out.append((F, Wbar, C, R))
    return out


def _unit(F):
    n = np.linalg.norm(F, axis=1, keepdims=True)
    return F / np.where(n > 0, n, 1.0)
