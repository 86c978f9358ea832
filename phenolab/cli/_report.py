"""`phenolab report` and `phenolab checklist`: the catalog as a shared artifact (MLflow export: `_export`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from phenolab.cli._common import CatalogOpt, console, err_console, read_catalog


def study_ids(catalog) -> list[str]:
    """Every id `phenolab checklist` accepts: recorded phenomenon studies, then setting ids."""
    keys = list(dict.fromkeys(str(n["key"]) for n in catalog.notes("signature") if n["key"]))
    return keys + [str(s) for s in catalog.settings()["setting_id"]]


def resolve_study(catalog, study: str) -> str:
    """The study id named by `study` exactly, or by a unique prefix of one."""
    from phenolab.catalog import CatalogError

    ids = study_ids(catalog)
    if study in ids:
        return study
    matches = [i for i in ids if i.startswith(study)]
    if len(matches) == 1:
        return matches[0]
    shown = ", ".join(ids[:8]) + (f", … ({len(ids)} in all)" if len(ids) > 8 else "")
    what = "matches several studies" if matches else "is not a study in this catalog"
    raise CatalogError(f"STUDY {study!r} {what}; give a setting id or a study key: {shown or 'none yet'}")


def refresh_report(catalog, quiet: bool = False) -> None:
    """Bring every report of `catalog` up to date (`phenolab.report.freshness`), at the end of a command
    that added runs or verdicts; says so in one line (nothing with `--json`, whose stdout is the JSON).
    A report that cannot be refreshed is a warning, never the command's failure: its runs are stored."""
    from rich.markup import escape

    from phenolab.report.freshness import refresh_if_present

    try:
        done = refresh_if_present(catalog)
    except Exception as exc:  # noqa: BLE001 - the command's work is done; the report is a view of it
        why = (str(exc).splitlines() or [type(exc).__name__])[0]
        err_console.print(f"[yellow]warning:[/] report not refreshed ({escape(why)}); run `phenolab report "
                          f"--catalog {escape(str(catalog.root))}`", highlight=False, soft_wrap=True)
        return
    if not quiet:
        for index in done:
            console.print(f"report refreshed: {index}", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    @app.command()
    def report(
        catalog: CatalogOpt = None,
        out: Annotated[Path | None, typer.Option(help="Folder for the site (default: CATALOG_DIR/report).")] = None,
        max_figures: Annotated[int, typer.Option(help="Draw at most this many figures from curves.")] = 200,
        setting_pages: Annotated[bool, typer.Option("--setting-pages", help="A page for every setting, also those "
                                                    "a study or phase diagram holds.")] = False,
        rebuild: Annotated[bool, typer.Option("--rebuild", help="Make every page and figure again, not only "
                                              "those whose catalog rows changed.")] = False,
    ) -> None:
        """Write a static HTML report of the catalog (opens from disk): phenomena, studies with figures,
        signatures, exact settings and commands, catalog rows, phase diagrams, hypotheses and verdicts,
        checklists. Only the pages and figures whose catalog rows changed since the last build are made
        again."""
        from phenolab.execute.preflight import writable_folder
        from phenolab.report import build_report

        if out is not None:
            writable_folder(out, "--out")
        result = build_report(read_catalog(catalog), out, max_figures=max_figures, setting_pages=setting_pages,
                              rebuild=rebuild)
        console.print(f"report: {result.index}  ({len(result.written)} of {result.files} files made anew)",
                      highlight=False, soft_wrap=True)

    @app.command()
    def checklist(
        study: Annotated[str | None, typer.Argument(help="Setting id or study key (see `phenolab report`'s "
                                                    "index); a unique prefix is enough.")] = None,
        file: Annotated[Path | None, typer.Option("--file", "-f", help="YAML answers: 'QUESTION_ID: answer' "
                                                  "(ids from --list).")] = None,
        list_: Annotated[bool, typer.Option("--list", help="Print the questions and their ids, then stop.")] = False,
        catalog: CatalogOpt = None,
    ) -> None:
        """Answer the position paper's self-evaluation checklist (its Table 1) for a study; an empty answer
        skips a question. Answers are appended to the catalog and shown in the report."""
        from rich.markup import escape

        from phenolab.report.checklist import QUESTIONS, load_answers_file, record_answers, recorded_answers

        if list_:
            for q in QUESTIONS:
                console.print(f"[bold]{q.id:<16}[/] {q.text}", highlight=False, soft_wrap=True)
            return
        if study is None:
            from phenolab.settings import SettingError

            raise SettingError("STUDY: give a setting id or study key (or --list to see the questions)")
        cat = read_catalog(catalog)
        sid = resolve_study(cat, study)
        before = recorded_answers(cat, sid)
        if file is not None:
            answers = load_answers_file(file)
        else:
            answers = {}
            phase = category = ""
            console.print(f"Self-evaluation checklist for [bold]{escape(sid)}[/] (Table 1 of Jeffares & van der "
                          "Schaar 2025). Type an answer, or press Enter to skip a question.", highlight=False)
            for q in QUESTIONS:
                if q.phase != phase:
                    phase = q.phase
                    console.print(f"\n[bold underline]{phase}[/]", highlight=False)
                if q.category != category:
                    category = q.category
                    console.print(f"[bold]{category}[/]", highlight=False)
                console.print(f"  [dim]{q.id}[/] {escape(q.text)}", highlight=False, soft_wrap=True)
                if q.id in before:
                    console.print(f"  [dim]current answer: {escape(before[q.id]['answer'])}[/]", highlight=False,
                                  soft_wrap=True)
                text = typer.prompt("  >", default="", show_default=False, prompt_suffix=" ")
                if text.strip():
                    answers[q.id] = text.strip()
        if not answers:
            console.print(f"no answers given; nothing stored for {sid}", highlight=False)
            return
        record_answers(cat, sid, answers)
        total = len(recorded_answers(cat, sid))
        console.print(f"stored {len(answers)} answer(s) for {sid}; {total} of {len(QUESTIONS)} questions answered",
                      highlight=False)
