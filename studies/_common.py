"""What several studies share: the paper-size data, the pooled fit, the truth start.

* ``PAPER_DATA`` / ``BASE_FIT``: :func:`licchie.synthetic.make_recording`
  arguments of the paper's size and the pooled fit of
  ``tests/test_identifiability.py``.
* :func:`seed_args`, :class:`CsvLog`: the command line and the CSV output of the
  per-seed studies.
* :func:`problem`, :func:`iterate`, :func:`truth_start`: the fit's problem and
  iterations, started anywhere (the ground truth, for :func:`truth_start`).
* :func:`recovery`, :func:`fit_and_recover`: matched |cosine| with the true
  motifs, and a study's LICCHIE fit measured by it.
"""
from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np

PAPER_DATA = dict(n_cells=(25, 10), n_frames=50, n_features=10, n_components=8,
                  density=0.2, balance=0.5, noise=0.01)
# tests/test_identifiability.py's pooled fit
BASE_FIT = dict(lambdas=(10.0, 0.0, 0.0, 0.001, 10.0), pooling_groups="class_time",
                pooling_window=1, init="groups", n_init=3, max_iter=150, tol=1e-9)


def seed_args(argv=None):
    """``seeds ... [--out CSV]``, the command line of the per-seed study scripts."""
    ap = argparse.ArgumentParser()
    ap.add_argument("seeds", type=int, nargs="+")
    ap.add_argument("--out", default=None, help="CSV file (written atomically)")
    return ap.parse_args(argv)


class CsvLog:
    """CSV lines printed as they come and written atomically at the end."""

    def __init__(self, header):
        self.lines = []
        self.emit(header)

    def emit(self, line):
        self.lines.append(line)
        print(line, flush=True)

    def write(self, path):
        if path:
            tmp = path + ".tmp"
            with open(tmp, "w") as fh:
                fh.write("\n".join(self.lines) + "\n")
            os.replace(tmp, path)


def problem(ds, fit):
    """``(obs, pairs, Problem)`` of ``ds`` for a study's fit settings ``fit``
    (radius 10, M = 10, sigma 0.3: the studies' LICCHIE arguments)."""
    # TODO(_prepare): copies LICCHIE.fit's setup (pairs, graph, ridge, Problem);
    # use LICCHIE._prepare(X) once the estimator has it.
    from licchie import fit as F
    from licchie.data import as_recording

    obs = as_recording(ds).obs
    pairs = F.build_pairs(obs, 10.0, pooling_groups=fit["pooling_groups"],
                          pooling_window=fit["pooling_window"])
    graph = F.build_graph(obs.features, pairs, 10, 0.3)
    ridge = F.RIDGE_REL * max(float(np.mean(obs.features ** 2)), np.finfo(float).tiny)
    lam = tuple(float(v) for v in fit["lambdas"])
    return obs, pairs, F.Problem(obs.features, pairs, graph, lam, ridge,
                                 target_gain=bool(fit.get("target_gain", False)))


def iterate(prob, A, W, C, R, fit):
    """The fit's iterations (as ``run_start``, with its extrapolation) from a
    given point, for ``fit["max_iter"]`` iterations or until ``tol``.

    Returns (objective at the given point, final objective, final C, final R).
    """
    from licchie import fit as F

    Wb, gam = prob.profiles(W)
    at_start = float(prob.objective(A, W, C, R, Wb, gam).sum())
    prev = cur = at_start
    alpha = 1.0
    for it in range(1, fit["max_iter"] + 1):
        before = (A, W, C, R)
        A, _ = prob.a_step(A, W, C, R)
        C, R = prob.component_step(A, W, C, R)
        W, Wb, gam, _ = prob.weight_step(A, W, C, R, Wb, gam)
        cur = float(prob.objective(A, W, C, R, Wb, gam).sum())
        if it > 1:
            cand = F._extrapolate(prob, (A, W, C, R), before, alpha, gamma=gam)
            if cand is not None:
                lc = float(prob.objective(*cand).sum())
                if np.isfinite(lc) and lc < cur:
                    A, W, C, R, Wb, gam = cand
                    cur = lc
                    alpha *= 1.5
                else:
                    alpha = 1.0
        if prev - cur <= fit["tol"] * max(abs(prev), np.finfo(float).tiny):
            break
        prev = cur
    iterate.terms = prob.objective(A, W, C, R, Wb, gam)
    return at_start, cur, C, R


def truth_start(ds, truth, fit):
    """Start at the ground truth: true motifs, weights and per-pair ``A_e``."""
    obs, pairs, prob = problem(ds, fit)
    key_fit = np.stack([obs.time_index[pairs.tgt], obs.cell[pairs.tgt], obs.cell[pairs.src]])
    key_true = np.stack([truth["time"].values, truth["target"].values,
                         truth["source"].values])
    if not np.array_equal(key_fit.astype(np.int64), key_true.astype(np.int64)):
        raise RuntimeError("the fit's pairs are not the truth's pairs")
    A = np.ascontiguousarray(truth["interaction"].values)
    W = np.ascontiguousarray(truth["weights"].values)
    C = np.ascontiguousarray(truth["target_effect"].values.T)
    R = np.ascontiguousarray(truth["source_effect"].values.T)
    return iterate(prob, A, W, C, R, fit)


def recovery(truth, C, R):
    from licchie.fit import motif_agreement

    sim, _ = motif_agreement(truth["target_effect"].values.T,
                             truth["source_effect"].values.T, C, R)
    return sim


def fit_and_recover(ds, truth, fit, seed, n_jobs=1):
    """The study's LICCHIE fit of ``ds``: (model, per-motif recovery, seconds)."""
    from licchie import LICCHIE

    model = LICCHIE(n_components=truth.sizes["component"], radius=10.0, n_neighbors=10,
                    sigma=0.3, random_state=seed, verbose=0, n_jobs=n_jobs, **fit)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(ds)
    secs = time.perf_counter() - t0
    sim = recovery(truth, model.components_["target_effect"].values.T,
                   model.components_["source_effect"].values.T)
    return model, sim, secs
