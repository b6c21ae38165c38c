"""Distributed fits on Dask (``LICCHIE(backend="dask")`` or ``fit(X, client=...)``).

Every session (or netCDF file, when ``X`` is a list of paths) is a
partition that lives on one worker for the whole fit: the worker reads its
file, or receives the session's observations scattered once, builds the
pairs, graph and interaction tensors and keeps them (:mod:`._partition`).  The client holds the observations, the reduced
statistics and, at the end, the fitted weights (n_pairs x J); never a
pairs x d x d tensor.  Each iteration is map-reduce (:mod:`._driver`):
A-step and weight step on the partitions; the component step from the
summed ``W^T W`` and ``S_j = sum_e W[e, j] A_e``, the pooled profiles from
summed group sums, and the objective as a sum of partition terms, on the
client.  The global search of the pooled reduced problem runs on the client
on the partitions' summed statistics.

Restrictions of this first version (a clear error otherwise): the pooled
fit's start (``init="auto"`` or ``"search"`` with ``pooling > 0``), no
``target_gain``, no ``class_restarts``.  With ``smoothness > 0`` the graph
links pairs within each session only (a warning when there are several
sessions; the local fit's graph also links pairs of different sessions).

Fault behaviour: a worker lost mid-fit fails the fit with
:class:`PartitionLostError`; the estimator is left as it was (its fitted
attributes are set only at the very end) and the other workers forget the
fit's partitions.  See ``docs/distributed.md``.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from .. import fit as F
from .. import labels as L
from .._setup import _progress, _warn_self_only
from ..data import Recording, as_recording
from ..fit import global_start as FG
from ..params import resolve_lambdas, resolve_solver_options, seed_sequence
from ._driver import (Cluster, Reducer, merge_aggregates, pooled_data, run_start,
                      settle_profiles)
from ._partition import PartitionLostError, session_slice

__all__ = ["fit_dask", "setup", "reduced_data", "run_start", "PartitionLostError", "Cluster",
           "merge_aggregates", "session_slice", "resolve_client"]


def resolve_client(client):
    """``client``, or the current default :class:`distributed.Client`."""
    try:
        import distributed
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("backend='dask' needs dask.distributed: pip install "
                          "'licchie[dask]'.") from exc
    if client is not None:
        return client
    try:
        return distributed.get_client()
    except ValueError as exc:
        raise ValueError("backend='dask' needs a distributed.Client: create one first "
                         "(e.g. Client(LocalCluster(...)) or Client('tcp://scheduler:8786')) "
                         "or pass fit(X, client=client).") from exc


def _check_supported(est, lam, opts):
    init = est._init_method()
    if init != "search":
        raise NotImplementedError(
            f"backend='dask' supports the pooled fit's start only (init='auto' or "
            f"'search' with lambdas pooling > 0); got init={est.init!r} with pooling="
            f"{lam.pooling}. Use backend='local' for this fit.")
    if est.target_gain is True:
        raise NotImplementedError("backend='dask' does not support target_gain=True yet; "
                                  "use backend='local'.")
    if opts["class_restarts"] > 0:
        raise NotImplementedError("backend='dask' does not support solver_options"
                                  "['class_restarts'] > 0 yet; use backend='local'.")
    if est.standardize is not None:
        raise NotImplementedError(
            f"backend='dask' does not support standardize={est.standardize!r} yet; "
            "standardise the features before the fit, or use backend='local'.")


def _check_one_space(obs):
    """The distributed fit knows one feature set: refuse population feature spaces."""
    if not np.all(np.isfinite(obs.features)):
        raise NotImplementedError(
            "backend='dask' does not support populations with different feature sets "
            "yet (NaN features); use backend='local', or give every population the "
            "same features.")


@dataclass
class Setup:
    """A distributed fit's partitions, built and set up (see :func:`setup`)."""

    cluster: Cluster
    reducer: Reducer
    recording: object
    pairs: object          # the whole recording's pairs (labels only; no tensors)
    group_index: dict      # partition -> int64 global id of each of its groups
    lambdas: object
    opts: dict
    n_edges: int
    ridge: float           # the A-step's ridge of the whole fit
    order: object          # the local fit's target order (locality_order), or None
    part_pairs: dict       # partition -> (start, stop) of its pairs in ``pairs``


def setup(est, X, client=None):
    """Check ``est``'s parameters, build the partitions on the workers and set
    them up (pairs, groups, fit order, Problem).  The caller closes
    ``out.cluster`` (also after a failure).

    Returns
    -------
    Setup
    """
    est._validate_params()
    lam = resolve_lambdas(est.lambdas)
    opts = resolve_solver_options(est.solver_options)
    _check_supported(est, lam, opts)
    rec, blocks = _read(X)
    obs = rec.obs
    _check_one_space(obs)
    client = resolve_client(client)
    pairs = F.build_pairs(obs, est.radius, est.include_self, est.pair_weight, est.bandwidth,
                          est._pooling(), est.pooling_window)
    est._check_problem(rec, pairs)
    _warn_self_only(rec, pairs, est.radius)
    if lam.smoothness > 0 and rec.n_sessions > 1:
        warnings.warn(
            "backend='dask' with lambdas smoothness > 0: the smoothness graph links the "
            "nearest pairs within each session only, whereas the local fit's graph also "
            "links pairs of different sessions; the two fits minimise different objectives "
            "(docs/distributed.md).", UserWarning, stacklevel=4)
    params = dict(radius=est.radius, include_self=est.include_self,
                  pair_weight=est.pair_weight, bandwidth=est.bandwidth,
                  pooling_groups=est._pooling(), pooling_window=est.pooling_window,
                  lambdas=tuple(lam), dtype=_dtype(est.dtype), n_neighbors=est.n_neighbors,
                  sigma=est.sigma)
    Xf = obs.features
    ridge = F.RIDGE_REL * max(float(np.mean(Xf * Xf)), np.finfo(float).tiny)
    cl = Cluster(client, obs, params, blocks)
    try:
        info = cl.map("describe", lambda k: ())
        index = {name: g for g, name in enumerate(pairs.group_names)}
        gi = {k: np.array([index[n] for n in d["group_names"]], dtype=np.int64)
              for k, d in zip(cl.parts, info)}
        n_sess = np.bincount(obs.session[pairs.tgt], minlength=rec.n_sessions)
        got = np.array([d["n_pairs"] for d in info])
        want = np.array([n_sess[cl.blocks[b][0]:cl.blocks[b][1]].sum() for b in cl.parts])
        if not np.array_equal(got, want):  # pragma: no cover - a bug
            raise RuntimeError("The partitions' pairs differ from the recording's.")
        order = F.locality_order(Xf, pairs) if F.REORDER_PAIRS else None
        orders = _block_orders(obs, pairs, order, rec.n_sessions, cl.blocks)
        # each partition holds a consecutive run of the pairs, in partition order
        ends = np.cumsum(np.concatenate([[0], want]))
        part_pairs = {k: (int(a), int(b)) for k, a, b in zip(cl.parts, ends[:-1], ends[1:])}
        out = cl.map("setup", lambda k: (ridge, orders[k]))
        counts = np.zeros(pairs.n_groups)
        for k, (c, _) in zip(cl.parts, out):
            counts[gi[k]] += c
    except BaseException:
        cl.close()
        raise
    return Setup(cl, Reducer(cl, gi, counts, lam), rec, pairs, gi, lam, opts,
                 sum(e for _, e in out), ridge, order, part_pairs)


def fit_dask(est, X, client=None):
    """The fitted attributes of ``est`` on ``X``, fitted on a Dask cluster.

    Parameters
    ----------
    est : LICCHIE
        Its parameters are read; nothing is set on it.
    X : as for :meth:`LICCHIE.fit`
    client : distributed.Client or None
        None: the current default client.

    Returns
    -------
    dict
        Attribute name -> value, as the local fit sets them; plus
        ``dask_stats_`` (partitions, payload bytes and calls of the
        map-reduce, worker addresses) and ``_grouping_cv`` (the check of
        ``pooling_groups="auto"``, :func:`licchie.fit.grouping_cv`, or
        None), which is not an attribute.

    Raises
    ------
    PartitionLostError
        A worker was lost during the fit.
    """
    su = None
    try:
        su = setup(est, X, client)
        cl = su.cluster
        with F.numba_threads(est.n_jobs):  # as the local fit's search (BLAS 1 thread)
            results, ginfo = _search_starts(est, su, seed_sequence(est.random_state))
        best = int(np.argmin([r.objective for r in results]))
        obs, pairs = su.recording.obs, su.pairs
        cv = None
        if est._checks_groups():
            # the check of pooling_groups="auto" on the driver, which holds the
            # recording and its pairs (one aggregation, as the search's); it
            # reads only the motifs, which the settle step keeps
            cv = F.grouping_cv(obs.features, pairs, obs, results[best].C, results[best].R)
        replaced = cv is not None and cv.prefers_coarse  # "auto" fits class profiles
        # the gain check on the driver too (licchie.fit.gain_heldout; motifs only)
        gcheck = (None if replaced else
                  F.gain_check(obs.features, pairs, results[best].C, results[best].R))
        key = f"start{best}"
        if su.opts["settle_weights"] and not replaced:
            if _settle(est, su, results[best]):
                key = "settle"
        W = np.concatenate(cl.map("weights", lambda k: (key,)))
        stats = dict(n_partitions=len(cl.parts), bytes=cl.bytes, calls=cl.calls,
                     workers=sorted(set(cl.address.values())))
    except Exception as exc:
        if _lost_worker(exc):
            raise PartitionLostError(
                "A Dask worker was lost during the distributed fit, and with it the "
                "interaction tensors of its sessions; the fit was abandoned and the "
                "estimator left unchanged. Fit again (the partitions are rebuilt from the "
                f"data): {exc}") from exc
        raise
    finally:
        if su is not None:
            su.cluster.close()
    ones = np.ones(pairs.n_pairs)
    for r in results:
        r.pair_gain = ones
    results[best].W = W
    fitted = L.fitted_attributes(obs, pairs, su.n_edges, results, best)
    L.add_verdict(fitted, results[best], ginfo, "search", su.lambdas)
    fitted["class_restarts_"] = None
    fitted["gain_check_"] = None if gcheck is None else gcheck.as_dict()
    est._warn_fit(results, fitted, "search")
    fitted["dask_stats_"] = stats
    fitted["_grouping_cv"] = cv
    return fitted


def _settle(est, su, result):
    """:func:`licchie.fit.settle_weights` on the partitions: the weights that
    minimise the objective at the fit's motifs, kept (under the key
    ``"settle"``) when they lower it.  Returns whether they were kept."""
    cl, red = su.cluster, su.reducer
    Wbar, lam_dev = settle_profiles(cl, red, result.C, result.R)
    if F.frozen.exact_for(su.lambdas, target_gain=False):  # no gains on Dask
        res = _settle_exact(est, su, result, Wbar, lam_dev)
    else:
        res = run_start(cl, red, "settle", Wbar, result.C, result.R, result.seed,
                        F.frozen.ITER_PER_FIT_ITER * est.max_iter, est.tol,
                        extrapolate=bool(su.opts["extrapolate"]), frozen_lam_dev=lam_dev)
    return F.frozen.adopt_settled(result, res)


def _settle_exact(est, su, result, Wbar, lam_dev):
    """The settle step of :func:`licchie.fit.frozen.descend_weights`: its
    coordinate descent on the driver, in the local fit's pair order (so the
    two fits take the same steps), then the A-step and the objective on the
    partitions.  The driver holds the recording and its pairs already; this
    adds pair-sized arrays of ``d + J`` columns, never an ``A_e``."""
    from ..fit import reduced_start as RS
    from ..kernels import reduced as KR
    cl, red = su.cluster, su.reducer
    pairs = su.pairs
    graph = F.empty_graph(pairs.n_pairs)
    fpairs, perm = pairs, None
    if su.order is not None:
        fpairs, graph, perm = F.reorder(pairs, graph, su.order)
    problem = F.Problem(su.recording.obs.features, fpairs, graph, tuple(su.lambdas), su.ridge,
                        target_order=su.order)
    C, R = result.C, result.R
    # the start of weights_at_motifs: each pair's deviation from its profile
    Z, Y, kappa = RS.reduced_inputs(problem)
    W0 = KR.pooled_deviations(np.ascontiguousarray(Z @ R), C, Y, fpairs.tgt_ptr, fpairs.group,
                              np.ascontiguousarray(Wbar), lam_dev / kappa,
                              np.ones(kappa.size))
    del Z, Y
    W, phi, converged = F.frozen.descend(problem, C, R, W0,
                                         F.frozen.CD_SWEEPS_PER_ITER * F.frozen.ITER_PER_FIT_ITER
                                         * est.max_iter, F.frozen.CD_TOL_FACTOR * est.tol)
    if perm is not None:
        W = W[F.inverse_permutation(perm)]
    out = cl.map("begin_given",
                 lambda k: ("settle", W[slice(*su.part_pairs[k])], C, R))
    Wbar = red.profiles([g for g, _ in out])
    terms = red.weighted([t for t, _ in cl.map("objective",
                                                lambda k: ("settle", red.local(Wbar, k)))])
    cl.map("finish", lambda k: ("settle", False))
    res = F.frozen.FrozenResult(W, Wbar, None, n_iter=phi.size - 1, converged=converged,
                                n_cd_not_converged=sum(n for _, n in out))
    res.history.append((res.n_iter, "weights", terms))
    res.objective = float(terms.sum())
    return res


def _read(X):
    """The recording, and its partitions: ``(s0, s1, path)`` per netCDF file when
    ``X`` is a list of paths (the workers read them), else None (one
    partition per session, scattered)."""
    import os
    if isinstance(X, (list, tuple)) and X and all(isinstance(x, (str, os.PathLike))
                                                  for x in X):
        recs = [as_recording(x) for x in X]
        rec = recs[0] if len(recs) == 1 else Recording.concat(recs)  # as as_recording
        ends = np.cumsum([0] + [r.n_sessions for r in recs])
        return rec, [(int(a), int(b), os.fspath(x)) for a, b, x in zip(ends, ends[1:], X)]
    return as_recording(X), None


def _block_orders(obs, pairs, order, n_sessions, blocks):
    """Each partition's targets in the local fit's order (None: the data's order).

    ``order`` (:func:`licchie.fit.pairs.locality_order` over all targets, or
    None) restricted to each partition's sessions (whose targets are a
    contiguous range of them): int64 arrays of the partition's target indices.
    """
    if order is None:
        return [None] * len(blocks)
    sess = obs.session[pairs.tgt_obs]
    start = np.searchsorted(sess, np.arange(n_sessions + 1))
    by = sess[order]
    return [order[(by >= s0) & (by < s1)] - start[s0] for s0, s1, _ in blocks]


def _dtype(name):
    return {"float64": np.float64, "float32": np.float32}[name]


def _lost_worker(exc):
    if isinstance(exc, PartitionLostError):
        return True
    try:
        from distributed.comm.core import CommClosedError
        from distributed.scheduler import KilledWorker
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, (KilledWorker, CommClosedError))


def reduced_data(su):
    """:func:`licchie.fit.global_start.reduced_data` from the partitions'
    statistics: ``(PooledData, move_groups)``."""
    obs, pairs = su.recording.obs, su.pairs
    data = pooled_data(su.cluster, su.group_index, pairs.n_groups, obs.n_frames)
    return data, FG.group_classes(pairs, obs)


def _search_starts(est, su, seq):
    """:func:`licchie.fit.global_start.search_starts` on the partitions: the
    search and verdict on the summed statistics, the polishes distributed."""
    cl, red, opts = su.cluster, su.reducer, su.opts
    data, move = reduced_data(su)
    res, diag, cands, seeds, data, _ = FG.searched_candidates(
        data, move, est.n_components, opts, seq, est.verbose > 0, est.n_init)

    def polish(key, c, seed_, n_iter, bar, label):
        return run_start(cl, red, key, c.Wbar, np.ascontiguousarray(c.C),
                         np.ascontiguousarray(c.R), int(seed_), n_iter, est.tol,
                         extrapolate=bool(opts["extrapolate"]),
                         record_steps=bool(opts["record_steps"]), progress=bar,
                         start_label=label)

    ids = {id(c): k for k, c in enumerate(cands)}

    def short_objective(c, s_):
        r = polish(f"screen{ids[id(c)]}", c, s_, FG.SCREEN_ITER, None, "screen")
        cl.map("forget", lambda k: (f"screen{ids[id(c)]}",))
        return r.objective

    cands, seeds = FG.screened(cands, seeds, est.n_init, short_objective)
    progress = _progress(est.verbose, est.n_init * est.max_iter)
    results = []
    try:
        for k, c in enumerate(cands):
            results.append(polish(f"start{k}", c, seeds[k], est.max_iter, progress,
                                  f"polish {k + 1}"))
    finally:
        if progress is not None:
            progress.close()
    return results, FG.GlobalStart(res, diag, data)
