"""Hypotheses and their verdicts as the report shows them, read from catalog notes.

`phenolab.hypotheses` keeps a hash-chained log in notes of kind "hypothesis_log": entries of
type "register" (payload.hypothesis: name, statement, ...) and "verdict" (payload: status, reason,
tests: {in_sample, held_out, confound, intervention}: {status, detail, mean, sd, n, ...}). The
report reads every note whose kind starts with "hypothesis" and understands that format, falls
back to a generic reading of any other record (a "verdict"/"status" and the four test names found
anywhere in it), shows every verdict — refuted ones included — and is simply empty without notes.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from phenolab.catalog import Catalog
from phenolab.report.data import ReportData
from phenolab.report.studies import fmt, fmt_time

TESTS = ("in_sample", "held_out", "confound", "intervention")
VERDICTS = ("supported", "refuted", "inconclusive")
_KNOWN = {"status", "detail", "mean", "sd", "n", "threshold", "tolerance", "needs", "result", "passed"}
_TITLE_KEYS = ("statement", "claim", "text", "title", "description", "name")
_ID_KEYS = ("hypothesis_id", "hypothesis", "id", "hash")


@dataclass
class TestResult:
    name: str
    status: str
    value: str  # "mean ± sd"
    n: str
    need: str  # the threshold or tolerance the test holds the claim to
    detail: str
    extra: list[tuple[str, str]]  # other scalar fields, e.g. rho = 0.93


@dataclass
class Evaluation:
    verdict: str
    reason: str
    created: str
    tests: list[TestResult]


@dataclass
class HypothesisView:
    id: str
    title: str
    name: str
    created: str
    spec: str  # the registered record, pretty JSON (escaped by the template)
    evaluations: list[Evaluation] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        """The latest verdict ('not evaluated' before any)."""
        return self.evaluations[-1].verdict if self.evaluations else "not evaluated"


def hypothesis_views(source: Catalog | ReportData) -> list[HypothesisView]:
    """One view per hypothesis id, with every evaluation recorded for it, oldest first."""
    if isinstance(source, ReportData):
        notes = source.hypothesis_notes()
    else:
        notes = sorted((n for kind in source.note_kinds("hypothesis") for n in source.notes(kind)),
                       key=lambda n: n["id"])
    views: dict[str, HypothesisView] = {}
    for note in notes:
        obj = note["obj"]
        body = obj["payload"] if isinstance(obj, dict) and isinstance(obj.get("payload"), dict) else obj
        kind = obj.get("type") if isinstance(obj, dict) else None
        hid = _hypothesis_id(note)
        view = views.get(hid)
        if view is None:
            spec = body.get("hypothesis", body) if isinstance(body, dict) and kind == "register" else body
            view = views[hid] = HypothesisView(hid, _title(body) or hid, _name(body),
                                               fmt_time(note["created"]),
                                               json.dumps(spec, indent=2, sort_keys=True, default=str))
        elif view.title == hid and _title(body):
            view.title, view.name = _title(body), _name(body)
        if kind == "register":
            continue
        verdict = _find(body, "verdict")
        if verdict is None and any(_find(body, t) is not None for t in TESTS):
            verdict = body.get("status") if isinstance(body, dict) else None
        if verdict is not None or any(_find(body, t) is not None for t in TESTS):
            view.evaluations.append(_evaluation(body, verdict, note["created"]))
    return list(views.values())


def verdict_class(verdict: str) -> str:
    """CSS class of a verdict or test status: a verdict name, pass/fail, or 'other'."""
    v = str(verdict).lower()
    if v in ("pass", "fail"):
        return v
    return next((name for name in VERDICTS if name in v), "other")


def _evaluation(body: Any, verdict: Any, created: float) -> Evaluation:
    reason = _find(body, "reason")
    if isinstance(verdict, dict):  # {"verdict": {"verdict"/"status": ..., "reason": ...}}
        reason = verdict.get("reason", reason)
        verdict = verdict.get("verdict", verdict.get("status"))
    root = body.get("tests") if isinstance(body, dict) and isinstance(body.get("tests"), dict) else body
    tests = [_test_result(name, _find(root, name)) for name in TESTS]
    return Evaluation(fmt(verdict) if verdict is not None else "—", fmt(reason) if reason else "",
                      fmt_time(created), tests)


def _test_result(name: str, raw: Any) -> TestResult:
    if raw is None:
        return TestResult(name, "not recorded", "", "", "", "", [])
    if not isinstance(raw, dict):
        return TestResult(name, "—", "", "", "", fmt(raw), [])
    status = raw.get("status", raw.get("result"))
    if status is None and isinstance(raw.get("passed"), bool):
        status = "pass" if raw["passed"] else "fail"
    mean, sd = raw.get("mean"), raw.get("sd")
    value = "" if mean is None else fmt(mean) + ("" if sd is None else f" ± {fmt(sd)}")
    need = raw.get("needs", raw.get("threshold", raw.get("tolerance")))  # "needs": e.g. "≤ 1" grid steps
    extra = [(str(k), fmt(v)) for k, v in raw.items()
             if k not in _KNOWN and not isinstance(v, (dict, list)) and v is not None][:8]
    return TestResult(name, fmt(status) if status is not None else "—", value, fmt(raw.get("n", "")),
                      "" if need is None else fmt(need), fmt(raw.get("detail", "")), extra)


def _hypothesis_id(note: dict[str, Any]) -> str:
    obj = note["obj"]
    if isinstance(obj, dict):
        for key in _ID_KEYS:
            if isinstance(obj.get(key), (str, int)):
                return str(obj[key])
    return str(note["key"] or f"note-{note['id']}")


def _title(obj: Any) -> str:
    for key in _TITLE_KEYS:
        value = _find(obj, key)
        if isinstance(value, str) and value.strip():
            return value
    return ""


def _name(obj: Any) -> str:
    value = _find(obj, "name")
    return value if isinstance(value, str) else ""


def _find(obj: Any, key: str) -> Any:
    """The value under `key` nearest the top of a nested record (breadth first), or None."""
    queue = deque([obj])
    while queue:
        node = queue.popleft()
        if isinstance(node, dict):
            if key in node:
                return node[key]
            queue.extend(v for v in node.values() if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            queue.extend(v for v in node if isinstance(v, (dict, list)))
    return None
