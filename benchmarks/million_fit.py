"""A whole LICCHIE fit at the 1,000,000-pair scale (d = 19, J = 10, M = 10): wall time
per phase and peak memory (VmHWM), to check that it fits in 24 GB.

    python -m benchmarks.million_fit [--scale 103.8] [--n-init 2] [--max-iter 5] [--dtype float64] [--init-max-iter 100]

Uses all Numba threads (the package default). Prints one JSON line at the end.
"""
import argparse
import json
import resource
import time
import warnings


def _hwm_gib():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM"):
                return int(line.split()[1]) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=103.8)
    ap.add_argument("--n-init", type=int, default=2)
    ap.add_argument("--max-iter", type=int, default=5)
    ap.add_argument("--dtype", default="float64")
    ap.add_argument("--init-max-iter", type=int, default=100,
                    help="ALS iterations of the PARAFAC start")
    a = ap.parse_args(argv)
    import licchie
    from licchie.synthetic import make_recording

    t0 = time.perf_counter()
    ds, _ = make_recording(n_cells=(25, 10), n_frames=50, n_features=19, n_components=10,
                           scale=a.scale, seed=0, interaction=False)
    rec = licchie.as_recording(ds)
    t_data = time.perf_counter() - t0
    base = _hwm_gib()
    m = licchie.LICCHIE(n_components=10, radius=10.0, n_neighbors=10, sigma=0.3,
                        lambdas=(1.0, 0.1, 0.0, 0.01, 0.0), n_init=a.n_init,
                        max_iter=a.max_iter, tol=0.0, random_state=0, verbose=0, dtype=a.dtype,
                        solver_options={"init_max_iter": a.init_max_iter})
    t1 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.fit(rec)
    t_fit = time.perf_counter() - t1
    d = 19
    a_gib = m.n_pairs_ * d * d * 8 / 2**30
    out = dict(n_pairs=int(m.n_pairs_), n_edges=int(m.n_edges_), n_init=a.n_init,
               max_iter=a.max_iter, dtype=a.dtype, init_max_iter=a.init_max_iter, data_s=t_data, fit_s=t_fit,
               s_per_iteration_incl_init=t_fit / (a.n_init * a.max_iter),
               base_gib=base, peak_gib=_hwm_gib(), a_float64_gib=a_gib,
               peak_above_base_in_A=(_hwm_gib() - base) / a_gib)
    print(m.summary())
    print(json.dumps(out))


if __name__ == "__main__":
    main()
