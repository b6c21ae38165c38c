"""LICCHIE: latent interaction motifs between cells from live-cell imaging."""
from __future__ import annotations

__version__ = "0.2.0.dev0"
from . import synthetic
from .data import Recording, as_recording, from_dataset, from_table
from .io import read_trackmate
from .model import LICCHIE
from .modelfile import load
from .sweeps import weight_sweep, weight_sweep_states
from . import baselines, evaluate, io  # modules, imported after the estimator
from . import select  # model selection over time blocks (licchie.select)

__all__ = ["LICCHIE", "load", "Recording", "as_recording", "from_dataset", "from_table",
           "read_trackmate", "synthetic", "weight_sweep", "weight_sweep_states",
           "evaluate", "baselines", "io", "__version__"]
