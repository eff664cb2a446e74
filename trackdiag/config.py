"""Configuration: typed schemas, composition from ``conf/`` with Hydra, and safe construction of components.

Three ways in, one resolved shape (see ``conf/config.yaml``):

* standalone: ``trackdiag.init(overrides=["backend=[mlflow,local]", "analyzer.tiling.schedule.every=50"])``
  composes ``conf/`` with Hydra's compose API (also when a user's ``@hydra.main`` app is running: its global
  state is put aside and restored);
* from a user's Hydra app: ``trackdiag.init(config=cfg.trackdiag)``. The node is merged over our defaults.
  When it has a ``backend`` or ``analyzer`` mapping, its keys *are* the selection; entries without
  ``_target_`` take their defaults from ``conf/<group>/<name>.yaml``;
* from an installed wheel: ``conf/`` ships inside the package as ``trackdiag/conf``.

Components are built without ``hydra.utils.instantiate``: each ``_target_`` is checked (``trackdiag.`` only,
unless ``allow_external_targets`` is true), imported, its parameters validated against the class's
``Params`` dataclass (wrong types and unknown keys are rejected), and the class is called with them.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .errors import ConfigError

__all__ = ["to_dict", "TrackdiagConfig", "RunConfig", "WorkerConfig", "BudgetConfig", "config_dir", "compose",
           "resolve", "build_component", "flatten"]

ALLOWED_PREFIX = "trackdiag."


@dataclass
class RunConfig:
    #: Experiment (MLflow), project (W&B) or parent folder of the run.
    experiment: str = "trackdiag"
    #: Name of the run (None: the tracker's own choice).
    run_name: Optional[str] = None
    #: Tags of the run.
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class WorkerConfig:
    #: Records waiting for the background worker. Scalars are never dropped, whatever the policy.
    queue_size: int = 256
    #: When the queue is full: ``drop_media`` keeps the scalars and drops that step's figures and tables
    #: (counted and reported); ``block`` waits up to ``block_timeout_s`` for room, then drops media.
    when_full: str = "drop_media"
    #: Longest wait for room in the queue with ``when_full: block``.
    block_timeout_s: float = 5.0
    #: Longest wait for the queue to drain in ``finish()`` / at interpreter exit.
    flush_timeout_s: float = 120.0
    #: The write-ahead spool is committed (fsync) after at most this many records ...
    spool_batch: int = 64
    #: ... or this many milliseconds after the first uncommitted record, whichever comes first.
    spool_batch_ms: float = 200.0
    #: Where figures are drawn: "process" (a render process; matplotlib never holds the training thread's
    #: GIL) or "thread" (the worker thread).
    render: str = "process"
    #: finish() draws the figures still waiting for at most this fraction of the session's age ...
    figure_wait_frac: float = 0.05
    #: ... and at least this many seconds; the inputs of figures still undrawn then stay in the spool, and
    #: ``python -m trackdiag.sync`` draws and delivers them.
    figure_wait_min_s: float = 2.0
    #: Once the scalars are delivered, finish() uploads figures already drawn for at most
    #: ``figure_wait_frac`` of the session's age and at least this many seconds; the PNG files of the rest
    #: stay in the spool and ``python -m trackdiag.sync`` uploads them. Tables and artifacts are not bound.
    upload_wait_min_s: float = 10.0


@dataclass
class BudgetConfig:
    """Per-call compute limits of ``log()`` (see :mod:`trackdiag.core.budget` and
    :mod:`trackdiag.core.threads`)."""

    #: Most pixels (millions, over the batch) one ``log()`` call analyses: larger images are analysed on
    #: native-resolution composites (edge strips, centre, mask contour). 0 disables the budget.
    max_megapixels: float = 1.0
    #: Torch intra-op threads around trackdiag's own analyzer calls on the CPU, restored afterwards
    #: (0 = leave the user's setting).
    intra_op_threads: int = 1


@dataclass
class TrackdiagConfig:
    """The whole configuration: these settings, then one entry per selected backend and analyzer (their
    defaults are the components' ``Params`` dataclasses, see :mod:`trackdiag.confstore`)."""

    #: "warn": a diagnostic never raises into the training loop; problems are warned once per kind and
    #: counted. "raise": raise (for tests and debugging).
    on_error: str = "warn"
    #: Steps at or below the last step a continued run (``run_id=``, or the active MLflow run) already
    #: holds: "skip" (warned once, counted in finish(); MLflow cannot replace a point) or "log" anyway.
    on_resume: str = "skip"
    #: Where local run folders, spools and reports go.
    out_dir: str = "trackdiag_runs"
    #: Only ``trackdiag.*`` classes may be named by ``_target_`` unless this is true.
    allow_external_targets: bool = False
    run: RunConfig = field(default_factory=RunConfig)
    worker: WorkerConfig = field(default_factory=WorkerConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    backend: dict[str, Any] = field(default_factory=dict)
    analyzer: dict[str, Any] = field(default_factory=dict)


def config_dir() -> Path:
    """The folder holding ``config.yaml``: ``trackdiag/conf`` in a wheel, ``<repo>/conf`` in a checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "conf", here.parent / "conf"):
        if (candidate / "config.yaml").is_file():
            return candidate
    raise ConfigError(f"trackdiag's conf/ folder was not found next to {here}; reinstall trackdiag.")


def compose(overrides: Iterable[str] = (), *, directory: Optional[Path] = None, job_name: str = "trackdiag",
            what: str = "trackdiag") -> Any:
    """Compose ``config.yaml`` of ``directory`` (default ``conf/``) with Hydra overrides.

    Safe inside a running ``@hydra.main`` app: its global Hydra state is put aside and restored.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    if directory is None:
        from .confstore import register

        register()
    gh = GlobalHydra.instance()
    saved = gh.hydra if gh.is_initialized() else None
    if saved is not None:
        gh.clear()
    try:
        with initialize_config_dir(config_dir=str(directory or config_dir()), version_base=None,
                                   job_name=job_name):
            return hydra_compose(config_name="config", overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(f"invalid {what} override or config: {exc}") from None
    finally:
        if saved is not None:
            GlobalHydra.instance().clear()
            GlobalHydra.instance().initialize(saved)


def _group_default(group: str, name: str) -> Any:
    from .confstore import group_node

    return group_node(group, name)


def _merge_selection(base: Any, user: Any, group: str) -> Any:
    from omegaconf import OmegaConf

    out = {}
    for name, node in (user or {}).items():
        node = OmegaConf.create({} if node is None else node)
        default = base.get(name) if name in base else (
            None if "_target_" in node else _group_default(group, str(name)))
        out[str(name)] = OmegaConf.merge(default, node) if default is not None else node
    return OmegaConf.create(out)


def resolve(config: Any = None, overrides: Iterable[str] = (), shortcuts: Optional[Mapping[str, Any]] = None
            ) -> Any:
    """Return the validated resolved configuration (a DictConfig following :class:`TrackdiagConfig`).

    ``config`` is a user's node (DictConfig or mapping); ``overrides`` are Hydra override strings;
    ``shortcuts`` are the keyword options of ``trackdiag.init`` (``backend``, ``tracking_uri`` ...).
    """
    from omegaconf import DictConfig, OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    shortcuts = dict(shortcuts or {})
    hydra_overrides = list(overrides)
    backend = shortcuts.pop("backend", None)
    if isinstance(backend, str):
        backend = [backend]
    if backend is not None and config is None:
        hydra_overrides.insert(0, f"backend=[{','.join(backend)}]")
    cfg = compose(hydra_overrides)
    OmegaConf.set_struct(cfg, False)
    for group in ("backend", "analyzer"):
        if cfg.get(group) is None:
            cfg[group] = {}
    try:
        if config is not None:
            user = to_dict(config if isinstance(config, DictConfig) else OmegaConf.create(dict(config)))
            for group in ("backend", "analyzer"):
                if group in user:
                    cfg[group] = _merge_selection(cfg[group], user.pop(group), group)
            cfg = OmegaConf.merge(cfg, user)
            if backend is not None:
                cfg.backend = _merge_selection(cfg.backend, {b: cfg.backend.get(b, {}) for b in backend},
                                               "backend")
        _apply_shortcuts(cfg, shortcuts)
        schema = OmegaConf.structured(TrackdiagConfig)
        merged = OmegaConf.merge(schema, cfg)
    except OmegaConfBaseException as exc:
        raise ConfigError(f"invalid trackdiag configuration: {exc}") from None
    if merged.on_error not in ("warn", "raise"):
        raise ConfigError(f"on_error must be 'warn' or 'raise'; got {merged.on_error!r}.")
    if merged.worker.render not in ("process", "thread"):
        raise ConfigError(f"worker.render must be 'process' or 'thread'; got {merged.worker.render!r}.")
    if merged.on_resume not in ("skip", "log"):
        raise ConfigError(f"on_resume must be 'skip' or 'log'; got {merged.on_resume!r}.")
    if merged.worker.when_full not in ("drop_media", "block"):
        raise ConfigError("worker.when_full must be 'drop_media' or 'block'; got "
                          f"{merged.worker.when_full!r}.")
    return merged


def _apply_shortcuts(cfg: Any, shortcuts: Mapping[str, Any]) -> None:
    from omegaconf import OmegaConf

    simple = {"experiment": "run.experiment", "run_name": "run.run_name", "out_dir": "out_dir",
              "on_error": "on_error", "on_resume": "on_resume",
              "allow_external_targets": "allow_external_targets"}
    for key, value in shortcuts.items():
        if value is None:
            continue
        if key in simple:
            OmegaConf.update(cfg, simple[key], value, merge=False)
        elif key == "run_key":  # only names the MLflow run this session may create; nothing to do without it
            if "mlflow" in cfg.backend:
                OmegaConf.update(cfg, "backend.mlflow.run_key", value, merge=False)
        elif key in ("tracking_uri", "run_id"):
            if "mlflow" not in cfg.backend:
                raise ConfigError(f"{key}= applies to the mlflow backend, which is not selected.")
            OmegaConf.update(cfg, f"backend.mlflow.{key}", value, merge=False)
        else:
            raise ConfigError(f"unknown option {key}=; use overrides=[...] for anything else.")


def build_component(node: Any, *, allow_external: bool, what: str, extra: Optional[Mapping[str, Any]] = None
                    ) -> Any:
    """Construct the object described by ``node`` (a DictConfig with ``_target_``) after validation.

    The class must have a ``Params`` dataclass; ``node`` minus ``_target_`` is validated against it.
    ``extra`` keyword arguments are passed to the constructor next to the params.
    """
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    target = node.get("_target_")
    if not isinstance(target, str) or not target:
        raise ConfigError(f"{what}: missing _target_.")
    if not target.startswith(ALLOWED_PREFIX) and not allow_external:
        raise ConfigError(f"{what}: _target_ {target!r} is outside trackdiag. Set "
                          "allow_external_targets=true "
                          "to allow classes from other packages.")
    module_name, _, attr = target.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{what}: cannot import _target_ {target!r} ({exc}).") from None
    schema = getattr(cls, "Params", None)
    if schema is None:
        raise ConfigError(f"{what}: {target} has no Params dataclass, so its parameters cannot be validated.")
    values = {k: v for k, v in to_dict(node).items() if k != "_target_"}
    try:
        params = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), values))
    except OmegaConfBaseException as exc:
        raise ConfigError(f"{what}: invalid parameters for {target}: {exc}") from None
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{what}: invalid parameters for {target}: {exc}") from None
    return cls(params, **dict(extra or {}))


def to_dict(node: Any) -> dict[str, Any]:
    """A config node (a DictConfig or a mapping) as a plain, resolved ``dict``; a typed :class:`ConfigError`
    when the node is not a mapping (a list or a scalar where a section was expected)."""
    from omegaconf import DictConfig, OmegaConf

    data = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node
    if not isinstance(data, Mapping):
        raise ConfigError(f"expected a mapping of options, got {type(data).__name__}.")
    return {str(k): v for k, v in data.items()}


def flatten(node: Any, prefix: str = "") -> dict[str, str]:
    """Flatten a nested config into ``{"a.b.c": "value"}`` strings (for tracker params)."""
    data = node if isinstance(node, Mapping) else to_dict(node)
    out: dict[str, str] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, name + "."))
        else:
            out[name] = str(value)
    return out
