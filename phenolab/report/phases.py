"""The report's phase diagrams: each `phenolab phase` call stores a catalog note (kind "phase",
keyed by phenomenon, setting, field and grid) with its table and figure; the latest note of each
key is one entry of the index (its heat map and the command that rebuilds it) and one page (the
cell table, each cell's setting linked)."""

from __future__ import annotations

import shlex
from typing import Any

from phenolab.report.commands import count_seeds_arg, set_args
from phenolab.report.data import ReportData
from phenolab.report.studies import Study

NOTE_KIND = "phase"


def phase_view(data: ReportData, study: Study, figure: str | None) -> dict[str, Any]:
    """What the index and the diagram's page show: title, command, figure and the table (columns
    and rows, setting ids left out of the columns and linked per row where the catalog has them)."""
    obj = study.record
    rows = [r for r in obj.get("table") or [] if isinstance(r, dict)]
    columns = [c for c in obj.get("columns") or (rows[0] if rows else {}) if c != "setting_id"]
    links = [f"settings/{r['setting_id']}.json" if r.get("setting_id") in data.settings else None for r in rows]
    return {
        "title": study.title, "slug": study.slug, "id": study.id, "created": study.created,
        "seeds": obj.get("seeds") or [], "command": phase_command(obj), "figure": figure,
        "columns": columns, "rows": [[r.get(c) for c in columns] for r in rows],
        "links": links, "n_settings": len(study.setting_ids),
        "n_runs": sum(data.n_runs(sid, study.seeds) for sid in study.setting_ids),
    }


def phase_command(obj: dict[str, Any]) -> str:
    """The `phenolab phase` command that rebuilds a note's diagram."""
    parts = ["phenolab", "phase", str(obj.get("phenomenon")), "--setting", str(obj.get("setting")),
             *set_args(obj.get("overrides") or {})]
    axes = obj.get("axes") or []  # [[x field, values], [y field, values]]; a dict in older notes
    for field, values in axes.items() if isinstance(axes, dict) else axes:
        parts += ["--grid", f"{field}=" + ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)]
    parts += ["--seeds", count_seeds_arg(obj.get("seeds") or [0]), *(["--quick"] if obj.get("quick") else []),
              "--metric", str(obj.get("field"))]
    return shlex.join(parts)
