"""Recordings: labeled cell observations, in and out of LICCHIE.

A :class:`Recording` wraps the plain-array :class:`~licchie._observations.Observations`
that every kernel consumes, and keeps the user's labels (cell ids, time
labels, feature, population and session names) so results can be labeled
again.  It is built from

- the labeled ``xarray.Dataset`` of MODEL.md "Data" (:meth:`Recording.from_dataset`),
- a long-format table, one row per observation, as trackers export it
  (:meth:`Recording.from_table`), which never builds a dense cells x frames
  array,
- several recordings, one session each (:meth:`Recording.concat`).

:func:`as_recording` accepts any of these and is what estimators call.

Rules (MODEL.md "Data"): a cell is observed at a time iff its position and
all the features of its population are finite there; a population's features
are those ever finite for one of its cells.  NaN means "not observed"; an
infinite value is an error.  Frames of different sessions never pair.
"""
from __future__ import annotations

import difflib
import os
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from ._observations import Observations

__all__ = ["Recording", "as_recording", "from_dataset", "from_table"]

# Estimated size above which to_dataset refuses to build the dense arrays: a
# sparse recording (e.g. one without track identity) can be tiny as a list of
# observations and enormous as cells x frames.
_DENSE_LIMIT_BYTES = 2 * 1024**3

# A table's frames run from each session's first to its last frame value, so
# that gaps stay gaps; timestamps or sparse ids as "frames" would create
# billions of empty frames.  Past this many frames per table row we stop.
_MAX_FRAMES_PER_ROW = 50
_MAX_FRAMES_FREE = 1_000_000

_SPACE_NAMES = ("x", "y", "z")


# --------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------

def _factorize(values):
    """Codes and uniques of ``values``, uniques sorted when they can be.

    Sorting makes the result independent of row order; labels of mixed types
    (ints and strings) cannot be sorted and keep their order of appearance.
    """
    try:
        codes, uniques = pd.factorize(values, sort=True)
    except TypeError:
        codes, uniques = pd.factorize(values, sort=False)
    return codes.astype(np.int64), np.asarray(uniques)


def _fmt(values, limit=5):
    """Short printable list of labels for error messages."""
    values = list(values)
    shown = ", ".join(repr(_py(v)) for v in values[:limit])
    if len(values) > limit:
        shown += f", ... ({len(values)} in all)"
    return "[" + shown + "]"


def _py(value):
    """Plain Python scalar (numpy scalars print as np.int64(3) otherwise)."""
    return value.item() if isinstance(value, np.generic) else value


def _first_duplicates(labels):
    labels = pd.Index(np.asarray(labels))
    return labels[labels.duplicated()].unique()


def _warn(message, stacklevel=3):
    warnings.warn(message, UserWarning, stacklevel=stacklevel)


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
              "silence this warning.", stacklevel=4)
        has = has[:, keep]
        finite = finite[:, keep]

    _check_uniform_feature_sets(has, [n for n, k in zip(feature_names, keep) if k])

    # Written for population-specific feature sets (each row needs only its
    # own population's features), so supporting them later only means
    # removing the check above.
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
              "values first if these observations matter.", stacklevel=4)
    return observed, keep, has


def _check_uniform_feature_sets(has, feature_names):
    """Raise unless all populations with observations share one feature set.

    A population whose cells are never finite has no feature set at all and
    takes part in no pair, so it is left out of the comparison.
    """
    nonempty = has[has.any(axis=1)]
    if len(nonempty) and not (nonempty == nonempty[0]).all():
        sets = "; ".join(
            f"population {p}: {_fmt([feature_names[j] for j in np.flatnonzero(row)], 8)}"
            for p, row in enumerate(has) if row.any())
        raise NotImplementedError(
            "Populations with different feature sets (MODEL.md 'Populations') "
            "are not supported yet; " + sets + ".  Keep only the features that "
            "every population has, or fit each population separately.")


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


def _session_name(label, index=0):
    return str(index) if label is None else str(label)


# --------------------------------------------------------------------------
# Recording
# --------------------------------------------------------------------------

class Recording:
    """Cells observed over time in one or more sessions, with their labels.

    Holds the compact observation list ``obs`` (an
    :class:`~licchie._observations.Observations`, grouped by frame), whose
    memory grows with the number of observations, never with cells x frames.
    Build one with :meth:`from_dataset`, :meth:`from_table`, :meth:`concat`
    or :func:`as_recording`; :meth:`to_dataset` goes back to the labeled
    Dataset of MODEL.md.

    Parameters
    ----------
    obs : Observations
        Used as is (not validated beyond shapes).
    cell_session : ndarray, shape (n_cells,), int64, optional
        Session of every cell, needed for cells without any observation.
        Derived from ``obs`` when omitted (unobserved cells go to session 0).
    session_labels : sequence, length n_sessions, optional
        The user's session labels (any hashable; ``None`` for the single
        session of an unlabeled recording).  Default: ``obs.session_names``.
    population_labels : array-like, shape (n_populations,), optional
        The user's population labels with their original type.
        Default: ``obs.population_names``.
    feature_labels : array-like, shape (n_features,), optional
        The user's feature coordinate with its original type.
        Default: ``obs.feature_names``.

    Attributes
    ----------
    obs : Observations
    """

    def __init__(self, obs, *, cell_session=None, session_labels=None,
                 population_labels=None, feature_labels=None):
        if not isinstance(obs, Observations):
            raise TypeError(
                f"Recording(obs) needs an Observations, got {type(obs).__name__}. "
                "Use as_recording(data), Recording.from_dataset(ds) or "
                "Recording.from_table(df) to build one from your data.")
        n_cells = len(obs.cell_ids)
        if cell_session is None:
            cell_session = np.zeros(n_cells, dtype=np.int64)
            cell_session[obs.cell] = obs.session
        self.obs = obs
        self._cell_session = np.asarray(cell_session, dtype=np.int64)
        self._session_labels = list(obs.session_names if session_labels is None
                                    else session_labels)
        self._population_labels = np.asarray(obs.population_names if population_labels is None
                                             else population_labels)
        self._feature_labels = np.asarray(obs.feature_names if feature_labels is None
                                          else feature_labels)
        if (self._cell_session.shape != (n_cells,)
                or len(self._session_labels) != len(obs.session_names)
                or len(self._population_labels) != len(obs.population_names)
                or len(self._feature_labels) != obs.n_features):
            raise ValueError(
                "Recording labels do not match obs: need cell_session of shape "
                f"({n_cells},), {len(obs.session_names)} session labels, "
                f"{len(obs.population_names)} population labels and "
                f"{obs.n_features} feature labels.")

    # -- summaries -----------------------------------------------------------
    @property
    def n_obs(self) -> int:
        """Number of observations (a cell seen in a frame)."""
        return self.obs.n_obs

    @property
    def n_cells(self) -> int:
        """Number of cells, over all sessions (including never-observed cells)."""
        return len(self.obs.cell_ids)

    @property
    def n_frames(self) -> int:
        """Number of frames (session, time index), over all sessions."""
        return self.obs.n_frames

    @property
    def n_features(self) -> int:
        return self.obs.n_features

    @property
    def n_sessions(self) -> int:
        return len(self.obs.session_names)

    @property
    def feature_names(self) -> tuple:
        return self.obs.feature_names

    @property
    def space_names(self) -> tuple:
        return self.obs.space_names

    @property
    def population_names(self) -> tuple:
        """Population names as strings (``str`` of the user's labels)."""
        return self.obs.population_names

    @property
    def session_names(self) -> tuple:
        """Session names as strings; ``'0'`` for an unlabeled recording."""
        return self.obs.session_names

    @property
    def has_identity(self) -> bool:
        return self.obs.has_identity

    def __repr__(self) -> str:
        pops = ", ".join(self.population_names[:4])
        if len(self.population_names) > 4:
            pops += ", ..."
        return (f"<Recording: {self.n_obs:,} observations of {self.n_cells:,} cells "
                f"in {self.n_frames:,} frames ({self.n_sessions} session"
                f"{'s' if self.n_sessions != 1 else ''}), {self.n_features} features, "
                f"{len(self.space_names)}D, populations [{pops}]"
                f"{'' if self.has_identity else ', no track identity'}>")

    # -- constructors --------------------------------------------------------
    @classmethod
    def from_dataset(cls, ds, session=None):
        """Build a Recording from the labeled Dataset of MODEL.md "Data".

        Parameters
        ----------
        ds : xarray.Dataset
            With ``features (cell, time, feature)``, ``position (cell, time,
            space)`` and ``population (cell)`` (dimensions in any order), and
            coordinates ``cell``, ``time``, ``feature`` and ``space``
            (``'x', 'y'[, 'z']``).  An optional ``session`` coordinate on
            ``cell`` splits the cells into sessions; every session gets a
            frame for every time label, and frames of different sessions
            never pair.  NaN means "not observed"; infinite values are an
            error.  Other variables are ignored.
        session : hashable, optional
            Label of the single session, for a Dataset without a ``session``
            coordinate (useful before :meth:`concat`).

        Returns
        -------
        Recording
            Features and positions are stored as float64.  All cells of the
            Dataset are kept, observed or not.  Features that are never
            finite are dropped (with a warning).

        Raises
        ------
        TypeError, ValueError
            For a malformed Dataset; the message says how to fix it.
        NotImplementedError
            When populations have different feature sets.
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
        return cls(obs, cell_session=cell_session, session_labels=session_labels,
                   population_labels=pop_labels, feature_labels=feature_labels)

    @classmethod
    def from_table(cls, df, *, cell="cell", frame="frame", position=None,
                   features=None, population="population", session=None,
                   time_values=None):
        """Build a Recording from a long table, one row per observation.

        This is the layout trackers export (TrackMate spot tables, Imaris,
        BEHAV3D).  Memory grows with the number of rows, never with cells x
        frames.

        Parameters
        ----------
        df : pandas.DataFrame, shape (n_rows, ...)
        cell : str or None, default "cell"
            Column of track ids.  ``None``: no track identity, every observed
            row is its own cell (ids ``0..n_obs-1``, in observation order)
            and there are no self pairs.
        frame : str, default "frame"
            Column of integer frame numbers.  Within a session, the time
            index is the frame number minus the session's first frame, so a
            missing frame stays a gap: frame ``f`` pairs only with frame
            ``f - 1`` of the same session.
        position : sequence of 2 or 3 str, optional
            Position columns, in x, y[, z] order.  Default ``("x", "y", "z")``
            when the table has a ``z`` column, else ``("x", "y")``.
        features : sequence of str, optional
            Feature columns.  Default: every numeric (non-boolean) column not
            used above.
        population : str or None, default "population"
            Column of population labels, constant per cell.  ``None``: one
            population named ``"all"``.
        session : str, optional
            Column of session labels (recordings); frames of different
            sessions never pair and track ids may repeat across sessions.
        time_values : str, mapping, callable or None
            Time labels of the frames (``Observations.time_values``).
            ``None``: the frame numbers.  A column name: that column's value
            (must be constant within a session's frame; frames without rows
            get NaN).  A mapping (dict, Series) frame -> label, or a callable
            taking an int64 array of frame numbers and returning labels.

        Returns
        -------
        Recording
            Rows with a non-finite position or population feature are not
            observations (a warning gives their number).  With identity, the
            cells are every (session, cell id) of the table, sorted by
            session and id.
        """
        if not isinstance(df, pd.DataFrame):
            hint = (" Use Recording.from_dataset for an xarray Dataset."
                    if isinstance(df, xr.Dataset) else "")
            raise TypeError(f"from_table needs a pandas DataFrame, got {type(df).__name__}.{hint}")
        position = _table_position(df, position)
        tv_column = time_values if isinstance(time_values, str) else None
        features = _table_columns_check(df, cell=cell, frame=frame, position=position,
                                        features=features, population=population,
                                        session=session, tv_column=tv_column)
        n_rows = len(df)
        if n_rows == 0:
            raise ValueError("The table has no rows; a Recording needs at least one observation.")

        frames = _table_frames(df, frame)
        sess_codes, session_labels = _table_labels(df, session, "session", n_rows)
        pop_codes, pop_labels = _table_labels(df, population, "population", n_rows)
        if population is None:
            pop_labels = np.asarray(["all"])

        feature_values = _table_numeric(df, features, "feature")
        positions = _table_numeric(df, list(position), "position")

        # Every frame from a session's first to its last gets a frame.
        n_sessions = len(session_labels)
        first = np.full(n_sessions, np.iinfo(np.int64).max, dtype=np.int64)
        last = np.full(n_sessions, np.iinfo(np.int64).min, dtype=np.int64)
        np.minimum.at(first, sess_codes, frames)
        np.maximum.at(last, sess_codes, frames)
        n_times = last - first + 1
        total = int(n_times.sum()) if n_rows else 0
        if total > _MAX_FRAMES_FREE + _MAX_FRAMES_PER_ROW * n_rows:
            s = int(np.argmax(n_times))
            raise ValueError(
                f"Column {frame!r} spans {total:,} frames in all for only {n_rows:,} rows "
                f"(session {_py(session_labels[s])!r}: frames {first[s]} to {last[s]}).  "
                "Frames must be consecutive integers (frame f pairs with f - 1).  If the "
                "column holds timestamps or sparse ids, rank them first, e.g. "
                f"df[{frame!r}] = df.groupby(session)[{frame!r}].rank(method='dense')"
                ".astype(int) - 1, and pass the timestamps as time_values.")
        row_time = frames - first[sess_codes]

        if cell is not None:
            row_cell, cell_ids, cell_session = _table_cells(df, cell, sess_codes, n_sessions)
            # Duplicates first: a placeholder id such as TrackMate's 'None'
            # also mixes populations, and the duplicate message names it.
            _table_no_duplicates(row_cell, frames, cell_ids, cell_session,
                                 session_labels, cell, frame, session)
            cell_population = _table_cell_population(
                row_cell, pop_codes, len(cell_ids), cell_ids, cell, pop_labels)
        else:
            row_cell = np.arange(n_rows, dtype=np.int64)

        tv = _table_time_values(df, time_values, tv_column, sess_codes, row_time,
                                first, n_times, frame)

        feature_names = [str(f) for f in features]
        observed, keep, _ = _select_observed(
            feature_values, positions, pop_codes, len(pop_labels), feature_names, "table")
        feature_labels = np.asarray(features, dtype=object)
        if not keep.all():
            feature_values = feature_values[:, keep]
            feature_labels = feature_labels[keep]
            feature_names = [f for f, k in zip(feature_names, keep) if k]

        common = dict(time_values=tv, feature_names=feature_names,
                      space_names=_SPACE_NAMES[:len(position)],
                      population_names=pop_labels,
                      session_names=[_session_name(s) for s in session_labels])
        rows = np.flatnonzero(observed)
        if cell is not None:
            obs, _ = _assemble(sess_codes, row_time, row_cell, feature_values, positions,
                               rows, n_times, cell_ids=cell_ids,
                               cell_population=cell_population, has_identity=True, **common)
        else:
            # Sort first (by row within a frame), then make each observation
            # its own cell, numbered in observation order.
            obs, order = _assemble(sess_codes, row_time, row_cell, feature_values, positions,
                                   rows, n_times, cell_ids=np.zeros(0, dtype=np.int64),
                                   cell_population=np.zeros(0, dtype=np.int64),
                                   has_identity=False, **common)
            n_obs = len(order)
            cell_session = sess_codes[order]
            obs = _replace(obs, cell=np.arange(n_obs, dtype=np.int64),
                           cell_ids=np.arange(n_obs, dtype=np.int64),
                           cell_population=pop_codes[order].astype(np.int64))
        return cls(obs, cell_session=cell_session, session_labels=session_labels,
                   population_labels=pop_labels, feature_labels=feature_labels)

    @classmethod
    def concat(cls, recordings, names=None):
        """Join recordings as sessions of one Recording.

        Parameters
        ----------
        recordings : sequence
            Recordings, or anything :func:`as_recording` accepts.  They must
            have the same features (any order) and the same space.
        names : sequence, optional
            New session labels, one per session of the result (in order).
            By default each recording keeps its session labels, and an
            unlabeled recording is named by its position in ``recordings``.

        Returns
        -------
        Recording
            Sessions, frames and cells in the order of ``recordings``.
            ``has_identity`` is True if any input has identity: a cell
            without identity is seen once and gets no self pair either way.
        """
        if isinstance(recordings, (Recording, xr.Dataset, pd.DataFrame, Observations)):
            recordings = [recordings]
        recs = [r if isinstance(r, Recording) else as_recording(r) for r in recordings]
        if not recs:
            raise ValueError("concat needs at least one recording; got an empty list.")

        ref = recs[0]
        for i, r in enumerate(recs[1:], start=1):
            if r.space_names != ref.space_names:
                raise ValueError(
                    f"Recording {i} is {len(r.space_names)}D ({r.space_names}) but recording 0 "
                    f"is {len(ref.space_names)}D ({ref.space_names}); sessions must share "
                    "one space.  Drop the z position of the 3D ones or fit them separately.")
            if set(r.feature_names) != set(ref.feature_names):
                only_ref = sorted(set(ref.feature_names) - set(r.feature_names))
                only_r = sorted(set(r.feature_names) - set(ref.feature_names))
                raise ValueError(
                    f"Recordings 0 and {i} have different features (only in 0: {only_ref}; "
                    f"only in {i}: {only_r}).  Select the common features before "
                    "combining them.")

        labels = []
        for i, r in enumerate(recs):
            for lab in r._session_labels:
                labels.append(i if lab is None and r.n_sessions == 1 else lab)
        if names is not None:
            names = list(names)
            if len(names) != len(labels):
                raise ValueError(f"names has {len(names)} entries but the recordings have "
                                 f"{len(labels)} sessions in all; give one name per session.")
            labels = names
        str_labels = [_session_name(lab, k) for k, lab in enumerate(labels)]
        dup = _first_duplicates(str_labels)
        if len(dup):
            raise ValueError(
                f"Session names clash: {_fmt(dup)} occur more than once among "
                f"{_fmt(str_labels, 10)}.  Pass names=[...] with one distinct name per "
                "session to rename them.")

        # Populations: union by label, in order of first appearance.
        pop_index: dict = {}
        for r in recs:
            for lab in r._population_labels.tolist():
                pop_index.setdefault(lab, len(pop_index))
        pop_labels = _label_array(list(pop_index))

        parts = dict(features=[], positions=[], cell=[], frame=[], frame_ptr=[np.zeros(1, np.int64)],
                     prev_frame=[], frame_session=[], frame_time_index=[], cell_population=[],
                     cell_ids=[], cell_session=[])
        time_values = []
        cell_off = frame_off = obs_off = sess_off = 0
        for r in recs:
            o = r.obs
            cols = [r.feature_names.index(f) for f in ref.feature_names]
            parts["features"].append(o.features[:, cols])
            parts["positions"].append(o.positions)
            parts["cell"].append(o.cell + cell_off)
            parts["frame"].append(o.frame + frame_off)
            parts["frame_ptr"].append(o.frame_ptr[1:] + obs_off)
            parts["prev_frame"].append(np.where(o.prev_frame >= 0, o.prev_frame + frame_off, -1))
            parts["frame_session"].append(o.frame_session + sess_off)
            parts["frame_time_index"].append(o.frame_time_index)
            remap = np.array([pop_index[lab] for lab in r._population_labels.tolist()], dtype=np.int64)
            parts["cell_population"].append(remap[o.cell_population])
            parts["cell_ids"].append(np.asarray(o.cell_ids))
            parts["cell_session"].append(r._cell_session + sess_off)
            time_values.extend(o.time_values)
            cell_off += r.n_cells
            frame_off += o.n_frames
            obs_off += o.n_obs
            sess_off += r.n_sessions

        cat = {k: np.concatenate(v) for k, v in parts.items() if k != "cell_ids"}
        obs = Observations(
            features=np.ascontiguousarray(cat["features"], dtype=np.float64),
            positions=np.ascontiguousarray(cat["positions"], dtype=np.float64),
            cell=cat["cell"], frame=cat["frame"], frame_ptr=cat["frame_ptr"],
            prev_frame=cat["prev_frame"], frame_session=cat["frame_session"],
            frame_time_index=cat["frame_time_index"], cell_population=cat["cell_population"],
            cell_ids=_concat_labels(parts["cell_ids"]), time_values=time_values,
            feature_names=ref.feature_names, space_names=ref.space_names,
            population_names=tuple(str(p) for p in pop_labels),
            session_names=tuple(str_labels),
            has_identity=any(r.has_identity for r in recs))
        return cls(obs, cell_session=cat["cell_session"], session_labels=labels,
                   population_labels=pop_labels, feature_labels=ref._feature_labels)

    # -- back to labels --------------------------------------------------------
    def to_dataset(self, session=None):
        """The MODEL.md Dataset of this recording (dense: cells x time).

        Unlike the Recording, the Dataset stores every cell at every time, so
        it can be far larger (e.g. a table without track identity has one
        cell per observation); it refuses beyond about 2 GiB.

        Parameters
        ----------
        session : label or list of labels, optional
            Only these sessions (by label or by name).  Default: all.

        Returns
        -------
        xarray.Dataset
            ``features (cell, time, feature)`` and ``position (cell, time,
            space)`` as float64, NaN where not observed; ``population
            (cell)`` with the original labels; a ``session`` coordinate on
            ``cell`` when the recording has labeled sessions.  When sessions
            have different time labels, ``time`` is their sorted union; each
            session's labels must then be a consecutive run of it (frame
            numbers always are), otherwise select one session.  Cell labels
            repeated across sessions become ``"<session>/<cell>"``.
        """
        obs = self.obs
        sessions = self._select_sessions(session)
        time, time_offset = self._time_axis(sessions)

        in_sel = np.zeros(self.n_sessions, dtype=bool)
        in_sel[sessions] = True
        cells = np.flatnonzero(in_sel[self._cell_session])
        n_cells, n_times = len(cells), len(time)
        d, s = obs.n_features, len(obs.space_names)
        nbytes = 8 * n_cells * n_times * (d + s)
        if nbytes > _DENSE_LIMIT_BYTES:
            raise ValueError(
                f"to_dataset would allocate {nbytes / 1024**3:.1f} GiB for dense "
                f"({n_cells:,} cells x {n_times:,} times) arrays, although the recording "
                f"holds only {obs.n_obs:,} observations.  Select fewer sessions with "
                "to_dataset(session=...), or work with the observation list rec.obs.")

        cell_pos = np.full(self.n_cells, -1, dtype=np.int64)
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
            cell_ids = np.array([f"{self.session_names[cs]}/{_py(c)}" for c, cs
                                 in zip(cell_ids, self._cell_session[cells])])
        coords = {"cell": cell_ids, "time": time, "feature": self._feature_labels,
                  "space": list(obs.space_names)}
        labeled = not (self.n_sessions == 1 and self._session_labels[0] is None)
        if labeled:
            coords["session"] = ("cell", _label_array(self._session_labels)[self._cell_session[cells]])
        return xr.Dataset(
            {"features": (("cell", "time", "feature"), feats),
             "position": (("cell", "time", "space"), pos),
             "population": ("cell", self._population_labels[obs.cell_population[cells]])},
            coords=coords)

    def _select_sessions(self, session):
        if session is None:
            return np.arange(self.n_sessions)
        wanted = session if isinstance(session, (list, tuple, np.ndarray)) else [session]
        out = []
        for w in wanted:
            hits = [k for k, (lab, name) in enumerate(zip(self._session_labels, self.session_names))
                    if (lab is not None and lab == w) or name == str(w)]
            if not hits:
                raise ValueError(f"No session {w!r}; the sessions are {_fmt(self.session_names, 10)}.")
            out.append(hits[0])
        return np.array(sorted(set(out)), dtype=np.int64)

    def _time_axis(self, sessions):
        """Shared time coordinate of ``sessions`` and each session's offset in it."""
        tvs = [np.asarray(self.obs.time_values[k]) for k in sessions]
        offsets = np.zeros(self.n_sessions, dtype=np.int64)
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
                    f"(session {self.session_names[k]!r} is not a consecutive run of their "
                    "sorted union).  Convert one session at a time: "
                    "[rec.to_dataset(session=s) for s in rec.session_names].")
            offsets[k] = start
        return union, offsets


def _replace(obs, **changes):
    from dataclasses import replace
    return replace(obs, **changes)


def _label_array(labels):
    """1-D array of labels that keeps each label's type.

    ``np.asarray([0, "a"])`` would turn the int into a string, and a tuple
    label would become a row; both fall back to an object array.
    """
    labels = [_py(v) for v in labels]
    if len({type(v) for v in labels}) <= 1:
        typed = np.asarray(labels)
        if typed.ndim == 1:
            return typed
    arr = np.empty(len(labels), dtype=object)
    arr[:] = labels
    return arr


def _concat_labels(arrays):
    dtypes = {a.dtype for a in arrays}
    if len(dtypes) == 1:
        return np.concatenate(arrays)
    # Mixed label types (ints in one session, strings in another): keep each
    # label as it was rather than letting numpy stringify the ints.
    return np.concatenate([a.astype(object) for a in arrays])


# --------------------------------------------------------------------------
# Dataset validation
# --------------------------------------------------------------------------

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


# --------------------------------------------------------------------------
# Table helpers
# --------------------------------------------------------------------------

def _table_position(df, position):
    if position is None:
        position = ("x", "y", "z") if "z" in df.columns else ("x", "y")
    if isinstance(position, str):
        position = (position,)
    position = tuple(position)
    if len(position) not in (2, 3):
        raise ValueError(
            f"position={position!r} names {len(position)} column(s); give 2 (x, y) or 3 "
            "(x, y, z) position columns, e.g. position=('POSITION_X', 'POSITION_Y').")
    return position


def _close_columns(name, available):
    """Columns that probably mean ``name`` (trackers write POSITION_X for x)."""
    lower = {c.lower(): c for c in available}
    hits = [lower[c] for c in difflib.get_close_matches(name.lower(), list(lower), n=3, cutoff=0.6)]
    hits += [c for c in available if c.lower().endswith("_" + name.lower()) and c not in hits]
    return hits[:3]


def _missing_columns(df, wanted, what, argument):
    available = [str(c) for c in df.columns]
    for col in wanted:
        if col not in df.columns:
            close = _close_columns(str(col), available)
            guess = f" Close matches: {close}." if close else ""
            raise ValueError(
                f"The table has no {what} column {col!r}.{guess} Pass {argument}= naming your "
                f"column (the table has {_fmt(available, 12)}).")


def _table_columns_check(df, *, cell, frame, position, features, population, session, tv_column):
    """Check that the named columns exist; return the feature columns."""
    roles = [(cell, "cell (track id)", "cell"), (frame, "frame", "frame"),
             (population, "population", "population"), (session, "session", "session"),
             (tv_column, "time value", "time_values")]
    for col, what, arg in roles:
        if col is not None:
            if col == population and population == "population" and col not in df.columns:
                raise ValueError(
                    "The table has no population column 'population'.  Pass population=None "
                    "for one population, or population= naming your population column.")
            _missing_columns(df, [col], what, arg)
    _missing_columns(df, position, "position", "position")
    used = [c for c, _, _ in roles if c is not None] + list(position)
    if features is None:
        features = [c for c in df.columns if c not in used
                    and pd.api.types.is_numeric_dtype(df[c])
                    and not pd.api.types.is_bool_dtype(df[c])]
        if not features:
            raise ValueError(
                "The table has no numeric feature columns besides the cell, frame, position, "
                "population and session columns.  Pass features=[...] naming them.")
    else:
        features = [features] if isinstance(features, str) else list(features)
        _missing_columns(df, features, "feature", "features")
        both = [c for c in features if c in used]
        if both:
            raise ValueError(f"Column(s) {both} are used both as features and as another "
                             "role (cell, frame, position, ...); remove them from features=.")
    dup = _first_duplicates([c for c in df.columns if c in set(used) | set(features)])
    if len(dup):
        raise ValueError(f"The table has several columns named {_fmt(dup)}; rename them so "
                         "that each column name is unique.")
    return features


def _table_numeric(df, columns, what):
    bad = [c for c in columns if not pd.api.types.is_numeric_dtype(df[c])]
    if bad:
        raise TypeError(
            f"{what.capitalize()} column(s) {_fmt(bad)} are not numeric (dtype "
            f"{df[bad[0]].dtype}).  Convert them, e.g. df[col] = pd.to_numeric(df[col], "
            "errors='coerce') (unparseable entries become NaN, i.e. not observed), or "
            "leave them out of features=.")
    values = df[list(columns)].to_numpy(dtype=np.float64, na_value=np.nan)
    values = np.ascontiguousarray(values)
    inf = np.isinf(values)
    if inf.any():
        r, c = np.argwhere(inf)[0]
        raise ValueError(
            f"{what.capitalize()} column {columns[c]!r} has infinite values ({int(inf.sum())} "
            f"in the {what} columns, e.g. row {_py(df.index[r])!r}).  Infinite values are not "
            "allowed; NaN means 'not observed'.  Replace them, e.g. "
            "df = df.replace([np.inf, -np.inf], np.nan).")
    return values


def _table_frames(df, frame):
    col = df[frame]
    if pd.api.types.is_bool_dtype(col) or not pd.api.types.is_numeric_dtype(col):
        raise TypeError(
            f"Frame column {frame!r} has dtype {col.dtype}; frames must be integers.  Convert "
            f"it, e.g. df[{frame!r}] = pd.to_numeric(df[{frame!r}]).astype(int), or rank "
            f"timestamps: df[{frame!r}].rank(method='dense').astype(int) - 1.")
    if col.dtype.kind in "iu" and not col.isna().any():
        values = col.to_numpy(dtype=np.int64)
    else:
        values = col.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = ~np.isfinite(values)
        if bad.any():
            raise ValueError(
                f"Frame column {frame!r} has {int(bad.sum())} missing or infinite value(s) (e.g. "
                f"row {_py(df.index[np.argmax(bad)])!r}).  Drop those rows, e.g. "
                f"df = df.dropna(subset=[{frame!r}]).")
        frac = values != np.round(values)
        if frac.any():
            raise ValueError(
                f"Frame column {frame!r} has non-integer values (e.g. {values[np.argmax(frac)]!r}); "
                f"frames must be integers.  Round them (df[{frame!r}].round().astype(int)) or, "
                f"for timestamps, rank them: df[{frame!r}].rank(method='dense').astype(int) - 1 "
                "(and pass the timestamps as time_values).")
    return values.astype(np.int64)


def _table_labels(df, column, what, n_rows):
    if column is None:
        return np.zeros(n_rows, dtype=np.int64), [None] if what == "session" else np.asarray(["all"])
    values = df[column].to_numpy()
    missing = pd.isna(values)
    if missing.any():
        raise ValueError(
            f"{what.capitalize()} column {column!r} has {int(missing.sum())} missing value(s) "
            f"(e.g. row {_py(df.index[np.argmax(missing)])!r}).  Fill them "
            f"(df[{column!r}] = df[{column!r}].fillna('unknown')) or drop those rows.")
    codes, uniques = _factorize(values)
    if what == "session":
        return codes, [_py(v) for v in uniques]
    return codes, uniques


def _table_cells(df, cell, sess_codes, n_sessions):
    """Cell index per row: one cell per (session, track id), session-major."""
    values = df[cell].to_numpy()
    missing = pd.isna(values)
    if missing.any():
        raise ValueError(
            f"Cell column {cell!r} has {int(missing.sum())} missing value(s) (e.g. row "
            f"{_py(df.index[np.argmax(missing)])!r}), e.g. spots that are in no track.  Drop "
            f"them (df.dropna(subset=[{cell!r}])), or pass cell=None if the table has no "
            "track identity at all.")
    label_codes, labels = _factorize(values)
    key = sess_codes * max(len(labels), 1) + label_codes
    unique_keys, row_cell = np.unique(key, return_inverse=True)
    cell_ids = labels[unique_keys % max(len(labels), 1)]
    cell_session = (unique_keys // max(len(labels), 1)).astype(np.int64)
    return row_cell.astype(np.int64).ravel(), cell_ids, cell_session


def _table_cell_population(row_cell, pop_codes, n_cells, cell_ids, cell, pop_labels):
    cell_pop = np.zeros(n_cells, dtype=np.int64)
    cell_pop[row_cell] = pop_codes
    bad = cell_pop[row_cell] != pop_codes
    if bad.any():
        c = row_cell[np.argmax(bad)]
        pops = np.unique(pop_codes[row_cell == c])
        raise ValueError(
            f"Cell {_py(cell_ids[c])!r} (column {cell!r}) has several populations "
            f"{_fmt(pop_labels[pops])}; a cell's population must be the same in all its rows.  "
            "Fix the population labels, or split the track into separate cell ids.")
    return cell_pop


def _table_no_duplicates(row_cell, frames, cell_ids, cell_session, session_labels,
                         cell, frame, session):
    order = np.lexsort((frames, row_cell))
    c, f = row_cell[order], frames[order]
    dup = (c[1:] == c[:-1]) & (f[1:] == f[:-1])
    if not dup.any():
        return
    at = np.flatnonzero(dup)[:3] + 1
    examples = []
    for i in at:
        lab = f"cell {_py(cell_ids[c[i]])!r}, frame {f[i]}"
        if session is not None:
            lab = f"session {_py(session_labels[cell_session[c[i]]])!r}, " + lab
        examples.append("(" + lab + ")")
    missing_like = {str(_py(cell_ids[c[i]])).strip().lower() for i in at} & {"none", "nan", "", "na", "null"}
    hint = (f"  Ids such as {sorted(missing_like)} usually mark spots in no track (TrackMate "
            "writes 'None'); drop those rows or read the file with na_values=['None'] and then "
            "drop the missing ids." if missing_like else "")
    raise ValueError(
        f"{int(dup.sum())} row(s) repeat a (session, cell, frame) combination, e.g. "
        f"{', '.join(examples)}; each cell may be seen once per frame.{hint}  Remove the "
        f"duplicates (df.drop_duplicates(subset=[{cell!r}, {frame!r}]{' + [session]' if session else ''})), "
        "or pass cell=None if the ids are not track identities.")


def _table_time_values(df, time_values, tv_column, sess_codes, row_time, first, n_times, frame):
    """Time labels of every time index of every session."""
    frames_of = [np.arange(f, f + n, dtype=np.int64) for f, n in zip(first, n_times)]
    if time_values is None:
        return frames_of
    if tv_column is not None:
        values = df[tv_column].to_numpy()
        out = []
        for s, fr in enumerate(frames_of):
            rows = sess_codes == s
            t = row_time[rows]
            v = values[rows]
            labels = np.full(len(fr), np.nan, dtype=np.float64 if values.dtype.kind in "biuf" else object)
            labels[t] = v
            if not (pd.Series(v).groupby(t).nunique(dropna=False) <= 1).all():
                raise ValueError(
                    f"time_values column {tv_column!r} is not constant within a frame; it must "
                    f"give one time per {frame!r}.  Pass a mapping frame -> time instead.")
            out.append(labels)
        return out
    if isinstance(time_values, (Mapping, pd.Series)):
        series = pd.Series(time_values)
        return [series.reindex(fr).to_numpy() for fr in frames_of]
    if callable(time_values):
        return [np.asarray(time_values(fr)) for fr in frames_of]
    raise TypeError(
        f"time_values must be None, a column name, a mapping frame -> time or a callable, "
        f"got {type(time_values).__name__}.")


# --------------------------------------------------------------------------
# module-level entry points
# --------------------------------------------------------------------------

def from_dataset(ds, session=None) -> Recording:
    """Same as :meth:`Recording.from_dataset`."""
    return Recording.from_dataset(ds, session=session)


def from_table(df, **kwargs) -> Recording:
    """Same as :meth:`Recording.from_table`."""
    return Recording.from_table(df, **kwargs)


def as_recording(data) -> Recording:
    """Turn what a user passes to fit/predict into a :class:`Recording`.

    Parameters
    ----------
    data : Recording, Observations, xarray.Dataset, pandas.DataFrame, path, or list
        A Dataset goes through :meth:`Recording.from_dataset`; a DataFrame
        through :meth:`Recording.from_table` with the default column names
        (``cell``, ``frame``, ``x``, ``y``[, ``z``], ``population``); a path
        to a netCDF file is opened as a Dataset; a list or tuple of any of
        these becomes one session each (:meth:`Recording.concat`).

    Returns
    -------
    Recording
    """
    if isinstance(data, Recording):
        return data
    if isinstance(data, Observations):
        return Recording(data)
    if isinstance(data, xr.Dataset):
        return Recording.from_dataset(data)
    if isinstance(data, pd.DataFrame):
        return Recording.from_table(data)
    if isinstance(data, (str, os.PathLike)):
        path = os.fspath(data)
        if not path.endswith((".nc", ".nc4", ".netcdf")):
            raise ValueError(
                f"as_recording reads netCDF files only (got {path!r}).  For a CSV table, "
                "use Recording.from_table(pd.read_csv(path), ...) with your column names.")
        return Recording.from_dataset(xr.load_dataset(path))
    if isinstance(data, Sequence) and not isinstance(data, (bytes, bytearray)):
        if len(data) == 1:
            # One element is one recording, not a relabeled single session.
            return as_recording(data[0])
        return Recording.concat(list(data))
    raise TypeError(
        f"Cannot make a Recording from {type(data).__name__}.  Pass an xarray Dataset (MODEL.md "
        "'Data'), a pandas DataFrame (one row per observation), a Recording, or a list of these "
        "(one per session).")
