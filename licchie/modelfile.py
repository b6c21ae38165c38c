"""Model files: a fitted :class:`licchie.LICCHIE` as one netCDF4 file.

:func:`to_dataset` is the file's content (README, "File formats"),
:func:`save` writes it atomically, :func:`load` restores a fitted estimator
with bit-exact attributes.  :func:`atomic_to_netcdf` is the package's one
atomic netCDF write (the CLI writes recordings with it too).
"""
from __future__ import annotations

import json
import numbers
import os
import tempfile

import numpy as np
import xarray as xr

from .labels import EXCITATION_SNR
from .scaling import scaling_from_file, scaling_to_file

__all__ = ["save", "load", "to_dataset", "atomic_to_netcdf"]

# parameters of files written before issue 13, now entries of solver_options
_OLD_SOLVER_OPTIONS = ("extrapolate", "record_steps", "init_max_iter", "class_restarts")


def to_dataset(model):
    """The fitted ``model`` as one xarray.Dataset (the saved file's content)."""
    params = model.get_params()
    if isinstance(params["lambdas"], tuple):
        params["lambdas"] = list(params["lambdas"])
    rs = params["random_state"]
    # a RandomState's state is not worth a file (the fit's results are
    # stored, nothing depends on it); numpy ints are not JSON
    params["random_state"] = int(rs) if isinstance(rs, numbers.Integral) else None
    ds = xr.Dataset(
        {"target_effect": model.components_["target_effect"],
         "source_effect": model.components_["source_effect"],
         "stability": ("component", model.stability_.values),
         "stability_runs": model.stability_runs_,
         "source_excitation": model.components_["source_excitation"],
         "weights": model.weights_,
         "group_weights": model.group_weights_,
         "objective_history": model.objective_history_,
         "start_objective": ("start", model.start_objectives_),
         "verdict": ("component", model.components_["verdict"].values.astype(str)),
         "verdict_reason": ("component",
                            model.components_["verdict_reason"].values.astype(str)),
         # per-population standardisation (standardize=...), when fitted with it
         **scaling_to_file(getattr(model, "scaling_", None))},
        attrs={"licchie_model": 1,
               "licchie_version": _version(),
               "params": json.dumps(params),
               "n_iter": int(model.n_iter_),
               "converged": int(model.converged_),
               "best_start": int(model.best_start_),
               "n_pairs": int(model.n_pairs_),
               "n_edges": int(model.n_edges_),
               "in_sample_r2": float(model.in_sample_r2_),
               "data_fingerprint": model.data_fingerprint_,
               "pooling_groups_used": model._pooling(),
               "pooling_fallback": getattr(model, "pooling_fallback_", None) or "",
               "pooling_cv": json.dumps(getattr(model, "pooling_cv_", None)),
               "gain_check": json.dumps(getattr(model, "gain_check_", None)),
               "target_gain_used": int(model._gains()),
               "space": json.dumps(list(model.space_names_)),
               "stability_attrs": json.dumps(
                   {k: v for k, v in model.stability_.attrs.items() if k != "mean"})})
    ds["is_self"] = ds["is_self"].astype(np.int8)
    return ds


def save(model, path):
    """Write the fitted ``model`` to one netCDF4 file at ``path``, atomically."""
    atomic_to_netcdf(to_dataset(model), path)


def load(path):
    """Read a model written by :meth:`LICCHIE.save`.

    Returns
    -------
    LICCHIE
        Fitted, with the same attributes (bit-exact) as the saved one.
    """
    from .model import LICCHIE

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No model file at {path!r}; check the path.")
    try:
        with xr.open_dataset(path, engine="netcdf4") as f:
            ds = f.load()
    except Exception as exc:  # netCDF4 raises OSError, ValueError, RuntimeError ...
        raise ValueError(f"Could not read {path!r} as a netCDF4 file ({exc}). Is it a "
                         "model written by LICCHIE.save?") from exc
    need = ["target_effect", "source_effect", "weights", "group_weights",
            "objective_history", "stability"]
    missing = [v for v in need if v not in ds]
    if ds.attrs.get("licchie_model") != 1 or missing:
        raise ValueError(f"{path!r} is not a LICCHIE model file (missing "
                         f"{missing or 'the licchie_model attribute'}). Write models with "
                         "LICCHIE.save.")
    model = LICCHIE(**_params_from_json(ds.attrs["params"]))
    comp = ds["component"].values
    stab = ds["stability"].values
    fitted = {}
    # files written before the verdict existed: the agreement across starts
    stab_attrs = (json.loads(ds.attrs["stability_attrs"]) if "stability_attrs" in ds.attrs
                  else {"n_starts": int(ds.sizes["start"]), "method": "agreement across starts"})
    fitted["stability_"] = xr.DataArray(stab, dims="component", coords={"component": comp},
                                        name="stability",
                                        attrs={"mean": float(np.mean(stab)), **stab_attrs})
    fitted["stability_runs_"] = ds["stability_runs"]
    # files written before the excitation diagnostic existed have NaN there
    exc = (ds["source_excitation"] if "source_excitation" in ds else
           xr.DataArray(np.full(comp.size, np.nan), dims="component",
                        attrs={"snr": EXCITATION_SNR, "noise_sd": np.nan}))
    unknown = np.array(["low"] * comp.size, dtype=object)
    fitted["components_"] = xr.Dataset({
        "target_effect": ds["target_effect"],
        "source_effect": ds["source_effect"],
        "stability": ("component", stab),
        "source_excitation": exc,
        "verdict": ("component", ds["verdict"].values.astype(object) if "verdict" in ds
                    else unknown),
        "verdict_reason": ("component", ds["verdict_reason"].values.astype(object)
                           if "verdict_reason" in ds else
                           np.array(["written before verdicts existed (LICCHIE < 0.2)"]
                                    * comp.size, dtype=object))})
    w = ds["weights"]
    fitted["weights_"] = w.assign_coords(is_self=w["is_self"].astype(bool))
    fitted["group_weights_"] = ds["group_weights"]
    fitted["objective_history_"] = ds["objective_history"]
    fitted["start_objectives_"] = ds["start_objective"].values
    fitted["n_iter_"] = int(ds.attrs["n_iter"])
    fitted["converged_"] = bool(ds.attrs["converged"])
    fitted["best_start_"] = int(ds.attrs["best_start"])
    fitted["n_pairs_"] = int(ds.attrs["n_pairs"])
    fitted["n_edges_"] = int(ds.attrs["n_edges"])
    fitted["in_sample_r2_"] = float(ds.attrs["in_sample_r2"])
    fitted["data_fingerprint_"] = str(ds.attrs["data_fingerprint"])
    # files written before pooling_groups="auto" fitted the parameter's groups
    fitted["pooling_groups_"] = str(ds.attrs.get("pooling_groups_used",
                                                 model.pooling_groups))
    fb = ds.attrs.get("pooling_fallback", "")
    if not isinstance(fb, str):  # files before 2026-12-06 kept the cancelling share
        fb = "" if float(fb) < 0 else f"{float(fb):.0%} of the class x frame profiles cancel"
    fitted["pooling_fallback_"] = fb or None
    fitted["pooling_cv_"] = json.loads(ds.attrs.get("pooling_cv", "null"))
    fitted["gain_check_"] = json.loads(ds.attrs.get("gain_check", "null"))
    # files written before target_gain="auto" fitted what the parameter said
    fitted["target_gain_"] = bool(ds.attrs.get("target_gain_used",
                                               model.target_gain is True))
    feat = ds["feature"].values
    fitted["feature_names_in_"] = np.array(list(feat), dtype=object)
    fitted["n_features_in_"] = len(feat)
    fitted["space_names_"] = tuple(json.loads(ds.attrs["space"]))
    fitted["class_restarts_"] = None  # the trials are not saved
    fitted["scaling_"] = scaling_from_file(ds)  # None for files without standardize
    for k, v in fitted.items():
        setattr(model, k, v)
    return model


def _params_from_json(text):
    """Constructor parameters from a file's ``params`` attribute, also for
    files written before issue 13 (separate ``pooling`` and solver knobs)."""
    p = json.loads(text)
    if isinstance(p["lambdas"], list):
        p["lambdas"] = tuple(p["lambdas"])
    if "pooling" in p:
        p["lambdas"] = tuple(p["lambdas"]) + (p.pop("pooling"),)
    old = {k: p.pop(k) for k in _OLD_SOLVER_OPTIONS if k in p}
    if old:
        p["solver_options"] = old
    return p


def _version():
    from . import __version__
    return __version__


def atomic_to_netcdf(ds, path):
    """Write ``ds`` to ``path`` (netCDF4) through a temporary file in the same
    folder renamed over ``path``, so a failure never leaves a half-written
    file."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"Cannot write {path!r}: folder {folder!r} does not exist. "
                                "Create it first.")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".licchie-", suffix=".nc.part")
    os.close(fd)
    try:
        ds.to_netcdf(tmp, engine="netcdf4", format="NETCDF4")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
