"""The worker side of a distributed fit: one :class:`Partition` per block of sessions.

A partition is built once on its worker from its own observations (a slice
of whole sessions) and keeps everything pair-sized there for the whole fit:
its pairs, its :class:`~licchie.fit.problem.Problem`, the interaction
tensor ``A`` (and the spare tensors of the extrapolation), the weights
``W``.  Each method is one local piece of an iteration and returns only
reduced statistics (J x J, J x d x d, groups x J, the six objective terms),
whose sizes do not depend on the number of pairs.

The partitions live in a dict on the :class:`distributed.Worker` object
(``worker._licchie_partitions``), keyed by ``(fit id, partition)``; tasks
are pinned strictly to the partition's worker; when that worker leaves the
cluster, the client raises :class:`PartitionLostError` (``Cluster._gather``),
which fails the fit (the fault behaviour documented in
``docs/distributed.md``).  A task that finds no partition raises it too.
"""
from __future__ import annotations

import dataclasses
import threading
import time

import numpy as np

from .. import fit as F
from ..fit.reduced_start import ProfileBlocks, reduced_inputs
from ..kernels import pooled as KP
from ..kernels import reduced as KR

_ATTR = "_licchie_partitions"


class PartitionLostError(RuntimeError):
    """A partition's worker was lost during a distributed fit."""


def session_slice(obs, s0, s1):
    """The observations of sessions ``s0:s1`` as an Observations of their own.

    Sessions are contiguous in the observation list (frames are
    session-major), so this is a slice.  Global labels are kept (cell ids,
    populations, session names and each frame's session index), so the
    partition's pooling groups get the same names as in the whole recording.

    Returns
    -------
    obs : Observations
    frame_offset : int
        Global index of the slice's first frame.
    """
    fs = obs.frame_session
    f0 = int(np.searchsorted(fs, s0, side="left"))
    f1 = int(np.searchsorted(fs, s1, side="left"))
    o0, o1 = int(obs.frame_ptr[f0]), int(obs.frame_ptr[f1])
    prev = obs.prev_frame[f0:f1].copy()
    prev[prev >= 0] -= f0
    sub = dataclasses.replace(
        obs, features=np.ascontiguousarray(obs.features[o0:o1]),
        positions=np.ascontiguousarray(obs.positions[o0:o1]),
        cell=obs.cell[o0:o1].copy(), frame=obs.frame[o0:o1] - f0,
        frame_ptr=obs.frame_ptr[f0:f1 + 1] - o0, prev_frame=prev,
        frame_session=fs[f0:f1].copy(), frame_time_index=obs.frame_time_index[f0:f1].copy())
    return sub, f0


class Partition:
    """The fixed data and the current iterate of one partition (worker side).

    Parameters
    ----------
    obs : Observations
        Whole sessions (:func:`session_slice`).
    frame_offset : int
        Global index of its first frame (the blocks of the pooled statistics).
    params : dict
        ``radius, include_self, pair_weight, bandwidth, pooling_groups,
        pooling_window, lambdas, dtype, n_neighbors, sigma``.
    """

    def __init__(self, obs, frame_offset, params):
        self.obs = obs
        self.frame_offset = int(frame_offset)
        self.params = params
        self.pairs = F.build_pairs(obs, params["radius"], params["include_self"],
                                   params["pair_weight"], params["bandwidth"],
                                   params["pooling_groups"], params["pooling_window"])
        self.problem = None
        self.starts = {}
        self.busy = np.zeros(2)  # wall and CPU seconds spent in its methods

    def busy_seconds(self):
        """Wall and CPU seconds spent in this partition's methods so far."""
        return self.busy.copy()

    def describe(self):
        """What the client needs to set the partition up: sizes and group names."""
        return dict(n_pairs=int(self.pairs.n_pairs), group_names=self.pairs.group_names,
                    n_obs=int(self.obs.n_obs))

    def setup(self, ridge, order=None):
        """The fit's pair order, the smoothness graph and the :class:`Problem`.

        Groups keep this partition's ids (its ``group_names`` order): the
        client maps them to the fit's, and sends and receives only this
        partition's rows of the profiles.

        Parameters
        ----------
        ridge : float
            The A-step's ridge of the whole fit (from every observation).
        order : int64 (n_targets,) or None
            The partition's targets in the order of the whole fit's
            :func:`~licchie.fit.pairs.locality_order` (``order[new] = old``),
            None to keep the data's order.  In that order every sum over
            targets (the pooled statistics above all, on which the search is
            sensitive to the last bit) is taken as in the local fit.

        Returns
        -------
        counts : float64 (n_local_groups,)
            Pairs per group.
        n_edges : int
            Edges of the partition's smoothness graph.
        """
        pairs = self.pairs
        X = self.obs.features
        lam = self.params["lambdas"]
        # lam2 > 0: the graph links pairs of this partition only (docs/distributed.md)
        graph = (F.build_graph(X, pairs, self.params["n_neighbors"], self.params["sigma"])
                 if lam[1] > 0 else F.empty_graph(pairs.n_pairs))
        self.perm = None
        if order is not None:
            order = np.asarray(order, dtype=np.int64)
            pairs, graph, self.perm = F.reorder(pairs, graph, order)
        self.problem = F.Problem(X, pairs, graph, tuple(lam), ridge, self.params["dtype"],
                                 target_order=order)
        self.pairs = None  # the fit's pairs live in the problem
        counts = np.bincount(pairs.group, minlength=pairs.n_groups).astype(np.float64)
        return counts, int(graph.n_edges)

    def aggregate(self, n_blocks):
        """The pooled reduced problem's statistics of this partition's targets
        (:func:`licchie.kernels.pooled.aggregate`, blocks = global frames)."""
        pr = self.problem
        p = pr.pairs
        block = np.ascontiguousarray(self.obs.frame[p.tgt_obs] + self.frame_offset,
                                     dtype=np.int64)
        agg = KP.aggregate(pr.X, p.tgt_obs, p.tgt_ptr, p.src, p.gain, p.group, p.n_groups,
                           block, int(n_blocks))
        return agg, np.bincount(block, minlength=int(n_blocks))

    # ---------------------------------------------------------------- one start
    def _group_sums(self, W):
        p = self.problem.pairs
        out = np.zeros((p.n_groups, W.shape[1]))
        np.add.at(out, p.group, W)
        return out

    def start(self, key, Wbar, C, R):
        """Start ``key`` from pooled factors: ``W[e] = Wbar[g(e)]`` and one exact
        A-step from ``A = B`` (as :func:`licchie.fit.solver.run_start`,
        ``init="given"``).  Returns ``(group sums of W, n_bad)``."""
        return self._begin(key, np.ascontiguousarray(np.asarray(Wbar)[self.problem.pairs.group]),
                           C, R)

    def _begin(self, key, W, C, R):
        pr = self.problem
        B = F.K.lowrank_reconstruct(W, C, R, pr.dtype)
        A, nbad = pr.a_step(B, W, C, R)
        del B
        self.starts[key] = dict(A=A, W=W, C=C, R=R, before=None, cand=None, spare=[])
        return self._group_sums(W), nbad

    # ------------------------------------------- the settle step's exact start
    def source_scale(self):
        """``(sum_e |z_e|^2, n_pairs)`` of :func:`licchie.fit.reduced_start.deviation_weight`."""
        Z, _, _ = reduced_inputs(self.problem)
        return float(np.sum(np.einsum("ed,ed->e", Z, Z))), int(Z.shape[0])

    def _settle_inputs(self, R, lam_dev):
        Z, Y, kappa = reduced_inputs(self.problem)
        return np.ascontiguousarray(Z @ R), Y, kappa, lam_dev / kappa

    def profile_equations(self, C, R, lam_dev):
        """This partition's part of the normal equations of the profiles with the
        deviations eliminated (:func:`licchie.kernels.reduced.pooled_normal_equations`;
        its groups' ids): ``(row, col, value)`` of the gram's non-zeros (groups
        that share no target never meet) and the right-hand side."""
        p = self.problem.pairs
        U, Y, kappa, rho = self._settle_inputs(R, lam_dev)
        blocks = ProfileBlocks.of(self.problem.gain_components[0], C.shape[1])
        gram, rhs = KR.pooled_normal_equations(U, C, Y, kappa, p.tgt_ptr, p.group, p.n_groups,
                                               float(self.problem.lambdas[4]), rho,
                                               np.ones(kappa.size), *blocks.kernel_args())
        return (*blocks.triplets(gram), rhs)

    def settle_start(self, key, Wbar, C, R, lam_dev):
        """Start ``key`` at the exact minimiser of the A-eliminated objective for
        fixed ``C, R`` (profiles ``Wbar`` of this partition's groups; per-pair
        deviations :func:`licchie.kernels.reduced.pooled_deviations`), as
        :func:`licchie.fit.frozen.weights_at_motifs` starts.  Returns
        ``(group sums of W, n_bad)``."""
        p = self.problem.pairs
        U, Y, kappa, rho = self._settle_inputs(R, lam_dev)
        W = KR.pooled_deviations(U, C, Y, p.tgt_ptr, p.group, np.ascontiguousarray(Wbar), rho,
                                 np.ones(kappa.size))
        return self._begin(key, np.ascontiguousarray(W), C, R)

    def begin_given(self, key, W, C, R):
        """Start ``key`` at given weights ``W`` (this partition's pairs in data
        order, as :meth:`weights` returns them) with the exact A-step.
        Returns ``(group sums of W, n_bad)``."""
        W = np.asarray(W, dtype=np.float64)
        if self.perm is not None:
            W = W[self.perm]
        return self._begin(key, np.ascontiguousarray(W), C, R)

    def objective(self, key, Wbar, C=None, R=None, alpha=None, C_raw=None, R_raw=None):
        """Unweighted objective terms at the current iterate with profiles ``Wbar``
        (and ``C, R`` when given, else the partition's); with ``alpha``, also
        the extrapolation candidate ``cur + alpha (cur - before)`` (its C and
        R from the client's ``C_raw, R_raw``, the same unit scaling as
        :func:`licchie.fit.solver.extrapolation`) and its group sums of W."""
        s = self.starts[key]
        t = self._terms(s["A"], s["W"], s["C"] if C is None else C,
                        s["R"] if R is None else R, Wbar)
        if alpha is None:
            return t, None
        A0, W0 = s["before"]
        A1, W1 = s["A"], s["W"]
        A = np.subtract(A1, A0, out=s["spare"].pop() if s["spare"] else None)
        A *= alpha
        A += A1
        W = W1 + alpha * (W1 - W0)
        if C_raw is None:   # motifs frozen (the settle step): they stay as they are
            C, R = s["C"], s["R"]
        else:
            W, C, R, _ = F.unit_columns(W, C_raw, R_raw)
        s["cand"] = (A, W, C, R)
        return t, self._group_sums(W)

    def candidate_objective(self, key, Wbar):
        """Unweighted terms of the extrapolation candidate with profiles ``Wbar``."""
        s = self.starts[key]
        A, W, C, R = s["cand"]
        return self._terms(A, W, C, R, Wbar)

    def _terms(self, A, W, C, R, Wbar):
        pr = self.problem
        p, g = pr.pairs, pr.graph
        return F.K.objective_terms(A, pr.X, p.tgt_obs, p.tgt_ptr, p.src, p.gain, g.nbr_ptr,
                                   g.nbr_idx, g.nbr_w, W, C, R, Wbar, p.group)

    def _settle(self, s, accept):
        """Keep or drop the pending extrapolation candidate; recycle the old A."""
        if s["cand"] is not None:
            if accept:
                s["spare"].append(s["A"])
                s["A"], s["W"], s["C"], s["R"] = s["cand"]
            else:
                s["spare"].append(s["cand"][0])
            s["cand"] = None
        if s["before"] is not None:
            s["spare"].append(s["before"][0])
            s["before"] = None

    def a_step(self, key, accept=False):
        """Settle the last candidate, then the A-step, and the component step's
        statistics ``(W^T W, S = sum_e W[e, j] A_e, n_bad)``."""
        s = self.starts[key]
        self._settle(s, accept)
        pr = self.problem
        A, nbad = pr.a_step(s["A"], s["W"], s["C"], s["R"],
                            out=s["spare"].pop() if s["spare"] else None)
        s["before"] = (s["A"], s["W"])
        s["A"] = A
        return s["W"].T @ s["W"], F.K.weighted_sum(A, s["W"]), nbad

    def weight_step(self, key, C, R, Wbar):
        """The weight step with the new ``C, R`` and the old profiles; returns the
        new weights' group sums and ``n_bad``."""
        s = self.starts[key]
        pr = self.problem
        lam1, _, _, lam4, lam5 = pr.lambdas
        b = F.K.bilinear_cr(s["A"], C, R)
        G = (C.T @ C) * (R.T @ R)
        W, nbad = F.K.weight_lasso(b, Wbar, pr.pairs.group, G, lam1, lam4, lam5, s["W"],
                                   1000, 1e-10)
        s["W"], s["C"], s["R"] = W, C, R
        return self._group_sums(W), int(nbad)

    def finish(self, key, accept=False):
        """Settle, free the tensors of start ``key`` and keep its W."""
        s = self.starts[key]
        self._settle(s, accept)
        s["A"] = s["before"] = s["cand"] = None
        s["spare"].clear()
        return None

    def forget(self, key):
        """Drop start ``key`` (a screened candidate that is not polished)."""
        self.starts.pop(key, None)
        return None

    def weights(self, key):
        """W of start ``key`` in this partition's data order (n_pairs, J)."""
        W = self.starts[key]["W"]
        if self.perm is not None:
            W = W[F.inverse_permutation(self.perm)]
        return np.ascontiguousarray(W)


# ------------------------------------------------------------------ task entry points
def _store():
    from distributed import get_worker
    w = get_worker()
    if not hasattr(w, _ATTR):
        setattr(w, _ATTR, {})
    return getattr(w, _ATTR), w.address


# the HDF5 library under netCDF4 is not thread-safe: two worker threads of one
# process that opened two files at once failed with "NetCDF: HDF error" (CI,
# test_workers_read_their_own_files, a LocalCluster of threads)
_READ_LOCK = threading.Lock()


def read_sessions(path, s0, n_obs, session_names, population_names, feature_names):
    """The observations of one netCDF file as sessions ``s0, s0 + 1, ...`` of
    the whole fit: features in the fit's order, populations and sessions by
    the fit's names (as :meth:`Recording.concat` of all files labels them).
    One file at a time per process (``_READ_LOCK``)."""
    from ..data import as_recording
    with _READ_LOCK:
        o = as_recording(path).obs
    missing = sorted(set(feature_names) - set(o.feature_names))
    if missing or o.n_obs != n_obs:
        raise ValueError(f"{path!r} changed since the client read it ({n_obs} observations "
                         f"expected, {o.n_obs} read; missing features {missing}); fit again.")
    cols = [o.feature_names.index(f) for f in feature_names]
    pops = np.array([list(population_names).index(p) for p in o.population_names],
                    dtype=np.int64)
    return dataclasses.replace(
        o, features=np.ascontiguousarray(o.features[:, cols]),
        feature_names=tuple(feature_names), cell_population=pops[o.cell_population],
        population_names=tuple(population_names), frame_session=o.frame_session + int(s0),
        session_names=tuple(session_names))


def build(fit_id, part, obs, frame_offset, params):
    """Build partition ``part`` of fit ``fit_id`` on this worker (a task); ``obs``
    is an Observations or the arguments of :func:`read_sessions`."""
    if isinstance(obs, dict):
        obs = read_sessions(**obs)
    store, addr = _store()
    store[(fit_id, part)] = Partition(obs, frame_offset, params)
    return addr


def call(fit_id, part, method, *args):
    """Run ``Partition.method(*args)`` on this worker's partition (a task)."""
    store, addr = _store()
    p = store.get((fit_id, part))
    if p is None:
        raise PartitionLostError(
            f"Partition {part} of distributed fit {fit_id} is not on worker {addr}: the "
            "worker that held it was lost during the fit.")
    t0, c0 = time.perf_counter(), time.thread_time()
    out = getattr(p, method)(*args)
    # wall and CPU seconds of this partition's work, for benchmarks/dask_scale.py
    p.busy += np.array([time.perf_counter() - t0, time.thread_time() - c0])
    return out


def worker_addresses(dask_scheduler=None):
    """Addresses of the scheduler's current workers (``Client.run_on_scheduler``)."""
    return list(dask_scheduler.workers)


def drop(fit_id, dask_worker=None):
    """Forget every partition of fit ``fit_id`` on this worker (``Client.run``
    passes the worker as ``dask_worker``)."""
    store = getattr(dask_worker, _ATTR, {})
    for k in [k for k in store if k[0] == fit_id]:
        del store[k]
    return None


def peak_memory():
    """Peak resident set size of this worker process in bytes (Linux ru_maxrss)."""
    import resource
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024
