"""The Hydra CLI of compare_ckpts: --help explains every key, overrides work, errors exit 1 with one line."""

from __future__ import annotations

import dataclasses
import sys

import pytest

from trackdiag.compare.config import CompareConfig, compose, map_overrides
from trackdiag.errors import ConfigError


def leaf_keys(cls, prefix=""):
    out = []
    for f in dataclasses.fields(cls):
        sub = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default  # type: ignore
        if dataclasses.is_dataclass(sub):
            out += leaf_keys(type(sub), f"{prefix}{f.name}.")
        else:
            out.append(prefix + f.name)
    return out


def test_help_explains_every_key(tmp_path, monkeypatch, capsys):
    from trackdiag.compare_ckpts import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["compare_ckpts", "--help"])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code in (0, None)
    text = capsys.readouterr().out
    keys = leaf_keys(CompareConfig)
    assert len(keys) > 30
    explained = {line.split()[0] for line in text.splitlines() if line.startswith("  ") and line.split()}
    missing = [k for k in keys if k not in explained]
    assert not missing, f"--help does not explain {missing}"
    assert "samples.sets=[out/ckpt_1000,out/ckpt_2000]" in text and "Exit status" in text
    assert not list(tmp_path.iterdir())  # --help writes nothing (no Hydra output folder)


def test_compose_validates_values():
    assert list(compose(["steps=1000"]).steps) == [1000]
    cfg = compose(["runs=[a,b]", "steps=[300,100]", "limits.band_score=0.4", "goals={my_score:max}"])
    assert list(cfg.runs) == ["a", "b"] and list(cfg.steps) == [300, 100]
    assert cfg.limits.band_score == 0.4 and cfg.goals.my_score == "max" and cfg.goals.band_score == "min"
    for bad, match in [
        ("steps=first", "steps must be"),
        ("steps=[]", "empty list"),
        ("backend=neptune", "backend"),
        ("ranking.method=borda", "ranking.method"),
        ("samples.rank_by=worst", "must be one of samples.aggregates"),
        ("on_missing=ignore", "on_missing"),
        ("tolerance=-1", "tolerance"),
    ]:
        overrides = [bad] + (["samples.aggregates=[mean]"] if "rank_by" in bad else [])
        with pytest.raises(ConfigError, match=match):
            compose(overrides)
    with pytest.raises(ConfigError, match="not both"):
        compose(["runs=[a]", "samples.sets=[x]"])


def test_map_overrides_need_no_plus():
    assert map_overrides(
        [
            "limits.a=1",
            "+weights.b=2",
            "goals={c:max}",
            "regression.abs.d=0.1",
            "runs=[x]",
            "regression.rel=0.2",
        ]
    ) == [
        "++limits.a=1",
        "+weights.b=2",
        "++goals={c:max}",
        "++regression.abs.d=0.1",
        "runs=[x]",
        "regression.rel=0.2",
    ]
