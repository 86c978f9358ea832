"""What the report shows per study, read from the catalog alone.

A study is a phenomenon study recorded by `phenolab reproduce` (a catalog note of kind "signature":
phenomenon, setting, setting id(s), seeds, summary, figure), a phase diagram recorded by `phenolab
phase` (kind "phase": its grid of settings, table and figure) — the latest note per key wins — or
a single stored setting with all its seeds. Settings that belong to no study are grouped into
families (same task, model and non-numeric fields) for the index.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from phenolab.catalog import Catalog
from phenolab.phenomena import Fields, stat
from phenolab.report.commands import flatten
from phenolab.report.data import ReportData

RUN_FIELDS = ("run_id", "setting_id", "seed", "status", "started", "wall_s", "replicas_in_batch")
_HIDDEN = {"task", "model", "finished", "batch_id"}


@dataclass
class Study:
    """One report page."""

    id: str  # the study id `phenolab checklist` takes: a signature note key or a setting id (a phase note key)
    kind: str  # "phenomenon", "phase" or "setting"
    title: str
    setting_ids: list[str]
    seeds: list[int]
    phenomenon: str | None = None
    setting_name: str | None = None
    note: str = ""
    created: float | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    figure: str | None = None  # path recorded in the note, if any
    options: dict[str, Any] = field(default_factory=dict)  # the phenomenon's options the study ran with
    overrides: dict[str, Any] | None = None  # its `--set` fields (None: a note that did not record them)
    quick: bool | None = None
    note_id: int | None = None
    record: dict[str, Any] = field(default_factory=dict)  # the note itself (a phase diagram's table, ...)

    @property
    def slug(self) -> str:
        """A file name that is safe in a relative URL whatever the id holds, and unique per id."""
        stem = re.sub(r"[^A-Za-z0-9_-]+", "-", self.id).strip("-")[:60] or "study"
        return f"{self.kind}-{stem}-{hashlib.sha256(self.id.encode()).hexdigest()[:8]}"


def signature_studies(source: Catalog | ReportData) -> list[Study]:
    """The latest signature note of each key, as studies (malformed notes are skipped, not fatal)."""
    notes = source.notes_of("signature") if isinstance(source, ReportData) else source.notes("signature")
    out = []
    for note in _latest(notes).values():
        obj = note["obj"]
        ids = _setting_ids(obj)
        seeds = [int(s) for s in obj.get("seeds", []) if _is_int(s)]
        phenomenon, name = str(obj.get("phenomenon", "")), str(obj.get("setting", ""))
        out.append(Study(
            id=str(note["key"]), kind="phenomenon", title=f"{phenomenon} · {name}", setting_ids=ids,
            seeds=seeds, phenomenon=phenomenon, setting_name=name, note=str(obj.get("note") or ""),
            created=note["created"], summary=obj.get("summary") if isinstance(obj.get("summary"), dict) else {},
            figure=str(obj["figure"]) if obj.get("figure") else None,
            options=obj["options"] if isinstance(obj.get("options"), dict) else {},
            overrides=obj["overrides"] if isinstance(obj.get("overrides"), dict) else None,
            quick=obj["quick"] if isinstance(obj.get("quick"), bool) else None, note_id=note["id"],
        ))
    return out


def phase_studies(data: ReportData) -> list[Study]:
    """The latest phase note of each key (phenomenon, setting, field, grid), newest first."""
    out = []
    for note in sorted(_latest(data.notes_of("phase")).values(), key=lambda n: n["created"], reverse=True):
        obj = note["obj"]
        rows = obj.get("table") if isinstance(obj.get("table"), list) else []
        ids = [str(r["setting_id"]) for r in rows if isinstance(r, dict) and r.get("setting_id")]
        seeds = [int(s) for s in obj.get("seeds") or [] if _is_int(s)]
        out.append(Study(
            id=str(note["key"]), kind="phase", setting_ids=list(dict.fromkeys(ids)), seeds=seeds,
            title=f"{obj.get('phenomenon')} · {obj.get('setting')} · {obj.get('field')}",
            phenomenon=str(obj.get("phenomenon", "")), setting_name=str(obj.get("setting", "")),
            created=note["created"], figure=str(obj["figure"]) if obj.get("figure") else None,
            note_id=note["id"], record=obj,
        ))
    return out


def _latest(notes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    latest: dict[str, dict[str, Any]] = {}
    for note in notes:  # oldest first: later notes of a key replace earlier ones
        if isinstance(note["obj"], dict) and note["key"]:
            latest[str(note["key"])] = note
    return latest


def _setting_ids(obj: dict[str, Any]) -> list[str]:
    """The settings a study note names: `setting_ids`, or `setting_id` plus those of its per-setting
    rows (double descent records one row per width under `per_capacity`)."""
    if isinstance(obj.get("setting_ids"), list):
        return [str(i) for i in obj["setting_ids"]]
    ids = [obj.get("setting_id")]
    for value in obj.values():
        if isinstance(value, list):
            ids.extend(row.get("setting_id") for row in value if isinstance(row, dict))
    return [str(i) for i in dict.fromkeys(ids) if isinstance(i, str) and i]


def setting_studies(data: ReportData, setting_ids: list[str]) -> list[Study]:
    """One study per stored setting, over all its seeds (its summary, the final values over seeds,
    is computed only for a page that is written: `final_summary`)."""
    out = []
    for sid in setting_ids:
        row = data.settings[sid]
        out.append(Study(
            id=sid, kind="setting", title=f"setting {sid} · {row.task} · {row.model}",
            setting_ids=[sid], seeds=data.seeds(sid), created=float(row.created),
        ))
    return out


def setting_families(data: ReportData, setting_ids: list[str], slugs: dict[str, str]) -> list[dict[str, Any]]:
    """Settings grouped by task, model and every non-numeric field; within a family, the numeric
    fields that vary are its axes (a sweep without a phase diagram is one family)."""
    groups: dict[tuple[Any, ...], list[tuple[str, dict[str, Any]]]] = {}
    for sid in setting_ids:
        row = data.settings[sid]
        flat = flatten(data.setting_json(sid) or {})
        fixed = tuple(sorted((k, json.dumps(v, sort_keys=True)) for k, v in flat.items() if not _is_number(v)))
        groups.setdefault((row.task, row.model, fixed), []).append((sid, flat))
    out = []
    for (task, model, _), members in groups.items():
        numeric = sorted({k for _, flat in members for k, v in flat.items() if _is_number(v)})
        axes = [k for k in numeric if len({json.dumps(flat.get(k)) for _, flat in members}) > 1]
        rows = [{"id": sid, "slug": slugs.get(sid), "runs": data.n_runs(sid),
                 "created": fmt_time(data.settings[sid].created), "cells": [fmt(flat.get(k)) for k in axes]}
                for sid, flat in members]
        out.append({"task": task, "model": model, "axes": axes, "settings": rows,
                    "runs": sum(r["runs"] for r in rows)})
    return out


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def final_summary(runs: pd.DataFrame) -> dict[str, Any]:
    """Mean, sd and n over seeds of every numeric summary column (final_train_acc, ...)."""
    skip = set(RUN_FIELDS) | _HIDDEN | {"final_step"}
    out: dict[str, Any] = {}
    for col in runs.columns:
        if col in skip or not pd.api.types.is_numeric_dtype(runs[col]):
            continue
        out[col] = stat([float(v) for v in runs[col]])
    if "final_step" in runs and len(runs):
        out["final_step"] = stat([float(v) for v in runs["final_step"]])
    return out


def study_runs(data: ReportData, study: Study) -> pd.DataFrame:
    """The catalog rows behind a study: its settings' runs, restricted to its seeds."""
    seeds = study.seeds if study.kind == "phenomenon" else None
    runs = data.runs_frame(study.setting_ids, seeds)
    return runs if len(runs) else pd.DataFrame(columns=list(RUN_FIELDS))


def summary_rows(summary: dict[str, Any], fields: Fields | None = None, prefix: str = "") -> list[dict[str, str]]:
    """Table rows {field, mean, sd, n, value, unit, description}: stat dicts as mean ± sd (n), other
    values as text; unit and description from the phenomenon's declared fields, where known."""
    rows: list[dict[str, str]] = []
    for key in ordered_keys(list(summary), fields if not prefix else None):
        val, name = summary[key], f"{prefix}{key}"
        declared = fields.get(key) if fields is not None and not prefix else None
        about = {"unit": declared.unit if declared else "", "description": declared.description if declared else ""}
        if isinstance(val, dict) and "mean" in val and "n" in val:
            rows.append({"field": name, "mean": fmt(val.get("mean")), "sd": fmt(val.get("sd")),
                         "n": fmt(val.get("n")), "value": "", **about})
        elif isinstance(val, dict) and any(isinstance(v, dict) for v in val.values()):
            rows.extend(summary_rows(val, prefix=f"{name}."))
        elif isinstance(val, dict):
            rows.append({"field": name, "mean": "", "sd": "", "n": "",
                         "value": ", ".join(f"{k}: {fmt(v)}" for k, v in val.items()), **about})
        else:
            rows.append({"field": name, "mean": "", "sd": "", "n": "", "value": fmt(val), **about})
    return rows


def ordered_keys(keys: list[str], fields: Fields | None) -> list[str]:
    """`keys` in the order the phenomenon declares its fields (a key matching a pattern field such as
    `r* ticket` takes that field's place, in its own order among those); undeclared keys last, as
    given. A reader meets the fields in the order their author explains them, not as a dict kept them."""
    if fields is None:
        return list(keys)
    rank = {f.name: i for i, f in enumerate(fields.fields)}
    last = len(rank)

    def place(key: str) -> int:
        f = fields.get(key)
        return rank.get(f.name, last) if f is not None else last

    return sorted(keys, key=place)  # stable: ties keep the given order


def runs_table(runs: pd.DataFrame, multi_setting: bool) -> tuple[list[str], list[list[str]]]:
    """Columns and formatted cells of the runs behind a study."""
    fixed = [c for c in RUN_FIELDS if c in runs and (multi_setting or c != "setting_id")]
    extra = [c for c in runs.columns if c not in RUN_FIELDS and c not in _HIDDEN]
    cols = fixed + sorted(extra)
    cells = [[fmt_time(v) if c == "started" else fmt(v) for c, v in zip(cols, row, strict=True)]
             for row in runs[cols].itertuples(index=False)]
    return cols, cells


def fmt(value: Any) -> str:
    """Numbers to 4 significant digits, missing values as an em dash, everything else as text."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "—"
        return f"{value:.4g}"
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, default=str)
    return str(value)


def fmt_time(value: Any) -> str:
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(value)))
    except (TypeError, ValueError, OverflowError):
        return fmt(value)


def _is_int(value: Any) -> bool:
    try:
        int(value)
    except (TypeError, ValueError):
        return False
    return True
