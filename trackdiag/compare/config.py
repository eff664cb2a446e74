"""The configuration of ``python -m trackdiag.compare_ckpts``: a typed schema and its composition.

:class:`CompareConfig` holds every key, its default and its description (the ``#:`` comment above it); it
is registered in Hydra's ConfigStore as ``trackdiag_compare_schema``, so a wrong type or an unknown key fails
with a clear message, and ``--help`` is generated from it (:mod:`trackdiag.compare.help`).
``conf/compare/config.yaml`` only selects it and sets Hydra's own options. :func:`compose` composes it with
overrides from Python (also inside a running Hydra app).
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


#: The table's columns when ``metrics`` is empty (those every run logged, in this order): fidelity first
#: (ref_detail_deficit_db, pixel/diff_rmse), then the artifact metrics.
KEY_METRICS = ("ref_detail_deficit_db", "pixel/diff_rmse", "checkerboard_score", "grid_s8", "grid_s16",
               "band_score", "band_max_run", "doubled_area_frac", "mask_seam_score", "E2f_over_Ef",
               "Ehalf_over_Ef", "axis_ratio_at_f", "border_cross_index", "shift_nmse_dx1", "shift_nmse_dy1",
               "resize_nmse_downUp")

#: Which way is better, per metric (a short name covers every analyzer's key with that ending).
GOALS: dict[str, str] = {
    # fidelity (lower is better)
    **dict.fromkeys(("ref_detail_deficit_db", "ref_spectrum_distance", "diff_rmse"), "min"),
    # tiling: artifact indicators (lower is better)
    **dict.fromkeys((
        "grid_s8", "grid_s16", "doubled_area_frac", "mask_seam_score", "E2f_over_Ef", "Ehalf_over_Ef",
        "axis_ratio_at_f", "axis_energy_frac_nohann", "border_cross_index", "checkerboard_score",
        "checkerboard_s2", "checkerboard_s8", "shift_mse_dx1", "shift_mse_dy1", "shift_nmse_dx1",
        "shift_nmse_dy1", "resize_mse_downUp", "resize_nmse_downUp", "band_row_frac_max", "band_col_frac_max",
        "band_row_max_run", "band_col_max_run", "band_score", "band_max_run", "band_doubled_frac",
        "nonfinite_frac"), "min"),
    # tiling: strength of the periodic pattern (higher is better)
    **dict.fromkeys(("periodicity_score", "acf_peak_rho", "fundamental_peak_ratio"), "max"),
    # tiling: measurements without a better side (shown, not judged)
    **dict.fromkeys((
        "resize_delta_r", "fundamental_radius_bin", "fundamental_period_px", "acf_first_peak_radius_bin",
        "acf_first_peak_period_px", "ref_radius_bin", "ref_period_px", "ref_periodicity_score",
        "period_ratio_to_ref", "fstar_radius_bin", "fstar_period_px", "fft_side_px", "valid_px_frac",
        "band_base_period_px", "band_axis_is_cols", "local_period_trend_x", "local_period_trend_y"), "none"),
}

#: Per-metric absolute regression tolerances. The band metrics have a scale from the seed: band_score >= 0.4
#: is pronounced banding.
REGRESSION_ABS: dict[str, float] = {
    "band_score": 0.05, "band_row_frac_max": 0.05, "band_col_frac_max": 0.05, "band_doubled_frac": 0.02,
    "band_max_run": 2, "band_row_max_run": 2, "band_col_max_run": 2}


@dataclass
class MlflowSourceConfig:
    #: The MLflow store (sqlite:///mlruns.db, http://host:5000 ...).
    tracking_uri: str = "sqlite:///mlruns.db"
    #: Experiment searched for run names and, when runs is empty, for all runs.
    experiment: str = "trackdiag"
    #: MLflow search filter, e.g. "params.lr = '1e-4'" or "attributes.run_name LIKE 'lora%'".
    filter: str = ""
    #: Most runs taken from one search.
    max_runs: int = 1000
    #: From a server: read the histories trackdiag logged from each run's history digest (one artifact per
    #: run, checked against the run's latest metrics; the rest is read from the server's history endpoint).
    digests: bool = True


@dataclass
class RegressionConfig:
    #: A cell is flagged as regressed when it is worse than the baseline by more than rel x |baseline
    #: value| ...
    rel: float = 0.10
    #: ... or, per metric, by more than this absolute amount (it replaces rel x |baseline|, which is 0 when
    #: the baseline is 0), e.g. regression.abs.band_score=0.05.
    abs: dict[str, float] = field(default_factory=lambda: dict(REGRESSION_ABS))


@dataclass
class RankingConfig:
    #: tiered: verdict severity, then fidelity (ref_detail_deficit_db, pixel/diff_rmse; ties within 2 sigma
    #: of their noise), then the artifact metrics' mean rank | mean_rank: weighted mean of per-metric ranks
    #: | lexicographic: the first metric decides, the next breaks ties.
    method: str = "tiered"
    #: Rows with a flag (regression or limit) rank below every row without one.
    flagged_last: bool = True
    #: The top rows whose reason in words names every ranked metric.
    explain: int = 5
    #: tiered: a checkpoint with a bad verdict never ranks above one without.
    severity_first: bool = True
    #: Analyzers whose verdicts rank (logged trackdiag/<a>/verdict/<code>, else recomputed from the stored
    #: metrics with the analyzer's rules).
    verdict_analyzers: list[str] = field(default_factory=lambda: ["tiling", "pixel"])
    #: "Since when": change points of every series (metrics, verdicts, loss).
    since: bool = True


@dataclass
class SamplesConfig:
    #: One folder of generated images per checkpoint: [out/ckpt_1000, ...] (the folder name is the
    #: checkpoint name; a number in it is its step), or entries {name:..,dir:..,masks:..,step:..,run:..}.
    sets: list[Any] = field(default_factory=list)
    #: Wall masks: a folder with one mask per image (same file stem) or one mask file.
    masks: Optional[str] = None
    #: Reference tile image (its fundamental is used as f*).
    ref: Optional[str] = None
    #: The run name of the sample sets (one line in the trend plots).
    run_name: str = "samples"
    #: Per checkpoint, of the per-image values: mean | median | worst (the mean of the worst_k images, worst
    #: by the metric's goal). One column each.
    aggregates: list[str] = field(default_factory=lambda: ["mean", "median", "worst"])
    #: How many images the 'worst' aggregate averages.
    worst_k: int = 3
    #: The aggregate the ranking uses (the others are shown and judged, not ranked).
    rank_by: str = "mean"
    #: Images per analyzer call.
    batch_size: int = 8
    #: Analyzers run on the images (their Params dataclasses, conf/analyzer/<name>.yaml), e.g. [tiling].
    analyzers: list[str] = field(default_factory=lambda: ["tiling"])
    #: Per analyzer parameter overrides, e.g. +samples.params.tiling.figures_every=0.
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class OutputConfig:
    #: Report folder: comparison.csv, comparison.json, comparison.md, index.html (self-contained),
    #: comparison.pdf, plots/trend_<metric>.png.
    dir: str = "comparison_report"
    #: Subset of [csv, json, md, html, pdf].
    formats: list[str] = field(default_factory=lambda: ["csv", "json", "md", "html", "pdf"])
    #: Trend plots (each metric vs step, one line per run).
    plots: bool = True
    #: Rows of the table in the PDF (best first).
    pdf_rows: int = 80


@dataclass
class PublishConfig:
    #: Trackers to write the comparison to: auto (the tracker the runs came from; MLflow in samples mode) |
    #: none | a name | a list [mlflow,local]. MLflow gets a run with the table, the plots and the report as
    #: artifacts; W&B gets a wandb.Table.
    to: Any = "auto"
    #: Name of the comparison run.
    run_name: str = "comparison"
    #: Experiment/project of the comparison run (default: the W&B project of the runs for backend=wandb,
    #: else "<mlflow.experiment>-comparisons", so it never mixes with training runs). A rerun replaces the
    #: earlier run of that name.
    experiment: Optional[str] = None
    #: Also log each trend plot as an image (MLflow image grid, W&B media).
    images: bool = True
    #: Settings of the tracker backends (their Params dataclasses), as trackdiag overrides, e.g.
    #: ["backend.wandb.mode=offline","backend.wandb.entity=me"].
    overrides: list[str] = field(default_factory=list)


@dataclass
class CompareConfig:
    #: Tracker to read runs from: mlflow | wandb | tensorboard | local.
    backend: str = "mlflow"
    #: mlflow: run ids or run names; wandb: offline run folders (wandb/offline-run-*); tensorboard: log
    #: folders; local: trackdiag local run folders. Globs work for folders. Empty with mlflow: every run of
    #: mlflow.experiment matching mlflow.filter (earlier comparison runs are skipped).
    runs: list[str] = field(default_factory=list)
    mlflow: MlflowSourceConfig = field(default_factory=MlflowSourceConfig)
    #: all (every step the ranked metrics were logged at: each is a checkpoint) | last (each run's last
    #: one) | a list [1000,2000].
    steps: Any = "all"
    #: A checkpoint takes the value at the nearest logged step within this many steps (ties: the earlier
    #: step); farther means "no value". 50 = half the default analyzer schedule (every 100 steps).
    tolerance: int = 50
    #: The table's columns: short names (band_score), analyzer/key (tiling/band_score) or full keys
    #: (trackdiag/tiling/band_score); each must have been logged. Empty: the key_metrics every run logged.
    metrics: list[str] = field(default_factory=list)
    #: The columns when metrics is empty, in order (those some run lacks are noted and left out); when the
    #: runs logged none of them: every trackdiag/* metric they all logged.
    key_metrics: list[str] = field(default_factory=lambda: list(KEY_METRICS))
    #: Per metric: min (lower is better) | max | none (shown, never judged). The defaults cover the tiling
    #: metrics (the analyzers' metric specs cover the rest); e.g. goals.my_score=max.
    goals: dict[str, str] = field(default_factory=lambda: dict(GOALS))
    #: Goal of metrics not in goals (min | max | none); reported as assumed.
    default_goal: str = "min"
    #: Per metric ranking weight (default 1; 0 = shown and judged but not ranked).
    weights: dict[str, float] = field(default_factory=dict)
    #: Per metric hard bound: a value on the wrong side is flagged, e.g. limits.band_score=0.4.
    limits: dict[str, float] = field(default_factory=dict)
    #: Row the deltas are taken against: first (the first row) | <run> (its last checkpoint) | <run>@<step>
    #: | <run>@first | <run>@last | <checkpoint name> (samples).
    baseline: str = "first"
    regression: RegressionConfig = field(default_factory=RegressionConfig)
    ranking: RankingConfig = field(default_factory=RankingConfig)
    samples: SamplesConfig = field(default_factory=SamplesConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    publish: PublishConfig = field(default_factory=PublishConfig)
    #: error: a missing run, a metric a run never logged or a checkpoint with no value stops with a message
    #: | skip: note it in the report and go on.
    on_missing: str = "error"


def _register() -> None:
    from hydra.core.config_store import ConfigStore

    from .help import register_help

    ConfigStore.instance().store(name=SCHEMA_NAME, node=CompareConfig)
    register_help()


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
    """The metric names of the shipped per-metric maps (``weights``, ``limits``, ``regression.abs``: the
    defaults of :class:`CompareConfig`): a run need not log them, unlike the names a user adds."""
    shipped = CompareConfig()
    return {"weights": tuple(shipped.weights), "limits": tuple(shipped.limits),
            "regression.abs": tuple(shipped.regression.abs)}


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
