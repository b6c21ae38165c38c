"""The groups start alone: PARAFAC restarts on the group matrices, per restart
the CP error, the recovery of the CP factors, the reduced objective after
reduced_init and the recovery after it (no main iterations).

    NUMBA_NUM_THREADS=1 python -m studies.init_study --seed 0 --n 20 --out /tmp/starts/init_s0.csv
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from studies._common import BASE_FIT, PAPER_DATA, problem, recovery


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--bootstrap", action="store_true")
    ap.add_argument("--cp-only", action="store_true", help="skip reduced_init")
    ap.add_argument("--out", default="/tmp/starts/init.csv")
    a = ap.parse_args(argv)

    import pandas as pd
    import tensorly as tl
    from tensorly.decomposition import parafac
    from licchie import fit as F
    from licchie.synthetic import make_recording

    J = PAPER_DATA["n_components"]
    ds, truth = make_recording(regime="pooled", seed=a.seed, **PAPER_DATA)
    obs, pairs, prob = problem(ds, BASE_FIT)
    group, n_groups = F.init_groups(obs, pairs)
    Z, Y, kappa0 = F.reduced_inputs(prob)
    nt = pairs.tgt_ptr.shape[0] - 1
    rows = []
    T0 = F.group_matrices(Z, Y, kappa0, pairs.tgt_ptr, group, n_groups)
    print("n_groups", n_groups, "T", T0.shape, flush=True)
    with F.numba_threads(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k in range(a.n):
            rng = np.random.default_rng(1000 + k)
            t0 = time.perf_counter()
            if a.bootstrap:
                kappa = kappa0 * rng.multinomial(nt, np.full(nt, 1.0 / nt))
                T = F.group_matrices(Z, Y, kappa, pairs.tgt_ptr, group, n_groups)
            else:
                T = T0
            with tl.backend_context("numpy"):
                cp = parafac(tl.tensor(T), rank=J, init="random", n_iter_max=500,
                             tol=1e-10, random_state=int(rng.integers(2**31 - 1)),
                             linesearch=True)
            err = float(np.linalg.norm(tl.cp_to_tensor(cp) - T) / np.linalg.norm(T))
            C0 = np.asarray(cp.factors[1], dtype=np.float64)
            R0 = np.asarray(cp.factors[2], dtype=np.float64)
            t_cp = time.perf_counter() - t0
            Cn = C0 / np.linalg.norm(C0, axis=0)
            Rn = R0 / np.linalg.norm(R0, axis=0)
            rec_cp = float(recovery(truth, Cn, Rn).mean())
            if a.cp_only:
                C, R, hist = Cn, Rn, [np.nan]
            else:
                W, C, R, hist = F.reduced_init(prob, J, int(rng.integers(2**31 - 1)), 200,
                                               1e-7, C0, R0)
            rows.append(dict(seed=a.seed, k=k, bootstrap=a.bootstrap, cp_err=err,
                             cp_recovery=rec_cp, reduced=hist[-1],
                             reduced_sweeps=len(hist),
                             recovery=float(recovery(truth, C, R).mean()),
                             cp_seconds=t_cp, seconds=time.perf_counter() - t0))
            print(rows[-1], flush=True)
            pd.DataFrame(rows).to_csv(a.out, index=False)
        # the truth as a CP of T0: true C, R, group factor by least squares
        Ct = truth["target_effect"].values.T
        Rt = truth["source_effect"].values.T
        KR = np.einsum("aj,bj->abj", Ct, Rt).reshape(-1, J)
        G, *_ = np.linalg.lstsq(KR, T0.reshape(T0.shape[0], -1).T, rcond=None)
        terr = np.linalg.norm(KR @ G - T0.reshape(T0.shape[0], -1).T) / np.linalg.norm(T0)
        print("truth CP error of T (no bootstrap):", float(terr), flush=True)
        if a.cp_only:
            return
        # the truth's reduced objective: reduced_init from the true motifs
        Ct = truth["target_effect"].values.T
        Rt = truth["source_effect"].values.T
        W, C, R, hist = F.reduced_init(prob, J, 0, 200, 1e-7, Ct, Rt)
        print("truth: reduced at first sweep", hist[0], "final", hist[-1], "recovery",
              float(recovery(truth, C, R).mean()), flush=True)


if __name__ == "__main__":
    main()
