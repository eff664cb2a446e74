"""Checkpoint comparison (``python -m trackdiag.compare_ckpts``), in small modules with one job each:

* :mod:`.config`: the typed schema and composition of ``conf/compare/config.yaml``;
* :mod:`.data`: metric series per run, values at checkpoints (nearest logged step within a tolerance);
* :mod:`.sources`: readers for MLflow, local, W&B offline and TensorBoard runs (one batched read per run);
* :mod:`.samples`: samples mode (analyzers on one image folder per checkpoint, aggregates per checkpoint);
* :mod:`.metrics`: which metrics, and how each is judged (goal, weight, tolerance, limit);
* :mod:`.table`: the table, deltas, best marks, regressions; :mod:`.ranking`: the ranking and its words;
* :mod:`.plots`: trend plots; :mod:`.outputs`: the report folder; :mod:`.publish`: the trackers.
"""
