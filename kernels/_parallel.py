"""Run a serial kernel over fixed tasks on several threads.

The hot kernels are compiled serially (``@njit(nogil=True)``) as functions of
a range of tasks, ``core(t0, t1, ...)``; :func:`run` splits the tasks into
one contiguous range per thread and calls the core from a small thread pool
(the compiled code releases the GIL).  Numba's own ``parallel=True`` would do
the same at run time but compiles every prange body into an extra gufunc
through a second pipeline, which more than doubled the cold compile time of
the kernels.

A task writes only its own outputs (a reduction writes one partial per task,
merged in task order by the caller), and the tasks do not depend on the
number of threads, so results are the same for any number of threads.  The
number of threads is Numba's (``numba.set_num_threads``, which
:func:`licchie.fit` and the tests set), shared evenly among the callers that
run kernels side by side (:func:`sharing`).
"""
import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numba

_lock = threading.Lock()
_pool = None
_pool_pid = None
_side_by_side = 0   # callers inside sharing()


def _get_pool():
    global _pool, _pool_pid
    with _lock:
        if _pool is None or _pool_pid != os.getpid():  # new after a fork
            _pool = ThreadPoolExecutor(max_workers=max(1, numba.config.NUMBA_NUM_THREADS - 1),
                                       thread_name_prefix="licchie-kernel")
            _pool_pid = os.getpid()
        return _pool


@contextlib.contextmanager
def sharing():
    """Mark the calling thread as one of several that run kernels at once:
    while ``n`` threads are inside, each call of :func:`run` takes ``1/n`` of
    its Numba threads, and the last one left takes them all again."""
    global _side_by_side
    with _lock:
        _side_by_side += 1
    try:
        yield
    finally:
        with _lock:
            _side_by_side -= 1


def run(core, n_tasks, *args):
    """Call ``core(t0, t1, *args)`` on contiguous ranges covering ``range(n_tasks)``,
    one range per thread (the calling thread takes the first)."""
    k = min(max(1, numba.get_num_threads() // max(1, _side_by_side)), n_tasks)
    if k <= 1:
        core(0, n_tasks, *args)
        return
    bounds = [n_tasks * i // k for i in range(k + 1)]
    pool = _get_pool()
    futures = [pool.submit(core, bounds[i], bounds[i + 1], *args) for i in range(1, k)]
    try:
        core(bounds[0], bounds[1], *args)
    finally:
        for f in futures:
            f.result()
