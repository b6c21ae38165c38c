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
