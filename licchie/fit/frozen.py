"""Weights with frozen motifs (``LICCHIE.transform``, issue 15.5).

With the target and source effects ``C``, ``R`` held fixed, the objective of
MODEL.md is minimised over the interaction matrices ``A_e``, the weights
``W`` and the pooling profiles ``W̄`` only.  For fixed ``C``, ``R`` and
without target gains every term is jointly convex in ``(A, W, W̄)`` (each is
a convex function of expressions linear in them), so there is one minimum
value.  Three solvers:

* :func:`descend` where :func:`exact_applies` (``lam2 = lam3 = 0``, the
  defaults, and no gains): ``A`` and the profiles have closed forms, which
  leaves a LASSO in ``W`` (:mod:`licchie.kernels.frozen`); coordinate
  descent with group shifts reaches its minimiser in a few hundred sweeps.
* :func:`descend_gain_weights` with target gains (and ``lam2 = lam3 = 0``,
  one feature space): the same descent at the start's gains, held fixed
  (then the problem is convex again).
* :func:`frozen_weights` otherwise: the alternation of the fit's own exact
  block steps (:meth:`Problem.a_step`, :meth:`Problem.weight_step`), which
  approaches the minimum slowly when many pairs share a profile.

The fit's settle step and ``transform`` call the same one
(:func:`weights_at_motifs`), so on the training data ``transform`` returns the
fit's weights.

``profiles="refit"`` leaves ``W̄`` free (the group means of the new weights,
as in the fit); ``"frozen"`` holds it at given values (the training
profiles), so the pooling term pulls the new weights toward what the
classes did in training.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import kernels as K
from .problem import Problem
from .reduced_start import reduced_init
from .solver import _check_finite, end_iteration, improves

FINAL_STAGE = "weights at fitted motifs"   # objective_history_ stage of settle_weights
# iterations of a frozen-motif solve per iteration of the fit's max_iter: the
# fit's settle step and transform's default share it, so that transform on
# the training data repeats the fit's last step exactly
ITER_PER_FIT_ITER = 10
# the start's profile/gain alternation (target gains only): rounds at most,
# and the largest gain change that ends it
SETTLE_GAIN_ROUNDS = 100
SETTLE_GAIN_TOL = 1e-8
# descend_weights (where it applies): sweeps per iteration of the frozen
# budget, and its tolerance relative to the fit's (a sweep costs a small
# fraction of an alternation's iteration and converges along every direction,
# so the minimiser itself is reached, not a point of a crawl)
CD_SWEEPS_PER_ITER = 10
CD_TOL_FACTOR = 1e-2
# Anderson extrapolation of the descent every this many sweeps: on the suite's
# pooled seed 0 the settle step's descent met its tolerance after 4,014 plain
# sweeps, 755 with windows of 5 (ending lower; 762 with 3, 1,232 with 8;
# docs/performance.md, "Anderson extrapolation of the settle step")
ANDERSON_WINDOW = 5


@dataclass
class FrozenResult:
    """Weights of one frozen-motif solve.

    Attributes
    ----------
    W : float64 (n_pairs, J)
    Wbar : float64 (n_groups, J)
    gamma : float64 (n_targets,) or None
    objective : float
        The weighted objective (MODEL.md) at the result.
    history : list of (iteration, step, float64 (6,) weighted terms)
    n_iter : int
    converged : bool
    n_cd_not_converged : int
    """

    W: np.ndarray
    Wbar: np.ndarray
    gamma: np.ndarray = None
    objective: float = np.nan
    history: list = field(default_factory=list)
    n_iter: int = 0
    converged: bool = False
    n_cd_not_converged: int = 0


def frozen_weights(problem: Problem, C, R, W0, max_iter, tol, Wbar_fixed=None,
                   extrapolate=True, progress=None):
    """Minimise the objective over ``(A, W, W̄)`` with ``C``, ``R`` fixed.

    Parameters
    ----------
    problem : Problem
    C, R : float64 (d, J), or (n_spaces, d, J) with population feature spaces
        Frozen effects (unit columns).
    W0 : float64 (n_pairs, J)
        Starting weights (e.g. each pair's training group profile).
    max_iter : int
    tol : float
        Stop when the relative decrease of the objective over an iteration
        is below ``tol``.
    Wbar_fixed : float64 (n_groups, J), optional
        Hold the pooling profiles at these values (``profiles="frozen"``);
        not with target gains.
    extrapolate : bool
        End every iteration with a trial step along the change of ``(A,
        W)``, kept only when it lowers the objective (as in the fit).

    Returns
    -------
    FrozenResult
    """
    C = np.ascontiguousarray(C, dtype=np.float64)
    R = np.ascontiguousarray(R, dtype=np.float64)
    W = np.ascontiguousarray(W0, dtype=np.float64)
    fixed = Wbar_fixed is not None
    if fixed and problem.target_gain:
        raise NotImplementedError("Frozen pooling profiles with target gains are not "
                                  "supported; use profiles='refit'.")

    def profiles(W_, gamma_):
        if fixed:
            return np.ascontiguousarray(Wbar_fixed, dtype=np.float64), None
        return problem.profiles(W_, gamma_)

    Wbar, gamma = profiles(W, None)
    # the A_e that go with the starting weights: one exact A-step from A = B
    B = problem.lowrank(W, C, R)
    A, nbad = problem.a_step(B, W, C, R)
    del B
    res = FrozenResult(W, Wbar, gamma, n_cd_not_converged=nbad)
    terms = problem.objective(A, W, C, R, Wbar, gamma)
    _check_finite(terms, 0, "init")
    res.history.append((0, "init", terms))
    prev = float(terms.sum())
    alpha = 1.0
    spare = None
    for it in range(1, max_iter + 1):
        A0, W0_ = A, W
        A, nbad = problem.a_step(A, W, C, R, out=spare)
        res.n_cd_not_converged += nbad
        W, Wbar_new, gamma_new, nbad = problem.weight_step(A, W, C, R, Wbar, gamma)
        res.n_cd_not_converged += nbad
        if not fixed:
            Wbar, gamma = Wbar_new, gamma_new
        terms = problem.objective(A, W, C, R, Wbar, gamma)
        _check_finite(terms, it, "weights")
        res.history.append((it, "weights", terms))
        cur = float(terms.sum())
        spare = A0
        if extrapolate and it > 1:
            # A + alpha (A - A0) into A0's buffer (A0 is not needed any more)
            Ac = np.subtract(A, A0, out=A0)
            Ac *= alpha
            Ac += A
            Wc = W + alpha * (W - W0_)
            Wbar_c, gamma_c = profiles(Wc, gamma)
            t_c = problem.objective(Ac, Wc, C, R, Wbar_c, gamma_c)
            if improves(t_c, cur):
                spare = A
                A, W, Wbar, gamma, terms, cur = Ac, Wc, Wbar_c, gamma_c, t_c, float(t_c.sum())
                res.history.append((it, "extrapolate", terms))
                alpha *= 1.5
            else:
                spare = Ac
                alpha = 1.0
        if end_iteration(res, it, prev, cur, tol, progress, "transform"):
            break
        prev = cur
    res.W, res.Wbar, res.gamma, res.objective = W, Wbar, gamma, float(terms.sum())
    return res


def exact_for(lambdas, target_gain):
    """Whether :func:`descend_weights` solves the frozen problem exactly: the
    A-step has a closed form (``lam2 = lam3 = 0``) and there are no target
    gains (with them the problem is not convex in the weights and gains)."""
    return lambdas[1] == 0 and lambdas[2] == 0 and not target_gain


def exact_applies(problem: Problem):
    """:func:`exact_for` of ``problem``'s lambdas and gains."""
    return exact_for(problem.lambdas, problem.target_gain)


def gain_descent_applies(problem: Problem):
    """Whether :func:`descend_gain_weights` applies: target gains, one feature
    space, and an A-step with a closed form (``lam2 = lam3 = 0``)."""
    return (problem.target_gain and problem.spaces is None
            and exact_for(problem.lambdas, False))


def descend(problem: Problem, C, R, W0, max_sweeps, tol, Wbar_fixed=None, gamma=None):
    """The weights at fixed ``C``, ``R`` by coordinate descent on the A-eliminated
    objective (:func:`licchie.kernels.frozen.frozen_weight_cd`), without ``A``.

    Only where :func:`exact_applies`, or with target gains held at ``gamma``
    (:func:`descend_gain_weights`).  Parameters as :func:`frozen_weights`
    (``max_sweeps`` sweeps over all weights at most); ``gamma``: float64
    (n_targets,), the target gains the pooling term scales the profiles by
    (None: all 1).

    Returns
    -------
    W : float64 (n_pairs, J)
    phi : float64 (n_sweeps + 1,)
        The objective (``A`` at its exact minimiser) at the start and after
        every sweep.
    converged : bool
    """
    from ..kernels import frozen as KF
    from .reduced_start import reduced_inputs
    p = problem.pairs
    Z, Y, kappa = reduced_inputs(problem)
    J = W0.shape[1]
    tspace = np.zeros(kappa.size, np.int64)
    if C.ndim == 2:
        U = np.ascontiguousarray(Z @ R)
        C3 = C[None]
    else:
        tq = problem.spaces.class_space[problem.spaces.pair_class]  # (target, source) space
        U = np.empty((p.n_pairs, J))
        for q in range(R.shape[0]):
            on = tq[:, 1] == q
            U[on] = Z[on] @ R[q]
        C3 = C
        tspace[problem.pair_target] = tq[:, 0]
    fixed = Wbar_fixed is not None
    G = max(p.n_groups, 1)
    P = np.ascontiguousarray(Wbar_fixed, dtype=np.float64) if fixed else np.zeros((G, J))
    W = np.array(W0, dtype=np.float64, order="C")
    # visit targets and each group's pairs in the data's order, wherever the
    # fit keeps them (pairs.reorder): the result must not depend on it
    nt = kappa.size
    rank = (np.arange(nt, dtype=np.int64) if problem.target_order is None
            else np.asarray(problem.target_order, dtype=np.int64))   # data index of target
    torder = np.argsort(rank, kind="stable").astype(np.int64)
    tid = problem.pair_target
    gpairs = np.lexsort((np.arange(p.n_pairs), rank[tid], p.group)).astype(np.int64)
    gptr = np.searchsorted(p.group[gpairs], np.arange(G + 1)).astype(np.int64)
    pgain = (np.ones(p.n_pairs) if gamma is None
             else np.ascontiguousarray(np.asarray(gamma, dtype=np.float64)[tid]))
    phi, converged = KF.frozen_weight_cd(
        U, np.ascontiguousarray(Y), kappa, p.tgt_ptr, tspace, np.ascontiguousarray(C3),
        p.group, G, pgain, P, fixed, float(problem.lambdas[3]), float(problem.lambdas[4]), W,
        int(max_sweeps), float(tol), np.empty_like(Y), gptr, gpairs, tid, torder,
        ANDERSON_WINDOW)
    return W, phi, bool(converged)


def _descent_result(problem, W, C, R, Wbar, gamma, n_iter, converged):
    """A :class:`FrozenResult` at ``W`` (and its profiles and gains) after the
    exact A-step; its history holds the end."""
    B = problem.lowrank(W, C, R)
    A, nbad = problem.a_step(B, W, C, R)
    del B
    res = FrozenResult(W, Wbar, gamma, n_cd_not_converged=nbad, n_iter=n_iter,
                       converged=converged)
    terms = problem.objective(A, W, C, R, Wbar, gamma)
    _check_finite(terms, res.n_iter, "weights")
    res.history.append((res.n_iter, "weights", terms))
    res.objective = float(terms.sum())
    return res


def descend_weights(problem: Problem, C, R, W0, max_sweeps, tol, Wbar_fixed=None):
    """:func:`descend`, then the exact A-step: a :class:`FrozenResult` whose
    history holds the end (its objective equals ``phi[-1]`` up to rounding)."""
    W, phi, converged = descend(problem, C, R, W0, max_sweeps, tol, Wbar_fixed)
    Wbar = (np.ascontiguousarray(Wbar_fixed, dtype=np.float64) if Wbar_fixed is not None
            else problem.profiles(W)[0])
    return _descent_result(problem, W, C, R, Wbar, None, phi.size - 1, converged)


def descend_gain_weights(problem: Problem, C, R, W0, max_sweeps, tol):
    """The weights and profiles at fixed ``C``, ``R`` and at the start's target gains.

    With target gains the pooling term pulls ``W[e]`` toward ``gamma_t
    W̄[g]``.  The gains are those of the exact profiles-and-gains block at
    ``W0`` (:meth:`Problem.profiles`; for the settle step's start, the
    exactly pooled problem's gains) and are then held: at fixed gains the
    problem is a LASSO in ``W`` (profiles eliminated), convex, and the
    descent (:func:`descend` with ``gamma``) reaches its minimum.  Moving the
    gains too lowers the objective further but lets each target's gain
    escape its group's pull, and the weights then match the planted
    interactions worse (docs/model-choices.md, "Descent with target gains").

    Returns
    -------
    FrozenResult
    """
    _, gamma = problem.profiles(np.ascontiguousarray(W0, dtype=np.float64), None)
    W, phi, converged = descend(problem, C, R, W0, max_sweeps, tol, gamma=gamma)
    return _descent_result(problem, W, C, R, gain_profiles(problem, W, gamma), gamma,
                           phi.size - 1, converged)


def gain_profiles(problem: Problem, W, gamma):
    """float64 (n_groups, J): the profiles that minimise the pooling term at
    fixed gains (:func:`licchie.kernels.gain_profiles`, the profile step of
    :meth:`Problem.profiles`' rounds)."""
    p = problem.pairs
    G, J = max(p.n_groups, 1), W.shape[1]
    Wbar = np.zeros((G, J))
    K.gain_profiles(np.ascontiguousarray(W, dtype=np.float64), p.group, problem.pair_target,
                    np.ascontiguousarray(gamma, dtype=np.float64), np.empty((G, J)),
                    np.empty(G), Wbar)
    return Wbar


def weights_at_motifs(problem: Problem, C, R, max_iter, tol, extrapolate=True, W0=None,
                      Wbar_fixed=None, progress=None):
    """The weights for fixed ``C``, ``R``: :func:`frozen_weights` from the exact
    minimiser of the A-eliminated objective.

    The start is the fit's reduced start with no sweeps over ``C``, ``R``
    (:func:`licchie.fit.reduced_init`), which leaves out only the L1 term of
    ``W`` and the smoothness pull; the alternation adds them.  With
    population feature spaces it is each pair's exactly pooled profile
    (:func:`licchie.fit.spaces_search.profile_start`).  ``LICCHIE.transform``
    and the end of every pooled fit (:func:`settle_weights`) call this one
    function, so on the training data ``transform`` repeats the fit's last step.

    Parameters
    ----------
    problem : Problem
    C, R : float64 (d, J)
    max_iter, tol, extrapolate : as :func:`frozen_weights`
    W0 : float64 (n_pairs, J), optional
        Another start.
    Wbar_fixed : float64 (n_groups, J), optional
        As :func:`frozen_weights`.

    Returns
    -------
    FrozenResult
    """
    if W0 is None and problem.spaces is not None:
        from .spaces_search import profile_start
        W0 = profile_start(problem, C, R)
    elif W0 is None:
        # with target gains, the profile/gain block solved to convergence:
        # from 5 rounds (the fit's starts) the alternation below crawls from
        # a start above the fit's own objective and is rejected (shared_gains
        # seed 0: 13.38 after 1000 iterations against the fit's 13.02; from
        # 100 rounds 12.84, docs/global-search.md)
        W0 = reduced_init(problem, C.shape[1], 0, max_sweeps=0, C0=C, R0=R,
                          gain_rounds=SETTLE_GAIN_ROUNDS, gain_tol=SETTLE_GAIN_TOL)[0]
    if exact_applies(problem):
        return descend_weights(problem, C, R, W0, CD_SWEEPS_PER_ITER * max_iter,
                               CD_TOL_FACTOR * tol, Wbar_fixed=Wbar_fixed)
    if gain_descent_applies(problem) and Wbar_fixed is None:
        return descend_gain_weights(problem, C, R, W0, CD_SWEEPS_PER_ITER * max_iter,
                                    CD_TOL_FACTOR * tol)
    return frozen_weights(problem, C, R, W0, max_iter, tol, Wbar_fixed=Wbar_fixed,
                          extrapolate=extrapolate, progress=progress)


def settle_weights(result, problem: Problem, max_iter, tol, extrapolate=True):
    """End a pooled fit with the weights that minimise the objective at its motifs.

    The alternation of a pooled fit stops (``max_iter``) long before its
    weights are the minimiser for its own ``C``, ``R``: the A-step and the
    weight step crawl when many small pooling groups share the weights
    (docs/model-choices.md, "Transfer").  :func:`weights_at_motifs` at the
    fit's motifs is kept when it lowers the objective (it starts at the
    exact minimiser of the A-eliminated objective without the L1 term, so it
    usually does: not always when the fit's alternation has nearly settled
    its weights itself, e.g. with few pooling groups; then the fit keeps its
    own weights and ``transform`` differs from them by what the budget did
    not reach).  Its iterations are appended to the history with
    stage :data:`FINAL_STAGE` from the first one below the fit's last
    objective, so the history stays monotone; the iteration count
    ``result.n_iter`` stays the alternation's.  ``result`` is changed in
    place.

    Returns
    -------
    FrozenResult
    """
    res = weights_at_motifs(problem, result.C, result.R, max_iter, tol, extrapolate)
    adopt_settled(result, res)
    return res


def adopt_settled(result, res):
    """Take the frozen-motif solve ``res`` into the fit's ``result`` when it
    lowers the objective (in place; the local and the Dask settle step).

    Returns
    -------
    bool : whether it was taken.
    """
    before = result.objective
    if not res.objective < before:
        return False
    result.W, result.Wbar, result.gamma = res.W, res.Wbar, res.gamma
    # the frozen alternation is monotone, so this keeps a tail of it
    result.history.extend((result.n_iter + it, FINAL_STAGE, terms)
                          for it, _, terms in res.history if terms.sum() < before)
    return True
