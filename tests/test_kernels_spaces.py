"""Population feature spaces (kernels/spaces.py, licchie/fit/spaces.py) against
plain-NumPy references.

Each random problem of ``pair_problems`` gets 1-2 feature spaces: every
observation belongs to one, its missing features are 0 (the union layout),
the effects of a space are unit columns on its features, ``A_old`` is zero
outside each pair's (target space, source space) block and the graph joins
pairs of one class only.  With one space and every feature, the 3-D path
must equal the 2-D one exactly.
"""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import naive
import licchie.kernels as K
from kernel_cases import SETTINGS, _unit_columns, pair_problems
from licchie.fit.pairs import Graph, within_classes
from licchie.fit.spaces import Spaces


@st.composite
def space_problems(draw, full=False, **kw):
    """``pair_problems`` with feature spaces; ``full``: one space, all features."""
    p = draw(pair_problems(max_d=4, **kw))
    rng = p["rng"]
    n_obs, d = p["X"].shape
    J = p["W"].shape[1]
    S = 1 if full else draw(st.integers(1, 2))
    features = np.ones((S, d), bool) if full else rng.random((S, d)) < 0.6
    for s in range(S):
        if not features[s].any():
            features[s, rng.integers(d)] = True
    obs_space = rng.integers(0, S, n_obs)
    X = np.ascontiguousarray(p["X"] * features[obs_space])
    pair_target = np.repeat(np.arange(len(p["tgt_obs"])), np.diff(p["tgt_ptr"]))
    tsp = obs_space[p["tgt_obs"][pair_target]]
    ssp = obs_space[p["src"]]
    cls = (tsp * S + ssp).astype(np.int64)
    C = np.stack([_unit_columns(rng.normal(size=(d, J)) * features[s][:, None])
                  for s in range(S)])
    R = np.stack([_unit_columns(rng.normal(size=(d, J)) * features[s][:, None])
                  for s in range(S)])
    block = features[tsp][:, :, None] & features[ssp][:, None, :]
    A_old = np.ascontiguousarray(p["A_old"] * block)
    g = within_classes(Graph(p["nbr_ptr"], p["nbr_idx"], p["nbr_w"]), cls)
    sp = Spaces(features, np.arange(S), cls)
    p.update(X=X, A_old=A_old, nbr_ptr=g.nbr_ptr, nbr_idx=g.nbr_idx, nbr_w=g.nbr_w,
             C3=C, R3=R, cls=cls, spaces=sp, block=block, tsp=tsp, ssp=ssp)
    return p


def lowrank_classes(p, W, C, R):
    """``B_e = sum_j W[e, j] C[p(e)][:, j] R[q(e)][:, j]^T``."""
    return np.einsum("ej,eij,emj->eim", W, C[p["tsp"]], R[p["ssp"]])


def _kernel_a_step(p, lam1, lam2, lam3, ridge, C=None, R=None, classes=True):
    A_new = np.full_like(p["A_old"], np.nan)
    C = p["C3"] if C is None else C
    R = p["R3"] if R is None else R
    extra = (p["cls"], p["spaces"].class_space) if classes else ()
    n_bad = K.a_step(p["A_old"], p["X"], p["tgt_obs"], p["tgt_ptr"], p["src"], p["gain"],
                     p["nbr_ptr"], p["nbr_idx"], p["nbr_w"], p["W"], C, R, lam1, lam2,
                     lam3, ridge, 100000, 1e-14, A_new, *extra)
    return A_new, n_bad


@settings(**SETTINGS)
@given(space_problems(), st.sampled_from([0.0, 0.5, 2.0]), st.sampled_from([0.0, 0.3]))
def test_a_step_with_spaces_matches_dense_least_squares(p, lam1, lam2):
    ridge = 1e-3
    A_new, _ = _kernel_a_step(p, lam1, lam2, 0.0, ridge)
    B = lowrank_classes(p, p["W"], p["C3"], p["R3"])
    d = p["X"].shape[1]
    ref = np.full_like(A_new, np.nan)
    for t in range(len(p["tgt_obs"])):
        pairs = list(range(p["tgt_ptr"][t], p["tgt_ptr"][t + 1]))
        D, rhs = naive.a_step_design(p["A_old"], p["X"], p["tgt_obs"][t], pairs, p["src"],
                                     p["gain"], p["nbr_ptr"], p["nbr_idx"], p["nbr_w"], B,
                                     lam1, lam2, ridge)
        ref[pairs[0]:pairs[-1] + 1] = np.linalg.lstsq(D, rhs, rcond=None)[0].reshape(-1, d, d)
    np.testing.assert_allclose(A_new, ref, rtol=1e-7, atol=1e-9)
    # the block structure is exact, not approximate
    assert np.all(A_new[~p["block"]] == 0.0)


@settings(**SETTINGS)
@given(space_problems(max_targets=4, max_pairs_per_target=3), st.sampled_from([0.01, 1.0]))
def test_a_step_lasso_with_spaces_keeps_blocks(p, lam3):
    A_new, n_bad = _kernel_a_step(p, 1.0, 0.2, lam3, 1e-2)
    assert n_bad == 0
    assert np.all(A_new[~p["block"]] == 0.0)
    B = lowrank_classes(p, p["W"], p["C3"], p["R3"])
    for t in range(len(p["tgt_obs"])):
        pairs = list(range(p["tgt_ptr"][t], p["tgt_ptr"][t + 1]))
        D, rhs = naive.a_step_design(p["A_old"], p["X"], p["tgt_obs"][t], pairs, p["src"],
                                     p["gain"], p["nbr_ptr"], p["nbr_idx"], p["nbr_w"], B,
                                     1.0, 0.2, 1e-2)
        a = A_new[pairs[0]:pairs[-1] + 1].ravel()
        scale = 1.0 + np.abs(D).max() * (np.abs(D).max() * np.abs(a).sum() + np.abs(rhs).max())
        assert naive.lasso_kkt_violation(D, rhs, a, lam3) <= 1e-9 * scale


@settings(**SETTINGS)
@given(space_problems(full=True), st.sampled_from([0.0, 1.0]), st.sampled_from([0.0, 0.3]))
def test_one_full_space_equals_the_plain_kernels(p, lam1, lam2):
    """One space with every feature: the class path is the 2-D path, bit for bit."""
    a3, _ = _kernel_a_step(p, lam1, lam2, 0.0, 1e-3)
    a2, _ = _kernel_a_step(p, lam1, lam2, 0.0, 1e-3, C=p["C3"][0], R=p["R3"][0],
                           classes=False)
    np.testing.assert_array_equal(a3, a2)
    args = (p["A_old"], p["X"], p["tgt_obs"], p["tgt_ptr"], p["src"], p["gain"],
            p["nbr_ptr"], p["nbr_idx"], p["nbr_w"], p["W"])
    t3 = K.objective_terms(*args, p["C3"], p["R3"], p["Wbar"], p["group"], p["cls"],
                           p["spaces"].class_space)
    t2 = K.objective_terms(*args, p["C3"][0], p["R3"][0], p["Wbar"], p["group"])
    np.testing.assert_array_equal(t3, t2)


@settings(**SETTINGS)
@given(space_problems())
def test_objective_terms_with_spaces(p):
    args = (p["A_old"], p["X"], p["tgt_obs"], p["tgt_ptr"], p["src"], p["gain"],
            p["nbr_ptr"], p["nbr_idx"], p["nbr_w"], p["W"])
    got = K.objective_terms(*args, p["C3"], p["R3"], p["Wbar"], p["group"], p["cls"],
                            p["spaces"].class_space)
    # the reference with 2-D effects, then its low-rank term replaced
    ref = naive.objective_terms(*args, p["C3"][0], p["R3"][0], p["Wbar"], p["group"])
    B = lowrank_classes(p, p["W"], p["C3"], p["R3"])
    ref[1] = float(np.sum((p["A_old"] - B) ** 2))
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10)


@settings(**SETTINGS)
@given(space_problems())
def test_class_contractions(p):
    sp = p["spaces"]
    A, W = p["A_old"], p["W"]
    got = K.weighted_sum_classes(A, W, p["cls"], sp.n_classes)
    for c in range(sp.n_classes):
        ref = np.einsum("ej,eim->jim", W[p["cls"] == c], A[p["cls"] == c])
        np.testing.assert_allclose(got[c], ref, rtol=1e-12, atol=1e-12)
    b = K.bilinear_classes(A, p["C3"], p["R3"], p["cls"], sp.class_space)
    ref = np.einsum("eij,eim,emj->ej", p["C3"][p["tsp"]], A, p["R3"][p["ssp"]])
    np.testing.assert_allclose(b, ref, rtol=1e-12, atol=1e-12)
    M, cls = K.class_motifs(p["C3"], p["R3"], p["cls"], sp.class_space, len(p["cls"]))
    for c, (tp, sq) in enumerate(sp.class_space):
        for j in range(W.shape[1]):
            np.testing.assert_array_equal(
                M[c, j], np.outer(p["C3"][tp][:, j], p["R3"][sq][:, j]).ravel())


def naive_component_step(p, A, W, C, R):
    """Per space, each ``c_j^(p)`` from the dense residuals of the pairs into
    ``p``, then each ``r_j^(q)`` from those out of ``q``."""
    C, R = C.copy(), R.copy()
    J = W.shape[1]
    S = C.shape[0]

    def motif(e, i):
        return np.outer(C[p["tsp"][e], :, i], R[p["ssp"][e], :, i])

    for s in range(S):
        for j in range(J):
            v = np.zeros(C.shape[1])
            for e in np.flatnonzero(p["tsp"] == s):
                Ee = A[e] - sum(W[e, i] * motif(e, i) for i in range(J) if i != j)
                v += W[e, j] * Ee @ R[p["ssp"][e], :, j]
            if np.linalg.norm(v) > 0:
                C[s, :, j] = v / np.linalg.norm(v)
    for s in range(S):
        for j in range(J):
            v = np.zeros(R.shape[1])
            for e in np.flatnonzero(p["ssp"] == s):
                Ee = A[e] - sum(W[e, i] * motif(e, i) for i in range(J) if i != j)
                v += W[e, j] * Ee.T @ C[p["tsp"][e], :, j]
            if np.linalg.norm(v) > 0:
                R[s, :, j] = v / np.linalg.norm(v)
    return C, R


@settings(**SETTINGS)
@given(space_problems())
def test_component_step_with_spaces(p):
    C, R = p["spaces"].component_step(p["A_old"], p["W"], p["C3"], p["R3"])
    Cr, Rr = naive_component_step(p, p["A_old"], p["W"], p["C3"], p["R3"])
    np.testing.assert_allclose(C, Cr, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(R, Rr, rtol=1e-8, atol=1e-10)
    # zero off each space's features, unit on them
    for s in range(C.shape[0]):
        assert np.all(C[s][~p["spaces"].features[s]] == 0.0)
        np.testing.assert_allclose(np.linalg.norm(C[s], axis=0), 1.0, rtol=1e-12)


@settings(**SETTINGS)
@given(space_problems(max_targets=3, max_pairs_per_target=2),
       st.sampled_from([0.0, 0.3]), st.sampled_from([0.0, 0.5]))
def test_weight_step_with_spaces_matches_sklearn(p, lam4, lam5):
    lam1 = 1.0
    W, n_bad = p["spaces"].weight_step(p["A_old"], p["W"], p["C3"], p["R3"], p["Wbar"],
                                       p["group"], lam1, lam4, lam5, 100000, 1e-14)
    assert n_bad == 0
    for e in range(W.shape[0]):
        Cp, Rq = p["C3"][p["tsp"][e]], p["R3"][p["ssp"][e]]
        D, t = naive.weight_design(p["A_old"][e], Cp, Rq, p["Wbar"][p["group"][e]], lam1, lam5)
        if np.linalg.matrix_rank(D) < D.shape[1]:
            continue  # not unique: sklearn and the kernel may pick different minimisers
        ref = naive.weight_lasso_sklearn(p["A_old"][e], Cp, Rq, p["Wbar"][p["group"][e]],
                                         lam1, lam4, lam5)
        np.testing.assert_allclose(W[e], ref, rtol=1e-5, atol=1e-6)


@settings(**SETTINGS)
@given(space_problems())
def test_unit_and_lowrank_with_spaces(p):
    sp = p["spaces"]
    rng = np.random.default_rng(0)
    C = p["C3"] * rng.uniform(0.5, 2.0, size=(sp.n_spaces, 1, p["W"].shape[1]))
    R = p["R3"] * rng.uniform(0.5, 2.0, size=(sp.n_spaces, 1, p["W"].shape[1]))
    W1, C1, R1 = sp.unit(p["W"], C, R)
    np.testing.assert_allclose(sp.lowrank(W1, C1, R1), lowrank_classes(p, p["W"], C, R),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(C1, axis=1), 1.0, rtol=1e-12)
    X = p["X"]
    pred = sp.predict(X, p["tgt_ptr"], p["src"], p["W"], p["gain"], p["C3"], p["R3"])
    ref = naive.predict_pairs(lowrank_classes(p, p["W"], p["C3"], p["R3"]), X, p["tgt_ptr"],
                              p["src"], p["gain"])
    np.testing.assert_allclose(pred, ref, rtol=1e-10, atol=1e-12)


def test_within_classes_drops_cross_class_edges():
    g = Graph(np.array([0, 2, 3, 4], np.int64), np.array([1, 2, 0, 0], np.int64),
              np.array([0.5, 0.25, 0.5, 0.25]))
    out = within_classes(g, np.array([0, 0, 1], np.int64))
    np.testing.assert_array_equal(out.nbr_ptr, [0, 1, 2, 2])
    np.testing.assert_array_equal(out.nbr_idx, [1, 0])
    np.testing.assert_array_equal(out.nbr_w, [0.5, 0.5])



@settings(**SETTINGS)
@given(space_problems())
def test_class_contractions_float32(p):
    """A float32 A is widened before summing: the same sums as of its float64 copy."""
    A32 = p["A_old"].astype(np.float32)
    A64 = A32.astype(np.float64)
    sp = p["spaces"]
    np.testing.assert_allclose(K.weighted_sum_classes(A32, p["W"], p["cls"], sp.n_classes),
                               K.weighted_sum_classes(A64, p["W"], p["cls"], sp.n_classes),
                               rtol=1e-13, atol=1e-13)
    np.testing.assert_array_equal(
        K.bilinear_classes(A32, p["C3"], p["R3"], p["cls"], sp.class_space),
        K.bilinear_classes(A64, p["C3"], p["R3"], p["cls"], sp.class_space))
