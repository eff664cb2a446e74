"""The analyzer contract.

An analyzer is split into two phases so that the training thread pays only for tensor math:

1. :meth:`Analyzer.compute` runs on the training thread, under ``torch.no_grad()``, on the tensors' own
   device. It returns a flat ``dict[str, Tensor]`` of *small* tensors: per-sample values of shape ``(B,)``,
   scalars of shape ``()``, and small maps for figures under keys that start with ``"map/"`` (for example
   ``"map/local_period_px"``, an ``h×w`` map of sample 0). Keys without that prefix and of shape ``(B,)`` are
   per-sample values: under ``torch.distributed`` they are concatenated over ranks; ``"map/"`` arrays are
   taken from rank 0.
   The session moves all of them to the CPU in **one** transfer.
2. :meth:`Analyzer.summarize` runs on the CPU with numpy arrays. It reduces per-sample values to batch
   metrics, updates streaming state (loss spikes, latent drift) and returns a :class:`Result`.
   Under ``torch.distributed`` the host arrays of every rank are concatenated along axis 0 before it
   is called, on rank 0 only.
3. :meth:`Analyzer.render` runs on the background worker and turns a Result's maps into figures
   (RGB ``uint8`` arrays). It must not touch analyzer state.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Optional, cast

import numpy as np
import torch
from typing_extensions import TypeVar

from ..core.schedule import Schedule
from ..core.values import finite_mean

__all__ = ["AnalyzerParams", "StepInputs", "Result", "Analyzer", "reduce_per_sample", "is_map_key",
           "MAP_PREFIX"]

#: Prefix of the keys of figure maps in :meth:`Analyzer.compute`'s output.
MAP_PREFIX = "map/"


def is_map_key(key: str) -> bool:
    """Whether a compute() output key names a figure map (never reduced, taken from rank 0)."""
    return key.startswith(MAP_PREFIX)


@dataclass
class AnalyzerParams:
    """Base of every analyzer's typed parameters (a Hydra structured-config schema)."""

    schedule: Schedule = field(default_factory=Schedule)
    #: Render figures at most every n-th time the analyzer runs (figures cost worker time and storage).
    figures_every: int = 1


@dataclass
class StepInputs:
    """Everything ``trackdiag.log`` received at one step, validated and normalised.

    Shapes: ``pred`` B×C×H×W float; ``mask`` B×1×H×W bool or None; ``ref`` 1×C×h×w or None;
    ``target`` B×C×H×W or None (the training target / source image for pixel diagnostics);
    ``latents`` name → B×C×h×w; ``loss`` ``()`` or ``(B,)``; ``timesteps`` ``(B,)``;
    ``sample_ids`` length-B sequence of str.
    """

    step: int
    pred: Optional[torch.Tensor] = None
    mask: Optional[torch.Tensor] = None
    ref: Optional[torch.Tensor] = None
    target: Optional[torch.Tensor] = None
    latents: Mapping[str, torch.Tensor] = field(default_factory=dict)
    loss: Optional[torch.Tensor] = None
    timesteps: Optional[torch.Tensor] = None
    sample_ids: Optional[Sequence[str]] = None


@dataclass
class Result:
    """What one analyzer produced at one step, on the CPU.

    ``metrics`` are scalar floats (NaN allowed: it means "could not be measured", never dropped);
    ``texts`` are string-valued diagnostics (e.g. ``band_axis_hint``); ``maps`` are arrays for figures;
    ``tables`` are lists of row dicts (e.g. the loss events table).
    """

    metrics: dict[str, float] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    maps: dict[str, np.ndarray] = field(default_factory=dict)
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def reduce_per_sample(host: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Batch metrics from per-sample values: the mean over the finite entries (NaN when none is finite).

    Arrays of shape ``()`` or ``(B,)`` are reduced; ``"map/"`` keys and arrays of higher rank are skipped.
    """
    out: dict[str, float] = {}
    for key, value in host.items():
        if is_map_key(key) or np.ndim(value) > 1:
            continue
        out[key] = finite_mean(value)
    return out


#: An analyzer's own parameter type. It defaults to :class:`AnalyzerParams`, so a subclass written as plain
#: ``class X(Analyzer)`` still type-checks (its ``self.params`` is then an ``AnalyzerParams``).
P = TypeVar("P", bound=AnalyzerParams, default=AnalyzerParams)


class Analyzer(ABC, Generic[P]):
    """Base class of every analyzer. Subclasses set ``name``, ``Params`` and ``requires``.

    Subclass it as ``class LossAnalyzer(Analyzer[LossParams])`` so that ``self.params`` has the
    analyzer's own parameter type for type checkers.
    """

    #: Key segment used in trackers: metrics become ``trackdiag/<name>/<key>``.
    name: ClassVar[str]
    #: The typed parameter schema (a dataclass deriving from :class:`AnalyzerParams`).
    Params: ClassVar[type[AnalyzerParams]] = AnalyzerParams
    #: Fields of :class:`StepInputs` that must be present for the analyzer to run (e.g. ``("pred",)``).
    requires: ClassVar[tuple[str, ...]] = ("pred",)

    def __init__(self, params: Optional[P] = None) -> None:
        # ``Params`` is a ClassVar, which cannot name the type variable; the subclass pairs them.
        self.params: P = params if params is not None else cast(P, self.Params())
        self._runs = 0

    # -- scheduling ---------------------------------------------------------------------------------
    def due(self, inputs: StepInputs) -> bool:
        """Whether the analyzer runs now: its schedule says so and its inputs are present."""
        if not self.params.schedule.due(inputs.step):
            return False
        return all(_present(getattr(inputs, f)) for f in self.requires)

    def want_figures(self) -> bool:
        """Called once per run by the session; True on every ``figures_every``-th run."""
        self._runs += 1
        return (self._runs - 1) % max(1, self.params.figures_every) == 0

    # -- the three phases ---------------------------------------------------------------------------
    @abstractmethod
    def compute(self, inputs: StepInputs) -> dict[str, torch.Tensor]:
        """Tensor math on the inputs' device (no grad). Returns small tensors keyed by name."""

    def summarize(self, step: int, host: Mapping[str, np.ndarray], *,
                  sample_ids: Optional[Sequence[str]] = None) -> Result:
        """Reduce host arrays to a :class:`Result`. Default: per-sample means, higher-rank arrays as maps.

        ``sample_ids`` are the step's sample ids (gathered over ranks like the arrays), when given.
        """
        maps = {k.removeprefix(MAP_PREFIX): np.asarray(v) for k, v in host.items()
                if is_map_key(k) or np.ndim(v) > 1}
        return Result(metrics=reduce_per_sample(host), maps=maps)

    def render(self, result: Result) -> dict[str, np.ndarray]:
        """Figures for the trackers: name → ``H×W×3`` uint8 image. Runs on the worker. Default: none."""
        return {}

    # -- streaming state (resume from checkpoint) -----------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"runs": self._runs}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._runs = int(state.get("runs", 0))


def _present(value: object) -> bool:
    if value is None:
        return False
    if isinstance(value, Mapping):
        return len(value) > 0
    return True
