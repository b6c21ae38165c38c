"""What a fit sets up before it starts: :class:`Prepared` (built by
:meth:`licchie.LICCHIE._prepare`), the radius check and the progress bar."""
from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass
class Prepared:
    """What :meth:`LICCHIE._prepare` builds for a fit.

    Attributes
    ----------
    recording : Recording
    pairs : Pairs
        In the data's order (the fitted ``weights_`` rows).
    graph : Graph
        The smoothness graph over ``pairs``.
    problem : Problem
        The fit's problem, on ``fit_pairs`` / ``fit_graph``.
    fit_pairs, fit_graph : Pairs, Graph
        ``pairs`` and ``graph`` with graph neighbours close in memory (the
        fit's order; the same objects as ``pairs`` and ``graph`` when
        ``perm`` is None).
    order : ndarray (n_targets,) or None
        Target order of the fit.
    perm : ndarray (n_pairs,) or None
        Fit pair ``k`` is ``pairs``' pair ``perm[k]``.
    """

    recording: object
    pairs: object
    graph: object
    problem: object
    fit_pairs: object
    fit_graph: object
    order: np.ndarray | None
    perm: np.ndarray | None


def _warn_self_only(rec, pairs, radius):
    """A radius too small is not silent: the fit's own pairs through
    :func:`licchie.data.neighbours.warn_self_only` (the fit then reduces to a
    per-cell self model)."""
    from .data.neighbours import warn_self_only
    n_other = (np.add.reduceat((~pairs.is_self).astype(np.int64), pairs.tgt_ptr[:-1])
               if pairs.n_pairs else np.zeros(0, np.int64))
    warn_self_only(rec, n_other == 0, radius, stacklevel=5)


def _progress(verbose, total):
    if not verbose:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, desc="LICCHIE fit", unit="iter", leave=False)


def _warn_gains(check, blocker=None):
    """Warn when a fit's gain check (``gain_check_``) asks for target gains
    that the fit did not fit (``blocker``: why they could not be, or None)."""
    import warnings

    from .fit.gain_heldout import HELDOUT_SHARE

    if check is None or not check["suggests_gains"]:
        return
    warnings.warn(
        f"Targets respond with their own scale of the profiles: a gain fitted per target "
        f"on its other features removes {check['heldout_share']:.0%} of the fit's error "
        f"(gain check; {HELDOUT_SHARE:.0%} or more says gains; fitted gains "
        f"{check['gain_q10']:.2f}-{check['gain_q90']:.2f}, 10-90 %). A fit without gains "
        "is misspecified here and its motifs can be far from the data's; "
        + ("fit again with target_gain='auto' (the default) or True" if blocker is None else
           f"gains are not fitted with {blocker}: fit the populations' shared features, "
           "or locally, with target_gain='auto'")
        + " (docs/global-search.md, 'target_gain=\"auto\", the default').",
        UserWarning, stacklevel=3)
