"""One source of parameter truth: the dataclasses hold every default and description; ``conf/**/*.yaml`` only
select them and override what differs (never repeating a default, never naming a key the dataclass lacks)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, get_type_hints

import pytest
from omegaconf import OmegaConf

from trackdiag.compare.config import CompareConfig
from trackdiag.config import TrackdiagConfig, config_dir, resolve
from trackdiag.confstore import COMPONENTS, defaults_node, group_node, params_class, schema_entry
from trackdiag.errors import ConfigError
from trackdiag.fielddocs import describe, field_docs

CONF = config_dir()


def _yaml_files() -> list[Path]:
    return sorted(CONF.rglob("*.yaml"))


def _schema_of(path: Path) -> tuple[type, dict[str, Any], set[str]]:
    """The dataclass a YAML file sits on, its defaults, and the keys that are not parameters (selection,
    Hydra's own settings)."""
    rel = path.relative_to(CONF)
    if rel == Path("config.yaml"):
        return TrackdiagConfig, _defaults(TrackdiagConfig), {"defaults", "backend", "analyzer"}
    if rel == Path("compare/config.yaml"):
        return CompareConfig, _defaults(CompareConfig), {"defaults", "hydra"}
    group, name = rel.parts[0], rel.stem
    assert group in COMPONENTS and name in COMPONENTS[group], f"{rel}: no registered schema"
    return params_class(group, name), defaults_node(group, name), {"defaults"}


def _defaults(cls: type) -> dict[str, Any]:
    node = OmegaConf.to_container(OmegaConf.structured(cls))
    assert isinstance(node, dict)
    return node


def _problems(data: dict[str, Any], cls: type, defaults: dict[str, Any], where: str = "") -> list[str]:
    """Keys of ``data`` that repeat their default or that dataclass ``cls`` lacks. Nested dataclasses are
    walked; the keys of a mapping-valued parameter (``goals``) are the user's names, so only repeats count."""
    hints = get_type_hints(cls)
    out = []
    for key, value in data.items():
        path = f"{where}{key}"
        if key not in hints and key not in defaults:
            out.append(f"{path}: not a parameter")
            continue
        kind = hints.get(key)
        if isinstance(kind, type) and dataclasses.is_dataclass(kind) and isinstance(value, dict):
            out += _problems(value, kind, defaults[key], path + ".")
        elif isinstance(value, dict) and isinstance(defaults[key], dict):
            out += [f"{path}.{k}: repeats the default" for k, v in value.items() if defaults[key].get(k) == v]
        elif value == defaults[key]:
            out.append(f"{path}: repeats the default {value!r}")
    return out


@pytest.mark.parametrize("path", _yaml_files(), ids=lambda p: str(p.relative_to(CONF)))
def test_yaml_repeats_no_default_and_names_no_unknown_key(path):
    cls, defaults, reserved = _schema_of(path)
    data = OmegaConf.to_container(OmegaConf.load(path))
    assert isinstance(data, dict)
    params = {k: v for k, v in data.items() if k not in reserved}
    assert _problems(params, cls, defaults) == [], path


@pytest.mark.parametrize("group,name", [(g, n) for g, names in COMPONENTS.items() for n in names])
def test_group_yaml_selects_its_registered_schema(group, name):
    raw = OmegaConf.load(CONF / group / f"{name}.yaml")
    assert [schema_entry(e) for e in raw.get("defaults", [])].count((group, name)) == 1
    # the shipped file overrides nothing today, so the group default is exactly the dataclass's defaults
    assert OmegaConf.to_container(group_node(group, name)) == defaults_node(group, name)


def test_the_checker_catches_a_repeated_default_and_an_unknown_key():
    tiling = params_class("analyzer", "tiling")
    found = _problems({"rel_power": 0.25, "ring_min_bins": 3.0, "no_such_key": 1,
                       "schedule": {"every": 100, "start": 5, "nope": 0},
                       "_target_": COMPONENTS["analyzer"]["tiling"]},
                      tiling, defaults_node("analyzer", "tiling"))
    assert found == ["rel_power: repeats the default 0.25", "no_such_key: not a parameter",
                     "schedule.every: repeats the default 100", "schedule.nope: not a parameter",
                     "_target_: repeats the default 'trackdiag.analyzers.tiling.TilingAnalyzer'"]
    found = _problems({"goals": {"band_score": "min", "mine": "max"}, "ranking": {"since": False},
                       "regression": {"abs": {"band_score": 0.05}}}, CompareConfig, _defaults(CompareConfig))
    assert found == ["goals.band_score: repeats the default",
                     "regression.abs.band_score: repeats the default"]


def test_composed_config_holds_every_dataclass_default():
    cfg = resolve(overrides=["backend=[mlflow,local,wandb,tensorboard]"])
    for group, names in COMPONENTS.items():
        for name in names:
            got = OmegaConf.to_container(cfg[group][name])
            assert got == defaults_node(group, name), (group, name)
    top = OmegaConf.to_container(OmegaConf.structured(TrackdiagConfig))
    for key in ("on_error", "on_resume", "out_dir", "allow_external_targets", "run", "worker", "budget"):
        assert OmegaConf.to_container(cfg)[key] == top[key], key


def test_overrides_and_user_nodes_still_change_the_defaults():
    cfg = resolve(overrides=["analyzer=[tiling]", "analyzer.tiling.schedule.every=7", "worker.queue_size=9"])
    assert list(cfg.analyzer) == ["tiling"] and cfg.analyzer.tiling.schedule.every == 7
    assert cfg.analyzer.tiling.rel_power == params_class("analyzer", "tiling")().rel_power
    assert cfg.worker.queue_size == 9
    cfg = resolve(config={"analyzer": {"loss": {"window": 5}}, "backend": {"local": {}}})
    assert list(cfg.analyzer) == ["loss"] and cfg.analyzer.loss.window == 5
    assert cfg.analyzer.loss.spike_sigma == params_class("analyzer", "loss")().spike_sigma
    assert cfg.backend.local._target_ == COMPONENTS["backend"]["local"]
    with pytest.raises(ConfigError, match="unknown analyzer 'nope'"):
        resolve(config={"analyzer": {"nope": {}}})


def test_every_parameter_is_described_once_in_its_dataclass():
    classes = [params_class(g, n) for g, names in COMPONENTS.items() for n in names]
    for cls in [*classes, TrackdiagConfig, CompareConfig]:
        missing = [r.key for r in describe(cls) if not r.doc]
        assert missing == [], f"{cls.__name__}: no #: description for {missing}"
    # a subclass that only changes a default keeps its base's description
    tiling = params_class("analyzer", "tiling")
    assert field_docs(tiling)["figures_every"] and "figures_every" in tiling.__dataclass_fields__


def test_compare_help_is_generated_from_the_field_docs():
    from trackdiag.compare.help import help_template

    text = help_template()
    flat = " ".join(text.split())
    for row in describe(CompareConfig):
        assert row.key in text, row.key
        assert " ".join(row.doc.split())[:40] in flat, row.key
    assert "$CONFIG" in text and "${hydra.help.footer}" in text
    assert not any("goals:" in line for line in (CONF / "compare" / "config.yaml").read_text().splitlines())


def test_compare_defaults_live_in_the_dataclass():
    from trackdiag.compare.config import compose, shipped_map_keys

    cfg = compose([])
    shipped = CompareConfig()
    assert list(cfg.key_metrics) == shipped.key_metrics and dict(cfg.goals) == shipped.goals
    assert dict(cfg.regression.abs) == shipped.regression.abs and shipped.regression.abs["band_score"] == 0.05
    assert shipped_map_keys()["regression.abs"] == tuple(shipped.regression.abs)
    assert dataclasses.asdict(shipped)["ranking"] == OmegaConf.to_container(cfg.ranking)
    cfg = compose(["goals.my_score=max", "regression.abs.band_score=0.1"])
    assert cfg.goals.my_score == "max" and cfg.goals.band_score == "min"
    assert cfg.regression.abs.band_score == 0.1
