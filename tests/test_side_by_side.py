"""Starts side by side on the fit's threads (:func:`licchie.fit.solver.side_by_side`).

The kernels give the same bits on any number of threads, so starts run
side by side return what they return one after another (the fits compared
bit for bit across ``n_jobs`` in test_estimator_api, test_model,
test_population_features and test_gains check that end to end); here: the
threads are shared and given back, the order kept, errors raised, and
large starts run one after another.
"""
import threading
from types import SimpleNamespace

import numba
import numpy as np
import pytest

from licchie import fit as F
from licchie.fit import solver
from licchie.kernels import _parallel

two_threads = pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2,
                                 reason="one core: nothing runs side by side")


def _problem(n_pairs=10, d=3):
    """What side_by_side reads of a Problem: its pair tensors' size."""
    return SimpleNamespace(X=np.zeros((1, d)), pairs=SimpleNamespace(n_pairs=n_pairs),
                           dtype=np.float64)


@two_threads
def test_sharing_splits_the_kernel_threads_and_gives_them_back():
    ranges = []

    def core(t0, t1):
        ranges.append((t0, t1))

    def ranges_of_a_run():
        ranges.clear()
        _parallel.run(core, 10)
        return sorted(ranges)

    with F.numba_threads(2):
        alone = ranges_of_a_run()
        with _parallel.sharing():
            with _parallel.sharing():   # two callers: one thread each
                shared = ranges_of_a_run()
            last = ranges_of_a_run()    # the last one left: both again
    assert alone == last == [(0, 5), (5, 10)]
    assert shared == [(0, 10)]
    assert _parallel._side_by_side == 0


@two_threads
def test_side_by_side_keeps_the_order_and_the_callers_threads():
    seen = []

    def start(k):
        seen.append((threading.current_thread().name, numba.get_num_threads(),
                     _parallel._side_by_side))
        return k * k

    with F.numba_threads(2):
        out = solver.side_by_side(start, [(k,) for k in range(5)], _problem())
    assert out == [0, 1, 4, 9, 16]
    assert all(name.startswith("licchie-start") for name, _, _ in seen)
    assert all(n == 2 and 1 <= inside <= 2 for _, n, inside in seen)
    assert _parallel._side_by_side == 0


def test_side_by_side_runs_large_starts_one_after_another(monkeypatch):
    monkeypatch.setattr(solver, "CONCURRENT_START_BYTES", 4 * 10 * 3 * 3 * 8 - 1)
    names = []

    def start(k):
        names.append(threading.current_thread().name)
        return -k

    with F.numba_threads(2):
        assert solver.side_by_side(start, [(1,), (2,)], _problem()) == [-1, -2]
    assert names == [threading.current_thread().name] * 2


def test_side_by_side_raises_a_starts_error():
    def start(k):
        if k == 1:
            raise FloatingPointError("start 1 diverged")
        return k

    with F.numba_threads(2):
        with pytest.raises(FloatingPointError, match="start 1 diverged"):
            solver.side_by_side(start, [(0,), (1,), (2,)], _problem())
    assert _parallel._side_by_side == 0
