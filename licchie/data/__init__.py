"""Recordings: labeled cell observations, in and out of LICCHIE.

- :mod:`.observations`: :class:`Observations`, the frame-grouped plain arrays
  every kernel works on, and the rules that decide what is observed;
- :mod:`.recording`: :class:`Recording` (observations plus the user's labels),
  :func:`as_recording`, :func:`from_dataset`, :func:`from_table`;
- :mod:`.tables`: the long-table machinery behind :meth:`Recording.from_table`;
- :mod:`.datasets`: Dataset validation, :meth:`Recording.from_dataset` and
  :meth:`Recording.to_dataset`.

Tracker exports that are not yet one table are read by :mod:`licchie.io`.
"""
from .observations import Observations
from .recording import Recording, as_recording, from_dataset, from_table

__all__ = ["Recording", "as_recording", "from_dataset", "from_table", "Observations"]
