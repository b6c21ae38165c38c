"""The labeled Dataset of MODEL.md "Data", in and out of a Recording.

:func:`dataset_observations` checks a Dataset against MODEL.md before any
work and turns it into :class:`~licchie.data.Observations` plus the labels a
:class:`~licchie.data.Recording` keeps; :func:`recording_to_dataset` goes
back to the dense Dataset.  :meth:`Recording.from_dataset` and
:meth:`Recording.to_dataset` are the public entry points.
"""
from __future__ import annotations

import difflib

import numpy as np
import pandas as pd
import xarray as xr

from ._util import (_SPACE_NAMES, _factorize, _first_duplicates, _fmt, _label_array, _py,
                    _session_name)
from .observations import _assemble, _select_observed

# Estimated size above which to_dataset refuses to build the dense arrays: a
# sparse recording (e.g. one without track identity) can be tiny as a list of
# observations and enormous as cells x frames.
_DENSE_LIMIT_BYTES = 2 * 1024**3


def dataset_observations(ds, session=None):
    """Observations and Recording labels of a MODEL.md Dataset.

    Parameters
    ----------
    ds : xarray.Dataset
        See :meth:`Recording.from_dataset`.
    session : hashable, optional
        Label of the single session of a Dataset without a ``session``
        coordinate.

    Returns
    -------
    obs : Observations
        Every cell of ``ds`` (observed or not); features as float64.
    labels : dict
        ``cell_session``, ``session_labels``, ``population_labels`` and
        ``feature_labels``: the keyword arguments of :class:`Recording`.
    """
    if not isinstance(ds, xr.Dataset):
        hint = (" Use Recording.from_table for a DataFrame." if isinstance(ds, pd.DataFrame)
                else " Wrap a DataArray with .to_dataset(name=...) and add the other variables."
                if isinstance(ds, xr.DataArray) else "")
        raise TypeError(f"from_dataset needs an xarray.Dataset, got {type(ds).__name__}.{hint}")

    feats, pos, pop = _validated_variables(ds)
    cell_labels = ds["cell"].to_numpy()
    time_labels = ds["time"].to_numpy()
    space = [str(s) for s in ds["space"].to_numpy()]
    # Reorder space to x, y[, z] (validated to be exactly that set).
    space_order = [space.index(name) for name in _SPACE_NAMES[:len(space)]]

    cell_session, session_labels = _dataset_sessions(ds, session)
    pop_codes, pop_labels = _factorize(pop)

    n_cells, n_times, d = feats.shape
    features = np.asarray(feats, dtype=np.float64).reshape(n_cells * n_times, d)
    positions = np.asarray(pos, dtype=np.float64)[:, :, space_order].reshape(
        n_cells * n_times, len(space))
    row_cell = np.repeat(np.arange(n_cells, dtype=np.int64), n_times)
    row_time = np.tile(np.arange(n_times, dtype=np.int64), n_cells)

    feature_labels = ds["feature"].to_numpy()
    feature_names = [str(f) for f in feature_labels]
    observed, keep, _ = _select_observed(
        features, positions, pop_codes[row_cell], len(pop_labels), feature_names, "Dataset")
    if not keep.all():
        features = features[:, keep]
        feature_labels = feature_labels[keep]
        feature_names = [f for f, k in zip(feature_names, keep) if k]

    n_sessions = len(session_labels)
    obs, _ = _assemble(
        cell_session[row_cell], row_time, row_cell, features, positions,
        np.flatnonzero(observed), np.full(n_sessions, n_times, dtype=np.int64),
        cell_ids=cell_labels, cell_population=pop_codes,
        time_values=[time_labels] * n_sessions,
        feature_names=feature_names, space_names=_SPACE_NAMES[:len(space)],
        population_names=pop_labels,
        session_names=[_session_name(s) for s in session_labels],
        has_identity=True)
    return obs, dict(cell_session=cell_session, session_labels=session_labels,
                     population_labels=pop_labels, feature_labels=feature_labels)


def recording_to_dataset(rec, session=None):
    """The dense MODEL.md Dataset of ``rec``; see :meth:`Recording.to_dataset`.

    Parameters
    ----------
    rec : Recording
    session : label or list of labels, optional

    Returns
    -------
    xarray.Dataset
    """
    obs = rec.obs
    sessions = _select_sessions(rec, session)
    time, time_offset = _time_axis(rec, sessions)

    in_sel = np.zeros(rec.n_sessions, dtype=bool)
    in_sel[sessions] = True
    cells = np.flatnonzero(in_sel[rec._cell_session])
    n_cells, n_times = len(cells), len(time)
    d, s = obs.n_features, len(obs.space_names)
    nbytes = 8 * n_cells * n_times * (d + s)
    if nbytes > _DENSE_LIMIT_BYTES:
        raise ValueError(
            f"to_dataset would allocate {nbytes / 1024**3:.1f} GiB for dense "
            f"({n_cells:,} cells x {n_times:,} times) arrays, although the recording "
            f"holds only {obs.n_obs:,} observations.  Select fewer sessions with "
            "to_dataset(session=...), or work with the observation list rec.obs.")

    cell_pos = np.full(rec.n_cells, -1, dtype=np.int64)
    cell_pos[cells] = np.arange(n_cells)
    sel_obs = np.flatnonzero(in_sel[obs.session])
    obs_cell = cell_pos[obs.cell[sel_obs]]
    obs_time = time_offset[obs.session[sel_obs]] + obs.time_index[sel_obs]

    feats = np.full((n_cells, n_times, d), np.nan)
    pos = np.full((n_cells, n_times, s), np.nan)
    feats[obs_cell, obs_time] = obs.features[sel_obs]
    pos[obs_cell, obs_time] = obs.positions[sel_obs]

    cell_ids = np.asarray(obs.cell_ids)[cells]
    if len(_first_duplicates(cell_ids)):
        # Track ids restart in every session; make the labels unique.
        cell_ids = np.array([f"{rec.session_names[cs]}/{_py(c)}" for c, cs
                             in zip(cell_ids, rec._cell_session[cells])])
    coords = {"cell": cell_ids, "time": time, "feature": rec._feature_labels,
              "space": list(obs.space_names)}
    labeled = not (rec.n_sessions == 1 and rec._session_labels[0] is None)
    if labeled:
        coords["session"] = ("cell", _label_array(rec._session_labels)[rec._cell_session[cells]])
    return xr.Dataset(
        {"features": (("cell", "time", "feature"), feats),
         "position": (("cell", "time", "space"), pos),
         "population": ("cell", rec._population_labels[obs.cell_population[cells]])},
        coords=coords)


def _select_sessions(rec, session):
    if session is None:
        return np.arange(rec.n_sessions)
    wanted = session if isinstance(session, (list, tuple, np.ndarray)) else [session]
    out = []
    for w in wanted:
        hits = [k for k, (lab, name) in enumerate(zip(rec._session_labels, rec.session_names))
                if (lab is not None and lab == w) or name == str(w)]
        if not hits:
            raise ValueError(f"No session {w!r}; the sessions are {_fmt(rec.session_names, 10)}.")
        out.append(hits[0])
    return np.array(sorted(set(out)), dtype=np.int64)


def _time_axis(rec, sessions):
    """Shared time coordinate of ``sessions`` and each session's offset in it."""
    tvs = [np.asarray(rec.obs.time_values[k]) for k in sessions]
    offsets = np.zeros(rec.n_sessions, dtype=np.int64)
    if all(len(tv) == len(tvs[0]) and np.array_equal(tv, tvs[0]) for tv in tvs):
        return tvs[0], offsets
    try:
        union = np.unique(np.concatenate(tvs))
    except TypeError:
        union = None
    for k, tv in zip(sessions, tvs):
        start = 0 if union is None or not len(tv) else int(np.searchsorted(union, tv[0]))
        if union is None or not np.array_equal(union[start:start + len(tv)], tv):
            raise ValueError(
                "Sessions have different time labels that do not fit one time axis "
                f"(session {rec.session_names[k]!r} is not a consecutive run of their "
                "sorted union).  Convert one session at a time: "
                "[rec.to_dataset(session=s) for s in rec.session_names].")
        offsets[k] = start
    return union, offsets


_EXPECTED = {
    "features": ("cell", "time", "feature"),
    "position": ("cell", "time", "space"),
    "population": ("cell",),
}


def _validated_variables(ds):
    """Check ``ds`` against MODEL.md "Data" before any work.

    Returns
    -------
    features : ndarray, shape (n_cells, n_times, d)
    position : ndarray, shape (n_cells, n_times, s)
    population : ndarray, shape (n_cells,)
    """
    for name, dims in _EXPECTED.items():
        if name not in ds:
            close = difflib.get_close_matches(name, [str(v) for v in ds.variables], n=3, cutoff=0.5)
            guess = f" Close names in the Dataset: {close}." if close else ""
            extra = (" Use Recording.from_table with population=None, or add one population: "
                     "ds['population'] = ('cell', ['all'] * ds.sizes['cell']).") if name == "population" else ""
            raise ValueError(
                f"Dataset is missing the {name!r} variable (dims {', '.join(dims)}).{guess} "
                f"Rename your {name} variable to {name!r}, e.g. ds.rename({{'yours': {name!r}}}).{extra}")
        got = ds[name].dims
        if set(got) != set(dims) or len(got) != len(dims):
            raise ValueError(
                f"Variable {name!r} has dims {got}, expected ({', '.join(dims)}) in any order.  "
                "Rename the dimensions with ds.rename_dims({...}) (or ds.rename) so that they "
                "are exactly these.")
    for dim in ("cell", "time", "feature", "space"):
        if dim not in ds.coords or ds.coords[dim].dims != (dim,):
            raise ValueError(
                f"Dataset has no {dim!r} coordinate (labels along dimension {dim!r}).  Add one, "
                f"e.g. ds = ds.assign_coords({dim}=np.arange(ds.sizes[{dim!r}]))"
                + (" or the feature names" if dim == "feature" else "")
                + (" = ['x', 'y'] or ['x', 'y', 'z']" if dim == "space" else "") + ".")
        dup = _first_duplicates(ds[dim].to_numpy())
        if len(dup):
            raise ValueError(
                f"Coordinate {dim!r} has duplicate labels {_fmt(dup)}; each {dim} label must be "
                f"unique.  Relabel, e.g. ds = ds.assign_coords({dim}=np.arange(ds.sizes[{dim!r}])), "
                f"or merge the duplicated entries.")
    space = [str(s) for s in ds["space"].to_numpy()]
    if len(space) not in (2, 3) or sorted(space) != sorted(_SPACE_NAMES[:len(space)]):
        raise ValueError(
            f"Coordinate 'space' is {space}; it must be ['x', 'y'] (2D) or ['x', 'y', 'z'] (3D).  "
            "Relabel with ds.assign_coords(space=['x', 'y'][, 'z']) or select the position axes "
            "with ds.sel(space=[...]).")

    feats = ds["features"].transpose(*_EXPECTED["features"])
    pos = ds["position"].transpose(*_EXPECTED["position"])
    pop = ds["population"].transpose(*_EXPECTED["population"]).to_numpy()
    for name, var in (("features", feats), ("position", pos)):
        if var.dtype.kind not in "biuf":
            raise TypeError(
                f"Variable {name!r} has dtype {var.dtype}; it must be numeric.  Encode "
                "categorical values as numbers or drop them, and use NaN for missing values.")
        values = var.to_numpy()
        if values.dtype.kind == "f":
            inf = np.isinf(values)
            n_inf = int(inf.sum())
            if n_inf:
                where = np.argwhere(inf)[0]
                example = ", ".join(f"{dim} {_py(ds[dim].to_numpy()[i])!r}"
                                    for dim, i in zip(var.dims, where))
                raise ValueError(
                    f"Variable {name!r} has {n_inf} infinite value(s) (e.g. at {example}).  "
                    "Infinite values are not allowed; NaN means 'not observed'.  Replace them, "
                    f"e.g. ds[{name!r}] = ds[{name!r}].where(np.isfinite(ds[{name!r}])).")
    missing = pd.isna(pop)
    if missing.any():
        raise ValueError(
            f"Variable 'population' is missing for {int(missing.sum())} cell(s) (e.g. cell "
            f"{_py(ds['cell'].to_numpy()[np.argmax(missing)])!r}).  Give every cell a population "
            "label, e.g. ds['population'] = ds['population'].fillna('unknown').")
    return feats.to_numpy(), pos.to_numpy(), pop


def _dataset_sessions(ds, session):
    """Session index of every cell and the session labels."""
    n_cells = ds.sizes["cell"]
    if "session" not in ds:
        return np.zeros(n_cells, dtype=np.int64), [session]
    if session is not None:
        raise ValueError(
            f"session={session!r} labels a single-session Dataset, but this Dataset already has "
            "a 'session' coordinate.  Pass session=None, or drop the coordinate with "
            "ds.drop_vars('session').")
    var = ds["session"]
    if var.dims != ("cell",):
        raise ValueError(
            f"'session' has dims {var.dims}; it must be a coordinate on 'cell' giving each "
            "cell's session, e.g. ds.assign_coords(session=('cell', labels)).")
    values = var.to_numpy()
    missing = pd.isna(values)
    if missing.any():
        raise ValueError(
            f"'session' is missing for {int(missing.sum())} cell(s) (e.g. cell "
            f"{_py(ds['cell'].to_numpy()[np.argmax(missing)])!r}).  Give every cell a session label.")
    codes, labels = _factorize(values)
    return codes, [_py(v) for v in labels]

