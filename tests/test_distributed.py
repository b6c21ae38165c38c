"""The distributed fit on Dask (issue 16): same objective as the local fit,
partition statistics that add up to the whole recording's, and a worker
killed mid-fit failing the fit cleanly."""
import threading
import time
import warnings

import numpy as np
import pytest

from licchie import LICCHIE
from licchie import fit as F
from licchie.data import as_recording
from licchie.distributed import merge_aggregates, session_slice
from licchie.kernels import pooled as KP
from licchie.synthetic import make_recording
from licchie.synthetic.spaces import make_space_recording

# 4 sessions, ~2000 pairs: a polish iteration is milliseconds, so the cluster's
# round trips dominate and the test stays well under a minute
SMALL = dict(n_cells=(8, 4), n_frames=10, n_features=4, n_components=3, n_sessions=4)
# target_gain=False: the backends are compared on the fit Dask runs (a local
# "auto" fit of these data, whose targets have gains, would refit with gains)
FIT = dict(n_components=3, radius=10.0, n_init=2, max_iter=15, random_state=0,
           target_gain=False, solver_options=dict(search_evals=1500, n_searches=2))


@pytest.fixture(scope="module")
def four_sessions():
    return make_recording(seed=0, **SMALL)[0]


def test_session_slices_have_the_sessions_pairs(four_sessions):
    """Pairs built from each session alone are the recording's pairs of that
    session, with the same group names (so the partitions agree with the
    client's labels)."""
    obs = as_recording(four_sessions).obs
    whole = F.build_pairs(obs, 10.0, pooling_groups="class_time", pooling_window=1)
    sess = obs.session[whole.tgt]
    for s in range(len(obs.session_names)):
        sub, f0 = session_slice(obs, s, s + 1)
        o0 = obs.frame_ptr[f0]
        p = F.build_pairs(sub, 10.0, pooling_groups="class_time", pooling_window=1)
        m = sess == s
        np.testing.assert_array_equal(p.tgt + o0, whole.tgt[m])
        np.testing.assert_array_equal(p.src + o0, whole.src[m])
        names = np.array(whole.group_names)[whole.group[m]]
        np.testing.assert_array_equal(np.array(p.group_names)[p.group], names)


@pytest.mark.parametrize("groups", ["class", "class_time"])
def test_merged_statistics_are_the_whole_recordings(four_sessions, groups):
    """The pooled statistics summed over sessions (groups mapped to the
    whole recording's) are those aggregated over the whole recording."""
    obs = as_recording(four_sessions).obs
    whole = F.build_pairs(obs, 10.0, pooling_groups=groups, pooling_window=1)
    G = whole.n_groups
    ref = KP.aggregate(obs.features, whole.tgt_obs, whole.tgt_ptr, whole.src, whole.gain,
                       whole.group, G, obs.frame[whole.tgt_obs], obs.n_frames)
    index = {n: g for g, n in enumerate(whole.group_names)}
    aggs, gis = [], []
    for s in range(len(obs.session_names)):
        sub, f0 = session_slice(obs, s, s + 1)
        p = F.build_pairs(sub, 10.0, pooling_groups=groups, pooling_window=1)
        aggs.append(KP.aggregate(sub.features, p.tgt_obs, p.tgt_ptr, p.src, p.gain, p.group,
                                 p.n_groups, sub.frame[p.tgt_obs] + f0, obs.n_frames))
        gis.append(np.array([index[n] for n in p.group_names]))
    merged = merge_aggregates(aggs, gis, G)
    np.testing.assert_array_equal(merged["co_ptr"], ref["co_ptr"])
    np.testing.assert_array_equal(merged["co_idx"], ref["co_idx"])
    for a, b in zip(KP.combine(merged, G), KP.combine(ref, G)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_unsupported_fits_fail_clearly(four_sessions):
    with pytest.raises(NotImplementedError, match="pooled fit"):
        LICCHIE(backend="dask", lambdas={"pooling": 0.0}).fit(four_sessions)
    with pytest.raises(NotImplementedError, match="target_gain"):
        LICCHIE(backend="dask", target_gain=True).fit(four_sessions)
    with pytest.raises(NotImplementedError, match="standardize"):
        LICCHIE(backend="dask", standardize="population").fit(four_sessions)
    spaces = make_space_recording(seed=0, n_cells=(6, 6), n_times=5)[0]
    with pytest.raises(NotImplementedError, match="different feature sets"):
        LICCHIE(backend="dask").fit(spaces)


try:
    import distributed
except ImportError:  # the fit itself needs it only with backend="dask"
    distributed = None
needs_dask = pytest.mark.skipif(
    distributed is None, reason="dask.distributed is not installed (pip install "
                                "'licchie[dask]'; CI installs it with the test extra)")


def _fit(ds, client=None, settle=True, **params):
    fit = dict(FIT, solver_options=dict(FIT["solver_options"], settle_weights=settle),
               **params)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = LICCHIE(**fit).fit(ds, client=client)
    model.caught_ = caught
    return model


@needs_dask
@pytest.mark.parametrize("settle", [False, True])
def test_dask_fit_reaches_the_local_objective(four_sessions, settle):
    """2 workers, 4 sessions: the same objective (1e-8 relative), weights and
    motifs as the local fit with the same seed, with and without the settle
    step; with it, ``transform`` on the training data gives the fit's weights."""
    local = _fit(four_sessions, settle=settle)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as lc, \
            distributed.Client(lc) as client:
        dist = _fit(four_sessions, client=client, settle=settle)
        if not settle:  # "auto" on Dask: the same gain-free fit, and a warning
            auto = _fit(four_sessions, client=client, settle=False, target_gain="auto")
        left = client.run(lambda dask_worker: len(getattr(dask_worker,
                                                          "_licchie_partitions", {})))
    stages = set(dist.objective_history_["stage"].values)
    assert (F.frozen.FINAL_STAGE in stages) == settle
    assert (F.frozen.FINAL_STAGE in set(local.objective_history_["stage"].values)) == settle
    a = float(local.objective_history_[-1, -1])
    b = float(dist.objective_history_[-1, -1])
    assert abs(a - b) <= 1e-8 * abs(a)
    assert dist.objective_history_.sizes == local.objective_history_.sizes
    assert dist.n_iter_ == local.n_iter_
    np.testing.assert_allclose(dist.weights_.values, local.weights_.values, atol=1e-6)
    np.testing.assert_allclose(dist.group_weights_.values, local.group_weights_.values,
                               atol=1e-6)
    assert dist.dask_stats_["n_partitions"] == 4
    assert all(v == 0 for v in left.values())  # the workers forgot the fit
    if settle:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            again = dist.transform(four_sessions)
        # from a different start (the reduced start, not the partitions'
        # pooled deviations) the descent stops within its tolerance of the
        # same minimum: 1.5e-6 apart with Anderson extrapolation (2026-12-07)
        np.testing.assert_allclose(again.values, dist.weights_.values, atol=1e-5)
    else:
        assert auto.target_gain_ is False
        assert float(auto.objective_history_[-1, -1]) == pytest.approx(b, rel=1e-12)
        assert auto.gain_check_["heldout_share"] == pytest.approx(
            dist.gain_check_["heldout_share"], rel=1e-9)
        warned = any("backend='dask'" in str(w.message) for w in auto.caught_)
        assert warned == auto.gain_check_["suggests_gains"]


@needs_dask
def test_workers_read_their_own_files(four_sessions, tmp_path):
    """A list of netCDF files: each worker reads its own file (one partition
    per file), and the fit is the local fit of the same files."""
    rec = as_recording(four_sessions)
    paths = []
    for lab in rec._session_labels:
        path = tmp_path / f"well_{lab}.nc"
        rec.to_dataset(session=lab).to_netcdf(path)
        paths.append(str(path))
    local = _fit(paths)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as lc, \
            distributed.Client(lc) as client:
        dist = _fit(paths, client=client)
    a = float(local.objective_history_[-1, -1])
    b = float(dist.objective_history_[-1, -1])
    assert abs(a - b) <= 1e-8 * abs(a)
    np.testing.assert_allclose(dist.weights_.values, local.weights_.values, atol=1e-6)


def _n_starts_on_workers(client):
    def count(dask_worker):
        store = getattr(dask_worker, "_licchie_partitions", {})
        return sum(len(p.starts) for p in store.values())
    return sum(client.run(count).values())


@needs_dask
@pytest.mark.slow
def test_worker_killed_mid_fit_fails_cleanly(four_sessions):
    """Kill a worker process during the polish: the fit raises
    PartitionLostError, the estimator stays unfitted and the surviving
    worker holds none of the fit's partitions."""
    from licchie.distributed import PartitionLostError

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as lc, \
            distributed.Client(lc) as client:
        est = LICCHIE(**{**FIT, "max_iter": 100000, "tol": 0.0})
        box = {}

        def run():
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    est.fit(four_sessions, client=client)
            except Exception as exc:  # noqa: BLE001  checked below
                box["error"] = exc

        th = threading.Thread(target=run)
        th.start()
        deadline = time.time() + 120
        while _n_starts_on_workers(client) == 0:  # the polish has begun
            assert time.time() < deadline and th.is_alive(), box
            time.sleep(0.2)
        time.sleep(0.5)
        victim = next(iter(lc.workers.values()))
        victim.process.process.kill()  # SIGKILL the worker process (the nanny restarts one)
        th.join(120)
        assert not th.is_alive()
        assert isinstance(box.get("error"), PartitionLostError), box
        assert not hasattr(est, "components_")
        assert _n_starts_on_workers(client) == 0


@needs_dask
def test_smoothness_graph_within_sessions():
    """lam2 > 0: with one session the partition's graph is the local fit's
    (same objective); with several sessions the fit warns that its graph
    links pairs within each session only."""
    one = make_recording(seed=1, **{**SMALL, "n_sessions": 1, "n_frames": 8})[0]
    lam = {"smoothness": 0.1}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        local = LICCHIE(**FIT, lambdas=lam).fit(one)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as lc, \
            distributed.Client(lc) as client:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dist = LICCHIE(**FIT, lambdas=lam).fit(one, client=client)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            LICCHIE(**{**FIT, "max_iter": 1, "n_init": 1}, lambdas=lam).fit(
                make_recording(seed=0, **{**SMALL, "n_frames": 4})[0], client=client)
    assert any("within each session" in str(w.message) for w in caught)
    assert dist.n_edges_ == local.n_edges_ > 0
    a = float(local.objective_history_[-1, -1])
    b = float(dist.objective_history_[-1, -1])
    assert abs(a - b) <= 1e-8 * abs(a)
