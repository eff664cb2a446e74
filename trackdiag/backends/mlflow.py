"""MLflow backend: an explicit ``MlflowClient`` and run id, batched metrics, images with their step.

The default store is embedded: ``sqlite:///mlruns.db`` in the working directory, no server. Any tracking
URI works, including an ``mlflow server`` over HTTP. Figures go through ``log_image(key=, step=)`` so the
MLflow UI's image grid and step slider show them; tables go through ``log_table``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..errors import BackendError, MissingDependencyError
from .base import Backend, BackendParams

__all__ = ["MlflowBackend", "MlflowParams"]

#: MLflow's own limits per log_batch call.
_MAX_METRICS = 1000
_MAX_PARAMS = 100
_MAX_PARAM_LEN = 6000


@dataclass
class MlflowParams(BackendParams):
    tracking_uri: str = "sqlite:///mlruns.db"
    #: Attach to this existing run instead of creating one.
    run_id: Optional[str] = None
    #: Attach to ``mlflow.active_run()`` when there is one (the run the user's own code started).
    attach_active: bool = True
    artifact_location: Optional[str] = None
    #: Seconds to wait for an HTTP tracking server per request (MLflow's own retries are turned down to this).
    http_timeout_s: float = 10.0


class MlflowBackend(Backend):
    name = "mlflow"
    Params = MlflowParams
    params: MlflowParams

    def __init__(self, params: Optional[MlflowParams] = None, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        try:
            import mlflow  # noqa: F401
        except ImportError:  # pragma: no cover - mlflow is a core dependency
            raise MissingDependencyError("mlflow", purpose="the mlflow backend") from None
        self.client: Any = None
        self.run_id: Optional[str] = self.params.run_id
        self._owns_run = False

    # -- lifecycle ------------------------------------------------------------------------------------
    def open(self) -> None:
        import os

        import mlflow
        from mlflow import MlflowClient

        uri = self.params.tracking_uri
        if uri.startswith("http"):
            # Bounded requests: a dead server must not hold the worker for minutes.
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(int(max(1, self.params.http_timeout_s))))
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        self.client = MlflowClient(tracking_uri=uri)
        active = mlflow.active_run() if self.params.attach_active else None
        if self.run_id is None and active is not None:
            # The user's own code started a run: write into it, through the store it lives in.
            self.client = MlflowClient(tracking_uri=mlflow.get_tracking_uri())
            self.run_id = active.info.run_id
        if self.run_id is not None:
            self.client.get_run(self.run_id)  # raises when the run does not exist
            self._set_tags()
            return
        exp = self.client.get_experiment_by_name(self.run.experiment)
        exp_id = exp.experiment_id if exp is not None else self.client.create_experiment(
            self.run.experiment, artifact_location=self.params.artifact_location)
        run = self.client.create_run(exp_id, run_name=self.run.run_name, tags=dict(self.run.tags))
        self.run_id = run.info.run_id
        self._owns_run = True
        self._set_tags()

    def _set_tags(self) -> None:
        from mlflow.entities import RunTag

        tags = [RunTag(k, str(v)) for k, v in self.run.tags.items()]
        if tags:
            self.client.log_batch(self.run_id, tags=tags)

    def close(self, status: str = "FINISHED") -> None:
        if self.client is not None and self.run_id is not None and self._owns_run:
            self.client.set_terminated(self.run_id, status=status)
            self._owns_run = False

    # -- data -----------------------------------------------------------------------------------------
    def _require(self) -> Any:
        if self.client is None or self.run_id is None:
            raise BackendError("mlflow backend is not open")
        return self.client

    def log_metrics(self, metrics: Mapping[str, float], step: int, *, timestamp_ms: int) -> None:
        from mlflow.entities import Metric

        client = self._require()
        items = [Metric(key=k, value=float(v), timestamp=timestamp_ms, step=int(step)) for k, v in metrics.items()]
        for i in range(0, len(items), _MAX_METRICS):
            client.log_batch(self.run_id, metrics=items[i:i + _MAX_METRICS], synchronous=True)

    def log_image(self, key: str, image: np.ndarray, step: int) -> None:
        self._require().log_image(self.run_id, np.ascontiguousarray(image), key=key, step=int(step),
                                  synchronous=True)

    def log_table(self, key: str, rows: Sequence[Mapping[str, Any]], step: int) -> None:
        if not rows:
            return
        columns: dict[str, list[Any]] = {}
        for row in rows:
            for col in row:
                columns.setdefault(col, [])
        for row in rows:
            for col, values in columns.items():
                values.append(row.get(col))
        self._require().log_table(self.run_id, data=columns, artifact_file=f"tables/{key}.json")

    def log_artifacts(self, local_dir: Path, name: str) -> None:
        self._require().log_artifacts(self.run_id, str(local_dir), artifact_path=name)

    def log_params(self, params: Mapping[str, str]) -> None:
        from mlflow.entities import Param

        client = self._require()
        existing = client.get_run(self.run_id).data.params
        items = [Param(k, str(v)[:_MAX_PARAM_LEN]) for k, v in params.items() if k not in existing]
        for i in range(0, len(items), _MAX_PARAMS):
            client.log_batch(self.run_id, params=items[i:i + _MAX_PARAMS], synchronous=True)

    def location(self) -> str:
        uri = self.params.tracking_uri
        hint = f"mlflow ui --backend-store-uri {uri}" if uri.startswith("sqlite") else uri
        return f"mlflow run {self.run_id} ({hint})"

