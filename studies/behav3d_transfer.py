"""Transfer and phenotype prediction on the shared BEHAV3D well (issue 15.3, 15.5).

    NUMBA_NUM_THREADS=1 python -m studies.behav3d_transfer [--frames 150] [--out out]

Reads the well as ``examples/behav3d.py`` does, but leaves the features in
their own units and lets the model standardise them per population
(``standardize="population"``).  Fits the defaults (J = 4, radius 30 µm) on
the first 80 % of the frames, infers weights on the last 20 % with the
motifs frozen (``LICCHIE.transform``), and predicts the CD8 dead / alive
label (dead-cell dye > 10 in the target's frame, BEHAV3D's threshold) from
those weights (:func:`licchie.evaluate.phenotype_prediction`).  The dye is
left out of the model's features (``--with-dye`` keeps it), so the label is
not an input of the weights.
"""
import argparse
import importlib.util
import os
import time

import numpy as np
import pandas as pd

import licchie
from licchie.evaluate import class_weight_summary, phenotype_prediction, source_extremes
from licchie.io import read_imaris

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location(
    "behav3d_example", os.path.join(HERE, "..", "examples", "behav3d.py"))
EX = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(EX)


def load(root, with_dye):
    """The well as a long table in original units (log area and volume)."""
    tables = []
    for kind in ("tcells", "organoids"):
        for name in sorted(os.listdir(os.path.join(root, kind))):
            pop = {"CD4green": "CD4", "CD8blue": "CD8", "organoids": "organoid"}[
                name.split("_10k_")[1].split("_")[0]]
            tables.append(read_imaris(os.path.join(root, kind, name), population=pop))
    t = pd.concat(tables, ignore_index=True)
    t["cell"] = np.where(t["track"].isna(), "o" + t["id"].astype(str),
                         t["population"] + "-" + t["track"].astype(str))
    t["dead"] = np.where(t["Intensity Mean Ch=4 Img=1"] > EX.DEAD_DYE_THRESHOLD,
                         "dead", "alive")
    t = t.rename(columns=EX.FEATURES)
    for c in ("log_area", "log_volume"):
        t[c] = np.log(t[c])
    feats = [f for f in EX.FEATURES.values() if with_dye or f != "dead_dye"]
    return t, feats


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.path.join(HERE, "..", "..", "shared", "data",
                                                    "behav3d_coculture_well0"))
    ap.add_argument("--frames", type=int, default=301, help="use frames 1..N")
    ap.add_argument("--train", type=float, default=0.8, help="fraction of frames to fit")
    ap.add_argument("--components", type=int, default=4)
    ap.add_argument("--with-dye", action="store_true")
    ap.add_argument("--out", default="behav3d_transfer_out")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    t, feats = load(a.data, a.with_dye)
    t = t[t["frame"] <= a.frames]
    split = int(round(a.train * a.frames))
    kw = dict(cell="cell", frame="frame", position=("x", "y", "z"), features=feats,
              time_values="time_s")
    train = licchie.Recording.from_table(t[t["frame"] <= split], **kw)
    # the held-out stretch starts at the last training frame: its sources
    # predict the first held-out targets (frame split + 1)
    test = licchie.Recording.from_table(t[t["frame"] >= split], **kw)
    print(f"frames 1-{a.frames}: fit on 1-{split} ({train.n_obs} obs), transform "
          f"{split + 1}-{a.frames} ({test.n_obs} obs incl. frame {split}); features {feats}; "
          f"read in {time.perf_counter() - t0:.1f} s")
    model = licchie.LICCHIE(n_components=a.components, radius=30.0, random_state=0,
                            standardize="population")
    t1 = time.perf_counter()
    model.fit(train)
    print(f"fit: {time.perf_counter() - t1:.1f} s, {model.n_pairs_} pairs")
    print(model.summary())
    t2 = time.perf_counter()
    W_test = model.transform(test)
    print(f"transform: {time.perf_counter() - t2:.1f} s, {W_test.sizes['pair']} pairs, "
          f"{W_test.attrs['n_iter']} iterations, converged {W_test.attrs['converged']}")
    t3 = time.perf_counter()
    W_frozen = model.transform(test, profiles="frozen")
    print(f"transform (frozen profiles): {time.perf_counter() - t3:.1f} s, "
          f"{W_frozen.attrs['n_iter']} iterations")
    labels = t.set_index(["cell", "time_s"])["dead"]
    labels = labels[~labels.index.duplicated()]
    cd8 = dict(labels=labels, target_population="CD8")
    runs = {
        "held-out weights, per pair, 5-fold CV": phenotype_prediction(W_test, **cd8),
        "held-out weights, per target, 5-fold CV": phenotype_prediction(W_test, by="target",
                                                                        **cd8),
        "held-out weights (frozen profiles), per pair, 5-fold CV": phenotype_prediction(
            W_frozen, **cd8),
        "train on fitted weights, test on held-out, per pair": phenotype_prediction(
            model.weights_, test_weights=W_test, **cd8),
    }
    os.makedirs(a.out, exist_ok=True)
    cols = ["accuracy", "balanced_accuracy", "balanced_accuracy_std", "n_samples",
            "majority_rate", "classes"]
    for name, df in runs.items():
        print(f"\nCD8 dead/alive from weights -- {name}")
        print(df[cols].to_string(float_format=lambda v: f"{v:.3f}"))
    pd.concat(runs, names=["run"]).to_csv(os.path.join(a.out, "phenotype_prediction.csv"))
    summ = class_weight_summary(W_test)
    summ.to_csv(os.path.join(a.out, "class_weights_heldout.csv"))
    print("\nheld-out weights by interaction class (mean, median):")
    print(summ[["n_pairs", "mean", "q0.5"]].unstack("component").to_string(
        float_format=lambda v: f"{v:.3f}"))
    ext = source_extremes(model, test, 0, n=5, source_population="organoid")
    ext.to_csv(os.path.join(a.out, "source_extremes_motif0.csv"), index=False)
    print("\nmotif 0, organoid sources with the most extreme r^T x:")
    print(ext.to_string(float_format=lambda v: f"{v:.3f}"))
    model.save(os.path.join(a.out, "model.nc"))
    W_test.to_netcdf(os.path.join(a.out, "weights_heldout.nc"))
    print(f"\ntotal {time.perf_counter() - t0:.1f} s; wrote {a.out}/")


if __name__ == "__main__":
    main()
