"""Summarise :mod:`studies.starts_study` runs: does taking more starts help?

For every (seed, init) and n_init = 3, 10, 30 (the first n starts of a run
are exactly an ``n_init=n`` fit): the best final objective, the recovery of
that start (the one a fit keeps), the best recovery of any start, the
stability the fit would report, and the truth start's objective and
recovery; then the rank correlation of per-start objective and recovery.

    python -m studies.starts_analyse --runs '/tmp/starts/*_s*.csv' \
        --out docs/studies/starts-study.csv
"""
from __future__ import annotations

import argparse
import glob

import numpy as np



def main(argv=None):
    import pandas as pd
    from scipy.stats import spearmanr

    from licchie.fit import motif_agreement

    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", default="/tmp/starts/*_s*.csv",
                    help="glob of starts_study.py CSVs")
    ap.add_argument("--out", default=None, help="write the summary table here (CSV)")
    ap.add_argument("-d", type=int, default=10)
    ap.add_argument("-J", type=int, default=8)
    a = ap.parse_args(argv)
    d, J = a.d, a.J
    df = pd.concat([pd.read_csv(f) for f in sorted(glob.glob(a.runs))], ignore_index=True)
    df = df.drop_duplicates(subset=["seed", "init", "start"], keep="first")

    def mats(r):
        return (np.array(r.C.split(), float).reshape(d, J),
                np.array(r.R.split(), float).reshape(d, J))

    out = []
    for (seed, init), g in df[df.init != "truth"].groupby(["seed", "init"]):
        g = g.sort_values("start")
        tr = df[(df.init == "truth") & (df.seed == seed)]
        for n in (3, 10, 30):
            if len(g) < n:
                continue
            h = g.iloc[:n]
            b = int(h.objective.values.argmin())
            rb = h.iloc[b]
            Cb, Rb = mats(rb)
            stab = np.mean([motif_agreement(Cb, Rb, *mats(h.iloc[k]))[0].mean()
                            for k in range(n) if k != b])
            out.append(dict(seed=seed, init=init, n_init=n, best_objective=rb.objective,
                            recovery_chosen=rb.recovery, recovery_max=h.recovery.max(),
                            stability=stab,
                            truth_objective=tr.objective.iloc[0] if len(tr) else np.nan,
                            truth_recovery=tr.recovery.iloc[0] if len(tr) else np.nan,
                            seconds_per_start=h.seconds.mean()))
    table = pd.DataFrame(out)
    print(table.round(3).to_string(index=False))
    for (seed, init), g in df[df.init != "truth"].groupby(["seed", "init"]):
        if len(g) >= 3:
            rho, p = spearmanr(g.objective, g.recovery)
            print(f"seed {seed} {init}: {len(g)} starts, Spearman(objective, recovery) "
                  f"{rho:.2f} (p={p:.3f})")
    if a.out:
        table.round(4).to_csv(a.out, index=False)


if __name__ == "__main__":
    main()
