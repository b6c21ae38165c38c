"""The reduced objective (A eliminated) and the "groups" initialisation.

The kernels of :mod:`licchie.kernels.reduced` are checked against plain
NumPy written from the formulas (dense per-target designs, ``numpy.linalg``),
and the reduced objective against its definition: with ``lam2 = lam3 = 0``
one exact A-step from ``A = B`` must leave ``L`` at the fidelity part of
``F`` plus the weight terms.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from licchie import fit as F
from licchie.fit import reduced_start as RS
from licchie.kernels import reduced as KR

SETTINGS = dict(deadline=None, max_examples=40,
                suppress_health_check=[HealthCheck.too_slow])


@st.composite
def reduced_problems(draw):
    """Targets with 1..4 pairs in up to 4 groups, d and J in 1..4."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    nt = draw(st.integers(1, 6))
    d = draw(st.integers(1, 4))
    J = draw(st.integers(1, 4))
    G = draw(st.integers(1, 4))
    counts = rng.integers(1, 5, size=nt)
    ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    E = int(ptr[-1])
    group = rng.integers(0, G, size=E).astype(np.int64)
    if G >= 2 and draw(st.booleans()):
        # even targets in even groups, odd in odd ones: two or more independent
        # blocks of the profiles' equations, as frames are with class x frame
        parity = np.repeat(np.arange(nt) % 2, counts)
        group = np.minimum(group - group % 2 + parity, G - 1 - (G - 1 - parity) % 2)
    Z = rng.normal(size=(E, d))
    if draw(st.booleans()):  # exact zeros: a source with no signal
        Z[rng.random(E) < 0.3] = 0.0
    W = rng.normal(size=(E, J))
    W[rng.random((E, J)) < 0.3] = 0.0
    C = rng.normal(size=(d, J))
    C /= np.linalg.norm(C, axis=0)
    R = rng.normal(size=(d, J))
    R /= np.linalg.norm(R, axis=0)
    Y = rng.normal(size=(nt, d))
    kappa = rng.uniform(0.05, 1.0, size=nt)
    lam5 = float(draw(st.sampled_from([0.1, 1.0, 10.0])))
    # target gains: all ones (MODEL.md's pooling) or free, zeros and signs included
    gamma = np.ones(nt)
    if draw(st.booleans()):
        gamma = rng.uniform(-0.5, 2.5, size=nt)
        gamma[rng.random(nt) < 0.2] = 0.0
    return dict(ptr=ptr, group=group, G=G, Z=Z, W=W, C=C, R=R, Y=Y, kappa=kappa,
                lam5=lam5, gamma=gamma)


def _design(p, t, U):
    """Dense per-target design ``Q`` (d x S*J) and its pairs."""
    es = np.arange(p["ptr"][t], p["ptr"][t + 1])
    C = p["C"]
    Q = np.concatenate([U[e][None, :] * C for e in es], axis=1)
    return es, Q


@settings(**SETTINGS)
@given(reduced_problems())
def test_target_source_sums(p):
    V = KR.target_source_sums(p["W"], p["Z"], p["ptr"])
    for t in range(len(p["ptr"]) - 1):
        es = slice(p["ptr"][t], p["ptr"][t + 1])
        ref = p["W"][es].T @ p["Z"][es]
        np.testing.assert_allclose(V[t], ref, rtol=1e-12, atol=1e-12)


@settings(**SETTINGS)
@given(reduced_problems())
def test_pooled_normal_equations(p):
    U = np.ascontiguousarray(p["Z"] @ p["R"])
    d, J = p["C"].shape
    G, lam5 = p["G"], p["lam5"]
    rho = lam5 / p["kappa"]
    blocks = _blocks(p, J)
    gram, rhs = KR.pooled_normal_equations(U, p["C"], p["Y"], p["kappa"], p["ptr"],
                                           p["group"], G, lam5, rho, p["gamma"],
                                           *blocks.kernel_args())
    ref_g = np.zeros((G * J, G * J))
    ref_r = np.zeros(G * J)
    for t in range(len(p["ptr"]) - 1):
        es, Q = _design(p, t, U)
        # Omega from its definition: (I / kappa + Q Q^T / lam5)^-1
        Om = np.linalg.inv(np.eye(d) / p["kappa"][t] + Q @ Q.T / lam5)
        H = np.zeros((d, G * J))
        for k, e in enumerate(es):
            g = p["group"][e]
            H[:, g * J:(g + 1) * J] += p["gamma"][t] * Q[:, k * J:(k + 1) * J]
        ref_g += H.T @ Om @ H
        ref_r += H.T @ Om @ p["Y"][t]
    scale = max(1.0, np.abs(ref_g).max())
    np.testing.assert_allclose(gram, blocks.from_matrix(ref_g), rtol=1e-9, atol=1e-10 * scale)
    np.testing.assert_allclose(rhs, ref_r, rtol=1e-9, atol=1e-10 * scale)
    # the blocks hold every non-zero of the dense Gram
    rows, cols, vals = blocks.triplets(blocks.from_matrix(ref_g))
    dense = np.zeros_like(ref_g)
    dense[rows, cols] = vals
    np.testing.assert_array_equal(dense, ref_g)


def _blocks(p, J):
    """The profiles' block layout of a drawn problem: its groups' components."""
    tid = np.repeat(np.arange(len(p["ptr"]) - 1), np.diff(p["ptr"]))
    return RS.ProfileBlocks.of(F.gain_components(p["group"], tid, p["G"])[0], J)


@settings(**SETTINGS)
@given(reduced_problems())
def test_profile_blocks_solve_the_dense_system(p):
    """Solving block by block (with the ridge on the diagonal) is solving the
    dense system; the triplets list the dense matrix's non-zeros as
    scipy's COO does."""
    from scipy import sparse
    J = p["C"].shape[1]
    G = p["G"]
    blocks = _blocks(p, J)
    rng = np.random.default_rng(int(p["ptr"][-1]))
    # a symmetric positive definite matrix with the layout's zero pattern
    mask = blocks.from_matrix(np.ones((G * J, G * J)))
    B = rng.normal(size=(G * J, G * J))
    dense = B @ B.T * blocks_dense(blocks, mask, G * J)
    ridge = rng.uniform(0.5, 1.5, size=G * J)
    rhs = rng.normal(size=G * J)
    gram = blocks.from_matrix(dense)
    blocks.add_diagonal(gram, ridge)
    want = np.linalg.solve(dense + np.diag(ridge), rhs).reshape(G, J)
    np.testing.assert_allclose(blocks.solve(gram, rhs), want, rtol=1e-8, atol=1e-10)
    coo = sparse.coo_matrix(dense)
    for got, ref in zip(blocks.triplets(blocks.from_matrix(dense)), (coo.row, coo.col, coo.data)):
        np.testing.assert_array_equal(got, ref)
    # a sparse matrix gives the same blocks
    np.testing.assert_array_equal(blocks.from_matrix(sparse.csr_matrix(dense)),
                                  blocks.from_matrix(dense))


def blocks_dense(blocks, flat, n):
    """The dense (n, n) matrix of a flat block array (zero between blocks)."""
    rows, cols, vals = blocks.triplets(flat)
    out = np.zeros((n, n))
    out[rows, cols] = vals
    return out


def test_pooled_normal_equations_reject_a_layout_that_splits_a_target():
    """Two groups that share a target must share a block: a layout that puts
    them apart is an error, not a wrong Gram."""
    C = np.eye(2)
    ptr = np.array([0, 2], np.int64)
    group = np.array([0, 1], np.int64)
    apart = RS.ProfileBlocks.of(np.array([0, 1]), 2)
    with pytest.raises(ValueError, match="two blocks"):
        KR.pooled_normal_equations(np.ones((2, 2)), C, np.ones((1, 2)), np.ones(1), ptr,
                                   group, 2, 1.0, np.ones(1), np.ones(1),
                                   *apart.kernel_args())


@settings(**SETTINGS)
@given(reduced_problems())
def test_pooled_deviations_minimise_each_target(p):
    """``W`` minimises ``kappa ||y - Q w||^2 + lam5 ||w - gamma wbar||^2`` per target."""
    U = np.ascontiguousarray(p["Z"] @ p["R"])
    G, J = p["G"], p["C"].shape[1]
    Wbar = np.random.default_rng(0).normal(size=(G, J))
    rho = p["lam5"] / p["kappa"]
    W = KR.pooled_deviations(U, p["C"], p["Y"], p["ptr"], p["group"], Wbar, rho,
                             p["gamma"])
    for t in range(len(p["ptr"]) - 1):
        es, Q = _design(p, t, U)
        k, lam5 = p["kappa"][t], p["lam5"]
        wbar = p["gamma"][t] * Wbar[p["group"][es]].ravel()
        # normal equations of the ridge problem, solved densely
        ref = np.linalg.solve(k * Q.T @ Q + lam5 * np.eye(Q.shape[1]),
                              k * Q.T @ p["Y"][t] + lam5 * wbar)
        np.testing.assert_allclose(W[es].ravel(), ref, rtol=1e-8, atol=1e-9)


def _target_value(p, t, U, wbar, gamma):
    """min over the deviations of ``kappa ||y - Q w||^2 + lam5 ||w - gamma wbar||^2``."""
    es, Q = _design(p, t, U)
    k, lam5 = p["kappa"][t], p["lam5"]
    w = np.linalg.solve(k * Q.T @ Q + lam5 * np.eye(Q.shape[1]),
                        k * Q.T @ p["Y"][t] + lam5 * gamma * wbar)
    r = p["Y"][t] - Q @ w
    return k * r @ r + lam5 * np.sum((w - gamma * wbar) ** 2)


@settings(**SETTINGS)
@given(reduced_problems())
def test_target_gains_minimise_each_target(p):
    """Each gain is the exact minimiser of its target's part of ``F`` (the
    deviations eliminated), checked against a dense reference and against
    nearby gains; a target whose profile prediction is zero keeps its gain."""
    U = np.ascontiguousarray(p["Z"] @ p["R"])
    G, J = p["G"], p["C"].shape[1]
    d = p["C"].shape[0]
    Wbar = np.random.default_rng(1).normal(size=(G, J))
    Wbar[np.random.default_rng(2).random((G, J)) < 0.3] = 0.0
    rho = p["lam5"] / p["kappa"]
    gam = KR.target_gains(U, p["C"], p["Y"], p["ptr"], p["group"], Wbar, rho, p["gamma"])
    for t in range(len(p["ptr"]) - 1):
        es, Q = _design(p, t, U)
        wbar = Wbar[p["group"][es]].ravel()
        h = Q @ wbar
        Om = np.linalg.inv(np.eye(d) / p["kappa"][t] + Q @ Q.T / p["lam5"])
        den = h @ Om @ h
        if den <= 1e-12 * max(1.0, np.abs(Om).max()):
            if not np.any(h):
                assert gam[t] == p["gamma"][t]
            continue
        np.testing.assert_allclose(gam[t], h @ Om @ p["Y"][t] / den, rtol=1e-7, atol=1e-9)
        f0 = _target_value(p, t, U, wbar, gam[t])
        for eps in (1e-3, -1e-3):
            assert f0 <= _target_value(p, t, U, wbar, gam[t] + eps) + 1e-10 * max(1.0, f0)


def test_pooled_profiles_recover_an_exact_gain_times_profile_structure():
    """``W[e] = gamma_t Wbar[g(e)]`` exactly: the pooling term goes to ~0,
    the product is recovered and the gains are normalised to mean 1."""
    rng = np.random.default_rng(5)
    nt, G, J = 40, 3, 4
    counts = rng.integers(1, 5, size=nt)
    ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    tid = np.repeat(np.arange(nt), counts)
    group = rng.integers(0, G, size=ptr[-1]).astype(np.int64)
    gam_true = rng.uniform(0.3, 3.0, size=nt)
    Wb_true = rng.normal(size=(G, J))
    W = gam_true[tid, None] * Wb_true[group]
    # two halves of the targets that share no group: two free scales
    group[tid >= nt // 2] += G
    G2 = 2 * G
    Wb_true = np.vstack([Wb_true, 10.0 * rng.normal(size=(G, J))])
    W = gam_true[tid, None] * Wb_true[group]
    Wbar, gam = F.pooled_profiles(W, group, G2, tid, rounds=200)
    G = G2
    _, t_label, n_comp = F.gain_components(group, tid, G)
    assert n_comp == 2
    for c in range(n_comp):
        assert abs(gam[t_label == c].mean() - 1.0) < 1e-12
    np.testing.assert_allclose(gam[tid, None] * Wbar[group], W, rtol=1e-6, atol=1e-8)
    # never above the value at all-ones gains (MODEL.md's group means)
    W2 = W + 0.3 * rng.normal(size=W.shape)
    mean = F.K.group_mean(W2, group, G)
    Wbar2, gam2 = F.pooled_profiles(W2, group, G, tid)
    assert (np.sum((W2 - gam2[tid, None] * Wbar2[group]) ** 2)
            <= np.sum((W2 - mean[group]) ** 2) + 1e-12)


def _small_problem(lam2=0.0):
    from licchie.data import as_recording
    from licchie.synthetic import make_recording

    ds, truth = make_recording(regime="pooled", n_cells=(5, 3), n_frames=6, n_features=3,
                               n_components=2, density=0.7, noise=0.01, seed=3,
                               balance=0.0)
    obs = as_recording(ds).obs
    pairs = F.build_pairs(obs, 10.0, pooling_groups="class")
    graph = F.build_graph(obs.features, pairs, 4, 0.3)
    prob = F.Problem(obs.features, pairs, graph, (2.0, lam2, 0.0, 0.01, 1.0), 1e-12)
    return obs, pairs, prob


def test_reduced_objective_is_L_after_an_exact_a_step():
    """With lam2 = lam3 = 0, L after one A-step from A = B equals the fidelity
    part of F (kappa-weighted residual of B) plus the weight terms."""
    obs, pairs, prob = _small_problem()
    rng = np.random.default_rng(1)
    d, J = obs.features.shape[1], 2
    C = rng.normal(size=(d, J))
    C /= np.linalg.norm(C, axis=0)
    R = rng.normal(size=(d, J))
    R /= np.linalg.norm(R, axis=0)
    W = rng.normal(size=(pairs.n_pairs, J))
    Wbar = F.K.group_mean(W, pairs.group, pairs.n_groups)
    B = F.K.lowrank_reconstruct(W, C, R)
    A, _ = prob.a_step(B, W, C, R)
    terms = prob.objective(A, W, C, R, Wbar)
    Z, Y, kappa = F.reduced_inputs(prob)
    pred = np.zeros_like(Y)
    for t in range(len(pairs.tgt_ptr) - 1):
        for e in range(pairs.tgt_ptr[t], pairs.tgt_ptr[t + 1]):
            pred[t] += B[e] @ Z[e]
    F_fid = float(kappa @ np.sum((Y - pred) ** 2, axis=1))
    np.testing.assert_allclose(terms[0] + terms[1], F_fid, rtol=1e-9)


def test_group_matrices_recover_exact_group_matrices():
    """Noiseless targets made from one matrix per group: least squares returns them."""
    rng = np.random.default_rng(2)
    nt, d, G = 60, 3, 3
    counts = rng.integers(1, 5, size=nt)
    ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    E = int(ptr[-1])
    group = rng.integers(0, G, size=E).astype(np.int64)
    Z = rng.normal(size=(E, d))
    T_true = rng.normal(size=(G, d, d))
    Y = np.zeros((nt, d))
    for t in range(nt):
        for e in range(ptr[t], ptr[t + 1]):
            Y[t] += T_true[group[e]] @ Z[e]
    T = F.group_matrices(Z, Y, np.ones(nt), ptr, group, G)
    # the ridge (1e-3 of the mean Gram diagonal) biases slightly toward 0
    np.testing.assert_allclose(T, T_true, atol=0.05 * np.abs(T_true).max())
    assert np.abs(T - T_true).max() < np.abs(T_true).max()


def test_reduced_init_lowers_its_objective_and_is_reproducible():
    obs, pairs, prob = _small_problem()
    W1, C1, R1, h1 = F.reduced_init(prob, 2, seed=5, max_sweeps=30, tol=0)
    W2, C2, R2, h2 = F.reduced_init(prob, 2, seed=5, max_sweeps=30, tol=0)
    np.testing.assert_array_equal(C1, C2)
    np.testing.assert_array_equal(W1, W2)
    assert h1[-1] < h1[0]
    np.testing.assert_allclose(np.linalg.norm(C1, axis=0), 1.0)
    np.testing.assert_allclose(np.linalg.norm(R1, axis=0), 1.0)


def test_init_groups_covers_every_pair():
    obs, pairs, prob = _small_problem()
    group, n = F.init_groups(obs, pairs)
    assert group.shape == (pairs.n_pairs,)
    assert group.min() == 0 and group.max() == n - 1
    # windows never mix interaction classes
    cls, _ = F.pair_groups(obs, pairs.tgt, pairs.src, pairs.is_self, "class")
    for g in range(n):
        assert len(np.unique(cls[group == g])) == 1


def test_groups_start_is_monotone_after_init():
    obs, pairs, prob = _small_problem(lam2=0.1)
    A0 = F.initial_interactions(prob)
    ig = F.init_groups(obs, pairs)
    res = F.run_start(prob, A0, 2, 7, 15, 0.0, init="groups", init_group=ig,
                      bootstrap=True)
    tot = np.array([h[2].sum() for h in res.history])
    assert np.all(np.diff(tot) <= 1e-9 * np.abs(tot[:-1]) + 1e-12)


def test_unit_columns_keep_the_low_rank_terms_and_restart_dead_columns():
    rng = np.random.default_rng(3)
    E, d, J, G = 7, 3, 4, 2
    W, Wbar = rng.normal(size=(E, J)), rng.normal(size=(G, J))
    C, R = rng.normal(size=(d, J)), rng.normal(size=(d, J))
    C[:, 2] = 0.0  # a dead column
    W2, C2, R2, Wbar2 = F.unit_columns(W.copy(), C.copy(), R.copy(), rng, Wbar.copy())
    assert np.allclose(np.linalg.norm(C2, axis=0), 1.0)
    assert np.allclose(np.linalg.norm(R2, axis=0), 1.0)
    live = [0, 1, 3]
    for j in live:
        assert np.allclose(W2[:, j, None, None] * np.outer(C2[:, j], R2[:, j]),
                           W[:, j, None, None] * np.outer(C[:, j], R[:, j]))
        # the profiles take the same scale as the weights
        assert np.allclose(Wbar2[:, j] * W[0, j], Wbar[:, j] * W2[0, j])
    assert np.all(W2[:, 2] == 0) and np.all(Wbar2[:, 2] == 0)
    # without a generator a dead column means no result (a rejected candidate)
    assert F.unit_columns(W, C, R) is None


def test_fitted_gains_minimise_each_target():
    rng = np.random.default_rng(4)
    p, y, w = rng.normal(size=(6, 3)), rng.normal(size=(6, 3)), rng.random(6) + 0.5
    p[1] = 0.0  # no prediction: the fallback
    g = F.fitted_gains(p, y, w, fallback=7.0)
    assert g[1] == 7.0
    for s in [0, 2, 3, 4, 5]:
        ref, *_ = np.linalg.lstsq(p[s, :, None], y[s], rcond=None)
        assert np.isclose(g[s], ref[0])
    # the L1 threshold shrinks the numerator toward 0
    thr = np.full(6, 0.1)
    gt = F.fitted_gains(p, y, w, thr)
    num = w * np.einsum("sd,sd->s", p, y)
    den = w * np.einsum("sd,sd->s", p, p)
    ok = den > 0
    assert np.allclose(gt[ok], (np.sign(num) * np.maximum(np.abs(num) - 0.1, 0))[ok] / den[ok])
