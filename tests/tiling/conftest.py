"""Fixtures of the tiling tests: generated wall scenes diagnosed once per test session.

Several truth tests draw from the same generated samples (``sample_specs`` with the same seed and size gives
the same scene for the same cause and index, and every sample includes its clean walls): the scenes are made
once into one session folder and each scene's record (truth, verdicts, summary) is kept, so a clean wall that
three tests score is generated and diagnosed once. Records are shared read-only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pytest


@pytest.fixture(scope="session")
def wall_records(tmp_path_factory) -> Callable[[Iterable[Any]], list[dict[str, Any]]]:
    """``wall_records(specs)``: :func:`trackdiag.testing.walls.evaluate.run` over ``specs``, each spec's
    record computed once per session (keyed by the spec, a frozen dataclass)."""
    from trackdiag.testing.walls.evaluate import run

    folder = tmp_path_factory.mktemp("wall_scenes")
    done: dict[Any, dict[str, Any]] = {}

    def records(specs: Iterable[Any]) -> list[dict[str, Any]]:
        specs = list(specs)
        todo = [s for s in dict.fromkeys(specs) if s not in done]
        for spec, rec in zip(todo, run(todo, cache=folder), strict=True):
            done[spec] = rec
        return [done[s] for s in specs]

    return records
