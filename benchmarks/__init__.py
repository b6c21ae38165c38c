"""Benchmarks of LICCHIE: the asv suite and the performance scripts.

* :mod:`benchmarks.bench_stages` -- the asv suite (the only module defining
  ``time_*`` / ``peakmem_*`` / ``track_*`` / ``timeraw_*`` names).
* :mod:`benchmarks._problems` -- problems of a given size, the stages of a
  fit as calls, and the plumbing the scripts share (child processes,
  command-line options).
* :mod:`benchmarks.compare`, :mod:`benchmarks.scaling`,
  :mod:`benchmarks.float32`, :mod:`benchmarks.pair_order`,
  :mod:`benchmarks.million_fit` -- performance scripts (docs/performance.md).
* :mod:`benchmarks.naive` -- the naive NumPy/SciPy implementation that
  ``compare`` and ``scaling --naive`` time LICCHIE against (and that
  ``tests/test_naive_agrees.py`` checks LICCHIE's engine with).

asv imports every module here to discover benchmarks, so no module may do
work at import time, and nothing here edits ``sys.path``: the benchmarks
import the installed ``licchie`` (asv's virtualenv installs it; for
``asv run --python=same`` or the scripts, ``pip install -e .``).  Run the
scripts as modules from the repository root, e.g.
``python -m benchmarks.compare --help``.
"""
