"""Linear baselines of the paper (§5.1; MODEL.md, "Baselines"), and persistence.

:class:`Persistence` predicts that nothing changes: the next state of a cell
is its current state (the source of its self pair).  The two linear baselines
explain a target observation by the same sum over its pairs as LICCHIE
(MODEL.md, "Pairs" and "Model"), but with one interaction matrix shared by
many pairs instead of low-rank, pair-varying ``A_e``::

    GlobalLinear:   x[n,t] ~ sum_{e into (n,t)} g_e A~   x[k_e,t-1]
    PerCellLinear:  x[n,t] ~ sum_{e into (n,t)} g_e A~_n x[k_e,t-1]

Because ``A~`` does not depend on the pair, the sum collapses to
``A~ z[n,t]`` with the aggregated source state ``z[n,t] = sum_e g_e
x[k_e,t-1]``; each fit is an ordinary least-squares problem
``min sum ||x[n,t] - A~ z[n,t]||^2`` over the target observations that have
at least one pair (targets without pairs have no prediction, as in LICCHIE);
:class:`PerCellLinear` adds a ridge penalty pulling each ``A~_n`` toward
the global ``A~``.
There is no intercept, as in LICCHIE's model.  ``numpy.linalg.lstsq`` gives
the minimum-norm solution when the aggregated states do not span R^d.

Pairs, pair weights ``g_e`` and the pair coordinates of the results are
exactly LICCHIE's (:func:`licchie.fit.build_pairs`,
``licchie.labels.pair_coords``), so :meth:`interaction_matrices` lines up
with ``LICCHIE.weights_`` and with the ground truth of
:func:`licchie.synthetic.make_recording`.

The package: :mod:`._base` (pairing, checks, prediction, formatting shared by
every baseline), :mod:`.linear` (:class:`GlobalLinear`,
:class:`PerCellLinear`), :mod:`.persistence` (:class:`Persistence`).
"""
# aggregate_sources, lstsq_matrix, ridge_matrix were module-level names of the
# former baselines.py; they stay importable from here
from ._base import aggregate_sources
from .linear import GlobalLinear, PerCellLinear, lstsq_matrix, ridge_matrix
from .persistence import Persistence

__all__ = ["GlobalLinear", "PerCellLinear", "Persistence"]
