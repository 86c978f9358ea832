"""`phenolab reproduce PHENOMENON`: train (or reuse) a canonical study, then signature + figure.

One subcommand per registered phenomenon or study (`phenolab.reproduction.reproduce` is the same
call without the progress bar); its flags come from the phenomenon's options model.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from phenolab.cli._common import (
    CatalogOpt,
    JsonOpt,
    console,
    err_console,
    open_catalog,
    print_json,
    set_threads,
    training_progress,
)
from phenolab.cli._phenomenon_commands import (
    command,
    given_options,
    group,
    option_parameters,
    parameter,
    setting_parameter,
)
from phenolab.cli._report import refresh_report
from phenolab.cli._tables import fitted_table
from phenolab.cli._train import DeviceOpt, SetOpt, ThreadsOpt, train_missing
from phenolab.phenomena import Fields, Reproducible, RowTable, Trainer
from phenolab.settings import parse_assignments

if TYPE_CHECKING:
    from phenolab.reproduction import Reproduction

SeedsOpt = Annotated[str, typer.Option("--seeds", help="Seeds: N (⇒ 0..N-1) or a range like 0-9 or 0,3,5.")]
QuickOpt = Annotated[bool, typer.Option("--quick", help="A shorter budget where the source's is long (said on "
                                        "the figure and in the output).")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Check everything and print the plan (runs stored, runs "
                                         "to train); train nothing, write nothing.")]
WIDE = 110  # terminal columns from which the signature table shows each field's description


def signature_rows(summary: dict[str, Any], fields: Fields) -> list[dict[str, str]]:
    """The summary as text cells: mean ± sd fields as numbers, a count per category one per line."""
    rows = []
    for key, val in summary.items():
        f = fields.get(key)
        row = {"field": key, "mean": "", "sd": "", "n": "", "unit": f.unit if f else "",
               "meaning": f.description if f else ""}
        if isinstance(val, dict) and "mean" in val:
            row.update(mean="—" if val["mean"] is None else f"{val['mean']:.4g}",
                       sd="—" if val["sd"] is None else f"{val['sd']:.3g}", n=str(val["n"]))
        elif isinstance(val, dict):
            row["mean"] = "\n".join(f"{k}: {v}" for k, v in val.items())
        else:
            row["mean"] = str(val)
        rows.append(row)
    return rows


def signature_table(summary: dict[str, Any], fields: Fields, width: int) -> Table | str:
    """The summary, one row per field: mean, sd and n (or the value), its unit, and on a wide
    terminal what it means; ids and numbers are never cut or wrapped."""
    columns = ["field", "mean", "sd", "n", "unit", *(["meaning"] if width >= WIDE else [])]
    return fitted_table("signature (mean ± sd over seeds)", columns, signature_rows(summary, fields), width,
                        flexible=("unit", "meaning"))


def rows_table(rows: RowTable, width: int) -> Table | str:
    """A signature's extra table (e.g. one row per capacity), with the columns its rows have."""
    cols = [c for c in rows.columns if any(c in r for r in rows.rows)]
    cells = [{c: "" if r.get(c) is None else f"{r[c]:.3g}" if isinstance(r[c], float) else str(r[c]) for c in cols}
             for r in rows.rows]
    return fitted_table(rows.title, cols, cells, width)


def run_reproduce(rep: Reproducible, *, setting: str | None = None, seeds: str = "5", quick: bool = False,
                  set_: list[str] | None = None, catalog: Any = None, device: str = "auto",
                  threads: int | None = None, as_json: bool = False, dry_run: bool = False,
                  **flags: Any) -> Reproduction | None:
    from phenolab.reproduction import complete_reproduction, plan_reproduction, plan_summary

    rep, study = plan_reproduction(rep.name, setting, seeds, quick=quick, overrides=parse_assignments(set_ or []),
                                   options=given_options(flags))
    cat = open_catalog(catalog)
    plan = {"phenomenon": rep.name, "setting": study.setting_name, "note": study.note,
            **plan_summary(study.settings, study.seeds, cat)}
    if announce_plan(plan, dry_run, as_json):
        return None
    set_threads(threads)
    work = rep.staged_work(study)  # lottery rounds: trained in stages, under a bar of their own
    with training_progress(*work) if work else nullcontext() as progress:
        staged = None
        if work:
            task = progress.add_task(f"training {rep.name}", total=work[1], runs=0)

            def staged(steps: int, runs: int) -> None:
                progress.update(task, completed=steps, runs=runs)

        trainer = Trainer(cat, lambda settings, seeds_: train_missing(settings, seeds_, cat, device), device, staged)
        result = complete_reproduction(rep, study, cat, trainer)
    if as_json:
        print_json(result.to_json())
        refresh_report(cat, quiet=True)
        return result
    console.print(f"[bold]{rep.name}[/] · {study.setting_name}: {len(result.trained)} run(s) trained, "
                  f"the rest reused from {cat.path}", soft_wrap=True)
    if study.note:
        console.print(f"[yellow]{study.note}[/]")
    console.print(signature_table(result.signature.summary, result.fields, console.width), highlight=False)
    for rows in result.signature.tables:
        console.print(rows_table(rows, console.width), highlight=False)
    console.print(f"figure: {result.figure}", soft_wrap=True)
    refresh_report(cat)
    return result


def announce_plan(plan: dict[str, Any], dry_run: bool, as_json: bool) -> bool:
    """`--dry-run`: print the plan and say stop (True); otherwise say it on stderr before there is
    work to train (stdout stays the result)."""
    if dry_run:
        print_plan(plan, as_json)
        return True
    if plan["to_train"]:
        print_plan(plan, False, err_console)
    return False


def print_plan(plan: dict[str, Any], as_json: bool, out: Console = console) -> None:
    """The one-line plan (or JSON): what `--dry-run` prints, and what a run says before it trains."""
    if as_json:
        print_json(plan)
        return
    from phenolab.execute.estimate import say_seconds

    eta = say_seconds(plan.get("estimate_s")) if plan.get("to_train") else ""
    out.print(f"plan: {plan['phenomenon']} · {plan['setting']}: {plan['runs']} run(s) ({plan['settings']} "
                  f"setting(s) × {plan['seeds']} seed(s)); {plan['stored']} stored in {plan['catalog']}, "
                  f"{plan['to_train']} to train{f' ({eta} on this machine, modelled)' if eta else ''}",
              highlight=False, soft_wrap=True)
    if plan.get("note") and out is console:
        out.print(plan["note"], highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    from phenolab.phenomena import PHENOMENA
    from phenolab.studies import STUDIES

    sub = group("Reproduce a phenomenon: train its canonical study as batched programs (reusing runs the catalog "
                "has), then print its measured signature and save its figure. `phenolab reproduce NAME --help` "
                "lists a phenomenon's settings and options.")
    for rep in [*PHENOMENA.values(), *STUDIES.values()]:
        params = [*setting_parameter(rep),
                  parameter("seeds", SeedsOpt, "5"), parameter("quick", QuickOpt, False),
                  parameter("set_", SetOpt), *option_parameters(rep),
                  parameter("catalog", CatalogOpt), parameter("device", DeviceOpt, "auto"),
                  parameter("threads", ThreadsOpt), parameter("as_json", JsonOpt, False),
                  parameter("dry_run", DryRunOpt, False)]
        doc = f"{rep.title[:1].upper()}{rep.title[1:]}."
        sub.command(rep.name, help=doc)(command(lambda r=rep, **kw: run_reproduce(r, **kw), params, doc))
    app.add_typer(sub, name="reproduce")
