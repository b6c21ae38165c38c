"""Pooled fits start at the global optimum of the exactly pooled reduced problem.

The data path of a pooled fit (``init="search"``, the default when the pooling
weight lambda5 is > 0):

1. the pairs' per-target group sums are aggregated once into sufficient
   statistics (:class:`licchie.fit.search.PooledData`; blocks of targets are
   the frames, for the bootstrap of the verdict);
2. :func:`licchie.fit.search.search` looks for the global minimum of the
   reduced loss (group profiles ``Wbar``, unit ``C`` and ``R``), with moves
   that act on all groups of one interaction class;
3. :func:`licchie.fit.verdict.diagnose` scores every motif of the best
   solution against the search's distinct minima, its independent searches,
   a bootstrap over frames and the local curvature;
4. the best ``polish_screen`` distinct minima (by reduced loss) are each
   polished ``SCREEN_ITER`` iterations on the full objective (``W[e] =
   Wbar[g(e)]``, one exact A-step, then the alternation), and the
   ``n_init`` lowest are polished fully (:func:`screened`); the lowest full
   objective is the fit.  Small polishes run side by side on the fit's
   threads (:func:`~licchie.fit.solver.side_by_side`), with the same results.

The reduced loss only proposes candidates; the full objective ranks them and
stays the one reported.  The two rank differently when the data's pairs
deviate from their group's profile: the reduced loss is the limit of exact
pooling, the full objective lets each pair deviate at the price ``lambda5``.
On the suite's ``owned`` regime, seed 1, the reduced loss put a minimum at
recovery 0.75 first and one at 0.90 eighth (2.1 % higher), while the full
objective put the 0.90 one 14 % below (docs/global-search.md, "Polish
screening").
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numba
import numpy as np

from .diagnostics import motif_agreement
from .gains import gain_search, refine_start, with_gains
from .pairs import pair_groups
from .search import PooledData, SearchResult, pair_start, search
from .solver import run_start, side_by_side
from .verdict import HIGH, MEDIUM, WHY, DiagnosedStart, diagnose, fitted_reason

SCREEN_ITER = 20   # iterations of the full objective that rank the candidates


@dataclass
class GlobalStart(DiagnosedStart):
    """What the search left for the fitted attributes (the diagnosis computed
    when the verdict first reads it: :class:`~licchie.fit.verdict.DiagnosedStart`,
    about 5 s at paper size)."""

    result: SearchResult
    diagnose: object
    data: PooledData
    target_gain: bool = False   # the verdict then stops at "medium" (final_verdict)


def reduced_data(problem, obs):
    """Sufficient statistics of the problem's pairs, blocked by the targets' frames.

    Returns
    -------
    data : PooledData
    move_groups : int64 (n_groups,)
        The interaction class of every pooling group (moves of the search
        act on one class at a time, all its frames together).
    """
    p = problem.pairs
    block = np.ascontiguousarray(obs.frame[p.tgt_obs], dtype=np.int64)
    data = PooledData.from_pairs(problem.X, p.tgt_obs, p.tgt_ptr, p.src, p.gain, p.group,
                                 p.n_groups, block=block, n_blocks=obs.n_frames,
                                 keep_rows=bool(problem.target_gain))
    return data, group_classes(p, obs)


def group_classes(pairs, obs):
    """int64 (n_groups,): the interaction class (``pooling_groups="class"``'s
    group index) of every pooling group of ``pairs``."""
    p = pairs
    cls, _ = pair_groups(obs, p.tgt, p.src, p.is_self, "class")
    out = np.zeros(p.n_groups, np.int64)
    out[p.group] = cls
    return out


def search_starts(problem, obs, n_components, seed, n_polish, max_iter, tol, opts,
                  progress=None, show_search=False, gain_free_search=None):
    """Global search, verdict, and the full fit polished from the best minima.

    Parameters
    ----------
    problem : Problem
    obs : Observations
    n_components : int
    seed : numpy.random.SeedSequence
    n_polish : int
        Distinct minima of the search to polish fully on the full objective
        (fewer when the search found fewer), chosen by :func:`screened`
        among the best ``opts["polish_screen"]``.
    max_iter, tol : the alternation's limits for each polish.
    opts : dict
        Resolved ``solver_options`` (``search_evals``, ``search_time``,
        ``n_searches``, ``search_patience``,
        ``extrapolate``, ``record_steps``).
    progress : tqdm or None
        Bar of the polish iterations.
    show_search : bool
        A progress bar for the search.
    gain_free_search : SearchResult, optional
        With target gains: the gain-free search of the same problem, seed and
        options (``info.result`` of a fit without gains), which is the gain
        search's round 0 (:func:`~licchie.fit.gains.gain_search`); not searched again.

    Returns
    -------
    results : list of StartResult (no ``A``), one per polished minimum
    info : GlobalStart
    """
    plain, move = reduced_data(problem, obs)
    res, diag, cands, seeds, data, gamma = searched_candidates(
        plain, move, n_components, opts, seed, show_search, n_polish,
        gain_components=problem.gain_components if problem.target_gain else None,
        gain_free_search=gain_free_search)

    def polish(c, seed_, n_iter, bar, label):
        W, C, R = pair_start(c.Wbar, c.C, c.R, problem.pairs.group)
        g = gamma if c.gamma is None else c.gamma
        if g is not None:  # W[e] = gamma[t(e)] Wbar[g(e)]
            W *= g[problem.pair_target, None]
        return run_start(problem, None, n_components, int(seed_), n_iter, tol, bar,
                         start_label=label, extrapolate=bool(opts["extrapolate"]),
                         init="given", factors=(W, C, R),
                         record_steps=bool(opts["record_steps"]), keep_A=False)

    cands, seeds = screened(
        cands, seeds, n_polish,
        lambda c, s_: polish(c, s_, SCREEN_ITER, None, "screen").objective,
        each=lambda fn, args: side_by_side(fn, args, problem))
    results = side_by_side(polish, [(c, seeds[k], max_iter, progress, f"polish {k + 1}")
                                  for k, c in enumerate(cands)], problem)
    if gamma is not None:
        # with gains: the best polish's motifs taken to the reduced problem's
        # joint minimum, polished again; it replaces that polish when the
        # full objective is lower (one result per polished candidate stays)
        best = int(np.argmin([r.objective for r in results]))
        if progress is not None:   # one polish more than the bar was made for
            progress.total += max_iter
        # the refinement is serial: the verdict's diagnosis (needed unless a
        # class fallback replaces this fit) runs beside it, on an idle thread
        start, diag = side_by_side(lambda f: f(), [
            (lambda: refine_start(plain, problem.gain_components, results[best].C,
                                  results[best].R),),
            (diag,)], problem)
        refined = polish(start, seeds[0], max_iter, progress, "refined")
        if refined.objective < results[best].objective:
            results[best] = refined
    return results, GlobalStart(res, diag, data, target_gain=gamma is not None)


def screened(cands, seeds, n_polish, short_objective, each=None):
    """The ``n_polish`` candidates with the lowest full objective after a short polish.

    Parameters
    ----------
    cands : list of Candidate
        Distinct minima of the reduced loss, best first.
    seeds : sequence of int, one per candidate
    n_polish : int
    short_objective : callable ``(candidate, seed) -> float``
        The full objective after ``SCREEN_ITER`` iterations from the candidate.
    each : callable ``(fn, args) -> list``, optional
        Runs ``fn(*a)`` for every ``a`` of ``args`` (:func:`side_by_side`:
        side by side); one after another by default.

    Returns
    -------
    cands, seeds : the chosen ones, lowest short objective first (all of them,
    in their order, when there are at most ``n_polish``).
    """
    n_polish = max(1, int(n_polish))
    if len(cands) <= n_polish:
        return list(cands), list(seeds)
    args = list(zip(cands, seeds))
    objective = (each(short_objective, args) if each is not None
                 else [short_objective(c, s_) for c, s_ in args])
    keep = np.argsort(objective, kind="stable")[:n_polish]
    return [cands[k] for k in keep], [seeds[k] for k in keep]


def final_verdict(C, R, info: GlobalStart):
    """The search's per-motif verdict carried over to the fitted motifs.

    The polish may move a motif away from the reduced optimum; the score is
    then capped by how far (its matched ``|cos|`` with the search's motif).

    With target gains the verdict is at most ``"medium"`` (the score is
    kept): the search and the verdict judge the candidates at one set of
    gains, and the profiles-and-gains block at fixed motifs has several
    local minima, so neither sees the lower minima that other gains reach.
    Measured (docs/global-search.md, "The verdict with target gains"): on
    ``owned_gains`` seed 2 the exact true motifs, with their profiles and
    gains re-solved from gains 1, reach a reduced loss 22 % below the
    search's best, whose verdict said ``high`` on two motifs at |cos| 0.87
    and 0.88 to the truth.

    Returns
    -------
    score : float64 (J,)
    verdict : list of str
    reason : list of str
    """
    dg, res = info.diagnosis, info.result
    sim, match = motif_agreement(C, R, res.C, res.R)
    score = np.minimum(dg.score[match], sim)
    verdict, reason = [], []
    for j in range(C.shape[1]):
        v = "high" if score[j] >= HIGH else "medium" if score[j] >= MEDIUM else "low"
        why = fitted_reason(dg, WHY, match, j)
        if sim[j] < dg.score[match[j]]:
            why = (f"the full objective moved it away from the reduced optimum "
                   f"(|cos| {sim[j]:.2f})")
        if info.target_gain and v == "high":
            v = "medium"
            why = (f"{why}; at most medium with target_gain=True: the search judges its "
                   "minima at one set of gains and can miss lower ones")
        verdict.append(v)
        reason.append(why)
    return score, verdict, reason


def searched_candidates(data, move, n_components, opts, seed, show_search, n_polish,
                        gain_components=None, gain_free_search=None):
    """The global search of the reduced problem, its diagnosis, and the minima to polish.

    The one place that runs the search with ``solver_options`` (the local fit
    and :mod:`licchie.distributed` share it), warning when the time limit
    rather than the evaluation budget ended it.

    Returns
    -------
    res : the search's result
    diag : callable, its diagnosis (:func:`diagnose`) when called (for
        :class:`GlobalStart`, which calls it once the fit needs a verdict)
    cands : list, the best ``max(n_polish, opts["polish_screen"])`` distinct
        minima by reduced loss (at least one), for :func:`screened`
    seeds : ndarray of uint32, one polish seed per candidate
    data : the reduced data the verdict judged (gain-weighted with target gains)
    gamma : ndarray (n_targets,) or None, the last round's per-target gains
    """
    s_search, s_diag, s_polish = seed.spawn(3)
    # the fit's threads (n_jobs) run the independent searches at once
    kw = dict(n_searches=int(opts["n_searches"]), time_budget=float(opts["search_time"]),
              seed=s_search, move_groups=move, progress=bool(show_search),
              patience=int(opts["search_patience"]), eval_budget=int(opts["search_evals"]),
              n_workers=numba.get_num_threads())
    gamma = None
    if gain_components is not None:
        # searches at fixed gains alternated with the gains (licchie.fit.gains);
        # the verdict judges at the last round's gains
        res, gamma = gain_search(data, n_components, gain_components,
                                 first=gain_free_search, **kw)
        data = with_gains(data, gamma)
    else:
        res = search(data, n_components, **kw)
    if res.time >= float(opts["search_time"]) and res.n_trials > 0:
        warnings.warn(
            f"The pooled search stopped at its time limit (solver_options['search_time']="
            f"{float(opts['search_time']):g} s) before its evaluation budget: the result "
            "depends on this machine's speed. Raise search_time for a reproducible fit.",
            UserWarning, stacklevel=5)
    diag_seed = int(s_diag.generate_state(1)[0])

    def diag():
        return diagnose(data, res, seed=diag_seed)
    cands = res.candidates[:max(1, int(n_polish), int(opts["polish_screen"]))]
    if res.joint is not None:
        # with target gains the winning round's joint minimum of (profiles,
        # motifs, gains) competes too, at its own gains
        cands = [res.joint] + list(cands)
    return res, diag, cands, s_polish.generate_state(len(cands)), data, gamma
