"""Cancellation of pooling profiles (licchie.fit.profile_cancellation) and its warning."""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from licchie.fit import (CANCELLATION_LIMIT, profile_cancellation,
                         warn_cancelling_profiles)


def _unit(rng, d, J):
    X = rng.standard_normal((d, J))
    return X / np.linalg.norm(X, axis=0)


def _reference(w, C, R):
    """sum |w_j| ||M_j|| / ||sum_j w_j M_j|| with the d x d motifs formed."""
    M = np.einsum("ij,kj->jik", C, R)
    num = sum(abs(w[j]) * np.linalg.norm(M[j]) for j in range(len(w)))
    if num == 0:
        return np.nan
    return num / np.linalg.norm(np.tensordot(w, M, axes=1))


@settings(max_examples=40, deadline=None)
@given(d=st.integers(2, 6), J=st.integers(1, 5), G=st.integers(1, 6),
       seed=st.integers(0, 2**31 - 1), zero_row=st.booleans())
def test_matches_formed_motifs(d, J, G, seed, zero_row):
    rng = np.random.default_rng(seed)
    C, R = _unit(rng, d, J), _unit(rng, d, J)
    W = rng.standard_normal((G, J)) * rng.exponential(3.0, (G, 1))
    if zero_row:
        W[0] = 0.0
    got = profile_cancellation(W, C, R)
    want = np.array([_reference(W[g], C, R) for g in range(G)])
    np.testing.assert_allclose(got, want, rtol=1e-8, atol=0, equal_nan=True)
    assert np.all(got[~np.isnan(got)] >= 1 - 1e-9)  # triangle inequality


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), G=st.integers(1, 6))
def test_feature_spaces_use_the_class_block(seed, G):
    """With spaces, each group's motifs are its (target, source) spaces' blocks."""
    rng = np.random.default_rng(seed)
    S, d, J = 2, 5, 3
    C = np.stack([_unit(rng, d, J) for _ in range(S)])
    R = np.stack([_unit(rng, d, J) for _ in range(S)])
    W = rng.standard_normal((G, J))
    gs = rng.integers(0, S, (G, 2))
    got = profile_cancellation(W, C, R, gs)
    want = [_reference(W[g], C[gs[g, 0]], R[gs[g, 1]]) for g in range(G)]
    np.testing.assert_allclose(got, want, rtol=1e-8)


def test_cancelling_profile_is_large():
    """Three motifs that sum to almost zero, all weighted alike: large kappa."""
    c = np.array([[1.0, 0.0], [-0.5, np.sqrt(3) / 2], [-0.5, -np.sqrt(3) / 2]]).T
    C = c
    R = np.tile([[1.0], [0.0]], (1, 3))
    W = np.array([[10.0, 10.0, 10.001], [1.0, 0.0, 0.0]])
    k = profile_cancellation(W, C, R)
    assert k[0] > 1e3 and k[1] == pytest.approx(1.0)


def test_warning_fires_on_a_share_of_cancelling_profiles():
    ok = np.ones(100)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_cancelling_profiles(ok)
        # a tenth exactly at the limit does not warn; NaN (unused groups) is ignored
        warn_cancelling_profiles(np.r_[ok[:90], np.full(10, CANCELLATION_LIMIT + 1), np.nan])
    with pytest.warns(UserWarning, match=r"pooling_groups='class'"):
        warn_cancelling_profiles(np.r_[ok[:80], np.full(20, 50.0)])


def test_fitted_profiles_carry_their_cancellation():
    import licchie
    ds, _ = licchie.synthetic.make_suite_recording("shared", seed=1, n_frames=6,
                                                   n_cells=(10, 6))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = licchie.LICCHIE(n_components=3, max_iter=20, random_state=0,
                            solver_options=dict(search_time=5.0)).fit(ds)
    gw = m.group_weights_
    C = m.components_["target_effect"].values.T
    R = m.components_["source_effect"].values.T
    np.testing.assert_allclose(gw["cancellation"].values,
                               profile_cancellation(gw.values, C, R), equal_nan=True)
