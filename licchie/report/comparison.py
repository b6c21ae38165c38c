"""LICCHIE against the linear baselines on a synthetic recording (paper §5.1).

:func:`run_comparison` fits LICCHIE and both baselines
(:mod:`licchie.baselines`) to a recording with known ground truth and
evaluates them (:mod:`licchie.evaluate`); :func:`format_table` prints the
comparison.
"""
from __future__ import annotations

import time
import warnings

import numpy as np
from sklearn.base import clone

from .. import evaluate as E
from ..params import resolve_lambdas
from ..baselines import GlobalLinear, PerCellLinear

METHODS = ("global linear", "per-cell linear", "LICCHIE")


def run_comparison(ds, truth, model, t_split=None, random_state=0, log=print,
                   forecast_model=None):
    """Fit LICCHIE and the baselines to ``ds`` and evaluate them against ``truth``.

    Parameters
    ----------
    ds, truth : xarray.Dataset
        A recording and its ground truth (:func:`licchie.synthetic.make_recording`).
    model : LICCHIE
        Unfitted; its pairing parameters (``radius``, ``include_self``,
        ``pair_weight``, ``bandwidth``) are also the baselines'.
    t_split : int, optional
        Training frames of the held-out evaluation (default: 80% of the
        frames).  The held-out evaluation fits a second copy of every model
        on those frames.
    random_state : int
        Seed of the cross-validation folds and of the per-cell baseline's
        PARAFAC motifs.
    log : callable or None
        Progress messages.
    forecast_model : LICCHIE, optional
        Unfitted; LICCHIE's estimator for the held-out evaluation (default: a
        clone of ``model``).  A fit with time-resolved pooling
        (``pooling_groups="class_time"``) has no weights for frames after its
        training data, so the demo forecasts with a class-pooled fit instead
        (README, "Results").

    Returns
    -------
    dict
        ``models`` (the three fits on all frames), ``motifs`` (per method,
        :func:`licchie.evaluate.motif_recovery` against the truth),
        ``pair_mse`` (per method, :func:`licchie.evaluate.per_pair_mse`),
        ``heldout`` (per method, :func:`licchie.evaluate.heldout_prediction`
        without the estimator), ``cell_types`` (LICCHIE's ``W`` and, for
        reference, the true ``W``), ``information_criteria`` (LICCHIE),
        ``baseline_motifs`` (the baselines' rank-one motifs), ``seconds``
        (fit times), ``t_split`` and ``forecast_model`` (LICCHIE's held-out
        estimator, unfitted).
    """
    log = log or (lambda *a, **k: None)
    J = int(model.n_components)
    T = ds.sizes["time"]
    t_split = int(round(0.8 * T)) if t_split is None else int(t_split)
    pairing = dict(radius=model.radius, include_self=model.include_self,
                   pair_weight=model.pair_weight, bandwidth=model.bandwidth)
    estimators = {"global linear": GlobalLinear(**pairing),
                  "per-cell linear": PerCellLinear(**pairing),
                  "LICCHIE": model}
    out = {"models": {}, "motifs": {}, "pair_mse": {}, "heldout": {}, "seconds": {},
           "t_split": t_split, "n_frames": T,
           "forecast_model": clone(model if forecast_model is None else forecast_model)}
    for name, est in estimators.items():
        log(f"Fitting {name} on all {T} frames ...")
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            est.fit(ds)
        out["seconds"][name] = time.perf_counter() - t0
        out["models"][name] = est
    lic = out["models"]["LICCHIE"]
    out["baseline_motifs"] = {
        "global linear": out["models"]["global linear"].motifs(J),
        "per-cell linear": out["models"]["per-cell linear"].motifs(J, random_state),
        "LICCHIE": lic.components_}
    for name in METHODS:
        out["motifs"][name] = E.motif_recovery(out["baseline_motifs"][name], truth)
        out["pair_mse"][name] = E.per_pair_mse(out["models"][name].interaction_matrices(),
                                               truth)
    for name, est in estimators.items():
        log(f"Held-out one-step prediction of {name}: fit on frames < {t_split}, "
            f"predict frames {t_split}..{T - 1} ...")
        t0 = time.perf_counter()
        est = clone(out["forecast_model"] if name == "LICCHIE" else est)
        if "verbose" in est.get_params():
            est.set_params(verbose=0)      # one summary (the full fit's) is enough
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            res = E.heldout_prediction(est, ds, t_split)
        res.pop("estimator")
        out["heldout"][name] = res
        out["seconds"][name + " (held-out fit)"] = time.perf_counter() - t0
    log("Cell-type prediction from the weights (logistic regression, 5-fold CV) ...")
    out["cell_types"] = {"LICCHIE": E.cell_type_prediction(lic.weights_,
                                                           random_state=random_state),
                         "truth": E.cell_type_prediction(truth["weights"],
                                                         random_state=random_state)}
    out["information_criteria"] = E.model_information_criteria(lic, ds)
    return out


def _fmt(v, spec=".3f"):
    return "n/a" if v is None or not np.isfinite(v) else format(v, spec)


def format_table(res):
    """The comparison as fixed-width text (one column per method)."""
    lic = res["models"]["LICCHIE"]
    stab = lic.stability_.attrs["mean"]
    ct = res["cell_types"]["LICCHIE"]
    rows = [
        ("motif recovery, mean matched |cos|",
         [_fmt(res["motifs"][m].attrs["mean_similarity"]) for m in METHODS]),
        ("motif SSIM, mean over matched",
         [_fmt(res["motifs"][m].attrs["mean_ssim"]) for m in METHODS]),
        ("motif stability (verdict score, mean)",
         ["n/a", "n/a", _fmt(stab)]),
        ("per-pair MSE of A_e, mean",
         [_fmt(res["pair_mse"][m].attrs["mean"], ".4g") for m in METHODS]),
        ("per-pair MSE of A_e, median",
         [_fmt(res["pair_mse"][m].attrs["median"], ".4g") for m in METHODS]),
        (f"held-out one-step MSE (frames >= {res['t_split']})",
         [_fmt(res["heldout"][m]["mse"], ".4g") for m in METHODS]),
        ("held-out one-step R^2",
         [_fmt(res["heldout"][m]["r2"]) for m in METHODS]),
        ("in-sample R^2 (training frames)",
         [_fmt(res["heldout"][m]["in_sample_r2"]) for m in METHODS]),
    ]
    for task in ("source", "target", "both"):
        r = ct.loc[task]
        rows.append((f"cell type from W: {task} acc (bal.; majority)",
                     ["n/a", "n/a", f"{_fmt(r['accuracy'])} ({_fmt(r['balanced_accuracy'])};"
                                    f" {_fmt(r['majority_rate'])})"]))
    w0 = max(len(r[0]) for r in rows)
    w = [max(len(m), *(len(r[1][k]) for r in rows)) for k, m in enumerate(METHODS)]
    lines = ["  ".join([" " * w0] + [m.rjust(w[k]) for k, m in enumerate(METHODS)])]
    lines.append("-" * len(lines[0]))
    for label, vals in rows:
        lines.append("  ".join([label.ljust(w0)] + [v.rjust(w[k]) for k, v in
                                                    enumerate(vals)]))
    ic = res["information_criteria"]
    tr = res["cell_types"]["truth"]
    lines.append("")
    lines.append("LICCHIE per-motif recovery |cos| (stability of the matched motif): "
                 + "  ".join(f"{s:.2f}({_fmt(st, '.2f')})" for s, st in
                             zip(res["motifs"]["LICCHIE"]["similarity"].values,
                                 res["motifs"]["LICCHIE"]["matched_stability"].values)))
    lines.append(f"LICCHIE AIC {ic['aic']:.6g}  BIC {ic['bic']:.6g}  (RSS {ic['rss']:.4g}, "
                 f"n {ic['n']}, dof {ic['dof']})")
    lines.append("Cell type from the TRUE W (reference): " + ", ".join(
        f"{t} {_fmt(tr.loc[t, 'accuracy'])} (bal. {_fmt(tr.loc[t, 'balanced_accuracy'])};"
        f" majority {_fmt(tr.loc[t, 'majority_rate'])})" for t in ("source", "target", "both")))
    fc = res.get("forecast_model")
    if fc is not None and fc.get_params() != lic.get_params():
        lines.append(f"LICCHIE's held-out rows come from a second LICCHIE fit with "
                     f"pooling_groups={fc._pooling()!r}, init={fc.init!r}, "
                     f"lambdas={tuple(resolve_lambdas(fc.lambdas))}: a fit with "
                     f"pooling_groups={lic._pooling()!r} has no profiles for frames "
                     "after its training data.")
    if resolve_lambdas(lic.lambdas).pooling > 0:
        lines.append("Note: with pooling > 0 the weights are pulled toward per-class "
                     "profiles, so cell-type accuracy from W partly reflects the grouping "
                     "itself.")
    lines.append("Baselines have no weights W (cell type n/a) and no starts (stability "
                 "n/a); their motifs are the rank-one terms of their matrices (global: "
                 "SVD of A~; per-cell: PARAFAC of the stacked A~_n).")
    return "\n".join(lines)
