"""Audits on study pages: `phenolab audit` keeps each audit as a catalog note (kind "audit", written
by `phenolab.studies.audit`): the phenomenon under another metric, another initialization scale,
regularization and the variations it has been claimed for, one row per control.

An audit belongs to a study when it audits the same phenomenon on the same setting. The audit
adds the measures its re-reading needs to the setting, so the two are compared without their
`measures`. Its rows are evidence for two checklist questions — the confounds (metric choice,
initialization scale, overfitting) and where the phenomenon has been observed (the variations) —
which the study page pre-fills for the researcher to confirm, never as their answer. The settings
an audit trained (its base and its controls, planned again from the note as `phenolab audit` plans
them) are folded into the study, like the points of a sweep: the audit's table stands for them.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from phenolab.report.commands import count_seeds_arg, flag_args, set_args
from phenolab.report.data import ReportData
from phenolab.report.studies import Study, fmt, fmt_time

NOTE_KIND = "audit"
# checklist question -> the audit's control kinds that bear on it
EVIDENCE = {
    "reassessment.3": ("metric", "init scale", "regularization"),  # metric choice, init scale, overfitting
    "context.2": ("variation",),  # modalities, architectures, optimizers
}
CONFIRM = "from the audit — confirm"


class Audits:
    """The latest audit note of each key, found by (phenomenon, setting without its measures)."""

    def __init__(self, data: ReportData) -> None:
        self.data = data
        self.by_core: dict[tuple[str, str], list[dict[str, Any]]] = {}
        latest: dict[str, dict[str, Any]] = {}
        for note in data.notes_of(NOTE_KIND):  # oldest first: a later note of a key replaces it
            if isinstance(note["obj"], dict) and isinstance(note["obj"].get("rows"), list):
                latest[str(note["key"])] = note
        for note in latest.values():
            obj = note["obj"]
            core = self._core(str(obj.get("setting_id", "")))
            if core is not None:
                self.by_core.setdefault((str(obj.get("phenomenon", "")), core), []).append(note)

    def _core(self, sid: str) -> str | None:
        obj = self.data.setting_json(sid)
        if obj is None:
            return None
        return json.dumps({k: v for k, v in obj.items() if k != "measures"}, sort_keys=True)

    def settings(self, note: dict[str, Any], quick: bool | None) -> list[str]:
        """The setting ids the audit trained, planned again from its note (none when the phenomenon
        or its setting is not known here, or the plan no longer gives the note's base setting)."""
        from phenolab.phenomena import PHENOMENA
        from phenolab.settings import SettingError
        from phenolab.studies.audit import plan_audit

        obj = note["obj"]
        ph = PHENOMENA.get(str(obj.get("phenomenon", "")))
        if ph is None:
            return []
        for q in (False, True) if quick is None else (bool(quick),):
            try:
                plan = plan_audit(ph, str(obj.get("setting", "")), [int(s) for s in obj.get("seeds") or [0]],
                                  dict(obj.get("overrides") or {}), q, obj.get("options") or {})
            except (SettingError, ValueError, TypeError):
                continue
            if plan.base.settings[0].id == obj.get("setting_id"):
                return list(dict.fromkeys(s.id for st in plan.studies() for s in st.settings))
        return []

    def of(self, study: Study) -> dict[str, Any] | None:
        """The newest audit of the study's phenomenon on one of its settings, if any."""
        if study.kind != "phenomenon" or not self.by_core:
            return None
        found = [n for sid in study.setting_ids for core in [self._core(sid)] if core is not None
                 for n in self.by_core.get((study.phenomenon or "", core), [])]
        return max(found, key=lambda n: n["id"]) if found else None


def audit_view(note: dict[str, Any], quick: bool | None = None) -> dict[str, Any]:
    """The audit's table as the study page shows it, and the command that runs it again (`quick`:
    the study's, whose setting the audit matched)."""
    obj = note["obj"]
    rows = [r for r in obj.get("rows", []) if isinstance(r, dict)]
    return {
        "created": fmt_time(note["created"]), "size": fmt(obj.get("size", "")),
        "seeds": len(obj.get("seeds") or []), "command": audit_command(obj, bool(quick)),
        "rows": [{"control": f"{r.get('kind', '')}: {r.get('control', '')}", "outcome": fmt(r.get("outcome", "")),
                  "size": size_text(r.get("size")), "change": fmt(r.get("change") or ""),
                  "detail": fmt(r.get("detail") or "")} for r in rows],
    }


def audit_evidence(note: dict[str, Any] | None) -> dict[str, list[dict[str, str]]]:
    """{checklist question id: the audit rows that bear on it} (empty without an audit)."""
    if note is None:
        return {}
    view = audit_view(note)
    rows = [r for r in note["obj"].get("rows", []) if isinstance(r, dict)]
    out: dict[str, list[dict[str, str]]] = {}
    for qid, kinds in EVIDENCE.items():
        shown = [v for r, v in zip(rows, view["rows"], strict=True) if r.get("kind") in kinds]
        if shown:
            out[qid] = shown
    return out


def size_text(size: Any) -> str:
    if not isinstance(size, dict) or size.get("mean") is None:
        return ""
    sd = "" if size.get("sd") is None else f" ± {fmt(size['sd'])}"
    return f"{fmt(size['mean'])}{sd} (n={fmt(size.get('n'))})"


def audit_command(obj: dict[str, Any], quick: bool = False) -> str:
    """`phenolab audit PHENOMENON --setting NAME ...` as the note recorded it."""
    options = obj.get("options") if isinstance(obj.get("options"), dict) else {}
    overrides = obj.get("overrides") if isinstance(obj.get("overrides"), dict) else {}
    return shlex.join(["phenolab", "audit", str(obj.get("phenomenon", "")), "--setting", str(obj.get("setting", "")),
                       *(["--quick"] if quick else []), *set_args(overrides),
                       *[a for k, v in options.items() for a in flag_args(k, v)],
                       "--seeds", count_seeds_arg(obj.get("seeds") or [0])])
