"""Held-out one-step R^2 of a config's fit against the baselines (issue 15.4 on
population feature spaces): the data and model of a ``licchie fit`` config.

    nice python -m studies.heldout_config examples/behav3d.toml --frames 1 100 \
        --out docs/studies/heldout-behav3d-speed.csv

The features are those of the config, each population with its own list
(BEHAV3D: T-cell speed, organoids without it), z-scored per population when
read (``read_well(standardize="population")``) so that every model is scored in
the same units, as in docs/evaluation.md; the model is the config's
``[model]`` (with its ``standardize``, a near no-op on z-scored data).  The
baselines fit every target feature on the targets that have it.
"""
import argparse
import time
import warnings

import licchie
from licchie.config import config_model, load_config
from licchie.evaluate import heldout_table
from licchie.well import read_well


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config")
    ap.add_argument("--frames", type=int, nargs=2, default=None)
    ap.add_argument("--fraction", type=float, default=0.2)
    ap.add_argument("--out", default=None)
    ap.add_argument("--pooling-groups", default=None,
                    help="override [model] pooling_groups (e.g. class)")
    a = ap.parse_args(argv)
    cfg = load_config(a.config)
    table, kw = read_well(cfg.populations, frames=a.frames, standardize="population",
                          session=cfg.data.get("session"))
    rec = licchie.Recording.from_table(table, **kw)
    over = {"pooling_groups": a.pooling_groups} if a.pooling_groups else {}
    model = config_model(cfg, rec, verbose=0, **over)
    print(rec, "\n", model)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = heldout_table(model, rec, fraction=a.fraction)
    print(t.to_string())
    print(f"{time.perf_counter() - t0:.0f} s")
    if a.out:
        t.to_csv(a.out, index=False)


if __name__ == "__main__":
    main()
