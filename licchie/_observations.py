"""The compact, frame-grouped observation list every kernel works on.

A recording is stored as a flat list of *observations* (a cell seen in a
frame), grouped by frame in CSR style.  Memory therefore grows with the number
of observations, never with cells x frames, and cells need no track identity.

Frames are (session, time-index) combinations.  Frame ``f`` holds the
observations ``frame_ptr[f]:frame_ptr[f+1]``; ``prev_frame[f]`` is the frame
of the same session one time step earlier, or -1.  Frames of different
sessions never pair because ``prev_frame`` never crosses a session.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


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
