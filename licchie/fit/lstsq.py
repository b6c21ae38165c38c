"""Small least-squares helpers shared by the starts and the pooling updates."""
from __future__ import annotations

import numpy as np


def safe_ratio(num, den, fallback):
    """``num / den`` where ``den > 0``, else ``fallback`` (all broadcast together)."""
    ok = den > 0
    return np.where(ok, num / np.where(ok, den, 1.0), fallback)


def ridge_solve(gram, rhs, rel):
    """Solve ``(gram + r I) x = rhs`` with ``r`` = ``rel`` times the mean diagonal.

    The relative ridge keeps the solution finite (and near 0) in directions
    the data do not excite, at a cost of about ``rel`` in the fit.

    Parameters
    ----------
    gram : float64 (n, n)
    rhs : float64 (n,) or (n, k)
    rel : float

    Returns
    -------
    float64, the shape of ``rhs``
    """
    n = gram.shape[0]
    r = rel * max(float(np.trace(gram)) / n, np.finfo(float).tiny)
    return np.linalg.solve(gram + r * np.eye(n), rhs)
