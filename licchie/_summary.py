"""The prose of :meth:`licchie.LICCHIE.summary` and the reading of its numbers."""
from __future__ import annotations

import numpy as np

from . import fit as F
from .fit.frozen import FINAL_STAGE
from .params import resolve_lambdas

__all__ = ["summary_text", "stability_word", "STABILITY_HIGH", "STABILITY_LOW",
           "EXCITATION_LOW"]

# Reading of the stability diagnostic (docs: "Reading the stability number").
STABILITY_HIGH = 0.9
STABILITY_LOW = 0.7
# share of a source effect on excited directions below which summary warns
EXCITATION_LOW = 0.9


def stability_word(v):
    """How to read a mean stability ``v``, in words."""
    if not np.isfinite(v):
        return "unknown: needs n_init >= 2"
    if v >= STABILITY_HIGH:
        return "high: motifs reproducible across starts"
    if v >= STABILITY_LOW:
        return "moderate: interpret with care"
    return "LOW: motifs not determined by the data"


def summary_text(model):
    """Plain-text report of a fitted :class:`licchie.LICCHIE`: objective,
    iterations, stability and source excitation per motif, and what to do
    about weak numbers."""
    pooling = resolve_lambdas(model.lambdas).pooling
    h = model.objective_history_.isel(step=-1)
    lines = [
        f"LICCHIE fit: {model.n_components} motifs, {model.n_pairs_} pairs, "
        + (f"{model.n_edges_} smoothness edges, " if _has_graph(model) else
           "no smoothness graph (smoothness = 0), ")
        + f"{model.n_features_in_} features",
        f"  objective {float(h.sel(term='total')):.6g} after {model.n_iter_} iterations "
        f"({'converged' if model.converged_ else 'NOT converged'}; best of "
        f"{len(model.start_objectives_)} "
        f"{'polished minima' if model.stability_.attrs.get('method') == 'global search' else 'starts'})"
        + _settled(model) + f"   in-sample R^2 {model.in_sample_r2_:.3f}",
        "  terms: " + ", ".join(f"{t} {float(h.sel(term=t)):.4g}" for t in F.TERMS)
        + ("  (pooling with target gains)"
           if model._gains() and pooling > 0
           else "")
    ]
    lines += _verdict_lines(model)
    cr = getattr(model, "class_restarts_", None)
    if cr is not None and len(cr) > 1:
        trials = cr.iloc[1:]
        lines.append(f"  class restarts: {int(trials['accepted'].sum())} of {len(trials)} "
                     f"accepted (objective {cr['objective'].iloc[0]:.6g} after the "
                     f"continuation, {float(h.sel(term='total')):.6g} at the end)")
    exc = model.components_["source_excitation"]
    if np.any(np.isfinite(exc.values)):
        lines.append(
            f"  source excitation (share of each source effect on directions the "
            f"sources carry at >= {exc.attrs['snr']:g}x the noise variance): "
            + "  ".join(f"{j}:{v:.2f}" for j, v in enumerate(exc.values)))
        lines.append("  (a number, not a verdict: the noise it compares against is the "
                     "model's residual, mostly misfit on real data; the verdict above "
                     "already weighs how well the data pin each motif)")
    fallback = getattr(model, "pooling_fallback_", None)
    if fallback is not None:
        lines.append(f"  pooling groups: one profile per interaction class (pooling_groups="
                     f"'auto': {fallback})")
    gc = getattr(model, "gain_check_", None)
    if gc is not None:
        lines.append(
            f"  gain check: per-target gains fitted on the other features remove "
            f"{gc['heldout_share']:.0%} of the error (gains {gc['gain_q10']:.2f}-"
            f"{gc['gain_q90']:.2f}, 10-90 %)"
            + (_gain_advice(model) if gc["suggests_gains"] else
               f"; below {F.GAIN_CHECK_SHARE:.0%}: no sign that targets need gains"))
    kappa = model.group_weights_.coords.get("cancellation")
    if pooling > 0 and kappa is not None and np.any(~np.isnan(kappa.values)):
        k = kappa.values[~np.isnan(kappa.values)]
        share = F.cancelled_share(k)
        lines.append(
            f"  pooling profiles: {share:.0%} cancel (weights' |sum| over "
            f"{F.CANCELLATION_LIMIT:g}x the interaction; median ratio {np.median(k):.1f})"
            + ("  [HIGH: predictions outside the training frames are unstable; fit "
               "pooling_groups='class' and compare on held-out blocks]"
               if share > F.CANCELLATION_SHARE
               else ""))
    if not pooling > 0:
        lines.append("  pooling=0: the data do not determine the source effects "
                     "(docs/model.md, Identifiability); agreement across starts then "
                     "reflects the regularisers, not the cells. Use pooling > 0 "
                     "before reading a source effect biologically.")
    return "\n".join(lines)


def _settled(model):
    """", then the weights at the fitted motifs (N steps)" when the fit ended
    with :func:`licchie.fit.settle_weights` (steps: sweeps of its coordinate
    descent, or iterations of the alternation with lam2 or lam3 > 0)."""
    h = model.objective_history_
    if str(h["stage"].values[-1]) != FINAL_STAGE:
        return ""
    n = int(h["iteration"].values[-1]) - int(model.n_iter_)
    return f", then the weights at the fitted motifs ({n} steps)"


def _has_graph(model):
    """Whether the fit built a smoothness graph (lambda2 > 0)."""
    return resolve_lambdas(model.lambdas).smoothness > 0


def _verdict_lines(model):
    """One line per motif: its verdict, score and why (the diagnostic of
    :func:`licchie.labels.add_verdict`)."""
    st = model.stability_
    comp = model.components_
    method = st.attrs.get("method", "agreement across starts")
    head = f"  motif verdicts ({method}; score 1 = fully determined, mean {st.attrs['mean']:.3f})"
    if method == "global search":
        head += (f": {st.attrs.get('n_candidates', '?')} distinct minima, best reached by "
                 f"{st.attrs.get('searches_at_best', '?')} of "
                 f"{st.attrs.get('n_searches', '?')} searches, nearest competing minimum "
                 f"{st.attrs.get('loss_gap', float('nan')):+.1%} in loss")
    elif method == "reduced multi-start":
        head += (f": best reached by {st.attrs.get('searches_at_best', '?')} of "
                 f"{st.attrs.get('n_searches', '?')} random starts, nearest competing "
                 f"minimum {st.attrs.get('loss_gap', float('nan')):+.1%} in loss")
    else:
        head += f" [{stability_word(st.attrs['mean'])}]"
    lines = [head]
    for j in range(st.sizes["component"]):
        lines.append(f"    motif {j}: {str(comp['verdict'].values[j]):6s} "
                     f"{float(st.values[j]):.2f}  {comp['verdict_reason'].values[j]}")
    if any(v != "high" for v in comp["verdict"].values):
        lines.append("  Read only 'high' motifs biologically; 'medium' and 'low' ones are "
                     "not pinned down by these data (README, reading the diagnostics).")
    return lines


def _gain_advice(model):
    if model._gains():
        # the gain search ends in different basins under small changes
        # (docs/global-search.md, "A prior on the gains ... and rounding")
        return ("  [GAINS: the fit without gains was misspecified; this is the fit with "
                "target gains (target_gain='auto'). Fits with gains can end in other "
                "motifs under another random_state: compare a refit with a second seed "
                "before trusting one]")
    if model.target_gain == "auto":  # gains were not available for this fit
        return ("  [GAINS: the fit without gains is misspecified; gains are fitted "
                "locally and for one feature space only]")
    return ("  [GAINS: the fit without gains is misspecified; fit again with "
            "target_gain='auto' or True]")
