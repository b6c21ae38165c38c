"""``pooling_groups="auto"`` (the default): class x frame profiles, and one
profile per interaction class when more than a tenth of them cancel.

The switch itself is checked by moving its threshold
(``licchie.fit.CANCELLATION_SHARE``): a fit that falls back must be exactly
the explicit ``"class"`` fit, one that does not exactly the explicit
``"class_time"`` fit.  Whether the threshold is right is measured on the
synthetic suite and the real recordings (docs/model-choices.md, "Pooling
groups"), not here.
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


@pytest.fixture(scope="module")
def fallen_back(data):
    mp = pytest.MonkeyPatch()
    mp.setattr(F, "CANCELLATION_SHARE", -1.0)   # every fit "cancels"
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            m = LICCHIE(**FIT).fit(data)
    finally:
        mp.undo()
    return m, caught


def test_default_is_auto_and_keeps_class_x_frame_when_profiles_hold(data):
    assert LICCHIE().pooling_groups == "auto"
    m = _fit(data)
    assert m.pooling_groups_ == "class_time" and m.pooling_fallback_ is None
    _same_fit(m, _fit(data, pooling_groups="class_time"))
    assert "pooling groups: one profile per interaction class" not in m.summary()


def test_falls_back_to_the_class_fit_when_profiles_cancel(data, fallen_back):
    m, caught = fallen_back
    assert m.pooling_groups_ == "class"
    assert m.pooling_fallback_ == pytest.approx(0.0)   # the share it saw
    _same_fit(m, _fit(data, pooling_groups="class"))
    assert "one profile per interaction class (pooling_groups='auto'" in m.summary()
    # the class fit's profiles do not cancel: no warning about them
    assert not any("pooling profiles cancel" in str(w.message) for w in caught)


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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.testing.assert_array_equal(back.predict(data, weights="group").values,
                                      m.predict(data, weights="group").values)


def test_a_refit_starts_from_the_parameter_again(data, fallen_back):
    """A fitted model's ``pooling_groups_`` is a result, not a setting: the
    next fit tries class x frame first again."""
    m, _ = fallen_back
    m2 = LICCHIE(**FIT)
    m2.pooling_groups_ = "class"          # as if fitted before
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m2.fit(data)
    assert m2.pooling_groups_ == "class_time"


def test_window_none_is_refused_with_auto():
    with pytest.raises(ValueError, match="pooling_window.*auto"):
        LICCHIE(pooling_window=None)._validate_params()
