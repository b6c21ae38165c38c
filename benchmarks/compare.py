"""LICCHIE against the naive implementation, stage by stage, on the same data.

Usage (from the repository root)::

    python -m benchmarks.compare                    # the paper's size
    python -m benchmarks.compare --scale 4 --naive-iters 1
    python -m benchmarks.compare --help

Every implementation runs in its own subprocess (so that its peak memory,
``resource.getrusage(RUSAGE_SELF).ru_maxrss``, is its own), on the same
recording (:func:`licchie.synthetic.make_recording`, same seed), with BLAS
limited to one thread (threadpoolctl) and Numba to ``--numba-threads``
(default 1: a single-core comparison).  LICCHIE runs twice with the same
fresh ``NUMBA_CACHE_DIR``: first with a cold cache (its first calls include
Numba compilation), then with the cache just written (first calls only load
machine code).  Stage times are medians over repeats/iterations after a
warm-up call, so compilation is excluded from them and reported separately.

Both follow the plain alternating algorithm of MODEL.md (no extrapolation
step) from the same start: the initial A-step (lam1 = 0) computed by each
implementation, then the same PARAFAC initialisation
(:func:`licchie.fit.parafac_init`, same seed: tensorly's random factors,
then CP-ALS through tensorly for the naive run and through the package's
kernels for LICCHIE, equal to rounding).  The naive run is limited to
``--naive-iters`` iterations (it is slow); objectives are compared after the
same number of iterations.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time

from benchmarks import _problems as P

STAGES = ("pairs", "graph", "pair_order", "init_a_step", "a_step", "component_step",
          "weight_step", "objective", "iteration")
LABELS = {
    "pairs": "pairs",
    "graph": "smoothness graph",
    "pair_order": "locality order (LICCHIE only)",
    "init_a_step": "initial A-step (lam1=0)",
    "a_step": "A-step",
    "component_step": "component step",
    "weight_step": "weight step",
    "objective": "objective (1 per iteration)",
    "iteration": "whole iteration",
}


def _maxrss_mb():
    # Linux: kilobytes
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _timed(fn, *args, **kw):
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t0


def _stats(first, samples):
    med = statistics.median(samples) if samples else float("nan")
    return {"first": first, "median": med, "samples": samples, "n": len(samples)}


def _recording(args):
    import licchie
    from licchie.synthetic import make_recording

    ds, _ = make_recording(n_cells=tuple(args.n_cells), n_frames=args.n_frames,
                           n_features=args.n_features, n_components=args.n_components,
                           scale=args.scale, seed=args.seed, interaction=False)
    return licchie.as_recording(ds).obs


def _lambdas(args):
    return tuple(float(v) for v in args.lambdas) + (float(args.pooling),)


# --------------------------------------------------------------------------
# workers (one per subprocess)
# --------------------------------------------------------------------------

def worker_licchie(args):
    t0 = time.perf_counter()
    import numba
    import numpy as np
    from threadpoolctl import threadpool_info, threadpool_limits

    from licchie import fit as F
    from licchie import kernels as K
    import_s = time.perf_counter() - t0
    numba.set_num_threads(min(args.numba_threads, numba.config.NUMBA_NUM_THREADS))
    obs = _recording(args)
    rss_base = _maxrss_mb()
    out = {"impl": "licchie", "import_s": import_s, "stages": {}}
    st = out["stages"]
    lam = _lambdas(args)
    with threadpool_limits(limits=1, user_api="blas"):
        out["blas"] = [(i["internal_api"], i["num_threads"]) for i in threadpool_info()
                       if i["user_api"] == "blas"]
        out["numba_threads"] = numba.get_num_threads()
        out["numba_layer_max"] = numba.config.NUMBA_NUM_THREADS

        def rep(fn, n, *a):
            res, first = _timed(fn, *a)
            samples = [_timed(fn, *a)[1] for _ in range(n)]
            return res, _stats(first, samples)

        pairs, st["pairs"] = rep(F.build_pairs, args.repeats, obs, args.radius)
        graph, st["graph"] = rep(F.build_graph, max(1, args.repeats // 2), obs.features,
                                 pairs, args.n_neighbors, args.sigma)
        out["threading_layer"] = numba.threading_layer()
        ridge = F.RIDGE_REL * max(float(np.mean(obs.features ** 2)), np.finfo(float).tiny)

        # as LICCHIE.fit: the iterations run on the targets in locality order
        def order_fn():
            order = F.locality_order(obs.features, pairs)
            return order, F.reorder(pairs, graph, order)
        (order, (pairs, graph, _)), st["pair_order"] = rep(order_fn, args.repeats)
        prob = F.Problem(obs.features, pairs, graph, lam, ridge, np.dtype(args.dtype).type,
                         target_order=order)
        A, st["init_a_step"] = rep(F.initial_interactions, args.repeats, prob)
        (W, C, R), par_s = _timed(F.parafac_init, A, args.n_components, args.seed)
        out["parafac_s"] = par_s
        Wbar = K.group_mean(W, pairs.group, pairs.n_groups)
        out.update(n_pairs=int(pairs.n_pairs), n_targets=int(pairs.tgt_obs.size),
                   n_edges=int(graph.n_edges), d=int(obs.n_features))
        # warm-up (first call = compile or cache load) of every iteration stage
        first = {}
        (_, _), first["a_step"] = _timed(prob.a_step, A, W, C, R)
        _, first["component_step"] = _timed(prob.component_step, A, W, C, R)
        _, first["weight_step"] = _timed(prob.weight_step, A, W, C, R, Wbar)
        L0, first["objective"] = _timed(prob.objective, A, W, C, R, Wbar)
        # Per iteration, every stage is timed `repeats` times on that
        # iteration's inputs (the steps are pure functions of their inputs) and
        # the median kept; then the whole iteration likewise.  The table
        # compares the first `naive_iters` iterations, as run by the naive code
        # (later iterations are cheaper for the warm-started coordinate descents).
        def med(fn, *a):
            res, s0 = _timed(fn, *a)
            return res, statistics.median([s0] + [_timed(fn, *a)[1]
                                                  for _ in range(args.repeats - 1)])

        def one_iteration(A, W, C, R, Wbar):
            return P.iteration(prob, A, W, C, R, Wbar)

        samples = {k: [] for k in ("a_step", "component_step", "weight_step", "objective",
                                   "iteration")}
        hist = []
        for _ in range(args.iters):
            (A1, _), s = med(prob.a_step, A, W, C, R)
            samples["a_step"].append(s)
            (C1, R1), s = med(prob.component_step, A1, W, C, R)
            samples["component_step"].append(s)
            (W1, Wbar1, _, _), s = med(prob.weight_step, A1, W, C1, R1, Wbar)
            samples["weight_step"].append(s)
            _, s3 = med(prob.objective, A1, W1, C1, R1, Wbar1)
            samples["objective"].append(s3)
            (A, W, C, R, Wbar, terms), s = med(one_iteration, A, W, C, R, Wbar)
            samples["iteration"].append(s)
            hist.append(float(terms.sum()))
        first["iteration"] = float("nan")
        k = max(1, min(args.naive_iters, args.iters))
        for name, v in samples.items():
            st[name] = _stats(first[name], v[:k])
            st[name]["median_all"] = statistics.median(v)
        out["L0"] = float(L0.sum())
        out["history"] = hist
    out["rss_base_mb"] = rss_base
    out["rss_peak_mb"] = _maxrss_mb()
    return out


def worker_naive(args):
    t0 = time.perf_counter()
    import numpy as np
    from threadpoolctl import threadpool_limits

    from benchmarks import naive as N
    from licchie import fit as F  # only parafac_init(als="tensorly") and RIDGE_REL
    import_s = time.perf_counter() - t0
    obs = _recording(args)
    rss_base = _maxrss_mb()
    out = {"impl": "naive", "import_s": import_s, "stages": {}}
    st = out["stages"]
    lam = _lambdas(args)
    with threadpool_limits(limits=1, user_api="blas"):
        def rep(fn, n, *a):
            res, first = _timed(fn, *a)
            samples = [first] + [_timed(fn, *a)[1] for _ in range(n - 1)]
            return res, _stats(first, samples)

        def pairs_fn():
            p = N.find_pairs(obs, args.radius)
            gain = N.pair_gains(p["dist"])
            group, ng = N.pair_groups(obs, p["tgt"], p["src"], p["is_self"])
            return p, gain, group, ng

        (p, gain, group, ng), st["pairs"] = rep(pairs_fn, args.naive_repeats)
        ridge = F.RIDGE_REL * max(float(np.mean(obs.features ** 2)), np.finfo(float).tiny)

        def graph_fn():
            edges, w = N.build_graph(obs.features, p["tgt"], p["src"], args.n_neighbors,
                                     args.sigma)
            # neighbour lists are part of building the graph here
            return N.NaiveProblem(obs.features, p["tgt"], p["src"], gain, group, ng, edges,
                                  w, lam, ridge)

        prob, st["graph"] = rep(graph_fn, args.naive_repeats)
        A, st["init_a_step"] = rep(N.initial_interactions, 1, prob, obs.n_features)
        (W, C, R), par_s = _timed(F.parafac_init, A, args.n_components, args.seed,
                                  als="tensorly")
        out["parafac_s"] = par_s
        Wbar = N.group_means(W, group, ng)
        out.update(n_pairs=int(prob.n_pairs), n_targets=int(prob.targets.size),
                   n_edges=int(prob.edges.shape[0]), d=int(obs.n_features))
        L0 = N.objective(prob, A, W, C, R, Wbar)
        samples = {k: [] for k in ("a_step", "component_step", "weight_step", "objective",
                                   "iteration")}
        obj_s = []

        def timer(name, s):
            if name == "objective":
                obj_s.append(s)
            else:
                samples[name].append(s)

        hist = []
        state = (A, W, C, R, Wbar)
        for _ in range(args.naive_iters):
            t_it = time.perf_counter()
            state, h = N.iteration(prob, *state, timer=timer, record_steps=False)
            samples["iteration"].append(time.perf_counter() - t_it)
            samples["objective"].append(obj_s[-1])
            hist.append(float(h[-1].sum()))
        for k, v in samples.items():
            st[k] = _stats(v[0] if v else float("nan"), v)
        out["L0"] = float(L0.sum())
        out["history"] = hist
    out["rss_base_mb"] = rss_base
    out["rss_peak_mb"] = _maxrss_mb()
    return out


# --------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------

def _run_worker(impl, argv, env, timeout):
    return P.run_json_child("benchmarks.compare", [*argv, "--worker", impl], env, timeout,
                            f"{impl} worker")


def _fmt(x, width=11):
    if x is None or x != x:
        return "—".rjust(width)
    if x >= 100:
        return f"{x:{width}.1f}"
    if x >= 1:
        return f"{x:{width}.3f}"
    return f"{x:{width}.2e}"


def report(args, nai, cold, warm):
    lines = []
    p = lines.append
    p(f"LICCHIE vs naive: n_cells={tuple(args.n_cells)} x scale {args.scale}, "
      f"n_frames={args.n_frames}, d={args.n_features}, J={args.n_components}, "
      f"radius={args.radius}, M={args.n_neighbors}, sigma={args.sigma}, "
      f"lambdas={_lambdas(args)}, seed={args.seed}, LICCHIE dtype={args.dtype}")
    p(f"pairs={warm['n_pairs']}, targets={warm['n_targets']} "
      f"(S={warm['n_pairs'] / max(warm['n_targets'], 1):.2f} pairs per target), "
      f"graph edges={warm['n_edges']}")
    if nai is not None:
        same = (nai["n_pairs"], nai["n_edges"]) == (warm["n_pairs"], warm["n_edges"])
        p(f"naive built {nai['n_pairs']} pairs and {nai['n_edges']} edges "
          f"({'identical counts' if same else 'DIFFERENT COUNTS'})")
    p(f"threads: Numba {warm['numba_threads']} (of NUMBA_NUM_THREADS="
      f"{warm['numba_layer_max']}, layer {warm['threading_layer']}), BLAS "
      f"{warm['blas']} via threadpoolctl; os.cpu_count()={os.cpu_count()}, "
      f"load average {os.getloadavg()[0]:.2f}")
    n_it = f"LICCHIE {args.iters} iterations"
    if nai is not None:
        n_it += f", naive {args.naive_iters} (LIMITED to {args.naive_iters}: it is slow)"
    k_it = max(1, min(args.naive_iters, args.iters))
    p(f"iterations: {n_it}; plain alternation of MODEL.md (no extrapolation step).")
    p(f"timing: LICCHIE = median of {args.repeats} calls on the same inputs (graph: "
      f"{max(1, args.repeats // 2)}) after a warm-up call; iteration stages: median over "
      f"iterations 1..{k_it} of those medians")
    p(f"        naive = median of {args.naive_repeats} call(s) (pairs, graph), one call "
      f"(initial A-step), median over iterations 1..{k_it} (iteration stages)")
    p(f"        'LICCHIE all' = LICCHIE median over all {args.iters} iterations")
    p("")
    hdr = (f"{'stage':30s}{'naive [s]':>11s}{'LICCHIE [s]':>13s}{'naive/LICCHIE':>15s}"
           f"{'LICCHIE all':>13s}{'1st call cold':>15s}{'1st call cached':>17s}")
    p(hdr)
    p("-" * len(hdr))
    tot_cold = tot_warm = comp_cold = comp_warm = 0.0
    for k in STAGES:
        lw = warm["stages"][k]["median"]
        nv = (nai["stages"][k]["median"] if nai is not None and k in nai["stages"]
              else float("nan"))
        ratio = nv / lw if lw > 0 else float("nan")
        fc = cold["stages"][k]["first"]
        fw = warm["stages"][k]["first"]
        if k != "iteration":
            tot_cold += fc
            tot_warm += fw
            comp_cold += max(0.0, fc - cold["stages"][k]["median"])
            comp_warm += max(0.0, fw - warm["stages"][k]["median"])
        p(f"{LABELS[k]:30s}{_fmt(nv)}{_fmt(lw, 13)}{_fmt(ratio, 15)}"
          f"{_fmt(warm['stages'][k].get('median_all', float('nan')), 13)}{_fmt(fc, 15)}"
          f"{_fmt(fw, 17)}")
    npar = nai["parafac_s"] if nai is not None else float("nan")
    p(f"{'PARAFAC init (CP-ALS)':30s}{_fmt(npar)}{_fmt(warm['parafac_s'], 13)}"
      f"{_fmt(npar / warm['parafac_s'], 15)}")
    p("")
    p(f"LICCHIE first calls, all stages: {tot_cold:.2f} s with a cold Numba cache "
      f"(compilation), {tot_warm:.2f} s with the cache written by that run (loading);")
    p(f"  first call minus median (the overhead alone): {comp_cold:.2f} s cold, "
      f"{comp_warm:.2f} s cached; import licchie: {cold['import_s']:.2f} s cold, "
      f"{warm['import_s']:.2f} s cached")
    p("")
    p("objective (total L) after each iteration:")
    p(f"  start:  LICCHIE {warm['L0']:.10g}" + (
        f"   naive {nai['L0']:.10g}   rel. diff {abs(nai['L0'] - warm['L0']) / abs(warm['L0']):.1e}"
        if nai is not None else ""))
    for i, L in enumerate(warm["history"], 1):
        s = f"  iter {i:2d}: LICCHIE {L:.10g}"
        if nai is not None and i <= len(nai["history"]):
            Ln = nai["history"][i - 1]
            s += f"   naive {Ln:.10g}   rel. diff {abs(Ln - L) / abs(L):.1e}"
        p(s)
    p("")
    p("peak memory (ru_maxrss of each worker process; 'base' = after imports and data):")
    for name, r in (("naive", nai), ("LICCHIE, cold cache", cold), ("LICCHIE, cached", warm)):
        if r is not None:
            p(f"  {name:20s} peak {r['rss_peak_mb']:8.1f} MB   base {r['rss_base_mb']:8.1f} MB"
              f"   fit {r['rss_peak_mb'] - r['rss_base_mb']:8.1f} MB")
    E, d = warm["n_pairs"], warm["d"]
    size = 4 if args.dtype == "float32" else 8
    p(f"  (one interaction tensor A: pairs x d x d x {size} B = "
      f"{E * d * d * size / 2**20:.1f} MB)")
    return "\n".join(lines)


def parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    P.add_problem_arguments(ap)
    ap.add_argument("--iters", type=int, default=10, help="LICCHIE iterations")
    ap.add_argument("--naive-iters", type=int, default=2, help="naive iterations")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--naive-repeats", type=int, default=1)
    ap.add_argument("--numba-threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-naive", action="store_true")
    ap.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                    help="LICCHIE's storage of A (LICCHIE(dtype=...)); the naive code "
                         "stays float64")
    ap.add_argument("--timeout", type=float, default=3600, help="per worker, seconds")
    ap.add_argument("--json", help="also write all measurements to this file")
    ap.add_argument("--worker", choices=("licchie", "naive"), help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse(argv)
    if args.worker is not None:
        out = worker_licchie(args) if args.worker == "licchie" else worker_naive(args)
        print(json.dumps(out))
        return
    with tempfile.TemporaryDirectory(prefix="licchie-numba-cache-") as cache:
        env = P.child_env(NUMBA_CACHE_DIR=cache, OMP_NUM_THREADS=1,
                             OPENBLAS_NUM_THREADS=1, MKL_NUM_THREADS=1)
        cold = _run_worker("licchie", argv, env, args.timeout)
        warm = _run_worker("licchie", argv, env, args.timeout)
        nai = None if args.skip_naive else _run_worker("naive", argv, env, args.timeout)
    text = report(args, nai, cold, warm)
    print(text)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "naive": nai, "licchie_cold": cold,
                       "licchie_cached": warm, "report": text}, fh, indent=1)


if __name__ == "__main__":
    main()
