"""The gain-eliminated pooled loss (``licchie.kernels.gains``) against its
NumPy reference, the reference against finite differences, and the loss
against the loss at explicitly fitted gains.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import naive
from licchie.kernels import gains as KG
from kernel_cases import SETTINGS, _threads


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
       st.integers(1, 3), st.sampled_from([0.0, 1e-3, 0.5]), st.sampled_from([0.0, 1e-4, 0.3]))
def test_gain_eliminated_loss_matches_reference(seed, n_targets, n_groups, d, J, mu, rho):
    Y, Z, tg_ptr, tg_group, Wbar, C, R = _rows(seed, n_targets, n_groups, d, J)
    gW, gC, gR = np.full((n_groups, J), np.nan), np.full((d, J), np.nan), np.full((d, J), np.nan)
    F = KG.gain_eliminated_loss(Y, Z, tg_ptr, tg_group, Wbar, C, R, gW, gC, gR, mu, rho)
    F_ref, gW_ref, gC_ref, gR_ref = naive.gain_eliminated_loss(Y, Z, tg_ptr, tg_group,
                                                               Wbar, C, R, mu, rho)
    np.testing.assert_allclose(F, F_ref, rtol=1e-11, atol=1e-12)
    for got, ref in ((gW, gW_ref), (gC, gC_ref), (gR, gR_ref)):
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-11)


@settings(**SETTINGS)
@given(st.integers(0, 2**32 - 1), st.integers(1, 6), st.integers(1, 4), st.integers(1, 4),
       st.integers(1, 3), st.sampled_from([(0.0, 0.0), (0.3, 0.0), (0.0, 0.2), (0.3, 0.2)]))
def test_gain_eliminated_loss_is_the_loss_at_the_best_gains(seed, n_targets, n_groups, d, J,
                                                            mu_rho):
    """F equals the residual plus the gains' prior ``mu (gamma - 1)^2`` and
    the weights' ridge ``rho gamma^2 |Wbar[g]|^2`` (every row of the target)
    at every target's best gain, no gain does better, and the gradient is
    that of F (central differences)."""
    mu, rho = mu_rho
    Y, Z, tg_ptr, tg_group, Wbar, C, R = _rows(seed, n_targets, n_groups, d, J)
    F = naive.gain_eliminated_loss(Y, Z, tg_ptr, tg_group, Wbar, C, R, mu, rho)[0]
    P = np.array([C @ sum((Wbar[tg_group[a]] * (R.T @ Z[a])
                           for a in range(tg_ptr[i], tg_ptr[i + 1])), np.zeros(J))
                  for i in range(n_targets)])
    Q = np.array([rho * sum(Wbar[tg_group[a]] @ Wbar[tg_group[a]]
                            for a in range(tg_ptr[i], tg_ptr[i + 1])) for i in range(n_targets)])
    # the gain as a least-squares problem with the prior and the ridge as two more rows
    s = np.sqrt(mu)
    gam = np.array([np.linalg.lstsq(np.append(p, [s, np.sqrt(q)])[:, None],
                                    np.append(y, [s, 0.0]), rcond=None)[0][0]
                    if p @ p + mu + q > 0 else 0.0 for p, y, q in zip(P, Y, Q)])

    def loss(g):
        return (np.sum((Y - g[:, None] * P) ** 2) + mu * np.sum((g - 1.0) ** 2)
                + np.sum(g ** 2 * Q))

    assert np.isclose(F, loss(gam), rtol=1e-10, atol=1e-12)
    rng = np.random.default_rng(seed + 1)
    other = gam + rng.normal(size=gam.size)
    assert F <= loss(other) + 1e-12
    grads = naive.gain_eliminated_loss(Y, Z, tg_ptr, tg_group, Wbar, C, R, mu, rho)[1:]
    h = 1e-6
    for k, arr in enumerate((Wbar, C, R)):
        D = rng.normal(size=arr.shape)
        args_p = [Wbar, C, R]
        args_m = [Wbar, C, R]
        args_p[k], args_m[k] = arr + h * D, arr - h * D
        fd = (naive.gain_eliminated_loss(Y, Z, tg_ptr, tg_group, *args_p, mu, rho)[0]
              - naive.gain_eliminated_loss(Y, Z, tg_ptr, tg_group, *args_m, mu, rho)[0]) / (2 * h)
        # without the prior a target whose prediction crosses zero makes F
        # non-smooth; skip those draws
        if mu > 0 or np.all(np.abs(np.linalg.norm(P, axis=1)) > 1e-3):
            assert np.isclose(fd, np.sum(grads[k] * D), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("mu, rho", [(0.0, 0.0), (0.2, 0.1)])
def test_gain_eliminated_loss_in_blocks_matches_reference_for_any_threads(mu, rho):
    """More targets than one task holds: the blocks' partials, summed in block
    order, equal the reference, and one or two threads give the same bits."""
    n_targets = 2 * KG._TARGETS_PER_TASK + 37   # three blocks
    Y, Z, tg_ptr, tg_group, Wbar, C, R = _rows(11, n_targets, 6, 4, 3)
    F_ref, *g_ref = naive.gain_eliminated_loss(Y, Z, tg_ptr, tg_group, Wbar, C, R, mu, rho)
    out = []
    for n in (1, 2):
        grads = [np.full_like(Wbar, np.nan), np.full_like(C, np.nan), np.full_like(R, np.nan)]
        with _threads(n):
            F = KG.gain_eliminated_loss(Y, Z, tg_ptr, tg_group, Wbar, C, R, *grads, mu, rho)
        np.testing.assert_allclose(F, F_ref, rtol=1e-11)
        for got, ref in zip(grads, g_ref):
            np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-9)
        out.append((F, *grads))
    assert out[0][0] == out[1][0]
    for a, b in zip(out[0][1:], out[1][1:]):
        np.testing.assert_array_equal(a, b)
