"""Fit configs: one small TOML file for ``licchie fit config.toml``.

A config names the tracker exports of every population, the model's
parameters and where the results go; ``examples/behav3d.toml`` is a complete
one.  Tables and keys::

    [data]        frames = [1, 301], standardize = "population", session = "well0"
                  (standardize is the model's: LICCHIE(standardize=...); see
                  :func:`config_model`)
    [[population]]  name, one of imaris / trackmate / table, features, tracked,
                    log, where, columns, session   (one entry per population)
    [model]       any LICCHIE parameter; radius = "suggest" picks one from the data
    [phenotype]   population, feature, threshold, above, below, source_population
                  (labels for the report's weight sweeps and source extremes)
    [output]      model = "model.nc", report = "report"

Relative paths are relative to the config file.  Every error names the file,
the table and the key, and says how to fix it (an unknown key gets the
closest known one).  :func:`load_config` reads and checks a file,
:func:`config_recording` reads the data (:func:`licchie.io.read_well`),
:func:`config_model` builds the estimator, :func:`phenotype_labels` the
labels.
"""
from __future__ import annotations

import difflib
import os
import sys
from dataclasses import dataclass, field

import numpy as np

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from .well import POPULATION_KEYS, read_well

__all__ = ["ConfigError", "WellConfig", "load_config", "config_recording", "config_model",
           "phenotype_labels", "observation_labels", "default_config_text"]

_TABLES = {
    "data": ("frames", "standardize", "session"),
    "population": POPULATION_KEYS,
    "model": None,  # LICCHIE's parameters, checked against get_params()
    "phenotype": ("population", "feature", "threshold", "above", "below",
                  "source_population"),
    "output": ("model", "report"),
}


class ConfigError(ValueError):
    """A config file that cannot be used; the message says where and how to fix it."""


@dataclass
class WellConfig:
    """A checked config (see the module docstring for the keys).

    Attributes
    ----------
    path : str
        The file (absolute); ``""`` for a config built in memory.
    text : str
        Its TOML text (stored in the model file, so ``licchie report`` can
        find the data again).
    data, model, phenotype : dict
    populations : list of dict
        Paths made absolute.
    output_model, output_report : str
        Absolute paths.
    """

    path: str
    text: str
    data: dict = field(default_factory=dict)
    populations: list = field(default_factory=list)
    model: dict = field(default_factory=dict)
    phenotype: dict = field(default_factory=dict)
    output_model: str = "model.nc"
    output_report: str = "report"


def _suggest(key, known):
    hit = difflib.get_close_matches(str(key), list(known), n=1, cutoff=0.5)
    return f"; did you mean {hit[0]!r}?" if hit else f"; known keys: {sorted(known)}."


def _check_keys(where, table, known, fname):
    for key in table:
        if key not in known:
            raise ConfigError(f"{fname}: {where}: unknown key {key!r}{_suggest(key, known)}")


def _model_keys():
    from .model import LICCHIE
    return tuple(LICCHIE().get_params())


def load_config(path, text=None):
    """Read and check a config file.

    Parameters
    ----------
    path : str or path
        The TOML file (or, with ``text``, the name to report errors under
        and to resolve relative paths from).
    text : str, optional
        TOML text to use instead of the file's content.

    Returns
    -------
    WellConfig

    Raises
    ------
    FileNotFoundError
        No such config file.
    ConfigError
        Invalid TOML, an unknown table or key (with the closest known one), a
        missing required key, a wrong type, or a source file that does not
        exist.
    """
    path = os.path.abspath(os.fspath(path))
    fname = os.path.basename(path)
    if text is None:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"No config file {path!r}; check the path "
                                    "(examples/behav3d.toml is a complete example).")
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{fname}: not valid TOML ({exc}).") from None
    _check_keys("top level", raw, _TABLES, fname)
    here = os.path.dirname(path)
    cfg = WellConfig(path=path, text=text)
    cfg.data = dict(raw.get("data", {}))
    _check_keys("[data]", cfg.data, _TABLES["data"], fname)
    frames = cfg.data.get("frames")
    if frames is not None and not (isinstance(frames, list) and len(frames) == 2
                                   and all(isinstance(f, int) for f in frames)
                                   and frames[0] <= frames[1]):
        raise ConfigError(f"{fname}: [data] frames must be [first, last] (integers, "
                          f"inclusive), got {frames!r}.")
    how = cfg.data.get("standardize", "population")
    if how not in ("none", "population", "population_session"):
        raise ConfigError(f"{fname}: [data] standardize must be \"population\", "
                          f"\"population_session\" or \"none\", got {how!r}.")
    pops = raw.get("population")
    if not isinstance(pops, list) or not pops:
        raise ConfigError(f"{fname}: no [[population]] entries; add one per population, e.g.\n"
                          "[[population]]\nname = \"CD8\"\nimaris = \"path/to/folder\"\n"
                          "features = [\"Area\", \"Sphericity\"]")
    for i, pop in enumerate(pops):
        where = f"[[population]] {i + 1} ({pop.get('name', 'no name')!r})"
        _check_keys(where, pop, POPULATION_KEYS, fname)
        if "name" not in pop or "features" not in pop:
            miss = [k for k in ("name", "features") if k not in pop]
            raise ConfigError(f"{fname}: {where}: missing key(s) {miss}; every population "
                              "needs a name and a list of features.")
        if not isinstance(pop["features"], list) or not all(
                isinstance(f, str) for f in pop["features"]):
            raise ConfigError(f"{fname}: {where}: features must be a list of column names.")
        pop = dict(pop)
        for key in ("imaris", "trackmate", "table"):
            if key in pop:
                pop[key] = _resolve(pop[key], here, fname, where, key)
        cfg.populations.append(pop)
    cfg.model = dict(raw.get("model", {}))
    _check_keys("[model]", cfg.model, _model_keys(), fname)
    radius = cfg.model.get("radius")
    if isinstance(radius, str) and radius != "suggest":
        raise ConfigError(f"{fname}: [model] radius must be a number or \"suggest\", got "
                          f"{radius!r}.")
    cfg.phenotype = dict(raw.get("phenotype", {}))
    _check_keys("[phenotype]", cfg.phenotype, _TABLES["phenotype"], fname)
    if cfg.phenotype:
        miss = [k for k in ("population", "feature", "threshold") if k not in cfg.phenotype]
        if miss:
            raise ConfigError(f"{fname}: [phenotype] needs {miss} (label the population's "
                              "rows by a feature's raw value above / below threshold).")
        names = [p["name"] for p in cfg.populations]
        for key in ("population", "source_population"):
            v = cfg.phenotype.get(key)
            if v is not None and v not in names:
                raise ConfigError(f"{fname}: [phenotype] {key} {v!r} is not a population"
                                  f"{_suggest(v, names)}")
    out = dict(raw.get("output", {}))
    _check_keys("[output]", out, _TABLES["output"], fname)
    cfg.output_model = os.path.join(here, out.get("model", "model.nc"))
    cfg.output_report = os.path.join(here, out.get("report", "report"))
    return cfg


def _resolve(value, here, fname, where, key):
    """Absolute path(s) of a source; a plain missing path is an error here,
    patterns are left to the reader."""
    import glob
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(v, str) for v in items):
        raise ConfigError(f"{fname}: {where}: {key} must be a path (or a list of paths).")
    out = []
    for v in items:
        p = v if os.path.isabs(v) else os.path.normpath(os.path.join(here, v))
        if not glob.has_magic(p) and not os.path.exists(p):
            raise ConfigError(f"{fname}: {where}: {key} = {v!r}: no such file or folder "
                              f"({p}); paths are relative to the config file's folder.")
        out.append(p)
    return out if isinstance(value, list) else out[0]


def config_recording(cfg, log=None, frames=None):
    """Read the config's populations into a Recording.

    Parameters
    ----------
    cfg : WellConfig
    log : callable, optional
        Progress messages.
    frames : (int, int), optional
        Overrides ``[data] frames`` (e.g. a subset for a quick run).

    Returns
    -------
    recording : Recording
    table : pandas.DataFrame
        The long table (:func:`licchie.io.read_well`), with raw feature
        values for phenotype labels.
    """
    from .data import Recording
    frames = frames if frames is not None else cfg.data.get("frames")
    # the model standardises (config_model), so that the model file keeps the
    # statistics and reports motifs in the features' own units
    table, kw = read_well(cfg.populations, frames=frames, standardize="none",
                          session=cfg.data.get("session"), log=log)
    return Recording.from_table(table, **kw), table


def config_model(cfg, recording=None, log=None, **overrides):
    """The estimator of ``[model]`` (``overrides`` win); ``radius = "suggest"``
    needs the recording and uses :func:`suggest_radius`.

    ``[data] standardize`` (default ``"population"``; ``"none"`` for raw
    values) becomes ``LICCHIE(standardize=...)`` unless ``[model]`` sets
    ``standardize`` itself.  Why the config's default differs from the
    estimator's (None): on real data the features of a population have
    unrelated units (a volume in µm³ beside a sphericity in [0, 1]), so
    unscaled motifs would be dominated by the largest-valued feature; with
    population feature spaces each population's scale is absorbed by its own
    effects, so the loss measured on synthetic shared-feature data
    (docs/model-choices.md, "Standardisation") does not apply in the same way
    (docs/own-recording.md, "Units").
    """
    from .model import LICCHIE
    params = dict(cfg.model, **overrides)
    if "standardize" not in params:
        how = cfg.data.get("standardize", "population")
        params["standardize"] = None if how in (None, "none") else how
    if isinstance(params.get("lambdas"), list):
        params["lambdas"] = tuple(params["lambdas"])
    if params.get("radius") == "suggest":
        from .data.neighbours import suggest_radius
        if recording is None:
            raise ConfigError("radius = \"suggest\" needs the recording.")
        r = suggest_radius(recording)
        if not np.isfinite(r):
            raise ConfigError(f"{os.path.basename(cfg.path)}: radius = \"suggest\" found no "
                              "frame with a previous frame to measure; set radius to a number.")
        params["radius"] = float(f"{r:.3g}")
        if log:
            log(f"radius = \"suggest\": {params['radius']:g} (1.5 x the median distance to "
                "the nearest other cell of the previous frame)")
    try:
        return LICCHIE(**params)
    except TypeError as exc:  # pragma: no cover - keys were checked in load_config
        raise ConfigError(f"[model]: {exc}") from None


def _check_phenotype_feature(cfg, have):
    ph = cfg.phenotype
    if ph["feature"] not in have:
        pops = [p for p in cfg.populations if p["name"] == ph["population"]]
        raise ConfigError(f"{os.path.basename(cfg.path)}: [phenotype] feature "
                          f"{ph['feature']!r} is not a feature of population "
                          f"{ph['population']!r}{_suggest(ph['feature'], pops[0]['features'])} "
                          "(add it to that population's features).")


def _threshold_labels(ph, raw, rows):
    """``above``/``below`` by ``raw > threshold`` where ``rows`` (and raw is
    finite), None elsewhere: the one rule of a [phenotype] label."""
    rows = rows & np.isfinite(raw)
    out = np.full(raw.shape[0], None, dtype=object)
    out[rows] = np.where(raw[rows] > float(ph["threshold"]), ph.get("above", "high"),
                         ph.get("below", "low"))
    return out


def phenotype_labels(cfg, table):
    """Labels of ``[phenotype]``: ``above`` / ``below`` (default "high" /
    "low") by the raw feature value against ``threshold``, for the rows of
    the phenotype's population; None elsewhere.  Returns None without a
    ``[phenotype]`` table.

    Returns
    -------
    numpy.ndarray of object, shape (len(table),) or None
    """
    ph = cfg.phenotype
    if not ph:
        return None
    _check_phenotype_feature(cfg, [c[4:] for c in table.columns if c.startswith("raw:")])
    raw = table["raw:" + ph["feature"]].to_numpy(dtype=float)
    return _threshold_labels(ph, raw, (table["population"] == ph["population"]).to_numpy())


def observation_labels(cfg, obs):
    """:func:`phenotype_labels` for the observations of a Recording read from
    the config (:func:`config_recording`; features before any model
    standardisation).

    Returns
    -------
    numpy.ndarray of object, shape (obs.n_obs,) or None
    """
    ph = cfg.phenotype
    if not ph:
        return None
    feats = [str(f) for f in obs.feature_names]
    _check_phenotype_feature(cfg, feats)
    raw = obs.features[:, feats.index(ph["feature"])].astype(float)
    pop = [p for p in cfg.populations if p["name"] == ph["population"]][0]
    if ph["feature"] in (pop.get("log") or ()):
        raw = np.exp(raw)  # read_well logged it
    names = [str(n) for n in obs.population_names]
    rows = obs.population == names.index(ph["population"])
    return _threshold_labels(ph, raw, rows)


def _toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def default_config_text(path, features, n_components=4, radius="suggest", kind="trackmate",
                        name="cells", tracked=True, output="model.nc"):
    """A config for one export with default settings, as TOML text (what
    ``licchie fit spots.csv`` uses and prints, to be saved and edited)."""
    lines = ["# licchie fit config (edit and run: licchie fit this.toml)", "",
             "[data]", 'standardize = "population"   # the model z-scores per population',
             "", "[[population]]", f"name = {_toml_value(name)}",
             f"{kind} = {_toml_value(path)}", f"tracked = {_toml_value(tracked)}",
             f"features = {_toml_value(list(features))}", "",
             "[model]", f"n_components = {n_components}",
             f"radius = {_toml_value(radius)}   # or a number, in position units",
             "", "[output]", f"model = {_toml_value(output)}",
             f"report = {_toml_value(os.path.splitext(output)[0] + '_report')}", ""]
    return "\n".join(lines)
