"""Benchmarks of LICCHIE (asv suite, naive reference, comparison scripts).

asv imports every module of this package to discover benchmarks, so no module
here may do work at import time, and only :mod:`benchmarks.bench_stages`
defines ``time_*`` / ``peakmem_*`` / ``track_*`` / ``timeraw_*`` names.

When licchie is not installed (``asv run -E existing`` from a checkout, or
running the scripts here directly), the repository root is put on
``sys.path`` so that ``import licchie`` finds the checkout; an installed
licchie (asv's virtualenv) always takes precedence.
"""
import importlib.util
import os
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

if importlib.util.find_spec("licchie") is None and REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)


def subprocess_env(**extra):
    """Environment for a child Python that must import licchie like we do."""
    env = dict(os.environ)
    spec = importlib.util.find_spec("licchie")
    if spec is not None and spec.origin is not None:
        root = os.path.dirname(os.path.dirname(spec.origin))
        if os.path.abspath(root) == REPO_ROOT:
            env["PYTHONPATH"] = os.pathsep.join(
                [REPO_ROOT] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.update({k: str(v) for k, v in extra.items()})
    return env


def add_problem_arguments(ap):
    """The problem options shared by compare.py and float32.py (paper's size by
    default: 25 + 10 cells, 50 frames, d = 10, J = 8, radius 10, M = 10)."""
    ap.add_argument("--n-cells", type=int, nargs="+", default=[25, 10])
    ap.add_argument("--scale", type=float, default=1)
    ap.add_argument("--n-frames", type=int, default=50)
    ap.add_argument("--n-features", type=int, default=10)
    ap.add_argument("--n-components", type=int, default=8)
    ap.add_argument("--radius", type=float, default=10.0)
    ap.add_argument("--n-neighbors", type=int, default=10)
    ap.add_argument("--sigma", type=float, default=0.3)
    ap.add_argument("--lambdas", type=float, nargs=4, default=[1.0, 0.1, 0.0, 0.01])
    ap.add_argument("--pooling", type=float, default=0.0)
