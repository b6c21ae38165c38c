"""Model selection (MODEL.md, "Model selection").

* :func:`degrees_of_freedom` -- ``nnz(W) + J (2 d - 2)``.
* :func:`information_criteria` / :func:`model_information_criteria` --
  AIC and BIC.
"""
from __future__ import annotations

import numpy as np

from .. import fit as F



def degrees_of_freedom(weights, n_features, atol=0.0):
    """``nnz(W) + J (2 d - 2)`` (MODEL.md, "Model selection").

    Each unit-norm effect ``c_j``, ``r_j`` has ``d - 1`` free parameters.
    """
    W = np.asarray(getattr(weights, "values", weights))
    J = W.shape[1]
    return int(np.count_nonzero(np.abs(W) > atol)) + J * (2 * int(n_features) - 2)


def information_criteria(rss, n, dof):
    """AIC and BIC of a Gaussian model with unknown noise variance.

    ``AIC = n ln(RSS / n) + 2 k`` and ``BIC = n ln(RSS / n) + k ln n`` (the
    profile log-likelihood of i.i.d. Gaussian residuals, constants dropped:
    only differences between fits on the same data mean anything).

    Parameters
    ----------
    rss : float
        Residual sum of squares (> 0; 0 gives -inf).
    n : int
        Number of residuals (scalar observations).
    dof : int
        Degrees of freedom ``k``.

    Returns
    -------
    dict with ``aic``, ``bic``, ``rss``, ``n``, ``dof``
    """
    rss = float(rss)
    n = int(n)
    if n <= 0 or rss < 0:
        raise ValueError(f"information_criteria needs n > 0 and rss >= 0; got n={n}, "
                         f"rss={rss}.")
    with np.errstate(divide="ignore"):
        fit = n * np.log(rss / n)
    return {"aic": float(fit + 2.0 * dof), "bic": float(fit + dof * np.log(n)),
            "rss": rss, "n": n, "dof": int(dof)}


def model_information_criteria(model, X):
    """AIC/BIC of a fitted LICCHIE on its training data ``X``.

    ``RSS`` is the fidelity term of the final objective,
    ``sum ||x[n,t] - sum_e g_e A_e x[k_e,t-1]||^2`` over the target
    observations with at least one pair (MODEL.md: targets without pairs
    only add a constant and are left out); ``n`` is the number of those
    targets times ``d``; ``k = nnz(W) + J (2 d - 2)``
    (:func:`degrees_of_freedom`).  Note that ``k`` can exceed ``n`` when
    ``W`` is dense (several pairs per target, J weights each); the criteria
    are then dominated by the penalty and only comparable between fits with
    the same data.

    Returns the dict of :func:`information_criteria`.
    """
    from ..data import as_recording
    obs = as_recording(X).obs
    pairs = F.build_pairs(obs, model.radius, model.include_self, model.pair_weight,
                          model.bandwidth)
    d = obs.n_features
    n = int(pairs.tgt_obs.shape[0]) * d
    rss = float(model.objective_history_.isel(step=-1).sel(term="fidelity"))
    return information_criteria(rss, n, degrees_of_freedom(model.weights_, d))
