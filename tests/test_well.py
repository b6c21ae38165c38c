"""A whole well from tracker exports: from_table options, read_well, TOML configs.

Expected tables are built here by plain loops, never by the code under test.
"""
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from licchie import Recording
from licchie.config import ConfigError, load_config, phenotype_labels
from licchie.io import read_well


# ------------------------------------------------------------------ from_table
@pytest.fixture
def two_pops():
    """CD4 and CD8 both use track ids 1 and 2; organoids have no ids."""
    rows = []
    for pop in ("CD4", "CD8"):
        for cell in (1, 2):
            for f in (0, 1, 2):
                rows.append(dict(pop=pop, cell=cell, frame=f, x=cell + 0.1 * f,
                                 y=0.0 if pop == "CD4" else 1.0, area=cell * 10.0 + f))
    for f in (0, 1, 2):
        for k in range(2):
            rows.append(dict(pop="org", cell=np.nan, frame=f, x=5.0 + k, y=5.0, area=100.0 + f))
    return pd.DataFrame(rows)


def test_from_table_cells_per_population_and_untracked(two_pops):
    rec = Recording.from_table(two_pops, population="pop", untracked="org",
                               cell_per_population=True)
    # naive: one cell per (population, id) for tracked rows, one per untracked row
    expected = {f"{p}-{int(c)}" for p, c in zip(two_pops["pop"], two_pops["cell"])
                if p != "org"}
    expected |= {f"org-obs{i}" for i in np.flatnonzero(two_pops["pop"] == "org")}
    assert set(map(str, rec.obs.cell_ids)) == expected
    assert rec.n_cells == len(expected) and rec.n_obs == len(two_pops)
    # an untracked cell is seen once: it can never be its own previous observation
    ids = np.asarray(rec.obs.cell_ids).astype(str)
    org_cells = [i for i, c in enumerate(ids) if c.startswith("org-")]
    counts = np.bincount(rec.obs.cell, minlength=rec.n_cells)
    assert (counts[org_cells] == 1).all()
    tracked = [i for i, c in enumerate(ids) if not c.startswith("org-")]
    assert (counts[tracked] == 3).all()


def test_from_table_reused_ids_error_names_the_option(two_pops):
    tracked = two_pops[two_pops["pop"] != "org"]
    with pytest.raises(ValueError, match=r"do not drop them.*cell_per_population=True") as err:
        Recording.from_table(tracked, population="pop")
    assert "drop_duplicates" not in str(err.value)
    with pytest.raises(ValueError, match=r"missing.*untracked=\[\.\.\.\]"):
        Recording.from_table(two_pops, population="pop", cell_per_population=True)
    with pytest.raises(ValueError, match=r"untracked=\['orgs'\] names no population.*'org'"):
        Recording.from_table(two_pops, population="pop", untracked=["orgs"])
    with pytest.raises(ValueError, match=r"population=None"):
        Recording.from_table(tracked, population=None, untracked="org")


def test_duplicate_message_never_suggests_dropping_rows_of_two_populations(two_pops):
    # TrackMate's 'None' placeholder in two populations: still two populations' cells
    t = two_pops[two_pops["pop"] != "org"].assign(cell="None")
    with pytest.raises(ValueError, match=r"in another population.*'None'") as err:
        Recording.from_table(t, population="pop")
    assert "drop_duplicates" not in str(err.value)


def test_from_table_integral_float_ids_namespace_cleanly(two_pops):
    t = two_pops[two_pops["pop"] != "org"].assign(cell=lambda d: d["cell"].astype(float))
    rec = Recording.from_table(t, population="pop", cell_per_population=True)
    assert set(map(str, rec.obs.cell_ids)) == {"CD4-1", "CD4-2", "CD8-1", "CD8-2"}


# ------------------------------------------------------------------ read_well
def _well_csv(path, seed=0):
    """One CSV holding two tracked populations (T, reusing ids) and untracked organoids."""
    rng = np.random.default_rng(seed)
    rows = []
    for f in range(6):
        for pop, n in (("T", 4), ("org", 3)):
            for c in range(n):
                rows.append(dict(kind=pop, track=c if pop == "T" else "", frame=f + 1,
                                 px=10.0 * c + rng.normal(), py=5.0 * (pop == "T") + rng.normal(),
                                 pz=rng.normal(), area=rng.uniform(1, 5),
                                 speed=rng.uniform(0, 1) if pop == "T" else np.nan,
                                 dye=rng.uniform(0, 20)))
    df = pd.DataFrame(rows)
    df.to_csv(path, index=False)
    return df


def _pops(path):
    cols = {"cell": "track", "x": "px", "y": "py", "z": "pz"}
    return [dict(name="T", table=str(path), where={"kind": "T"}, columns=cols,
                 features=["area", "speed", "dye"], log=["area"]),
            dict(name="org", table=str(path), where={"kind": "org"}, columns=cols,
                 tracked=False, features=["area", "dye"])]


def test_read_well_per_population_features_and_scaling(tmp_path):
    df = _well_csv(tmp_path / "well.csv")
    raw, _ = read_well(_pops(tmp_path / "well.csv"))  # default: log only, no z-score
    np.testing.assert_allclose(raw.loc[raw["population"] == "T", "area"],
                               np.log(df.loc[df["kind"] == "T", "area"]))
    table, kw = read_well(_pops(tmp_path / "well.csv"), standardize="population")
    assert kw["untracked"] == ["org"] and kw["cell_per_population"]
    assert table.attrs["features"] == ["area", "speed", "dye"]
    assert table.attrs["population_features"] == {"T": ["area", "speed", "dye"],
                                                  "org": ["area", "dye"]}
    org = table[table["population"] == "org"]
    assert org["speed"].isna().all() and org["track"].isna().all()
    t = table[table["population"] == "T"]
    src = df[df["kind"] == "T"]
    # log, then z-score within the population (by hand)
    la = np.log(src["area"].to_numpy())
    np.testing.assert_allclose(t["area"], (la - la.mean()) / la.std(ddof=1))
    np.testing.assert_allclose(t["raw:area"], src["area"])
    d = df[df["kind"] == "org"]["dye"].to_numpy()
    np.testing.assert_allclose(org["dye"], (d - d.mean()) / d.std(ddof=1))
    # the Recording: T ids reused by nobody else, organoids one cell per row
    kw["features"] = ["area", "dye"]  # shared features (see the popfeat issue for the rest)
    rec = Recording.from_table(table, **kw)
    assert rec.n_cells == 4 + len(d) and rec.n_obs == len(df)


def test_read_well_errors_name_the_fix(tmp_path):
    _well_csv(tmp_path / "well.csv")
    pops = _pops(tmp_path / "well.csv")
    bad = [dict(pops[0], features=["aera", "dye"]), pops[1]]
    with pytest.raises(ValueError, match=r"feature 'aera' is not in its table data.*'area'"):
        read_well(bad)
    with pytest.raises(ValueError, match=r"has no track ids.*tracked = false"):
        read_well([dict(pops[1], tracked=True)])
    with pytest.raises(ValueError, match=r"occur twice"):
        read_well([pops[0], dict(pops[1], name="T")])
    with pytest.raises(FileNotFoundError, match=r"no table"):
        read_well([dict(pops[0], table=str(tmp_path / "nope.csv"))])
    const = pd.read_csv(tmp_path / "well.csv").assign(dye=3.0)
    const.to_csv(tmp_path / "const.csv", index=False)
    with pytest.raises(ValueError, match=r"'dye' is constant.*remove it"):
        read_well([dict(pops[0], table=str(tmp_path / "const.csv"))])
    with pytest.raises(ValueError, match=r"no row has kind in \['B'\]"):
        read_well([dict(pops[0], where={"kind": "B"})])


# ------------------------------------------------------------------ configs
def _config(tmp_path, extra="", model='n_components = 2\nradius = 30.0\n'):
    _well_csv(tmp_path / "well.csv")
    text = f"""
[data]
standardize = "population"

[[population]]
name = "T"
table = "well.csv"
where = {{kind = "T"}}
columns = {{cell = "track", x = "px", y = "py", z = "pz"}}
features = ["area", "dye"]

[[population]]
name = "org"
table = "well.csv"
where = {{kind = "org"}}
columns = {{cell = "track", x = "px", y = "py", z = "pz"}}
tracked = false
features = ["area", "dye"]

[model]
{model}
[phenotype]
population = "T"
feature = "dye"
threshold = 10.0
above = "dead"
below = "alive"
source_population = "org"
{extra}"""
    p = tmp_path / "cfg.toml"
    p.write_text(text)
    return p


def test_config_loads_and_labels(tmp_path):
    cfg = load_config(_config(tmp_path))
    assert [p["name"] for p in cfg.populations] == ["T", "org"]
    assert cfg.populations[0]["table"] == str(tmp_path / "well.csv")
    assert cfg.output_model == str(tmp_path / "model.nc")
    from licchie.config import config_recording
    rec, table = config_recording(cfg)
    lab = phenotype_labels(cfg, table)
    raw = pd.read_csv(tmp_path / "well.csv")
    t_rows = (table["population"] == "T").to_numpy()
    expected = np.where(raw[raw["kind"] == "T"]["dye"] > 10, "dead", "alive")
    assert list(lab[t_rows]) == list(expected)
    assert all(v is None for v in lab[~t_rows])


def test_config_model_parameters_and_overrides(tmp_path):
    from licchie.config import config_model, config_recording
    from licchie.data.neighbours import suggest_radius
    p = _config(tmp_path, model='n_components = 3\nradius = "suggest"\n'
                                'lambdas = [1.0, 0.1, 0.0, 0.01, 2.0]\n'
                                'pooling_groups = "class"\n')
    cfg = load_config(p)
    rec, _ = config_recording(cfg)
    m = config_model(cfg, rec)
    assert m.lambdas == (1.0, 0.1, 0.0, 0.01, 2.0) and m.pooling_groups == "class"
    assert m.radius == pytest.approx(suggest_radius(rec), rel=1e-2)
    assert config_model(cfg, rec, n_components=2, radius=5.0).get_params()["radius"] == 5.0
    # [data] standardize is the model's (the model file keeps the statistics);
    # the Recording holds the features as read (log only)
    assert m.standardize == "population"
    assert np.nanmax(np.abs(np.nanmean(rec.obs.features, axis=0))) > 0.5
    off = load_config(p, text=p.read_text().replace('standardize = "population"',
                                                    'standardize = "none"'))
    assert config_model(off, rec).standardize is None
    own = load_config(p, text=p.read_text().replace("[model]", "[model]\nstandardize = "
                                                    "\"population_session\""))
    assert config_model(own, rec).standardize == "population_session"


@pytest.mark.parametrize("edit, message", [
    (("[model]", "[modle]"), r"unknown key 'modle'; did you mean 'model'\?"),
    (("n_components", "n_component"), r"\[model\]: unknown key 'n_component'; did you mean "
                                      r"'n_components'\?"),
    (("tracked = false", "traked = false"), r"\[\[population\]\] 2 \('org'\): unknown key "
                                            r"'traked'; did you mean 'tracked'\?"),
    (('table = "well.csv"', 'table = "wel.csv"'), r"'wel.csv': no such file.*relative to the "
                                                  r"config file"),
    (("radius = 30.0", 'radius = "auto"'), r"radius must be a number or \"suggest\""),
    (('source_population = "org"', 'source_population = "orgs"'),
     r"source_population 'orgs' is not a population; did you mean 'org'\?"),
    (("[data]", "[data"), r"not valid TOML"),
    (('standardize = "population"', 'standardize = "zscore"'),
     r"\[data\] standardize must be \"population\", \"population_session\" or \"none\""),
])
def test_config_errors_name_the_fix(tmp_path, edit, message):
    p = _config(tmp_path)
    p.write_text(p.read_text().replace(*edit, 1))
    with pytest.raises(ConfigError, match=message):
        load_config(p)


def test_config_missing_file_and_feature(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"No config file.*examples/behav3d.toml"):
        load_config(tmp_path / "none.toml")
    p = _config(tmp_path)
    p.write_text(p.read_text().replace('"area", "dye"]\n\n[model]', '"area", "dey"]\n\n[model]'))
    from licchie.config import config_recording
    with pytest.raises(ValueError, match=r"'org': feature 'dey' is not in its table data "
                                         r"\(close matches: \['dye'"):
        config_recording(load_config(p))


# ------------------------------------------------------------------ command line
def test_cli_fit_config_then_report(tmp_path, capsys):
    from licchie.cli import main
    import licchie
    p = _config(tmp_path, extra='\n[output]\nmodel = "out/m.nc"\nreport = "rep"\n',
                model='n_components = 2\nradius = "suggest"\nmax_iter = 5\nn_init = 1\n'
                      'solver_options = {search_evals = 300, n_searches = 1}\n')
    (tmp_path / "out").mkdir()
    assert main(["fit", str(p), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "radius" not in out or "suggest" not in out  # quiet: no progress lines
    model = licchie.load(tmp_path / "out" / "m.nc")
    assert model.n_components == 2
    assert not [f for f in os.listdir(tmp_path / "out") if f.endswith(".part")]
    assert main(["report", str(tmp_path / "out" / "m.nc"), "--quiet"]) == 0
    rep = tmp_path / "rep"
    names = set(os.listdir(rep))
    for f in ("motifs.png", "motif_0.png", "motif_1.png", "class_weights.png",
              "class_weights_time.png", "sweep.png", "source_extremes.png", "report.md",
              "phenotype_prediction.csv", "motifs_original_units.csv"):
        assert f in names, f
    md = (rep / "report.md").read_text()
    # Fig. 4b with its chance rows, and the units the model standardised with
    pp = pd.read_csv(rep / "phenotype_prediction.csv", index_col=0)
    assert {"logistic", "shuffled_labels", "majority"} <= set(pp.index)
    assert "balanced_accuracy" in md and "majority" in md
    assert "## Units" in md and "standardised per population" in md
    for f in names:
        if f.endswith(".png"):
            assert f"({f})" in md
    verdicts = model.components_["verdict"].values
    assert f"| M0 | {verdicts[0]} |" in md


def test_cli_report_without_data_writes_the_model_figures(tmp_path, capsys):
    from licchie.cli import main
    model, _ = _fitted(tmp_path)
    model.save(tmp_path / "m.nc")  # a model of the Python API: no config inside
    assert main(["report", str(tmp_path / "m.nc"), "--quiet"]) == 0
    names = set(os.listdir(tmp_path / "m_report"))
    assert {"motifs.png", "motif_0.png", "class_weights.png", "report.md"} <= names
    assert "sweep.png" not in names
    md = (tmp_path / "m_report" / "report.md").read_text()
    assert "skipped: the model file has no config" in md and "--data config.toml" in md


def test_cli_fit_errors(tmp_path, capsys):
    from licchie.cli import main
    p = _config(tmp_path)
    p.write_text(p.read_text().replace("n_components", "n_comps"))
    assert main(["fit", str(p)]) == 2
    assert "unknown key 'n_comps'" in capsys.readouterr().err
    (tmp_path / "folder").mkdir()
    assert main(["fit", str(tmp_path / "folder")]) == 2
    err = capsys.readouterr().err
    assert "is a folder" in err and "[[population]]" in err


def _trackmate_csv(path, n_cells=12, n_frames=8, seed=0):
    rng = np.random.default_rng(seed)
    rows = ["LABEL,ID,TRACK_ID,QUALITY,POSITION_X,POSITION_Y,POSITION_Z,POSITION_T,FRAME,"
            "RADIUS,VISIBILITY,AREA,CIRCULARITY,MEAN_INTENSITY_CH1"]
    sid = 0
    for c in range(n_cells):
        x, y = rng.uniform(0, 60, 2)
        for f in range(n_frames):
            x, y = x + rng.normal(0, 1), y + rng.normal(0, 1)
            rows.append(f"ID{sid},{sid},{c},1,{x},{y},0,{f},{f},5,1,{rng.uniform(50, 90)},"
                        f"{rng.uniform(0.5, 1)},{rng.uniform(10, 200)}")
            sid += 1
    path.write_text("\n".join(rows) + "\n")
    return path


def test_cli_fit_trackmate_export_prints_its_config(tmp_path, capsys):
    from licchie.cli import main
    from licchie.config import load_config
    p = _trackmate_csv(tmp_path / "movie.csv")
    out_model = tmp_path / "m.nc"
    assert main(["fit", str(p), "-o", str(out_model), "--quiet", "--components", "2",
                 "--max-iter", "3", "--n-init", "1"]) == 0
    out = capsys.readouterr().out
    text = out[out.index("# licchie fit config"):out.index("LICCHIE fit:")]
    cfg = load_config(tmp_path / "printed.toml", text=text)  # the printed config is valid
    assert cfg.populations[0]["features"] == ["AREA", "CIRCULARITY", "MEAN_INTENSITY_CH1"]
    assert cfg.model["n_components"] == 2 and cfg.model["radius"] == "suggest"
    assert cfg.output_report == str(tmp_path / "m_report")
    assert out_model.exists()


# ------------------------------------------------------------------ report helpers
def _fitted(tmp_path):
    import licchie
    from licchie.synthetic import make_suite_recording
    ds, _ = make_suite_recording("shared", seed=0, n_cells=(8, 4), n_frames=8, n_features=3,
                                 n_components=2)
    m = licchie.LICCHIE(n_components=2, radius=ds.attrs["radius"], max_iter=3, n_init=1,
                        random_state=0, solver_options={"search_evals": 200, "n_searches": 1})
    return m.fit(ds), ds


def test_class_weight_summary_matches_a_loop(tmp_path):
    from licchie.evaluate import class_weight_summary  # what the report draws
    model, _ = _fitted(tmp_path)
    s = class_weight_summary(model.weights_).reset_index()
    w = model.weights_
    for r in s.itertuples():
        pick = []
        for e in range(w.sizes["pair"]):
            tp = str(w["target_population"].values[e])
            sp = str(w["source_population"].values[e])
            c = f"self:{tp}" if bool(w["is_self"].values[e]) else f"{tp}<-{sp}"
            if c == r.interaction_class:
                pick.append(float(w.values[e, r.component]))
        assert r.n_pairs == len(pick)
        assert r.mean == pytest.approx(np.mean(pick))


def test_source_extremes_scores_the_stated_query(tmp_path):
    from licchie.evaluate.interactions import source_feature_extremes_states
    from licchie.sweeps import frequency_normalised_scores
    model, _ = _fitted(tmp_path)
    rng = np.random.default_rng(1)
    src = rng.normal(size=(40, 3))
    ref = rng.normal(size=(60, 3))
    lab = np.where(ref[:, 0] > 0, "a", "b")
    ext = source_feature_extremes_states(model, src, ref, lab, n_neighbors=10)
    ext = ext.rename(columns={"source_feature": "feature", "score_max_a": "score_max"})
    C = model.components_["target_effect"].values
    R = model.components_["source_effect"].values
    x = src.mean(axis=0)
    x[2] = src[:, 2].max()
    q = ref.mean(axis=0) + 2.0 * C[1] * (R[1] @ x)
    cls, sc = frequency_normalised_scores(ref, lab, q[None], 10)
    row = ext[(ext["component"] == 1) & (ext["feature"] == str(model.components_["feature"]
                                                                 .values[2]))]
    assert float(row["score_max"].iloc[0]) == pytest.approx(sc[0, list(cls).index("a")])


def test_motif_figure_has_a_panel_per_population_pair_with_its_features(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from licchie.report.real import _fig_motif
    model, ds = _fitted(tmp_path)  # shared effects; the config's feature lists pick panels
    feats = [str(f) for f in model.components_["feature"].values]
    pops = sorted(set(map(str, ds["population"].values)))
    pop_feats = {pops[0]: feats, pops[1]: feats[:2]}
    fig = _fig_motif(plt, model, 0, pop_feats, 1.0)
    panels = [ax for ax in fig.axes if ax.get_title().startswith("M0")]
    assert len(panels) == 4  # every (target, source) population pair of the fit
    for ax in panels:
        src, tgt = ax.get_title().split("(")[-1].rstrip(")").split(" -> ")
        assert [t.get_text() for t in ax.get_yticklabels()] == pop_feats[tgt]
        assert [t.get_text() for t in ax.get_xticklabels()] == pop_feats[src]
        assert model.components_["verdict"].values[0] in ax.get_title()
    plt.close(fig)


# ------------------------------------------------------------------ the worked example
def _shared_data():
    env = os.environ.get("LICCHIE_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "behav3d.toml"
WELL = _shared_data() / "behav3d_coculture_well0"
needs_well = pytest.mark.skipif(not WELL.is_dir(), reason=(
    f"the shared BEHAV3D well ({WELL}) is not here; CI has ../shared/data next to the clone, "
    "or set LICCHIE_SHARED_DATA"))


def _example(tmp_path, common_features):
    text = EXAMPLE.read_text().replace("../../shared/data", str(_shared_data().resolve()))
    if common_features:  # until populations may have their own features (issue 15.1)
        text = text.replace(', "Speed"]', "]")
    p = tmp_path / "behav3d.toml"
    p.write_text(text)
    return p


def _run_example(tmp_path, common_features):
    from licchie.cli import main
    p = _example(tmp_path, common_features)
    # frames 1-12 and a short fit keep CI fast; the README gives the full run
    rc = main(["fit", str(p), "--frames", "1", "12", "--quiet", "--max-iter", "5",
               "--n-init", "1"])
    assert rc == 0
    assert main(["report", str(tmp_path / "behav3d_model.nc"), "--quiet"]) == 0
    names = set(os.listdir(tmp_path / "behav3d_report"))
    assert {"motifs.png", "class_weights.png", "sweep.png", "source_extremes.png",
            "phenotype_prediction.csv", "motifs_original_units.csv", "report.md"} <= names
    assert sum(n.startswith("motif_") for n in names) == 4
    return tmp_path / "behav3d_report"


@needs_well
@pytest.mark.slow
def test_behav3d_example_end_to_end_shared_features(tmp_path):
    _run_example(tmp_path, common_features=True)


@needs_well
@pytest.mark.slow
def test_behav3d_example_end_to_end(tmp_path):
    """The example as written: T-cell speed, organoids without it, organoids
    untracked; motif panels per population pair with each pair's own features."""
    import licchie
    rep = _run_example(tmp_path, common_features=False)
    model = licchie.load(tmp_path / "behav3d_model.nc")
    eff = model.components_["source_effect"]
    assert eff.dims == ("population", "component", "feature")
    assert np.isnan(eff.sel(population="organoid", feature="Speed")).all()
    assert np.isfinite(eff.sel(population="CD8", feature="Speed")).all()
    assert model.scaling_ is not None  # [data] standardize went to the model
    ext = pd.read_csv(rep / "source_extremes.csv")
    assert "Speed" not in set(ext["source_feature"])  # organoid sources have no speed


def test_report_markdown_table_needs_no_tabulate():
    # pandas' to_markdown needs the optional tabulate package, which a fresh
    # install does not have: the report writes its tables itself
    import pandas as pd
    from licchie.report.phenotype import _markdown_table
    df = pd.DataFrame({"accuracy": [0.51234, 0.4], "n_samples": [10, 12]},
                      index=["logistic", "majority"])
    lines = _markdown_table(df).splitlines()
    assert lines[0] == "| | accuracy | n_samples |"
    assert lines[2] == "| logistic | 0.512 | 10 |"
    assert lines[3] == "| majority | 0.400 | 12 |"
