"""`phenolab phase PHENOMENON`: a signature field over two --grid factors (heat map + CSV).

One subcommand per registered phenomenon, with its settings and options as flags; each cell is
the phenomenon's own study (`phenolab.studies.phase`), trained as one sweep.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from phenolab.cli._common import CatalogOpt, JsonOpt, console, open_catalog, print_json, set_threads
from phenolab.cli._phenomenon_commands import (
    command,
    given_options,
    group,
    option_parameters,
    parameter,
    setting_parameter,
)
from phenolab.cli._reproduce import DryRunOpt, print_plan
from phenolab.cli._sweep import AddressOpt, CpusOpt, DeviceOpt, ExecutorOpt, GpusOpt, GridOpt, sweep_runs
from phenolab.cli._train import SetOpt, ThreadsOpt
from phenolab.phenomena import Phenomenon, Trainer
from phenolab.settings import Setting

SeedsOpt = Annotated[str, typer.Option("--seeds", help="Seeds per cell: N (⇒ 0..N-1) or a range like 0-4.")]
QuickOpt = Annotated[bool, typer.Option("--quick", help="Each cell is the phenomenon's --quick study (as "
                                        "`reproduce --quick`: a shorter budget or grid where the source's is long).")]
OutOpt = Annotated[Path | None, typer.Option("--out", help="Directory for the PNG and CSV "
                                             "(default: CATALOG_DIR/figures).")]


def run_phase(ph: Phenomenon, *, grid: list[str] | None = None, setting: str | None = None, seeds: str = "3",
              metric: str | None = None, set_: list[str] | None = None, quick: bool = False, out: Path | None = None,
              catalog: Any = None, executor: str = "local", address: str | None = None, cpus_per_task: float = 1.0,
              gpus_per_task: float | None = None, device: str = "auto", threads: int | None = None,
              as_json: bool = False, dry_run: bool = False, **flags: Any) -> None:
    from phenolab.execute.grid import parse_grid_arg
    from phenolab.reproduction import seed_list
    from phenolab.settings import parse_assignments
    from phenolab.studies.phase import phase_cells, phase_field, phase_figure, phase_table, train_cells

    name = ph.default_setting if setting is None else setting
    ph.canonical_setting(name)
    seed_values = seed_list(seeds)
    field = phase_field(ph, metric, name)
    overrides = parse_assignments(set_ or [])
    options = ph.parse_options(given_options(flags))
    axes, cells = phase_cells(ph, name, overrides, [parse_grid_arg(g) for g in grid or []], seed_values, quick,
                              options)
    cat = open_catalog(catalog)
    if out is not None:
        from phenolab.execute.preflight import writable_folder

        writable_folder(out, "--out")
    if dry_run:
        from phenolab.reproduction import plan_summary

        settings = [s for c in cells for s in c.study.settings]
        print_plan({"phenomenon": ph.name, "setting": name, "cells": len(cells),
                    **plan_summary(settings, seed_values, cat)}, as_json)
        return
    if executor == "local":
        set_threads(threads)
    state: dict[str, Any] = {"trained": 0}

    def train_missing(settings: list[Setting], seeds_: list[int]) -> list[str]:
        outcome = sweep_runs(settings, seeds_, cat, executor=executor, address=address, device=device,
                             cpus_per_task=cpus_per_task, gpus_per_task=gpus_per_task)
        if outcome.interrupted:
            raise typer.Exit(130)
        state["trained"] += len(outcome.written)
        return outcome.written

    train_cells(ph, cells, Trainer(cat, train_missing, device))
    table = phase_table(cat, ph, axes, cells, field)
    key = hashlib.sha256(" ".join(c.study.settings[0].id for c in cells).encode()
                         + str(seed_values).encode()).hexdigest()[:8]
    folder = out or cat.root / "figures"
    stem = f"phase-{ph.name}-{name}-{field}-{key}"
    folder.mkdir(parents=True, exist_ok=True)
    csv = folder / f"{stem}.csv"
    table.to_csv(csv, index=False)
    fig = phase_figure(table, axes, folder / f"{stem}.png", title=f"{ph.name} · {name}")
    records = table.to_dict("records")  # NaN (no value) becomes null in the note and in --json
    cat.add_note("phase", f"{ph.name}:{name}:{field}:{key}", {
        "phenomenon": ph.name, "setting": name, "field": field, "seeds": seed_values, "quick": quick,
        "overrides": overrides, "options": options.model_dump(exclude_defaults=True),
        "axes": [[a.field, list(a.values)] for a in axes], "columns": [str(c) for c in table.columns],
        "table": records, "figure": str(fig), "csv": str(csv)})
    if as_json:
        print_json({"phenomenon": ph.name, "setting": name, "field": field, "trained": state["trained"],
                    "figure": str(fig), "csv": str(csv), "table": records})
        return
    console.print(_phase_rich_table(table, f"{ph.name} · {name} · {field} ({len(seed_values)} seed(s))"))
    console.print(f"trained {state['trained']} run(s); table: {csv}\nfigure: {fig}", highlight=False)


def _phase_rich_table(table: Any, title: str) -> Table:
    from phenolab.studies.phase import is_present

    out = Table(title=title)
    for col in table.columns:
        if col != "setting_id":
            out.add_column(str(col), justify="right")
    for row in table.drop(columns=["setting_id"]).itertuples(index=False):
        out.add_row(*("—" if not is_present(v) else f"{v:.3g}" if isinstance(v, float) else str(v) for v in row))
    return out


def register(app: typer.Typer) -> None:
    from phenolab.phenomena import PHENOMENA

    sub = group("Phase diagram: a signature field of a phenomenon over two --grid factors, averaged over seeds "
                "(heat map + CSV). Trains the missing runs first (as a sweep), then reads every cell's signature "
                "from the catalog.")
    metric_help = "Signature field to map (default: the phenomenon's{default}); `--metric x` lists the allowed ones."
    for ph in PHENOMENA.values():
        default = f", {ph.phase_default}" if ph.phase_default else ""
        params = [parameter("grid", GridOpt), *setting_parameter(ph), parameter("seeds", SeedsOpt, "3"),
                  parameter("metric", Annotated[str | None, typer.Option(
                      "--metric", help=metric_help.format(default=default))]),
                  parameter("set_", SetOpt), parameter("quick", QuickOpt, False), *option_parameters(ph),
                  parameter("out", OutOpt), parameter("catalog", CatalogOpt),
                  parameter("executor", ExecutorOpt, "local"), parameter("address", AddressOpt),
                  parameter("cpus_per_task", CpusOpt, 1.0), parameter("gpus_per_task", GpusOpt),
                  parameter("device", DeviceOpt, "auto"), parameter("threads", ThreadsOpt),
                  parameter("as_json", JsonOpt, False), parameter("dry_run", DryRunOpt, False)]
        doc = f"Phase diagram of {ph.name}: {ph.title}."
        sub.command(ph.name, help=doc)(command(lambda p=ph, **kw: run_phase(p, **kw), params, doc))
    app.add_typer(sub, name="phase")
