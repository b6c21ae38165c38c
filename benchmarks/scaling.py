"""Log-log scaling exponents of every fit stage, beside the claimed complexity.

Usage (from the repository root)::

    python -m benchmarks.scaling                 # from asv results (.asv/results)
    python -m benchmarks.scaling --measure       # own timing loop, same grid, no asv
    python -m benchmarks.scaling --memory        # peak memory per stage and per fit
    python -m benchmarks.scaling --million       # the 1,000,000-pair target (d=19, J=10)

The grid is ``_problems.AXES`` (the asv suite's): one quantity varied at a
time from the paper's size.  The exponent is the least-squares slope of
log(time) against log(x), with x = number of pairs for ``Cells``, ``Frames``
and ``Neighbours`` (the latter at a fixed number of targets, so pairs grow
like S, the pairs per target), x = d for ``Features`` and x = J for
``Components``.  ``local`` lists the slopes between consecutive grid points.

Claimed (LICCHIE, MODEL.md and the kernels' docstrings): every iteration
stage is linear in pairs and quadratic in d (A-step O(S d^2) per target,
i.e. O(pairs d^2) overall); pairs are found on a grid, linear in pairs; the
smoothness graph is an exact brute-force search, quadratic in pairs.  The
paper's App. A.5 solves each target's A as a dense wide least squares,
O(S^2 d^3) per target, i.e. exponent 2 in pairs at fixed targets and 3 in d.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time

from benchmarks import _problems as P

X_OF_AXIS = {"Cells": "pairs", "Frames": "pairs", "Neighbours": "pairs", "Features": "d",
             "Components": "J"}

# (LICCHIE's claim, the paper's App. A.5 dense wide least squares), as exponents
CLAIMS = {
    ("Cells", "pairs"): ("1", "2 (all-pairs distances)"),
    ("Frames", "pairs"): ("1", "1"),
    ("Neighbours", "pairs"): ("1", "1"),
    ("Features", "pairs"): ("0", "0"),
    ("Cells", "graph"): ("1-2 (pruned; brute 2)", "—"),
    ("Frames", "graph"): ("1-2 (pruned; brute 2)", "—"),
    ("Neighbours", "graph"): ("1-2 (pruned; brute 2)", "—"),
    ("Features", "graph"): ("<=1", "—"),
    ("Neighbours", "a_step"): ("1", "2 (S^2 per target)"),
    ("Neighbours", "naive a_step"): ("—", "2 (S^2 per target)"),
    ("Features", "naive a_step"): ("—", "3"),
    ("Cells", "naive a_step"): ("—", "1"),
    ("Frames", "naive a_step"): ("—", "1"),
    ("Features", "a_step"): ("2", "3"),
    ("Components", "a_step"): ("<=1", "—"),
    ("Features", "component_step"): ("2", "2"),
    ("Features", "weight_step"): ("2", "2"),
    ("Features", "objective"): ("2", "2"),
    ("Features", "iteration"): ("2", "3"),
    ("Components", "component_step"): ("1 (+J^2 d)", "1"),
    ("Components", "weight_step"): ("1-2 (J^2 per CD sweep)", "1"),
    ("Components", "objective"): ("<=1", "—"),
    ("Components", "iteration"): ("1", "1"),
    ("Features", "parafac_als"): ("2", "—"),
    ("Components", "parafac_als"): ("1 (+J^2 per pair)", "—"),
}


def claim(axis, stage):
    if (axis, stage) in CLAIMS:
        return CLAIMS[(axis, stage)]
    if X_OF_AXIS[axis] == "pairs":
        return ("1", "1")
    return ("?", "?")


def slope(x, y):
    import numpy as np

    lx, ly = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    ok = np.isfinite(lx) & np.isfinite(ly)
    if ok.sum() < 2 or np.ptp(lx[ok]) == 0:
        return float("nan"), []
    b = np.polyfit(lx[ok], ly[ok], 1)[0]
    local = list(np.diff(ly[ok]) / np.diff(lx[ok]))
    return float(b), [float(v) for v in local]


# --------------------------------------------------------------------------
# asv results
# --------------------------------------------------------------------------

def load_asv(results_dir):
    """``{benchmark name: (param values, results)}``, newest run of each benchmark."""
    best = {}
    files = [f for f in glob.glob(os.path.join(results_dir, "*", "*.json"))
             if os.path.basename(f) != "machine.json"]
    for f in files:
        with open(f) as fh:
            d = json.load(fh)
        cols = d.get("result_columns")
        if not cols:
            continue
        for name, row in d["results"].items():
            r = dict(zip(cols, row))
            started = r.get("started_at") or 0
            if name not in best or started > best[name][0]:
                best[name] = (started, r.get("params") or [], r.get("result"))
    return {k: (v[1], v[2]) for k, v in best.items()}, files


def asv_table(results):
    """rows (axis, stage, xs, times) and (axis, stage, xs, bytes, a_bytes) from asv."""
    times, mems = [], []
    for axis, (key, values) in P.AXES.items():
        pre = f"bench_stages.{axis}."
        n_pairs = results.get(pre + "track_n_pairs", (None, None))[1]
        for stage in P.STAGES:
            t = results.get(pre + "time_" + stage)
            m = results.get(pre + "peakmem_" + stage)
            if t is None or t[1] is None:
                continue
            vals = [float(v) for v in t[0][0]] if t[0] else values
            if X_OF_AXIS[axis] == "pairs":
                xs = n_pairs
            else:
                xs = vals
            if xs is None:
                continue
            times.append((axis, stage, list(xs), t[1]))
            if m is not None and m[1] is not None and n_pairs is not None:
                d = vals if axis == "Features" else [P.BASE["n_features"]] * len(vals)
                a_bytes = [e * dd * dd * 8 for e, dd in zip(n_pairs, d)]
                mems.append((axis, stage, list(xs), m[1], a_bytes))
    return times, mems


# --------------------------------------------------------------------------
# own timing loop
# --------------------------------------------------------------------------

def naive_problem(b):
    """The naive implementation's problem on a bundle's pairs and graph."""
    import numpy as np

    from benchmarks import naive as N

    pr, g = b["pairs"], b["graph"]
    E = pr.n_pairs
    owner = np.repeat(np.arange(E), np.diff(g.nbr_ptr))
    keep = g.nbr_idx > owner
    edges = np.stack([owner[keep], g.nbr_idx[keep]], axis=1)
    prob = b["problem"]
    return N.NaiveProblem(prob.X, pr.tgt, pr.src, pr.gain, pr.group, pr.n_groups, edges,
                          g.nbr_w[keep], prob.lambdas, prob.ridge)


def measure(axes, repeats, naive_axes=()):
    """Minimum over ``repeats`` calls of every stage at every grid point.

    The minimum, not the median: on a shared machine interference only ever
    adds time.  With ``naive_axes``, the naive A-step (one call) as well.
    """
    from benchmarks import naive as N

    P.limit_threads()
    P.warm_up()
    rows = []
    for axis in axes:
        key, values = P.AXES[axis]
        per_stage = {s: [] for s in P.STAGES}
        naive_t = []
        xs = []
        for v in values:
            b = P.build(**{key: v})
            x = {"pairs": b["n_pairs"], "d": b["d"], "J": b["cfg"]["n_components"]}
            xs.append(x[X_OF_AXIS[axis]])
            for stage, fn in P.stage_calls(b).items():
                if axis == "Components" and stage in ("pairs", "graph"):
                    continue
                n = 1 if stage == "graph" else repeats
                ts = []
                for _ in range(n):
                    t0 = time.perf_counter()
                    fn()
                    ts.append(time.perf_counter() - t0)
                per_stage[stage].append(min(ts))
            if axis in naive_axes:
                nprob = naive_problem(b)
                A, W, C, R, _ = b["state"]
                t0 = time.perf_counter()
                N.a_step(nprob, A, W, C, R)
                naive_t.append(time.perf_counter() - t0)
            print(f"  measured {axis} {key}={v}: pairs={b['n_pairs']} "
                  f"targets={b['n_targets']}", file=sys.stderr, flush=True)
        for stage, ts in per_stage.items():
            if ts:
                rows.append((axis, stage, xs, ts))
        if naive_t:
            rows.append((axis, "naive a_step", xs, naive_t))
    return rows


def print_times(rows):
    print(f"{'axis':11s}{'x':>6s}{'x range':>18s}  {'stage':15s}{'exponent':>9s}  "
          f"{'LICCHIE claim':24s}{'paper A.5':25s}local slopes")
    for axis, stage, xs, ts in rows:
        b, local = slope(xs, ts)
        lic, pap = claim(axis, stage)
        rng = f"{min(xs):g}..{max(xs):g}"
        loc = " ".join(f"{v:.2f}" for v in local)
        tr = f"{min(ts):.3g}..{max(ts):.3g}s"
        print(f"{axis:11s}{X_OF_AXIS[axis]:>6s}{rng:>18s}  {stage:15s}{b:9.2f}  "
              f"{lic:24s}{pap:25s}{loc}   ({tr})")


def print_mems(mems):
    import numpy as np

    print("\npeak RSS (asv peakmem_, whole process) against the size of one A "
          "(pairs x d^2 x 8 B): least-squares peak = base + k * A")
    print(f"{'axis':11s}{'stage':15s}{'k [A copies]':>13s}{'base [MB]':>11s}")
    for axis, stage, xs, by, ab in mems:
        if len(set(ab)) < 2:
            continue
        k, base = np.polyfit(np.asarray(ab, float), np.asarray(by, float), 1)
        print(f"{axis:11s}{stage:15s}{k:13.2f}{base / 2**20:11.1f}")


# --------------------------------------------------------------------------
# memory probes (subprocesses, Linux /proc peak-RSS reset)
# --------------------------------------------------------------------------

def _reset_peak():
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


def _extra(fn):
    """Bytes the call adds at its peak above the RSS before it, and seconds."""
    import gc

    gc.collect()
    _reset_peak()
    before = P.memory_status()["VmRSS"]
    t0 = time.perf_counter()
    res = fn()
    s = time.perf_counter() - t0
    return res, P.memory_status()["VmHWM"] - before, s


def memory_probe(cfg, n_inits):
    """Run in a fresh process: extra peak bytes of every stage, then of whole fits."""
    import gc
    import warnings

    import licchie
    from licchie.synthetic import make_recording

    P.limit_threads()
    P.warm_up()
    b = P.build(**cfg)
    E, d = b["n_pairs"], b["d"]
    out = {"cfg": cfg, "n_pairs": E, "d": d, "J": b["cfg"]["n_components"],
           "n_edges": b["n_edges"], "a_bytes": E * d * d * 8, "stages": {}, "fit": {}}
    for stage, fn in P.stage_calls(b).items():
        _, extra, s = _extra(fn)
        out["stages"][stage] = {"extra": extra, "seconds": s}
    del b
    gc.collect()
    c = dict(P.BASE, **cfg)
    ds, _ = make_recording(n_cells=c["n_cells"], n_frames=c["n_frames"],
                           n_features=c["n_features"], n_components=min(8, d * d),
                           scale=c["scale"], seed=c["seed"], interaction=False)
    for n in n_inits:
        est = licchie.LICCHIE(n_components=c["n_components"], n_init=n, max_iter=5,
                              random_state=0, verbose=0, n_jobs=1)

        def fit():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                est.fit(ds)
        _, extra, s = _extra(fit)
        out["fit"][str(n)] = {"extra": extra, "seconds": s}
        gc.collect()
    return out


def memory(configs, n_inits, timeout):
    import numpy as np

    results = []
    for cfg in configs:
        r = P.run_json_child("benchmarks.scaling", ["--memory-probe", json.dumps(cfg),
                                                    "--n-inits", *map(str, n_inits)],
                             P.child_env(), timeout, f"memory probe {cfg}")
        results.append(r)
        print(f"  probed {cfg}: pairs={r['n_pairs']} d={r['d']}", file=sys.stderr,
              flush=True)
    print("extra peak memory above the RSS before the call (Linux VmHWM after "
          "clear_refs), in copies of one A = pairs x d^2 x 8 B")
    stages = list(results[0]["stages"])
    hdr = f"{'pairs':>7s}{'d':>4s}{'A [MB]':>9s}" + "".join(f"{s[:10]:>11s}" for s in stages)
    hdr += "".join(f"{'fit n_init=' + n:>14s}" for n in results[0]["fit"])
    print(hdr)
    for r in results:
        a = r["a_bytes"]
        line = f"{r['n_pairs']:7d}{r['d']:4d}{a / 2**20:9.1f}"
        line += "".join(f"{r['stages'][s]['extra'] / a:11.2f}" for s in stages)
        line += "".join(f"{v['extra'] / a:14.2f}" for v in r["fit"].values())
        print(line)
    # extra_fit = k * A_bytes + c * pairs (no intercept): copies of A + per-pair rest
    print("\nleast squares extra = k * (pairs d^2 8 B) + c * pairs:")
    Xm = np.array([[r["a_bytes"], r["n_pairs"]] for r in results], float)
    for key in ["iteration", "graph"]:
        y = np.array([r["stages"][key]["extra"] for r in results], float)
        (k, c), *_ = np.linalg.lstsq(Xm, y, rcond=None)
        print(f"  {key:12s} k = {k:5.2f} A copies, c = {c:7.0f} B per pair")
    for n in results[0]["fit"]:
        y = np.array([r["fit"][n]["extra"] for r in results], float)
        (k, c), *_ = np.linalg.lstsq(Xm, y, rcond=None)
        print(f"  fit n_init={n:3s} k = {k:5.2f} A copies, c = {c:7.0f} B per pair")
    return results


# --------------------------------------------------------------------------
# the 1,000,000-pair target
# --------------------------------------------------------------------------

def _mem_available():
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemAvailable"):
                return int(line.split()[1]) * 1024
    return 0


def million(target_pairs, d, J, M, knn_sizes, need_gb):
    """Every stage at ~target_pairs pairs, the exact graph included; the graph's
    exponent is also fitted on subsets."""
    import numpy as np

    from licchie import fit as F
    from licchie import kernels as K

    avail = _mem_available()
    print(f"MemAvailable {avail / 2**30:.1f} GiB; need about {need_gb:.1f} GiB", flush=True)
    if avail < need_gb * 2**30:
        print("not enough free memory on this shared machine: skipped")
        return None
    P.limit_threads()
    P.warm_up()
    out = {"target_pairs": target_pairs, "d": d, "J": J, "M": M}
    # pairs per unit of scale at the paper's density, from a small probe
    # (probed at scale 10: at scale 1 the box's edges hold a larger share of
    # the cells, which have fewer neighbours, and the estimate came out 1.4x low)
    obs0, _ = P.recording(n_features=d, scale=10)
    per_scale = F.build_pairs(obs0, P.BASE["radius"]).n_pairs / 10
    scale = target_pairs / per_scale
    t0 = time.perf_counter()
    obs, cfg = P.recording(n_features=d, scale=scale)
    out["make_recording_s"] = time.perf_counter() - t0
    pairs, ex, s = _extra(lambda: F.build_pairs(obs, cfg["radius"]))
    E = pairs.n_pairs
    out.update(scale=scale, n_pairs=int(E), n_targets=int(pairs.tgt_obs.size),
               n_obs=int(obs.n_obs), pairs_s=s, pairs_extra=ex)
    print(f"scale {scale:.1f}: {obs.n_obs} observations, {E} pairs, "
          f"{pairs.tgt_obs.size} targets; pairs {s:.2f} s", flush=True)
    S, ex, s = _extra(lambda: K.stacked_states(obs.features, pairs.tgt, pairs.src))
    # exact kNN on subsets of pairs, then extrapolated with the fitted exponent
    knn = []
    for n in knn_sizes:
        sub = np.ascontiguousarray(S[np.linspace(0, E - 1, n).astype(np.int64)])
        t0 = time.perf_counter()
        K.knn_stacked(sub, M)
        knn.append((n, time.perf_counter() - t0))
        print(f"  exact knn_stacked on {n} pairs: {knn[-1][1]:.2f} s", flush=True)
    b, _ = slope([k[0] for k in knn], [k[1] for k in knn])
    t_full = knn[-1][1] * (E / knn[-1][0]) ** b
    out.update(knn=knn, knn_exponent=b, knn_extrapolated_s=t_full)
    # the exact graph on all pairs (the pruned kNN made this affordable)
    (idx, _), ex, s = _extra(lambda: K.knn_stacked(S, M))
    out.update(knn_full_s=s, knn_full_extra=ex)
    print(f"  exact knn_stacked on all {E} pairs: {s:.2f} s", flush=True)
    (ptr, nidx, nw), ex, s = _extra(lambda: K.symmetric_graph(S, idx, 0.3))
    out.update(symmetrise_s=s, symmetrise_extra=ex)
    del idx
    rng = np.random.default_rng(0)
    graph = F.Graph(ptr, nidx, nw)
    out["n_edges"] = int(graph.n_edges)

    # as LICCHIE.fit: iterate on the targets in locality order
    def order_fn():
        order = F.locality_order(obs.features, pairs)
        return order, F.reorder(pairs, graph, order)[:2]
    (order, (pairs, graph)), ex, s = _extra(order_fn)
    out.update(pair_order_s=s, pair_order_extra=ex)
    print(f"  locality order {s:.2f} s", flush=True)
    prob = F.Problem(obs.features, pairs, graph, (1.0, 0.1, 0.0, 0.01, 0.0), 1e-12,
                     target_order=order)
    A, ex, s = _extra(lambda: F.initial_interactions(prob))
    out.update(init_a_step_s=s, init_a_step_extra=ex)
    print(f"  initial A-step {s:.2f} s", flush=True)
    W = rng.normal(size=(E, J))
    C = rng.normal(size=(d, J))
    R = rng.normal(size=(d, J))
    C /= np.linalg.norm(C, axis=0)
    R /= np.linalg.norm(R, axis=0)
    Wbar = K.group_mean(W, pairs.group, pairs.n_groups)
    # the fit writes each A-step into a reused array: time that, not page faults
    buf = np.zeros_like(A)
    stages = {
        "a_step": lambda: prob.a_step(A, W, C, R, out=buf),
        "component_step": lambda: prob.component_step(A, W, C, R),
        "weight_step": lambda: prob.weight_step(A, W, C, R, Wbar),
        "objective": lambda: prob.objective(A, W, C, R, Wbar),
        "iteration": lambda: P.iteration(prob, A, W, C, R, Wbar, out=buf),
        # the PARAFAC start's CP-ALS, P.PARAFAC_ALS_ITERS iterations
        "parafac_als": lambda: K.cp_als(A, W, C, R, P.PARAFAC_ALS_ITERS, 0.0),
    }
    out["a_bytes"] = int(A.nbytes)
    for name, fn in stages.items():
        _, ex, s = _extra(fn)
        out[name + "_s"] = s
        out[name + "_extra"] = ex
        print(f"  {name}: {s:.2f} s, +{ex / 2**30:.2f} GiB above RSS "
              f"({ex / A.nbytes:.2f} A)", flush=True)
    out["rss_gib"] = P.memory_status()["VmRSS"] / 2**30
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", default=os.path.join(P.REPO_ROOT, ".asv", "results"))
    ap.add_argument("--measure", action="store_true", help="own timing loop, no asv")
    ap.add_argument("--axes", nargs="+", default=list(P.AXES))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--naive", nargs="*", default=[], metavar="AXIS",
                    help="with --measure: also time the naive A-step on these axes")
    ap.add_argument("--memory", action="store_true")
    ap.add_argument("--n-inits", nargs="+", type=int, default=[1, 3])
    ap.add_argument("--memory-probe", help=argparse.SUPPRESS)
    ap.add_argument("--million", action="store_true")
    ap.add_argument("--million-pairs", type=int, default=1_000_000)
    ap.add_argument("--knn-sizes", nargs="+", type=int, default=[25000, 100000, 400000])
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--json", help="write the measurements here")
    a = ap.parse_args()
    if a.memory_probe:
        print(json.dumps(memory_probe(json.loads(a.memory_probe), a.n_inits)))
        return
    data = None
    if a.million:
        data = million(a.million_pairs, 19, 10, 10, a.knn_sizes,
                       need_gb=2.2 * a.million_pairs * 19 * 19 * 8 / 2**30 + 2.0)
        print(json.dumps(data))
    elif a.memory:
        configs = [dict(scale=1), dict(scale=2), dict(scale=4), dict(n_features=20),
                   dict(n_features=40)]
        data = memory(configs, a.n_inits, a.timeout)
    elif a.measure:
        rows = measure(a.axes, a.repeats, a.naive)
        print(f"own timing loop (min of {a.repeats}; graph and naive A-step 1 call), "
              f"Numba threads {P.limit_threads()}, BLAS 1")
        print_times(rows)
        data = rows
    else:
        results, files = load_asv(a.results)
        times, mems = asv_table(results)
        if not times:
            print(f"no asv results for bench_stages in {a.results}: run asv first, "
                  "or use --measure")
            return
        print(f"from {len(files)} asv result file(s) in {a.results} (newest run of each "
              "benchmark)")
        print_times(times)
        print_mems(mems)
        data = {"times": times, "mems": mems}
    if a.json and data is not None:
        with open(a.json, "w") as fh:
            json.dump(data, fh, indent=1, default=str)


if __name__ == "__main__":
    main()
