"""The held-out check for per-target gains (``licchie.fit.gain_heldout``).

The leave-one-feature-out errors are checked against a per-target loop of
one-dimensional least squares; the check must say "gains" on planted
per-target gains and not on a planted gain-free model with per-pair
deviations; a pooled fit stores it, warns (``target_gain=False``) or fits
again with gains (``target_gain="auto"``, the default), prints it and keeps
it in its file.
"""
import dataclasses
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import licchie
from licchie import LICCHIE
from licchie.fit import gain_heldout as GC
from licchie.synthetic import make_suite_recording

SETTINGS = dict(deadline=None, max_examples=40, suppress_health_check=[HealthCheck.too_slow])


def loo_reference(Y, P):
    out = np.zeros(Y.shape[0])
    for i in range(Y.shape[0]):
        for f in range(Y.shape[1]):
            keep = np.arange(Y.shape[1]) != f
            den = P[i, keep] @ P[i, keep]
            g = (P[i, keep] @ Y[i, keep]) / den if den > 1e-12 * (P[i] @ P[i]) else 1.0
            out[i] += (Y[i, f] - g * P[i, f]) ** 2
    return out


@settings(**SETTINGS)
@given(st.integers(0, 2**32 - 1), st.integers(1, 15), st.integers(1, 6))
def test_heldout_gain_errors_match_a_loop(seed, n, d):
    rng = np.random.default_rng(seed)
    Y = rng.normal(size=(n, d))
    P = rng.normal(size=(n, d)) * rng.uniform(0, 3, size=(n, 1))
    P[rng.random(n) < 0.2] = 0.0           # targets without a prediction
    if d > 1:
        P[rng.random(n) < 0.2, 1:] = 0.0   # a prediction in one feature only
    np.testing.assert_allclose(GC.heldout_gain_errors(Y, P), loo_reference(Y, P),
                               rtol=1e-9, atol=1e-12)


SMALL = dict(n_cells=(12, 6), n_frames=20, n_features=5, n_components=3)


def check_at_truth(regime, seed):
    ds, truth = make_suite_recording(regime, seed, **SMALL)
    m = LICCHIE(n_components=3, radius=float(ds.attrs["radius"]))
    prep = m._prepare(ds)
    C = np.ascontiguousarray(truth["target_effect"].values.T)
    R = np.ascontiguousarray(truth["source_effect"].values.T)
    return GC.gain_check(prep.problem.X, prep.problem.pairs, C, R)


@pytest.mark.parametrize("seed", [0, 1])
def test_check_tells_planted_gains_from_per_pair_deviations(seed):
    """At the planted motifs: gains (``shared_gains``: per-target gains) say
    "gains"; deviations of 5 % per pair without gains (``shared``, ``owned``)
    do not."""
    with_gains = check_at_truth("shared_gains", seed)
    assert with_gains.suggests_gains
    assert with_gains.gain_q90 - with_gains.gain_q10 > 0.5
    for regime in ("shared", "owned"):
        assert not check_at_truth(regime, seed).suggests_gains


def small_fit(ds, **params):
    m = LICCHIE(n_components=3, radius=float(ds.attrs["radius"]), random_state=0, n_init=2,
                max_iter=10, solver_options=dict(search_evals=3000), **params)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m.fit(ds)
    return m, caught


@pytest.fixture(scope="module")
def gained_fit():
    ds, truth = make_suite_recording("shared_gains", 1, **SMALL)
    m, caught = small_fit(ds, target_gain=False)
    return m, ds, caught


def test_fit_stores_warns_prints_and_saves_the_check(gained_fit, tmp_path):
    m, ds, caught = gained_fit
    gc = m.gain_check_
    assert set(gc) == {"heldout_share", "gain_q10", "gain_q90", "suggests_gains"}
    # the stored check is the check at the fitted motifs
    prep = m._prepare(ds)
    C = np.ascontiguousarray(m.components_["target_effect"].values.T)
    R = np.ascontiguousarray(m.components_["source_effect"].values.T)
    again = GC.gain_check(prep.problem.X, prep.problem.pairs, C, R)
    assert gc["heldout_share"] == pytest.approx(again.heldout_share, rel=1e-6)
    assert gc["suggests_gains"]
    assert any("target_gain='auto'" in str(w.message) and "gain check" in str(w.message)
               for w in caught)
    assert "gain check" in m.summary() and "fit again with target_gain='auto'" in m.summary()
    assert m.target_gain_ is False
    # "auto" refits locally with one feature space only (Dask fits warn instead)
    assert m._gain_refit_blocker(None) is None
    assert m._gain_refit_blocker(object()) == "backend='dask'"
    path = tmp_path / "m.nc"
    m.save(path)
    back = licchie.load(path)
    assert back.gain_check_ == gc and back.target_gain_ is False


def test_auto_fits_again_with_gains_when_the_check_asks(gained_fit, tmp_path):
    """The default ``target_gain="auto"`` keeps the gain-free fit's check as
    the evidence and ends at the fit that ``target_gain=True`` gives."""
    off, ds, _ = gained_fit
    auto, caught = small_fit(ds)
    assert auto.target_gain == "auto" and auto.target_gain_ is True
    assert auto.gain_check_ == off.gain_check_
    assert not any("gain check" in str(w.message) for w in caught)
    assert np.ptp(auto.weights_["target_gain"].values) > 0.1  # gains were fitted
    on, _ = small_fit(ds, target_gain=True)
    assert auto.objective_history_.sel(term="total").values[-1] == pytest.approx(
        on.objective_history_.sel(term="total").values[-1], rel=1e-9)
    np.testing.assert_allclose(auto.weights_.values, on.weights_.values, rtol=1e-9, atol=1e-12)
    text = auto.summary()
    assert "this is the fit with target gains" in text and "(pooling with target gains)" in text
    assert "compare a refit with a second seed" in text
    path = tmp_path / "auto.nc"
    auto.save(path)
    back = licchie.load(path)
    assert back.target_gain_ is True and back.target_gain == "auto"
    assert back.gain_check_ == auto.gain_check_


def test_auto_judges_only_the_fit_it_keeps(gained_fit, monkeypatch):
    """The gain-free fit that the refit replaces is never diagnosed; the
    verdict is the one the fit with gains alone gives."""
    _, ds, _ = gained_fit
    from licchie.fit import global_start as FG
    real, calls = FG.diagnose, []

    def diagnose(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(FG, "diagnose", diagnose)
    auto, _ = small_fit(ds)
    assert auto.target_gain_ is True and len(calls) == 1
    on, _ = small_fit(ds, target_gain=True)
    assert len(calls) == 2
    assert list(auto.components_["verdict"].values) == list(on.components_["verdict"].values)
    np.testing.assert_array_equal(auto.stability_.values, on.stability_.values)
    assert auto.stability_.attrs == on.stability_.attrs


def test_progress_of_a_fit_with_gains_counts_its_refined_polish(gained_fit, monkeypatch):
    _, ds, _ = gained_fit
    import licchie.model as M
    bars = []

    class Bar:
        def __init__(self, verbose, total):
            self.total, self.n = total, 0
            bars.append(self)

        def update(self, k=1):
            self.n += k

        def set_postfix_str(self, text):
            pass

        def close(self):
            pass

    monkeypatch.setattr(M, "_progress", Bar)
    small_fit(ds, target_gain=True)   # n_init=2 polishes, then the refined one
    assert len(bars) == 1 and bars[0].n == bars[0].total == 3 * 10


def test_auto_refit_with_gains_keeps_the_gain_free_fits_pooling_groups(gained_fit,
                                                                       monkeypatch):
    """The groups' cross-validation fits profiles without gains, so it judges
    only the gain-free fit: even when it would prefer class profiles at the
    fit with gains, the refit keeps the gain-free fit's class x frame groups,
    cross-validation and fallback reason."""
    off, ds, _ = gained_fit
    import licchie.fit as F
    real = F.grouping_cv
    seen = []

    def grouping_cv(*args, **kwargs):
        cv = real(*args, **kwargs)
        seen.append(cv)
        # from the second call on, every frame "prefers" class profiles
        return cv if len(seen) == 1 else dataclasses.replace(cv, fine_share=0.0)

    monkeypatch.setattr(F, "grouping_cv", grouping_cv)
    auto, _ = small_fit(ds)
    assert auto.target_gain_ is True
    assert len(seen) == 1   # the gain-free fit's check only
    assert auto.pooling_groups_ == off.pooling_groups_ == "class_time"
    assert auto.pooling_cv_ == off.pooling_cv_
    assert auto.pooling_fallback_ is None


def test_auto_keeps_the_gain_free_fit_when_the_check_is_quiet():
    ds, _ = make_suite_recording("shared", 0, **SMALL)
    auto, _ = small_fit(ds)
    off, _ = small_fit(ds, target_gain=False)
    assert not auto.gain_check_["suggests_gains"] and auto.target_gain_ is False
    assert auto.objective_history_.sel(term="total").values[-1] == (
        off.objective_history_.sel(term="total").values[-1])
    assert np.all(auto.weights_["target_gain"].values == 1.0)


def test_no_check_without_pooling():
    ds, _ = make_suite_recording("shared", 0, **SMALL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        paper = LICCHIE(n_components=3, radius=float(ds.attrs["radius"]), random_state=0,
                        n_init=2, max_iter=5, lambdas=(1.0, 0.1, 0.0, 0.01, 0.0)).fit(ds)
    assert paper.gain_check_ is None
    assert "gain check" not in paper.summary()
