"""Checkpoint comparison (``python -m trackdiag.compare_ckpts``), in small modules with one job each:

* :mod:`.config`: the typed schema and composition of ``conf/compare/config.yaml``;
* :mod:`.data`: metric series per run, values at checkpoints (nearest logged step within a tolerance);
* :mod:`.sources`: readers for MLflow, local, W&B offline and TensorBoard runs; :mod:`.mlflow_bulk`: MLflow
  histories in bulk (one SELECT on a database, bulk requests to a server);
* :mod:`.samples`: samples mode (analyzers on one image folder per checkpoint, aggregates per checkpoint);
* :mod:`.metrics`: which metrics, and how each is judged (goal, weight, tolerance, limit);
* :mod:`.table`: the table, deltas, best marks, regressions; :mod:`.ranking`: the mean-rank and lexicographic
  rankings and their words; :mod:`.tiered`: the default ranking (verdicts, fidelity, artifacts);
  :mod:`.since`: "since when" (change points, :mod:`trackdiag.functional.changepoint`); :mod:`.bootstrap`:
  intervals;
* :mod:`.plots`: trend plots; :mod:`.outputs`: the report folder; :mod:`.publish`: the trackers.
"""
