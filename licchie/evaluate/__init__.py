"""Evaluation of a fit against ground truth and held-out data (MODEL.md, "Evaluation").

Every function takes labeled objects (a fitted estimator, its
``components_``/``weights_``/``interaction_matrices()``, the ``truth`` of
:func:`licchie.synthetic.make_recording`) and returns labeled results.

* :mod:`.recovery` -- :func:`motif_recovery` (Hungarian matching of inferred
  to true motifs on |cosine| of ``vec M_j``, with the SSIM of the matched
  maps, :func:`ssim`) and :func:`per_pair_mse` (every pair's ``A_e`` against
  the truth, pairs aligned by :func:`align_pairs`).
* :mod:`.prediction` -- :func:`heldout_prediction`: fit on the frames before
  ``t_split``, one-step prediction error and R^2 on the frames from
  ``t_split`` on (held-out pairs of LICCHIE use their group's profile,
  :func:`group_profile_prediction`), and the in-sample R^2.
* :mod:`.heldout` -- :func:`heldout_table`: LICCHIE and the baselines
  (global linear, per-cell linear, persistence) fitted on the first frames
  of every session and scored on the last ``fraction``, one tidy DataFrame;
  :func:`heldout_split`.
* :mod:`.celltypes` -- :func:`cell_type_prediction`: logistic regression
  (5-fold CV) of the source, target and (target, source) populations from the
  weights ``W``.
* :mod:`.phenotypes` -- :func:`phenotype_prediction` (Fig. 4b): cross-validated
  logistic regression of a target phenotype from the weights (e.g. of held-out
  frames from ``LICCHIE.transform``), with chance baselines;
  :func:`pair_labels`, :func:`interaction_class`.
* :mod:`.interactions` -- :func:`class_weight_summary` (Fig. 3c: weights per
  interaction class and motif), :func:`source_extremes` (the sources with the
  most extreme ``r_j^T x``) and :func:`source_feature_extremes` (Fig. 4c).
* :mod:`.selection` -- :func:`information_criteria` /
  :func:`model_information_criteria` (AIC and BIC), :func:`degrees_of_freedom`.
"""
from .celltypes import cell_type_prediction
from .interactions import class_weight_summary, source_extremes, source_feature_extremes
from .phenotypes import interaction_class, pair_labels, phenotype_prediction
from .heldout import heldout_split, heldout_table
from .prediction import group_profile_prediction, heldout_prediction, prediction_scores
from .recovery import (_ssim_numpy, _ssim_with_backend, align_pairs, motif_recovery,  # noqa: F401
                       per_pair_mse, ssim)
from .selection import degrees_of_freedom, information_criteria, model_information_criteria

__all__ = ["motif_recovery", "ssim", "per_pair_mse", "heldout_prediction",
           "heldout_table", "heldout_split",
           "group_profile_prediction", "prediction_scores", "cell_type_prediction",
           "information_criteria", "model_information_criteria", "degrees_of_freedom",
           "phenotype_prediction", "pair_labels", "interaction_class",
           "class_weight_summary", "source_extremes", "source_feature_extremes"]
