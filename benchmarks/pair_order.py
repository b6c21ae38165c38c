"""Time the iteration stages with pairs in different memory orders.

Usage (from the repository root)::

    LICCHIE_BENCH_THREADS=1 python -m benchmarks.pair_order --pairs 250000
    LICCHIE_BENCH_THREADS=1 python -m benchmarks.pair_order --pairs 1000000

Orders: ``frame`` (targets in observation order, i.e. frame-major, as
built), ``cell`` (targets by session, cell, frame), ``rcm`` (reverse
Cuthill-McKee of the target-level smoothness graph), ``kd``
(:func:`licchie.fit.locality_order`, what ``LICCHIE.fit`` uses).  Pairs of
a target stay contiguous, in their order (:func:`licchie.fit.reorder`).
Every layout is timed on the same problem (d = 19, J = 10), the layouts
interleaved in every repeat (the machine may be shared); A and W are permuted
from one layout to the next, so only one copy of A is held.  The A-step is
timed as its kernel writing into a buffer touched beforehand (page faults of
a fresh A, which ``Problem.a_step`` allocates, cost about as much again), and
with ``lam2 = 0`` (no neighbour reads) as a bound.  Times are wall and CPU
(process) seconds, medians over the repeats.
"""
from __future__ import annotations

import argparse
import gc
import json
import time

from benchmarks import _problems as P


def target_order(name, obs, pairs, graph):
    """Order of the targets (indices into ``pairs.tgt_obs``)."""
    import numpy as np
    import scipy.sparse as sp
    from scipy.sparse.csgraph import reverse_cuthill_mckee

    T = pairs.tgt_obs.shape[0]
    if name == "frame":
        return np.arange(T)
    o = pairs.tgt_obs
    if name == "cell":
        return np.lexsort((obs.frame[o], obs.cell[o], obs.session[o]))
    if name == "rcm":
        tid = np.repeat(np.arange(T), np.diff(pairs.tgt_ptr))
        owner = np.repeat(tid, np.diff(graph.nbr_ptr))
        other = tid[graph.nbr_idx]
        G = sp.csr_matrix((np.ones(owner.size, np.int8), (owner, other)), shape=(T, T))
        return np.asarray(reverse_cuthill_mckee(G, symmetric_mode=True), np.int64)
    if name == "kd":  # what LICCHIE.fit uses
        from licchie import fit as F

        return F.locality_order(obs.features, pairs)
    raise ValueError(name)


def locality(graph):
    import numpy as np

    owner = np.repeat(np.arange(graph.nbr_ptr.shape[0] - 1), np.diff(graph.nbr_ptr))
    gap = np.abs(graph.nbr_idx - owner)
    return {"median_gap": float(np.median(gap)), "mean_gap": float(gap.mean()),
            "within_256": float(np.mean(gap <= 256)),
            "within_4096": float(np.mean(gap <= 4096))}


def main():
    import numpy as np

    from licchie import fit as F
    from licchie import kernels as K

    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=250_000)
    ap.add_argument("--d", type=int, default=19)
    ap.add_argument("--J", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--orders", nargs="+", default=["frame", "cell", "rcm", "kd"])
    ap.add_argument("--json")
    a = ap.parse_args()
    print(f"threads {P.limit_threads()}", flush=True)
    P.warm_up()
    d, J = a.d, a.J
    obs0, _ = P.recording(n_features=d, scale=10)
    per_scale = F.build_pairs(obs0, P.BASE["radius"]).n_pairs / 10
    obs, cfg = P.recording(n_features=d, scale=a.pairs / per_scale)
    pairs = F.build_pairs(obs, cfg["radius"])
    t0 = time.perf_counter()
    graph = F.build_graph(obs.features, pairs, cfg["n_neighbors"], cfg["sigma"])
    E = pairs.n_pairs
    out = {"n_pairs": int(E), "n_targets": int(pairs.tgt_obs.size), "n_obs": int(obs.n_obs),
           "n_edges": int(graph.n_edges), "d": d, "J": J, "graph_s": time.perf_counter() - t0,
           "layouts": {}}
    print(f"{E} pairs, {pairs.tgt_obs.size} targets, {graph.n_edges} edges, graph "
          f"{out['graph_s']:.1f} s", flush=True)
    lambdas = (1.0, 0.1, 0.0, 0.01, 0.0)
    ridge = F.RIDGE_REL * float(np.mean(obs.features ** 2))
    prob = F.Problem(obs.features, pairs, graph, lambdas, ridge)
    A = F.initial_interactions(prob)
    rng = np.random.default_rng(0)
    W = rng.normal(size=(E, J))
    C = rng.normal(size=(d, J))
    R = rng.normal(size=(d, J))
    C /= np.linalg.norm(C, axis=0)
    R /= np.linalg.norm(R, axis=0)
    base_pairs, base_graph = pairs, graph
    layouts = {}
    for name in a.orders:
        t0 = time.perf_counter()
        order = target_order(name, obs, base_pairs, base_graph)
        p2, g2, perm = F.reorder(base_pairs, base_graph, order)
        t_order = time.perf_counter() - t0
        layouts[name] = (perm, F.Problem(obs.features, p2, g2, lambdas, ridge),
                         F.Problem(obs.features, p2, g2, (1.0, 0.0) + lambdas[2:], ridge))
        out["layouts"][name] = {"locality": locality(g2), "order_and_reorder_s": t_order}
        print(f"  {name} locality {out['layouts'][name]['locality']}; order + reorder "
              f"{t_order:.2f} s", flush=True)
    del pairs, graph, prob
    cur = np.arange(E)  # cur[i] = original index of the pair now at i
    stages = ("a_step", "a_step_lam2_0", "objective", "iteration")
    times = {(n, st): [] for n in a.orders for st in stages}
    cpu = {(n, st): [] for n in a.orders for st in stages}
    # interleaved: every repeat runs every layout (the machine is shared, and
    # its load drifts); A and W are permuted in place, one copy held
    for rep in range(a.repeats):
        for name in a.orders:
            perm, prob, prob0 = layouts[name]
            inv_cur = np.empty(E, np.int64)
            inv_cur[cur] = np.arange(E)
            rel = inv_cur[perm]
            A = A[rel]
            W = np.ascontiguousarray(W[rel])
            cur = perm
            del rel, inv_cur
            gc.collect()
            pr = prob.pairs
            Wbar = K.group_mean(W, pr.group, pr.n_groups)
            res = out["layouts"][name]
            if rep == 0:
                A1 = prob.a_step(A, W, C, R)[0]
                res["objective_after_a_step"] = float(prob.objective(A1, W, C, R, Wbar).sum())
                del A1
                it = P.iteration(prob, A, W, C, R, Wbar)
                res["objective_after_iteration"] = float(it[-1].sum())
                res["history_terms"] = [float(v) for v in it[-1]]
                del it
                gc.collect()
            buf = [np.zeros_like(A)]  # touched: the kernel's time without page faults

            def kernel(pb, lam2):
                g = pb.graph
                return K.a_step(A, pb.X, pr.tgt_obs, pr.tgt_ptr, pr.src, pr.gain, g.nbr_ptr,
                                g.nbr_idx, g.nbr_w, W, C, R, pb.lambdas[0], lam2,
                                pb.lambdas[2], pb.ridge, 1000, 1e-10, buf[0])

            calls = {
                "a_step": lambda: kernel(prob, prob.lambdas[1]),
                "a_step_lam2_0": lambda: kernel(prob, 0.0),
                "objective": lambda: prob.objective(A, W, C, R, Wbar),
                "iteration": lambda: P.iteration(prob, A, W, C, R, Wbar),
            }
            for st in stages:
                t0 = time.perf_counter()
                c0 = time.process_time()
                calls[st]()
                times[(name, st)].append(time.perf_counter() - t0)
                cpu[(name, st)].append(time.process_time() - c0)
                if st == "a_step_lam2_0":
                    buf.clear()  # one copy of A fewer during the iteration
                gc.collect()
            print(f"  repeat {rep} {name}: " + ", ".join(
                f"{st} {times[(name, st)][-1]:.3f}" for st in stages), flush=True)
    for (name, st), ts in times.items():
        cs = cpu[(name, st)]
        out["layouts"][name][st] = {"median": float(np.median(ts)), "min": float(min(ts)),
                                    "all": ts, "cpu_median": float(np.median(cs)),
                                    "cpu_min": float(min(cs)), "cpu_all": cs}
    for name in a.orders:
        res = out["layouts"][name]
        print(f"{name:6s} " + "  ".join(f"{st} {res[st]['median']:.3f}/cpu "
                                        f"{res[st]['cpu_median']:.3f}" for st in stages)
              + f"  | obj after A {res['objective_after_a_step']:.15g}, after iteration "
              f"{res['objective_after_iteration']:.15g}", flush=True)
    out["peak_rss_gib"] = P.memory_status()["VmHWM"] / 2**30
    ref = out["layouts"].get("frame")
    if ref:
        for name, res in out["layouts"].items():
            ratios = {st: (round(ref[st]["median"] / res[st]["median"], 3),
                           round(ref[st]["cpu_median"] / res[st]["cpu_median"], 3))
                      for st in ("a_step", "a_step_lam2_0", "objective", "iteration")}
            rel = {k: abs(res[k] - ref[k]) / abs(ref[k])
                   for k in ("objective_after_a_step", "objective_after_iteration")}
            print(f"{name}: speed-up vs frame (wall, cpu) {ratios}; objective rel. diff {rel}")
            res["speedup_vs_frame"] = ratios
            res["objective_rel_diff"] = rel
    print(f"peak RSS {out['peak_rss_gib']:.2f} GiB")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
