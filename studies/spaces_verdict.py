"""The spaces verdict against planted truth (licchie.fit.spaces_verdict).

    python -m studies.spaces_verdict [--regimes a,b] [--seeds 0,1,2,3,4] [--out CSV]

Fits ``LICCHIE(n_components=J, radius=..., random_state=0)`` (defaults
otherwise: the reduced multi-start, its verdict, the polish) on
:func:`licchie.synthetic.spaces.make_space_recording` in several regimes
and seeds, matches the fitted per-population motifs to the planted ones
and writes one row per fitted motif: the verdict, its score, the four
sub-scores of the diagnosis (of the reduced minimum the motif matched),
the matched similarity to the truth (``cos``: the mean over populations of
``|c.c'| |r.r'|``, the package's per-space measure) and the worst single
population effect's ``|cos|`` of that match (``cos_min``).

The rule checked: every motif reported "high" has ``cos >= 0.9``.
"""
from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np

import licchie
from licchie import labels as L
from licchie.fit.diagnostics import matched_cosines
from licchie.fit.spaces import motif_agreement
from licchie.fit.spaces_verdict import unit_effects
from licchie.synthetic.spaces import make_space_recording

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "docs", "studies", "spaces-verdict.csv")

# name: (make_space_recording arguments, n_components, radius)
REGIMES = {
    "base": (dict(), 2, 1.5),
    "j3": (dict(n_components=3), 3, 1.5),
    "disjoint": (dict(features_a=(0, 1, 2), features_b=(3, 4)), 2, 1.5),
    "overlap": (dict(features_a=(0, 1, 2, 3), features_b=(1, 2, 3)), 2, 1.5),
    "d3": (dict(n_dims=3), 2, 2.0),
    "j3_d3": (dict(n_components=3, n_dims=3, features_a=(0, 1, 2, 3)), 3, 2.0),
    "noisy": (dict(noise_sd=0.3), 2, 1.5),
    "noise_mid": (dict(noise_sd=0.15, features_a=(0, 1, 2, 3), features_b=(2, 3, 4)), 2, 1.5),
    "big_j3": (dict(n_cells=(30, 30), n_times=60, n_components=3), 3, 1.5),
    # hard: little data, or motifs whose weight profiles are nearly proportional
    "small": (dict(n_cells=(10, 10), n_times=15), 2, 1.5),
    "small_j3": (dict(n_cells=(10, 10), n_times=20, n_components=3), 3, 1.5),
    "tiny": (dict(n_cells=(8, 8), n_times=12, noise_sd=0.1), 2, 1.5),
    "proportional": (dict(profile_mix=0.9), 2, 1.5),
}


def truth_similarity(model, truth):
    """(J_fit, J_true): mean over populations of ``|c.c'| |r.r'|`` (unit effects on
    each population's features), and the per-effect minimum of ``|cos|``."""
    per = []
    for k, pop in enumerate(["A", "B"]):
        h = truth["features"][k]
        for name, F_ in (("C", model.target_effect_), ("R", model.source_effect_)):
            got = F_.sel(population=pop).values[:, h]             # (J_fit, m_p)
            got = got / np.maximum(np.linalg.norm(got, axis=1, keepdims=True), 1e-300)
            ref = truth[name][k][h]                                # (m_p, J_true)
            per.append(np.abs(got @ (ref / np.linalg.norm(ref, axis=0))))
    per = np.array(per)  # (4, J_fit, J_true): A.C, A.R, B.C, B.R
    mean = 0.5 * (per[0] * per[1] + per[2] * per[3])
    return mean, per.min(axis=0)


def run(regime, seed, captured):
    kw, J, radius = REGIMES[regime]
    ds, truth = make_space_recording(seed, **kw)
    m = licchie.LICCHIE(n_components=J, radius=radius, random_state=0)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.fit(ds)
    t = time.perf_counter() - t0
    res, info = captured[-1]
    dg = info.diagnosis
    _, match = motif_agreement(unit_effects(res.C), unit_effects(res.R), info.C, info.R)
    mean, worst = truth_similarity(m, truth)
    cos, tmatch = matched_cosines(mean)
    comp = m.components_
    rows = []
    for j in range(J):
        k = match[j]
        rows.append(dict(
            regime=regime, seed=seed, J=J, motif=j, verdict=str(comp["verdict"].values[j]),
            score=float(comp["stability"].values[j]), gap=dg.gap[k], reach=dg.reach[k],
            bootstrap=dg.bootstrap[k], determination=dg.determination[k],
            noise=dg.noise[k], noise_shift=dg.noise_shift[k],
            boot_local=dg.bootstrap_local[k], boot_linear=dg.bootstrap_linear[k],
            gap_loss=dg.gap_loss[k], hits=dg.hits[k], n_starts=dg.n_searches,
            cos=cos[j], cos_min=worst[j, tmatch[j]], fit_time=t,
            reason=str(comp["verdict_reason"].values[j])))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--regimes", default=",".join(REGIMES))
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--out", default=OUT)
    a = ap.parse_args(argv)
    import pandas as pd

    captured = []
    add = L.add_verdict

    def capture(out, res, info, init, lambdas):   # the diagnosis the fit used
        captured.append((res, info))
        return add(out, res, info, init, lambdas)

    L.add_verdict = capture
    rows = []
    for regime in a.regimes.split(","):
        for seed in map(int, a.seeds.split(",")):
            new = run(regime, seed, captured)
            rows += new
            for r in new:
                print(f"{regime:13s} {seed} m{r['motif']} {r['verdict']:6s} {r['score']:.2f} "
                      f"gap {r['gap']:.2f} reach {r['reach']:.2f} boot {r['bootstrap']:.2f} "
                      f"det {r['determination']:.2f} noise {r['noise']:.2f} | cos {r['cos']:.3f} "
                      f"min {r['cos_min']:.3f}  {r['fit_time']:.1f}s", flush=True)
            pd.DataFrame(rows).to_csv(a.out, index=False)
    df = pd.DataFrame(rows)
    print(df.groupby("verdict").size())
    hi = df[df.verdict == "high"]
    if len(hi):
        print("min cos among high:", hi.cos.min(), " min cos_min among high:", hi.cos_min.min())
    print(df.groupby("regime").agg(cos_mean=("cos", "mean"), cos_min=("cos", "min"),
                                   high=("verdict", lambda v: int(np.sum(v == "high"))),
                                   n=("cos", "size")))


if __name__ == "__main__":
    main()
