"""What each page of the report shows, as the context its template renders: a study's page, a
phase diagram's page, the index. Everything comes from one `ReportData` (one catalog snapshot)."""

from __future__ import annotations

import json
from typing import Any

from phenolab.phenomena import Fields
from phenolab.report import checklist
from phenolab.report.commands import reproduce_command, seeds_text, train_command
from phenolab.report.data import ReportData
from phenolab.report.studies import Study, final_summary, runs_table, study_runs, summary_rows
from phenolab.settings import SettingError

MAX_RUN_ROWS = 1000  # a study page lists at most this many runs (a phase grid's are on its cells)
MAX_SETTING_SECTIONS = 60  # beyond this, a study's settings are one table, each linked to its JSON


def study_context(data: ReportData, study: Study, images: list[str]) -> dict[str, Any]:
    """A phenomenon study's or a setting's page."""
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
    return {
        "id": study.id, "slug": study.slug, "kind": study.kind, "title": study.title, "note": study.note,
        "phenomenon": study.phenomenon, "setting_name": study.setting_name, "created": study.created,
        "seeds": seeds_text(seeds), "n_seeds": len(seeds), "images": images,
        "summary": summary_rows(final_summary(runs) if study.kind == "setting" else study.summary, fields_of(study)),
        "settings": settings, "compact": compact,
        "reproduce": reproduce, "run_columns": cols, "run_cells": cells, "n_runs": len(runs),
        "runs_left_out": len(runs) - len(shown), "checklist": checklist_context(answers), "answered": len(answers),
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


def checklist_context(answers: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    from phenolab.report.studies import fmt_time

    return [
        {"phase": phase, "categories": [
            {"category": cat, "questions": [
                {"id": q.id, "text": q.text, "answer": answers.get(q.id, {}).get("answer"),
                 "when": fmt_time(answers[q.id]["created"]) if q.id in answers else ""}
                for q in questions]}
            for cat, questions in cats]}
        for phase, cats in checklist.grouped()
    ]


def study_row(data: ReportData, study: Study) -> dict[str, Any]:
    """A study as one row of the index."""
    wanted = set(study.seeds)
    seeds = sorted({s for sid in study.setting_ids for s in data.seeds(sid) if not wanted or s in wanted})
    return {"id": study.id, "slug": study.slug, "kind": study.kind, "title": study.title,
            "phenomenon": study.phenomenon, "seeds": seeds_text(seeds), "n_seeds": len(seeds),
            "n_settings": len(study.setting_ids),
            "n_runs": sum(data.n_runs(sid, study.seeds) for sid in study.setting_ids),
            "answered": len(answers_for(data, study.id)), "questions": len(checklist.QUESTIONS)}


def phenomena_rows(data: ReportData, studies: list[dict[str, Any]], links: dict[str, str]) -> list[dict[str, Any]]:
    """Every registered phenomenon: its canonical settings (runs of each exact setting, where they are
    shown) and the studies recorded of it."""
    from phenolab.phenomena import PHENOMENA
    from phenolab.settings import named_setting

    rows = []
    for name in sorted(PHENOMENA):
        ph = PHENOMENA[name]
        canon = []
        for c in ph.canonical:
            sid = named_setting(c.name).id
            canon.append({"name": c.name, "id": sid, "runs": data.n_runs(sid), "href": links.get(sid),
                          "source": c.source, "published": c.published})
        mine = [s for s in studies if s["kind"] == "phenomenon" and s["phenomenon"] == name]
        rows.append({"name": name, "title": ph.title, "canonical": canon, "studies": mine,
                     "runs": sum(s["n_runs"] for s in mine)})
    return rows
