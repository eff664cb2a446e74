"""Reading a user's config in any of the shapes the notes allow: a dict, a DictConfig or an object."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["as_options"]


def as_options(config: Any) -> dict[str, Any]:
    """A plain ``dict`` of the options in ``config`` (``None``, mapping, DictConfig or attribute object).

    >>> as_options({"diag_interval": 50})
    {'diag_interval': 50}
    >>> class Cfg: diag_interval = 10; spike_sigma = 4.0
    >>> sorted(as_options(Cfg()).items())
    [('diag_interval', 10), ('spike_sigma', 4.0)]
    """
    if config is None:
        return {}
    try:
        from omegaconf import DictConfig, OmegaConf

        if isinstance(config, DictConfig):
            return dict(OmegaConf.to_container(config, resolve=True))  # type: ignore[arg-type]
    except ImportError:  # pragma: no cover - omegaconf is a dependency
        pass
    if isinstance(config, Mapping):
        return dict(config)
    names = [n for n in dir(config) if not n.startswith("_")]
    return {n: getattr(config, n) for n in names if not callable(getattr(config, n))}
