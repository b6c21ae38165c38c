"""The source-excitation diagnostic (``components_["source_excitation"]``).

Checked against a plain NumPy reference written another way (SVD of the
weighted source matrix instead of the eigendecomposition of its Gram), on
sources confined to a known subspace (where the answer is the norm of the
source effect's part inside it), and through the estimator: values in
[0, 1], saved and loaded, NaN for files written before it existed, and
reported by ``summary``.
"""
import warnings

import numpy as np
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import licchie
from licchie import LICCHIE
from licchie.fit import source_excitation
from licchie.synthetic import make_recording

SETTINGS = dict(deadline=None, max_examples=40,
                suppress_health_check=[HealthCheck.too_slow])


def _reference(Z, W, R, noise_var, snr):
    out = []
    for j in range(W.shape[1]):
        w = np.abs(W[:, j])
        if not np.sum(w * w) > 0:
            out.append(np.nan)
            continue
        # right singular vectors of diag(|w|) Z are the eigenvectors of S_j
        _, s, Vt = np.linalg.svd(w[:, None] * Z, full_matrices=True)
        lam = np.zeros(Z.shape[1])
        lam[:s.size] = s * s
        keep = lam >= snr * noise_var * np.sum(w * w)
        out.append(min(1.0, np.linalg.norm(Vt[keep] @ R[:, j])))
    return np.array(out)


@settings(**SETTINGS)
@given(st.integers(0, 2**32 - 1), st.integers(1, 30), st.integers(1, 5), st.integers(1, 4),
       st.sampled_from([1e-6, 1e-2, 1.0]), st.sampled_from([1.0, 10.0, 100.0]))
def test_matches_reference(seed, E, d, J, noise_var, snr):
    rng = np.random.default_rng(seed)
    # sources in a random subspace of random dimension, some exactly zero
    k = int(rng.integers(1, d + 1))
    Z = rng.normal(size=(E, k)) @ rng.normal(size=(k, d))
    Z[rng.random(E) < 0.2] = 0.0
    W = rng.normal(size=(E, J))
    W[rng.random((E, J)) < 0.3] = 0.0
    if J > 1 and rng.random() < 0.5:
        W[:, 0] = 0.0  # a motif no pair uses
    R = rng.normal(size=(d, J))
    R /= np.linalg.norm(R, axis=0)
    got = source_excitation(Z, W, R, noise_var, snr)
    ref = _reference(Z, W, R, noise_var, snr)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    ok = ~np.isnan(ref)
    # eigenvalues on the threshold can fall either way in rounding: compare
    # where no eigenvalue is within 1e-9 of it, else just the range
    if _clear(Z, W, noise_var, snr):
        np.testing.assert_allclose(got[ok], ref[ok], atol=1e-6)
    assert np.all((got[ok] >= 0) & (got[ok] <= 1))
    # a stricter threshold never counts more of r_j as excited
    stricter = source_excitation(Z, W, R, noise_var, 10 * snr)
    assert np.all(stricter[ok] <= got[ok] + 1e-12)


def _clear(Z, W, noise_var, snr):
    for j in range(W.shape[1]):
        w2 = W[:, j] ** 2
        if w2.sum() > 0:
            ev = np.linalg.eigvalsh((Z * w2[:, None]).T @ Z)
            thr = snr * noise_var * w2.sum()
            if np.any(np.abs(ev - thr) <= 1e-9 * max(thr, 1.0)):
                return False
    return True


def test_sources_in_a_known_subspace():
    rng = np.random.default_rng(0)
    d, E = 5, 200
    # the sources visit only the first 3 coordinates
    Z = np.zeros((E, d))
    Z[:, :3] = rng.normal(size=(E, 3))
    W = rng.uniform(0.5, 1.5, size=(E, 2))
    a, b = 0.6, 0.8
    R = np.zeros((d, 2))
    R[:, 0] = [a, 0, 0, b, 0]                       # part outside: b
    R[:, 1] = [0, 1 / np.sqrt(2), 1 / np.sqrt(2), 0, 0]   # all inside
    got = source_excitation(Z, W, R, noise_var=1e-4, snr=10.0)
    np.testing.assert_allclose(got, [a, 1.0], atol=1e-12)
    # noise above the signal: nothing is excited
    got = source_excitation(Z, W, R, noise_var=1e3, snr=10.0)
    np.testing.assert_array_equal(got, [0.0, 0.0])


@pytest.fixture(scope="module")
def fitted():
    ds, _ = make_recording(n_cells=(6, 4), n_frames=8, n_features=3, n_components=2, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = LICCHIE(n_components=2, radius=10.0, n_neighbors=4, lambdas=(1.0, 0.1, 0.0, 0.01, 1.0),
                    n_init=2, max_iter=6, random_state=0, verbose=0).fit(ds)
    return ds, m


def test_fit_reports_it_and_files_keep_it(tmp_path, fitted):
    ds, m = fitted
    exc = m.components_["source_excitation"]
    assert exc.dims == ("component",)
    assert np.all((exc.values >= 0) & (exc.values <= 1))
    assert exc.attrs["snr"] == 10.0 and exc.attrs["noise_sd"] > 0
    # the reported values are the function's on the fit's own pairs and residual
    from licchie import fit as F
    from licchie.data import as_recording
    obs = as_recording(ds).obs
    pairs = F.build_pairs(obs, 10.0)
    W = m.weights_.values
    R = m.components_["source_effect"].values.T
    C = m.components_["target_effect"].values.T
    pred = F.K.predict_lowrank(obs.features, pairs.tgt_ptr, pairs.src, pairs.gain, W, C, R)
    nv = np.mean((obs.features[pairs.tgt_obs] - pred) ** 2)
    np.testing.assert_allclose(exc.values, source_excitation(
        pairs.gain[:, None] * obs.features[pairs.src], W, R, nv, 10.0), rtol=1e-10)
    assert "source excitation" in m.summary()
    np.testing.assert_array_equal(m.motifs()["source_excitation"].values, exc.values)
    path = tmp_path / "m.nc"
    m.save(path)
    back = licchie.load(path)
    xr.testing.assert_identical(back.components_["source_excitation"], exc)
    # a file from before the diagnostic: loads, with NaN
    old = m.to_dataset().drop_vars("source_excitation")
    old.to_netcdf(tmp_path / "old.nc", engine="netcdf4")
    back = licchie.load(tmp_path / "old.nc")
    assert np.all(np.isnan(back.components_["source_excitation"].values))
    assert "source excitation" not in back.summary()
