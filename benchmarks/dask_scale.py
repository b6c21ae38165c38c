"""The distributed fit against the local one: time per polish iteration, peak
memory per process, and the map-reduce's bytes per iteration.

    python -m benchmarks.dask_scale [--scales 6.2 25] [--workers 2] [--iters 5]

Each scale is a recording of 4 sessions (d = 19, J = 10, 50 frames each,
the paper's cell mix times ``scale``; 6.2 gives about 250 k pairs, 25 about
1 M).  Both fits start from the same pooled factors (a short search of the
reduced problem) and run ``--iters`` polish iterations with tol = 0 and
one Numba thread per process: the local fit in one process, the
distributed fit on a ``LocalCluster`` of ``--workers`` single-threaded
worker processes.  Every measurement runs in its own child process, so
peak RSS (``ru_maxrss``) is that run's.  Bytes are the payload of the
map-reduce calls (arrays in the tasks' arguments and results; Dask's own
protocol adds a few hundred bytes per task).  Prints a table and one JSON
line per run.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import warnings

J, D = 10, 19


class _Clock:
    """A progress stand-in that records, at every iteration's end, the wall
    time, this process's CPU time and, on a cluster, the map-reduce's bytes
    and every partition's wall and CPU seconds of work."""

    def __init__(self, cluster=None):
        self.cluster = cluster
        self.marks = []
        self.update(0)

    def update(self, n):
        busy = None
        nbytes = 0
        if self.cluster is not None:
            nbytes = self.cluster.bytes
            busy = self.cluster.map("busy_seconds", lambda k: ())
            self.cluster.bytes = nbytes  # the benchmark's own calls are not counted
        self.marks.append((time.perf_counter(), time.process_time(), nbytes, busy))

    def set_postfix_str(self, s):
        pass

    def per_iteration(self):
        m = self.marks
        out = dict(wall=[b[0] - a[0] for a, b in zip(m, m[1:])],
                   cpu=[b[1] - a[1] for a, b in zip(m, m[1:])],
                   bytes=[b[2] - a[2] for a, b in zip(m, m[1:])])
        if self.cluster is not None:  # per worker: sums over its partitions
            cl = self.cluster
            workers = sorted(set(cl.address.values()))
            for i, w in enumerate(workers):
                ks = [j for j, k in enumerate(cl.parts) if cl.address[k] == w]
                for q, name in ((0, "busy_wall"), (1, "busy_cpu")):
                    out.setdefault(name, []).append(
                        [float(sum(b[3][j][q] - a[3][j][q] for j in ks))
                         for a, b in zip(m, m[1:])])
            out["partitions_per_worker"] = [
                sum(cl.address[k] == w for k in cl.parts) for w in workers]
            out["workers"] = workers
        return out


def _recording(scale):
    from licchie.data import as_recording
    from licchie.synthetic import make_recording
    ds, _ = make_recording(n_cells=(25, 10), n_frames=50, n_features=D, n_components=J,
                           scale=scale, n_sessions=4, seed=0, interaction=False)
    return as_recording(ds)


def _start(data, move):
    from licchie.fit.search import search
    res = search(data, J, n_searches=1, n_starts=1, time_budget=None, eval_budget=100,
                 seed=0, move_groups=move)
    return res.Wbar, res.C, res.R


def _peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_local(scale, iters):
    import licchie.fit as F
    from licchie import LICCHIE
    from licchie.fit import global_start as FG
    from licchie.fit.search import pair_start
    rec = _recording(scale)
    base = _peak()
    est = LICCHIE(n_components=J, radius=10.0, random_state=0)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prep = est._prepare(rec)
    data, move = FG.reduced_data(prep.problem, rec.obs)
    t_setup = time.perf_counter() - t0
    Wbar, C, R = _start(data, move)
    F.run_start(prep.problem, None, J, 0, 1, 0.0, init="given",  # warm-up: first calls
                factors=pair_start(Wbar, C, R, prep.problem.pairs.group), keep_A=False)
    clock = _Clock()
    F.run_start(prep.problem, None, J, 0, iters, 0.0, clock, init="given",
                factors=pair_start(Wbar, C, R, prep.problem.pairs.group), keep_A=False,
                record_steps=False)
    it = clock.per_iteration()
    return dict(mode="local", n_pairs=int(prep.pairs.n_pairs), setup_s=t_setup,
                iter_s=it["wall"], iter_cpu_s=it["cpu"], peak_bytes=_peak(), base_bytes=base)


def run_dask(scale, iters, n_workers):
    from distributed import Client, LocalCluster
    from licchie import LICCHIE
    from licchie import distributed as LD
    from licchie.distributed import _partition as P
    rec = _recording(scale)
    with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                      memory_limit=0, dashboard_address=None) as lc, Client(lc) as client:
        client.run(lambda: __import__("licchie.fit"))  # imports and Numba caches
        base = client.run(P.peak_memory)
        est = LICCHIE(n_components=J, radius=10.0, random_state=0)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            su = LD.setup(est, rec, client)
        try:
            data, move = LD.reduced_data(su)
            t_setup = time.perf_counter() - t0
            Wbar, C, R = _start(data, move)
            cl = su.cluster
            LD.run_start(cl, su.reducer, "warm-up", Wbar, C, R, 0, 1, 0.0)  # first calls
            clock = _Clock(cl)
            LD.run_start(cl, su.reducer, "bench", Wbar, C, R, 0, iters, 0.0, progress=clock)
            it = clock.per_iteration()
            peaks = cl.worker_memory()
            n_groups = int(su.pairs.n_groups)
            n_pairs = int(su.pairs.n_pairs)
        finally:
            su.cluster.close()
    ws = it["workers"]
    return dict(mode="dask", n_pairs=n_pairs, n_groups=n_groups, workers=n_workers,
                setup_s=t_setup, iter_s=it["wall"], client_cpu_s=it["cpu"],
                bytes_per_iter=it["bytes"], worker_busy_wall_s=it["busy_wall"],
                worker_busy_cpu_s=it["busy_cpu"],
                partitions_per_worker=it["partitions_per_worker"],
                worker_peak_bytes=[peaks[w] for w in ws],
                worker_base_bytes=[base[w] for w in ws], client_peak_bytes=_peak())


def _child(args):
    env = dict(os.environ, NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, "-m", "benchmarks.dask_scale", *args], cwd=root,
                          env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise RuntimeError(f"child {args} failed")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _gib(b):
    return b / 2**30


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scales", type=float, nargs="+", default=[6.2, 25.0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--child", choices=["local", "dask"])
    ap.add_argument("--skip-local", action="store_true")
    a = ap.parse_args(argv)
    if a.child == "local":
        print(json.dumps(run_local(a.scales[0], a.iters)))
        return
    if a.child == "dask":
        print(json.dumps(run_dask(a.scales[0], a.iters, a.workers)))
        return
    import numpy as np
    for s in a.scales:
        common = ["--scales", str(s), "--iters", str(a.iters), "--workers", str(a.workers)]
        runs = [] if a.skip_local else [_child(common + ["--child", "local"])]
        if runs:
            print(json.dumps(runs[0]), flush=True)
        runs.append(_child(common + ["--child", "dask"]))
        print(json.dumps(runs[-1]), flush=True)
        dk = runs[-1]
        # the first iteration pays first-call costs; the median of the others
        print(f"\nscale {s}: {dk['n_pairs']:,} pairs, {dk['n_groups']:,} groups, "
              f"{a.workers} workers")
        med = lambda v: float(np.median(v))  # noqa: E731
        if not a.skip_local:
            lo = runs[0]
            print(f"  local : {med(lo['iter_s']):7.3f} s/iter wall, {med(lo['iter_cpu_s']):.3f} "
                  f"CPU; peak {_gib(lo['peak_bytes']):.2f} GiB (base "
                  f"{_gib(lo['base_bytes']):.2f})")
        print(f"  dask  : {med(dk['iter_s']):7.3f} s/iter wall; per worker busy "
              + ", ".join(f"{med(w):.3f}" for w in dk["worker_busy_wall_s"]) + " s wall, "
              + ", ".join(f"{med(c):.3f}" for c in dk["worker_busy_cpu_s"]) + " s CPU; client "
              + f"{med(dk['client_cpu_s']):.3f} s CPU")
        print("          worker peak " + ", ".join(
            f"{_gib(p):.2f} GiB (base {_gib(b):.2f})"
            for p, b in zip(dk["worker_peak_bytes"], dk["worker_base_bytes"]))
              + f"; client peak {_gib(dk['client_peak_bytes']):.2f} GiB")
        print(f"          bytes/iter {sorted(set(dk['bytes_per_iter']))}")


if __name__ == "__main__":
    main()
