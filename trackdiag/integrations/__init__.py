"""Integrations with the training stacks trackdiag's users run (see ``docs/integrations.md``).

Each lives in its own module and imports its framework only when imported itself:

* :mod:`trackdiag.integrations.lightning`: ``TrackdiagCallback``, a PyTorch Lightning ``Callback``;
* :mod:`trackdiag.integrations.accelerate`: ``TrackdiagTracker`` and ``register()``, so that
  ``Accelerator(log_with="trackdiag")`` runs a trackdiag session;
* :mod:`trackdiag.integrations.hooks`: ``PerSampleLossHook``, ``TrackdiagLossMixin`` and
  ``track_post_process_loss`` for trainers that expose the per-sample loss before it is reduced
  (kohya-style ``post_process_loss``).
"""
