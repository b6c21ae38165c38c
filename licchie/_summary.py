"""The prose of :meth:`licchie.LICCHIE.summary` and the reading of its numbers."""
from __future__ import annotations

import numpy as np

from . import fit as F
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
    st = model.stability_
    lines = [
        f"LICCHIE fit: {model.n_components} motifs, {model.n_pairs_} pairs, "
        f"{model.n_edges_} smoothness edges, {model.n_features_in_} features",
        f"  objective {float(h.sel(term='total')):.6g} after {model.n_iter_} iterations "
        f"({'converged' if model.converged_ else 'NOT converged'}; best of "
        f"{len(model.start_objectives_)} starts)   in-sample R^2 {model.in_sample_r2_:.3f}",
        "  terms: " + ", ".join(f"{t} {float(h.sel(term=t)):.4g}" for t in F.TERMS)
        + ("  (pooling with target gains)" if model.target_gain and pooling > 0 else ""),
        f"  motif stability (agreement across starts, 1 = identical): "
        f"{st.attrs['mean']:.3f}  [{stability_word(st.attrs['mean'])}]",
        "  per motif: " + "  ".join(f"{j}:{v:.2f}" for j, v in enumerate(st.values)),
    ]
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
        low = [j for j, v in enumerate(exc.values) if v < EXCITATION_LOW]
        if low:
            lines.append(
                f"  Motifs {low}: part of the source effect points where the sources "
                "of their pairs carry little or no signal; that part is weakly "
                "determined or not at all, whatever the stability (README, source "
                "excitation).")
    if not (st.attrs["mean"] >= STABILITY_HIGH):
        advice = ("try pooling > 0" if not pooling > 0 else
                  "try more iterations, fewer components or more data")
        lines.append("  Motifs below 0.9 are not reproducible across starts: the data "
                     f"do not pin them down (README, stability); {advice}.")
    if not pooling > 0:
        lines.append("  pooling=0: the data do not determine the source effects "
                     "(MODEL.md, Identifiability); agreement across starts then "
                     "reflects the regularisers, not the cells. Use pooling > 0 "
                     "before reading a source effect biologically.")
    return "\n".join(lines)
