"""`phenolab report`: a static HTML site of the catalog that opens from disk (no server, no scripts).

Pages are rendered with Jinja2 with autoescaping on for every template, so anything a user typed
(setting values, metric names, notes, hypothesis text, checklist answers) reaches the page only
as text; a Content-Security-Policy that allows no scripts backs this up. Figures are copied (or
drawn from the catalog's curves) next to the pages and linked relatively, so the folder can be
moved, zipped or served as it is.

The site is built from one snapshot of the catalog and incrementally (`incremental.py`): each
page and figure is keyed by a digest of the rows it shows, and only those whose key changed are
made again. Pages: the index (one card per registered phenomenon, then the studies, phase diagrams,
and the settings no study holds, grouped into families), one page per phenomenon study (with the
audit of its setting, if any), one per phase diagram, one per setting that belongs to no study
(every setting with `setting_pages`), and the hypotheses (each evaluation with a figure of M
against T over the runs it read). The folder is remembered, so commands that add runs refresh it
(`freshness.py`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from phenolab.catalog import Catalog, CatalogError
from phenolab.phenomena import PHENOMENA
from phenolab.report.audits import Audits
from phenolab.report.cards import phenomenon_cards
from phenolab.report.data import ReportData, digest, read_report_data
from phenolab.report.hypotheses import RUN_SETS, HypothesisView, hypothesis_views, verdict_class
from phenolab.report.hypothesis_plots import LABELS, measure_target_figure, setting_of
from phenolab.report.incremental import MARKER, Output, Previous, Staging
from phenolab.report.pages import fields_of, study_context, study_row
from phenolab.report.phases import phase_view
from phenolab.report.studies import (
    Study,
    fmt,
    fmt_time,
    phase_studies,
    setting_families,
    setting_studies,
    signature_studies,
)
from phenolab.report.tournaments import tournament_figures, tournament_ids, tournament_outputs

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".svg")
STANDARD = ("train_acc", "test_acc", "train_loss", "test_loss")
_CODE = Path(__file__).parent


@dataclass
class BuildResult:
    index: Path
    written: list[str]  # files made anew (the others were kept as they were)
    files: int  # files in the site


def build_site(catalog: Catalog, out: str | Path | None = None, *, max_figures: int = 200,
               setting_pages: bool = False, rebuild: bool = False) -> Path:
    """Render the report of `catalog` into `out` (default: CATALOG_DIR/report); returns index.html."""
    return build_report(catalog, out, max_figures=max_figures, setting_pages=setting_pages, rebuild=rebuild).index


def build_report(catalog: Catalog, out: str | Path | None = None, *, max_figures: int = 200,
                 setting_pages: bool = False, rebuild: bool = False, new_figures: int | None = None) -> BuildResult:
    """`build_site`, saying which files were made anew. `out` holds the previous report or the new
    one at every moment; an existing `out` that is not a phenolab report is refused. `rebuild`
    makes every file again; `setting_pages` writes a page for every setting, not only for those
    that belong to no study (or have checklist answers); `new_figures` caps the figures drawn that
    the last build did not draw (a refresh after a command stays quick; the next `phenolab report`
    draws the rest, and their pages say so meanwhile)."""
    if not catalog.path.is_file():
        raise CatalogError(f"no catalog at {catalog.path}; train runs first (e.g. `phenolab demo`)")
    target = Path(out) if out is not None else catalog.root / "report"
    if target.exists() and (not target.is_dir() or (any(target.iterdir()) and not (target / MARKER).is_file())):
        raise CatalogError(f"--out {target}: exists and is not a phenolab report; give a new or empty folder")
    with catalog.snapshot() as snap:
        site = _Site(read_report_data(snap), str(catalog.path), max_figures, setting_pages,
                     refresh_command(catalog, target), new_figures)
        result = site.build(target, Previous(target, rebuild))
    from phenolab.report.freshness import remember

    remember(catalog, target)
    return result


def refresh_command(catalog: Catalog, target: Path) -> str:
    """The command that brings this report up to date, as a page's footer gives it."""
    args = ["phenolab", "report", "--catalog", str(catalog.root)]
    if target.absolute() != (catalog.root / "report").absolute():
        args += ["--out", str(target.absolute())]
    return shlex.join(args)


@dataclass
class _Figure:
    name: str  # path in the site
    key: str
    make: Callable[[Path], bool]  # writes the file; False when there is nothing to show
    drawn: bool = True  # drawn from curves (False: a recorded file, copied)


@dataclass
class _Site:
    data: ReportData
    catalog_path: str
    max_figures: int
    setting_pages: bool
    refresh: str = "phenolab report"
    new_figures: int | None = None  # draw at most this many figures the last build did not
    figures: list[_Figure] = field(default_factory=list)
    deferred: set[str] = field(default_factory=set)  # figures left for the next full build
    images: dict[str, list[str]] = field(default_factory=dict)  # page slug -> its figures, in order

    def __post_init__(self) -> None:
        from phenolab import __version__

        self.version = __version__
        self.code = digest(__version__, self.catalog_path, self.refresh, _code_digest())
        self.studies = signature_studies(self.data)
        self.phases = phase_studies(self.data)
        audits = Audits(self.data)
        self.audit_of = {s.id: audits.of(s) for s in self.studies}
        self.audited = {sid: s.slug for s in self.studies for note in [self.audit_of[s.id]] if note is not None
                        for sid in audits.settings(note, s.quick)}  # folded into the study, like a sweep's points
        in_study = {sid for s in self.studies + self.phases for sid in s.setting_ids} | set(self.audited)
        answered = {n["key"] for n in self.data.notes_of("checklist")}
        own = [sid for sid in self.data.settings if self.setting_pages or sid not in in_study or sid in answered]
        self.own_pages = setting_studies(self.data, own)
        self.hyps = [h for h in hypothesis_views(self.data) if h.id not in tournament_ids(self.data)]
        self.holder: dict[str, Study] = {}  # setting id -> the page that lists its runs
        for s in self.phases + self.studies + self.own_pages:  # own pages win, then studies
            self.holder.update({sid: s for sid in s.setting_ids})
        self._plan_figures()

    # ---- figures ------------------------------------------------------------------------------
    def _plan_figures(self) -> None:
        budget = self.max_figures
        for recorded, stem in tournament_figures(self.data):  # tournaments.html
            self._copy(recorded, stem, "tournaments")
        for h in self.hyps:  # first: a verdict without its figure is harder to read than a setting without curves
            for k, ev in enumerate(h.evaluations):
                if ev.runs and h.measure and h.target and h.measure != h.target and budget > 0:
                    budget -= 1
                    self._draw_hypothesis(h, k, ev.runs)
        for study in self.studies + self.own_pages:
            if self._copy(study.figure, f"{study.slug}-recorded", study.slug):
                continue
            if not any(self.data.runs.get(sid) for sid in study.setting_ids):
                continue
            for measures in (False, True) if study.kind == "setting" else (False,):
                if budget <= 0:
                    break
                budget -= 1
                self._draw(study, measures)
        for study in self.phases:
            self._copy(study.figure, study.slug, study.slug)

    def _copy(self, recorded: str | None, stem: str, slug: str) -> bool:
        """A figure recorded in a note, copied next to the pages (keyed by its bytes)."""
        if not recorded:
            return False
        src = Path(recorded)
        for cand in (src, Path(self.catalog_path).parent / "figures" / src.name):
            if cand.suffix.lower() in IMAGE_SUFFIXES and cand.is_file():
                data = cand.read_bytes()
                name = f"figures/{stem}{cand.suffix.lower()}"

                def write(dest: Path, data: bytes = data) -> bool:
                    dest.write_bytes(data)
                    return True

                self.figures.append(_Figure(name, hashlib.sha256(data).hexdigest()[:32], write, drawn=False))
                self.images.setdefault(slug, []).append(name)
                return True
        return False

    def _draw(self, study: Study, measures: bool) -> None:
        """Curves (or the recorded measures) as mean ± sd over seeds, drawn from the catalog."""
        name = f"figures/{study.slug}-{'measures' if measures else 'curves'}.png"
        title = "recorded measures" if measures else study.title
        seeds = study.seeds if study.kind == "phenomenon" else None
        key = digest(self.version, title, measures, seeds, self.data.rows_digest(study.setting_ids))

        def make(dest: Path) -> bool:
            from phenolab.figures import curves_figure

            runs = [r[0] for sid in study.setting_ids for r in self.data.runs.get(sid, [])
                    if not seeds or r[2] in set(seeds)]
            curves = self.data.catalog.curves(run_ids=runs)  # through the snapshot
            if curves.empty:
                return False
            panels = tuple((m,) for m in sorted(set(curves["metric"])) if m not in STANDARD)[:4] if measures else None
            if measures and not panels:
                return False
            try:
                curves_figure(curves, dest, title=title, **({"panels": panels} if panels else {}))
            except ValueError:  # no curves of the plotted kinds
                return False
            return True

        self.figures.append(_Figure(name, key, make))
        self.images.setdefault(study.slug, []).append(name)

    def _draw_hypothesis(self, h: HypothesisView, k: int, runs: dict[str, list[str]]) -> None:
        """M against T over the runs an evaluation read (`hypothesis_plots`)."""
        name, slug = f"figures/{h.anchor}-{k}.png", f"{h.anchor}-{k}"
        sids = sorted({setting_of(r) for ids in runs.values() for r in ids})
        key = digest(self.version, "hypothesis", h.measure, h.target, h.over, runs, self.data.rows_digest(sids))

        def make(dest: Path) -> bool:
            ids = [r for group in runs.values() for r in group]
            curves = self.data.catalog.curves(run_ids=ids, metrics=[h.measure, h.target])  # through the snapshot
            return measure_target_figure(curves, h.measure, h.target, runs, h.over, dest, h.name or h.id)

        self.figures.append(_Figure(name, key, make))
        self.images.setdefault(slug, []).append(name)

    # ---- pages --------------------------------------------------------------------------------
    def outputs(self, made: dict[str, bool]) -> list[Output]:
        """Every file of the site but the figures, with its key."""
        env = _environment()
        common = {"catalog": self.catalog_path, "version": self.version, "refresh": self.refresh}
        data = self.data

        def page(template: str, **context: Any) -> Callable[[Path], None]:
            return _page(env, template, common, lambda: context)

        def images(slug: str) -> list[str]:
            return [n for n in self.images.get(slug, []) if made.get(n)]

        css = (_CODE / "templates" / "style.css").read_bytes()
        outs = [Output("style.css", digest(css), lambda dest: dest.write_bytes(css))]
        for sid, row in data.settings.items():
            outs.append(Output(f"settings/{sid}.json", digest("json", row.json), _setting_file(row.json)))
        checklists = {}
        for note in data.notes_of("checklist"):
            checklists.setdefault(note["key"], []).append(note["id"])
        for study in self.studies + self.own_pages:
            audit = self.audit_of.get(study.id)
            deferred = any(n in self.deferred for n in self.images.get(study.slug, []))
            key = digest(self.code, "study", study.kind, study.note_id, data.rows_digest(study.setting_ids),
                         checklists.get(study.id), images(study.slug), audit["id"] if audit else None, deferred)

            def context(s: Study = study, a: dict[str, Any] | None = audit, d: bool = deferred) -> dict[str, Any]:
                return {"page": {**study_context(data, s, images(s.slug), a), "deferred": d}}  # only if written

            outs.append(Output(f"{study.slug}.html", key, _page(env, "study.html", common, context)))
        phases = []
        for study in self.phases:
            figure = next(iter(images(study.slug)), None)
            view = phase_view(data, study, figure)
            phases.append(view)
            outs.append(Output(f"{study.slug}.html", digest(self.code, "phase", study.note_id, view),
                               page("phase.html", phase=view)))
        hyps = [self._hypothesis(h, images) for h in self.hyps]
        hyp_key = digest(self.code, "hypotheses", json.dumps(hyps, sort_keys=True, default=str))
        outs.append(Output("hypotheses.html", hyp_key, page("hypotheses.html", hypotheses=hyps)))
        outs += tournament_outputs(data, env, common, self.code, images)
        index = self._index(phases, images)
        outs.append(Output("index.html", digest(self.code, "index", json.dumps(index, sort_keys=True, default=str)),
                           page("index.html", **index)))
        return outs

    def _hypothesis(self, h: HypothesisView, images: Callable[[str], list[str]]) -> dict[str, Any]:
        """A hypothesis as its section of the page shows it: each evaluation with its figure and the
        runs behind its tests, each linked to the page that lists it."""
        evaluations = []
        for k, ev in enumerate(h.evaluations):
            runs = [{"group": g, "label": LABELS.get(g, g), "runs": [self._run_link(r) for r in ids]}
                    for g, ids in ev.runs.items()]
            counts = {g: len(ids) for g, ids in ev.runs.items()}
            tests = [{**dataclasses.asdict(t), "runs": "" if t.status in ("not_run", "not recorded") else
                      ", ".join(f"{counts[g]} {LABELS.get(g, g)}" for g in RUN_SETS.get(t.name, ()) if g in counts)}
                     for t in ev.tests]
            evaluations.append({**dataclasses.asdict(ev), "tests": tests, "run_sets": runs,
                                "figure": next(iter(images(f"{h.anchor}-{k}")), None), "anchor": f"{h.anchor}-{k}"})
        return {**{f.name: getattr(h, f.name) for f in dataclasses.fields(h) if f.name != "evaluations"},
                "anchor": h.anchor, "verdict": h.verdict, "evaluations": evaluations}

    def _run_link(self, run_id: str) -> dict[str, Any]:
        """A run and the page that lists it (a study's or setting's row; a phase diagram's page)."""
        sid = setting_of(run_id)
        holder = self.holder.get(sid)
        if holder is None:
            audited = self.audited.get(sid)  # a control of an audit: the study page's audit table
            return {"id": run_id, "href": f"{audited}.html#audit" if audited else None}
        return {"id": run_id, "href": f"{holder.slug}.html" + ("" if holder.kind == "phase" else f"#run-{run_id}")}

    def _index(self, phases: list[dict[str, Any]], images: Callable[[str], list[str]]) -> dict[str, Any]:
        data = self.data
        hyps = self.hyps
        studies = [study_row(data, s) for s in self.studies]
        own = {s.id: s.slug for s in self.own_pages}
        in_study = {sid for s in self.studies + self.phases for sid in s.setting_ids} | set(self.audited)
        lone = [sid for sid in data.settings if sid not in in_study or sid in own]
        cards = phenomenon_cards(PHENOMENA, self.studies, self.phases, hyps, images, fields_of)
        return {
            "cards": cards, "studies": studies,
            "phases": [{k: v for k, v in p.items() if k not in ("rows", "links", "columns")} for p in phases],
            "families": setting_families(data, lone, own), "n_settings": len(data.settings),
            "n_in_studies": len(in_study & set(data.settings)), "setting_pages": self.setting_pages,
            "n_runs": sum(len(r) for r in data.runs.values()), "n_hypotheses": len(hyps),
            "n_refuted": sum(verdict_class(h.verdict) == "refuted" for h in hyps),
        }

    # ---- the build ----------------------------------------------------------------------------
    def build(self, target: Path, previous: Previous) -> BuildResult:
        made = {f.name: previous.figure(f.name, f.key) for f in self.figures}
        if self.new_figures is not None:  # beyond the cap, new drawings wait (not recorded: the next build makes them)
            todo = [f.name for f in self.figures if f.drawn and made[f.name] is None]
            self.deferred = set(todo[self.new_figures:])
            self.figures = [f for f in self.figures if f.name not in self.deferred]
            made = {n: m for n, m in made.items() if n not in self.deferred}
        outs: list[Output] | None = None
        if all(m is not None for m in made.values()):  # every figure as it was: maybe nothing changed
            outs = self.outputs({k: bool(v) for k, v in made.items()})
            names = {o.name for o in outs} | {n for n, m in made.items() if m}
            if all(previous.current(o.name, o.key) for o in outs) and previous.exactly(names):
                return BuildResult(target / "index.html", [], len(names))
        staging = Staging(target, previous, {"catalog": self.catalog_path, "max_figures": self.max_figures,
                                             "setting_pages": self.setting_pages})
        try:
            done = {f.name: staging.figure(f.name, f.key, f.make) for f in self.figures}
            if outs is None or done != made:  # a figure that could not be made changes its page
                outs = self.outputs(done)
            for out in outs:
                staging.add(out)
            staging.commit()
        except BaseException:
            staging.discard()
            raise
        return BuildResult(target / "index.html", staging.written, len(staging.files))


def _page(env: jinja2.Environment, template: str, common: dict[str, Any],
          context: Callable[[], dict[str, Any]]) -> Callable[[Path], None]:
    """Writes a page; its context is computed only then (a study page's commands are not cheap)."""
    def write(dest: Path) -> None:
        html = env.get_template(template).render(**context(), **common, built=fmt_time(time.time()))
        dest.write_text(html, encoding="utf-8")
    return write


def _setting_file(text: str) -> Callable[[Path], None]:
    def write(dest: Path) -> None:
        dest.write_text(json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n")
    return write


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


_CODE_DIGEST: list[str] = []


def _code_digest() -> str:
    """Digest of the report's own code and templates: a change to either remakes every page."""
    if not _CODE_DIGEST:
        files = sorted([*_CODE.glob("*.py"), *(_CODE / "templates").glob("*")])
        _CODE_DIGEST.append(digest([(f.name, hashlib.sha256(f.read_bytes()).hexdigest()) for f in files]))
    return _CODE_DIGEST[0]


__all__ = ["MARKER", "BuildResult", "build_report", "build_site", "refresh_command"]
