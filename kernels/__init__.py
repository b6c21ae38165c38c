"""Numba kernels of LICCHIE.

Kernels take plain contiguous arrays, never validate and never warn; the API
layer in :mod:`licchie` owns labels, validation and dtype coercion.
"""
from .pairs import radius_pairs, self_sources, pair_gains
from .graph import stacked_states, symmetric_graph
from .knn import knn_stacked
from .astep import a_step
from .cp import (weighted_sum, times_columns, unit_sphere_sweep, contract_ar, contract_atc,
                 bilinear_cr, lowrank_reconstruct, cp_als)
from .weights import weight_lasso, group_mean
from .objective import objective_terms, predict_pairs, predict_lowrank

__all__ = [
    "radius_pairs", "self_sources", "pair_gains",
    "stacked_states", "knn_stacked", "symmetric_graph",
    "a_step",
    "weighted_sum", "times_columns", "unit_sphere_sweep", "contract_ar", "contract_atc",
    "bilinear_cr", "lowrank_reconstruct", "cp_als",
    "weight_lasso", "group_mean",
    "objective_terms", "predict_pairs", "predict_lowrank",
]
