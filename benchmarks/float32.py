"""What ``LICCHIE(dtype="float32")`` saves and what it costs in accuracy.

Usage (from the repository root)::

    python -m benchmarks.float32                  # the paper's size
    python -m benchmarks.float32 --scale 20 --max-iter 10

Fits the same synthetic recording (:func:`licchie.synthetic.make_recording`,
as ``benchmarks/compare.py`` builds it) with ``dtype="float64"`` and
``"float32"``, one start, ``--max-iter`` iterations (``tol=0``, so both run
all of them), each fit in its own subprocess so that its peak memory
(``ru_maxrss``) is its own.  Every worker runs twice with the same fresh
``NUMBA_CACHE_DIR``; the figures are from the second run (kernels loaded from
the cache: compilation, which allocates far more than a small fit, is left
out).  Reported: fit time and time per iteration, peak memory of the fit,
and the float32 fit's accuracy against the float64 one: relative difference
of the objective after every iteration, the Hungarian-matched |cosine| of
the motifs, and the relative difference of the in-sample predictions and of
the weights.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time

from benchmarks import _problems as P


def _maxrss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def worker(args):
    import warnings

    import numpy as np
    from threadpoolctl import threadpool_limits

    import licchie
    from licchie.synthetic import make_recording

    ds, _ = make_recording(n_cells=tuple(args.n_cells), n_frames=args.n_frames,
                           n_features=args.n_features, n_components=args.n_components,
                           scale=args.scale, seed=args.seed, interaction=False)
    rec = licchie.as_recording(ds)
    model = licchie.LICCHIE(n_components=args.n_components, radius=args.radius,
                            n_neighbors=args.n_neighbors, sigma=args.sigma,
                            lambdas=tuple(args.lambdas) + (args.pooling,),
                            init=args.init, n_init=1, max_iter=args.max_iter, tol=0.0,
                            random_state=args.seed, n_jobs=args.threads, verbose=0,
                            dtype=args.dtype)
    rss_base = _maxrss_mb()
    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        model.fit(rec)
        fit_s = time.perf_counter() - t0
    rss_peak = _maxrss_mb()
    yhat = model.predict(ds, weights="fitted").values
    hist = model.objective_history_
    done = hist["stage"].values != "init"
    it = hist["iteration"].values
    # the objective at the end of every iteration (last record of each)
    per_it = [float(hist.sel(term="total").values[np.flatnonzero(it == k)[-1]])
              for k in range(1, model.n_iter_ + 1)]
    out = {"dtype": args.dtype, "fit_s": fit_s, "n_iter": int(model.n_iter_),
           "n_pairs": int(model.n_pairs_), "d": int(model.n_features_in_),
           "rss_base_mb": rss_base, "rss_peak_mb": rss_peak, "history": per_it,
           "n_records": int(done.sum()),
           "C": model.components_["target_effect"].values.T.tolist(),
           "R": model.components_["source_effect"].values.T.tolist(),
           "W": model.weights_.values.tolist(),
           "yhat": np.nan_to_num(yhat).ravel().tolist()}
    return out


def _run(argv, env, dtype, timeout):
    return P.run_json_child("benchmarks.float32", [*argv, "--worker", "--dtype", dtype], env,
                            timeout, f"{dtype} worker")


def report(args, r64, r32):
    import numpy as np

    from licchie.fit import motif_agreement

    lines = []
    p = lines.append
    p(f"float64 vs float32: n_cells={tuple(args.n_cells)} x scale {args.scale}, "
      f"n_frames={args.n_frames}, d={args.n_features}, J={args.n_components}, "
      f"lambdas={tuple(args.lambdas)}, pooling={args.pooling}, init={args.init}, "
      f"{args.max_iter} iterations (tol=0, one start, extrapolation on), "
      f"{args.threads} Numba thread(s), seed {args.seed}; load average "
      f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    E, d = r64["n_pairs"], r64["d"]
    p(f"pairs={E}; one A: {E * d * d * 8 / 2**20:.1f} MB in float64, "
      f"{E * d * d * 4 / 2**20:.1f} MB in float32")
    p("")
    p(f"{'':10s}{'fit [s]':>10s}{'s/iter':>10s}{'peak RSS':>11s}{'base':>9s}{'fit RSS':>10s}")
    for r in (r64, r32):
        p(f"{r['dtype']:10s}{r['fit_s']:10.2f}{r['fit_s'] / r['n_iter']:10.3f}"
          f"{r['rss_peak_mb']:9.1f}MB{r['rss_base_mb']:7.1f}MB"
          f"{r['rss_peak_mb'] - r['rss_base_mb']:8.1f}MB")
    h64 = np.array(r64["history"])
    h32 = np.array(r32["history"])
    rel = np.abs(h32 - h64) / np.abs(h64)
    p("")
    p("objective after each iteration (float64, float32, relative difference):")
    for k in range(len(h64)):
        p(f"  iter {k + 1:3d}: {h64[k]:.10g}  {h32[k]:.10g}  {rel[k]:.1e}")
    inc = np.diff(h32)
    p(f"float32 history: largest increase between iterations "
      f"{max(0.0, float(inc.max()) if inc.size else 0.0):.2e} "
      f"(relative {max(0.0, float((inc / np.abs(h32[:-1])).max()) if inc.size else 0.0):.1e})")
    C64, R64 = np.array(r64["C"]), np.array(r64["R"])
    C32, R32 = np.array(r32["C"]), np.array(r32["R"])
    sim, match = motif_agreement(C64, R64, C32, R32)
    p(f"motifs: matched |cos| min {sim.min():.7f}, mean {sim.mean():.7f} "
      f"(max mismatch 1-|cos| = {1 - sim.min():.1e})")
    y64, y32 = np.array(r64["yhat"]), np.array(r32["yhat"])
    p(f"in-sample predictions: relative difference ||y32 - y64|| / ||y64|| = "
      f"{np.linalg.norm(y32 - y64) / np.linalg.norm(y64):.1e}")
    W64, W32 = np.array(r64["W"]), np.array(r32["W"])[:, match]
    p(f"weights (matched components): ||W32 - W64|| / ||W64|| = "
      f"{np.linalg.norm(np.abs(W32) - np.abs(W64)) / np.linalg.norm(W64):.1e} "
      "(of |W|: a matched motif may flip sign)")
    return "\n".join(lines)


def parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    P.add_problem_arguments(ap)
    ap.add_argument("--init", choices=("parafac", "groups"), default="parafac")
    ap.add_argument("--max-iter", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1, help="Numba threads")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--dtype", default="float64", help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse(argv)
    if args.worker:
        print(json.dumps(worker(args)))
        return
    res = {}
    with tempfile.TemporaryDirectory(prefix="licchie-numba-cache-") as cache:
        env = P.child_env(NUMBA_CACHE_DIR=cache, OMP_NUM_THREADS=1,
                             OPENBLAS_NUM_THREADS=1, MKL_NUM_THREADS=1)
        for dtype in ("float64", "float32"):
            _run(argv, env, dtype, args.timeout)  # compiles into the cache
            res[dtype] = _run(argv, env, dtype, args.timeout)
    text = report(args, res["float64"], res["float32"])
    print(text)
    if args.json:
        slim = {k: {kk: v for kk, v in r.items() if kk not in ("W", "yhat")}
                for k, r in res.items()}
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "results": slim, "report": text}, fh, indent=1)


if __name__ == "__main__":
    main()
