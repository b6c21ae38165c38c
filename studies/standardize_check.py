"""Does ``standardize="population"`` harm fits of the synthetic regimes?

    NUMBA_NUM_THREADS=1 python -m studies.standardize_check [--seeds 0 1]

Small suite recordings (18 cells, 30 frames, 5 features, 3 motifs; the
README's worked example), package defaults with and without
``standardize="population"``.  Scores, all in original units: motif recovery
(|cos| with the truth, Hungarian; for the standardised fit the mean over
population pairs of its original-unit motifs ``(s_p c_j)(r_j / s_q)^T``),
in-sample R^2 and one-step R^2 on the last 20 % of frames with group
profiles (``predict(weights="group")``).
"""
import argparse
import time
import warnings

import numpy as np

import licchie
from licchie.evaluate import motif_recovery
from licchie.synthetic import make_suite_recording


def r2(pred, ds, times):
    y = ds["features"].transpose("cell", "time", "feature").values
    p = pred.transpose("cell", "time", "feature").values
    ok = np.isfinite(p).all(-1) & np.isfinite(y).all(-1) & np.isin(ds["time"].values,
                                                                    times)[None, :]
    yy, pp = y[ok], p[ok]
    return 1 - np.sum((yy - pp) ** 2) / np.sum((yy - yy.mean(0)) ** 2)


def recovery(model, truth):
    if model.scaling_ is None:
        return float(motif_recovery(model, truth).attrs["mean_similarity"])
    s = model.scaling_["scale"]
    C = model.components_["target_effect"].values
    R = model.components_["source_effect"].values
    out = []
    for p in s["population"].values:
        for q in s["population"].values:
            Cp = C * s.sel(population=p).values
            Rq = R / s.sel(population=q).values
            Cp /= np.linalg.norm(Cp, axis=1, keepdims=True)
            Rq /= np.linalg.norm(Rq, axis=1, keepdims=True)
            out.append(motif_recovery((Cp, Rq), truth).attrs["mean_similarity"])
    return float(np.mean(out))


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--regimes", nargs="+", default=["heldout6", "shared"])
    a = ap.parse_args(argv)
    print("regime    seed standardize   recovery  in-sample R2  held-out R2  fit s")
    for regime in a.regimes:
        for seed in a.seeds:
            ds, truth = make_suite_recording(regime, seed=seed, n_cells=(12, 6),
                                             n_frames=30, n_features=5, n_components=3)
            T = ds.sizes["time"]
            split = int(0.8 * T)
            train = ds.isel(time=slice(0, split))
            for how in (None, "population"):
                m = licchie.LICCHIE(n_components=3, radius=ds.attrs["radius"],
                                    random_state=0, standardize=how)
                t0 = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    m.fit(train)
                    fit_s = time.perf_counter() - t0
                    ins = r2(m.predict(train), train, train["time"].values)
                    held = r2(m.predict(ds, weights="group"), ds, ds["time"].values[split:])
                print(f"{regime:9s} {seed:4d} {str(how):12s} {recovery(m, truth):9.3f} "
                      f"{ins:13.3f} {held:12.3f} {fit_s:6.1f}", flush=True)


if __name__ == "__main__":
    main()
