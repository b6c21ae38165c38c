"""The gain-eliminated pooled loss (``licchie.kernels.gains``) against its
NumPy reference, the reference against finite differences, and the loss
against the loss at explicitly fitted gains.
"""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import naive
from licchie.kernels import gains as KG
from kernel_cases import SETTINGS


def _rows(seed, n_targets, n_groups, d, J):
    """Random (target, group) rows: some targets without rows, some zero rows."""
    rng = np.random.default_rng(seed)
    count = rng.integers(0, n_groups + 1, size=n_targets)
    tg_ptr = np.concatenate([[0], np.cumsum(count)]).astype(np.int64)
    tg_group = np.concatenate([np.sort(rng.choice(n_groups, c, replace=False))
                               for c in count] + [np.zeros(0, int)]).astype(np.int64)
    Z = rng.normal(size=(tg_ptr[-1], d))
    Z[rng.random(Z.shape[0]) < 0.2] = 0.0
    Y = rng.normal(size=(n_targets, d))
    Wbar = rng.normal(size=(n_groups, J))
    Wbar[rng.random(n_groups) < 0.2] = 0.0
    C, R = rng.normal(size=(d, J)), rng.normal(size=(d, J))
    return Y, Z, tg_ptr, tg_group, Wbar, C, R


@settings(**SETTINGS)
@given(st.integers(0, 2**32 - 1), st.integers(1, 8), st.integers(1, 5), st.integers(1, 4),
       st.integers(1, 3))
def test_gain_eliminated_loss_matches_reference(seed, n_targets, n_groups, d, J):
    Y, Z, tg_ptr, tg_group, Wbar, C, R = _rows(seed, n_targets, n_groups, d, J)
    gW, gC, gR = np.full((n_groups, J), np.nan), np.full((d, J), np.nan), np.full((d, J), np.nan)
    F = KG.gain_eliminated_loss(Y, Z, tg_ptr, tg_group, Wbar, C, R, gW, gC, gR)
    F_ref, gW_ref, gC_ref, gR_ref = naive.gain_eliminated_loss(Y, Z, tg_ptr, tg_group,
                                                               Wbar, C, R)
    np.testing.assert_allclose(F, F_ref, rtol=1e-11, atol=1e-12)
    for got, ref in ((gW, gW_ref), (gC, gC_ref), (gR, gR_ref)):
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-11)


@settings(**SETTINGS)
@given(st.integers(0, 2**32 - 1), st.integers(1, 6), st.integers(1, 4), st.integers(1, 4),
       st.integers(1, 3))
def test_gain_eliminated_loss_is_the_loss_at_the_best_gains(seed, n_targets, n_groups, d, J):
    """F equals the residual at every target's least-squares gain, no gain does
    better, and the gradient is that of F (central differences)."""
    Y, Z, tg_ptr, tg_group, Wbar, C, R = _rows(seed, n_targets, n_groups, d, J)
    F = naive.gain_eliminated_loss(Y, Z, tg_ptr, tg_group, Wbar, C, R)[0]
    P = np.array([C @ sum((Wbar[tg_group[a]] * (R.T @ Z[a])
                           for a in range(tg_ptr[i], tg_ptr[i + 1])), np.zeros(J))
                  for i in range(n_targets)])
    gam = np.array([np.linalg.lstsq(p[:, None], y, rcond=None)[0][0] if p @ p > 0 else 0.0
                    for p, y in zip(P, Y)])
    assert np.isclose(F, np.sum((Y - gam[:, None] * P) ** 2), rtol=1e-10, atol=1e-12)
    rng = np.random.default_rng(seed + 1)
    other = gam + rng.normal(size=gam.size)
    assert F <= np.sum((Y - other[:, None] * P) ** 2) + 1e-12
    grads = naive.gain_eliminated_loss(Y, Z, tg_ptr, tg_group, Wbar, C, R)[1:]
    h = 1e-6
    for k, arr in enumerate((Wbar, C, R)):
        D = rng.normal(size=arr.shape)
        args_p = [Wbar, C, R]
        args_m = [Wbar, C, R]
        args_p[k], args_m[k] = arr + h * D, arr - h * D
        fd = (naive.gain_eliminated_loss(Y, Z, tg_ptr, tg_group, *args_p)[0]
              - naive.gain_eliminated_loss(Y, Z, tg_ptr, tg_group, *args_m)[0]) / (2 * h)
        # a target whose prediction crosses zero makes F non-smooth; skip those draws
        if np.all(np.abs(np.linalg.norm(P, axis=1)) > 1e-3):
            assert np.isclose(fd, np.sum(grads[k] * D), rtol=1e-4, atol=1e-6)
