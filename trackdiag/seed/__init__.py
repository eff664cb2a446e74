"""The design notes' own entry points, working as the notes write them.

The two design notes that trackdiag grew from show users calling two scripts and their Python API:

* ``diag_tiling``: ``run_diagnostics_from_tensors(pred_bchw=..., mask_bchw=..., out_dir=..., ref_chw=None,
  global_step=..., writer=writer, tag_prefix="train")`` and ``python diag_tiling.py --pred ... --out ...``;
* ``diagnose_loss``: ``LossDiagnostics(config).log_step(step, loss, ema_loss, model, batch)`` and
  ``python diagnose_loss.py --logdir ... --images in.png out.png --latents ... --report ...``.

Here they are ``trackdiag.seed.diag_tiling`` and ``trackdiag.seed.diagnose_loss`` (``import
trackdiag.seed.diag_tiling as dt``), ``python -m trackdiag.seed.diag_tiling`` / ``diag-tiling`` and
``python -m trackdiag.seed.diagnose_loss`` / ``diagnose-loss``. They do the work with trackdiag's analyzers
and backends. ``docs/migration.md`` puts each call of the notes next to its trackdiag equivalent.
"""

__all__ = ["diag_tiling", "diagnose_loss"]
