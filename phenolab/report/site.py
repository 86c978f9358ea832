"""`phenolab report`: a static HTML site of the catalog that opens from disk (no server, no scripts).

Pages are rendered with Jinja2 with autoescaping on for every template, so anything a user typed
(setting values, metric names, notes, hypothesis text, checklist answers) reaches the page only
as text; a Content-Security-Policy that allows no scripts backs this up. Figures are copied (or
drawn from the catalog's curves) next to the pages and linked relatively, so the folder can be
moved, zipped or served as it is.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from phenolab.catalog import Catalog, CatalogError
from phenolab.phenomena import Fields
from phenolab.report import checklist
from phenolab.report.commands import reproduce_command, seeds_text, train_command
from phenolab.report.hypotheses import hypothesis_views, verdict_class
from phenolab.report.phases import phase_views
from phenolab.report.studies import (
    Study,
    fmt,
    fmt_time,
    runs_table,
    setting_studies,
    signature_studies,
    study_runs,
    summary_rows,
)
from phenolab.settings import SettingError

MARKER = ".phenolab-report"  # a folder holding this file may be replaced by a newer report
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".svg")
STANDARD = ("train_acc", "test_acc", "train_loss", "test_loss")


@dataclass
class _Figures:
    """Copies or draws figures into the site, up to a budget of drawn ones."""

    folder: Path
    catalog: Catalog
    budget: int
    drawn: int = 0

    def copy(self, recorded: str | None, name: str) -> str | None:
        if not recorded:
            return None
        src = Path(recorded)
        for cand in (src, self.catalog.root / "figures" / src.name):
            if cand.suffix.lower() in IMAGE_SUFFIXES and cand.is_file():
                dest = self.folder / f"{name}{cand.suffix.lower()}"
                shutil.copyfile(cand, dest)
                return f"figures/{dest.name}"
        return None

    def draw(self, curves: pd.DataFrame, name: str, title: str, measures: bool) -> str | None:
        """Train/test curves (or the recorded measures) as mean ± sd over seeds; None if nothing to draw."""
        from phenolab.figures import curves_figure

        if curves.empty or self.drawn >= self.budget:
            return None
        present = sorted(set(curves["metric"]))
        panels = tuple((m,) for m in present if m not in STANDARD)[:4] if measures else None
        if measures and not panels:
            return None
        try:
            kwargs = {"panels": panels} if panels else {}
            path = curves_figure(curves, self.folder / f"{name}.png", title=title, **kwargs)
        except ValueError:  # no curves of the plotted kinds
            return None
        self.drawn += 1
        return f"figures/{path.name}"


def build_site(catalog: Catalog, out: str | Path | None = None, *, max_figures: int = 200) -> Path:
    """Render the report of `catalog` into `out` (default: CATALOG_DIR/report); returns index.html.

    The site is built in a temporary folder and moved into place, so `out` holds either the
    previous report or the new one. An existing `out` that is not a phenolab report is refused.
    """
    if not catalog.path.is_file():
        raise CatalogError(f"no catalog at {catalog.path}; train runs first (e.g. `phenolab demo`)")
    target = Path(out) if out is not None else catalog.root / "report"
    if target.exists() and (not target.is_dir() or (any(target.iterdir()) and not (target / MARKER).is_file())):
        raise CatalogError(f"--out {target}: exists and is not a phenolab report; give a new or empty folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".report-", dir=target.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; a report is meant to be read and served
    try:
        _render(catalog, staging, max_figures)
        (staging / MARKER).write_text("built by `phenolab report`; this folder is replaced on the next build\n")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target / "index.html"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("phenolab.report", "templates"),
        autoescape=True,  # every template, whatever its name
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(fmt=fmt, fmt_time=fmt_time, verdict_class=verdict_class)
    return env


def _render(catalog: Catalog, site: Path, max_figures: int) -> None:
    from phenolab import __version__

    env = _environment()
    for sub in ("figures", "settings"):
        (site / sub).mkdir()
    shutil.copyfile(Path(__file__).with_name("templates") / "style.css", site / "style.css")
    settings = catalog.settings()
    setting_json = {row.setting_id: json.loads(row.json) for row in settings.itertuples(index=False)}
    for sid, data in setting_json.items():
        (site / "settings" / f"{sid}.json").write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    figures = _Figures(site / "figures", catalog, max_figures)
    studies = signature_studies(catalog) + setting_studies(catalog, settings)
    pages = [_study_page(catalog, s, setting_json, figures) for s in studies]
    common = {"catalog": str(catalog.path), "version": __version__, "built": fmt_time(time.time())}
    for page in pages:
        html = env.get_template("study.html").render(page=page, **common)
        (site / f"{page['slug']}.html").write_text(html, encoding="utf-8")
    hyps = hypothesis_views(catalog)
    (site / "hypotheses.html").write_text(
        env.get_template("hypotheses.html").render(hypotheses=hyps, **common), encoding="utf-8")
    index = env.get_template("index.html").render(
        phenomena=_phenomena_rows(settings, pages), pages=pages, settings=_settings_rows(settings, pages),
        phases=phase_views(catalog, figures.copy),
        n_runs=int(settings["runs"].sum()) if len(settings) else 0, n_hypotheses=len(hyps),
        n_refuted=sum(verdict_class(h.verdict) == "refuted" for h in hyps), **common)
    (site / "index.html").write_text(index, encoding="utf-8")


def _study_page(catalog: Catalog, study: Study, setting_json: dict[str, Any], figures: _Figures) -> dict[str, Any]:
    runs = study_runs(catalog, study)
    seeds = sorted(set(int(s) for s in runs["seed"])) if len(runs) else study.seeds
    cols, cells = runs_table(runs, multi_setting=len(study.setting_ids) > 1)
    images = []
    copied = figures.copy(study.figure, f"{study.slug}-recorded")
    if copied:
        images.append(copied)
    elif len(runs):
        curves = catalog.curves(run_ids=list(runs["run_id"]))
        for measures in (False, True) if study.kind == "setting" else (False,):
            drawn = figures.draw(curves, f"{study.slug}-{'measures' if measures else 'curves'}",
                                 "recorded measures" if measures else study.title, measures)
            if drawn:
                images.append(drawn)
    settings = []
    for sid in study.setting_ids:
        data = setting_json.get(sid)
        settings.append({
            "id": sid, "file": f"settings/{sid}.json", "missing": data is None,
            "json": json.dumps(data, indent=2, sort_keys=True) if data is not None else "",
            "commands": train_command(data, sid, seeds, f"settings/{sid}.json") if data is not None else [],
        })
    reproduce = None
    if study.kind == "phenomenon" and all(sid in setting_json for sid in study.setting_ids):
        reproduce = reproduce_command(study.phenomenon or "", study.setting_name or "", study.setting_ids,
                                      study.seeds, [setting_json[sid] for sid in study.setting_ids], study.options,
                                     study.overrides, study.quick)
    answers = checklist.recorded_answers(catalog, study.id)
    return {
        "id": study.id, "slug": study.slug, "kind": study.kind, "title": study.title, "note": study.note,
        "phenomenon": study.phenomenon, "setting_name": study.setting_name, "created": study.created,
        "seeds": seeds_text(seeds), "n_seeds": len(seeds), "images": images,
        "summary": summary_rows(study.summary, _fields(study)), "settings": settings, "reproduce": reproduce,
        "run_columns": cols, "run_cells": cells, "n_runs": len(runs),
        "checklist": _checklist(answers), "answered": len(answers), "questions": len(checklist.QUESTIONS),
        "expected_figure": bool(study.figure) or study.kind == "setting",
    }


def _fields(study: Study) -> Fields | None:
    """The signature fields (descriptions, units) of the phenomenon or study that recorded `study`."""
    from phenolab.reproduction import reproducible

    if study.kind != "phenomenon" or not study.phenomenon:
        return None
    try:
        return reproducible(study.phenomenon).fields(study.setting_name or "")
    except SettingError:  # a phenomenon this installation lacks (a plug-in's), or a setting it no longer has
        return None


def _checklist(answers: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"phase": phase, "categories": [
            {"category": cat, "questions": [
                {"id": q.id, "text": q.text, "answer": answers.get(q.id, {}).get("answer"),
                 "when": fmt_time(answers[q.id]["created"]) if q.id in answers else ""}
                for q in questions]}
            for cat, questions in cats]}
        for phase, cats in checklist.grouped()
    ]


def _phenomena_rows(settings: pd.DataFrame, pages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from phenolab.phenomena import PHENOMENA
    from phenolab.settings import named_setting

    runs_by_id = dict(zip(settings["setting_id"], settings["runs"], strict=True)) if len(settings) else {}
    slug = {p["id"]: p["slug"] for p in pages if p["kind"] == "setting"}
    rows = []
    for name in sorted(PHENOMENA):
        ph = PHENOMENA[name]
        canon = []
        for c in ph.canonical:
            sid = named_setting(c.name).id
            canon.append({"name": c.name, "id": sid, "runs": int(runs_by_id.get(sid, 0)), "slug": slug.get(sid),
                          "source": c.source, "published": c.published})
        studies = [p for p in pages if p["kind"] == "phenomenon" and p["phenomenon"] == name]
        rows.append({"name": name, "title": ph.title, "canonical": canon, "studies": studies,
                     "runs": sum(p["n_runs"] for p in studies)})
    return rows


def _settings_rows(settings: pd.DataFrame, pages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    slug = {p["id"]: p["slug"] for p in pages if p["kind"] == "setting"}
    return [{"id": r.setting_id, "task": r.task, "model": r.model, "runs": int(r.runs),
             "created": fmt_time(r.created), "slug": slug.get(r.setting_id)}
            for r in settings.itertuples(index=False)]
