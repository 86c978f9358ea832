"""What each page of the report shows, as the context its template renders: a study's page, a
phase diagram's page, the index. Everything comes from one `ReportData` (one catalog snapshot)."""

from __future__ import annotations

import json
from typing import Any

from phenolab.phenomena import Fields
from phenolab.report import checklist
from phenolab.report.audits import CONFIRM, audit_evidence, audit_view
from phenolab.report.commands import reproduce_command, seeds_text, train_command
from phenolab.report.data import ReportData
from phenolab.report.studies import Study, final_summary, runs_table, study_runs, summary_rows
from phenolab.settings import SettingError

MAX_RUN_ROWS = 1000  # a study page lists at most this many runs (a phase grid's are on its cells)
MAX_SETTING_SECTIONS = 60  # beyond this, a study's settings are one table, each linked to its JSON


def study_context(data: ReportData, study: Study, images: list[str],
                  audit: dict[str, Any] | None = None) -> dict[str, Any]:
    """A phenomenon study's or a setting's page (`audit`: the note of an audit of its setting)."""
    runs = study_runs(data, study)
    seeds = sorted(set(int(s) for s in runs["seed"])) if len(runs) else study.seeds
    shown = runs.iloc[:MAX_RUN_ROWS]
    cols, cells = runs_table(shown, multi_setting=len(study.setting_ids) > 1)
    settings, compact = [], len(study.setting_ids) > MAX_SETTING_SECTIONS
    for sid in study.setting_ids:
        obj = data.setting_json(sid)
        settings.append({
            "id": sid, "file": f"settings/{sid}.json", "missing": obj is None, "runs": data.n_runs(sid),
            "json": "" if obj is None or compact else json.dumps(obj, indent=2, sort_keys=True),
            "commands": [] if obj is None or compact else train_command(obj, sid, seeds, f"settings/{sid}.json"),
        })
    reproduce = None
    stored = [data.setting_json(sid) for sid in study.setting_ids]
    if study.kind == "phenomenon" and all(s is not None for s in stored):
        reproduce = reproduce_command(study.phenomenon or "", study.setting_name or "", study.setting_ids,
                                      study.seeds, stored, study.options, study.overrides,  # type: ignore[arg-type]
                                      study.quick)
    answers = answers_for(data, study.id)
    fields = fields_of(study)
    return {
        "id": study.id, "slug": study.slug, "kind": study.kind, "title": study.title, "note": study.note,
        "phenomenon": study.phenomenon, "setting_name": study.setting_name, "created": study.created,
        "seeds": seeds_text(seeds), "n_seeds": len(seeds), "images": images,
        "summary": summary_rows(final_summary(runs) if study.kind == "setting" else study.summary, fields),
        "source": canonical_of(study), "audit": audit_view(audit, study.quick) if audit else None,
        "settings": settings, "compact": compact,
        "reproduce": reproduce, "run_columns": cols, "run_cells": cells, "n_runs": len(runs),
        "runs_left_out": len(runs) - len(shown), "checklist": checklist_context(answers, audit_evidence(audit)),
        "answered": len(answers),
        "questions": len(checklist.QUESTIONS), "expected_figure": bool(study.figure) or study.kind == "setting",
    }


def answers_for(data: ReportData, study_id: str) -> dict[str, dict[str, Any]]:
    return checklist.merge_answers([n for n in data.notes_of(checklist.NOTE_KIND) if n["key"] == study_id])


def fields_of(study: Study) -> Fields | None:
    """The signature fields (descriptions, units) of the phenomenon or study that recorded `study`."""
    from phenolab.reproduction import reproducible

    if study.kind != "phenomenon" or not study.phenomenon:
        return None
    try:
        return reproducible(study.phenomenon).fields(study.setting_name or "")
    except SettingError:  # a phenomenon this installation lacks (a plug-in's), or a setting it no longer has
        return None


def canonical_of(study: Study) -> dict[str, str] | None:
    """The canonical setting a phenomenon study ran: its source, what it is, what it published."""
    from phenolab.phenomena import PHENOMENA

    ph = PHENOMENA.get(study.phenomenon or "") if study.kind == "phenomenon" else None
    canon = next((c for c in ph.canonical if c.name == study.setting_name), None) if ph else None
    if canon is None:
        return None
    return {"name": canon.name, "source": canon.source, "description": canon.description,
            "published": canon.published}


def checklist_context(answers: dict[str, dict[str, Any]],
                      evidence: dict[str, list[dict[str, str]]] | None = None) -> dict[str, Any]:
    """The checklist as a study page shows it: the questions answered (with the answer and, where an
    audit bears on them, its rows), those an audit pre-fills for the researcher to confirm (not
    counted as answered), and the rest, grouped by phase and category, collapsed on the page."""
    from phenolab.report.studies import fmt_time

    evidence = evidence or {}
    answered, prefilled, phases = [], [], []
    for phase, cats in checklist.grouped():
        open_cats = []
        for cat, questions in cats:
            rest = []
            for q in questions:
                item = {"id": q.id, "text": q.text, "phase": phase, "category": cat,
                        "answer": answers.get(q.id, {}).get("answer"), "evidence": evidence.get(q.id, []),
                        "when": fmt_time(answers[q.id]["created"]) if q.id in answers else ""}
                if item["answer"]:
                    answered.append(item)
                elif item["evidence"]:
                    prefilled.append(item)
                else:
                    rest.append(item)
            if rest:
                open_cats.append({"category": cat, "questions": rest})
        if open_cats:
            phases.append({"phase": phase, "categories": open_cats})
    return {"answered": answered, "prefilled": prefilled, "unanswered": phases, "confirm": CONFIRM,
            "n_unanswered": sum(len(c["questions"]) for p in phases for c in p["categories"])}


def study_row(data: ReportData, study: Study) -> dict[str, Any]:
    """A study as one row of the index."""
    wanted = set(study.seeds)
    seeds = sorted({s for sid in study.setting_ids for s in data.seeds(sid) if not wanted or s in wanted})
    return {"id": study.id, "slug": study.slug, "kind": study.kind, "title": study.title,
            "phenomenon": study.phenomenon, "seeds": seeds_text(seeds), "n_seeds": len(seeds),
            "n_settings": len(study.setting_ids),
            "n_runs": sum(data.n_runs(sid, study.seeds) for sid in study.setting_ids),
            "answered": len(answers_for(data, study.id)), "questions": len(checklist.QUESTIONS)}
