"""The estimator's API (issue 13): named lambdas, solver_options, scikit-learn
parameter validation, RandomState seeds, no state before a successful fit,
silence by default and the one setup entry point ``_prepare``."""
import inspect
import warnings

import numpy as np
import pytest
from sklearn.base import clone

import licchie
from licchie import LICCHIE
from licchie import fit as F
from licchie.synthetic import make_recording

SMALL = dict(n_cells=(6, 4), n_frames=8, n_features=3, n_components=2)
BASE = dict(n_components=2, radius=10.0, n_neighbors=4, n_init=2, max_iter=4,
            random_state=0, verbose=0)


@pytest.fixture(scope="module")
def small():
    return make_recording(**SMALL, seed=3)[0]


def _fit(ds, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return LICCHIE(**dict(BASE, **kw)).fit(ds)


def _fitted_names(model):
    return sorted(k for k in vars(model) if k.endswith("_") and not k.startswith("_"))


def test_signature_is_keyword_only_after_radius():
    params = inspect.signature(LICCHIE).parameters
    kinds = {name: p.kind for name, p in params.items()}
    assert list(params)[:2] == ["n_components", "radius"]
    assert all(k == inspect.Parameter.KEYWORD_ONLY for n, k in kinds.items()
               if n not in ("n_components", "radius"))
    assert "pooling" not in params and "solver_options" in params
    assert params["verbose"].default == 0
    with pytest.raises(TypeError):
        LICCHIE(3, 5.0, (1.0, 0.1, 0.0, 0.01, 0.0))


def test_dict_lambdas_fill_defaults_and_fit_as_the_tuple(small):
    """A dict names some lambdas; the others take the defaults, and the fit
    is exactly that of the equivalent 5-tuple."""
    from licchie.params import Lambdas, resolve_lambdas
    d = Lambdas()
    assert d.pooling > 0  # the default fit is the identifiable, pooled one
    assert tuple(resolve_lambdas({"pooling": 2.0, "l1_W": 0.5})) == (
        d.low_rank, d.smoothness, d.l1_A, 0.5, 2.0)
    assert resolve_lambdas(LICCHIE().lambdas) == d
    a = _fit(small, lambdas={"pooling": 1.0, "smoothness": 0.2})
    b = _fit(small, lambdas=(d.low_rank, 0.2, d.l1_A, d.l1_W, 1.0))
    np.testing.assert_array_equal(a.objective_history_.values, b.objective_history_.values)
    np.testing.assert_array_equal(a.weights_.values, b.weights_.values)
    # the pooling entry is lambda5: the pooling term is on only when it is > 0
    h = a.objective_history_.sel(term="pooling").values
    assert np.all(h[1:] > 0)
    h0 = _fit(small, lambdas={"smoothness": 0.2, "pooling": 0.0}).objective_history_.sel(
        term="pooling")
    assert np.all(h0.values == 0)


def test_dict_lambdas_survive_save_load_and_clone(small, tmp_path):
    m = _fit(small, lambdas={"pooling": 1.0}, solver_options={"extrapolate": False})
    m.save(tmp_path / "m.nc")
    back = licchie.load(tmp_path / "m.nc")
    assert back.get_params() == m.get_params()
    assert clone(m).get_params() == m.get_params()


def test_random_state_instance_is_accepted_and_reproducible(small):
    """A RandomState works end to end; the same state gives the same fit, and
    another state another one (the starts' seeds come from its draws)."""
    a = _fit(small, random_state=np.random.RandomState(0))
    b = _fit(small, random_state=np.random.RandomState(0))
    c = _fit(small, random_state=np.random.RandomState(1))
    np.testing.assert_array_equal(a.objective_history_.values, b.objective_history_.values)
    np.testing.assert_array_equal(a.start_objectives_, b.start_objectives_)
    assert not np.array_equal(a.start_objectives_, c.start_objectives_)
    # a RandomState-seeded model can still be saved (its state is not stored)
    assert a.to_dataset().attrs["params"]


def test_n_jobs_does_not_change_the_fit(small):
    """With 2 jobs the pooled search's searches run on worker processes and
    the kernels on 2 threads; the fit is the 1-job fit bit for bit."""
    import numba
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("one core: n_jobs=2 is n_jobs=1 here, nothing to compare")
    kw = dict(solver_options={"search_evals": 1500})
    one, two = _fit(small, n_jobs=1, **kw), _fit(small, n_jobs=2, **kw)
    assert one.stability_.attrs["method"] == "global search"   # the search ran
    np.testing.assert_array_equal(one.objective_history_.values,
                                  two.objective_history_.values)
    np.testing.assert_array_equal(one.weights_.values, two.weights_.values)
    for k in ("target_effect", "source_effect", "stability"):
        np.testing.assert_array_equal(one.components_[k].values, two.components_[k].values)


def test_int_seeds_are_numpy_seed_sequences():
    """An int seeds ``SeedSequence(int)`` exactly (the fits of before issue 13)."""
    from licchie.params import seed_sequence
    np.testing.assert_array_equal(seed_sequence(7).generate_state(3),
                                  np.random.SeedSequence(7).generate_state(3))
    rs = np.random.RandomState(5)
    first = seed_sequence(rs).generate_state(2)
    again = seed_sequence(np.random.RandomState(5)).generate_state(2)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(seed_sequence(rs).generate_state(2), first)  # state moved


def test_unknown_solver_option_names_the_allowed_keys(small):
    m = LICCHIE(**dict(BASE, solver_options={"extrapolate": False, "restarts": 2}))
    with pytest.raises(ValueError, match=r"Unknown solver_options \['restarts'\].*"
                                         r"class_restarts.*extrapolate.*init_max_iter.*"
                                         r"record_steps"):
        m.fit(small)
    assert _fitted_names(m) == []


@pytest.mark.parametrize("value", [True, -1, 2.5])
def test_polish_screen_must_be_a_count(small, value):
    m = LICCHIE(**dict(BASE, solver_options={"polish_screen": value}))
    with pytest.raises(ValueError, match="polish_screen"):
        m.fit(small)
    assert _fitted_names(m) == []


def test_solver_options_reach_the_solver(small):
    """Each option changes the fit the way it says: no extrapolation rows
    without extrapolation, one record per step with record_steps, and class
    restarts leave their trials."""
    plain = _fit(small, lambdas={"pooling": 1.0}, init="parafac", max_iter=8)
    assert "extrapolate" in set(plain.objective_history_["stage"].values)
    assert plain.class_restarts_ is None
    no_ex = _fit(small, lambdas={"pooling": 1.0}, init="parafac", max_iter=8,
                 solver_options={"extrapolate": False})
    assert "extrapolate" not in set(no_ex.objective_history_["stage"].values)
    steps = _fit(small, solver_options={"record_steps": True}, n_init=1)
    assert {"A", "components"} <= set(steps.objective_history_["stage"].values)
    restarted = _fit(small, lambdas={"pooling": 1.0}, init="parafac", solver_options={"class_restarts": 1})
    assert len(restarted.class_restarts_) > 1


def test_no_fitted_attribute_after_a_failed_fit(small, monkeypatch):
    """A fit that fails (in validation, in the setup, or after the starts,
    in the class restarts) leaves no fitted attribute behind."""
    bad = LICCHIE(**dict(BASE, n_components=10))         # > d*d = 9
    with pytest.raises(ValueError, match="at most d"):
        bad.fit(small)
    assert _fitted_names(bad) == []

    def boom(*a, **k):
        raise RuntimeError("restarts failed")

    monkeypatch.setattr(F, "class_restarts", boom)
    m = LICCHIE(**dict(BASE, lambdas={"pooling": 1.0}, solver_options={"class_restarts": 1}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(RuntimeError, match="restarts failed"):
            m.fit(small)
    assert _fitted_names(m) == []
    assert not hasattr(m, "class_restarts_")


def test_verbose_0_prints_nothing(small, capsys):
    _fit(small, verbose=0)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    _fit(small, verbose=1)
    out = capsys.readouterr()
    assert out.out == ""                      # the summary is the caller's to print
    assert "LICCHIE fit" in out.err           # the progress bar


def test_prepare_builds_the_fits_problem(small):
    """``_prepare`` is the fit's setup: its Problem, started, run and settled
    as fit does the first start, gives the fitted model's first start exactly."""
    m = LICCHIE(**dict(BASE, lambdas={"pooling": 1.0}, n_init=1, init="parafac",
                       pooling_groups="class_time"))  # auto may refit with class
    prep = m._prepare(small)
    assert _fitted_names(m) == []
    assert isinstance(prep.problem, F.Problem)
    from licchie.params import Lambdas
    assert prep.problem.lambdas == tuple(Lambdas(pooling=1.0))
    assert prep.pairs.n_pairs == prep.fit_pairs.n_pairs == prep.problem.pairs.n_pairs
    assert prep.problem.pairs is prep.fit_pairs
    if prep.perm is not None:
        np.testing.assert_array_equal(np.sort(prep.perm), np.arange(prep.pairs.n_pairs))
    seed = int(np.random.SeedSequence(0).generate_state(1)[0])
    res = F.run_start(prep.problem, F.initial_interactions(prep.problem), 2, seed,
                      m.max_iter, m.tol, record_steps=False, keep_A=False)
    # a pooled fit ends with the weights at its motifs
    F.settle_weights(res, prep.problem, F.frozen.ITER_PER_FIT_ITER * m.max_iter, m.tol)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.fit(small)
    assert res.objective == m.start_objectives_[0]
    with pytest.raises(ValueError, match="n_neighbors"):
        LICCHIE(n_neighbors=0)._prepare(small)


def test_sklearn_constraints_reject_bad_types_with_the_parameter_name():
    from sklearn.utils._param_validation import InvalidParameterError
    for kw in (dict(n_init=1.5), dict(radius="far"), dict(pooling_groups="cell"),
               dict(n_jobs=-2), dict(bandwidth=float("inf")), dict(sigma=-1.0)):
        name = next(iter(kw))
        with pytest.raises(InvalidParameterError, match=name):
            LICCHIE(**kw)._validate_params()
    LICCHIE(radius=float("inf"), n_jobs=-1)._validate_params()   # allowed
