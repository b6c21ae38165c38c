"""The per-motif verdict of fits with population feature spaces
(licchie.fit.spaces_verdict): its scores against NumPy references, the
cases it must flag, and its independence of the worker processes."""
import itertools

import numpy as np
import pytest
from scipy.linalg import null_space

import licchie
from licchie.fit import spaces_verdict as SV
from licchie.fit.global_start import reduced_data
from licchie.fit.spaces_search import SpacesReduced, group_space_classes, search_starts
from licchie.synthetic.spaces import make_space_recording

OPTS = dict(search_evals=2400, search_time=600.0, extrapolate=True, record_steps=False)


def _reduced(ds):
    prep = licchie.LICCHIE(n_components=2, radius=1.5)._prepare(ds)
    problem, obs = prep.problem, prep.recording.obs
    data, _ = reduced_data(problem, obs)
    sp = problem.spaces
    return SpacesReduced(data, group_space_classes(problem.pairs, sp), sp.class_space,
                         sp.features), prep


@pytest.fixture(scope="module")
def small():
    return _reduced(make_space_recording(0, n_cells=(10, 10), n_times=12)[0])


def _random_effects(rng, features, J):
    F = rng.normal(size=features.shape + (J,)) * features[:, :, None]
    return F / np.linalg.norm(F, axis=1, keepdims=True)


def _sim(C1, R1, C2, R2):
    """Matched similarity by brute force over permutations (NumPy reference)."""
    J = C1.shape[2]
    S = np.zeros((J, J))
    for i in range(J):
        for k in range(J):
            S[i, k] = np.mean([abs(C1[s, :, i] @ C2[s, :, k]) * abs(R1[s, :, i] @ R2[s, :, k])
                               for s in range(C1.shape[0])])
    best = max(itertools.permutations(range(J)), key=lambda p: sum(S[i, p[i]] for i in range(J)))
    return np.array([S[i, best[i]] for i in range(J)])


def test_gap_and_reach_match_numpy(small):
    red, _ = small
    rng = np.random.default_rng(1)
    f = red.features
    C, R = _random_effects(rng, f, 2), _random_effects(rng, f, 2)
    Wbar, L = red.profiles(C, R)
    Cs, Rs = C[:, :, ::-1].copy(), R[:, :, ::-1].copy()
    Cs[1], Rs[1] = -Cs[1], -Rs[1]   # the same motifs, swapped, one space's sign flipped
    others = [(_random_effects(rng, f, 2) * 3.0, _random_effects(rng, f, 2)) for _ in range(2)]
    minima = [(L, Wbar, C, R), (1.05 * L, Wbar, Cs, Rs),
              (1.02 * L, Wbar, *others[0]), (1.3 * L, Wbar, *others[1]),
              (1.01 * L, Wbar, 2.0 * C, R)]
    dg = SV.diagnose_spaces(red, minima, n_obs=10**4, n_boot=0, n_linear=0)
    gap_loss, hits, agree = np.full(2, np.inf), np.ones(2), np.ones(2)
    for F_, _, Cm, Rm in minima[1:]:
        Cm = Cm / np.linalg.norm(Cm, axis=1, keepdims=True)
        sim = _sim(C, R, Cm, Rm)
        rel = (F_ - L) / L
        gap_loss[sim < 0.9] = np.minimum(gap_loss[sim < 0.9], rel)
        hits += max(0.0, 1.0 - rel / 0.1) * (sim >= 0.9)
        if rel <= 0.1:
            agree = np.minimum(agree, sim)
    assert np.all(np.isfinite(gap_loss)) and np.all(gap_loss < 0.1)  # the case is built so
    np.testing.assert_allclose(dg.gap_loss, gap_loss, rtol=1e-12)
    np.testing.assert_allclose(dg.gap, np.minimum(1.0, gap_loss / 0.1), rtol=1e-12)
    np.testing.assert_allclose(dg.hits, hits, rtol=1e-12)
    np.testing.assert_allclose(dg.reach, np.minimum(1.0, hits / SV.REACH_HITS), rtol=1e-12)
    np.testing.assert_allclose(dg.agreement, agree, rtol=1e-12)
    # a different motif at +2 % loss: the data do not pick the best's
    assert all(v != "high" for v in dg.verdict)
    assert np.all(dg.score <= dg.gap)


def test_determination_matches_numpy_curvature(small):
    """The determination from the loss's second differences along an
    independently built tangent basis (per motif, space and side)."""
    red, _ = small
    rng = np.random.default_rng(2)
    f = red.features
    Wbar, C, R, L = red.lbfgs(_random_effects(rng, f, 2), _random_effects(rng, f, 2), 3000)
    C, R = SV.unit_effects(C), SV.unit_effects(R)
    n_obs = 3 * red.d.n_groups * 2   # few degrees of freedom: sigma^2 counts
    dg = SV.diagnose_spaces(red, [(L, Wbar, C, R)], n_obs=n_obs, n_boot=0, n_linear=0)
    S, d, J = C.shape
    cols, owner = [], []
    for j in range(J):
        for off, F_ in ((0, C), (C.size, R)):
            for s in range(S):
                idx = np.flatnonzero(f[s])
                N = null_space(F_[s, idx, j][None, :])   # (m, m - 1)
                for k in range(N.shape[1]):
                    b = np.zeros(2 * C.size)
                    b[off + s * d * J + idx * J + j] = N[:, k]
                    cols.append(b)
                    owner.append(j)
    B, owner = np.array(cols).T, np.array(owner)
    x0 = np.concatenate([C.ravel(), R.ravel()])

    def loss(x):
        return red.profiles(x[:C.size].reshape(C.shape), x[C.size:].reshape(C.shape))[1]

    h, n = 1e-3, B.shape[1]
    H = np.zeros((n, n))
    for a in range(n):
        for b in range(a, n):
            u, v = h * B[:, a], h * B[:, b]
            H[a, b] = H[b, a] = (loss(x0 + u + v) - loss(x0 + u - v) - loss(x0 - u + v)
                                 + loss(x0 - u - v)) / (4 * h * h)
    m = f.sum(axis=1)
    sigma2 = L / (n_obs - red.d.n_groups * J - J * 2 * int(np.sum(m - 1)))
    cov = 2 * sigma2 * np.linalg.inv(H)
    var = [np.linalg.eigvalsh(cov[np.ix_(owner == j, owner == j)])[-1] for j in range(J)]
    # the worst direction's variance, read back from the score 1 / sqrt(1 + 4 var)
    np.testing.assert_allclose((dg.determination ** -2 - 1) / 4, var, rtol=1e-3)


def _starts(ds, n_workers=None, evals=2400):
    _, prep = _reduced(ds)
    opts = dict(OPTS, search_evals=evals)
    return search_starts(prep.problem, prep.recording.obs, 2, np.random.SeedSequence(3), 1,
                         3, 1e-6, opts, n_workers=n_workers)


def test_unexcited_source_feature_is_not_determined():
    """Population B's feature f3 nearly constant (1e-6 of its size): no source
    of B excites it, so the f3 entries of the motifs' source effects on B are
    free and the determination vetoes both motifs; the same recording with
    f3 left as drawn has both motifs determined."""
    out = {}
    for scale in (1e-6, 1.0):
        ds, _ = make_space_recording(1, n_cells=(12, 12), n_times=20, noise_sd=0.02)
        F_ = ds["features"].values.copy()
        F_[ds["population"].values == "B", :, 3] *= scale
        ds["features"] = (("cell", "time", "feature"), F_)
        out[scale] = _starts(ds)[1].diagnosis
    dg = out[1e-6]
    assert np.all(dg.determination < SV.MEDIUM), dg.determination
    assert dg.verdict == ["low", "low"]
    assert all("2-sigma |cos|" in e for e in dg.explanation)
    assert np.all(out[1.0].determination >= SV.HIGH), out[1.0].determination


def test_diagnosis_is_the_same_on_workers(small):
    """The starts run in chunks on 1 or 2 worker processes; the diagnosis
    (every score, the bootstrap included) is the same."""
    ds = make_space_recording(0, n_cells=(10, 10), n_times=12)[0]
    serial, parallel = _starts(ds, 1, 1600)[1], _starts(ds, 2, 1600)[1]
    a, b = serial.diagnosis, parallel.diagnosis
    assert a.n_searches == b.n_searches == 4
    np.testing.assert_array_equal(serial.losses, parallel.losses)
    for name in ("score", "gap", "reach", "bootstrap", "determination", "gap_loss",
                 "bootstrap_local", "bootstrap_linear", "noise", "noise_shift"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.verdict == b.verdict


def test_final_verdict_names_the_partner_in_the_fitted_order(small):
    """The fitted motifs come in another order than the diagnosed ones: the
    score follows each motif and the partner is named by its fitted index."""
    red, _ = small
    rng = np.random.default_rng(4)
    f = red.features
    C, R = _random_effects(rng, f, 3), _random_effects(rng, f, 3)
    Wbar, L = red.profiles(C, R)
    dg = SV.diagnose_spaces(red, [(L, Wbar, C, R)], n_obs=10**4, n_boot=0, n_linear=0)
    dg.score = np.array([0.3, 0.5, 0.95])
    dg.determination = np.array([0.3, 0.5, 0.95])
    dg.partner = np.array([2, -1, -1])
    dg.explanation = [SV.WHY["partner"].format(2, 0.3), "x", "y"]
    dg.reason_key = ["partner", "gap", "high"]
    calls = []

    def later():   # a deferred diagnosis: computed once, when the verdict reads it
        calls.append(1)
        return dg

    info = SV.SpacesStart(later, C, R, L, np.array([L]))
    assert calls == []
    order = [2, 0, 1]   # fitted motif k is diagnosed motif order[k]
    score, verdict, reason = SV.final_verdict(C[:, :, order], R[:, :, order], info)
    assert info.diagnosis is dg and calls == [1]
    np.testing.assert_allclose(score, dg.score[order])
    assert verdict == ["high", "low", "low"]
    assert reason[1].startswith(SV.PARTNER + " 0 ")   # diagnosed motif 2 is fitted motif 0


def test_noise_score_adds_the_doubled_noise_turn_to_the_bootstrap_angle(small):
    """The noise score is cos(angle of the bootstrap's bound + mean turn of the
    re-polished best on noised data); without noised data it caps at 0.8."""
    red, _ = small
    rng = np.random.default_rng(5)
    f = red.features
    Wbar, C, R, L = red.lbfgs(_random_effects(rng, f, 2), _random_effects(rng, f, 2), 3000)
    C, R = SV.unit_effects(C), SV.unit_effects(R)
    data = red.d
    w = np.arange(data.n_blocks) % 3 + 0.5     # a fixed "noised" data set

    def noised(sd, rng_):
        return data.reweighted(w)

    dg = SV.diagnose_spaces(red, [(L, Wbar, C, R)], n_obs=10**4, n_boot=0, n_linear=0,
                            noised=noised, n_noise=2, noise_eval=200)
    _, Cn, Rn, _ = red.on(data.reweighted(w)).lbfgs(C, R, 200)
    Cn, Rn = SV.unit_effects(Cn), SV.unit_effects(Rn)
    own = np.mean(np.abs(np.sum(C * Cn, axis=1) * np.sum(R * Rn, axis=1)), axis=0)
    np.testing.assert_allclose(dg.noise_shift, np.arccos(own), rtol=1e-6)
    ref = np.cos(np.minimum(np.arccos(dg.bootstrap) + np.arccos(own), np.pi / 2))
    np.testing.assert_allclose(dg.noise, ref, rtol=1e-6)
    assert np.all(dg.noise_shift > 1e-3)   # the reweighting does turn the motifs
    bare = SV.diagnose_spaces(red, [(L, Wbar, C, R)], n_obs=10**4, n_boot=0, n_linear=0)
    np.testing.assert_array_equal(bare.noise, 0.8)
    assert np.all(bare.score <= 0.8)
