"""``python -m trackdiag.compare_ckpts --help``, generated from
:class:`~trackdiag.compare.config.CompareConfig`.

Each key's description is the ``#:`` comment above its field (:mod:`trackdiag.fielddocs`); this module only
adds the headings, the introduction and the examples, and registers the result as Hydra's ``hydra/help``
config ``trackdiag_compare`` (selected by ``conf/compare/config.yaml``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["APP_NAME", "HELP_NAME", "SECTIONS", "help_template", "help_node", "register_help"]

APP_NAME = "python -m trackdiag.compare_ckpts"
HELP_NAME = "trackdiag_compare"

#: The help's headings: each lists the keys starting with one of its prefixes, in the dataclass's order.
SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Where the runs come from (tracker mode)", ("backend", "runs", "mlflow.")),
    ("Checkpoints", ("steps", "tolerance")),
    ("Samples mode (instead of runs)", ("samples.",)),
    ("Metrics and judgement", ("metrics", "key_metrics", "goals", "default_goal", "weights", "limits",
                               "baseline", "regression.", "on_missing")),
    ("Ranking", ("ranking.",)),
    ("Output", ("output.", "publish.")),
)

HEADER = """\
Compare and rank checkpoints across runs: which checkpoint is best, and since when did the tiling get
worse? Writes a table (deltas vs a baseline, best values marked, regressions flagged), a ranking with
its reason in words and trend plots to a report folder (comparison.csv / .json / .md, index.html,
comparison.pdf) and to the tracker (a "comparison" run).
"""

FOOTER = """\
Examples:
  # tracker mode: the last logged step of every run of an MLflow experiment
  python -m trackdiag.compare_ckpts mlflow.experiment=lora_walls
  # chosen runs and checkpoints, a baseline, a hard limit
  python -m trackdiag.compare_ckpts backend=mlflow runs=[3f2a...,lora-r16] steps=[1000,2000,3000] \\
      baseline=lora-r16@1000 limits.band_score=0.4 metrics=[band_score,E2f_over_Ef]
  # W&B offline / TensorBoard / local run folders (globs work)
  python -m trackdiag.compare_ckpts backend=wandb runs=[wandb/offline-run-*] steps=all
  python -m trackdiag.compare_ckpts backend=tensorboard runs=[runs/exp1,runs/exp2]
  # samples mode: one folder of generated images per checkpoint
  python -m trackdiag.compare_ckpts samples.sets=[out/ckpt_1000,out/ckpt_2000] samples.masks=masks/ \\
      samples.ref=tile_256.png publish.to=none
Exit status: 0 on success; 1 on a missing run or metric, a bad override or value, or a tracker that
failed (one line says why; the report folder is written before the tracker is). Docs:
docs/compare_ckpts.md. Hydra's own flags: --hydra-help.
"""


def _in_section(key: str, prefixes: tuple[str, ...]) -> bool:
    return any(key.startswith(p) if p.endswith(".") else key == p for p in prefixes)


def help_template() -> str:
    """The help text's template (Hydra fills ``$CONFIG`` and the ``${hydra.help.*}`` fields)."""
    from ..fielddocs import describe, format_rows
    from .config import CompareConfig

    rows = list(describe(CompareConfig))  # long defaults (goals ...) are in the "Current config" part
    lines = ["${hydra.help.header}",
             "Usage: ${hydra.help.app_name} [key=value ...]   (Hydra overrides; lists as [a,b], maps as "
             "key.sub=value)", ""]
    placed: set[str] = set()
    for title, prefixes in SECTIONS:
        chosen = [r for r in rows if _in_section(r.key, prefixes)]
        placed.update(r.key for r in chosen)
        lines += [f"== {title} ==", *format_rows(chosen), ""]
    rest = [r for r in rows if r.key not in placed]
    if rest:
        lines += ["== Other ==", *format_rows(rest), ""]
    lines += ["== Current config (with your overrides) ==", "$CONFIG", "${hydra.help.footer}"]
    return "\n".join(lines) + "\n"


def help_node() -> dict[str, Any]:
    """The ``hydra/help`` config: app name, header, footer and the generated template."""
    return {"app_name": APP_NAME, "header": HEADER, "footer": FOOTER, "template": help_template()}


def register_help() -> None:
    """Store :func:`help_node` in Hydra's ConfigStore as ``hydra/help`` option ``trackdiag_compare``."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(group="hydra/help", name=HELP_NAME, node=help_node(), provider="trackdiag")
