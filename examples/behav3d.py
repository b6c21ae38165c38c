"""Fit LICCHIE to a real BEHAV3D co-culture well (T cells and tumour organoids, 3D).

    python examples/behav3d.py [--data ../shared/data/behav3d_coculture_well0] [--out behav3d_out]

The same well from the command line: ``licchie fit examples/behav3d.toml``
(README, "Your own recording").  This script is the Python route of the
validation runs (docs/validation.md): it reads the Imaris statistics exports
with :func:`licchie.io.read_imaris`, builds one Recording (CD4 and CD8 T cells
are tracked; organoids are not: ``untracked="organoid"``), z-scores six shape/intensity
features, fits pooled motifs, prints the summary (objective and stability),
and sweeps each motif's weight from organoid sources onto CD8 targets scored
as dead / alive (dead-cell dye above 10, the BEHAV3D threshold).
"""
import argparse
import os
import time

import numpy as np
import pandas as pd

import licchie
from licchie.io import read_imaris

FEATURES = {"Area": "log_area", "Volume": "log_volume", "Sphericity": "sphericity",
            "Ellipticity (oblate)": "oblate", "Ellipticity (prolate)": "prolate",
            "Intensity Mean Ch=4 Img=1": "dead_dye"}
DEAD_DYE_THRESHOLD = 10.0  # BEHAV3D_metadata.tsv: tcell_dead_dye_threshold


def load_well(root):
    tables = []
    for kind in ("tcells", "organoids"):
        for name in sorted(os.listdir(os.path.join(root, kind))):
            pop = {"CD4green": "CD4", "CD8blue": "CD8", "organoids": "organoid"}[
                name.split("_10k_")[1].split("_")[0]]
            tables.append(read_imaris(os.path.join(root, kind, name), population=pop))
    t = pd.concat(tables, ignore_index=True)
    t["dead"] = np.where(t["Intensity Mean Ch=4 Img=1"] > DEAD_DYE_THRESHOLD, "dead", "alive")
    t = t.rename(columns=FEATURES)
    for c in ("log_area", "log_volume"):
        t[c] = np.log(t[c])
    feats = list(FEATURES.values())
    # z-score so that one motif weight means the same for every feature
    t[feats] = (t[feats] - t[feats].mean()) / t[feats].std()
    return t, feats


def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.path.join(here, "..", "..", "shared", "data",
                                                    "behav3d_coculture_well0"))
    ap.add_argument("--out", default="behav3d_out")
    ap.add_argument("--frames", type=int, default=301, help="use frames 1..N")
    ap.add_argument("--radius", type=float, default=30.0, help="µm")
    ap.add_argument("--components", type=int, default=4)
    ap.add_argument("--n-init", type=int, default=3)
    ap.add_argument("--max-iter", type=int, default=200)
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    t, feats = load_well(a.data)
    t = t[t["frame"] <= a.frames]
    # Organoids are untracked: each observation is its own cell (no self
    # pair).  Imaris numbers CD4 and CD8 tracks independently, so the same
    # TrackID in both is two cells: cell_per_population keeps them apart.
    ds = licchie.Recording.from_table(t, cell="track", frame="frame", position=("x", "y", "z"),
                                      features=feats, time_values="time_s",
                                      untracked="organoid", cell_per_population=True)
    print(f"{ds.obs.n_obs} observations, {len(feats)} features, read in "
          f"{time.perf_counter() - t0:.1f} s")
    model = licchie.LICCHIE(n_components=a.components, radius=a.radius, n_neighbors=10,
                            lambdas=(1.0, 0.1, 0.0, 0.01, 1.0), pooling_groups="class",
                            n_init=a.n_init, max_iter=a.max_iter, random_state=0, verbose=1)
    t1 = time.perf_counter()
    model.fit(ds)
    print(f"fit: {time.perf_counter() - t1:.1f} s")
    print(model.summary())
    os.makedirs(a.out, exist_ok=True)
    model.save(os.path.join(a.out, "model.nc"))
    # Which motif, driven by organoid states, moves CD8 T cells toward death?
    obs = t[feats].to_numpy()
    src = obs[(t["population"] == "organoid").to_numpy()]
    cd8 = (t["population"] == "CD8").to_numpy()
    sweep = licchie.weight_sweep_states(model, src, obs[cd8], t["dead"].to_numpy()[cd8],
                                        n_neighbors=150, random_state=0)
    dead = sweep.sel(phenotype="dead")
    print("\nweight sweep, organoid sources -> CD8 targets: score of 'dead' "
          f"(uniform = {1 / sweep.sizes['phenotype']:.2f})")
    print("motif  stability  w=0     w=1     w=2    | target effect (largest)  "
          "source effect (largest)")
    C = model.components_["target_effect"]
    R = model.components_["source_effect"]
    for j in range(sweep.sizes["component"]):
        s = dead.isel(component=j).values
        top = lambda v: ", ".join(f"{feats[i]} {v[i]:+.2f}"  # noqa: E731
                                  for i in np.argsort(-np.abs(v))[:2])
        print(f"{j:5d}  {float(sweep['stability'][j]):9.2f}  {s[0]:.3f}   "
              f"{s[np.argmin(np.abs(sweep['weight'].values - 1))]:.3f}   {s[-1]:.3f}  | "
              f"{top(C.values[j])}  |  {top(R.values[j])}")
    sweep.to_netcdf(os.path.join(a.out, "sweep.nc"))
    print(f"\nwrote {a.out}/model.nc and {a.out}/sweep.nc")
    return model, sweep


if __name__ == "__main__":
    main()
