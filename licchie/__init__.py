"""LICCHIE: latent interaction motifs between cells from live-cell imaging."""
from __future__ import annotations

import os as _os

# In a source checkout (tests run without installing), kernels/ sits beside
# licchie/ rather than inside it; the installed package maps it to
# licchie.kernels (pyproject package-dir).  Extending __path__ lets the same
# import work in both cases.
_here = _os.path.dirname(_os.path.abspath(__file__))
_checkout_kernels = _os.path.join(_os.path.dirname(_here), "kernels", "__init__.py")
if not _os.path.exists(_os.path.join(_here, "kernels")) and _os.path.exists(_checkout_kernels):
    __path__.append(_os.path.dirname(_here))  # type: ignore[name-defined]

__version__ = "0.1.0"
from . import synthetic  # noqa: E402
from .data import Recording, as_recording, from_dataset, from_table  # noqa: E402
from .model import LICCHIE  # noqa: E402
from .modelfile import load  # noqa: E402
from .sweeps import weight_sweep, weight_sweep_states  # noqa: E402
from . import baselines, evaluate, io  # noqa: E402  (modules, after the estimator)

__all__ = ["LICCHIE", "load", "Recording", "as_recording", "from_dataset", "from_table",
           "synthetic", "weight_sweep", "weight_sweep_states", "evaluate", "baselines",
           "io", "__version__"]
