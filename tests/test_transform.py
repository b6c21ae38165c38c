"""Transfer: LICCHIE.transform fits weights with frozen motifs (licchie.transfer)."""
import warnings

import numpy as np
import pytest

from licchie import LICCHIE
from licchie.fit.frozen import FINAL_STAGE, frozen_weights
from licchie.synthetic import make_recording, make_suite_recording
from licchie.synthetic.spaces import make_space_recording

SMALL = dict(n_cells=(6, 4), n_frames=10, n_features=3, n_components=2)


@pytest.fixture(scope="module")
def small():
    return make_recording(**SMALL, seed=3)[0]


def _fit(ds, **kw):
    p = dict(n_components=2, radius=10.0, n_neighbors=4, n_init=2, random_state=0)
    p.update(kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return LICCHIE(**p).fit(ds)


def _transform(m, ds, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return m.transform(ds, **kw)


def _relerr(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def _fit_objective(m):
    return float(m.objective_history_.sel(term="total").values[-1])


@pytest.fixture(scope="module")
def paper_fit(small):
    # pooling = 0, run to convergence: its weights are the minimiser for its motifs
    return _fit(small, lambdas=(1.0, 0.1, 0.0, 0.01, 0.0), init="parafac", max_iter=3000,
                tol=1e-12)


@pytest.fixture(scope="module")
def pooled_fit(small):
    # the defaults (pooled, class x frame groups) without gains, which these
    # data's gain check would add and profiles="frozen" does not support
    return _fit(small, target_gain=False)


def test_reproduces_the_weights_of_a_converged_fit(small, paper_fit):
    m = paper_fit
    W = _transform(m, small, tol=1e-13, max_iter=5000)
    assert W.dims == ("pair", "component")
    # labelled like weights_: same pairs in the same order, same coords
    for c in m.weights_.coords:
        np.testing.assert_array_equal(W[c].values, m.weights_[c].values)
    assert _relerr(W.values, m.weights_.values) < 1e-3
    assert W.attrs["objective"] <= _fit_objective(m) * (1 + 1e-9)


def test_pooled_transform_is_no_worse_than_the_fit(small, pooled_fit):
    """The default fit stops before its weights reach the minimum for its own
    motifs (the A/W alternation is slow along the L1 of W); transform on the
    training data never does worse than the fit's weights."""
    m = pooled_fit
    W = _transform(m, small)
    assert W.attrs["objective"] <= _fit_objective(m) * (1 + 1e-9)
    # the same problem from the fit's own weights: a start that is already
    # close moves little and ends no higher
    prep = m._prepare(small)
    C = np.ascontiguousarray(m.components_["target_effect"].values.T)
    R = np.ascontiguousarray(m.components_["source_effect"].values.T)
    Wfit = np.ascontiguousarray(m.weights_.values if prep.perm is None
                                else m.weights_.values[prep.perm])
    res = frozen_weights(prep.problem, C, R, Wfit, 50, 0.0)
    totals = [float(h[2].sum()) for h in res.history]
    assert all(b <= a * (1 + 1e-12) for a, b in zip(totals, totals[1:]))  # monotone
    assert totals[0] == pytest.approx(_fit_objective(m), rel=1e-3)


def test_reproduces_the_weights_of_a_default_pooled_fit():
    """A default pooled fit stops (max_iter) long before its alternation has
    settled the weights; it ends with transform's own computation at its
    motifs, so transform on the training data returns its weights."""
    ds, _ = make_suite_recording("heldout6", seed=1, n_cells=(12, 6), n_frames=20,
                                 n_features=5, n_components=3)
    kw = dict(n_components=3, radius=ds.attrs["radius"], n_neighbors=10, max_iter=20,
              solver_options={"search_evals": 2000})
    m = _fit(ds, **kw)
    W = _transform(m, ds)
    assert _relerr(W.values, m.weights_.values) < 1e-6
    assert W.attrs["objective"] == pytest.approx(_fit_objective(m), rel=1e-9)
    # the settled weights are below the alternation's, at the same motifs
    raw = _fit(ds, **{**kw, "solver_options": {"search_evals": 2000,
                                               "settle_weights": False}})
    for k in ("target_effect", "source_effect"):
        np.testing.assert_array_equal(raw.components_[k].values, m.components_[k].values)
    assert _fit_objective(m) < _fit_objective(raw)
    stages = m.objective_history_["stage"].values
    assert stages[-1] == "weights at fitted motifs" and "weights at fitted motifs" not in \
        raw.objective_history_["stage"].values
    assert _relerr(_transform(raw, ds).values, raw.weights_.values) > 1e-3


def test_reproduces_the_weights_of_a_converged_pooled_fit():
    ds, _ = make_suite_recording("heldout6", seed=0, n_cells=(12, 6), n_frames=30,
                                 n_features=5, n_components=3)
    m = _fit(ds, n_components=3, radius=ds.attrs["radius"], pooling_groups="class",
             max_iter=1500, tol=1e-10)
    W = _transform(m, ds, tol=1e-10, max_iter=5000)
    assert W.attrs["converged"] == 1
    assert _relerr(W.values, m.weights_.values) < 0.02
    assert W.attrs["objective"] <= _fit_objective(m) * (1 + 1e-9)


@pytest.mark.parametrize("spaces", [False, True])
def test_the_weights_at_the_motifs_are_the_minimiser(small, pooled_fit, spaces):
    """Without gains and with lam2 = lam3 = 0 (the defaults) the settle step and
    transform descend the A-eliminated objective (fit.frozen.descend): its
    value is the full objective at the exact A, it ends no higher than the
    fit, and the fit's alternation continued from its result finds nothing
    lower (before, 1000 alternation steps stopped short of it)."""
    from licchie import fit as F
    from licchie.transfer import _frozen_effects
    if spaces:
        ds, _ = make_space_recording(2, n_cells=(8, 8), n_times=12, n_dims=3, radius=2.5)
        m = _fit(ds, radius=2.5, target_gain=False, solver_options={"search_evals": 800})
    else:
        ds, m = small, pooled_fit
    prep = m._prepare(ds)
    pr = prep.problem
    assert F.frozen.exact_applies(pr) and (pr.spaces is not None) == spaces
    C, R = _frozen_effects(m, pr, prep.recording.obs)
    res = F.frozen.weights_at_motifs(pr, C, R, 1000, 1e-10)
    assert res.converged and res.objective <= _fit_objective(m) * (1 + 1e-9)
    W, phi, _ = F.frozen.descend(pr, C, R, res.W, 10, 0.0)
    assert phi[0] == pytest.approx(res.objective, rel=1e-9)
    more = frozen_weights(pr, C, R, res.W, 300, 0.0)
    assert more.objective >= res.objective * (1 - 1e-6)


def test_a_fit_without_gains_keeps_its_settle_step():
    """On these data the settle step used to end above the fit's alternation
    and was dropped (1.990 against 1.970), so transform on the training data
    did not return weights_.  The descent reaches the minimiser: the step is
    kept and transform reproduces the fit's weights."""
    ds = make_recording(seed=3, n_cells=(6, 4), n_frames=8, n_features=3, n_components=2,
                        density=0.7)[0]
    m = _fit(ds, lambdas=(10.0, 0.0, 0.0, 0.001, 1.0), pooling_groups="class_time",
             pooling_window=1, target_gain=False, max_iter=5, tol=1e-12)
    raw = _fit(ds, lambdas=(10.0, 0.0, 0.0, 0.001, 1.0), pooling_groups="class_time",
               pooling_window=1, target_gain=False, max_iter=5, tol=1e-12,
               solver_options={"settle_weights": False})
    assert m.objective_history_["stage"].values[-1] == FINAL_STAGE
    assert _fit_objective(m) < _fit_objective(raw)
    W = _transform(m, ds)
    assert _relerr(W.values, m.weights_.values) < 1e-9


def test_the_gain_settle_is_the_minimiser_at_its_gains():
    """With target gains the settle step and transform hold the gains of the
    start's profiles-and-gains block and descend in the weights
    (fit.frozen.descend_gain_weights): converged; the reduced objective the
    descent minimises equals the full objective at the exact A-step, the
    result's profiles and gains; a further descent at those gains finds
    nothing lower; it ends no higher than the alternation of A-step and
    weight step it replaced, though that also moves the gains (here 1.054
    against 1.218 when written; on the suite's pooled seed 0 5e-6 above);
    transform on the training data returns the fit's weights."""
    from licchie.fit import frozen as FZ
    ds, _ = make_suite_recording("owned_gains", seed=0, n_cells=(10, 6), n_frames=12,
                                 n_features=4, n_components=2)
    kw = dict(n_components=2, radius=ds.attrs["radius"], n_neighbors=6, max_iter=10,
              target_gain=True, solver_options={"search_evals": 600})
    m = _fit(ds, **kw)
    assert m.target_gain_ and m.objective_history_["stage"].values[-1] == FINAL_STAGE
    W = _transform(m, ds)
    assert _relerr(W.values, m.weights_.values) < 1e-9
    prep = m._prepare(ds)
    pr = prep.problem
    assert FZ.gain_descent_applies(pr) and not FZ.exact_applies(pr)
    C = np.ascontiguousarray(m.components_["target_effect"].values.T)
    R = np.ascontiguousarray(m.components_["source_effect"].values.T)
    start = FZ.reduced_init(pr, 2, 0, max_sweeps=0, C0=C, R0=R,
                            gain_rounds=FZ.SETTLE_GAIN_ROUNDS, gain_tol=FZ.SETTLE_GAIN_TOL)[0]
    new = FZ.descend_gain_weights(pr, C, R, start, 20000, 1e-12)
    assert new.converged
    _, phi, _ = FZ.descend(pr, C, R, new.W, 50, 0.0, gamma=new.gamma)
    assert phi[0] == pytest.approx(new.objective, rel=1e-9)
    assert phi[-1] >= phi[0] * (1 - 1e-9)
    old = frozen_weights(pr, C, R, start, 1000, 1e-10)
    assert new.objective <= old.history[0][2].sum()
    assert new.objective <= old.objective * (1 + 1e-4)


def test_heldout_frames(small, pooled_fit):
    m = pooled_fit
    test = small.isel(time=slice(7, 10))
    for prof in ("refit", "frozen"):
        W = _transform(m, test, profiles=prof)
        assert W.sizes["component"] == 2 and W.sizes["pair"] > 0
        assert np.all(np.isfinite(W.values))
        assert set(np.unique(W["time"].values)) <= set(test["time"].values[1:].tolist())
        assert W.attrs["profiles"] == prof
    # with frozen profiles the groups decouple and the alternation converges fast
    assert _transform(m, test, profiles="frozen").attrs["converged"] == 1
    # frozen profiles pull toward the training profiles: closer to them than refit
    Wr = _transform(m, test, profiles="refit")
    Wf = _transform(m, test, profiles="frozen")
    assert not np.allclose(Wr.values, Wf.values)


def test_standardized_model(small):
    ds = small.assign(features=small["features"] * 50.0 + 3.0)
    m = _fit(ds, lambdas=(1.0, 0.1, 0.0, 0.01, 0.0), init="parafac", max_iter=3000,
             tol=1e-12, standardize="population")
    W = _transform(m, ds, tol=1e-13, max_iter=5000)
    assert _relerr(W.values, m.weights_.values) < 1e-3


def test_bad_inputs(small, pooled_fit):
    with pytest.raises(ValueError, match="profiles"):
        pooled_fit.transform(small, profiles="train")
    bad = small.assign_coords(feature=["a", "b", "c"])
    with pytest.raises(ValueError, match="features"):
        pooled_fit.transform(bad)
    with pytest.raises(Exception, match="not fitted"):
        LICCHIE().transform(small)
    gain = _fit(small, target_gain=True, max_iter=5)
    with pytest.raises(NotImplementedError, match="refit"):
        gain.transform(small, profiles="frozen")


def _shared_data():
    """$LICCHIE_SHARED_DATA, else ../shared/data next to the clone."""
    import os
    from pathlib import Path
    env = os.environ.get("LICCHIE_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def test_behav3d_transfer_end_to_end():
    """Fit on BEHAV3D frames 1-10, transform 10-14, CD8 dead/alive from the weights."""
    import importlib.util
    from pathlib import Path
    well = _shared_data() / "behav3d_coculture_well0"
    if not well.is_dir():
        pytest.skip(f"shared BEHAV3D data not found at {well} (set LICCHIE_SHARED_DATA)")
    import licchie
    from licchie.evaluate import phenotype_prediction
    path = Path(__file__).resolve().parents[1] / "studies" / "behav3d_transfer.py"
    spec = importlib.util.spec_from_file_location("behav3d_transfer", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    t, feats = mod.load(str(well), with_dye=False)
    t = t[t["frame"] <= 14]
    kw = dict(cell="cell", frame="frame", position=("x", "y", "z"), features=feats,
              time_values="time_s")
    train = licchie.Recording.from_table(t[t["frame"] <= 10], **kw)
    test = licchie.Recording.from_table(t[t["frame"] >= 10], **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = LICCHIE(n_components=3, radius=30.0, init="parafac", n_init=1, max_iter=10,
                    random_state=0, standardize="population").fit(train)
        W = m.transform(test)
    assert W.sizes["component"] == 3 and np.all(np.isfinite(W.values))
    assert set(np.unique(W["target_population"].values)) == {"CD4", "CD8", "organoid"}
    labels = t.set_index(["cell", "time_s"])["dead"]
    res = phenotype_prediction(W, labels[~labels.index.duplicated()],
                               target_population="CD8")
    assert res.loc["majority", "balanced_accuracy"] == pytest.approx(0.5)
    assert 0 <= res.loc["logistic", "balanced_accuracy"] <= 1
    assert res["n_samples"].iloc[0] == int((W["target_population"] == "CD8").sum())


def test_population_feature_spaces():
    """With per-population feature lists (paper A.2), transform uses each
    space's effects: it reproduces a converged fit's weights on its data, and
    a pooled fit's exactly (the fit ends with transform's computation, from
    each pair's group profile)."""
    from licchie.synthetic.spaces import make_space_recording
    ds, _ = make_space_recording(seed=0, n_cells=(6, 5), n_times=6)
    kw = dict(n_components=2, radius=1.5, n_init=2)
    m = _fit(ds, lambdas=(1.0, 0.1, 0.0, 0.01, 0.0), init="parafac", max_iter=5000,
             tol=1e-13, **kw)
    assert m.converged_
    W = _transform(m, ds, tol=1e-13, max_iter=20000)
    assert W.attrs["converged"] == 1
    assert _relerr(W.values, m.weights_.values) < 1e-4
    np.testing.assert_array_equal(W["target_population"].values,
                                  m.weights_["target_population"].values)
    pooled = _fit(ds, max_iter=50, **kw)
    assert pooled.objective_history_["stage"].values[-1] == FINAL_STAGE
    Wp = _transform(pooled, ds)
    assert _relerr(Wp.values, pooled.weights_.values) < 1e-6
    assert Wp.attrs["objective"] == pytest.approx(_fit_objective(pooled), rel=1e-9)
