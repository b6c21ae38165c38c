"""Problems of a given size, and the stages of a fit as zero-argument calls.

Shared by the asv suite (:mod:`benchmarks.bench_stages`) and the
performance scripts, with what those scripts share: :func:`child_env` and
:func:`run_json_child` (each measurement in its own process),
:func:`add_problem_arguments` and :func:`memory_status`.  Data come from
:func:`licchie.synthetic.make_recording`, whose box grows with the number of
cells so that the density (pairs per target) stays fixed.

Run as a script (``python benchmarks/_problems.py --first-calls``; it needs
only an importable ``licchie``, not the ``benchmarks`` package) it times
the first call of every stage on a tiny problem in a fresh process and
prints JSON: with an empty ``NUMBA_CACHE_DIR`` that is Numba's compile
time, with a written cache it is the cache load time.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The paper's size (Table S3) and the defaults of LICCHIE.
BASE = dict(n_cells=(25, 10), scale=1, n_frames=50, n_features=10, n_components=8,
            radius=10.0, n_neighbors=10, sigma=0.3, lambdas=(1.0, 0.1, 0.0, 0.01, 0.0),
            seed=0)

STAGES = ("pairs", "graph", "a_step", "component_step", "weight_step",
          "weight_step_target_gain", "objective",
          "iteration", "parafac_als", "source_excitation")
# ALS iterations timed by the "parafac_als" stage (the PARAFAC start runs up to
# LICCHIE(init_max_iter=100) of them); tol 0 fixes their number
PARAFAC_ALS_ITERS = 5

# The log grids of the asv suite: class name -> (parameter, values).  Each
# varies one quantity from BASE.
AXES = {
    "Cells": ("scale", [1, 2, 4]),
    "Frames": ("n_frames", [25, 50, 100, 200]),
    "Features": ("n_features", [5, 10, 20, 40]),
    "Neighbours": ("radius", [5.0, 7.1, 10.0, 14.1, 20.0]),
    "Components": ("n_components", [2, 4, 8, 16]),
}


def child_env(**extra):
    """This process's environment plus ``extra`` (values as strings), for a child Python."""
    env = dict(os.environ)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_json_child(module, args, env, timeout, what):
    """Run ``python -m module *args`` from the repository root (so that it
    imports ``benchmarks`` and ``licchie`` as this process does); returns the
    JSON of the last line it prints."""
    proc = subprocess.run([sys.executable, "-m", module, *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise RuntimeError(f"{what} failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def add_problem_arguments(ap):
    """The problem options shared by compare.py and float32.py (paper's size by
    default: 25 + 10 cells, 50 frames, d = 10, J = 8, radius 10, M = 10)."""
    ap.add_argument("--n-cells", type=int, nargs="+", default=[25, 10])
    ap.add_argument("--scale", type=float, default=1)
    ap.add_argument("--n-frames", type=int, default=50)
    ap.add_argument("--n-features", type=int, default=10)
    ap.add_argument("--n-components", type=int, default=8)
    ap.add_argument("--radius", type=float, default=10.0)
    ap.add_argument("--n-neighbors", type=int, default=10)
    ap.add_argument("--sigma", type=float, default=0.3)
    ap.add_argument("--lambdas", type=float, nargs=4, default=[1.0, 0.1, 0.0, 0.01])
    ap.add_argument("--pooling", type=float, default=0.0)


def memory_status():
    """``VmRSS`` and ``VmHWM`` (peak) of this process in bytes (Linux /proc)."""
    out = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(("VmHWM", "VmRSS")):
                k, v = line.split(":")
                out[k] = int(v.split()[0]) * 1024
    return out


def limit_threads(numba_threads=None):
    """One BLAS thread; Numba threads from LICCHIE_BENCH_THREADS (default 1)."""
    import numba
    from threadpoolctl import threadpool_limits

    n = numba_threads or int(os.environ.get("LICCHIE_BENCH_THREADS", "1"))
    numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))
    # kept alive for the process: limits stay until it is garbage collected
    limit_threads._blas = threadpool_limits(limits=1, user_api="blas")
    return numba.get_num_threads()


def recording(**overrides):
    """Observations of a synthetic recording; returns ``(obs, cfg)``."""
    import licchie
    from licchie.synthetic import make_recording

    cfg = dict(BASE, **overrides)
    d = cfg["n_features"]
    ds, _ = make_recording(n_cells=cfg["n_cells"], n_frames=cfg["n_frames"], n_features=d,
                           n_components=min(8, d * d), scale=cfg["scale"], seed=cfg["seed"],
                           interaction=False)
    return licchie.as_recording(ds).obs, cfg


def build(with_graph=True, parafac_iter=20, **overrides):
    """A problem and a representative iterate (after one plain iteration).

    Returns a dict with ``obs``, ``pairs``, ``graph``, ``problem``,
    ``state = (A, W, C, R, Wbar)`` and the sizes.
    """
    import numpy as np

    from licchie import fit as F
    from licchie import kernels as K

    # TODO(_prepare): copies LICCHIE.fit's setup (pairs, graph, ridge, Problem) for
    # the default parameters; use LICCHIE._prepare(X) once the estimator has it.
    obs, cfg = recording(**overrides)
    pairs = F.build_pairs(obs, cfg["radius"])
    out = dict(cfg=cfg, obs=obs, pairs=pairs, graph=None, n_pairs=int(pairs.n_pairs),
               n_targets=int(pairs.tgt_obs.size), d=cfg["n_features"])
    if not with_graph:
        return out
    graph = F.build_graph(obs.features, pairs, cfg["n_neighbors"], cfg["sigma"])
    ridge = F.RIDGE_REL * max(float(np.mean(obs.features ** 2)), np.finfo(float).tiny)
    prob = F.Problem(obs.features, pairs, graph, tuple(cfg["lambdas"]), ridge)
    A = F.initial_interactions(prob)
    W, C, R = F.parafac_init(A, cfg["n_components"], cfg["seed"], n_iter_max=parafac_iter)
    Wbar = K.group_mean(W, pairs.group, pairs.n_groups)
    state = iteration(prob, A, W, C, R, Wbar)[:5]
    out.update(graph=graph, problem=prob, state=state, n_edges=int(graph.n_edges))
    return out


def iteration(prob, A, W, C, R, Wbar, out=None):
    """One plain outer iteration as ``LICCHIE.fit`` runs it by default (without
    extrapolation): three steps, one objective evaluation.  ``out``: an array
    for the new A (the fit reuses one; a fresh array costs page faults)."""
    A, _ = prob.a_step(A, W, C, R, out=out)
    C, R = prob.component_step(A, W, C, R)
    W, Wbar, _, _ = prob.weight_step(A, W, C, R, Wbar)
    return A, W, C, R, Wbar, prob.objective(A, W, C, R, Wbar)


def stage_calls(b):
    """``{stage: zero-argument callable}`` for a bundle from :func:`build`."""
    from licchie import fit as F
    from licchie import kernels as K

    cfg = b["cfg"]
    calls = {
        "pairs": lambda: F.build_pairs(b["obs"], cfg["radius"]),
        "graph": lambda: F.build_graph(b["obs"].features, b["pairs"], cfg["n_neighbors"],
                                       cfg["sigma"]),
    }
    if "problem" in b:
        prob = b["problem"]
        A, W, C, R, Wbar = b["state"]
        gain_step = _gain_problem(prob, W)
        calls.update({
            "a_step": lambda: prob.a_step(A, W, C, R),
            "component_step": lambda: prob.component_step(A, W, C, R),
            "weight_step": lambda: prob.weight_step(A, W, C, R, Wbar),
            # with target gains: the per-pair prior and the gain/profile update
            "weight_step_target_gain": lambda: gain_step(A, W, C, R),
            "objective": lambda: prob.objective(A, W, C, R, Wbar),
            "iteration": lambda: iteration(prob, A, W, C, R, Wbar),
            # the PARAFAC start's CP-ALS on the current A from the current factors
            "parafac_als": lambda: K.cp_als(A, W, C, R, PARAFAC_ALS_ITERS, 0.0),
            # the diagnostic computed once at the end of a fit
            "source_excitation": lambda: F.source_excitation(
                prob.pairs.gain[:, None] * prob.X[prob.pairs.src], W, R, 1e-4),
        })
    return calls


def _gain_problem(prob, W):
    """The weight step of ``prob`` with ``target_gain=True``, from gains fitted to W."""
    import dataclasses

    pg = dataclasses.replace(prob, target_gain=True)
    Wbar, gamma = pg.profiles(W)
    return lambda A, W, C, R: pg.weight_step(A, W, C, R, Wbar, gamma)


def save(b, path):
    """Write a bundle from :func:`build` to directory ``path``.

    The interaction tensor A (the only large array) goes to its own ``.npy``
    file, so that loading it back does not pass through a pickle buffer of
    the same size (which would inflate peak-memory benchmarks).
    """
    import pickle

    import numpy as np

    os.makedirs(path, exist_ok=True)
    small = {k: v for k, v in b.items() if k not in ("problem", "state")}
    if "problem" in b:
        A, W, C, R, Wbar = b["state"]
        np.save(os.path.join(path, "A.npy"), A)
        small.update(W=W, C=C, R=R, Wbar=Wbar, lambdas=b["problem"].lambdas,
                     ridge=b["problem"].ridge)
    with open(os.path.join(path, "bundle.pkl"), "wb") as fh:
        pickle.dump(small, fh, protocol=pickle.HIGHEST_PROTOCOL)
    return path


def load(path):
    """Read a bundle written by :func:`save`."""
    import pickle

    import numpy as np

    from licchie import fit as F

    with open(os.path.join(path, "bundle.pkl"), "rb") as fh:
        b = pickle.load(fh)
    if "W" in b:
        A = np.load(os.path.join(path, "A.npy"))
        b["problem"] = F.Problem(b["obs"].features, b["pairs"], b["graph"], b.pop("lambdas"),
                                 b.pop("ridge"))
        b["state"] = (A, b.pop("W"), b.pop("C"), b.pop("R"), b.pop("Wbar"))
    return b


_WARM = []


def warm_up():
    """Call every stage once on a tiny problem (compile or load the kernels)."""
    if not _WARM:
        b = build(n_cells=(6, 4), n_frames=5, parafac_iter=2)
        for fn in stage_calls(b).values():
            fn()
        _WARM.append(True)


def first_call_seconds():
    """Seconds of the first call of every stage on a tiny problem (fresh process).

    With an empty ``NUMBA_CACHE_DIR`` this is Numba's compile time, with a
    written cache the time to load it; the import of licchie is timed
    separately.
    """
    t0 = time.perf_counter()
    import licchie  # noqa: F401
    from licchie import fit as F
    from licchie import kernels as K
    out = {"import": time.perf_counter() - t0}
    obs, cfg = recording(n_cells=(6, 4), n_frames=5)

    def first(name, fn):
        t = time.perf_counter()
        res = fn()
        out[name] = time.perf_counter() - t
        return res

    pairs = first("pairs", lambda: F.build_pairs(obs, cfg["radius"]))
    graph = first("graph", lambda: F.build_graph(obs.features, pairs, cfg["n_neighbors"],
                                                 cfg["sigma"]))
    prob = F.Problem(obs.features, pairs, graph, tuple(cfg["lambdas"]), 1e-12)
    A = first("a_step", lambda: F.initial_interactions(prob))
    W, C, R = F.parafac_init(A, 3, 0, n_iter_max=2)  # tensorly, not timed
    Wbar = first("group_mean", lambda: K.group_mean(W, pairs.group, pairs.n_groups))
    first("component_step", lambda: prob.component_step(A, W, C, R))
    first("weight_step", lambda: prob.weight_step(A, W, C, R, Wbar))
    first("objective", lambda: prob.objective(A, W, C, R, Wbar))
    first("predict", lambda: K.predict_lowrank(obs.features, pairs.tgt_ptr, pairs.src,
                                               pairs.gain, W, C, R))
    out["total_stages"] = sum(v for k, v in out.items() if k != "import")
    return out


def main():
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--first-calls", action="store_true")
    a = ap.parse_args()
    if a.first_calls:
        print(json.dumps(first_call_seconds()))


if __name__ == "__main__":
    main()
