"""The gain search's joint solve: the kernel against NumPy, the solver against the alternation.

1. One evaluation of the gain-eliminated loss and gradient
   (:func:`licchie.kernels.gains.gain_eliminated_loss`) against the same
   computation in vectorised NumPy, on the random class x frame problems of
   ``bench_search.py`` (d = 19, J = 10), medians of repeated calls in this
   process, one thread.
2. On a synthetic recording at paper size (``--regime``, ``--seed``): the
   joint minimum from the true motifs and gains 1 by
   :func:`licchie.fit.gains.joint_minimum` and by the alternation
   :class:`licchie.fit.gains.GainSolver` (the gain search's joint solve before
   2026-12-07): loss reached, evaluations, seconds.

    NUMBA_NUM_THREADS=1 python benchmarks/gain_joint.py --sizes 10000 100000
    NUMBA_NUM_THREADS=2 python benchmarks/gain_joint.py --kernel-only --sizes 10000 100000 1000000
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.bench_search import GainJoint  # noqa: E402


def numpy_loss(Y, Z, tg_ptr, tg_group, Wbar, C, R):
    """The kernel's computation in vectorised NumPy (the reference of the timing)."""
    nt = Y.shape[0]
    trow = np.repeat(np.arange(nt), np.diff(tg_ptr))
    ZR = Z @ R
    Wa = Wbar[tg_group]
    V = np.zeros((nt, C.shape[1]))
    np.add.at(V, trow, Wa * ZR)
    P = V @ C.T
    xp, pp = np.einsum("td,td->t", Y, P), np.einsum("td,td->t", P, P)
    g = np.where(pp > 0, xp / np.where(pp > 0, pp, 1.0), 0.0)
    res = Y - g[:, None] * P
    Q = -2.0 * g[:, None] * res
    Ua = (Q @ C)[trow]
    gW = np.zeros_like(Wbar)
    np.add.at(gW, tg_group, Ua * ZR)
    return float(np.einsum("td,td->", res, res)), gW, Q.T @ V, Z.T @ (Ua * Wa)


def _median_time(fn, reps):
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return float(np.median(out))


def kernel_vs_numpy(sizes, reps):
    """Kernel against NumPy at the process's thread count, and the kernel on
    one thread against all of them (the pass runs in blocks of targets)."""
    import numba
    nth = numba.get_num_threads()
    print(f"n_pairs  n_rows   kernel_ms  numpy_ms  ratio   kernel_ms_1thread  threads_{nth}_speedup")
    for n in sizes:
        b = GainJoint()
        b.setup(n)
        numba.set_num_threads(nth)   # the asv setup limits the kernels to one thread
        args = b.rows + (b.Wbar, b.C, b.R)
        F_np = numpy_loss(*args)[0]
        F_k = b.KG.gain_eliminated_loss(*args, *b.grads)
        assert np.isclose(F_k, F_np, rtol=1e-10), (F_k, F_np)
        tk = _median_time(lambda: b.KG.gain_eliminated_loss(*args, *b.grads), reps)
        tn = _median_time(lambda: numpy_loss(*args), max(3, reps // 4))
        numba.set_num_threads(1)
        try:
            t1 = _median_time(lambda: b.KG.gain_eliminated_loss(*args, *b.grads), reps)
        finally:
            numba.set_num_threads(nth)
        print(f"{n:>8} {b.rows[1].shape[0]:>8} {tk * 1e3:10.2f} {tn * 1e3:9.2f} {tn / tk:6.1f}x"
              f" {t1 * 1e3:18.2f} {t1 / tk:10.2f}x")
        b.teardown(n)


def solver_vs_alternation(regime, seed):
    from licchie import LICCHIE
    from licchie.fit import gains as FGN
    from licchie.fit import global_start as FG
    from licchie.fit import search as S
    from licchie.synthetic import make_suite_recording

    ds, truth = make_suite_recording(regime, seed)
    J = int(truth.sizes["component"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prep = LICCHIE(n_components=J, radius=float(ds.attrs["radius"]),
                       target_gain=True)._prepare(ds)
    data, _ = FG.reduced_data(prep.problem, prep.recording.obs)
    comps = prep.problem.gain_components
    C = np.ascontiguousarray(truth["target_effect"].values.T)
    R = np.ascontiguousarray(truth["source_effect"].values.T)
    used = truth["motif_used"].values.astype(bool)
    ones = np.ones(data.agg["rows"]["Y"].shape[0])
    FGN.joint_minimum(data, comps, C, R, ones, max_eval=5)   # compiles
    print(f"\n{regime} seed {seed}, from the true motifs and gains 1:")
    print("solver                     loss   evals  seconds  recovery")
    t = time.perf_counter()
    solver = FGN.GainSolver(data, comps)
    Wb, C1, R1, F, n = solver(None, C, R)
    sec = time.perf_counter() - t
    rec = float(np.mean(S.motif_cos(C, R, C1, R1)[0][used]))
    print(f"{'GainSolver (alternation)':24s} {F:8.4f} {n:7d} {sec:8.2f} {rec:9.4f}")
    for me in (3000, 30000):
        t = time.perf_counter()
        _, C1, R1, F, n, _ = FGN.joint_minimum(data, comps, C, R, ones, max_eval=me)
        sec = time.perf_counter() - t
        rec = float(np.mean(S.motif_cos(C, R, C1, R1)[0][used]))
        print(f"{'joint_minimum ' + str(me):24s} {F:8.4f} {n:7d} {sec:8.2f} {rec:9.4f}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", nargs="+", type=int, default=[10_000, 100_000])
    p.add_argument("--reps", type=int, default=21)
    p.add_argument("--regime", default="owned_gains")
    p.add_argument("--seed", type=int, default=2)
    p.add_argument("--kernel-only", action="store_true", help="skip the paper-size solves")
    a = p.parse_args(argv)
    kernel_vs_numpy(a.sizes, a.reps)
    if not a.kernel_only:
        solver_vs_alternation(a.regime, a.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
