"""The estimator's structured parameters: ``lambdas``, ``solver_options``,
``random_state``.

:class:`licchie.LICCHIE` checks the parameters' types with scikit-learn's
``_parameter_constraints``; the values inside ``lambdas`` and
``solver_options`` and the seeds are resolved here.
"""
from __future__ import annotations

from numbers import Integral, Real
from typing import NamedTuple

import numpy as np
from sklearn.utils._param_validation import Interval, validate_parameter_constraints

__all__ = ["Lambdas", "SOLVER_OPTIONS", "resolve_lambdas", "resolve_solver_options",
           "seed_sequence", "reject_bool_counts"]


class Lambdas(NamedTuple):
    """The objective's weights (MODEL.md, "Objective"), by name."""

    low_rank: float = 10.0
    smoothness: float = 0.0
    l1_A: float = 0.0
    l1_W: float = 0.001
    pooling: float = 10.0


# the research knobs of the fit (``solver_options``) and their defaults.
# search_evals: 36,000 since 2026-12-05 (12,000 before): on the synthetic suite
# (13 regimes x 5 seeds, docs/global-search.md "Search budget") it lifted the
# identifiable regimes' recovery and tripled the motifs rightly "high", with no
# wrong "high", at about 2.7x the fit time (paper size 40-57 s on one thread).
# search_time caps it (a warning then says the fit depends on the machine).
SOLVER_OPTIONS = {"extrapolate": True, "record_steps": False, "init_max_iter": 100,
                  "class_restarts": 0, "search_evals": 36000, "search_time": 300.0,
                  "n_searches": 3, "search_patience": 20, "polish_screen": 10,
                  "settle_weights": True}
_SOLVER_CONSTRAINTS = {"extrapolate": ["boolean"], "record_steps": ["boolean"],
                       "settle_weights": ["boolean"],
                       "init_max_iter": [Interval(Integral, 1, None, closed="left")],
                       "class_restarts": [Interval(Integral, 0, None, closed="left")],
                       "search_evals": [Interval(Integral, 1, None, closed="left")],
                       "search_time": [Interval(Real, 0, None, closed="neither")],
                       "n_searches": [Interval(Integral, 1, None, closed="left")],
                       "search_patience": [Interval(Integral, 1, None, closed="left")],
                       "polish_screen": [Interval(Integral, 0, None, closed="left")]}


def resolve_lambdas(lambdas):
    """``lambdas`` (a 5-sequence or a dict of some of :class:`Lambdas`'
    fields) as :class:`Lambdas` of floats, checked.

    Raises
    ------
    ValueError
        Wrong length, unknown names, negative or non-finite values, or
        ``low_rank`` = 0.
    """
    names = Lambdas._fields
    if isinstance(lambdas, dict):
        unknown = sorted(set(lambdas) - set(names), key=str)
        if unknown:
            raise ValueError(f"The 'lambdas' parameter of LICCHIE has unknown keys "
                             f"{unknown}; the keys are {list(names)}.")
        values = Lambdas(**lambdas)
    elif isinstance(lambdas, (tuple, list)) and len(lambdas) == len(names):
        values = Lambdas(*lambdas)
    else:
        hint = (" (4 numbers were the lambdas before pooling joined them: append the "
                "pooling weight, e.g. (1.0, 0.1, 0.0, 0.01, 0.0))"
                if isinstance(lambdas, (tuple, list)) and len(lambdas) == 4 else "")
        raise ValueError(f"The 'lambdas' parameter of LICCHIE must be 5 numbers "
                         f"{names} or a dict with some of these keys{hint}. Got "
                         f"{lambdas!r} instead.")
    if not all(isinstance(v, Real) and not isinstance(v, bool) and np.isfinite(v)
               and v >= 0 for v in values):
        raise ValueError(f"The 'lambdas' parameter of LICCHIE must hold finite numbers "
                         f">= 0. Got {lambdas!r} instead.")
    if values.low_rank <= 0:
        raise ValueError(f"The 'lambdas' parameter of LICCHIE must have low_rank (lam1, "
                         f"the low-rank term) > 0: with lam1 = 0 the motifs are decoupled "
                         f"from the interaction matrices and nothing is learned; use e.g. "
                         f"lambdas=(1.0, 0.1, 0.0, 0.01, 0.0). Got {lambdas!r} instead.")
    return Lambdas(*(float(v) for v in values))


def resolve_solver_options(options):
    """``solver_options`` (dict or None) with every key of
    :data:`SOLVER_OPTIONS`, checked."""
    options = {} if options is None else dict(options)
    unknown = sorted(set(options) - set(SOLVER_OPTIONS), key=str)
    if unknown:
        raise ValueError(f"Unknown solver_options {unknown}; the allowed keys are "
                         f"{sorted(SOLVER_OPTIONS)}.")
    validate_parameter_constraints(_SOLVER_CONSTRAINTS, options,
                                   caller_name="LICCHIE (solver_options)")
    reject_bool_counts(options, ("init_max_iter", "class_restarts", "n_searches",
                                 "search_patience", "search_evals", "polish_screen"),
                       "LICCHIE (solver_options)")
    return {**SOLVER_OPTIONS, **options}


def reject_bool_counts(params, names, caller):
    """Raise when a count parameter is a bool (scikit-learn's ``Interval(Integral)``
    takes True for 1, which is always a slip)."""
    for name in names:
        if isinstance(params.get(name), (bool, np.bool_)):
            raise ValueError(f"The {name!r} parameter of {caller} must be an int, not a "
                             f"bool. Got {params[name]!r} instead.")


def seed_sequence(random_state):
    """The fit's ``numpy.random.SeedSequence``: from an int (or None) as given;
    from a ``RandomState``, from four 32-bit draws of it (so the same state
    gives the same fit)."""
    if isinstance(random_state, np.random.RandomState):
        random_state = [int(v) for v in random_state.randint(0, 2 ** 32, size=4,
                                                             dtype=np.uint64)]
    return np.random.SeedSequence(random_state)
