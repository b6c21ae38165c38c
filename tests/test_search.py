"""The exactly pooled reduced problem and its global search (issue 14).

The statistics and the loss are checked against plain NumPy that builds every
per-target group sum ``z_{i,g}`` by a loop over pairs; each block update
against ``numpy.linalg.lstsq`` on the explicit design; the search and the
diagnostic on small planted problems with class, class x frame and class x
session groups.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from licchie.fit import search as S
from licchie.fit import verdict as V
from licchie.kernels import pooled as KP

SETTINGS = dict(deadline=None, max_examples=30, suppress_health_check=[HealthCheck.too_slow])


def random_pairs(rng, nt, n_obs, d, G, max_pairs=5, zero_sources=False):
    X = rng.normal(size=(n_obs, d))
    if zero_sources:
        X[rng.random(n_obs) < 0.3] = 0.0
    counts = rng.integers(1, max_pairs + 1, size=nt)
    ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    E = int(ptr[-1])
    return (X, rng.choice(n_obs, size=nt, replace=nt > n_obs).astype(np.int64), ptr,
            rng.integers(0, n_obs, E).astype(np.int64), rng.uniform(0.2, 1.5, E),
            rng.integers(0, G, E).astype(np.int64))


def explicit_z(X, tgt_ptr, src, gain, group, G):
    nt = tgt_ptr.shape[0] - 1
    Z = np.zeros((nt, G, X.shape[1]))
    for t in range(nt):
        for e in range(tgt_ptr[t], tgt_ptr[t + 1]):
            Z[t, group[e]] += gain[e] * X[src[e]]
    return Z


@st.composite
def problems(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    nt = draw(st.integers(1, 12))
    d = draw(st.integers(1, 4))
    J = draw(st.integers(1, 3))
    G = draw(st.integers(1, 5))
    nb = draw(st.integers(1, 3))
    arrays = random_pairs(rng, nt, nt + 3, d, G, zero_sources=draw(st.booleans()))
    block = rng.integers(0, nb, nt).astype(np.int64)
    return rng, arrays, G, J, block, nb


@settings(**SETTINGS)
@given(problems())
def test_statistics_and_loss_match_numpy(prob):
    rng, (X, tobs, ptr, src, gain, group), G, J, block, nb = prob
    data = S.PooledData.from_pairs(X, tobs, ptr, src, gain, group, G, block, nb)
    Z = explicit_z(X, ptr, src, gain, group, G)
    Y = X[tobs]
    w = rng.integers(0, 3, nb).astype(float)
    for weights in (None, w):
        wt = np.ones(len(tobs)) if weights is None else w[block]
        xx, T, Sco = KP.combine(data.agg, G, weights)
        assert np.isclose(xx, np.sum(wt * np.sum(Y * Y, axis=1)))
        np.testing.assert_allclose(T, np.einsum("t,ta,tgb->gab", wt, Y, Z), atol=1e-12)
        Sref = np.einsum("t,tga,thb->ghab", wt, Z, Z)
        np.testing.assert_allclose(Sco, Sref[data.co_g, data.co_idx], atol=1e-12)
        # entries are exactly the co-occurring pairs of groups
        occ = np.zeros((G, G), bool)
        for t in range(len(tobs)):
            gs = np.unique(group[ptr[t]:ptr[t + 1]])
            occ[np.ix_(gs, gs)] = True
        assert set(zip(data.co_g, data.co_idx)) == set(zip(*np.nonzero(occ)))
    d = X.shape[1]
    C, R, Wb = rng.normal(size=(d, J)), rng.normal(size=(d, J)), rng.normal(size=(G, J))
    pred = np.einsum("aj,gj,bj,tgb->ta", C, Wb, R, Z)
    ref = np.sum((Y - pred) ** 2)
    assert np.isclose(S._Sweeper(data).loss(Wb, C, R), ref, rtol=1e-9, atol=1e-9)


def test_coarsen_equals_direct_aggregation():
    rng = np.random.default_rng(3)
    X, tobs, ptr, src, gain, group = random_pairs(rng, 40, 50, 3, 6)
    block = rng.integers(0, 4, 40)
    labels = np.array([0, 1, 0, 2, 1, 2])
    fine = S.PooledData.from_pairs(X, tobs, ptr, src, gain, group, 6, block, 4)
    coarse = fine.coarsened(labels, 3)
    direct = S.PooledData.from_pairs(X, tobs, ptr, src, gain, labels[group], 3, block, 4)
    np.testing.assert_allclose(coarse.T, direct.T, atol=1e-12)
    np.testing.assert_array_equal(coarse.co_idx, direct.co_idx)
    np.testing.assert_allclose(coarse.S, direct.S, atol=1e-12)
    w = rng.integers(0, 3, 4).astype(float)
    np.testing.assert_allclose(coarse.reweighted(w).S, direct.reweighted(w).S, atol=1e-12)


def assert_minimiser(ours, D, y):
    """``ours`` attains lstsq's minimum of ``|y - D x|``, and equals it when well posed."""
    ref = np.linalg.lstsq(D, y, rcond=None)[0]
    f_ours = np.sum((y - D @ ours) ** 2)
    f_ref = np.sum((y - D @ ref) ** 2)
    # the relative ridge (1e-10 of the Gram's mean diagonal) costs up to a few
    # 1e-8 of the loss on rank-deficient designs (d = 1 with J = 2, seen under
    # the derandomized CI profile); a non-minimiser is off by far more
    assert f_ours <= f_ref * (1 + 1e-6) + 1e-10 * np.sum(y * y)
    # the relative ridge moves the solution by about RIDGE_REL * cond(D)^2
    if np.linalg.cond(D) < 100:
        np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-8)


@settings(**SETTINGS)
@given(st.integers(0, 2**32 - 1), st.integers(1, 4), st.integers(1, 3), st.integers(1, 4))
def test_block_updates_are_exact_minimisers(seed, d, J, G):
    rng = np.random.default_rng(seed)
    X, tobs, ptr, src, gain, group = random_pairs(rng, 8 * d * J * G, 40, d, G)
    data = S.PooledData.from_pairs(X, tobs, ptr, src, gain, group, G)
    Z = explicit_z(X, ptr, src, gain, group, G)
    Y = X[tobs]
    nt = Y.shape[0]
    C, R, Wb = rng.normal(size=(d, J)), rng.normal(size=(d, J)), rng.normal(size=(G, J))
    co_g, co_idx = data.co_g, data.co_idx
    P = KP.project(data.S, R)
    # C: x_t = C v_t
    V = np.einsum("gj,bj,tgb->tj", Wb, R, Z)
    Cn = KP.update_C(data.T, P, Wb, R, co_g, co_idx)
    for a in range(d):
        assert_minimiser(Cn[a], V, Y[:, a])
    # R: x_t[a] = sum_j C[a, j] r_j . y_tj,  y_tj = sum_g Wb[g, j] z_tg
    Yj = np.einsum("gj,tgb->tjb", Wb, Z)
    D = np.einsum("aj,tjb->tajb", C, Yj).reshape(nt * d, J * d)
    Rn = KP.update_R(data.T, data.S, Wb, C, co_g, co_idx)
    assert_minimiser(Rn.T.ravel(), D, Y.ravel())
    # Wbar: x_t[a] = sum_{g,j} Wb[g, j] C[a, j] (r_j . z_tg); min-norm for unseen groups
    D = np.einsum("aj,bj,tgb->tagj", C, R, Z).reshape(nt * d, G * J)
    W, quad = KP.update_Wbar(KP.profile_rhs(data.T, C, R), P, C.T @ C, data.co_ptr, co_idx,
                             data.comps)
    assert_minimiser(W.ravel(), D, Y.ravel())
    F = np.sum((Y - (D @ W.ravel()).reshape(nt, d)) ** 2)
    assert np.isclose(data.xx - 2 * np.sum(W * KP.profile_rhs(data.T, C, R)) + quad, F,
                      rtol=1e-8, atol=1e-8)


def test_als_never_increases_and_gradient_matches():
    rng = np.random.default_rng(0)
    X, tobs, ptr, src, gain, group = random_pairs(rng, 200, 150, 4, 5)
    data = S.PooledData.from_pairs(X, tobs, ptr, src, gain, group, 5)
    C, R = S._random_unit(rng, 4, 3), S._random_unit(rng, 4, 3)
    Wb, F = S._Sweeper(data).profiles(C, R)
    for extrapolate in (False, True):
        Wc, Cc, Rc, Fc = Wb, C, R, F
        for _ in range(30):
            Wn, Cn, Rn, Fn, _ = S.als(data, Cc, Rc, 1, 0.0, Wbar=Wc, extrapolate=extrapolate)
            assert Fn <= Fc * (1 + 1e-10)
            np.testing.assert_allclose(np.linalg.norm(Cn, axis=0), 1.0)
            Wc, Cc, Rc, Fc = Wn, Cn, Rn, Fn
    sw = S._Sweeper(data)
    F0, gC, gR, _ = sw.value_grad(C, R)
    E = rng.normal(size=C.shape) * 1e-6
    num = sw.value_grad(C + E, R)[0] - sw.value_grad(C - E, R)[0]
    assert np.isclose(num, 2 * np.sum(gC * E), rtol=1e-4, atol=1e-9)
    num = sw.value_grad(C, R + E)[0] - sw.value_grad(C, R - E)[0]
    assert np.isclose(num, 2 * np.sum(gR * E), rtol=1e-4, atol=1e-9)


def planted(grouping, seed=0, n_targets=600, d=5, J=3, n_cls=3, n_frames=4, n_sess=2,
            noise=0.01, r_override=None, visited=None, base=None):
    """Targets with pairs in 1-3 classes; groups class, class x frame or class x session."""
    rng = np.random.default_rng(seed)
    C = np.linalg.qr(rng.normal(size=(d, d)))[0][:, :J]
    R = np.linalg.qr(rng.normal(size=(d, d)))[0][:, :J]
    if r_override is not None:
        R[:, 0] = r_override
    n_src = 3 * n_targets
    Xs = rng.normal(size=(n_src, d))
    if visited is not None:
        Xs = Xs * visited
    frame = rng.integers(0, n_frames, n_targets)
    sess = rng.integers(0, n_sess, n_targets)
    counts = rng.integers(1, 4, n_targets)
    ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    E = int(ptr[-1])
    src = rng.integers(0, n_src, E)
    cls = rng.integers(0, n_cls, E)
    tgt_of = np.repeat(np.arange(n_targets), counts)
    if base is None:
        base = np.array([[1.0, 0.8, 0.0], [0.0, 1.0, -0.7], [0.9, 0.0, 1.0]])[:n_cls, :J]
    if grouping == "class":
        group, G, block, nb = cls, n_cls, frame, n_frames
        Wt = base
    elif grouping == "class_frame":
        group, G, block, nb = cls * n_frames + frame[tgt_of], n_cls * n_frames, frame, n_frames
        Wt = np.repeat(base, n_frames, axis=0) * (1 + 0.3 * np.sin(np.arange(G)))[:, None]
    else:
        group, G, block, nb = cls * n_sess + sess[tgt_of], n_cls * n_sess, sess, n_sess
        Wt = np.repeat(base, n_sess, axis=0) * (1 + 0.3 * np.cos(np.arange(G)))[:, None]
    gain = np.ones(E)
    A = np.einsum("gj,aj,bj->gab", Wt, C, R)
    Y = np.zeros((n_targets, d))
    np.add.at(Y, tgt_of, np.einsum("eab,eb->ea", A[group], Xs[src]))
    Y += noise * rng.normal(size=Y.shape)
    X = np.vstack([Xs, Y])
    data = S.PooledData.from_pairs(X, n_src + np.arange(n_targets), ptr, src, gain,
                                   group.astype(np.int64), G, block, nb)
    return data, C, R, Wt, group


@pytest.mark.parametrize("grouping", ["class", "class_frame", "class_session"])
def test_search_recovers_planted_truth(grouping):
    data, C, R, Wt, group = planted(grouping)
    res = S.search(data, 3, n_searches=2, n_starts=2, n_trials=6, time_budget=None, seed=1)
    truth_loss = S._Sweeper(data).loss(Wt, C, R)
    assert res.loss <= truth_loss * (1 + 1e-6)
    sim, _ = S.motif_cos(C, R, res.C, res.R)
    assert sim.min() >= 0.95
    # the search never returns more than any candidate or any search's best
    assert res.loss <= min(c.loss for c in res.candidates)
    assert res.loss <= min(b[0] for b in res.search_best)
    assert res.candidates == sorted(res.candidates, key=lambda c: c.loss)
    W, C2, R2 = S.pair_start(res.Wbar, res.C, res.R, group)
    np.testing.assert_array_equal(W, res.Wbar[group])
    dg = V.diagnose(data, res, n_boot=4)
    assert all(v == "high" for v in dg.verdict), dg.explanation


def test_search_with_als_and_move_groups_is_reproducible():
    data, *_ = planted("class_frame", seed=2, n_targets=300)
    labels = np.arange(data.n_groups) // 4      # class of each class x frame group
    kw = dict(n_searches=2, n_starts=1, n_trials=3, time_budget=None, seed=7,
              move_groups=labels)
    rows = []
    a = S.search(data, 3, local="als", max_sweeps=100, progress=rows.append, **kw)
    b = S.search(data, 3, local="als", max_sweeps=100, **kw)
    assert rows == a.history and len(rows) == 2 * (1 + 3)
    assert a.loss == b.loss
    np.testing.assert_array_equal(a.C, b.C)
    assert a.loss <= min(c.loss for c in a.candidates)


def _same_search(a, b):
    """Two SearchResults equal bit for bit (history up to its clock)."""
    assert a.loss == b.loss and a.n_trials == b.n_trials
    np.testing.assert_array_equal(a.C, b.C)
    np.testing.assert_array_equal(a.Wbar, b.Wbar)
    assert [h[1:] for h in a.history] == [h[1:] for h in b.history]
    assert len(a.candidates) == len(b.candidates)
    for x, y in zip(a.candidates, b.candidates):
        assert (x.loss, x.hits, x.searches) == (y.loss, y.hits, y.searches)
        np.testing.assert_array_equal(x.R, y.R)
    for x, y in zip(a.search_best, b.search_best):
        assert x[0] == y[0]
        np.testing.assert_array_equal(x[2], y[2])


def test_searches_on_worker_processes_equal_the_serial_search():
    # the searches run in other processes, their minima are registered in
    # search order afterwards: candidates, hits, incumbents and history must
    # be those of the serial search, whose candidates merge across searches
    data, *_ = planted("class_frame", seed=4, n_targets=300)
    labels = np.arange(data.n_groups) // 4
    kw = dict(n_searches=3, n_starts=2, n_trials=5, time_budget=None, seed=11,
              move_groups=labels, screen=20)
    serial = S.search(data, 3, **kw)
    rows = []
    parallel = S.search(data, 3, n_workers=2, progress=rows.append, **kw)
    _same_search(serial, parallel)
    assert [r[1:] for r in rows] == [h[1:] for h in serial.history]
    assert any(c.hits > 1 or len(c.searches) > 1 for c in serial.candidates)
    # and the statistics sent to the workers carry everything a search reads
    _same_search(serial, S.search(data.for_search(), 3, **kw))


def _settings(data, **kw):
    """:func:`search`'s per-search settings, as it builds them."""
    one = dict(n_components=3, n_starts=2, n_trials=None, time_budget=None, eval_budget=None,
               local="lbfgs", max_sweeps=1000, tol=1e-10, patience=None, screen=20,
               labels=np.arange(data.n_groups) // 4, t0=0.0)
    one.update(kw)
    return one


@pytest.mark.parametrize("budget", [dict(eval_budget=3000.0), dict(n_trials=7)])
def test_a_search_run_in_chunks_makes_the_moves_of_one_run(budget):
    data, *_ = planted("class_frame", seed=4, n_targets=300)
    one = _settings(data, **budget)
    whole = S._one_search(data, 1, 5, one)
    # pause after the starts, mid-budget, and at a budget already used up
    stops = ([(500.0, None), (1700.0, None), (1700.0, None)] if "eval_budget" in budget
             else [(None, 0), (None, 3), (None, 3)])
    state, parts = S._State(np.random.default_rng(5)), []
    for until in stops + [None]:
        run, state = S._search_chunk(data, 1, one, state, until=until)
        parts.append(run)
    assert state.done
    merged = S._merged(parts)
    assert merged.n_trials == whole.n_trials > 3
    assert [h[1:] for h in merged.history] == [h[1:] for h in whole.history]
    assert len(merged.minima) == len(whole.minima)
    for a, b in zip(merged.minima, whole.minima):
        assert a[0] == b[0]
        np.testing.assert_array_equal(a[2], b[2])
    assert merged.best[0] == whole.best[0]


def test_chunked_searches_on_workers_equal_the_serial_search():
    # three searches on two workers run in halves (three waves of two); one
    # search ends by patience, the others by the evaluation budget
    data, *_ = planted("class_frame", seed=4, n_targets=300)
    assert S._chunks(3, 2) == 2 and S._chunks(2, 2) == 1 and S._chunks(4, 2) == 1
    kw = dict(n_searches=3, n_starts=2, time_budget=None, seed=3, eval_budget=9000,
              patience=2, move_groups=np.arange(data.n_groups) // 4, screen=20)
    serial = S.search(data, 3, **kw)
    _same_search(serial, S.search(data, 3, n_workers=2, **kw))


def test_diagnostic_flags_a_source_direction_no_source_visits():
    d = 5
    r0 = np.zeros(d)
    r0[[0, 1]] = np.sqrt(0.5)
    visited = np.ones(d)
    visited[0] = 0.0                 # no source ever has feature 0
    data, C, R, Wt, _ = planted("class", seed=4, r_override=r0, visited=visited)
    res = S.search(data, 3, n_searches=2, n_starts=2, n_trials=4, time_budget=None, seed=0)
    dg = V.diagnose(data, res, n_boot=4)
    sim, match = S.motif_cos(res.C, res.R, C, R)
    j = int(np.flatnonzero(match == 0)[0])    # the fitted motif matched to the planted r0
    assert sim[j] < 0.9
    assert dg.verdict[j] != "high"
    assert dg.determination[j] < 0.5


def test_diagnostic_flags_shared_wrong_basin_and_close_competitor():
    data, C, R, Wt, _ = planted("class", seed=5)
    sw = S._Sweeper(data)
    Wb, F = sw.profiles(C, R)
    rng = np.random.default_rng(0)
    Cw, Rw = S._random_unit(rng, 5, 3), S._random_unit(rng, 5, 3)
    Ww, Fw = sw.profiles(Cw, Rw)
    assert Fw > F
    best = S.Candidate(F, Wb, C, R, 1, {3})
    wrong = S.Candidate(Fw, Ww, Cw, Rw, 3, {0, 1, 2})
    # three searches agree on a wrong basin; one found the lower, distinct solution
    res = S.SearchResult(Wb, C, R, F, [best, wrong],
                         [(Fw, Ww, Cw, Rw)] * 3 + [(F, Wb, C, R)], [], 0.0, 0)
    dg = V.diagnose(data, res, n_boot=3)
    assert not any(v == "high" for v in dg.verdict)
    # a competitor with a different motif 0 at 1% more loss
    C2 = C.copy()
    C2[:, 0] = S._random_unit(rng, 5, 1)[:, 0]
    close = S.Candidate(F * 1.01, Wb, C2, R, 1, {0})
    res = S.SearchResult(Wb, C, R, F, [best, close], [(F, Wb, C, R)] * 4, [], 0.0, 0)
    dg = V.diagnose(data, res, n_boot=3)
    assert dg.verdict[0] == "low" and dg.gap[0] < 0.2


def _at(data, C, R, n_searches=4):
    """A search result that sits at ``(C, R)`` and that every search reached."""
    Wb, F = S._Sweeper(data).profiles(C, R)
    best = S.Candidate(F, Wb, C, R, n_searches, set(range(n_searches)))
    return S.SearchResult(Wb, C, R, F, [best], [(F, Wb, C, R)] * n_searches, [], 0.0, 0)


def test_diagnostic_flags_two_motifs_one_class_owns_with_proportional_profiles():
    # motifs 0 and 1 are used only by class 0, whose profile is one vector for
    # all frames: any rotation of their 2-dim span fits as well.  Each motif
    # alone is pinned (the other held fixed), every search agrees and the
    # resampled data find no gradient along the rotation; only the joint
    # curvature of all motifs sees it.
    base = np.array([[1.0, 0.6, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, -0.8]])
    data, C, R, Wt, _ = planted("class", seed=6, base=base)
    dg = V.diagnose(data, _at(data, C, R), n_boot=3)
    assert dg.verdict[0] != "high" and dg.verdict[1] != "high", dg.explanation
    assert dg.partner[0] == 1 and dg.partner[1] == 0
    assert "motif 1" in dg.explanation[0]
    # the motif that two classes use alone stays trusted
    assert dg.verdict[2] == "high", dg.explanation
    # with two profiles that are not proportional the pair is determined
    base[1] = [0.5, -1.0, 0.0]
    data, C, R, Wt, _ = planted("class", seed=6, base=base)
    dg = V.diagnose(data, _at(data, C, R), n_boot=3)
    assert all(v == "high" for v in dg.verdict), dg.explanation


def test_bootstrap_check_reads_a_wider_bound_than_its_quantile():
    q = np.array([1.0, 0.98, 0.92, 0.5, 0.0])
    b = V._bound(q)
    assert b[0] == 1.0 and np.all(b[1:4] < q[1:4]) and np.all(np.diff(b) <= 0)
    assert abs(b[4]) < 1e-12
    assert V._bound(np.array([0.92]))[0] < V.HIGH <= V._bound(np.array([0.98]))[0]


def test_screened_search_never_returns_more_than_its_best_candidate():
    data, C, R, Wt, group = planted("class_frame", seed=3, n_targets=300)
    labels = np.arange(data.n_groups) // 4
    rows = []
    res = S.search(data, 3, n_searches=3, n_starts=1, n_trials=8, time_budget=None, seed=5,
                   move_groups=labels, screen=3, progress=rows.append)
    assert any("screened" in r[3] for r in rows)
    assert res.loss == min(c.loss for c in res.candidates)
    assert res.loss <= min(b[0] for b in res.search_best)
    # every search's incumbent is the lowest of its accepted results
    for s_id, b in enumerate(res.search_best):
        kept = [r[4] for r in rows if r[1] == s_id and r[5]]
        assert b[0] == min(kept)
        # a screened move is never accepted
        assert not any(r[5] for r in rows if r[1] == s_id and "screened" in r[3])


def test_reach_counts_only_searches_that_reached_the_best_loss():
    # three searches, all holding the planted motifs, but two of them ended
    # 7.5 % and 10 % above the best (elsewhere in worse basins): they vouch
    # little (owned seed 4 of the suite, 0.2.0, with a wrong motif)
    data, C, R, Wt, _ = planted("class", seed=5)
    res = _at(data, C, R)
    F, Wb = res.loss, res.Wbar
    res.search_best = [(F, Wb, C, R), (F * 1.075, Wb, C, R), (F * 1.10, Wb, C, R)]
    dg = V.diagnose(data, res, n_boot=3)
    assert np.allclose(dg.reach, 2 * 1.25 / 3) and not any(v == "high" for v in dg.verdict)
    assert "searches reached it" in dg.explanation[0]
    res.search_best = [(F, Wb, C, R), (F * 1.01, Wb, C, R), (F * 1.10, Wb, C, R)]
    dg = V.diagnose(data, res, n_boot=3)
    assert np.all(dg.reach == 1.0) and all(v == "high" for v in dg.verdict), dg.explanation
