"""The report's phase diagrams: each `phenolab phase` call stores a catalog note (kind "phase",
keyed by phenomenon, setting, field and grid) with its table and figure; the latest note of each
key is shown, with the command that rebuilds it."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from typing import Any

from phenolab.catalog import Catalog
from phenolab.report.commands import count_seeds_arg, set_args

NOTE_KIND = "phase"


def phase_views(catalog: Catalog, copy_figure: Callable[[str | None, str], str | None]) -> list[dict[str, Any]]:
    """One view per phase diagram (the latest of each key), newest first: title, command, the
    copied figure and the table (columns and rows, setting ids left out)."""
    latest: dict[str, dict[str, Any]] = {}
    for note in catalog.notes(NOTE_KIND):
        latest[note["key"]] = note  # oldest first: later notes of a key replace earlier ones
    views = []
    for i, note in enumerate(sorted(latest.values(), key=lambda n: n["created"], reverse=True)):
        obj = note["obj"]
        rows = obj.get("table") or []
        columns = [c for c in obj.get("columns") or (rows[0] if rows else {}) if c != "setting_id"]
        views.append({
            "title": f"{obj.get('phenomenon')} · {obj.get('setting')} · {obj.get('field')}",
            "created": note["created"], "seeds": obj.get("seeds") or [],
            "command": _command(obj), "figure": copy_figure(obj.get("figure"), f"phase-{i}"),
            "columns": columns, "rows": [[r.get(c) for c in columns] for r in rows],
        })
    return views


def _command(obj: dict[str, Any]) -> str:
    """The `phenolab phase` command that rebuilds a note's diagram."""
    parts = ["phenolab", "phase", str(obj.get("phenomenon")), "--setting", str(obj.get("setting")),
             *set_args(obj.get("overrides") or {})]
    axes = obj.get("axes") or []  # [[x field, values], [y field, values]]; a dict in older notes
    for field, values in axes.items() if isinstance(axes, dict) else axes:
        parts += ["--grid", f"{field}=" + ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)]
    parts += ["--seeds", count_seeds_arg(obj.get("seeds") or [0]), *(["--quick"] if obj.get("quick") else []),
              "--metric", str(obj.get("field"))]
    return shlex.join(parts)
