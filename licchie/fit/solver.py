"""One start of the alternating minimisation (:func:`run_start`).

From the starting factors (:mod:`licchie.fit.starts`), every iteration runs
the exact block steps of :class:`~licchie.fit.problem.Problem` (A, then the
components, then the weights and pooling profiles), optionally followed by
an extrapolated trial step, until the relative decrease of the objective
falls below ``tol``.
"""
from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numba
import numpy as np
from threadpoolctl import threadpool_limits

from ..kernels._parallel import sharing
from .classes import class_start
from .problem import TERMS, Problem
from .starts import group_init, parafac_init


@dataclass
class StartResult:
    """The factors and objective history of one start.

    Attributes
    ----------
    seed : int
    W : float64 (n_pairs, J)
    C, R : float64 (d, J)  unit columns
    Wbar : float64 (n_groups, J)
    A : (n_pairs, d, d) of the problem's dtype, or None (``keep_A=False``)
    gamma : float64 (n_targets,) or None
    history : list of (iteration, step, float64 (6,) weighted terms)
    """

    seed: int
    W: np.ndarray
    C: np.ndarray
    R: np.ndarray
    Wbar: np.ndarray
    A: np.ndarray
    gamma: np.ndarray = None  # target gains (target_gain pooling), else None
    history: list = field(default_factory=list)  # (iteration, step, terms[6])
    n_iter: int = 0
    converged: bool = False
    n_cd_not_converged: int = 0

    @property
    def objective(self) -> float:
        """The total objective after the last recorded step."""
        return float(np.sum(self.history[-1][2]))


def _check_finite(terms, iteration, step):
    if not np.all(np.isfinite(terms)):
        bad = [TERMS[k] for k in range(len(TERMS)) if not np.isfinite(terms[k])]
        raise FloatingPointError(
            f"The fit produced non-finite values at iteration {iteration}, after the "
            f"{step} step (term(s): {', '.join(bad)}). Standardise the features (e.g. "
            "z-score each feature), reduce their magnitude, or increase the "
            "regularisation (lambdas).")


def extrapolation(problem, cur, prev, alpha, out=None, gamma=None):
    """Candidate ``cur + alpha (cur - prev)`` for (A, W, C, R), Wbar exact.

    C and R are renormalised to unit columns with the scale moved into W, so
    the candidate has the same low-rank matrices as the extrapolated factors.
    The candidate's A is written into ``out`` (a new array if None).

    Returns
    -------
    (A, W, C, R, Wbar, gamma), or None when a column of C or R is zero or
    not finite
    """
    A0, W0, C0, R0 = prev
    A1, W1, C1, R1 = cur
    # A1 + alpha (A1 - A0) with one temporary of A's size, not three
    # (the same values: IEEE + and * commute)
    A = np.subtract(A1, A0, out=out)
    A *= alpha
    A += A1
    W = W1 + alpha * (W1 - W0)
    C = C1 + alpha * (C1 - C0)
    R = R1 + alpha * (R1 - R0)
    unit = problem.unit_factors(W, C, R)
    if unit is None:
        return None
    W, C, R = unit
    Wbar, gamma = problem.profiles(W, gamma)
    return A, W, C, R, Wbar, gamma


def run_start(problem: Problem, A_init, J, seed, max_iter, tol, progress=None,
              cd_max_iter=1000, cd_tol=1e-10, start_label="", extrapolate=True,
              init="parafac", init_group=None, bootstrap=False, record_steps=True,
              keep_A=True, parafac_iter=100, factors=None):
    """One start of the alternating minimisation.

    ``init="parafac"`` starts as MODEL.md says (PARAFAC of ``A_init``, the
    lam1 = 0 A-step); ``init="groups"`` starts from :func:`group_init` over
    ``init_group = (group, n_groups)`` (with ``bootstrap``, its group
    matrices come from a bootstrap resample of the targets) and one A-step;
    ``init="classes"`` likewise from :func:`class_start`; ``init="given"``
    from ``factors = (W, C, R)`` and one A-step.

    ``record_steps`` evaluates and records the objective after every step
    (A, components, weights); otherwise only after every iteration, which
    saves two of the three objective evaluations per iteration.

    ``parafac_iter`` caps the ALS iterations of the PARAFAC start.

    ``keep_A=False`` drops the final ``A_e`` from the result (``res.A`` is
    None): a fit of ``n_init`` starts then holds one interaction tensor per
    start only while that start runs.

    With ``extrapolate``, every iteration ends with a trial step along the
    last iteration's change (a line search in the style of Bro's CP-ALS
    acceleration, tensorly's ``parafac(linesearch=True)``), kept only when it
    lowers the objective; so the objective still never increases.  The step
    length grows after every success and is reset after a failure.
    """
    nbad = 0
    # Spare arrays of A's shape, reused across iterations: a fresh array of
    # that size costs a page fault per 4 KiB on its first write, which at
    # 250 k pairs took longer than the A-step kernel itself.  A_init (shared
    # by every start) is never written to or pooled.
    spare = []

    def buffer():
        return spare.pop() if spare else None

    def release(X):
        if X is not None and X is not A_init:
            spare.append(X)

    if init == "parafac":
        W, C, R = parafac_init(A_init, J, seed, n_iter_max=parafac_iter)
        if problem.spaces is not None:  # per population feature space
            W, C, R = problem.spaces.split(W, C, R, seed)
        A = A_init
    else:
        if init == "given":
            W, C, R = (np.ascontiguousarray(x, dtype=np.float64) for x in factors)
        elif init == "classes":
            W, C, R, _ = class_start(problem, init_group, J, seed, bootstrap)
        else:
            W, C, R, _ = group_init(problem, init_group[0], init_group[1], J, seed, bootstrap)
        # the A_e that go with these factors: one exact A-step from A = B
        # (L at A = B is finite and the step can only lower it)
        B = problem.lowrank(W, C, R)
        A, nbad = problem.a_step(B, W, C, R, cd_max_iter=cd_max_iter, cd_tol=cd_tol)
        del B
    Wbar, gamma = problem.profiles(W)
    res = StartResult(seed, W, C, R, Wbar, A)
    res.n_cd_not_converged += nbad
    terms = problem.objective(A, W, C, R, Wbar, gamma)
    _check_finite(terms, 0, "init")
    res.history.append((0, "init", terms))
    prev = float(terms.sum())
    alpha = 1.0
    for it in range(1, max_iter + 1):
        before = (A, W, C, R)
        A, nbad = problem.a_step(A, W, C, R, cd_max_iter=cd_max_iter, cd_tol=cd_tol,
                                 out=buffer())
        res.n_cd_not_converged += nbad
        if record_steps:
            terms = problem.objective(A, W, C, R, Wbar, gamma)
            _check_finite(terms, it, "A")
            res.history.append((it, "A", terms))
        C, R = problem.component_step(A, W, C, R)
        if record_steps:
            terms = problem.objective(A, W, C, R, Wbar, gamma)
            _check_finite(terms, it, "components")
            res.history.append((it, "components", terms))
        W, Wbar, gamma, nbad = problem.weight_step(A, W, C, R, Wbar, gamma, tol=cd_tol)
        res.n_cd_not_converged += nbad
        terms = problem.objective(A, W, C, R, Wbar, gamma)
        _check_finite(terms, it, "weights")
        res.history.append((it, "weights", terms))
        cur = float(terms.sum())
        if extrapolate and it > 1:
            buf = buffer()
            cand = extrapolation(problem, (A, W, C, R), before, alpha, out=buf, gamma=gamma)
            if cand is not None:
                t_c = problem.objective(*cand)
                if improves(t_c, cur):
                    release(A)
                    A, W, C, R, Wbar, gamma = cand
                    terms = t_c
                    cur = float(t_c.sum())
                    res.history.append((it, "extrapolate", terms))
                    alpha *= 1.5
                else:
                    release(cand[0])
                    alpha = 1.0
            else:
                release(buf)
        release(before[0])
        before = None
        if end_iteration(res, it, prev, cur, tol, progress, start_label):
            break
        prev = cur
    if progress is not None and res.n_iter < max_iter:
        progress.update(max_iter - res.n_iter)
    spare.clear()
    res.W, res.C, res.R, res.Wbar, res.gamma = W, C, R, Wbar, gamma
    res.A = A if keep_A else None
    return res


def improves(terms, cur):
    """Whether a candidate's objective ``terms`` are finite and their sum below ``cur``."""
    return bool(np.all(np.isfinite(terms))) and float(terms.sum()) < cur


def end_iteration(res, it, prev, cur, tol, progress, label):
    """Close iteration ``it`` of an alternating loop (the local, frozen-motif and
    distributed fits share it): count it, report progress, and say whether the
    relative decrease of the objective fell below ``tol`` (``res.converged``)."""
    res.n_iter = it
    if progress is not None:
        progress.update(1)
        progress.set_postfix_str(f"{label} L={cur:.6g}")
    res.converged = prev - cur <= tol * max(abs(prev), np.finfo(float).tiny)
    return res.converged


# Starts run side by side only while their pair tensors (A_e and its spares,
# about four of them per start) stay below this many bytes each; larger ones
# run one after another, each on all threads, where the kernels also scale
# better
CONCURRENT_START_BYTES = 2**28


def side_by_side(fn, args, problem):
    """``[fn(*a) for a in args]``, several at once on Numba's threads when they fit.

    The kernels release the GIL and compute the same bits on any number of
    threads (:mod:`licchie.kernels._parallel`), so each start on a thread of
    its own returns what it would alone.  The starts share the kernel
    threads (:func:`~licchie.kernels._parallel.sharing`: one each with
    two starts on two threads, both again for the last one running); small
    starts spend much of their time outside the kernels' parallel ranges,
    which one kernel thread per start overlaps.

    Parameters
    ----------
    fn : callable returning one start's result
    args : list of tuples, one per start
    problem : Problem, whose size decides whether the starts fit side by side

    Returns
    -------
    list, in the order of ``args``
    """
    threads = numba.get_num_threads()
    n = min(threads, len(args))
    d = problem.X.shape[1]
    nbytes = 4 * problem.pairs.n_pairs * d * d * np.dtype(problem.dtype).itemsize
    if n <= 1 or nbytes > CONCURRENT_START_BYTES:
        return [fn(*a) for a in args]

    def one(a):
        numba.set_num_threads(threads)   # thread-local: a new thread has Numba's default
        with sharing():
            return fn(*a)

    with ThreadPoolExecutor(n, thread_name_prefix="licchie-start") as pool:
        return list(pool.map(one, args))


@contextlib.contextmanager
def numba_threads(n_jobs):
    """Set Numba's thread count (and BLAS to one thread) for the block, then restore."""
    previous = numba.get_num_threads()
    try:
        if n_jobs is not None:
            n = numba.config.NUMBA_NUM_THREADS if n_jobs == -1 else int(n_jobs)
            numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))
        # BLAS threads would compete with Numba's for the same cores
        with threadpool_limits(limits=1, user_api="blas"):
            yield
    finally:
        numba.set_num_threads(previous)
