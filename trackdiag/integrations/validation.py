"""Log a step's validation images: the diagnosis, the images themselves and the step's fingerprint.

One home for what ``trackdiag watch``, the diffusers helper and the OneTrainer callback all do with a group
of validation images of one training step.

Usage, in a diffusers example script::

    images = log_validation(pipeline, args, accelerator, epoch)
    log_validation_images(images, step=global_step)
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any, Optional

import numpy as np
import torch

from ..analyzers.fingerprint import FingerprintTracker
from ..errors import InputValueError, ShapeError, TrackdiagError

__all__ = ["to_image_tensor", "log_validation_images", "watch_pictures", "diffusers_log_validation"]

log = logging.getLogger("trackdiag")
_TRACKERS: dict[int, FingerprintTracker] = {}


def to_image_tensor(image: Any) -> torch.Tensor:
    """A PIL image, an ``H×W×C`` array (uint8 or float in [0, 1]) or a ``C×H×W`` tensor → ``3×H×W``
    in [0, 1]."""
    if hasattr(image, "convert") and hasattr(image, "size"):  # PIL
        image = np.asarray(image.convert("RGB"))
    if isinstance(image, np.ndarray):
        arr = image
        if arr.ndim == 2:
            arr = arr[..., None]
        if arr.ndim != 3:
            raise ShapeError(f"a validation image must be H×W×C; got shape {arr.shape}")
        t = torch.from_numpy(np.array(arr, copy=True)).permute(2, 0, 1)
    elif isinstance(image, torch.Tensor):
        t = image.detach().cpu()
        if t.ndim == 4 and t.shape[0] == 1:
            t = t[0]
        if t.ndim != 3:
            raise ShapeError(f"a validation image tensor must be C×H×W; got {tuple(t.shape)}")
        if t.shape[0] not in (1, 3, 4) and t.shape[-1] in (1, 3, 4):
            t = t.permute(2, 0, 1)
    else:
        raise InputValueError(
            f"unsupported validation image type {type(image).__name__}; pass PIL images, "
            "numpy arrays or tensors"
        )
    t = t.float() / 255.0 if not t.is_floating_point() else t.float()
    if t.shape[0] == 1:
        t = t.expand(3, -1, -1)
    return t[:3].clamp(0, 1).contiguous()


def log_validation_images(
    images: Sequence[Any],
    step: int,
    *,
    session: Any = None,
    keys: Optional[Sequence[str]] = None,
    mask: Optional[torch.Tensor] = None,
    ref: Optional[torch.Tensor] = None,
    fingerprint: Optional[FingerprintTracker] = None,
    rows: Optional[Sequence[dict[str, Any]]] = None,
    flush: bool = False,
    diagnose: bool = True,
) -> int:
    """Log ``images`` of training ``step`` (the global step, not the epoch) into ``session``.

    Per same-size group one ``Session.log`` (the analyzers' diagnosis with ``mask`` / ``ref``); then the
    images
    under ``trackdiag/watch/<key>``, ``trackdiag/watch/logged/<key>`` = 1, ``trackdiag/watch/images`` (count),
    a ``trackdiag/watch/files`` table (``rows`` or ``step, key``) and the step's fingerprint
    (``fingerprint``: default one tracker per session, which keeps "since when"). ``diagnose=False`` leaves
    out the analyzers' diagnosis (``trackdiag watch`` after a restart, when the run already holds it). Returns
    the images logged.
    """
    from .. import get_session
    from ..core.values import table_rows
    from ..core.worker import Record

    s = session if session is not None else get_session()
    tensors = [to_image_tensor(im) for im in images]
    if not tensors:
        return 0
    names = [str(k) for k in keys] if keys is not None else [f"{i:02d}" for i in range(len(tensors))]
    if len(names) != len(tensors):
        raise ShapeError(f"keys must have one entry per image ({len(tensors)}); got {len(names)}")
    s.allow_earlier_step(int(step))  # a late image of an earlier step: its own step is still the right one
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, t in enumerate(tensors):
        by_shape.setdefault(tuple(t.shape), []).append(i)
    biggest: Optional[torch.Tensor] = None
    for shape, idx in by_shape.items():
        batch = torch.stack([tensors[i] for i in idx])
        m = mask if mask is not None and tuple(mask.shape[-2:]) == shape[-2:] else None
        if mask is not None and m is None:
            log.warning(
                "trackdiag: the mask (%s) does not match validation images of size %s; analysing the "
                "whole image",
                tuple(mask.shape[-2:]),
                shape[-2:],
            )
        if diagnose:
            s.log(int(step), batch, m, ref=ref, sample_ids=[names[i] for i in idx])
        if biggest is None or batch.shape[0] > biggest.shape[0]:
            biggest = batch
    metrics: dict[str, float] = {"trackdiag/watch/images": float(len(tensors))}
    for name in names:
        metrics[f"trackdiag/watch/logged/{name}"] = 1.0
    pictures = watch_pictures(names, tensors)
    tables = {
        "trackdiag/watch/files": table_rows(
            list(rows) if rows is not None else [{"step": int(step), "key": n} for n in names]
        )
    }
    tracker = fingerprint if fingerprint is not None else _TRACKERS.setdefault(id(s), FingerprintTracker())
    if biggest is not None:
        try:
            fp_metrics, verdicts = tracker.update(int(step), biggest)
            metrics.update(fp_metrics)
            if verdicts:
                tables["trackdiag/fingerprint/verdicts"] = table_rows(
                    [
                        {
                            "step": int(step),
                            "code": v.code,
                            "severity": v.severity,
                            "title": v.title,
                            "evidence": json.dumps(dict(v.evidence)),
                        }
                        for v in verdicts
                    ]
                )
        except TrackdiagError as exc:
            log.warning("trackdiag: fingerprint of step %d skipped: %s", step, exc)
    if getattr(s, "rank", 0) == 0:
        s.worker.submit(Record(step=int(step), metrics=metrics, tables=tables, figures=[lambda: pictures]))
    if flush:
        s.flush(120.0)
    return len(tensors)


def watch_pictures(names: Sequence[str], tensors: Sequence[torch.Tensor]) -> dict[str, np.ndarray]:
    """The figures of validation images: ``trackdiag/watch/<name>`` → ``H×W×3`` uint8 (tensors ``3×H×W``
    in [0, 1])."""
    return {f"trackdiag/watch/{name}": (t.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
            for name, t in zip(names, tensors, strict=True)}


def diffusers_log_validation(
    images: Sequence[Any],
    *,
    global_step: int,
    session: Any = None,
    prompts: Optional[Sequence[str]] = None,
    mask: Optional[torch.Tensor] = None,
    ref: Optional[torch.Tensor] = None,
) -> int:
    """For the diffusers example scripts: pass ``log_validation``'s return value (a list of PIL images)
    and the
    *global step* (their trackers get the epoch). With ``prompts`` the keys name the prompt of each image.

    Never raises into the training loop: a problem is logged as a warning and 0 is returned.
    """
    keys = None
    if prompts is not None and len(prompts) and len(images) % len(prompts) == 0:
        per = len(images) // len(prompts)
        keys = [f"p{i // per:02d}_{i % per:02d}" for i in range(len(images))]
    try:
        return log_validation_images(images, int(global_step), session=session, keys=keys, mask=mask, ref=ref)
    except Exception as exc:  # a diagnostic never kills the run
        log.warning("trackdiag: validation images of step %s not logged: %s", global_step, exc)
        return 0
