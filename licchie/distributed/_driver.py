"""The client side of a distributed fit: partitions, map-reduce, the pooled search.

:class:`Cluster` places one partition per session on the workers (greedy by
observations), scatters each session's observations once to its worker and
runs the partitions' methods (:mod:`._partition`) as tasks pinned there.
:func:`run_start` is :func:`licchie.fit.solver.run_start` (``init="given"``)
with every sum over pairs a sum over partitions; :func:`pooled_data` merges
the partitions' statistics of the pooled reduced problem, on which the
global search runs on the client.
"""
from __future__ import annotations

import uuid

import numpy as np

from .. import fit as F
from ..fit import reduced_start as RS
from ..fit.search import PooledData
from ..fit.solver import StartResult, _check_finite, end_iteration, improves
from ..kernels import pooled as KP
from . import _partition as P


# seconds between checks that the partitions' workers are still there
POLL_S = 1.0


def _nbytes(obj):
    """Bytes of the arrays (and numbers) in a task's arguments or result."""
    if isinstance(obj, np.ndarray):
        return obj.nbytes
    if isinstance(obj, (tuple, list)):
        return sum(_nbytes(o) for o in obj)
    if isinstance(obj, dict):
        return sum(_nbytes(o) for o in obj.values())
    if isinstance(obj, (int, float, bool, np.number)):
        return 8
    return 0


class Cluster:
    """The partitions of one fit on a :class:`distributed.Client`'s workers.

    Parameters
    ----------
    client : distributed.Client
    obs : Observations
        The whole recording (observations only; pairs and tensors are built
        on the workers).
    params : dict
        See :class:`._partition.Partition`.
    blocks : list of (s0, s1, path or None), optional
        Partition ``b`` holds sessions ``s0:s1``; with a path the worker
        reads them from that netCDF file, otherwise the client scatters
        them.  Default: one partition per session, scattered.
    """

    def __init__(self, client, obs, params, blocks=None):
        self.client = client
        self.fit_id = uuid.uuid4().hex[:12]
        self.bytes = 0          # payload bytes of the map-reduce calls so far
        self.calls = 0
        workers = sorted(client.scheduler_info()["workers"])
        if not workers:
            raise RuntimeError("The Dask client has no workers; start a cluster first.")
        n_sess = len(obs.session_names)
        if blocks is None:
            blocks = [(s, s + 1, None) for s in range(n_sess)]
        self.blocks = blocks
        sess_obs = np.bincount(obs.session, minlength=n_sess)
        load = {w: 0 for w in workers}
        futures = []
        size = [int(sess_obs[s0:s1].sum()) for s0, s1, _ in blocks]
        for b in np.argsort(-np.asarray(size), kind="stable"):  # largest first
            s0, s1, path = blocks[b]
            w = min(workers, key=lambda a: (load[a], workers.index(a)))
            load[w] += size[b]
            sub, f0 = P.session_slice(obs, s0, s1)
            if path is None:  # the observations, scattered once to their worker
                data = client.scatter(sub, workers=[w], direct=False)
            else:  # the worker reads the file itself
                data = dict(path=path, s0=s0, n_obs=sub.n_obs,
                            session_names=obs.session_names,
                            population_names=obs.population_names,
                            feature_names=obs.feature_names)
            futures.append((int(b), w, client.submit(
                P.build, self.fit_id, int(b), data, f0, params, workers=[w],
                allow_other_workers=False, pure=False)))
        futures.sort()
        self.parts = [b for b, _, _ in futures]
        self.address = {b: w for b, w, _ in futures}
        try:
            self._gather([f for _, _, f in futures])
        except BaseException:
            self.close()
            raise

    def map(self, method, args):
        """``Partition.method(*args[k])`` on every partition ``k``; results in
        partition order.  ``args`` is a function of the partition index."""
        futs = []
        for k in self.parts:
            a = args(k)
            self.bytes += _nbytes(a)
            futs.append(self.client.submit(
                P.call, self.fit_id, k, method, *a, workers=[self.address[k]],
                allow_other_workers=False, pure=False))
        out = self._gather(futs)
        self.bytes += _nbytes(out)
        self.calls += 1
        return out

    def _gather(self, futs):
        """Results of ``futs``; :class:`PartitionLostError` as soon as a worker
        that owns a partition has left the cluster.

        Tasks are pinned strictly to their partition's worker (with loose
        restrictions Dask's work stealing may run them elsewhere when the
        owner is busy), so a task of a lost worker would wait forever: while
        waiting, the scheduler's worker list is checked every ``POLL_S``.
        """
        owners = set(self.address.values())
        out = []
        # result by result, each with a timeout: a result finished on a worker
        # that dies before it is fetched is lost, and a plain gather would wait
        # forever for its (strictly pinned) recomputation
        while len(out) < len(futs):
            try:
                out.append(futs[len(out)].result(timeout=POLL_S))
            except TimeoutError:
                alive = set(self.client.run_on_scheduler(P.worker_addresses))
                lost = sorted(owners - alive)
                if lost:
                    self.client.cancel(futs)
                    parts = [k for k in self.parts if self.address[k] in lost]
                    raise P.PartitionLostError(
                        f"Worker(s) {', '.join(lost)} left the cluster during the fit, "
                        f"with the partitions (sessions) {parts}.") from None
        return out

    def close(self):
        """Forget the partitions on every worker (also after a failure)."""
        try:
            self.client.run(P.drop, self.fit_id)
        except Exception:  # noqa: BLE001  a worker may be gone; the others are cleaned
            pass

    def worker_memory(self):
        """Peak resident memory (bytes) of every worker process."""
        return self.client.run(P.peak_memory)


def merge_aggregates(aggs, group_index, n_groups):
    """One :func:`licchie.kernels.pooled.aggregate` dict from the partitions'.

    ``T``, ``S`` and ``xx`` are sums over targets and each target is in one
    partition, so the merged statistics are the partitions' summed, with
    their local group ids mapped to the global ones (``group_index[k]``).
    """
    G = int(n_groups)
    T_blk, T_block, T_group, S_blk, S_block, S_key = [], [], [], [], [], []
    xx = 0.0
    for agg, gi in zip(aggs, group_index):
        xx = xx + agg["xx_blk"]
        T_blk.append(agg["T_blk"])
        T_block.append(agg["T_block"])
        T_group.append(gi[agg["T_group"]])
        co_g = KP.entry_groups(agg["co_ptr"])
        key = gi[co_g] * G + gi[agg["co_idx"]]
        S_blk.append(agg["S_blk"])
        S_block.append(agg["S_block"])
        S_key.append(key[agg["S_entry"]])
    eu, S_entry = np.unique(np.concatenate(S_key), return_inverse=True)
    co_ptr = np.concatenate([[0], np.cumsum(np.bincount(eu // G, minlength=G))])
    return dict(xx_blk=xx, T_blk=np.concatenate(T_blk), T_block=np.concatenate(T_block),
                T_group=np.concatenate(T_group).astype(np.int64),
                S_blk=np.concatenate(S_blk), S_block=np.concatenate(S_block),
                S_entry=S_entry.ravel().astype(np.int64), co_ptr=co_ptr.astype(np.int64),
                co_idx=(eu % G).astype(np.int64))


def pooled_data(cluster, group_index, n_groups, n_blocks):
    """The :class:`~licchie.fit.search.PooledData` of the whole fit, blocks = frames."""
    out = cluster.map("aggregate", lambda k: (int(n_blocks),))
    agg = merge_aggregates([a for a, _ in out], [group_index[k] for k in cluster.parts],
                           n_groups)
    data = PooledData(agg, int(n_groups), sum(c for _, c in out))
    data.xx, data.T, data.S = KP.combine(agg, n_groups)
    data.comps = KP.components(agg["co_ptr"], agg["co_idx"])
    return data


class Reducer:
    """Sums over partitions of group sums and objective terms (client side)."""

    def __init__(self, cluster, group_index, counts, lambdas):
        self.c = cluster
        self.gi = group_index
        self.counts = counts  # float64 (n_groups,) pairs per group
        self.lam = np.asarray(lambdas, dtype=np.float64)

    def local(self, Wbar, k):
        return np.ascontiguousarray(Wbar[self.gi[k]])

    def profiles(self, sums):
        """Group means from the partitions' group sums (every group has pairs)."""
        tot = np.zeros((self.counts.shape[0], sums[0].shape[1]))
        for k, s in zip(self.c.parts, sums):
            tot[self.gi[k]] += s
        return tot / self.counts[:, None]

    def weighted(self, terms):
        """The six terms summed over partitions, weighted as ``Problem.objective``."""
        t = np.sum(terms, axis=0)
        return t * np.concatenate([[1.0], self.lam])


def run_start(cl: Cluster, red: Reducer, key, Wbar, C, R, seed, max_iter, tol,
              extrapolate=True, record_steps=False, progress=None, start_label="",
              frozen_lam_dev=None):
    """One start of the alternation from pooled factors, distributed.

    The same steps, in the same order, as :func:`licchie.fit.solver.run_start`
    with ``init="given"`` and ``factors = pair_start(Wbar, C, R, group)``;
    the partitions keep ``A`` and ``W``.  Returns a :class:`StartResult`
    without ``W`` and ``A`` (the W stay on the partitions under ``key``).

    With ``frozen_lam_dev`` (the deviations' penalty) it is instead
    :func:`licchie.fit.frozen.weights_at_motifs` at ``C, R``: the weights
    start at the exact minimiser of the A-eliminated objective for the
    profiles ``Wbar`` (:func:`settle_profiles`), and the motifs stay fixed
    (no component step; the trial step moves ``A`` and ``W`` only).
    """
    frozen = frozen_lam_dev is not None
    if frozen:
        out = cl.map("settle_start", lambda k: (key, red.local(Wbar, k), C, R, frozen_lam_dev))
    else:
        out = cl.map("start", lambda k: (key, red.local(Wbar, k), C, R))
    Wbar = red.profiles([s for s, _ in out])
    res = StartResult(seed, None, C, R, Wbar, None)
    res.n_cd_not_converged += sum(n for _, n in out)

    def objective(Wbar, C=None, R=None, alpha=None, Cr=None, Rr=None):
        o = cl.map("objective", lambda k: (key, red.local(Wbar, k), C, R, alpha, Cr, Rr))
        return red.weighted([t for t, _ in o]), [s for _, s in o]

    terms, _ = objective(Wbar)
    _check_finite(terms, 0, "init")
    res.history.append((0, "init", terms))
    prev = float(terms.sum())
    alpha = 1.0
    accept = False
    for it in range(1, max_iter + 1):
        C0, R0 = C, R
        out = cl.map("a_step", lambda k: (key, accept))
        accept = False
        res.n_cd_not_converged += sum(int(o[2]) for o in out)
        if record_steps and not frozen:
            terms, _ = objective(Wbar)
            _check_finite(terms, it, "A")
            res.history.append((it, "A", terms))
        if not frozen:
            # Problem.component_step from the summed W^T W and S_j = sum_e W[e,j] A_e
            G = np.sum([o[0] for o in out], axis=0)
            S = np.sum([o[1] for o in out], axis=0)
            C = F.K.unit_sphere_sweep(F.K.times_columns(S, R), G, R.T @ R, C)
            R = F.K.unit_sphere_sweep(F.K.times_columns(S, C, transpose=True), G, C.T @ C, R)
        if record_steps and not frozen:
            terms, _ = objective(Wbar, C, R)
            _check_finite(terms, it, "components")
            res.history.append((it, "components", terms))
        out = cl.map("weight_step", lambda k: (key, C, R, red.local(Wbar, k)))
        Wbar = red.profiles([s for s, _ in out])
        res.n_cd_not_converged += sum(n for _, n in out)
        # the extrapolation candidate as licchie.fit.solver.extrapolation
        cand = None
        if extrapolate and it > 1 and frozen:
            Cr = Rr = None
            cand = (None, C, R)
        elif extrapolate and it > 1:
            Cr, Rr = C + alpha * (C - C0), R + alpha * (R - R0)
            cand = F.unit_columns(np.zeros((0, C.shape[1])), Cr, Rr)
        terms, csums = (objective(Wbar, alpha=alpha, Cr=Cr, Rr=Rr) if cand is not None
                        else objective(Wbar))
        _check_finite(terms, it, "weights")
        res.history.append((it, "weights", terms))
        cur = float(terms.sum())
        if extrapolate and it > 1:
            if cand is not None:
                Wbar_c = red.profiles(csums)
                t_c = red.weighted(cl.map("candidate_objective",
                                          lambda k: (key, red.local(Wbar_c, k))))
                if improves(t_c, cur):
                    accept = True
                    C, R, Wbar = cand[1], cand[2], Wbar_c
                    terms, cur = t_c, float(t_c.sum())
                    res.history.append((it, "extrapolate", terms))
                    alpha *= 1.5
                else:
                    alpha = 1.0
        if end_iteration(res, it, prev, cur, tol, progress,
                         "transform" if frozen else start_label):
            break
        prev = cur
    if progress is not None and res.n_iter < max_iter:
        progress.update(max_iter - res.n_iter)
    cl.map("finish", lambda k: (key, accept))
    res.C, res.R, res.Wbar = C, R, Wbar
    return res



def settle_profiles(cl: Cluster, red: Reducer, C, R):
    """The profiles that start the settle step, and the deviations' penalty.

    :func:`licchie.fit.reduced_start.reduced_init` with no sweeps (the start
    of :func:`licchie.fit.frozen.weights_at_motifs`), from the partitions'
    parts of the profiles' normal equations, summed here in the fit's group
    ids (sparse: only groups that share a target meet) and solved one
    connected set of groups at a time.

    Returns
    -------
    Wbar : float64 (n_groups, J)
    lam_dev : float
    """
    from scipy import sparse
    from scipy.sparse.csgraph import connected_components

    lam4, lam5 = float(red.lam[3]), float(red.lam[4])
    scale = cl.map("source_scale", lambda k: ())
    lam_dev = RS.deviation_weight(lam4, lam5, sum(z for z, _ in scale),
                                  sum(n for _, n in scale))
    G, J = red.counts.shape[0], C.shape[1]
    rows, cols, vals = [], [], []
    rhs = np.zeros(G * J)
    for k, (r, c, v, b) in zip(cl.parts, cl.map("profile_equations",
                                                 lambda k: (C, R, lam_dev))):
        idx = (red.gi[k][:, None] * J + np.arange(J)).ravel()  # local -> fit's ids
        rows.append(idx[r])
        cols.append(idx[c])
        vals.append(v)
        rhs[idx] += b
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    gram = sparse.csr_matrix((np.concatenate(vals), (rows, cols)), shape=(G * J, G * J))
    gram = gram + sparse.diags(RS.profile_ridge(lam4, red.counts, J))
    meet = sparse.csr_matrix((np.ones(rows.size), (rows // J, cols // J)), shape=(G, G))
    _, label = connected_components(meet, directed=False)
    blocks = RS.ProfileBlocks.of(label, J)
    Wbar = blocks.solve(blocks.from_matrix(gram.tocsr()), rhs)
    return Wbar, lam_dev
