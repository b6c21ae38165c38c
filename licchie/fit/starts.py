"""Starting factors of the alternating minimisation.

Every start gives ``(W, C, R)`` with unit columns of ``C`` and ``R``:

* ``"parafac"`` (MODEL.md): :func:`initial_interactions` (the lam1 = 0
  A-step, shared by all starts) and its CP decomposition
  (:func:`parafac_init`);
* ``"groups"``: least-squares interaction matrices of coarse groups
  (:func:`group_matrices`), their CP decomposition, refined on the reduced
  objective (:func:`group_init`, :mod:`licchie.fit.reduced_start`);
* ``"classes"``: :mod:`licchie.fit.classes`.

:func:`bootstrap_counts` resamples the targets for bootstrap starts.
"""
from __future__ import annotations

import numpy as np

from .. import kernels as K
from .pooling import fitted_gains, gain_components, normalise_gains, unit_columns
from .problem import Problem
from .reduced_start import reduced_inputs, reduced_init


def initial_interactions(problem: Problem):
    """One A-step with lam1 = 0 from A = 0 (shared by every start)."""
    E = problem.pairs.n_pairs
    d = problem.X.shape[1]
    A0 = np.zeros((E, d, d), dtype=problem.dtype)
    J0 = 1
    zW = np.zeros((E, J0))
    zC = np.zeros((d, J0))
    A, _ = problem.a_step(A0, zW, zC, zC, lam1=0.0)
    return A


def parafac_init(A, J, seed, n_iter_max=100, als="kernels"):
    """CP of the stacked tensor (tensorly's random init and CP-ALS), scale moved into W.

    The random factors are tensorly's ``random_cp`` with the start's seed, the
    start of its ``parafac(init="random")``.  The ALS iterations are tensorly's
    ``parafac`` (``tol=1e-8``, no normalisation, no line search), by default
    (``als="kernels"``) run through the package's contraction kernels
    (:func:`licchie.kernels.cp_als`, tested equal to tensorly's result), which
    never copy ``A``; ``als="tensorly"`` calls tensorly itself (the naive
    benchmark does).
    """
    import tensorly as tl
    from tensorly.decomposition import parafac
    from tensorly.random import random_cp

    rng = np.random.default_rng(seed)
    E, d, _ = A.shape
    # no temporary of A's size (np.abs(A) would be one)
    ok = A.size > 0 and np.isfinite(A).all() and (A.max() > 0 or A.min() < 0)
    if ok:
        state = int(rng.integers(2**31 - 1))
        try:
            if als == "tensorly":
                with tl.backend_context("numpy"):
                    cp = parafac(A, rank=J, init="random", n_iter_max=n_iter_max, tol=1e-8,
                                 random_state=state, normalize_factors=False)
                Wf, Cf, Rf = (np.asarray(f, dtype=np.float64) for f in cp.factors)
                Wf = Wf * np.asarray(cp.weights, dtype=np.float64)[None, :]
            else:
                # what parafac(init="random") starts from (its initialize_cp)
                _, (W0, C0, R0) = random_cp(A.shape, J, random_state=state,
                                            normalise_factors=False)
                Wf, Cf, Rf, _ = K.cp_als(A, W0, C0, R0, n_iter_max, 1e-8)
        except np.linalg.LinAlgError:
            # CP-ALS solves singular systems when the tensor's rank is below J
            # (e.g. one target, sparse first A-step): start from random factors
            ok = False
    if not ok:
        Wf = np.zeros((E, J))
        Cf = rng.normal(size=(d, J))
        Rf = rng.normal(size=(d, J))
    # a column CP left at zero gets a random direction and zero weight
    W, C, R, _ = unit_columns(Wf, Cf, Rf, rng)
    return W, C, R


def bootstrap_counts(problem: Problem, rng):
    """Multinomial resample counts of the targets, drawn in the user's order
    (so a start does not depend on the order the fit works in), returned in
    the problem's target order: float64 (n_targets,)."""
    nt = problem.pairs.tgt_ptr.shape[0] - 1
    draw = rng.multinomial(nt, np.full(nt, 1.0 / nt)).astype(np.float64)
    order = problem.target_order
    return draw if order is None else draw[order]


def group_matrices(Z, Y, kappa, tgt_ptr, group, n_groups, gain_rounds=0):
    """Least-squares interaction matrix of every group, weighted by ``kappa``.

    Solves ``min sum_t kappa_t ||y_t - sum_g M_g (sum_{e in t, g(e)=g} z_e)||^2``
    with a small ridge.  For pooled data ``M_g = C diag(mean profile of g)
    R^T``, so the stack is a CP tensor with the model's own factors.  With
    ``gain_rounds > 0`` every target also has a gain ``gamma_t`` on its
    prediction (pooling with target gains), fitted by that many alternations
    of the matrices and the gains (each an exact least-squares update).

    Parameters
    ----------
    Z : float64 (n_pairs, d)
    Y : float64 (n_targets, d)
    kappa : float64 (n_targets,)
    tgt_ptr : int64 (n_targets + 1,)
    group : int64 (n_pairs,)
    n_groups : int

    Returns
    -------
    T : float64 (n_groups, d, d)
    """
    import scipy.sparse as sp
    import scipy.sparse.linalg as spl

    d = Z.shape[1]
    nt = tgt_ptr.shape[0] - 1
    tid = np.repeat(np.arange(nt), np.diff(tgt_ptr))
    rows = np.repeat(tid, d)
    cols = (group[:, None] * d + np.arange(d)[None, :]).ravel()
    Phi = sp.csr_matrix((Z.ravel(), (rows, cols)), shape=(nt, n_groups * d))
    Phi.sum_duplicates()
    gamma = np.ones(nt)
    comps = gain_components(group, tid, n_groups) if gain_rounds else None
    for r in range(gain_rounds + 1):
        gPhi = sp.diags(gamma) @ Phi
        kPhi = sp.diags(kappa) @ gPhi
        gram = (gPhi.T @ kPhi).tocsc()
        # source states of a linear network fill few directions after the
        # first frame (span C); the ridge keeps the matrices at ~0 in the others
        ridge = 1e-3 * max(float(gram.diagonal().mean()), np.finfo(float).tiny)
        theta = np.asarray(spl.spsolve(gram + ridge * sp.eye(n_groups * d, format="csc"),
                                       np.asarray(kPhi.T @ Y)))
        if r < gain_rounds:
            pred = np.asarray(Phi @ theta)
            gamma = fitted_gains(pred, Y, fallback=gamma)
            gamma, _ = normalise_gains(gamma, None, comps)
    theta = theta.reshape(n_groups, d, d)
    return np.ascontiguousarray(theta.transpose(0, 2, 1))


def group_init(problem: Problem, group, n_groups, J, seed, bootstrap=False,
               max_sweeps=200, tol=1e-7):
    """Start factors from group interaction matrices, refined on the reduced objective.

    1. :func:`group_matrices` over the coarse groups (with ``bootstrap``, on a
       bootstrap resample of the targets drawn from ``seed``);
    2. their CP decomposition (tensorly PARAFAC, random init from ``seed``)
       gives ``C`` and ``R``;
    3. :func:`reduced_init` from those factors, on all targets.

    Returns
    -------
    W, C, R, history (the reduced objective after every sweep)
    """
    import tensorly as tl
    from tensorly.decomposition import parafac

    rng = np.random.default_rng(seed)
    Z, Y, kappa = reduced_inputs(problem)
    if bootstrap:
        kappa = kappa * bootstrap_counts(problem, rng)
    T = group_matrices(Z, Y, kappa, problem.pairs.tgt_ptr, group, n_groups,
                       gain_rounds=5 if problem.target_gain else 0)
    d = T.shape[1]
    C0 = R0 = None
    if np.isfinite(T).all() and np.abs(T).max() > 0:
        try:
            with tl.backend_context("numpy"):
                cp = parafac(tl.tensor(T), rank=J, init="random", n_iter_max=500,
                             tol=1e-10, random_state=int(rng.integers(2**31 - 1)),
                             linesearch=True)
            C0 = np.asarray(cp.factors[1], dtype=np.float64)
            R0 = np.asarray(cp.factors[2], dtype=np.float64)
        except np.linalg.LinAlgError:
            pass
    if C0 is None:
        C0 = rng.normal(size=(d, J))
        R0 = rng.normal(size=(d, J))
    return reduced_init(problem, J, int(rng.integers(2**31 - 1)), max_sweeps, tol, C0, R0)
