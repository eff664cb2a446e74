"""The one source of parameter defaults: each component's ``Params`` dataclass, in Hydra's ConfigStore.

Every configurable component (an analyzer, a backend) declares its parameters, their defaults and their
descriptions once, in its ``Params`` dataclass. :func:`register` stores each as the Hydra config
``trackdiag/<group>/<name>`` (the dataclass's defaults plus the ``_target_`` class), the top-level settings
(:class:`~trackdiag.config.TrackdiagConfig`) as ``trackdiag/settings``, and the files of
``conf/<group>/<name>.yaml`` only select it and override what differs::

    # @package analyzer.tiling
    defaults:
      - /trackdiag/analyzer/tiling@_here_
      - _self_

So a default is never written twice, and ``tests/test_conf_single_source.py`` fails when a YAML file
repeats a default or names a key the dataclass lacks. The values are validated against the same dataclass
when the component is built (:func:`trackdiag.config.build_component`).
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

from .errors import ConfigError

__all__ = ["COMPONENTS", "SCHEMA_ROOT", "component_class", "params_class", "defaults_node", "register",
           "group_node", "schema_entry", "settings_node"]

#: The root group of the registered schemas (``/trackdiag/analyzer/tiling`` ...).
SCHEMA_ROOT = "trackdiag"

#: The shipped components: group → name → class (its ``_target_``).
COMPONENTS: dict[str, dict[str, str]] = {
    "analyzer": {
        "tiling": "trackdiag.analyzers.tiling.TilingAnalyzer",
        "loss": "trackdiag.analyzers.loss.LossAnalyzer",
        "latent": "trackdiag.analyzers.latent.LatentAnalyzer",
        "pixel": "trackdiag.analyzers.pixel.PixelAnalyzer",
    },
    "backend": {
        "local": "trackdiag.backends.local.LocalBackend",
        "mlflow": "trackdiag.backends.mlflow.MlflowBackend",
        "tensorboard": "trackdiag.backends.tensorboard.TensorboardBackend",
        "wandb": "trackdiag.backends.wandb.WandbBackend",
    },
}


def component_class(target: str) -> type:
    """The class named by ``target`` (``package.module.Class``)."""
    module_name, _, attr = target.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot import {target!r} ({exc}).") from None
    if not isinstance(cls, type):
        raise ConfigError(f"{target!r} is not a class.")
    return cls


def params_class(group: str, name: str) -> type:
    """The ``Params`` dataclass of the shipped component ``group/name`` (e.g. ``analyzer/tiling``)."""
    try:
        target = COMPONENTS[group][name]
    except KeyError:
        choices = sorted(COMPONENTS.get(group, {}))
        raise ConfigError(f"no shipped {group} named {name!r}; choose from {choices}.") from None
    schema = getattr(component_class(target), "Params", None)
    if not (isinstance(schema, type) and dataclasses.is_dataclass(schema)):
        raise ConfigError(f"{target} has no Params dataclass.")
    return schema


def defaults_node(group: str, name: str) -> dict[str, Any]:
    """The registered config of ``group/name``: ``_target_`` and every default of its ``Params``."""
    from omegaconf import OmegaConf

    schema = params_class(group, name)
    values = OmegaConf.to_container(OmegaConf.structured(schema), resolve=True)
    assert isinstance(values, dict)
    return {"_target_": COMPONENTS[group][name], **values}


def settings_node() -> dict[str, Any]:
    """The registered top-level settings: every default of :class:`~trackdiag.config.TrackdiagConfig`
    except the ``backend`` and ``analyzer`` selections (those come from the groups)."""
    from omegaconf import OmegaConf

    from .config import TrackdiagConfig

    values = OmegaConf.to_container(OmegaConf.structured(TrackdiagConfig), resolve=True)
    assert isinstance(values, dict)
    return {str(k): v for k, v in values.items() if k not in ("backend", "analyzer")}


_REGISTERED: set[tuple[str, str]] = set()


def register() -> None:
    """Store every shipped component's defaults in Hydra's ConfigStore as ``trackdiag/<group>/<name>``.

    Idempotent; :func:`trackdiag.config.compose` calls it before composing ``conf/``. The node is the
    dataclass's defaults as a plain mapping (types are checked when the component is built, with the
    error message that names the component).
    """
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    if ("", "settings") not in _REGISTERED:
        store.store(group=SCHEMA_ROOT, name="settings", node=settings_node())
        _REGISTERED.add(("", "settings"))
    for group, names in COMPONENTS.items():
        for name in names:
            if (group, name) in _REGISTERED:
                continue
            store.store(group=f"{SCHEMA_ROOT}/{group}", name=name, node=defaults_node(group, name))
            _REGISTERED.add((group, name))


def schema_entry(entry: Any) -> tuple[str, str] | None:
    """``(group, name)`` of a defaults-list entry ``/trackdiag/<group>/<name>[@package]``, else None."""
    text = str(entry).split("@", 1)[0].strip().lstrip("/")
    parts = text.split("/")
    if len(parts) == 3 and parts[0] == SCHEMA_ROOT and parts[2] in COMPONENTS.get(parts[1], {}):
        return parts[1], parts[2]
    return None


def group_node(group: str, name: str) -> Any:
    """``conf/<group>/<name>.yaml`` resolved without composing: its registered defaults (when its
    defaults list selects them) with the file's own keys merged over them."""
    from omegaconf import DictConfig, OmegaConf

    from .config import config_dir

    path = config_dir() / group / f"{name}.yaml"
    if not path.is_file():
        choices = sorted(p.stem for p in (config_dir() / group).glob("*.yaml"))
        raise ConfigError(f"unknown {group} {name!r}; choose from {choices} or give a _target_.")
    raw = OmegaConf.load(path)
    if not isinstance(raw, DictConfig):
        raise ConfigError(f"{path} must be a mapping.")
    selected = raw.pop("defaults", None) or []
    bases = [defaults_node(*found) for found in map(schema_entry, selected) if found is not None]
    return OmegaConf.merge(*bases, raw) if bases else raw
