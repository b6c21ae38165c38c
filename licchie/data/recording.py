"""Recordings: labeled cell observations, in and out of LICCHIE.

A :class:`Recording` wraps the plain-array :class:`~licchie.data.Observations`
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

The conversions live beside this module: :mod:`.tables` (from a table),
:mod:`.datasets` (Dataset validation, from and to a Dataset) and
:mod:`.observations` (the observation list and its rules).
"""
from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from ._util import _first_duplicates, _fmt, _label_array, _session_name
from .datasets import dataset_observations, recording_to_dataset
from .observations import Observations
from .tables import table_observations

__all__ = ["Recording", "as_recording", "from_dataset", "from_table"]


class Recording:
    """Cells observed over time in one or more sessions, with their labels.

    Holds the compact observation list ``obs`` (an
    :class:`~licchie.data.Observations`, grouped by frame), whose
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

        Populations may have different feature sets (MODEL.md "Populations"):
        a feature a population lacks stays NaN for its cells.
        """
        obs, labels = dataset_observations(ds, session)
        return cls(obs, **labels)

    @classmethod
    def from_table(cls, df, *, cell="cell", frame="frame", position=None,
                   features=None, population="population", session=None,
                   time_values=None, untracked=None, cell_per_population=False):
        """Build a Recording from a long table, one row per observation.

        This is the layout trackers export (TrackMate spot tables, Imaris,
        BEHAV3D).  Memory grows with the number of rows, never with cells x
        frames.

        Parameters
        ----------
        df : pandas.DataFrame, shape (n_rows, ...)
        cell : str or None, default "cell"
            Column of track ids, unique within a session across populations
            (trackers such as Imaris number each population's tracks
            separately: prefix the id with the population, e.g. ``"CD8-5"``).
            ``None``: no track identity, every observed row is its own cell
            (ids ``0..n_obs-1``, in observation order) and there are no self
            pairs.
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
        untracked : str or sequence of str, optional
            Populations without track identity (e.g. Imaris organoids, whose
            export has no ``TrackID``): each of their rows is its own cell
            (id ``"<population>-obs<row>"``, ``row`` its position in
            ``df``), a neighbour of other cells but never a self pair; their
            ``cell`` entries may be missing.  Other populations stay tracked.
        cell_per_population : bool, default False
            Prefix every track id with its population (``"CD8-5"``), so that
            populations that number their tracks separately (Imaris,
            TrackMate files of different populations) never share a cell.
            Without it, one id in two populations is an error.

        Returns
        -------
        Recording
            Rows with a non-finite position or population feature are not
            observations (a warning gives their number).  With identity, the
            cells are every (session, cell id) of the table, sorted by
            session and id.
        """
        obs, labels = table_observations(
            df, cell=cell, frame=frame, position=position, features=features,
            population=population, session=session, time_values=time_values,
            untracked=untracked, cell_per_population=cell_per_population)
        return cls(obs, **labels)

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
        return recording_to_dataset(self, session)


def _concat_labels(arrays):
    dtypes = {a.dtype for a in arrays}
    if len(dtypes) == 1:
        return np.concatenate(arrays)
    # Mixed label types (ints in one session, strings in another): keep each
    # label as it was rather than letting numpy stringify the ints.
    return np.concatenate([a.astype(object) for a in arrays])



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
