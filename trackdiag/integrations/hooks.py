"""A hook for trainers that expose the per-sample loss before it is reduced (kohya-style
``post_process_loss``).

Diffusion trainers compute an element-wise loss, average it over C×H×W to one value per sample, weight it
(min-SNR, debiased estimation, …) and only then take the batch mean. kohya-ss ``sd-scripts`` exposes that
moment as a method, ``NetworkTrainer.post_process_loss(self, loss, args, timesteps, noise_scheduler)``,
called with ``loss`` of shape ``(B,)`` and ``timesteps`` of shape ``(B,)``. The per-sample loss together with
its timesteps is exactly what trackdiag's loss analyzer needs: the diffusion loss depends strongly on the
timestep, so spikes and plateaus are judged per timestep bucket.

Three ways to use it (see ``docs/integrations.md``):

* the mixin, for a kohya ``NetworkTrainer`` subclass::

      class WallTrainer(TrackdiagLossMixin, train_network.NetworkTrainer):
          pass

* the decorator, on a method with kohya's signature::

      class WallTrainer(train_network.NetworkTrainer):
          @track_post_process_loss
          def post_process_loss(self, loss, args, timesteps, noise_scheduler):
              return super().post_process_loss(loss, args, timesteps, noise_scheduler)

* the callable, in any loop that has the per-sample loss::

      hook = PerSampleLossHook()
      loss = F.mse_loss(pred, target, reduction="none").mean(dim=(1, 2, 3))   # (B,)
      hook(loss, timesteps, step=global_step)
      loss.mean().backward()

The hook never changes the loss and never breaks the graph: it logs a detached view and returns its input.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import torch

__all__ = ["PerSampleLossHook", "TrackdiagLossMixin", "track_post_process_loss"]

F = TypeVar("F", bound=Callable[..., Any])


class PerSampleLossHook:
    """Send per-sample losses ``(B,)`` and their timesteps ``(B,)`` to a trackdiag session.

    Args:
        session: the :class:`~trackdiag.core.session.Session` to log to; ``None`` (default) uses the current
        one
            (``trackdiag.init()``), looked up at each call, so the hook can be created before ``init``.
        step_fn: returns the trainer's global step at call time. Without it the hook counts its own logged
            calls (0, 1, 2, …), which is the optimizer step when there is no gradient accumulation.
        log_without_grad: also log calls made under ``torch.no_grad()``. Off by default, because trainers
            (kohya's validation included) compute validation losses that way, and validation losses are not
            training losses: mixing them into the spike detector would flag every validation pass.

    Calling the hook returns ``loss`` unchanged, so it can be dropped into an expression.
    """

    def __init__(self, session: Any = None, *, step_fn: Callable[[], int] | None = None,
                 log_without_grad: bool = False) -> None:
        self._session = session
        self.step_fn = step_fn
        self.log_without_grad = log_without_grad
        #: Number of calls that were logged (the default step counter).
        self.calls = 0

    @property
    def session(self) -> Any:
        if self._session is not None:
            return self._session
        import trackdiag

        return trackdiag.get_session()

    def __call__(self, loss: torch.Tensor, timesteps: torch.Tensor | None = None, *,
                 step: int | None = None, sample_ids: Sequence[Any] | None = None) -> torch.Tensor:
        """Log ``loss`` (``(B,)`` or a scalar) with ``timesteps`` (``(B,)``) at ``step``; return ``loss``.

        ``step`` wins over ``step_fn``, which wins over the hook's own call counter.
        """
        if not self.log_without_grad and not torch.is_grad_enabled():
            return loss
        if step is None:
            step = int(self.step_fn()) if self.step_fn is not None else self.calls
        self.calls += 1
        self.session.log(step, loss=loss.detach(),
                         timesteps=None if timesteps is None else timesteps.detach(),
                         sample_ids=sample_ids)
        return loss


def track_post_process_loss(method: F | None = None, *, hook_attr: str = "trackdiag_loss_hook",
                            weighted: bool = False) -> Any:
    """Decorate a kohya-style ``post_process_loss(self, loss, args, timesteps, noise_scheduler)`` method.

    The trainer's per-sample loss is logged with its timesteps through ``self.<hook_attr>`` (a
    :class:`PerSampleLossHook`, created on first use when the trainer has none).

    Args:
        weighted: log the loss the method *returns* (after min-SNR and similar weights) instead of the loss
            it *receives*. Default ``False``: the raw per-sample loss, since trackdiag already separates the
            timestep dependence by buckets and the weights would hide spikes at weighted-down timesteps.
    """

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(self: Any, loss: torch.Tensor, args: Any = None, timesteps: Any = None,
                    noise_scheduler: Any = None, *rest: Any, **kwargs: Any) -> torch.Tensor:
            raw = loss
            out = fn(self, loss, args, timesteps, noise_scheduler, *rest, **kwargs)
            hook = getattr(self, hook_attr, None)
            if hook is None:
                hook = PerSampleLossHook()
                setattr(self, hook_attr, hook)
            hook(out if weighted else raw, timesteps)
            return out

        return wrapper  # type: ignore[return-value]

    return decorate(method) if method is not None else decorate


class TrackdiagLossMixin:
    """Mixin for a kohya ``NetworkTrainer``: logs every training step's per-sample loss and timesteps.

    Put it first in the bases so that its ``post_process_loss`` wraps the trainer's own::

        class WallTrainer(TrackdiagLossMixin, train_network.NetworkTrainer):
            pass

    Set ``trackdiag_loss_hook`` (a :class:`PerSampleLossHook`) on the instance to choose the session or the
    step function; by default the current session and the hook's own counter are used. Set the class
    attribute ``trackdiag_log_weighted = True`` to log the loss after the trainer's weighting.
    """

    trackdiag_loss_hook: PerSampleLossHook | None = None
    trackdiag_log_weighted: bool = False

    def post_process_loss(self, loss: torch.Tensor, args: Any, timesteps: Any, noise_scheduler: Any
                          ) -> torch.Tensor:
        parent = getattr(super(), "post_process_loss", None)
        out = parent(loss, args, timesteps, noise_scheduler) if parent is not None else loss
        if self.trackdiag_loss_hook is None:
            self.trackdiag_loss_hook = PerSampleLossHook()
        self.trackdiag_loss_hook(out if self.trackdiag_log_weighted else loss, timesteps)
        return out
