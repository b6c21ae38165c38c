"""The naive implementation (benchmarks/naive.py) and LICCHIE's engine agree.

Both are written from MODEL.md independently: the naive one with cKDTree,
sklearn NearestNeighbors, dense wide least squares / sklearn Lasso and
tensorly; LICCHIE with its Numba kernels.  On a tiny recording they must
build the same pairs and graph and, from the same PARAFAC start, produce the
same iterate and the same objective after one outer iteration.  This checks
the benchmark baseline (it solves the same problem, so the speed comparison
is fair) and, independently of the kernel tests, the engine.

The naive implementation stays in ``benchmarks/`` because ``compare`` and
``scaling`` time it.  The tests run against the installed package, where the
repository root is not on ``sys.path``, so this module loads
``benchmarks/naive.py`` by file path (under a name that cannot clash with
``tests/naive.py``).
"""
import importlib.util
import pathlib
import sys

import numpy as np
from numpy.testing import assert_allclose, assert_array_equal

import licchie
from licchie import fit as F
from licchie import kernels as K
from licchie.synthetic import make_recording


def _load_benchmark_naive():
    path = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "naive.py"
    spec = importlib.util.spec_from_file_location("_benchmarks_naive", path)
    module = importlib.util.module_from_spec(spec)
    # registered before executing: @dataclass looks its module up in sys.modules
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


N = _load_benchmark_naive()

LAMBDA_CASES = {
    # (lam1, lam2, lam3, lam4, lam5)
    "default": (1.0, 0.1, 0.0, 0.01, 0.0),
    "strong_smoothness_no_l1": (0.5, 2.0, 0.0, 0.0, 0.0),
    "no_smoothness": (1.0, 0.0, 0.0, 0.05, 0.0),
    "lasso_A_and_pooling": (1.0, 0.1, 0.02, 0.01, 0.5),
}


def _tiny(pair_weight="none", seed=3):
    ds, _ = make_recording(n_cells=(6, 4), n_frames=6, n_features=4, n_components=3,
                           seed=seed, interaction=False)
    return licchie.as_recording(ds).obs


def _both(obs, lambdas, radius=10.0, n_neighbors=4, sigma=0.3, pair_weight="none"):
    ridge = F.RIDGE_REL * float(np.mean(obs.features ** 2))
    pairs = F.build_pairs(obs, radius, True, pair_weight, None)
    graph = F.build_graph(obs.features, pairs, n_neighbors, sigma)
    lic = F.Problem(obs.features, pairs, graph, lambdas, ridge)
    nai = N.make_problem(obs, radius, n_neighbors, sigma, lambdas, ridge,
                         pair_weight=pair_weight)
    return lic, nai


def test_pairs_gains_and_groups_agree():
    obs = _tiny()
    for pw in ("none", "gaussian", "distance"):
        lic, nai = _both(obs, LAMBDA_CASES["default"], pair_weight=pw)
        p = lic.pairs
        assert p.n_pairs > 20
        assert_array_equal(nai.tgt, p.tgt)
        assert_array_equal(nai.src, p.src)
        assert_array_equal(nai.targets, p.tgt_obs)
        assert_allclose(nai.gain, p.gain, rtol=1e-12, atol=0)
        assert_array_equal(nai.group, p.group)
        assert nai.n_groups == p.n_groups


def test_graph_agrees():
    obs = _tiny()
    lic, nai = _both(obs, LAMBDA_CASES["default"])
    g = lic.graph
    E = lic.pairs.n_pairs
    lic_edges = {}
    for e in range(E):
        for k in range(g.nbr_ptr[e], g.nbr_ptr[e + 1]):
            f = int(g.nbr_idx[k])
            lic_edges[(min(e, f), max(e, f))] = g.nbr_w[k]
    nai_edges = {(int(a), int(b)): w for (a, b), w in zip(nai.edges, nai.edge_w)}
    assert set(lic_edges) == set(nai_edges)
    keys = sorted(lic_edges)
    assert_allclose([nai_edges[k] for k in keys], [lic_edges[k] for k in keys], rtol=1e-12)
    assert g.n_edges == len(nai_edges)


def test_objective_agrees_at_a_random_state():
    obs = _tiny()
    rng = np.random.default_rng(0)
    lic, nai = _both(obs, LAMBDA_CASES["lasso_A_and_pooling"])
    E, d, J = lic.pairs.n_pairs, obs.n_features, 3
    A = rng.normal(size=(E, d, d))
    W = rng.normal(size=(E, J))
    C = rng.normal(size=(d, J))
    R = rng.normal(size=(d, J))
    C /= np.linalg.norm(C, axis=0)
    R /= np.linalg.norm(R, axis=0)
    Wbar = rng.normal(size=(lic.pairs.n_groups, J))
    assert_allclose(N.objective(nai, A, W, C, R, Wbar), lic.objective(A, W, C, R, Wbar),
                    rtol=1e-11)


def test_initial_interactions_agree():
    obs = _tiny()
    for name, lam in LAMBDA_CASES.items():
        lic, nai = _both(obs, lam)
        A_lic = F.initial_interactions(lic)
        A_nai = N.initial_interactions(nai, obs.n_features)
        tol = 1e-6 if lam[2] > 0 else 1e-9
        assert_allclose(A_nai, A_lic, rtol=tol, atol=tol * np.abs(A_lic).max(), err_msg=name)


def _one_iteration(lam, J=3, seed=11):
    obs = _tiny()
    lic, nai = _both(obs, lam)
    A0 = F.initial_interactions(lic)
    W0, C0, R0 = F.parafac_init(A0, J, seed)
    Wb0 = K.group_mean(W0, lic.pairs.group, lic.pairs.n_groups)
    # licchie, exactly the steps of run_start's loop
    A1, _ = lic.a_step(A0, W0, C0, R0)
    oA = lic.objective(A1, W0, C0, R0, Wb0)
    C1, R1 = lic.component_step(A1, W0, C0, R0)
    oC = lic.objective(A1, W0, C1, R1, Wb0)
    W1, Wb1, _, _ = lic.weight_step(A1, W0, C1, R1, Wb0)
    oW = lic.objective(A1, W1, C1, R1, Wb1)
    # naive, from the same start
    (nA, nW, nC, nR, nWb), hist = N.iteration(nai, A0, W0, C0, R0, Wb0)
    o0 = lic.objective(A0, W0, C0, R0, Wb0)
    return dict(lic=(A1, C1, R1, W1, Wb1, oA, oC, oW), nai=(nA, nC, nR, nW, nWb, *hist),
                o0=o0)


def test_one_outer_iteration_agrees():
    for name, lam in LAMBDA_CASES.items():
        r = _one_iteration(lam)
        lasso = lam[2] > 0 or lam[3] > 0
        rtol = 1e-6 if lasso else 1e-9
        labels = ("A", "C", "R", "W", "Wbar", "L after A", "L after components",
                  "L after weights")
        for label, x_nai, x_lic in zip(labels, r["nai"], r["lic"]):
            scale = np.abs(x_lic).max()
            assert_allclose(x_nai, x_lic, rtol=rtol, atol=rtol * max(scale, 1e-300),
                            err_msg=f"{name}: {label}")
        # and the objective never increased along the way (MODEL.md)
        totals = [r["o0"].sum()] + [r["lic"][k].sum() for k in (5, 6, 7)]
        assert all(b <= a * (1 + 1e-12) for a, b in zip(totals, totals[1:])), (name, totals)


def test_two_iterations_follow_the_same_trajectory():
    obs = _tiny()
    lam = LAMBDA_CASES["default"]
    lic, nai = _both(obs, lam)
    A0 = F.initial_interactions(lic)
    res = F.run_start(lic, A0, 3, 5, max_iter=2, tol=0.0, extrapolate=False)
    W, C, R = F.parafac_init(A0, 3, 5)
    state = (A0, W, C, R, K.group_mean(W, lic.pairs.group, lic.pairs.n_groups))
    hist = []
    for _ in range(2):
        state, h = N.iteration(nai, *state)
        hist += h
    lic_hist = [h[2] for h in res.history[1:]]
    assert_allclose(np.array(hist), np.array(lic_hist), rtol=1e-7)
    assert_allclose(state[0], res.A, rtol=1e-6, atol=1e-9 * np.abs(res.A).max())
