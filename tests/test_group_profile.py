"""The held-out predictor (licchie.evaluate.group_profile_prediction) of a
standardised model works in the data's original units."""
import warnings

import numpy as np
import pytest

from licchie import LICCHIE
from licchie import evaluate as E
from licchie.synthetic import make_recording

SMALL = dict(n_cells=(6, 4), n_frames=8, n_features=3, n_components=2)


def _affine(ds, a, b):
    """Features x -> a[p] * x + b[p] per population p (arrays (n_pop, d))."""
    pops = sorted(set(ds["population"].values.astype(str).tolist()))
    pi = np.array([pops.index(p) for p in ds["population"].values.astype(str)])
    F = ds["features"].transpose("cell", "time", "feature")
    out = ds.copy()
    out["features"] = F.copy(data=F.values * a[pi][:, None, :] + b[pi][:, None, :])
    return out


def _fit(X, **kw):
    p = dict(n_components=2, radius=10.0, n_neighbors=4, lambdas=(1.0, 0.1, 0.0, 0.01, 1.0),
             init="parafac", n_init=1, max_iter=5, random_state=0)
    p.update(kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return LICCHIE(**p).fit(X)


@pytest.mark.parametrize("groups", [dict(pooling_groups="class"),
                                    dict(pooling_groups="class_time", pooling_window=2)])
def test_standardised_model_predicts_held_out_frames_in_original_units(groups):
    """A standardised fit on raw data is the plain fit on its z-scored data,
    so its held-out prediction must be the plain one mapped back through
    the scaling (x = mean + scale * z), on training and held-out frames."""
    ds, _ = make_recording(**SMALL, seed=3)
    rng = np.random.default_rng(0)
    raw = _affine(ds, np.exp(rng.normal(0, 1.5, size=(2, 3))), rng.normal(0, 5, size=(2, 3)))
    t_split = 6
    std = _fit(raw.isel(time=slice(0, t_split)), standardize="population", **groups)
    sc = std.scaling_
    mean = sc["mean"].sel(population=["A", "B"]).values
    scale = sc["scale"].sel(population=["A", "B"]).values
    z = _affine(raw, 1.0 / scale, -mean / scale)
    plain = _fit(z.isel(time=slice(0, t_split)), **groups)
    got = E.group_profile_prediction(std, raw)
    want = _affine(E.group_profile_prediction(plain, z).to_dataset(name="features")
                   .assign(population=raw["population"]), scale, mean)["features"]
    want = want.transpose(*got.dims).values
    assert np.isfinite(got.values).sum() > 0
    held = got.sel(time=raw["time"].values[t_split:]).values
    assert np.isfinite(held).any()
    np.testing.assert_allclose(got.values, want, rtol=1e-6, atol=1e-6)
    # and the held-out score is the one of the plain fit in model units,
    # mapped back: both scored on their own data
    res = E.heldout_prediction(std, raw, t_split, fitted=std)
    assert np.isfinite(res["r2"])
