"""LICCHIE against the linear baselines on a synthetic recording (paper §5.1, Fig. 2).

:func:`run_comparison` fits LICCHIE and both baselines
(:mod:`licchie.baselines`) to a recording with known ground truth and
evaluates them (:mod:`licchie.evaluate`); :func:`format_table` prints the
comparison (both in :mod:`.comparison`); :func:`write_report`
(:mod:`.figures`) writes PNG figures and a Markdown summary (needs
matplotlib, the ``report`` extra: without it the figures are skipped and the
summary says so).

:func:`write_real_report` (:mod:`.real`) is ``licchie report model.nc``:
the figures of paper §5.2-5.3 for a fit on real data.

Motifs are never shown without their stability number (MODEL.md,
"Identifiability"): a motif that the starts do not agree on is not
determined by the data.
"""
from .comparison import METHODS, format_table, run_comparison
from .figures import write_report
from .real import write_real_report

__all__ = ["run_comparison", "format_table", "write_report", "write_real_report", "METHODS"]
