"""asv suite: the exactly pooled reduced problem (issue 14).

``PooledSweep`` times, on random data with class x frame groups (5 classes,
50 frames, 5 pairs per target, d = 19, J = 10) at 10 k, 100 k and 1 M pairs:
the aggregation of the statistics (once per fit, linear in pairs), one ALS
sweep and one loss-and-gradient evaluation of the variable-projection
L-BFGS (both must not grow with pairs).  ``PooledSearch`` times a fixed
number of basin-hopping moves at 100 k pairs, its two searches in this
process or on two worker processes (``n_workers``).  ``GroupingCV`` times the
check of ``pooling_groups="auto"`` (:func:`licchie.fit.granularity.cross_validate`:
one aggregation with the per-target rows, five folds of class x frame and
class profiles, every target predicted) at the same sizes.

Threads: BLAS 1 (threadpoolctl), Numba ``LICCHIE_BENCH_THREADS`` (default 1).
Every kernel is called once in ``setup``, so compilation is never timed.
"""
import os

import numba
import numpy as np
from threadpoolctl import threadpool_limits

from licchie.fit import granularity as GR
from licchie.fit import search as S

_THREADS = int(os.environ.get("LICCHIE_BENCH_THREADS", "1"))


def _random_problem(n_pairs, d=19, n_frames=50, n_classes=5, per_target=5, seed=0):
    rng = np.random.default_rng(seed)
    nt = n_pairs // per_target
    n_obs = 2 * nt
    X = rng.normal(size=(n_obs, d))
    tgt_ptr = np.arange(0, nt * per_target + 1, per_target, dtype=np.int64)
    src = rng.integers(0, n_obs, nt * per_target)
    frame = rng.integers(0, n_frames, nt)
    cls = rng.integers(0, n_classes, nt * per_target)
    group = cls * n_frames + np.repeat(frame, per_target)
    args = (X, np.arange(nt), tgt_ptr, src, np.ones(src.size), group, n_classes * n_frames,
            frame, n_frames)
    return args, np.arange(n_classes * n_frames) // n_frames


class _OneThread:
    """Numba at ``LICCHIE_BENCH_THREADS`` threads and BLAS at one during a benchmark."""

    def _limit_threads(self):
        numba.set_num_threads(min(_THREADS, numba.config.NUMBA_NUM_THREADS))
        self._blas = threadpool_limits(limits=1, user_api="blas")

    def teardown(self, *params):
        self._blas.unregister()


class _PairSizes(_OneThread):
    """Benchmarks at 10 k, 100 k and 1 M pairs."""

    params = [10_000, 100_000, 1_000_000]
    param_names = ["n_pairs"]
    timeout = 600


def _random_effects(d, J=10):
    """Unit ``C, R`` (d, J), the same in every benchmark."""
    rng = np.random.default_rng(1)
    return S._random_unit(rng, d, J), S._random_unit(rng, d, J)


class PooledSweep(_PairSizes):
    def setup(self, n_pairs):
        self._limit_threads()
        self.args, _ = _random_problem(n_pairs)
        self.data = S.PooledData.from_pairs(*self.args)
        self.C, self.R = _random_effects(self.args[0].shape[1])
        self.sw = S._Sweeper(self.data)
        self.Wbar, _ = self.sw.profiles(self.C, self.R)
        self.sw.sweep(self.Wbar, self.C, self.R)
        self.sw.value_grad(self.C, self.R)

    def time_aggregate(self, n_pairs):
        S.PooledData.from_pairs(*self.args)

    def time_als_sweep(self, n_pairs):
        self.sw.sweep(self.Wbar, self.C, self.R)

    def time_value_grad(self, n_pairs):
        self.sw.value_grad(self.C, self.R)

    def track_n_entries(self, n_pairs):
        return int(self.data.co_idx.size)


class PooledSearch(_OneThread):
    params = [1, 2]
    param_names = ["n_workers"]
    timeout = 600

    def setup(self, n_workers):
        self._limit_threads()
        args, self.classes = _random_problem(100_000)
        self.data = S.PooledData.from_pairs(*args)
        # compiles, and starts the worker processes (reused by the timed calls)
        S.search(self.data, 10, n_searches=2, n_starts=1, n_trials=0, time_budget=None,
                 max_sweeps=2, n_workers=n_workers)

    def time_search_8_moves(self, n_workers):
        # two searches of one start and three moves: on two workers at once
        S.search(self.data, 10, n_searches=2, n_starts=1, n_trials=3, time_budget=None,
                 max_sweeps=200, move_groups=self.classes, seed=0, n_workers=n_workers)

    def time_three_searches(self, n_workers):
        # three searches of one start and four moves (the fit's n_searches):
        # on two workers in halves, three waves of two (search._chunks)
        S.search(self.data, 10, n_searches=3, n_starts=1, n_trials=4, time_budget=None,
                 max_sweeps=200, move_groups=self.classes, seed=0, n_workers=n_workers)


class GroupingCV(_PairSizes):
    def setup(self, n_pairs):
        self._limit_threads()
        args, self.classes = _random_problem(n_pairs)
        X, tgt_obs, tgt_ptr, src, gain, group, G, frame, _ = args
        self.args = (X, tgt_obs, tgt_ptr, src, gain, group, G, self.classes,
                     tgt_obs // 3, frame)   # about three targets per cell
        self.C, self.R = _random_effects(X.shape[1])
        self.time_cross_validate(n_pairs)

    def time_cross_validate(self, n_pairs):
        GR.cross_validate(*self.args, self.C, self.R)

    def peakmem_cross_validate(self, n_pairs):
        GR.cross_validate(*self.args, self.C, self.R)


def _gain_components(args):
    """:func:`~licchie.fit.pooling.gain_components` of a :func:`_random_problem`'s pairs."""
    from licchie.fit.pooling import gain_components

    tgt_ptr, group, G = args[2], args[5], args[6]
    tid = np.repeat(np.arange(tgt_ptr.size - 1), np.diff(tgt_ptr))
    return gain_components(group, tid, G)


class GainJoint(_PairSizes):
    """The joint solve of the gain search (:func:`licchie.fit.gains.joint_minimum`):
    one evaluation of the gain-eliminated loss and its gradient (a pass over
    the (target, group) rows, so it grows with targets, not with pairs per
    target), and 200 evaluations of the solve."""

    def setup(self, n_pairs):
        from licchie.fit import gains as FGN
        from licchie.kernels import gains as KG

        self._limit_threads()
        args, _ = _random_problem(n_pairs)
        self.data = S.PooledData.from_pairs(*args, keep_rows=True)
        self.comps = _gain_components(args)
        self.C, self.R = _random_effects(args[0].shape[1])
        self.Wbar, _ = S._Sweeper(self.data).profiles(self.C, self.R)
        rows = self.data.agg["rows"]
        self.rows = (rows["Y"], rows["Z"], rows["tg_ptr"], rows["tg_group"])
        self.grads = (np.empty_like(self.Wbar), np.empty_like(self.C), np.empty_like(self.R))
        self.KG, self.FGN = KG, FGN
        self.gamma = np.ones(args[2].size - 1)
        self.time_gain_eliminated_loss(n_pairs)
        FGN.joint_minimum(self.data, self.comps, self.C, self.R, self.gamma, max_eval=2)

    def time_gain_eliminated_loss(self, n_pairs):
        self.KG.gain_eliminated_loss(*self.rows, self.Wbar, self.C, self.R, *self.grads)

    def time_joint_minimum_200(self, n_pairs):
        self.FGN.joint_minimum(self.data, self.comps, self.C, self.R, self.gamma,
                               max_eval=200)


class FrozenDescent(_PairSizes):
    """One sweep of the settle step's coordinate descent
    (:func:`licchie.kernels.frozen.frozen_weight_cd`: every weight, then every
    group's shift) at fixed motifs, linear in pairs."""

    def setup(self, n_pairs):
        from licchie.kernels import frozen as KF

        self._limit_threads()
        args, _ = _random_problem(n_pairs)
        X, tgt_obs, tgt_ptr, src, gain, group, G, frame, nb = args
        C, R = _random_effects(X.shape[1])
        Z = X[src]
        kappa = 1.0 / (1.0 + np.add.reduceat(np.einsum("ed,ed->e", Z, Z) / 10.0,
                                             tgt_ptr[:-1]))
        nt = tgt_ptr.size - 1
        gpairs = np.argsort(group, kind="stable").astype(np.int64)
        self.args = (np.ascontiguousarray(Z @ R), np.ascontiguousarray(X[tgt_obs]), kappa,
                     tgt_ptr, np.zeros(nt, np.int64), np.ascontiguousarray(C[None]),
                     group.astype(np.int64), G, np.ones(src.size), np.zeros((G, C.shape[1])),
                     False, 1e-3, 10.0)
        self.W = np.zeros((src.size, C.shape[1]))
        self.tail = (np.empty((nt, X.shape[1])),
                     np.searchsorted(group[gpairs], np.arange(G + 1)).astype(np.int64),
                     gpairs, np.repeat(np.arange(nt), np.diff(tgt_ptr)).astype(np.int64),
                     np.arange(nt, dtype=np.int64))
        self.KF = KF
        self.time_one_sweep(n_pairs)

    def time_one_sweep(self, n_pairs):
        self.KF.frozen_weight_cd(*self.args, self.W, 1, 0.0, *self.tail, 0)

    def time_anderson_window(self, n_pairs):
        """Five sweeps and their Anderson extrapolation (the settle step's
        unit of work): against five times ``time_one_sweep``, its overhead."""
        self.KF.frozen_weight_cd(*self.args, self.W, 5, 0.0, *self.tail, 5)
