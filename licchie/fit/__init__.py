"""The fit of MODEL.md on plain arrays, in the order the data flow through it.

Nothing here sees xarray or validates user input: :mod:`licchie.model` does
that once, then hands over an :class:`~licchie._observations.Observations` and checked
hyper-parameters.  The data path:

1. **pairs** (:mod:`.pairs`): :func:`build_pairs` finds the radius pairs of
   the observations, their weights ``g_e`` and pooling groups;
2. **graph** (:mod:`.pairs`): :func:`build_graph` links pairs with close
   stacked states; :func:`locality_order` and :func:`reorder` put the
   targets in a cache-friendly order (results are mapped back with
   :func:`inverse_permutation`);
3. **Problem** (:mod:`.problem`): features, pairs, graph and lambdas, with
   the objective and the exact block steps; pooling profiles and target
   gains in :mod:`.pooling`;
4. **starts** (:mod:`.starts`, :mod:`.reduced_start`, :mod:`.classes`,
   :mod:`.class_rrr`): :func:`initial_interactions` and the ``"parafac"``,
   ``"groups"`` and ``"classes"`` starting factors;
5. **solver** (:mod:`.solver`, :mod:`.restarts`): :func:`run_start` runs one
   start's alternating minimisation; :func:`class_restarts` restarts the
   source effects of each interaction class in the best start;
6. **diagnostics** (:mod:`.diagnostics`): :func:`stability` across starts,
   :func:`motif_agreement`, :func:`source_excitation`.

``from licchie import fit as F`` gives every name below as ``F.<name>``.
"""
from __future__ import annotations

from .. import kernels as K  # noqa: F401  (F.K: the kernels the fit calls)
from .classes import class_start
from .diagnostics import (CANCELLATION_LIMIT, CANCELLATION_SHARE, cancelled_share,
                          motif_agreement, profile_cancellation, source_excitation,
                          stability, warn_cancelling_profiles)
from .pairs import (PAIR_WEIGHTS, Graph, Pairs, build_graph, build_pairs, find_pairs,
                    init_classes, init_groups, inverse_permutation, locality_order,
                    pair_groups, reorder, POOLING_GROUPS, empty_graph, within_classes)
from .spaces import Spaces, feature_spaces, zero_filled
from .spaces_search import search_starts as spaces_search_starts
from .lstsq import ridge_solve, safe_ratio
from .pooling import (fitted_gains, gain_components, normalise_gains, normalise_median,
                      pooled_profiles, unit_columns)
from .problem import RIDGE_REL, TERMS, Problem
from .reduced_start import reduced_init, reduced_inputs
from .frozen import settle_weights
from .granularity import GroupingCV, grouping_cv
from .gain_heldout import HELDOUT_SHARE as GAIN_CHECK_SHARE, GainCheck, gain_check
from .restarts import class_restarts
from .solver import StartResult, extrapolation, numba_threads, run_start, side_by_side
from .starts import (bootstrap_counts, group_init, group_matrices, initial_interactions,
                     parafac_init)

# LICCHIE.fit works on the pairs in :func:`locality_order` (see there); its
# results are mapped back to the pairs' order, so this changes only speed
# (a switch for tests and benchmarks: read as ``F.REORDER_PAIRS`` at fit time)
REORDER_PAIRS = True

# the name the studies used before the split
_extrapolate = extrapolation

__all__ = [
    "K", "CANCELLATION_LIMIT", "CANCELLATION_SHARE", "PAIR_WEIGHTS", "RIDGE_REL", "REORDER_PAIRS", "TERMS",
    "GAIN_CHECK_SHARE", "GainCheck", "Graph", "GroupingCV", "Pairs", "Problem", "StartResult",
    "bootstrap_counts", "build_graph", "grouping_cv", "cancelled_share", "build_pairs", "class_restarts", "class_start",
    "extrapolation", "find_pairs", "gain_check", "fitted_gains", "gain_components", "group_init",
    "group_matrices", "init_classes", "init_groups", "initial_interactions",
    "inverse_permutation", "locality_order", "motif_agreement", "normalise_gains",
    "normalise_median", "numba_threads", "pair_groups", "empty_graph", "parafac_init", "pooled_profiles",
    "reduced_init", "reduced_inputs", "settle_weights",
    "reorder", "ridge_solve", "run_start", "safe_ratio", "side_by_side",
    "source_excitation", "stability", "unit_columns",
    "Spaces", "feature_spaces", "spaces_search_starts", "zero_filled", "within_classes",
]
