"""asv suite: every stage of a LICCHIE fit on a log grid of problem sizes.

One class per size axis, each varying one quantity from the paper's size
(``_problems.BASE``: 35 cells, 50 frames, d = 10, J = 8, radius 10, M = 10,
about 7,400 pairs):

=============  ================================  ===========================
class          parameter                         what grows
=============  ================================  ===========================
``Cells``      ``scale`` (cells x 1, 2, 4)       pairs, at fixed density
``Frames``     ``n_frames`` 25 .. 200            pairs
``Features``   ``n_features`` d = 5 .. 40        d (pairs fixed)
``Neighbours`` ``radius`` 5 .. 20                S = pairs per target (~r^2)
``Components`` ``n_components`` J = 2 .. 16      J (data fixed)
=============  ================================  ===========================

Per stage (pairs, smoothness graph, A-step, component step, weight step,
objective, one whole plain iteration, ``PARAFAC_ALS_ITERS`` iterations of
the PARAFAC start's CP-ALS, and the end-of-fit source-excitation diagnostic)
there is a ``time_`` and (except the last two added stages) a
``peakmem_`` benchmark; ``track_n_pairs`` / ``track_n_targets`` /
``track_n_edges`` record the sizes so that :mod:`benchmarks.scaling` can fit
exponents against pairs.  Problems are built once per class in
``setup_cache`` (written to ``$TMPDIR/licchie-asv-cache/<class>``), and each
benchmark's ``setup`` loads its problem and calls every kernel once on a tiny
problem, so Numba compilation is never timed.  Compilation itself is measured
by ``Compile`` in fresh processes with an empty (cold) or written (cached)
``NUMBA_CACHE_DIR``.

Threads: BLAS 1 (threadpoolctl), Numba ``LICCHIE_BENCH_THREADS`` (default 1),
so results are comparable between machines and runs.

``peakmem_*`` is asv's whole-process peak RSS, including the interpreter,
the loaded kernels and the problem itself (A, W, graph, ...); differences
between parameters, not absolute values, are what the stage adds.
"""
import json
import os
import subprocess
import sys
import tempfile

from . import _problems as P

_CACHE_ROOT = os.path.join(tempfile.gettempdir(), "licchie-asv-cache")


def _build_all(name):
    """Build and save one problem per parameter value; returns their paths."""
    P.limit_threads()
    key, values = P.AXES[name]
    paths = {}
    for value in values:
        path = os.path.join(_CACHE_ROOT, name, str(value))
        P.save(P.build(**{key: value}), path)
        paths[value] = path
    return paths


class _StagesBase:
    """Per-stage benchmarks of the fit iteration (A, components, weights)."""

    timeout = 900
    processes = 1

    def setup(self, paths, value):
        P.limit_threads()
        P.warm_up()
        self.bundle = P.load(paths[value])
        self.calls = P.stage_calls(self.bundle)

    def time_a_step(self, paths, value):
        self.calls["a_step"]()

    def time_component_step(self, paths, value):
        self.calls["component_step"]()

    def time_weight_step(self, paths, value):
        self.calls["weight_step"]()

    def time_weight_step_target_gain(self, paths, value):
        self.calls["weight_step_target_gain"]()

    def time_objective(self, paths, value):
        self.calls["objective"]()

    def time_iteration(self, paths, value):
        self.calls["iteration"]()

    def time_parafac_als(self, paths, value):
        self.calls["parafac_als"]()

    def time_source_excitation(self, paths, value):
        self.calls["source_excitation"]()

    def peakmem_a_step(self, paths, value):
        self.calls["a_step"]()

    def peakmem_component_step(self, paths, value):
        self.calls["component_step"]()

    def peakmem_weight_step(self, paths, value):
        self.calls["weight_step"]()

    def peakmem_objective(self, paths, value):
        self.calls["objective"]()

    def peakmem_iteration(self, paths, value):
        self.calls["iteration"]()

    def peakmem_parafac_als(self, paths, value):
        self.calls["parafac_als"]()

    def track_n_pairs(self, paths, value):
        return self.bundle["n_pairs"]

    track_n_pairs.unit = "pairs"

    def track_n_targets(self, paths, value):
        return self.bundle["n_targets"]

    track_n_targets.unit = "targets"

    def track_n_edges(self, paths, value):
        return self.bundle["n_edges"]

    track_n_edges.unit = "edges"


class _SetupStagesBase(_StagesBase):
    """Adds the once-per-fit stages that depend on the data only."""

    def time_pairs(self, paths, value):
        self.calls["pairs"]()

    def time_graph(self, paths, value):
        self.calls["graph"]()

    def peakmem_pairs(self, paths, value):
        self.calls["pairs"]()

    def peakmem_graph(self, paths, value):
        self.calls["graph"]()


# Each class needs its own setup_cache (asv keys the cache by source line).

class Cells(_SetupStagesBase):
    param_names = [P.AXES["Cells"][0]]
    params = [P.AXES["Cells"][1]]

    def setup_cache(self):
        return _build_all("Cells")


class Frames(_SetupStagesBase):
    param_names = [P.AXES["Frames"][0]]
    params = [P.AXES["Frames"][1]]

    def setup_cache(self):
        return _build_all("Frames")


class Features(_SetupStagesBase):
    param_names = [P.AXES["Features"][0]]
    params = [P.AXES["Features"][1]]

    def setup_cache(self):
        return _build_all("Features")


class Neighbours(_SetupStagesBase):
    param_names = [P.AXES["Neighbours"][0]]
    params = [P.AXES["Neighbours"][1]]

    def setup_cache(self):
        return _build_all("Neighbours")


class Components(_StagesBase):
    param_names = [P.AXES["Components"][0]]
    params = [P.AXES["Components"][1]]

    def setup_cache(self):
        return _build_all("Components")


for _cls in (Cells, Frames, Features, Neighbours, Components):
    _cls.setup_cache.timeout = 1800


class Fit:
    """End to end: ``LICCHIE(n_init=2, max_iter=5).fit`` at the paper's size."""

    timeout = 900
    processes = 1

    def setup(self):
        P.limit_threads()
        P.warm_up()
        from licchie.synthetic import make_recording

        b = P.BASE
        self.ds, _ = make_recording(n_cells=b["n_cells"], n_frames=b["n_frames"],
                                    n_features=b["n_features"],
                                    n_components=b["n_components"], seed=b["seed"],
                                    interaction=False)

    def _fit(self):
        import warnings

        from licchie import LICCHIE

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            LICCHIE(n_init=2, max_iter=5, random_state=0, verbose=0).fit(self.ds)

    def time_fit(self):
        self._fit()

    def peakmem_fit(self):
        self._fit()


def _first_calls(cache_dir):
    # run as a file, not with -m from the checkout: the child must import the
    # licchie under test (asv's installed one), as this process does
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_problems.py")
    env = P.child_env(NUMBA_CACHE_DIR=cache_dir, LICCHIE_CACHE=1)
    out = subprocess.run([sys.executable, script, "--first-calls"], env=env, check=True,
                         capture_output=True, text=True, timeout=1200)
    return json.loads(out.stdout.strip().splitlines()[-1])


class Compile:
    """Numba compilation (cold cache) vs loading the on-disk cache, fresh processes.

    Each value is the sum of the first calls of every kernel a fit uses, on a
    tiny problem, in a new interpreter (import of licchie excluded; tracked
    by ``timeraw_import_licchie``).
    """

    timeout = 1800
    repeat = 1
    number = 1
    processes = 1

    def track_compile_cold(self):
        with tempfile.TemporaryDirectory(prefix="licchie-numba-") as d:
            return _first_calls(d)["total_stages"]

    track_compile_cold.unit = "seconds"

    def track_cache_load(self):
        with tempfile.TemporaryDirectory(prefix="licchie-numba-") as d:
            _first_calls(d)  # writes the cache
            return _first_calls(d)["total_stages"]

    track_cache_load.unit = "seconds"

    def timeraw_import_licchie(self):
        return "import licchie"
