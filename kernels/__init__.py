"""Numba kernels of LICCHIE.

Kernels take plain contiguous arrays, never validate and never warn; the API
layer in :mod:`licchie` owns labels, validation and dtype coercion.

Modules: :mod:`.pairs` (radius pairs, self sources, pair gains),
:mod:`.graph` (stacked states, the symmetrised smoothness graph),
:mod:`.knn` (its exact nearest neighbours, on the cluster index of
:mod:`._cluster`), :mod:`.astep` (the A-step), :mod:`.cp` (CP contractions
and ALS), :mod:`.weights` (the weight step's batched LASSO and group means),
:mod:`.objective` (objective terms, low-rank prediction), :mod:`.spaces`
(population feature spaces: per-class motifs and contractions), :mod:`.reduced`
(the A-eliminated objective; imported as a module), :mod:`.pooled` and
:mod:`.gains` (the exactly pooled reduced problem, without and with
per-target gains; imported as modules), :mod:`.frozen` (the weights at fixed
motifs by coordinate descent; imported as a module), :mod:`._linalg`
(Cholesky and heap shared by the others), :mod:`._parallel` and
:mod:`._config` (threads, JIT options).
"""
from .pairs import radius_pairs, self_sources, pair_gains
from .graph import stacked_states, symmetric_graph
from .knn import knn_stacked
from .astep import a_step
from .cp import (weighted_sum, times_columns, unit_sphere_sweep, bilinear_cr,
                 lowrank_reconstruct, cp_als)
from .weights import weight_lasso, group_mean, gain_profile_rounds, gain_profiles
from .objective import objective_terms, predict_lowrank
from .spaces import class_motifs, weighted_sum_classes, bilinear_classes

__all__ = [
    "radius_pairs", "self_sources", "pair_gains",
    "stacked_states", "symmetric_graph", "knn_stacked",
    "a_step",
    "weighted_sum", "times_columns", "unit_sphere_sweep", "bilinear_cr",
    "lowrank_reconstruct", "cp_als",
    "weight_lasso", "group_mean", "gain_profile_rounds", "gain_profiles",
    "objective_terms", "predict_lowrank",
    "class_motifs", "weighted_sum_classes", "bilinear_classes",
]
