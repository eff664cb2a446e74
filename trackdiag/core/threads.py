"""Torch's intra-op thread count around trackdiag's own analyzer calls, restored afterwards.

The training loop's setting is never changed for training: :func:`intra_op_threads` sets the count only for
the duration of a ``with`` block on the calling thread and puts the user's value back on exit, also when the
block raises. trackdiag's per-call tensors are small; on a machine whose cores are busy with training (or
with the worker), more intra-op threads mostly add synchronisation (``benchmarks/bench_step.py`` measures
the choice; the default is ``budget.intra_op_threads = 1``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Optional

import torch

__all__ = ["intra_op_threads"]


@contextmanager
def intra_op_threads(n: Optional[int], *, device: Optional[torch.device] = None) -> Iterator[int]:
    """Run the block with ``n`` torch intra-op threads on the CPU; yields the count in effect.

    ``n`` None or ``<= 0``, or a non-CPU ``device`` (the analyzers' tensors live there), leaves the setting
    alone. The previous count is restored on exit, whatever happens in the block.
    """
    saved = torch.get_num_threads()
    if n is None or n <= 0 or n == saved or (device is not None and torch.device(device).type != "cpu"):
        yield saved
        return
    torch.set_num_threads(int(n))
    try:
        yield int(n)
    finally:
        torch.set_num_threads(saved)
