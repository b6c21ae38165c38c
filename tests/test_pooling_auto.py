"""``pooling_groups="auto"`` (the default): class x frame profiles, and one
profile per interaction class when those predict held-out cells better or
when more than a tenth of the class x frame profiles cancel.

The switch itself is checked by forcing each of its two tests
(``GroupingCV.prefers_coarse`` and ``licchie.fit.CANCELLATION_SHARE``): a
fit that falls back must be exactly the explicit ``"class"`` fit, one that
does not exactly the explicit ``"class_time"`` fit, and the recorded
cross-validation must be the one :func:`licchie.fit.grouping_cv` gives at the
fitted motifs.  Whether the choices are right is measured on the synthetic
suite and the real recordings (docs/model-choices.md, "Pooling groups"),
and the cross-validation itself in tests/test_granularity.py.
"""
import warnings

import numpy as np
import pytest

import licchie
import licchie.fit as F
from licchie import LICCHIE
from licchie.synthetic import make_recording

FIT = dict(n_components=2, radius=10.0, n_neighbors=4, n_init=2, max_iter=8,
           random_state=0, solver_options={"search_evals": 300})


@pytest.fixture(scope="module")
def data():
    return make_recording(n_cells=(6, 4), n_frames=8, n_features=3, n_components=2,
                          seed=3)[0]


def _fit(ds, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return LICCHIE(**dict(FIT, **kw)).fit(ds)


def _same_fit(a, b):
    for k in ("target_effect", "source_effect"):
        np.testing.assert_array_equal(a.components_[k].values, b.components_[k].values)
    np.testing.assert_array_equal(a.weights_.values, b.weights_.values)
    np.testing.assert_array_equal(a.weights_["pooling_group"].values,
                                  b.weights_["pooling_group"].values)


def _forced(data, coarse=False, cancel=False, **kw):
    """An auto fit with the cross-validation's preference and/or the
    cancellation test forced."""
    mp = pytest.MonkeyPatch()
    mp.setattr(F.GroupingCV, "prefers_coarse", property(lambda self: coarse))
    if cancel:
        mp.setattr(F, "CANCELLATION_SHARE", -1.0)   # every fit "cancels"
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            m = LICCHIE(**dict(FIT, **kw)).fit(data)
    finally:
        mp.undo()
    return m, caught


@pytest.fixture(scope="module")
def fallen_back(data):
    return _forced(data, coarse=True)


@pytest.fixture(scope="module")
def kept(data):
    return _forced(data, coarse=False)[0]


def test_default_is_auto_and_keeps_class_x_frame_when_it_predicts_better(data, kept):
    assert LICCHIE().pooling_groups == "auto"
    m = kept
    assert m.pooling_groups_ == "class_time" and m.pooling_fallback_ is None
    _same_fit(m, _fit(data, pooling_groups="class_time"))
    assert "pooling groups: one profile per interaction class" not in m.summary()


def test_the_recorded_cross_validation_is_the_one_at_the_fitted_motifs(data, kept):
    prep = LICCHIE(**dict(FIT, pooling_groups="class_time"))._prepare(data)
    C = kept.components_["target_effect"].values.T
    R = kept.components_["source_effect"].values.T
    cv = F.grouping_cv(prep.problem.X, prep.problem.pairs, prep.recording.obs, C, R,
                       prep.problem.spaces)
    assert kept.pooling_cv_ == pytest.approx({"class_time": cv.fine, "class": cv.coarse,
                                              "class_time_frames": cv.fine_share}, rel=1e-8)


def test_falls_back_to_the_class_fit_when_class_profiles_predict_better(data, fallen_back):
    m, caught = fallen_back
    assert m.pooling_groups_ == "class"
    assert "predict held-out cells better" in m.pooling_fallback_
    # the cross-validation of the class x frame fit is kept with the class fit
    assert set(m.pooling_cv_) == {"class_time", "class", "class_time_frames"}
    _same_fit(m, _fit(data, pooling_groups="class"))
    assert "one profile per interaction class (pooling_groups='auto'" in m.summary()
    # the class fit's profiles do not cancel: no warning about them
    assert not any("pooling profiles cancel" in str(w.message) for w in caught)


def test_falls_back_when_profiles_cancel_whatever_the_cross_validation(data):
    m, _ = _forced(data, coarse=False, cancel=True)
    assert m.pooling_groups_ == "class"
    assert m.pooling_fallback_ == "0% of the class x frame profiles cancel"  # the share it saw
    _same_fit(m, _fit(data, pooling_groups="class"))


def test_explicit_groups_do_not_cross_validate(data):
    assert _fit(data, pooling_groups="class_time").pooling_cv_ is None


def test_predict_transform_and_files_use_the_kept_groups(data, fallen_back, tmp_path):
    m, _ = fallen_back
    explicit = _fit(data, pooling_groups="class")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.testing.assert_array_equal(m.predict(data, weights="group").values,
                                      explicit.predict(data, weights="group").values)
        np.testing.assert_array_equal(m.transform(data).values,
                                      explicit.transform(data).values)
    path = tmp_path / "m.nc"
    m.save(path)
    back = licchie.load(path)
    assert back.pooling_groups == "auto" and back.pooling_groups_ == "class"
    assert back.pooling_fallback_ == m.pooling_fallback_
    assert back.pooling_cv_ == m.pooling_cv_
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.testing.assert_array_equal(back.predict(data, weights="group").values,
                                      m.predict(data, weights="group").values)


def test_a_refit_starts_from_the_parameter_again(data):
    """A fitted model's ``pooling_groups_`` is a result, not a setting: the
    next fit tries class x frame first again."""
    m2 = LICCHIE(**FIT)
    m2.pooling_groups_ = "class"          # as if fitted before
    mp = pytest.MonkeyPatch()
    mp.setattr(F.GroupingCV, "prefers_coarse", property(lambda self: False))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m2.fit(data)
    finally:
        mp.undo()
    assert m2.pooling_groups_ == "class_time"


def test_window_none_is_refused_with_auto():
    with pytest.raises(ValueError, match="pooling_window.*auto"):
        LICCHIE(pooling_window=None)._validate_params()
