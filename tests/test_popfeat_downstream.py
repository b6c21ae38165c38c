"""Population feature spaces downstream of the fit: sweeps, source extremes,
the report's motif panels (NumPy references on a small two-population fit
where population A has features f0-f2 and B has f1, f3)."""
import warnings

import numpy as np
import pandas as pd
import pytest

import licchie
from licchie.evaluate import source_extremes
from licchie.evaluate.interactions import source_feature_extremes_states
from licchie.sweeps import frequency_normalised_scores, motif_effects, weight_sweep_states
from licchie.synthetic.spaces import make_space_recording


@pytest.fixture(scope="module")
def fitted():
    ds, _ = make_space_recording(0, n_cells=(12, 12), n_times=15, noise_sd=0.05)
    m = licchie.LICCHIE(n_components=2, radius=1.5, n_init=1, max_iter=4, random_state=0,
                        standardize="population")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.fit(ds)
    return m, ds


def _effects_by_hand(model, tp, sp):
    comps = model.components_
    C = comps["target_effect"].sel(population=tp).transpose("component", "feature").values
    R = comps["source_effect"].sel(population=sp).transpose("component", "feature").values
    return C, R


def test_motif_effects_pick_each_population_and_refuse_none(fitted):
    m, _ = fitted
    assert m.components_["target_effect"].dims == ("population", "component", "feature")
    C, R, tf, sf = motif_effects(m, "B", "A")
    Ch, Rh = _effects_by_hand(m, "B", "A")
    np.testing.assert_array_equal(tf, np.isfinite(Ch).all(0))
    np.testing.assert_array_equal(sf, np.isfinite(Rh).all(0))
    np.testing.assert_array_equal(C, np.nan_to_num(Ch))
    np.testing.assert_array_equal(R, np.nan_to_num(Rh))
    assert tf.sum() == 2 and sf.sum() == 3  # B: f1, f3; A: f0-f2
    with pytest.raises(ValueError, match=r"target_population must name one of the "
                                         r"populations \['A', 'B'\]"):
        motif_effects(m)


def test_weight_sweep_states_per_population_pair_matches_numpy(fitted):
    m, _ = fitted
    rng = np.random.default_rng(0)
    src = rng.normal(size=(30, 4))
    src[:, 3] = np.nan  # population A lacks f3
    ref = rng.normal(size=(50, 4))
    ref[:, [0, 2]] = np.nan  # population B lacks f0 and f2
    lab = np.where(ref[:, 1] > 0, "up", "down")
    w = np.array([0.0, 1.0, 2.0])
    out = weight_sweep_states(m, src, ref, lab, weights=w, n_neighbors=7,
                              target_population="B", source_population="A")
    C, R = _effects_by_hand(m, "B", "A")
    t = [1, 3]
    base = ref[:, t].mean(0)
    for j in range(2):
        drive = src[:, :3] @ R[j, :3]
        Q = base + w[:, None, None] * drive[None, :, None] * C[j, t][None, None, :]
        cls, q = frequency_normalised_scores(ref[:, t], lab, Q.reshape(-1, 2), 7)
        np.testing.assert_allclose(out.values[j], q.reshape(3, 30, 2).mean(1), rtol=1e-10)
    with pytest.raises(ValueError, match="target_population must name"):
        weight_sweep_states(m, np.nan_to_num(src), np.nan_to_num(ref), lab)


def test_source_feature_extremes_only_the_source_features(fitted):
    m, _ = fitted
    rng = np.random.default_rng(1)
    src = rng.normal(size=(25, 4))
    src[:, [0, 2]] = np.nan  # sources of B
    ref = rng.normal(size=(40, 4))
    ref[:, 3] = np.nan  # targets of A
    lab = np.where(ref[:, 0] > 0, "a", "b")
    ext = source_feature_extremes_states(m, src, ref, lab, n_neighbors=9,
                                         target_population="A", source_population="B")
    assert list(ext["source_feature"].unique()) == ["f1", "f3"]
    C, R = _effects_by_hand(m, "A", "B")
    t, s = [0, 1, 2], [1, 3]
    x = np.nan_to_num(src).mean(0)
    x[3] = src[:, 3].max()
    q = ref[:, t].mean(0) + 2.0 * C[1, t] * (R[1, s] @ x[s])
    cls, sc = frequency_normalised_scores(ref[:, t], lab, q[None], 9)
    row = ext[(ext["component"] == 1) & (ext["source_feature"] == "f3")]
    assert float(row["score_max_a"].iloc[0]) == pytest.approx(sc[0, list(cls).index("a")])


def test_source_extremes_project_on_each_population_effect(fitted):
    from licchie import scaling as S
    m, ds = fitted
    out = source_extremes(m, ds, 0, n=3, source_population="B")
    assert set(out["population"]) == {"B"}
    z = S.scaled_recording(m, ds).obs
    B = list(z.population_names).index("B")
    _, R = _effects_by_hand(m, "B", "B")
    zb = z.features[(z.population == B) & np.isfinite(z.features).any(1)]
    proj = np.nan_to_num(zb) @ np.nan_to_num(R[0])
    np.testing.assert_allclose(out["projection"].iloc[0], proj.max(), rtol=1e-10)
    np.testing.assert_allclose(out["projection"].iloc[3], proj.min(), rtol=1e-10)


def test_report_panels_use_each_pair_features(fitted, tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from licchie.report.real import _fig_motif, write_real_report
    m, _ = fitted
    fig = _fig_motif(plt, m, 1, None, 1.0)  # no config: features from the effects
    panels = [ax for ax in fig.axes if ax.get_title().startswith("M1")]
    assert len(panels) == 4
    own = {"A": ["f0", "f1", "f2"], "B": ["f1", "f3"]}
    for ax in panels:
        src, tgt = ax.get_title().split("(")[-1].rstrip(")").split(" -> ")
        assert [t.get_text() for t in ax.get_yticklabels()] == own[tgt]
        assert [t.get_text() for t in ax.get_xticklabels()] == own[src]
        C, R = _effects_by_hand(m, tgt, src)
        tf = [int(f[1]) for f in own[tgt]]
        sf = [int(f[1]) for f in own[src]]
        np.testing.assert_allclose(ax.images[0].get_array(), np.outer(C[1, tf], R[1, sf]))
    plt.close(fig)
    m.save(tmp_path / "m.nc")
    write_real_report(tmp_path / "m.nc")
    md = (tmp_path / "m_report" / "report.md").read_text()
    assert "## Units" in md and "A: " in md and "B: " in md
    assert (tmp_path / "m_report" / "motifs_original_units.csv").exists()


def test_motifs_in_original_units_per_population_pair(fitted):
    """``motifs(units="original")`` with population effects: ``(s_p c_j)(r_j / s_q)^T``
    with p the target's and q the source's population statistics."""
    m, _ = fitted
    mo = m.motifs(units="original")
    s = m.scaling_["scale"]
    C, R = _effects_by_hand(m, "B", "A")
    want = np.einsum("ji,jk->jik", C * s.sel(population="B").values,
                     R / s.sel(population="A").values)
    got = mo.sel(target_population="B", source_population="A").values
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert mo.attrs["units"] == "original"


def test_predict_returns_original_units_with_population_effects(fitted):
    """A standardised fit with population effects predicts in the data's units:
    ``mu_p + s_p * yhat`` with ``yhat`` the model-unit prediction (NaN where the
    target's population lacks a feature)."""
    from licchie import fit as F
    from licchie import scaling as S
    from licchie._spaces_labels import population_predict
    from licchie.data import as_recording
    m, ds = fitted
    got = m.predict(as_recording(ds)).set_index(["cell", "time"])
    raw = as_recording(ds).obs
    z = S.scaled_recording(m, ds).obs
    pairs = F.build_pairs(z, m.radius, m.include_self, m.pair_weight, m.bandwidth,
                          m._pooling(), m.pooling_window)
    yz = population_predict(m, z, pairs, np.ascontiguousarray(m.weights_.values))
    mu, sd = S.observation_stats(m.scaling_, raw)
    want = mu[pairs.tgt_obs] + sd[pairs.tgt_obs] * yz
    feats = [str(f) for f in m.components_["feature"].values]
    from licchie.labels import time_labels
    idx = pd.MultiIndex.from_arrays([raw.cell_ids[raw.cell[pairs.tgt_obs]],
                                     time_labels(raw, pairs.tgt_obs)])
    np.testing.assert_allclose(got.loc[idx, feats].to_numpy(dtype=float), want, rtol=1e-10,
                               equal_nan=True)
    assert np.isnan(want).any() and np.isfinite(want).any()
