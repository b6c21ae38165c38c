"""The fit's pooled search on two workers: whole searches against searches in chunks.

Captures the search a default fit of one suite regime and seed runs (its
statistics and settings), then times it on ``NUMBA_NUM_THREADS`` worker
processes with every search run whole (three searches on two workers: one
worker idles for a third of the time) and in chunks
(:func:`licchie.fit.search._chunks`, what the fit does), in this process,
and checks that both give the same result bit for bit.

    NUMBA_NUM_THREADS=2 python benchmarks/search_chunks.py shared 0
"""
import argparse
import sys
import time
import warnings

import numpy as np

from licchie import LICCHIE
from licchie.fit import global_start as FG
from licchie.fit import search as S
from licchie.synthetic import SUITE, make_suite_recording


class _Captured(Exception):
    pass


def captured_search(regime, seed):
    """``(data, n_components, kwargs)`` of the first search of a default fit."""
    ds, truth = make_suite_recording(regime, seed)
    got = {}
    real = FG.search

    def grab(data, n, **kw):
        got.update(data=data, n=n, kw=kw)
        raise _Captured

    FG.search = grab
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            LICCHIE(n_components=int(truth.sizes["component"]),
                    radius=float(ds.attrs["radius"]), random_state=seed).fit(ds)
    except _Captured:
        pass
    finally:
        FG.search = real
    return got["data"], got["n"], got["kw"]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("regime", choices=sorted(SUITE))
    p.add_argument("seed", type=int)
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args(argv)
    data, n, kw = captured_search(a.regime, a.seed)
    seed = kw["seed"]
    chunks = S._chunks
    times = {"whole": [], "chunks": []}
    results = {}
    for _ in range(a.repeat):
        for mode in times:
            S._chunks = chunks if mode == "chunks" else (lambda n_s, n_w: 1)
            # a SeedSequence spawns new children at every use: a fresh copy
            run = dict(kw, progress=False,
                       seed=np.random.SeedSequence(seed.entropy, spawn_key=seed.spawn_key))
            t = time.perf_counter()
            res = S.search(data, n, **run)
            times[mode].append(time.perf_counter() - t)
            results.setdefault(mode, res)
    S._chunks = chunks
    a_, b_ = results["whole"], results["chunks"]
    same = (a_.loss == b_.loss and np.array_equal(a_.C, b_.C) and np.array_equal(a_.R, b_.R)
            and len(a_.candidates) == len(b_.candidates))
    med = {m: float(np.median(t)) for m, t in times.items()}
    print(f"{a.regime} seed {a.seed}, {kw['n_searches']} searches on {kw['n_workers']} "
          f"workers, {kw['eval_budget']} evaluations: whole {med['whole']:.1f} s, chunks "
          f"{med['chunks']:.1f} s (medians of {a.repeat}), ratio "
          f"{med['whole'] / med['chunks']:.2f}, same result: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
