"""From the fit's index arrays to the caller's labels, and back.

The kernels and :mod:`licchie.fit` work with integer observation and pair
indices; this module turns them into labeled xarray / pandas results (cell
ids, time labels, sessions, populations, pooling groups) and maps labeled new
data onto a fitted model's groups.  The estimators (:mod:`licchie.model`,
:mod:`licchie.baselines`) and :mod:`licchie.evaluate` share it.
"""
from __future__ import annotations

import hashlib
import warnings

import numpy as np
import xarray as xr

from . import fit as F
from ._spaces_labels import (_space_attributes, check_spaces,  # noqa: F401
                             population_interactions, population_motifs,
                             population_predict)

__all__ = ["format_prediction", "time_labels", "pair_coords", "fingerprint", "r2",
           "no_pairs_message", "fitted_attributes", "group_weights_for",
           "EXCITATION_SNR"]

# source excitation: variance ratio over the noise that counts as excited
# (about 3x the noise in amplitude)
EXCITATION_SNR = 10.0


def time_labels(obs, o):
    """Time label (the caller's ``time`` coordinate) of observations ``o`` (n,)."""
    sess = obs.session[o]
    ti = obs.time_index[o]
    vals = [obs.time_values[s][k] for s, k in zip(sess, ti)]
    return np.asarray(vals)


def pair_coords(obs, pairs):
    """Labeled coordinates of every pair (all along the ``pair`` dim).

    Returns
    -------
    dict
        ``target``, ``source`` (cell ids), ``time`` (the target's frame),
        ``session``, ``target_population``, ``source_population``,
        ``is_self``, ``pooling_group``; each ``("pair", array (n_pairs,))``.
    """
    t, s = pairs.tgt, pairs.src
    pops = np.asarray(obs.population_names, dtype=object)
    return {
        "target": ("pair", obs.cell_ids[obs.cell[t]]),
        "source": ("pair", obs.cell_ids[obs.cell[s]]),
        "time": ("pair", time_labels(obs, t) if len(t) else np.zeros(0)),
        "session": ("pair", np.asarray(obs.session_names, dtype=object)[obs.session[t]]
                    .astype(str)),
        "target_population": ("pair", pops[obs.population[t]].astype(str)),
        "source_population": ("pair", pops[obs.population[s]].astype(str)),
        "is_self": ("pair", pairs.is_self.astype(bool)),
        "pooling_group": ("pair", np.asarray(pairs.group_names, dtype=object)[pairs.group]
                          .astype(str)),
    }


def format_prediction(X, obs, pairs, yhat, feat):
    """Predictions ``yhat`` (n_targets, d) in the caller's terms.

    A DataArray (cell, time, feature) aligned with ``X`` when ``X`` is a
    Dataset (NaN where there is no prediction), else a long DataFrame with
    one row per predicted observation.
    """
    if isinstance(X, xr.Dataset):
        out = np.full((X.sizes["cell"], X.sizes["time"], len(feat)), np.nan)
        out[obs.cell[pairs.tgt_obs], obs.time_index[pairs.tgt_obs]] = yhat
        return xr.DataArray(out, dims=("cell", "time", "feature"),
                            coords={"cell": X["cell"].values, "time": X["time"].values,
                                    "feature": feat}, name="prediction")
    import pandas as pd
    o = pairs.tgt_obs
    df = pd.DataFrame(yhat, columns=feat)
    df.insert(0, "time", time_labels(obs, o))
    df.insert(0, "cell", obs.cell_ids[obs.cell[o]])
    df.insert(0, "session", np.asarray(obs.session_names, dtype=object)[obs.session[o]])
    return df


def fingerprint(obs):
    """Digest of the observations a fit saw (to recognise the training data)."""
    h = hashlib.sha256()
    for a in (obs.features, obs.positions, obs.cell, obs.frame, obs.prev_frame):
        h.update(np.ascontiguousarray(a).tobytes())
    h.update(repr([list(map(str, obs.cell_ids)), obs.feature_names,
                   obs.population_names, obs.session_names]).encode())
    return h.hexdigest()


def r2(y, yhat):
    """Coefficient of determination of ``yhat`` for ``y`` (both (n, d)), pooled
    over features; NaN when ``y`` is constant.

    Only the finite entries of ``y`` count (features a target's population
    lacks are NaN), each feature centred on its mean over the targets that
    have it.
    """
    fin = np.isfinite(y)
    if fin.all():
        ss = float(np.sum((y - y.mean(axis=0)) ** 2))
        return 1.0 - float(np.sum((y - yhat) ** 2)) / ss if ss > 0 else float("nan")
    if not fin.any():
        return float("nan")
    mean = np.nanmean(np.where(fin, y, np.nan), axis=0)
    ss = float(np.sum(np.where(fin, y - mean, 0.0) ** 2))
    res = float(np.sum(np.where(fin, y - yhat, 0.0) ** 2))
    return 1.0 - res / ss if ss > 0 else float("nan")


def no_pairs_message(obs, radius):
    """Why there are no pairs: how far apart consecutive-frame cells actually are."""
    from .data.neighbours import previous_frame_distances
    d = previous_frame_distances(obs, exclude_self=False)
    if not d.size:
        return ("No pairs: no frame has observations in the frame before it (the data "
                "need at least two consecutive frames of the same session).")
    return (f"No pairs within radius={radius}: the nearest cell in the previous frame is "
            f"{d.min():.4g} away at best (median over targets {np.median(d):.4g}). Use a "
            f"radius of at least {np.median(d):.4g} (position units), or check that "
            "positions and radius use the same units.")


def fitted_attributes(obs, pairs, n_edges, results, best, spaces=None):
    """The fitted attributes of :class:`licchie.LICCHIE` from its starts.

    Parameters
    ----------
    obs : Observations
    pairs : Pairs
        In the caller's order (the starts' ``W`` and ``pair_gain`` mapped back).
    n_edges : int
        Edges of the smoothness graph.
    results : list of StartResult
        Every start (the best one after class restarts).
    best : int
        Index of the best start.
    spaces : Spaces or None
        Population feature spaces for ``pairs`` (:mod:`licchie.fit.spaces`);
        the effects are then labeled per population (:func:`_space_attributes`).

    Returns
    -------
    dict
        Attribute name -> value (``components_``, ``weights_``, ...), to be
        set on the estimator all at once.
    """
    res = results[best]
    J = res.W.shape[1]
    comp = np.arange(J)
    feat = list(obs.feature_names)
    if spaces is not None:
        from .fit.spaces import motif_agreement as agreement
        others = [r for k, r in enumerate(results) if k != best]
        stab_runs = np.zeros((J, len(others)))
        for k, r in enumerate(others):
            stab_runs[:, k] = agreement(res.C, res.R, r.C, r.R)[0]
    else:
        stab_runs = F.stability(results, best)
    stab = stab_runs.mean(axis=1) if stab_runs.shape[1] else np.full(J, np.nan)
    out = {}
    out["stability_"] = xr.DataArray(stab, dims="component", coords={"component": comp},
                                     name="stability",
                                     attrs={"mean": float(np.mean(stab)),
                                            "n_starts": len(results)})
    out["stability_runs_"] = xr.DataArray(stab_runs, dims=("component", "other_start"),
                                          coords={"component": comp})
    if spaces is not None:
        pred, y, noise_var, exc, effects = _space_attributes(obs, pairs, res, spaces)
    else:
        pred = F.K.predict_lowrank(obs.features, pairs.tgt_ptr, pairs.src, pairs.gain,
                                   res.W, res.C, res.R)
        y = obs.features[pairs.tgt_obs]
        # the low-rank model's residual (not the A_e's, which can fit the noise):
        # noise plus misfit, so the excitation it implies errs on the low side
        noise_var = float(np.mean((y - pred) ** 2)) if y.size else 0.0
        exc = F.source_excitation(pairs.gain[:, None] * obs.features[pairs.src], res.W,
                                  res.R, noise_var, EXCITATION_SNR)
        effects = {"target_effect": (("component", "feature"), res.C.T.copy()),
                   "source_effect": (("component", "feature"), res.R.T.copy())}
    out["components_"] = xr.Dataset(
        {**effects,
         "stability": ("component", stab),
         "source_excitation": ("component", exc,
                               {"snr": EXCITATION_SNR, "noise_sd": np.sqrt(noise_var)})},
        coords={"component": comp, "feature": feat,
                **({} if spaces is None else {"population": list(obs.population_names)})})
    out["weights_"] = xr.DataArray(res.W, dims=("pair", "component"),
                                   coords={**pair_coords(obs, pairs), "component": comp,
                                           "target_gain": ("pair", res.pair_gain)},
                                   name="weights")
    out["group_weights_"] = xr.DataArray(
        res.Wbar, dims=("group", "component"),
        coords={"group": list(pairs.group_names), "component": comp,
                "cancellation": ("group", _cancellation(pairs, res, spaces))},
        name="group_weights")
    hist = np.array([np.append(h[2], h[2].sum()) for h in res.history])
    out["objective_history_"] = xr.DataArray(
        hist, dims=("step", "term"),
        coords={"term": list(F.TERMS) + ["total"],
                "iteration": ("step", [h[0] for h in res.history]),
                "stage": ("step", [h[1] for h in res.history])},
        name="objective")
    out["start_objectives_"] = np.array([r.objective for r in results])
    out["n_iter_"] = res.n_iter
    out["converged_"] = bool(res.converged)
    out["best_start_"] = best
    out["n_pairs_"] = pairs.n_pairs
    out["n_edges_"] = n_edges
    out["feature_names_in_"] = np.array(feat, dtype=object)
    out["n_features_in_"] = len(feat)
    out["space_names_"] = tuple(obs.space_names)
    out["data_fingerprint_"] = fingerprint(obs)
    out["in_sample_r2_"] = r2(y, pred)
    return out


def _cancellation(pairs, res, spaces):
    """:func:`licchie.fit.profile_cancellation` of every group profile."""
    if spaces is None:
        return F.profile_cancellation(res.Wbar, res.C, res.R)
    first = np.full(res.Wbar.shape[0], -1, np.int64)
    first[pairs.group[::-1]] = np.arange(pairs.n_pairs)[::-1]  # a pair of each group
    gs = spaces.class_space[spaces.pair_class[np.maximum(first, 0)]]
    return F.profile_cancellation(res.Wbar, res.C, res.R, gs)


def group_weights_for(model, pairs, obs):
    """Each pair's group profile ``Wbar[g(e)]`` (n_pairs, J) from a fitted
    model (zero for groups it never saw).

    With class x time pooling (``pooling_groups_``) the window of a pair is looked up on
    the training data's time axis by (session, time label) of its target, so
    a recording that starts later than the training data (a held-out
    stretch) gets the windows its frames had in training.  A pair without a
    fitted profile of its own (a frame the training data never had, e.g. a
    forecast after the training frames, or a window in which its class had
    no pair) gets its class's profile in the **nearest window in time** of
    its session (ties: the earlier): for frames after the training data,
    the last window (docs/model-choices.md, "Pooling groups").  Without
    numeric time labels it gets the class's mean profile over the windows.
    """
    gw = {str(g): model.group_weights_.values[k]
          for k, g in enumerate(model.group_weights_["group"].values)}
    W = np.zeros((pairs.n_pairs, model.group_weights_.shape[1]))
    if model._pooling() != "class_time" or not pairs.n_pairs:
        names = np.asarray(pairs.group_names, dtype=object)[pairs.group]
        unknown = 0
        for g in np.unique(names):
            sel = names == g
            if g in gw:
                W[sel] = gw[g]
            else:
                unknown += int(sel.sum())
        _warn_unknown(unknown)
        return W
    cls, window, own = _training_windows(model.weights_, obs, pairs)
    by_class = {}
    for g, v in gw.items():
        c, start = g.rsplit("@", 1)
        by_class.setdefault(c, []).append((int(start), v))
    unknown = outside = 0
    for c, w, o in set(zip(cls.tolist(), window.tolist(), own.tolist())):
        sel = (cls == c) & (window == w) & (own == o)
        cand = by_class.get(c)
        if not cand:
            unknown += int(sel.sum())
            continue
        if w >= 0 and f"{c}@{w}" in gw:
            W[sel] = gw[f"{c}@{w}"]
            outside += 0 if o else int(sel.sum())
            continue
        outside += int(sel.sum())
        if w == _NO_WINDOW:
            W[sel] = np.mean([v for _, v in cand], axis=0)
        else:
            # nearest window start, ties to the earlier one
            W[sel] = min(cand, key=lambda sv: (abs(sv[0] - w), sv[0]))[1]
    if outside:
        warnings.warn(f"{outside} pairs fall in frames or windows without a fitted profile "
                      "of their class (outside the training data's time windows); they use "
                      "their class's profile in the nearest training window.", UserWarning,
                      stacklevel=3)
    _warn_unknown(unknown)
    return W


def _warn_unknown(unknown):
    if unknown:
        warnings.warn(f"{unknown} pairs belong to groups the model never saw (new "
                      "populations or time windows?); they predict zero.", UserWarning,
                      stacklevel=4)


_NO_WINDOW = -1   # no numeric time to place a frame among the training windows


def _training_windows(wt, obs, pairs):
    """Each pair's class and the start of the training window of its
    target's (session, time label): the window that time had in the
    training data, else the window of the session's nearest training time
    (ties: the earlier), else ``_NO_WINDOW`` (a session without training
    pairs, or time labels that are not numbers); ``wt`` is the fitted
    ``weights_``.

    Returns
    -------
    cls : ndarray (n_pairs,), object
    window : ndarray (n_pairs,), int64
    own : ndarray (n_pairs,), bool
        The target's time was in the training data (its window is its own).
    """
    import pandas as pd

    train = pd.DataFrame({
        "session": wt["session"].values.astype(str),
        "time": wt["time"].values,
        "window": pd.Series(wt["pooling_group"].values.astype(str))
                    .str.rsplit("@", n=1).str[1].astype(np.int64).values,
    }).drop_duplicates(["session", "time"])
    new = pd.DataFrame({
        "session": np.asarray(obs.session_names, dtype=object)[obs.session[pairs.tgt]]
                     .astype(str),
        "time": time_labels(obs, pairs.tgt),
    })
    window = new.merge(train, on=["session", "time"], how="left")["window"]
    window = window.fillna(_NO_WINDOW).astype(np.int64).to_numpy().copy()
    missing = window == _NO_WINDOW
    own = ~missing
    if missing.any():
        for sess in np.unique(new["session"].to_numpy()[missing]):
            rows = missing & (new["session"].to_numpy() == sess)
            tr = train[train["session"] == sess].sort_values("time")
            try:
                tt = np.asarray(tr["time"].to_numpy(), dtype=float)
                t = np.asarray(new["time"].to_numpy()[rows], dtype=float)
            except (TypeError, ValueError):
                continue
            if tt.size == 0:
                continue
            k = np.clip(np.searchsorted(tt, t), 1, max(tt.size - 1, 1))
            lo = np.minimum(k - 1, tt.size - 1)
            hi = np.minimum(k, tt.size - 1)
            pick = np.where(np.abs(t - tt[lo]) <= np.abs(tt[hi] - t), lo, hi)
            window[rows] = tr["window"].to_numpy()[pick]
    cls = pd.Series(np.asarray(pairs.group_names, dtype=object)).str.rsplit(
        "@", n=1).str[0].values[pairs.group]
    return cls.astype(object), window, own


def add_verdict(out, res, info, init, lambdas):
    """Per-motif verdict into the fitted attributes ``out`` (in place).

    With the global search (``info``), ``stability_`` is the search's
    per-motif score (:func:`licchie.fit.verdict.diagnose`; with population
    feature spaces :func:`licchie.fit.spaces_verdict.diagnose_spaces` on the
    reduced multi-start) carried over to the fitted motifs; otherwise it stays the agreement across starts, and
    the verdict never says "high": agreement of local starts can be a shared
    wrong basin, and without pooling the data do not determine the source
    effects at all.

    Adds ``components_["verdict"]``, ``components_["verdict_reason"]`` and
    the attrs ``stability_.attrs["method"]`` (and, from the search, the loss
    gap to the best competing minimum, the searches that reached the best
    and the number of distinct minima).
    """
    from .fit import global_start as FG
    from .fit import spaces_verdict as SV

    J = res.W.shape[1]
    stab = out["stability_"]
    if info is not None:
        dg = info.diagnosis
        if isinstance(info, SV.SpacesStart):   # population feature spaces
            score, verdict, reason = SV.final_verdict(res.C, res.R, info)
            loss, method = info.loss, "reduced multi-start"
            at_best = int(np.sum(np.abs(info.losses - loss) <= 1e-6 * abs(loss)))
        else:
            score, verdict, reason = FG.final_verdict(res.C, res.R, info)
            loss, method = info.result.loss, "global search"
            at_best = int(sum(abs(b[0] - loss) <= 1e-6 * abs(loss)
                              for b in info.result.search_best))
        attrs = {"mean": float(np.mean(score)), "method": method,
                 "n_candidates": int(dg.n_candidates), "n_searches": int(dg.n_searches),
                 "searches_at_best": at_best,
                 # the nearest competing minimum over the motifs (inf: none)
                 "loss_gap": float(np.min(dg.gap_loss)),
                 "reduced_loss": float(loss)}
        out["stability_"] = xr.DataArray(score, dims="component", coords=stab.coords,
                                         name="stability", attrs=attrs)
        out["components_"]["stability"] = ("component", score)
    else:
        values = stab.values
        if not lambdas.pooling > 0:
            verdict = ["low"] * J
            reason = ["pooling=0 (the paper's model): the data do not determine the "
                      "source effects"] * J
        else:
            verdict = ["medium" if v >= 0.9 else "low" for v in values]
            unchecked = ("not checked by the reduced multi-start's verdict (init='search')"
                         if "population" in out["components_"].dims
                         else "not checked by the global search (init='search')")
            reason = [f"agreement of {init!r} starts only ({v:.2f}); {unchecked}"
                      for v in values]
        stab.attrs["method"] = f"agreement across {init!r} starts"
    out["components_"]["verdict"] = ("component", np.array(verdict, dtype=object))
    out["components_"]["verdict_reason"] = ("component", np.array(reason, dtype=object))
