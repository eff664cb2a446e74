"""The configuration of ``python -m trackdiag.compare_ckpts``: a typed schema and its composition.

``conf/compare/config.yaml`` holds the defaults and the ``--help`` text; :class:`CompareConfig` is its
schema (registered in Hydra's ConfigStore as ``trackdiag_compare_schema``), so a wrong type or an unknown
key fails with a clear message. :func:`compose` composes it with overrides from Python (also inside a
running Hydra app).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ..config import to_dict
from ..errors import ConfigError

__all__ = ["CompareConfig", "MlflowSourceConfig", "RegressionConfig", "RankingConfig", "SamplesConfig",
           "OutputConfig", "PublishConfig", "compose", "validate", "SCHEMA_NAME", "compare_config_dir"]

SCHEMA_NAME = "trackdiag_compare_schema"

#: Per-metric (and per-analyzer) maps: their keys are the user's metric names, so ``limits.band_score=0.4``
#: must add a key without Hydra's ``+`` prefix. :func:`map_overrides` turns such overrides into ``++`` ones.
MAP_KEYS = ("goals", "weights", "limits", "regression.abs", "samples.params")


def map_overrides(overrides: Iterable[str]) -> list[str]:
    """``limits.band_score=0.4`` → ``++limits.band_score=0.4`` (and ``goals={a:max}`` → ``++goals={a:max}``,
    which merges into the defaults), so users need no ``+`` for the keys of the per-metric maps."""
    out = []
    for item in overrides:
        key = item.split("=", 1)[0]
        if "=" in item and not key.startswith(("+", "~")) and any(
                key == m or key.startswith(m + ".") for m in MAP_KEYS):
            item = "++" + item
        out.append(item)
    return out


@dataclass
class MlflowSourceConfig:
    tracking_uri: str = "sqlite:///mlruns.db"
    experiment: str = "trackdiag"
    filter: str = ""
    max_runs: int = 1000


@dataclass
class RegressionConfig:
    rel: float = 0.10
    abs: dict[str, float] = field(default_factory=dict)


@dataclass
class RankingConfig:
    method: str = "tiered"
    flagged_last: bool = True
    explain: int = 5
    severity_first: bool = True
    verdict_analyzers: list[str] = field(default_factory=lambda: ["tiling", "pixel"])
    since: bool = True


@dataclass
class SamplesConfig:
    sets: list[Any] = field(default_factory=list)
    masks: Optional[str] = None
    ref: Optional[str] = None
    run_name: str = "samples"
    aggregates: list[str] = field(default_factory=lambda: ["mean", "median", "worst"])
    worst_k: int = 3
    rank_by: str = "mean"
    batch_size: int = 8
    analyzers: list[str] = field(default_factory=lambda: ["tiling"])
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class OutputConfig:
    dir: str = "comparison_report"
    formats: list[str] = field(default_factory=lambda: ["csv", "json", "md", "html", "pdf"])
    plots: bool = True
    pdf_rows: int = 80


@dataclass
class PublishConfig:
    to: Any = "auto"
    run_name: str = "comparison"
    experiment: Optional[str] = None
    images: bool = True
    overrides: list[str] = field(default_factory=list)


@dataclass
class CompareConfig:
    backend: str = "mlflow"
    runs: list[str] = field(default_factory=list)
    mlflow: MlflowSourceConfig = field(default_factory=MlflowSourceConfig)
    steps: Any = "all"
    tolerance: int = 50
    metrics: list[str] = field(default_factory=list)
    key_metrics: list[str] = field(default_factory=list)
    goals: dict[str, str] = field(default_factory=dict)
    default_goal: str = "min"
    weights: dict[str, float] = field(default_factory=dict)
    limits: dict[str, float] = field(default_factory=dict)
    baseline: str = "first"
    regression: RegressionConfig = field(default_factory=RegressionConfig)
    ranking: RankingConfig = field(default_factory=RankingConfig)
    samples: SamplesConfig = field(default_factory=SamplesConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    publish: PublishConfig = field(default_factory=PublishConfig)
    on_missing: str = "error"


def _register() -> None:
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name=SCHEMA_NAME, node=CompareConfig)


def compare_config_dir() -> str:
    from ..config import config_dir

    return str(config_dir() / "compare")


def compose(overrides: Iterable[str] = ()) -> Any:
    """Compose ``conf/compare/config.yaml`` with Hydra overrides. Safe inside a running ``@hydra.main`` app
    (its global state is put aside and restored, as in :func:`trackdiag.config.compose`)."""
    from omegaconf import OmegaConf

    from ..config import compose as compose_dir

    _register()
    cfg = compose_dir(map_overrides(overrides), directory=Path(compare_config_dir()),
                      job_name="compare_ckpts",
                      what="compare_ckpts")
    OmegaConf.set_struct(cfg, False)
    cfg.pop("hydra", None)
    return validate(cfg)


@functools.lru_cache(maxsize=1)
def shipped_map_keys() -> dict[str, tuple[str, ...]]:
    """The metric names of the per-metric maps in the shipped ``conf/compare/config.yaml`` (``weights``,
    ``limits``, ``regression.abs``): a run need not log them, unlike the names a user adds."""
    from omegaconf import DictConfig, OmegaConf

    from ..config import config_dir

    raw = OmegaConf.load(config_dir() / "compare" / "config.yaml")
    if not isinstance(raw, DictConfig):
        raise ConfigError("compare/config.yaml must be a mapping.")
    return {"weights": tuple(raw.get("weights") or {}), "limits": tuple(raw.get("limits") or {}),
            "regression.abs": tuple((raw.get("regression") or {}).get("abs") or {})}


def validate(cfg: Any) -> Any:
    """Merge ``cfg`` over the schema and check the values that a type cannot express."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from .ranking import METHODS
    from .sources import SOURCES

    try:
        data = to_dict(cfg)
        data.pop("hydra", None)
        node = OmegaConf.merge(OmegaConf.structured(CompareConfig), data)
    except OmegaConfBaseException as exc:
        raise ConfigError(f"invalid compare_ckpts configuration: {exc}") from None
    if node.backend not in SOURCES:
        raise ConfigError(f"backend must be one of {list(SOURCES)}; got {node.backend!r}.")
    steps = node.steps
    if isinstance(steps, str):
        if steps not in ("all", "last"):
            raise ConfigError(f"steps must be 'all', 'last' or a list of steps; got {steps!r}.")
    else:
        if isinstance(steps, int) and not isinstance(steps, bool):
            steps = [steps]  # steps=1000: one checkpoint
        try:
            node.steps = [int(s) for s in (steps if steps is not None else [])]
        except (TypeError, ValueError):
            raise ConfigError(f"steps must be 'all', 'last' or a list of integer steps; got {steps!r}."
                              ) from None
        if not node.steps:
            raise ConfigError("steps is an empty list; give steps=[1000,2000], steps=all or steps=last.")
    if node.tolerance < 0:
        raise ConfigError(f"tolerance must be >= 0 steps; got {node.tolerance}.")
    if node.ranking.method not in METHODS:
        raise ConfigError(f"ranking.method must be one of {list(METHODS)}; got {node.ranking.method!r}.")
    if node.on_missing not in ("error", "skip"):
        raise ConfigError(f"on_missing must be 'error' or 'skip'; got {node.on_missing!r}.")
    if node.regression.rel < 0:
        raise ConfigError(f"regression.rel must be >= 0; got {node.regression.rel}.")
    s = node.samples
    if s.worst_k < 1 or s.batch_size < 1:
        raise ConfigError("samples.worst_k and samples.batch_size must be >= 1.")
    bad = [a for a in s.aggregates if a not in ("mean", "median", "worst")]
    if bad or not s.aggregates:
        raise ConfigError(f"samples.aggregates must be a non-empty subset of [mean, median, worst]; got "
                          f"{list(s.aggregates)}.")
    if s.rank_by not in s.aggregates:
        raise ConfigError(f"samples.rank_by={s.rank_by!r} must be one of samples.aggregates "
                          f"{list(s.aggregates)}.")
    if s.sets and node.runs:
        raise ConfigError("give either runs=[…] (tracker mode) or samples.sets=[…] (samples mode), not both.")
    return node
