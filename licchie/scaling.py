"""Standardisation inside the model (issue 15.3; ``LICCHIE(standardize=...)``).

The fit works in *model units*: every feature of every observation is
centred and scaled by statistics of its population (and, optionally, its
session),

    z[n,t] = (x[n,t] - mu_p) / s_p          (elementwise, p = population of n)

with ``mu_p`` and ``s_p`` the mean and standard deviation (ddof 0) of each
feature over the population's observations in the training data.  The
statistics are learned in ``fit``, kept on the model (``scaling_``, an
xarray.Dataset), written to the model file, and applied by ``predict`` and
``transform``.

Back to original units.  An interaction matrix in model units ``A_e`` acts
on the source's standardised state; in original units the prediction is

    x_hat[n,t] = mu_p + sum_e g_e Ã_e (x[k_e,t-1] - mu_q),
    Ã_e = diag(s_p) A_e diag(1 / s_q)

(p the target's population, q the source's), so a motif ``c_j r_j^T`` reads
``(s_p * c_j)(r_j / s_q)^T`` in original units: one map per (target
population, source population), no longer of unit norm.  The means enter
only as the affine offset ``mu_p - sum_e g_e Ã_e mu_q``, which depends on how
many sources a target has: the offset is why a model fitted on standardised
data is not the same as a linear model of the raw features.

A scale of zero (a feature constant over a population) or undefined (fewer
than two observations) is replaced by 1, so that feature is only centred.
A feature a population does not have (NaN throughout) keeps NaN statistics
and stays NaN.

With ``"population_session"`` each (population, session) has its own
statistics; a session the model never saw is standardised by its own
statistics computed on the data passed (with a warning), the usual reading
of per-session standardisation as batch correction.
"""
from __future__ import annotations

import copy
import dataclasses
import warnings

import numpy as np
import xarray as xr

__all__ = ["STANDARDIZE", "learn_scaling", "apply_scaling", "observation_stats",
           "fit_scaled_recording", "scaled_recording", "to_original_targets",
           "pair_scales", "motifs_in_units", "scaling_to_file", "scaling_from_file"]

STANDARDIZE = ("population", "population_session")


def _group_index(obs, how, sessions):
    """Row of each observation in the statistics table: population, or
    population x session (sessions labelled by ``sessions``, names in order)."""
    pop = obs.population
    if how == "population":
        return pop
    sess_pos = {s: k for k, s in enumerate(sessions)}
    local = np.array([sess_pos.get(s, -1) for s in obs.session_names], dtype=np.int64)
    return pop * len(sessions) + local[obs.session]


def _stats(X, index, n_rows):
    """Mean and std (ddof 0) of X's rows per index value; NaN ignored.

    Returns float64 (n_rows, d) twice; a std that is zero or undefined is 1.
    """
    d = X.shape[1]
    mean = np.full((n_rows, d), np.nan)
    scale = np.ones((n_rows, d))
    for g in range(n_rows):
        rows = X[index == g]
        if rows.shape[0] == 0:
            continue
        seen = np.isfinite(rows)
        n = seen.sum(axis=0)
        ok = n > 0
        mu = np.where(ok, np.nansum(rows, axis=0) / np.maximum(n, 1), np.nan)
        var = np.where(ok, np.nansum((rows - mu) ** 2, axis=0) / np.maximum(n, 1), np.nan)
        sd = np.sqrt(var)
        mean[g] = mu
        scale[g] = np.where((n >= 2) & (sd > 0) & np.isfinite(sd), sd, 1.0)
    return mean, scale


def learn_scaling(obs, how):
    """Per-population (and per-session) feature statistics of ``obs``.

    Parameters
    ----------
    obs : Observations
    how : {"population", "population_session"} or None

    Returns
    -------
    xarray.Dataset or None
        ``mean`` and ``scale``, dims (population, feature) or (population,
        session, feature), attrs ``method``; None when ``how`` is None.
    """
    if how is None:
        return None
    if how not in STANDARDIZE:
        raise ValueError(f"standardize must be None, 'population' or 'population_session'; "
                         f"got {how!r}.")
    pops = list(obs.population_names)
    feat = list(obs.feature_names)
    sessions = list(obs.session_names)
    n_rows = len(pops) * (len(sessions) if how == "population_session" else 1)
    mean, scale = _stats(obs.features, _group_index(obs, how, sessions), n_rows)
    if how == "population":
        dims, shape, coords = ("population", "feature"), (len(pops), len(feat)), {}
    else:
        dims = ("population", "session", "feature")
        shape = (len(pops), len(sessions), len(feat))
        coords = {"session": sessions}
    return xr.Dataset({"mean": (dims, mean.reshape(shape)),
                       "scale": (dims, scale.reshape(shape))},
                      coords={"population": pops, "feature": feat, **coords},
                      attrs={"method": how})


def observation_stats(scaling, obs):
    """``(mean, scale)``, each float64 (n_obs, d): the statistics of every
    observation's population (and session) from ``scaling``.

    A population the model never saw is an error; with per-session
    statistics, a session it never saw gets its own statistics from ``obs``
    (with a warning).
    """
    how = scaling.attrs["method"]
    feat = [str(f) for f in scaling["feature"].values]
    if list(obs.feature_names) != feat:
        raise ValueError(f"The data's features {list(obs.feature_names)} differ from the "
                         f"fitted features {feat}; pass data with the same features in "
                         "the same order.")
    known = [str(p) for p in scaling["population"].values]
    missing = [p for p in obs.population_names if p not in known]
    pop_rows = np.array([known.index(p) if p in known else -1
                         for p in obs.population_names], dtype=np.int64)
    pop = pop_rows[obs.population]
    if missing and np.any(pop < 0):
        raise ValueError(f"Population(s) {missing} were not in the training data, so the "
                         "model has no standardisation for them; fit on data that "
                         f"includes them (the model knows {known}).")
    mean = scaling["mean"].values
    scale = scaling["scale"].values
    if how == "population":
        return mean[pop], scale[pop]
    sess_known = [str(s) for s in scaling["session"].values]
    new = [s for s in obs.session_names if s not in sess_known]
    m = np.empty_like(obs.features)
    s = np.empty_like(obs.features)
    sess = obs.session
    for k, name in enumerate(obs.session_names):
        rows = sess == k
        if not rows.any():
            continue
        if name in sess_known:
            col = sess_known.index(name)
            m[rows] = mean[pop[rows], col]
            s[rows] = scale[pop[rows], col]
    if new:
        warnings.warn(f"Session(s) {new} were not in the training data; they are "
                      "standardised by their own per-population statistics "
                      "(standardize='population_session').", UserWarning, stacklevel=4)
        own = learn_scaling(obs, "population_session")
        om, os_ = own["mean"].values, own["scale"].values
        for k, name in enumerate(obs.session_names):
            if name in new:
                rows = sess == k
                m[rows] = om[obs.population[rows], k]
                s[rows] = os_[obs.population[rows], k]
    return m, s


def apply_scaling(scaling, obs):
    """``obs`` in model units (a new Observations; ``obs`` itself when
    ``scaling`` is None)."""
    if scaling is None:
        return obs
    m, s = observation_stats(scaling, obs)
    z = np.ascontiguousarray((obs.features - m) / s)
    return dataclasses.replace(obs, features=z)


def _with_obs(rec, obs):
    out = copy.copy(rec)
    out.obs = obs
    return out


def fit_scaled_recording(X, how):
    """The training data in model units and the statistics learned from it.

    Returns
    -------
    (Recording, xarray.Dataset or None)
    """
    from .data import as_recording
    rec = as_recording(X)
    scaling = learn_scaling(rec.obs, how)
    if scaling is None:
        return rec, None
    return _with_obs(rec, apply_scaling(scaling, rec.obs)), scaling


def scaled_recording(model, X):
    """New data ``X`` as a Recording in the fitted model's units."""
    from .data import as_recording
    rec = as_recording(X)
    scaling = getattr(model, "scaling_", None)
    if scaling is None:
        return rec
    return _with_obs(rec, apply_scaling(scaling, rec.obs))


def to_original_targets(model, obs, targets, yhat):
    """Predictions ``yhat`` (n, d) of observations ``targets`` (n,) of
    ``obs`` from model units back to original units: ``mu_p + s_p * yhat``."""
    scaling = getattr(model, "scaling_", None)
    if scaling is None:
        return yhat
    m, s = observation_stats(scaling, obs)
    return m[targets] + s[targets] * yhat


def pair_scales(scaling, weights):
    """Per pair, the target's and the source's scale: float64 (n_pairs, d) twice.

    ``weights`` is a (pair, component) DataArray with the pair coords of
    ``LICCHIE.weights_`` (``target_population``, ``source_population``,
    ``session``).
    """
    scale = scaling["scale"]
    tp = np.asarray(weights["target_population"].values).astype(str)
    sp = np.asarray(weights["source_population"].values).astype(str)
    if scaling.attrs["method"] == "population":
        st = scale.sel(population=xr.DataArray(tp, dims="pair")).values
        ss = scale.sel(population=xr.DataArray(sp, dims="pair")).values
    else:
        se = xr.DataArray(np.asarray(weights["session"].values).astype(str), dims="pair")
        st = scale.sel(population=xr.DataArray(tp, dims="pair"), session=se).values
        ss = scale.sel(population=xr.DataArray(sp, dims="pair"), session=se).values
    return st, ss


def motifs_in_units(motifs, scaling):
    """Motif maps in original units, ``(s_p * c_j)(r_j / s_q)^T``.

    Parameters
    ----------
    motifs : xarray.DataArray (component, target_feature, source_feature)
        In model units.
    scaling : xarray.Dataset

    Returns
    -------
    xarray.DataArray (component, target_population, source_population[,
    session], target_feature, source_feature)
    """
    scale = scaling["scale"]
    st = scale.rename(population="target_population", feature="target_feature")
    ss = scale.rename(population="source_population", feature="source_feature")
    st = st.assign_coords(target_feature=motifs["target_feature"].values)
    ss = ss.assign_coords(source_feature=motifs["source_feature"].values)
    out = motifs * st / ss
    order = ["component", "target_population", "source_population"]
    if "session" in out.dims:
        order.append("session")
    out = out.transpose(*order, "target_feature", "source_feature")
    out.attrs["units"] = "original"
    return out.rename("motif")


# the model file already has a ``session`` coordinate along ``pair``
_FILE_DIMS = {"population": "scaling_population", "session": "scaling_session"}


def scaling_to_file(scaling):
    """Variables for the model file (``scaling_mean``, ``scaling_scale``)."""
    if scaling is None:
        return {}
    ren = {k: v for k, v in _FILE_DIMS.items() if k in scaling.dims}
    ds = scaling.rename(ren)
    out = {}
    for name in ("mean", "scale"):
        v = ds[name].copy()
        v.attrs["method"] = scaling.attrs["method"]
        out[f"scaling_{name}"] = v
    return out


def scaling_from_file(ds):
    """``scaling_`` from a model file's Dataset (None when it has none)."""
    if "scaling_mean" not in ds:
        return None
    back = {v: k for k, v in _FILE_DIMS.items()}
    mean = ds["scaling_mean"]
    ren = {k: v for k, v in back.items() if k in mean.dims}
    out = xr.Dataset({"mean": mean.rename(ren), "scale": ds["scaling_scale"].rename(ren)})
    out = out.drop_vars([c for c in out.coords if c not in out.dims])
    for c in ("population", "session", "feature"):
        if c in out.coords:
            out = out.assign_coords({c: [str(v) for v in out[c].values]})
    out.attrs = {"method": str(ds["scaling_mean"].attrs["method"])}
    for v in out.data_vars.values():
        v.attrs = {}
    return out
