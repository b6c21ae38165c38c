"""Random restarts of each interaction class's source effects in a finished start."""
from __future__ import annotations

import numpy as np

from .. import kernels as K
from .problem import Problem
from .solver import StartResult, run_start


def class_restarts(problem: Problem, start: StartResult, pair_class, class_names, n_draws,
                   max_iter, tol, seed, progress=None, log=None, continue_first=True,
                   **run_kw):
    """Random restarts of each interaction class's source effects (``class_restarts``).

    From a finished start: for every class ``g`` and ``n_draws`` times, the
    motifs whose weights lie mostly in class ``g`` (largest ``sum |W[e, j]|``
    over its pairs) get random unit source effects, their weights are
    refitted without the pooling term (which would pull them back to the
    profiles of the motifs they replace), and ``max_iter`` iterations run
    from there.  The result replaces the incumbent when its objective is
    lower, so the objective never rises.  The incumbent is first run
    ``max_iter`` more iterations, so a restart is compared with a start that
    had as many.  Why: at the paper's size the fits find every target effect
    but stall at wrong source effects for the one or two motifs of a class,
    in basins that the iterations do not leave (README, "Class restarts").

    Parameters
    ----------
    start : StartResult
        In the problem's pair order (``W`` not yet permuted back).
    pair_class : int64 (n_pairs,)
        Interaction class of every pair (:func:`licchie.fit.pairs.init_classes`).
    class_names : sequence of str
    n_draws : int
        Restarts per class.
    continue_first : bool
        Run the start ``max_iter`` more iterations first (False: ``start``
        is already such a continuation).

    Returns
    -------
    StartResult
        The final incumbent; its ``history`` continues the start's, with a
        ``restart`` row where an accepted restart began.
    list of dict
        One row per trial: ``class``, ``draw``, ``motifs``, ``objective``,
        ``accepted`` (the first row, class ``""``, is the continuation).
    """
    rng = np.random.default_rng(seed)
    J = start.W.shape[1]
    lam1, _, _, lam4, _ = problem.lambdas
    kw = dict(run_kw, keep_A=True)

    def run(W, C, R, s):
        return run_start(problem, None, J, s, max_iter, tol, progress, init="given",
                         factors=(W, C, R), **kw)

    def chain(old, new, stage):
        off = old.history[-1][0]
        new.history = (old.history + [(off, stage, new.history[0][2])]
                       + [(off + it, st, t) for it, st, t in new.history[1:]])
        new.n_iter += old.n_iter
        new.n_cd_not_converged += old.n_cd_not_converged
        new.seed = old.seed
        return new

    def owner(W):
        """The class holding most of each motif's |W| mass: (J,)."""
        mass = np.zeros((len(class_names), J))
        np.add.at(mass, pair_class, np.abs(W))
        return np.argmax(mass, axis=0)

    inc = (chain(start, run(start.W, start.C, start.R, start.seed), "continue")
           if continue_first else start)
    log_rows = [{"class": "", "draw": -1, "motifs": (), "objective": inc.objective,
                 "accepted": True}]
    own = owner(inc.W)
    for g, name in enumerate(class_names):
        for draw in range(n_draws):
            cols = np.flatnonzero(own == g)
            if cols.size == 0:
                break
            R1 = inc.R.copy()
            R1[:, cols] = rng.normal(size=(R1.shape[0], cols.size))
            R1[:, cols] /= np.linalg.norm(R1[:, cols], axis=0)
            R1 = np.ascontiguousarray(R1)
            # weights of the restarted motifs: the weight LASSO without pooling
            b = K.bilinear_cr(inc.A, inc.C, R1)
            G = (inc.C.T @ inc.C) * (R1.T @ R1)
            prior, index = problem.pooling_prior(inc.Wbar, inc.gamma)
            W_new, _ = K.weight_lasso(b, prior, index, G, lam1, lam4, 0.0, inc.W, 1000,
                                      1e-10)
            W1 = inc.W.copy()
            W1[:, cols] = W_new[:, cols]
            trial = run(W1, inc.C, R1, int(rng.integers(2**31 - 1)))
            ok = trial.objective < inc.objective
            log_rows.append({"class": str(name), "draw": draw,
                             "motifs": tuple(int(c) for c in cols),
                             "objective": trial.objective, "accepted": bool(ok)})
            if log is not None:
                log(f"  class restart {name} #{draw + 1} (motifs {cols.tolist()}): "
                    f"L = {trial.objective:.6g} against {inc.objective:.6g}"
                    + ("  accepted" if ok else ""))
            if ok:
                inc = chain(inc, trial, "restart")
                own = owner(inc.W)
    return inc, log_rows
