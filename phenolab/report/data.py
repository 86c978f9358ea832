"""What the report reads from the catalog: all of it that any page shows, read once per build
from one snapshot (`Catalog.snapshot()`), so no page can mix two states of a catalog that another
process writes meanwhile. Curves are read later, through the same snapshot, only for figures
that have to be drawn again.

Every page and figure is keyed by a digest of the rows it shows (`digest`, `rows_digest`): the
stored JSON text of settings and notes and the stored columns of runs, as they are in the file.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from phenolab.catalog import Catalog, runs_frame

NOTE_KINDS = ("signature", "phase", "checklist", "audit")
HYPOTHESIS_PREFIX = "hypothesis"


@dataclass
class SettingRow:
    id: str
    json: str  # as stored (canonical JSON text)
    task: str | None
    model: str | None
    created: float


@dataclass
class ReportData:
    """One state of the catalog, as the report needs it."""

    catalog: Catalog  # the snapshot: curves for figures are read through it
    settings: dict[str, SettingRow]  # in the order they were first stored
    runs: dict[str, list[tuple[Any, ...]]]  # setting id -> its runs as `Catalog.rows()` gives them, by seed
    notes: dict[str, list[dict[str, Any]]]  # kind -> [{id, kind, key, created, obj, text}], oldest first
    _parsed: dict[str, dict[str, Any]] = field(default_factory=dict)
    _digests: dict[str, str] = field(default_factory=dict)

    def setting_json(self, sid: str) -> dict[str, Any] | None:
        """A stored setting, parsed (None if the catalog lacks it)."""
        if sid not in self._parsed:
            row = self.settings.get(sid)
            if row is None:
                return None
            self._parsed[sid] = json.loads(row.json)
        return self._parsed[sid]

    def n_runs(self, sid: str, seeds: list[int] | None = None) -> int:
        rows = self.runs.get(sid, [])
        keep = set(seeds or [])
        return len(rows) if not keep else sum(1 for r in rows if r[2] in keep)

    def seeds(self, sid: str) -> list[int]:
        return [int(r[2]) for r in self.runs.get(sid, [])]

    def setting_digest(self, sid: str) -> str:
        """Digest of one setting's stored JSON and all its runs' stored columns."""
        if sid not in self._digests:
            row = self.settings.get(sid)
            self._digests[sid] = digest(row.json if row else None, self.runs.get(sid, []))
        return self._digests[sid]

    def rows_digest(self, sids: list[str]) -> str:
        return digest([self.setting_digest(s) for s in sids])

    def runs_frame(self, sids: list[str], seeds: list[int] | None = None) -> pd.DataFrame:
        """`Catalog.runs()`'s table for these settings (restricted to `seeds` when given)."""
        keep = set(seeds) if seeds else None
        rows = [r for sid in sids for r in self.runs.get(sid, []) if keep is None or r[2] in keep]
        return runs_frame(rows)

    def notes_of(self, kind: str) -> list[dict[str, Any]]:
        return self.notes.get(kind, [])

    def hypothesis_notes(self) -> list[dict[str, Any]]:
        """Every note whose kind starts with "hypothesis", in the order they were written."""
        return sorted((n for k, ns in self.notes.items() if k.startswith(HYPOTHESIS_PREFIX) for n in ns),
                      key=lambda n: n["id"])


def read_report_data(snapshot: Catalog) -> ReportData:
    """Settings, runs and the notes the report shows, from one snapshot of the catalog."""

    settings, runs, notes = snapshot.rows(NOTE_KINDS, HYPOTHESIS_PREFIX)
    by_setting: dict[str, list[tuple[Any, ...]]] = {}
    for row in runs:
        by_setting.setdefault(row[1], []).append(row)
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for nid, kind, key, created, text in notes:
        by_kind.setdefault(kind, []).append({"id": nid, "kind": kind, "key": key, "created": created,
                                             "obj": json.loads(text), "text": text})
    return ReportData(snapshot, {r[0]: SettingRow(*r) for r in settings}, by_setting, by_kind)


def digest(*parts: Any) -> str:
    """A short content key: SHA-256 of the parts' repr (strings, numbers, tuples and lists of them)."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:32]
