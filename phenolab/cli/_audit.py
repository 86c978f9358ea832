"""`phenolab audit PHENOMENON`: does the phenomenon survive another metric, another initialization
scale, regularization, and the variations it has been claimed for? One row per control, measured
(`phenolab.studies.audit`); the audit is kept in the catalog as a note of kind "audit"."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from phenolab.cli._common import (
    CatalogOpt,
    JsonOpt,
    console,
    open_catalog,
    print_json,
    set_threads,
)
from phenolab.cli._phenomenon_commands import (
    command,
    given_options,
    group,
    option_parameters,
    parameter,
    setting_parameter,
)
from phenolab.cli._reproduce import WIDE, DryRunOpt, QuickOpt, announce_plan
from phenolab.cli._tables import fitted_table
from phenolab.cli._train import DeviceOpt, SetOpt, ThreadsOpt, train_missing
from phenolab.phenomena import Phenomenon, Trainer
from phenolab.settings import parse_assignments

SeedsOpt = Annotated[str, typer.Option("--seeds", help="Seeds: N (⇒ 0..N-1) or a range like 0-4.")]


def size_text(size: dict[str, Any] | None) -> str:
    if not size or size.get("mean") is None:
        return ""
    return f"{size['mean']:.3g} ± {size['sd'] or 0:.2g} (n={size.get('n')})"


def run_audit(ph: Phenomenon, *, setting: str | None = None, seeds: str = "3", quick: bool = False,
              set_: list[str] | None = None, catalog: Any = None, device: str = "auto", threads: int | None = None,
              as_json: bool = False, dry_run: bool = False, **flags: Any) -> None:
    from phenolab.reproduction import plan_summary, seed_list
    from phenolab.studies.audit import audit_note, plan_audit, read_audit, train_audit

    name = ph.default_setting if setting is None else setting
    ph.canonical_setting(name)
    plan = plan_audit(ph, name, seed_list(seeds), parse_assignments(set_ or []), quick,
                      ph.parse_options(given_options(flags)))
    cat = open_catalog(catalog)
    summary = {"phenomenon": ph.name, "setting": name, "controls": len(plan.controls),
               **plan_summary([s for st in plan.studies() for s in st.settings], plan.base.seeds, cat)}
    if announce_plan(summary, dry_run, as_json):
        return
    set_threads(threads)
    train_audit(plan, Trainer(cat, lambda settings, seeds_: train_missing(settings, seeds_, cat, device), device))
    rows = read_audit(plan, cat)
    note = audit_note(plan, rows)
    key = f"{ph.name}:{name}:{plan.base.settings[0].id}:{','.join(map(str, plan.base.seeds))}"
    cat.add_note("audit", key, note)
    if as_json:
        print_json(note)
        return
    cells = [{"control": f"{r.control.kind}: {r.control.label}", "outcome": r.outcome,
              "size": size_text(r.reading.size), "change": r.change, "detail": r.reading.detail} for r in rows]
    title = f"audit · {ph.name} · {name} · size = {plan.spec.size_name} (mean ± sd over seeds)"
    wide = console.width >= WIDE
    columns = ["control", "outcome", "size", "change", *(["detail"] if wide else [])]
    console.print(fitted_table(title, columns, cells, console.width, flexible=("control", "detail")),
                  highlight=False)
    if not wide:  # the details below the table, one per row, so nothing in it is cut
        for cell in cells:
            if cell["detail"]:
                console.print(f"  {cell['control']}: {cell['detail']}", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    from phenolab.phenomena import PHENOMENA

    sub = group("Audit a phenomenon against the confounds of the position paper's Table 1: another metric, "
                "another initialization scale, regularization (weight decay, optimal early stopping) and the "
                "variations it has been claimed for; one row per control, each measured: survives, weakens "
                "(by how much) or vanishes.")
    for ph in PHENOMENA.values():
        params = [*setting_parameter(ph), parameter("seeds", SeedsOpt, "3"), parameter("quick", QuickOpt, False),
                  parameter("set_", SetOpt), *option_parameters(ph), parameter("catalog", CatalogOpt),
                  parameter("device", DeviceOpt, "auto"), parameter("threads", ThreadsOpt),
                  parameter("as_json", JsonOpt, False), parameter("dry_run", DryRunOpt, False)]
        doc = f"Audit {ph.name}: {ph.title}."
        sub.command(ph.name, help=doc)(command(lambda p=ph, **kw: run_audit(p, **kw), params, doc))
    app.add_typer(sub, name="audit")
