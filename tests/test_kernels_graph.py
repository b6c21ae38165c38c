"""Numba kernels of the smoothness graph: stacked states, the (pruned) kNN and symmetrisation agree with their plain-NumPy references in ``naive.py``.

Split from the former ``test_kernels.py``; strategies shared between families
are in ``kernel_cases.py``.
"""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import naive
import licchie.kernels as K
from kernel_cases import SETTINGS


# --------------------------------------------------------------------------
# smoothness graph
# --------------------------------------------------------------------------

@st.composite
def stacked(draw):
    E = draw(st.integers(2, 40))
    D = 2 * draw(st.integers(1, 3))
    if draw(st.booleans()):
        el = st.integers(-1, 1).map(float)  # many exact ties and duplicate rows
    else:
        el = st.floats(-3, 3, allow_nan=False, width=64)
    S = draw(arrays(np.float64, (E, D), elements=el))
    M = draw(st.integers(1, min(E - 1, 6)))
    return S, M


@settings(**SETTINGS)
@given(stacked())
def test_knn_stacked_is_exact(case):
    S, M = case
    idx, d2 = K.knn_stacked(S, M)
    E = S.shape[0]
    assert idx.shape == (E, M) and d2.shape == (E, M)
    for q in range(E):
        ref = naive.knn_order(S, q)
        ref_d = np.array([r[0] for r in ref[:M]])
        # chosen neighbours: valid, distinct, not q itself
        assert np.all((idx[q] >= 0) & (idx[q] < E)) and q not in idx[q]
        assert len(set(idx[q].tolist())) == M
        # their distances are the M smallest, in order
        np.testing.assert_allclose(d2[q], ref_d, rtol=1e-12, atol=1e-300)
        own = np.array([naive.sq_euclid(S[q], S[c]) for c in idx[q]])
        np.testing.assert_allclose(own, ref_d, rtol=1e-12, atol=1e-300)
        # documented tie-break: (distance, index); exact with IEEE sums
        np.testing.assert_array_equal(idx[q], [r[1] for r in ref[:M]])


def test_knn_stacked_ties_from_underflow():
    """Found by hypothesis: at 1e-192 the squared distances underflow to 0,
    so rows 0 and 2 tie for row 1 and the lower index wins."""
    S = np.array([[8.78008498e-192, 0.0], [0.0, 0.0], [0.0, 0.0]])
    idx, d2 = K.knn_stacked(S, 1)
    np.testing.assert_array_equal(idx[:, 0], [1, 0, 0])
    np.testing.assert_array_equal(d2, 0.0)


@st.composite
def clustered(draw):
    """Rows in a few tight clusters plus scattered rows, duplicates and ties:
    the cases where the cluster bounds of the pruned search are tight."""
    D = 2 * draw(st.integers(1, 4))
    n_clusters = draw(st.integers(1, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    centres = rng.normal(scale=draw(st.sampled_from([1e-3, 1.0, 1e3])), size=(n_clusters, D))
    E = draw(st.integers(2, 160))
    rows = centres[rng.integers(n_clusters, size=E)]
    rows = rows + rng.normal(scale=draw(st.sampled_from([0.0, 1e-9, 1e-2, 1.0])), size=(E, D))
    if draw(st.booleans()):
        rows = np.round(rows, 1)  # many exact ties and duplicate rows
    M = draw(st.integers(1, min(E - 1, 8)))
    leaf = draw(st.integers(1, 24))
    return np.ascontiguousarray(rows), M, leaf


@settings(**SETTINGS)
@given(clustered())
def test_knn_pruned_with_many_clusters_equals_brute_force(case):
    # knn_stacked uses clusters of ~256 rows, so the other tests reach only one
    # cluster; small leaves make the pruning bounds decide which rows are read.
    from licchie.kernels.knn import _knn_brute, _knn_pruned
    S, M, leaf = case
    idx, d2 = _knn_pruned(S, M, leaf)
    ref_idx, ref_d2 = _knn_brute(S, M)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_array_equal(d2, ref_d2)
    for q in (0, S.shape[0] - 1):  # and brute force is the plain reference
        ref = naive.knn_order(S, q)
        np.testing.assert_array_equal(idx[q], [r[1] for r in ref[:M]])


def test_stacked_states():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(6, 3))
    tgt = np.array([3, 3, 4, 5], np.int64)
    src = np.array([0, 2, 1, 1], np.int64)
    np.testing.assert_array_equal(K.stacked_states(X, tgt, src),
                                  naive.stacked_states(X, tgt, src))


@settings(**SETTINGS)
@given(stacked(), st.floats(0.0, 3.0))
def test_symmetric_graph(case, sigma):
    S, M = case
    idx, _ = K.knn_stacked(S, M)
    ptr, nidx, nw = K.symmetric_graph(S, idx, sigma)
    rptr, ridx, rw = naive.symmetric_graph(S, idx, sigma)
    np.testing.assert_array_equal(ptr, rptr)
    np.testing.assert_array_equal(nidx, ridx)
    np.testing.assert_allclose(nw, rw, rtol=1e-14)
    E = S.shape[0]
    seen = {}
    for e in range(E):
        seg = nidx[ptr[e]:ptr[e + 1]]
        assert np.all(np.diff(seg) > 0) and e not in seg  # ascending, no dups, no loops
        for k in range(ptr[e], ptr[e + 1]):
            seen[(e, int(nidx[k]))] = nw[k]
    # every edge from both ends with bitwise identical weight
    for (a, b), w in seen.items():
        assert seen[(b, a)] == w
    # every kNN relation is an edge
    for e in range(E):
        for f in idx[e]:
            assert (e, int(f)) in seen
