"""Offline report sections for ``python -m trackdiag.diagnose``.

Each module here has the same small interface, so that one CLI call can mix ``--pred``, ``--images``,
``--logdir`` and ``--latents`` and get one report with a section for each:

* ``add_arguments(parser)``: add the section's own flags to the argparse parser;
* ``wanted(args) -> bool``: whether the user asked for this section;
* ``run(args, out_dir: Path, progress: bool) -> list[Section]``: do the work, write files into ``out_dir``
  (or a sub-folder of it) and return the report sections. Raise :class:`~trackdiag.errors.TrackdiagError`
  for a problem that stops the whole section; record per-file problems in the section instead.
"""

#: Section modules in report order.
SECTION_MODULES: tuple[str, ...] = ("tiling", "pixel", "loss", "latent")


def unique_name(name: str, used: set[str], *, default: str) -> str:
    """A folder-safe name for one input's report sub-folder, made unique within ``used`` (which it
    updates)."""
    # no leading dots: a file named "...png" has the stem "..", which must not become a folder name
    base = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name).lstrip(".") or default
    out, i = base, 1
    while out in used:
        i += 1
        out = f"{base}_{i}"
    used.add(out)
    return out
