"""Hypotheses and their verdicts as the report shows them, read from catalog notes.

`phenolab.hypotheses` keeps a hash-chained log in notes of kind "hypothesis_log": entries of
type "register" (payload.hypothesis: name, statement, ...) and "verdict" (payload: status, reason,
tests: {in_sample, held_out, confound, intervention}: {status, detail, mean, sd, n, ...}). The
report reads every note whose kind starts with "hypothesis" and understands that format, falls
back to a generic reading of any other record (a "verdict"/"status" and the four test names found
anywhere in it), shows every verdict — refuted ones included — and is simply empty without notes.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from phenolab.catalog import Catalog
from phenolab.report.data import ReportData
from phenolab.report.studies import fmt, fmt_time

TESTS = ("in_sample", "held_out", "confound", "intervention")
VERDICTS = ("supported", "refuted", "inconclusive")
_KNOWN = {"status", "detail", "mean", "sd", "n", "threshold", "tolerance", "needs", "result", "passed", "statistic"}
RUN_SETS = {"in_sample": ("in_sample",), "held_out": ("held_out",), "confound": ("in_sample",),
            "intervention": ("in_sample", "regularizer")}  # the runs each test reads, as a verdict lists them
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
    claim: str = ""  # what the test requires, with its comparison: "ρ ≥ 0.8", "|ΔT| gap < 0.1"


@dataclass
class Evaluation:
    verdict: str
    reason: str
    created: str
    tests: list[TestResult]
    runs: dict[str, list[str]] = field(default_factory=dict)  # run set (in_sample, ...) -> run ids, as recorded


@dataclass
class HypothesisView:
    id: str
    title: str
    name: str
    created: str
    spec: str  # the registered record, pretty JSON (escaped by the template)
    evaluations: list[Evaluation] = field(default_factory=list)
    measure: str = ""  # curve names of M and T
    target: str = ""
    over: str = ""  # "steps": M against T along each run; "settings": final values across a sweep
    settings: list[str] = field(default_factory=list)  # the settings its scope and held-out groups name

    @property
    def anchor(self) -> str:
        """An element id for the hypothesis, safe in a URL fragment whatever its id holds."""
        stem = re.sub(r"[^A-Za-z0-9_-]+", "-", self.id).strip("-")[:40] or "h"
        return f"h-{stem}-{hashlib.sha256(self.id.encode()).hexdigest()[:6]}"

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
            _read_spec(view, spec)
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
    raw = body.get("runs") if isinstance(body, dict) else None
    runs = {str(k): [str(r) for r in v if isinstance(r, str)] for k, v in raw.items()
            if isinstance(v, list)} if isinstance(raw, dict) else {}
    order = {name: i for i, name in enumerate(("in_sample", "held_out", "regularizer"))}  # stored JSON sorts keys
    ordered = sorted((k for k, v in runs.items() if v), key=lambda k: (order.get(k, len(order)), k))
    return Evaluation(fmt(verdict) if verdict is not None else "—", fmt(reason) if reason else "",
                      fmt_time(created), tests, {k: runs[k] for k in ordered})


def claim_text(raw: dict[str, Any]) -> str:
    """What a test holds its statistic to, written with the comparison the test makes: `needs`
    where the test wrote it out ("≥ 0.8"); a signed threshold as ≥ (≤ for a negative claim, whose
    statistic must fall to it); an intervention's tolerance as `<` (it fails at or above it)."""
    stat = _statistic(raw)
    needs = raw.get("needs")
    if isinstance(needs, str) and needs.strip():
        return f"{stat} {needs.strip()}".strip()
    thr, tol = raw.get("threshold"), raw.get("tolerance")
    if _number(thr):
        return f"{stat} {'≥' if thr >= 0 else '≤'} {fmt(thr)}".strip()
    if _number(tol):
        return f"{stat} < {fmt(tol)}".strip()
    return ""


def _statistic(raw: dict[str, Any]) -> str:
    """The name of what a test compares, from the fields `phenolab.hypotheses` records."""
    if "transform" in raw or "per_transform" in raw:
        return "(predicted − observed |ΔT|) / T's range"
    if "share_moved_and_followed" in raw:
        return "share of moves T followed"
    peak = raw.get("statistic") == "peak"
    if "confounds" in raw:
        return "residual peak distance" if peak else "partial ρ"
    if peak:
        return "peak distance"
    return "ρ" if raw.get("statistic") == "spearman" else ""


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _read_spec(view: HypothesisView, spec: Any) -> None:
    """M's and T's curve names, how the claim reads them, and the settings its groups name."""
    if not isinstance(spec, dict):
        return
    view.measure, view.target = _curve_name(spec.get("measure")), _curve_name(spec.get("target"))
    relation = spec.get("relation")
    view.over = str(relation.get("over", "steps")) if isinstance(relation, dict) else "steps"
    groups = [g for key in ("scope", "held_out") if isinstance(spec.get(key), list) for g in spec[key]]
    view.settings = list(dict.fromkeys(str(g["setting"]) for g in groups
                                       if isinstance(g, dict) and isinstance(g.get("setting"), str)))


def _curve_name(ref: Any) -> str:
    """The curve a hypothesis reads: a recorded metric by name, a measure by its engine key."""
    if isinstance(ref, str):
        return ref
    if not isinstance(ref, dict) or not isinstance(ref.get("name"), str):
        return ""
    from phenolab.engine.evaluate import measure_key
    from phenolab.settings import MeasureSpec

    try:
        return measure_key(MeasureSpec(name=ref["name"], params=ref.get("params") or {}))
    except ValueError:  # a measure this installation lacks: its plain name
        return str(ref["name"])


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
                      "" if need is None else fmt(need), fmt(raw.get("detail", "")), extra, claim_text(raw))


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
