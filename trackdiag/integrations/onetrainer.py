"""OneTrainer: diagnose the samples it makes during training, through its sample callback.

OneTrainer hands each sample to ``TrainCallbacks.on_sample_default(sampler_output)`` (a
``ModelSamplerOutput`` with ``file_type`` and ``data``, a PIL image for images) but not the step, so you pass
a function that returns the current global step::

    from trackdiag.integrations.onetrainer import OneTrainerSampleLogger
    sampler = OneTrainerSampleLogger(lambda: trainer.model.train_progress.global_step)
    callbacks.set_on_sample_default(sampler)
    ...
    sampler.flush()        # at the end: logs the last step's group

Samples of one step are collected and logged together (the fingerprint averages them) when the step
changes or at :meth:`flush`. Videos and audio are ignored. Nothing ever raises into the trainer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Optional

import torch

from ..analyzers.fingerprint import FingerprintTracker
from .validation import log_validation_images, to_image_tensor

__all__ = ["OneTrainerSampleLogger"]

log = logging.getLogger("trackdiag")


class OneTrainerSampleLogger:
    """A callable for ``TrainCallbacks.set_on_sample_default``; logs each step's samples once."""

    def __init__(
        self,
        step_fn: Callable[[], int],
        *,
        session: Any = None,
        mask: Optional[torch.Tensor] = None,
        ref: Optional[torch.Tensor] = None,
    ) -> None:
        self.step_fn, self.session, self.mask, self.ref = step_fn, session, mask, ref
        self.fingerprint = FingerprintTracker()
        self._step: Optional[int] = None
        self._images: list[torch.Tensor] = []
        self.logged = 0

    def __call__(self, sampler_output: Any) -> None:
        try:
            kind = getattr(getattr(sampler_output, "file_type", None), "name", "IMAGE")
            if str(kind).upper() != "IMAGE":
                return
            step = int(self.step_fn())
            if self._step is not None and step != self._step:
                self.flush()
            self._step = step
            self._images.append(to_image_tensor(getattr(sampler_output, "data", sampler_output)))
        except Exception as exc:  # a diagnostic never kills the run
            log.warning("trackdiag: OneTrainer sample not logged: %s", exc)

    def flush(self) -> int:
        """Log the collected samples of the current step; returns how many."""
        if self._step is None or not self._images:
            return 0
        try:
            n = log_validation_images(
                self._images,
                self._step,
                session=self.session,
                mask=self.mask,
                ref=self.ref,
                fingerprint=self.fingerprint,
                keys=[f"{i:02d}" for i in range(len(self._images))],
            )
        except Exception as exc:
            log.warning("trackdiag: OneTrainer samples of step %s not logged: %s", self._step, exc)
            n = 0
        self.logged += n
        self._images = []
        return n
