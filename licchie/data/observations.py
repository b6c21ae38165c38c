"""The compact, frame-grouped observation list every kernel works on.

A recording is stored as a flat list of *observations* (a cell seen in a
frame), grouped by frame in CSR style.  Memory therefore grows with the number
of observations, never with cells x frames, and cells need no track identity.

Frames are (session, time-index) combinations.  Frame ``f`` holds the
observations ``frame_ptr[f]:frame_ptr[f+1]``; ``prev_frame[f]`` is the frame
of the same session one time step earlier, or -1.  Frames of different
sessions never pair because ``prev_frame`` never crosses a session.

Both constructors (a Dataset, :mod:`.datasets`; a table, :mod:`.tables`) end
here: :func:`_select_observed` applies the rules of MODEL.md "Data" (which rows
are observations) and :func:`_assemble` sorts the observed rows into frames.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._util import _fmt, _warn


@dataclass(frozen=True)
class Observations:
    """Plain-array view of one or more recordings (sessions).

    Attributes
    ----------
    features : ndarray, shape (n_obs, d), float64, C-contiguous
        Feature vector of each observation.  Finite for every feature of the
        observation's population (NaN only for features that the population
        does not have).
    positions : ndarray, shape (n_obs, s), float64, C-contiguous, s in {2, 3}
    cell : ndarray, shape (n_obs,), int64
        Index into ``cell_ids``.  Cells are unique across sessions.
    frame : ndarray, shape (n_obs,), int64
        Global frame index of each observation (non-decreasing).
    frame_ptr : ndarray, shape (n_frames + 1,), int64
    prev_frame : ndarray, shape (n_frames,), int64
    frame_session : ndarray, shape (n_frames,), int64
    frame_time_index : ndarray, shape (n_frames,), int64
        Position of the frame along its session's time axis.
    cell_population : ndarray, shape (n_cells,), int64
        Index into ``population_names``.
    cell_ids : ndarray, shape (n_cells,)
        The user's cell labels (ints or strings).
    time_values : list of ndarray
        ``time_values[s][k]`` is the user's time label of time index ``k`` in
        session ``s``.
    feature_names, space_names, population_names, session_names : tuple of str
    has_identity : bool
        False when cells carry no track identity (every observation its own
        cell): there are then no self pairs.
    """

    features: np.ndarray
    positions: np.ndarray
    cell: np.ndarray
    frame: np.ndarray
    frame_ptr: np.ndarray
    prev_frame: np.ndarray
    frame_session: np.ndarray
    frame_time_index: np.ndarray
    cell_population: np.ndarray
    cell_ids: np.ndarray
    time_values: list = field(default_factory=list)
    feature_names: tuple = ()
    space_names: tuple = ()
    population_names: tuple = ()
    session_names: tuple = ()
    has_identity: bool = True

    @property
    def n_obs(self) -> int:
        return self.features.shape[0]

    @property
    def n_features(self) -> int:
        return self.features.shape[1]

    @property
    def n_frames(self) -> int:
        return self.frame_ptr.shape[0] - 1

    @property
    def population(self) -> np.ndarray:
        """Population index of each observation, shape (n_obs,)."""
        return self.cell_population[self.cell]

    @property
    def session(self) -> np.ndarray:
        """Session index of each observation, shape (n_obs,)."""
        return self.frame_session[self.frame]

    @property
    def time_index(self) -> np.ndarray:
        """Time index (within its session) of each observation, shape (n_obs,)."""
        return self.frame_time_index[self.frame]


def _select_observed(features, positions, row_population, n_populations,
                     feature_names, where):
    """Decide which rows are observations (MODEL.md "Data").

    Parameters
    ----------
    features : ndarray, shape (N, d), float64
    positions : ndarray, shape (N, s), float64
    row_population : ndarray, shape (N,), int64
        Population index of each row.
    n_populations : int
    feature_names : sequence of str, length d
    where : str
        Names the input in messages ("Dataset", "table").

    Returns
    -------
    observed : ndarray, shape (N,), bool
    keep_features : ndarray, shape (d,), bool
        Features that at least one population has; the others are dropped.
    population_features : ndarray, shape (n_populations, d_kept), bool
        Which of the kept features each population has.
    """
    finite = np.isfinite(features)
    # Warnings point at the user's call: _warn <- here <- *_observations <-
    # Recording.from_* <- user, hence stacklevel=5.
    # A population's features are those ever finite for one of its cells,
    # whatever its positions; populations are few, so loop over them.
    has = np.zeros((n_populations, features.shape[1]), dtype=bool)
    for p in range(n_populations):
        has[p] = finite[row_population == p].any(axis=0)

    keep = has.any(axis=0)
    if not keep.all():
        dropped = [feature_names[j] for j in np.flatnonzero(~keep)]
        _warn(f"Feature(s) {_fmt(dropped)} of the {where} are never finite for "
              f"any cell; they are dropped.  Remove them from the {where} to "
              "silence this warning.", stacklevel=5)
        has = has[:, keep]
        finite = finite[:, keep]

    # Population-specific feature sets (MODEL.md "Populations"): each row
    # needs only its own population's features; the others stay NaN.
    needed = has[row_population]
    features_ok = (finite | ~needed).all(axis=1)
    positions_finite = np.isfinite(positions)
    observed = features_ok & positions_finite.all(axis=1)

    partial = ~observed & (finite.any(axis=1) | positions_finite.any(axis=1))
    n_partial = int(partial.sum())
    if n_partial:
        _warn(f"{n_partial} cell-time entries of the {where} have some but not "
              "all of their position and population features finite; they are "
              "treated as not observed (dropped).  Impute or remove the missing "
              "values first if these observations matter.", stacklevel=5)
    return observed, keep, has


def _assemble(row_session, row_time, row_cell, features, positions, rows,
              n_times, *, cell_ids, cell_population, time_values,
              feature_names, space_names, population_names, session_names,
              has_identity):
    """Sort the observed rows into the frame-grouped :class:`Observations`.

    Parameters
    ----------
    row_session, row_time, row_cell : ndarray, shape (N,), int64
        Session, time index within the session, and cell index of every
        candidate row.
    features : ndarray, shape (N, d);  positions : ndarray, shape (N, s)
    rows : ndarray, shape (n_obs,), int64
        Indices of the observed rows.
    n_times : ndarray, shape (n_sessions,), int64
        Number of time indices of each session; every time index gets a
        frame, observed or not, so that a missing frame stays a gap.

    Returns
    -------
    obs : Observations
    order : ndarray, shape (n_obs,), int64
        Row index of each observation, in observation order.
    """
    frame_offset = np.zeros(len(n_times) + 1, dtype=np.int64)
    np.cumsum(n_times, out=frame_offset[1:])
    n_frames = int(frame_offset[-1])

    frame = frame_offset[row_session[rows]] + row_time[rows]
    # Session-major, then time index (both in `frame`), then cell index.
    sort = np.lexsort((row_cell[rows], frame))
    order = rows[sort]
    frame = frame[sort]

    frame_ptr = np.zeros(n_frames + 1, dtype=np.int64)
    np.cumsum(np.bincount(frame, minlength=n_frames), out=frame_ptr[1:])
    frame_session = np.repeat(np.arange(len(n_times), dtype=np.int64), n_times)
    frame_time_index = np.arange(n_frames, dtype=np.int64) - frame_offset[frame_session]
    prev_frame = np.arange(n_frames, dtype=np.int64) - 1
    prev_frame[frame_time_index == 0] = -1

    d = features.shape[1]
    obs = Observations(
        features=np.ascontiguousarray(features[order], dtype=np.float64).reshape(len(order), d),
        positions=np.ascontiguousarray(positions[order], dtype=np.float64).reshape(len(order), positions.shape[1]),
        cell=np.ascontiguousarray(row_cell[order], dtype=np.int64),
        frame=frame.astype(np.int64, copy=False),
        frame_ptr=frame_ptr,
        prev_frame=prev_frame,
        frame_session=frame_session,
        frame_time_index=frame_time_index,
        cell_population=np.asarray(cell_population, dtype=np.int64),
        cell_ids=np.asarray(cell_ids),
        time_values=[np.asarray(tv) for tv in time_values],
        feature_names=tuple(str(f) for f in feature_names),
        space_names=tuple(space_names),
        population_names=tuple(str(p) for p in population_names),
        session_names=tuple(session_names),
        has_identity=bool(has_identity),
    )
    return obs, order
