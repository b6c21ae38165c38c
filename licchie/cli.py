"""Command line: ``licchie fit``, ``licchie report``, ``licchie demo``, ``licchie simulate``.

``licchie fit`` takes a netCDF recording (the README's schema), a TOML config
naming tracker exports (:mod:`licchie.config`), or one TrackMate export
directly (fitted with defaults; the equivalent config is printed to edit).
``licchie report`` writes the real-data figures of a fitted model
(:mod:`licchie.report.real`).
"""
from __future__ import annotations

import argparse
import os
import sys
import time


def _add_fit_options(p):
    p.add_argument("--components", type=int, default=8, help="number of motifs J (default 8)")
    p.add_argument("--radius", type=float, default=10.0,
                   help="pairing radius in position units (default 10)")
    p.add_argument("--neighbors", type=int, default=10,
                   help="M, nearest pairs in the smoothness graph (default 10)")
    p.add_argument("--sigma", type=float, default=0.3, help="smoothness edge scale (0.3)")
    from .params import Lambdas
    lam = Lambdas()
    p.add_argument("--lambdas", type=float, nargs=4, default=tuple(lam[:4]),
                   metavar=("L1", "L2", "L3", "L4"),
                   help="low rank, smoothness, L1 on A, L1 on W (default "
                        f"{' '.join(f'{v:g}' for v in lam[:4])})")
    p.add_argument("--pooling", type=float, default=lam.pooling,
                   help="lam5, pull of pair weights toward their group profile "
                        f"(default {lam.pooling:g}; 0 = the paper's model)")
    p.add_argument("--pooling-groups", default="auto",
                   choices=("auto", "class", "class_session", "class_time"),
                   help="pooling groups (default auto: class x frame window, class when "
                        "class profiles predict held-out cells better or those profiles "
                        "cancel)")
    p.add_argument("--pooling-window", type=int, default=1,
                   help="frames per window with --pooling-groups class_time or auto "
                        "(default 1)")
    p.add_argument("--target-gain", nargs="?", const="on", default="auto",
                   choices=("auto", "on", "off"),
                   help="with --pooling > 0: pool toward a per-target gain times the class "
                        "profile: on, off, or auto (default: fit again with gains when the "
                        "gain check asks for them; README, 'Per-target gains')")
    p.add_argument("--pair-weight", default="none", choices=["none", "gaussian", "distance"])
    p.add_argument("--n-init", type=int, default=3,
                   help="starts (default 3; with the search, the distinct minima polished)")
    p.add_argument("--init", choices=("auto", "search", "parafac", "groups", "classes"),
                   default="auto",
                   help="how the fit starts (default auto: the global search when pooling "
                        "> 0, PARAFAC otherwise; see README)")
    p.add_argument("--class-restarts", type=int, default=0,
                   help="random restarts of each interaction class's source effects in "
                        "the best start (default 0; README, 'Class restarts')")
    p.add_argument("--init-max-iter", type=int, default=100,
                   help="ALS iterations of the PARAFAC start (default 100; lower for "
                        "very large fits)")
    p.add_argument("--max-iter", type=int, default=100)
    p.add_argument("--tol", type=float, default=1e-6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=None, help="Numba threads (default: all)")
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                   help="storage of the pairs x d x d interaction tensors; float32 halves "
                        "the fit's memory (default float64; see docs/performance.md)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


_GAIN_FLAG = {"auto": "auto", "on": True, "off": False}


def _model_from_args(a):
    from .model import LICCHIE
    return LICCHIE(n_components=a.components, radius=a.radius, n_neighbors=a.neighbors,
                   sigma=a.sigma, lambdas=tuple(a.lambdas) + (a.pooling,),
                   pooling_groups=a.pooling_groups, pooling_window=a.pooling_window,
                   target_gain=_GAIN_FLAG[a.target_gain], pair_weight=a.pair_weight,
                   n_init=a.n_init, init=a.init, max_iter=a.max_iter,
                   tol=a.tol, random_state=a.seed, n_jobs=a.jobs,
                   verbose=0 if a.quiet else 1, dtype=a.dtype,
                   solver_options={"init_max_iter": a.init_max_iter,
                                   "class_restarts": a.class_restarts})


# fit flags that override a config's [model] when given (flag -> parameter)
_CONFIG_OVERRIDES = {"components": "n_components", "radius": "radius", "seed": "random_state",
                     "jobs": "n_jobs", "max_iter": "max_iter", "n_init": "n_init",
                     "tol": "tol", "dtype": "dtype", "init": "init"}
_TRACKER_SUFFIXES = (".csv", ".csv.gz", ".xml", ".xml.gz")


def _given(a, parser_defaults):
    """Fit flags the user set (values that differ from the parser's defaults)."""
    return {param: getattr(a, flag) for flag, param in _CONFIG_OVERRIDES.items()
            if getattr(a, flag) != parser_defaults.get(flag)}


def cmd_fit(a):
    import xarray as xr
    if not os.path.exists(a.recording) and "*" not in a.recording:
        raise FileNotFoundError(f"no file {a.recording!r}; check the path.")
    low = a.recording.lower()
    if low.endswith(".toml"):
        from .config import load_config
        return fit_config(load_config(a.recording), a)
    if low.endswith(_TRACKER_SUFFIXES) or "*" in low:
        return fit_tracker_export(a)
    if os.path.isdir(a.recording):
        raise ValueError(_folder_message(a.recording))
    try:
        with xr.open_dataset(a.recording) as f:
            ds = f.load()
    except Exception as exc:
        raise ValueError(f"cannot read {a.recording!r} as netCDF ({exc}). Write recordings "
                         "with Dataset.to_netcdf in the schema of the README.") from exc
    model = _model_from_args(a)
    model.fit(ds)
    print(model.summary())
    model.save(a.output)
    print(f"model written to {a.output}")


def _folder_message(folder):
    from .config import default_config_text
    text = default_config_text(os.path.join(folder, "<one population's Statistics folder>"),
                               ["Area", "Sphericity"], kind="imaris", name="CD8")
    return (f"{folder!r} is a folder.  For Imaris statistics exports (one folder per "
            "population), write a config naming each population's folder and features, "
            "then run `licchie fit config.toml`; examples/behav3d.toml is a complete one.  "
            "A start:\n\n" + text)


def fit_tracker_export(a):
    """``licchie fit spots.csv``: one TrackMate export (or pattern), fitted with
    defaults: every varying shape and intensity feature, one population,
    tracked, z-scored, radius suggested from the data."""
    from .config import default_config_text, load_config
    from .io import read_trackmate
    path = os.path.abspath(a.recording)
    t = read_trackmate(path)
    skip = {"id", "track", "cell", "frame", "x", "y", "z", "time", "population", "session",
            "QUALITY", "RADIUS", "ELLIPSE_X0", "ELLIPSE_Y0", "ELLIPSE_THETA"}
    feats = [c for c in t.columns if c not in skip and t[c].notna().mean() > 0.9
             and t[c].std() > 0]
    if not feats:
        raise ValueError(f"{a.recording!r} has no varying feature column; write a config "
                         "naming the features (see examples/behav3d.toml).")
    given = _given(a, a._fit_defaults)
    text = default_config_text(path, feats, n_components=given.pop("n_components", 4),
                               radius=given.pop("radius", "suggest"),
                               output=os.path.abspath(a.output))
    print("Fitting a TrackMate export with default settings.  The equivalent config "
          "(save it as config.toml, edit, and run `licchie fit config.toml`):\n")
    print(text)
    cfg = load_config(os.path.join(os.getcwd(), "licchie-defaults.toml"), text=text)
    # now in the config, not overrides
    a.components, a.radius = a._fit_defaults["components"], a._fit_defaults["radius"]
    return fit_config(cfg, a)


def fit_config(cfg, a):
    """Read a config's data, fit, write the model (with the config) atomically."""
    import json

    from .config import config_model, config_recording
    from .data.neighbours import neighbour_counts
    from .modelfile import atomic_to_netcdf
    log = (lambda *x: None) if a.quiet else print
    t0 = time.perf_counter()
    log(f"Reading {len(cfg.populations)} population(s) of {os.path.basename(cfg.path)} ...")
    frames = tuple(a.frames) if a.frames else None
    rec, table = config_recording(cfg, log=log, frames=frames)
    log(f"{rec} (read in {time.perf_counter() - t0:.1f} s)")
    over = _given(a, a._fit_defaults)
    over["verbose"] = 0 if a.quiet else cfg.model.get("verbose", 1)
    model = config_model(cfg, rec, log=log, **over)
    counts = neighbour_counts(rec, model.radius)
    log(f"Neighbours within radius {model.radius:g} (mean per target; fraction without):")
    for r in counts.itertuples():
        log(f"  {r.source_population:>12} -> {r.target_population:<12} {r.mean:6.2f}  "
            f"{r.zero_fraction:5.0%}")
    t1 = time.perf_counter()
    model.fit(rec)
    fit_s = time.perf_counter() - t1
    print(model.summary())
    out = a.output if a.output != a._fit_defaults["output"] else cfg.output_model
    ds = model.to_dataset()
    ds.attrs.update(config=cfg.text, config_path=cfg.path,
                    population_features=json.dumps(table.attrs["population_features"]),
                    fit_seconds=float(fit_s), frames=json.dumps(frames or
                                                                cfg.data.get("frames")))
    atomic_to_netcdf(ds, out)
    print(f"model written to {out} (fit {fit_s:.0f} s, total "
          f"{time.perf_counter() - t0:.0f} s); next: licchie report {out}")


def cmd_report(a):
    from .report.real import write_real_report
    t0 = time.perf_counter()
    files = write_real_report(a.model, out=a.out, data=a.data,
                              frames=tuple(a.frames) if a.frames else None,
                              log=None if a.quiet else print)
    print(f"report written: {files[-1]} ({sum(f.endswith('.png') for f in files)} figures, "
          f"{time.perf_counter() - t0:.0f} s)")


def cmd_simulate(a):
    from .modelfile import atomic_to_netcdf
    from .synthetic import make_recording
    ds, truth = make_recording(regime=a.regime, noise=a.noise, seed=a.seed,
                               n_dims=a.dims, hidden_fraction=a.hidden, scale=a.scale)
    atomic_to_netcdf(ds, a.out)
    print(f"recording written to {a.out}: {dict(ds.sizes)}")
    if a.truth:
        atomic_to_netcdf(truth, a.truth)
        print(f"ground truth written to {a.truth}")


# The demo's fits, per size and regime: the fit whose motifs and weights are
# scored, and the fit that forecasts the held-out frames (None: a copy of the
# first).  Time-resolved pooling (the default) has no profiles for frames after
# the training data (predict then uses each class's last training window,
# docs/evaluation.md); the demos forecast with class pooling, whose one profile
# per class needs no such rule.  The
# default ("quick") demo is the package defaults on the "shared" regime
# (motifs shared across interaction classes, no per-target gains); "full"
# (``licchie demo --full``) keeps the 0.1 study's presets for its regimes.
_DEFAULTS = {}
_FORECAST = dict(pooling_groups="class")
_POOLED = dict(lambdas=(10.0, 0.0, 0.0, 0.001, 10.0), pooling_groups="class_time",
               pooling_window=1, target_gain=True, init="classes", n_init=3, tol=1e-9)
_POOLED_FORECAST = dict(lambdas=(1.0, 0.1, 0.0, 0.01, 10.0), pooling_groups="class",
                        init="parafac", n_init=3)
_PAPER = dict(lambdas=(1.0, 0.1, 0.0, 0.01, 0.0), init="parafac", n_init=3)
DEMO_REGIMES = ("shared", "pooled", "paper")
DEMO_FITS = {
    "full": {
        "shared": (dict(_DEFAULTS, max_iter=300), dict(_FORECAST)),
        "pooled": (dict(_POOLED, max_iter=300, solver_options={"class_restarts": 4}),
                   dict(_POOLED_FORECAST, max_iter=100)),
        "paper": (dict(_PAPER, max_iter=100), None),
    },
    "quick": {
        "shared": (dict(_DEFAULTS), dict(_FORECAST)),
        "pooled": (dict(_DEFAULTS), dict(_FORECAST)),
        "paper": (dict(_PAPER, max_iter=50), None),
    },
}


def demo_data(regime, noise, seed):
    """The demo's recording and truth: the synthetic suite's ``"shared"``
    regime, or :func:`licchie.synthetic.make_recording`'s ``"pooled"`` (owned
    motifs, per-target gains) and ``"paper"`` regimes."""
    from .synthetic import make_recording, make_suite_recording
    if regime == "shared":
        return make_suite_recording("shared", seed, noise=noise)
    return make_recording(regime=regime, noise=noise, seed=seed)


def demo_models(regime, seed, radius, n_components=8, verbose=1, full=False,
                **overrides):
    """The demo's ``(model, forecast_model)`` for ``regime`` (see ``DEMO_FITS``).

    ``full`` picks the paper-size presets (``licchie demo --full``) instead of
    the quick ones.  ``overrides`` (``pooling``, ``n_init``, ``init``,
    ``max_iter``, ``class_restarts``; None keeps the preset) change the
    scored fit only.
    """
    from .model import LICCHIE

    fit, forecast = DEMO_FITS["full" if full else "quick"][regime]
    over = {k: v for k, v in overrides.items() if v is not None}
    fit = dict(fit)
    if "pooling" in over:
        from .params import Lambdas
        fit["lambdas"] = tuple(fit.get("lambdas", Lambdas())[:4]) + (over.pop("pooling"),)
    if "class_restarts" in over:
        fit["solver_options"] = dict(fit.get("solver_options") or {},
                                     class_restarts=over.pop("class_restarts"))
    fit.update(over)
    common = dict(n_components=n_components, radius=radius, n_neighbors=10, sigma=0.3,
                  random_state=seed)
    model = LICCHIE(**common, verbose=verbose, **fit)
    return model, (None if forecast is None else LICCHIE(**common, verbose=0, **forecast))


def cmd_demo(a):
    """Simulate a paper-sized recording, fit LICCHIE and the linear baselines,
    print the comparison (paper §5.1) and save the results and a report."""
    import numpy as np

    from .modelfile import atomic_to_netcdf
    from .params import resolve_solver_options
    from .report import format_table, run_comparison, write_report

    os.makedirs(a.out, exist_ok=True)
    print(f"Simulating a paper-sized recording (35 cells, 50 frames, 10 features, 8 motifs, "
          f"'{a.regime}' regime, noise {a.noise}, seed {a.seed}) ...")
    ds, truth = demo_data(a.regime, a.noise, a.seed)
    radius = float(ds.attrs.get("radius", 10.0))
    model, forecast = demo_models(a.regime, a.seed, radius,
                                  int(truth.sizes["component"]), 0 if a.quiet else 1,
                                  full=a.full, pooling=a.pooling, n_init=a.n_init,
                                  init=a.init, max_iter=a.max_iter,
                                  class_restarts=a.class_restarts)
    if not a.full:
        print("Quick demo: the package defaults (pooled fit from a global search); "
              "the longer study: licchie demo --full.")
    t_split = getattr(a, "t_split", None)
    t0 = time.perf_counter()
    res = run_comparison(ds, truth, model, t_split=t_split, random_state=a.seed,
                         log=None if a.quiet else print, forecast_model=forecast)
    total = time.perf_counter() - t0
    print(model.summary())
    dt = res["seconds"]["LICCHIE"]
    sim = res["motifs"]["LICCHIE"]["similarity"].values
    stab = model.stability_.attrs["mean"]
    n_restarts = resolve_solver_options(model.solver_options)["class_restarts"]
    extra = f", then {n_restarts} class restarts per class" if n_restarts else ""
    how = (f"global search, then {model.n_init} minima polished for up to {model.max_iter} "
           f"iterations" if model.stability_.attrs.get("method") == "global search" else
           f"{model.n_init} starts of up to {model.max_iter} iterations")
    print(f"  fit time {dt:.1f} s ({how}{extra}; compile included on first run)")
    print(f"  recovery of the true motifs (matched |cosine| of vec M_j): mean {sim.mean():.3f}"
          f"  per motif {np.round(sim, 2).tolist()}   (motif stability {stab:.3f})")
    table = format_table(res)
    print()
    print(f"LICCHIE vs linear baselines (paper §5.1; held-out: fit on frames < "
          f"{res['t_split']} of {res['n_frames']}; all fits and evaluations {total:.0f} s):")
    print(table)
    atomic_to_netcdf(ds, os.path.join(a.out, "recording.nc"))
    atomic_to_netcdf(truth, os.path.join(a.out, "truth.nc"))
    model.save(os.path.join(a.out, "model.nc"))
    with open(os.path.join(a.out, "summary.txt"), "w") as fh:
        fh.write(model.summary() + "\n")
        fh.write(f"recovery mean {sim.mean():.4f} per motif {sim.tolist()}\n\n")
        fh.write(table + "\n")
    folder = os.path.join(a.out, "report")
    files = write_report(folder, res, truth, table=table)
    print(f"Results written to {a.out}/ (recording.nc, truth.nc, model.nc, summary.txt)")
    if any(f.endswith(".png") for f in files):
        print(f"Report written to {folder}/ (report.md and "
              f"{sum(f.endswith('.png') for f in files)} PNG figures)")
    else:
        print(f"Figures skipped: matplotlib is not installed (pip install "
              f"\"licchie[report]\"); {folder}/report.md has the table.")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="licchie", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("fit", help="fit a recording (netCDF Dataset, TOML config or "
                                   "TrackMate export) and save the model")
    p.add_argument("recording", help="recording.nc, config.toml (README, 'Your own "
                                     "recording') or a TrackMate spots CSV/XML")
    p.add_argument("-o", "--output", default="model.nc",
                   help="model file (default model.nc; a config's [output] model)")
    p.add_argument("--frames", type=int, nargs=2, metavar=("FIRST", "LAST"), default=None,
                   help="with a config: only these frames (inclusive), e.g. a quick run")
    _add_fit_options(p)
    p.set_defaults(func=cmd_fit, _fit_defaults={
        k: p.get_default(k) for k in list(_CONFIG_OVERRIDES) + ["output"]})

    p = sub.add_parser("report", help="figures and a markdown page for a fitted model "
                                      "(paper §5.2-5.3)")
    p.add_argument("model", help="model file written by licchie fit")
    p.add_argument("--data", default=None,
                   help="the config the model was fitted from (default: the one stored in "
                        "the model file); needed for weight sweeps and source extremes")
    p.add_argument("--out", default=None, help="output folder (default: the config's "
                                               "[output] report, else <model>_report)")
    p.add_argument("--frames", type=int, nargs=2, metavar=("FIRST", "LAST"), default=None,
                   help="frames of the data to use for sweeps (default: the config's)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("demo", help="simulate, fit and report on built-in synthetic data")
    p.add_argument("--out", default="licchie-demo", help="output folder (licchie-demo)")
    p.add_argument("--regime", default="shared", choices=list(DEMO_REGIMES),
                   help="synthetic data: 'shared' (motifs shared across interaction "
                        "classes, no gains; default), 'pooled' (owned motifs, per-target "
                        "gains), 'paper' (per-pair random weights, fitted with pooling=0)")
    p.add_argument("--noise", type=float, default=0.01)
    p.add_argument("--pooling", type=float, default=None,
                   help="lam5 of the scored fit (default: the regime's preset, README)")
    p.add_argument("--n-init", type=int, default=None,
                   help="starts of the scored fit (default: the preset)")
    p.add_argument("--init", choices=("auto", "search", "parafac", "groups", "classes"),
                   default=None, help="start of the scored fit (default: the regime's preset)")
    p.add_argument("--max-iter", type=int, default=None,
                   help="iterations of the scored fit (default: the regime's preset)")
    p.add_argument("--class-restarts", type=int, default=None,
                   help="class restarts of the scored fit (default: the regime's preset)")
    p.add_argument("--full", action="store_true",
                   help="the README's paper-size study (longer fits with class restarts; "
                        "several minutes) instead of the quick default")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("simulate", help="write a synthetic recording and its ground truth")
    p.add_argument("--out", required=True)
    p.add_argument("--truth", default=None)
    p.add_argument("--regime", default="pooled", choices=["pooled", "paper"])
    p.add_argument("--noise", type=float, default=0.01)
    p.add_argument("--hidden", type=float, default=0.0)
    p.add_argument("--dims", type=int, default=2, choices=[2, 3])
    p.add_argument("--scale", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_simulate)

    a = parser.parse_args(argv)
    try:
        a.func(a)
    except (ValueError, NotImplementedError, FileNotFoundError) as exc:
        print(f"licchie {a.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
