"""Small label and message helpers shared by the data layer's modules."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

# Position columns / space labels, in the order the kernels store them.
_SPACE_NAMES = ("x", "y", "z")


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


def _session_name(label, index=0):
    return str(index) if label is None else str(label)


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

