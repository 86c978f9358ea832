"""`phenolab sweep`: factor grids × seeds, resumable, local or Ray."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text

from phenolab.cli import _interrupt
from phenolab.cli._common import (
    CatalogOpt,
    JsonOpt,
    LogProgress,
    console,
    err_console,
    fail,
    log_progress_every,
    open_catalog,
    print_json,
    set_threads,
)
from phenolab.cli._report import refresh_report
from phenolab.cli._train import SetOpt, ThreadsOpt, device_option
from phenolab.engine.packing import part_differences
from phenolab.settings import Setting

GridOpt = Annotated[list[str] | None, typer.Option(
    "--grid", "-g", help="A factor: FIELD=v1,v2,… or FIELD=start:stop:num[:log] (repeatable; cartesian product).")]
ExecutorOpt = Annotated[str, typer.Option("--executor", help="local (this process) or ray (one Ray task per batch).")]
AddressOpt = Annotated[str | None, typer.Option("--address", help="Ray cluster address (default: RAY_ADDRESS, "
                                                "else a local Ray instance). Only with --executor ray.")]
CpusOpt = Annotated[float, typer.Option("--cpus-per-task", help="Ray: CPUs each batch task declares.")]
GpusOpt = Annotated[float | None, typer.Option("--gpus-per-task", help="Ray: GPUs each batch task declares "
                                               "(default 1 with --device cuda, else 0).")]
# Only the name is checked here: whether the device exists is checked where the runs train (a
# Ray worker's GPU need not be on the machine that plans the sweep; `sweep_runs` checks local).
DeviceOpt = Annotated[str, device_option("auto (CUDA when present), cpu or cuda[:N]; with --executor ray, "
                                         "as the workers see it.", available=False)]
MaxReplicasOpt = Annotated[int, typer.Option("--max-replicas", help="Most seeds trained together in one batch.")]


class RunsPerSecond(ProgressColumn):
    """Runs finished per second of wall time since the sweep started."""

    def render(self, task: Any) -> Text:
        elapsed = task.elapsed or 0.0
        speed = task.completed / elapsed if elapsed > 0 else 0.0
        return Text(f"{speed:.2f} runs/s", style="progress.data.speed")


def sweep_runs(settings: list[Setting], seeds: list[int], catalog: Any, *, executor: str = "local",
               address: str | None = None, device: str = "auto", cpus_per_task: float = 1.0,
               gpus_per_task: float | None = None, max_replicas: int = 64, quiet: bool = False):
    """Plan the missing runs, say so, train them under a progress bar; returns the SweepOutcome."""
    from phenolab.execute.sweep import EXECUTORS, plan_sweep, run_sweep

    if executor not in EXECUTORS:
        fail(f"--executor {executor!r}: allowed: {', '.join(EXECUTORS)}")
    if address is not None and executor != "ray":
        fail("--address is for --executor ray (the address of a running Ray cluster)")
    if executor == "local":
        from phenolab.engine import resolve_device

        resolve_device(device)  # a CUDA device this machine lacks: one line, before any run
    if not 1 <= max_replicas <= 100_000:
        fail(f"--max-replicas {max_replicas}: must be between 1 and 100000")
    batches, in_grid, stored = plan_sweep(settings, seeds, catalog, max_replicas)
    todo = sum(b.size for b in batches)
    work = _interrupt.work()
    work.start(catalog, todo)
    if not quiet:
        err_console.print(f"sweep: {len(settings)} setting(s) × {len(seeds)} seed(s) = {in_grid} runs; "
                          f"{stored} already in {catalog.path}; training {todo} in {len(batches)} batch(es) "
                          f"({executor})", highlight=False, soft_wrap=True)
    every = float("inf") if quiet else log_progress_every()
    progress: Progress | LogProgress = LogProgress(every, "runs") if every is not None else Progress(
        TextColumn("[bold]sweep"), BarColumn(), TextColumn("{task.completed:.0f}/{task.total:.0f} runs"),
        RunsPerSecond(), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
        console=err_console, transient=False,
    )
    with progress:
        task = progress.add_task("sweep", total=max(todo, 1))
        outcome = run_sweep(batches, catalog, executor=executor, address=address, device=device,
                            cpus_per_task=cpus_per_task, gpus_per_task=gpus_per_task,
                            on_runs=lambda done: progress.update(task, completed=done),
                            runs_in_grid=in_grid, already_stored=stored)
    if outcome.interrupted:
        work.reported = True
        err_console.print(
            f"[yellow]{work.what()}[/]: kept {len(outcome.written)} run(s) written by this sweep in "
            f"{escape(str(catalog.path))} (every finished batch; the catalog is consistent); lost "
            f"{outcome.remaining} run(s) not stored (the batch in training and those not started). Rerun the same "
            f"command to resume (stored runs are skipped): {escape(_interrupt.resume_command())}",
            highlight=False, soft_wrap=True)
    return outcome


def register(app: typer.Typer) -> None:
    @app.command()
    def sweep(
        base: Annotated[str | None, typer.Argument(help="Named setting (see `phenolab settings`) or a setting "
                                                   "file; may be left out with --file.")] = None,
        grid: GridOpt = None,
        set_: SetOpt = None,
        seeds: Annotated[str | None, typer.Option("--seeds", help="Seeds: N, 0-9, 0,3,5 (default 0-4, or the "
                                                  "sweep file's).")] = None,
        file: Annotated[Path | None, typer.Option("--file", "-f", help="Sweep file (YAML/TOML/JSON): base, set, "
                                                  "grid, seeds. Command-line --grid/--set add to it.")] = None,
        catalog: CatalogOpt = None,
        executor: ExecutorOpt = "local",
        address: AddressOpt = None,
        cpus_per_task: CpusOpt = 1.0,
        gpus_per_task: GpusOpt = None,
        max_replicas: MaxReplicasOpt = 64,
        device: DeviceOpt = "auto",
        threads: ThreadsOpt = None,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan; train nothing.")] = False,
        as_json: JsonOpt = False,
    ) -> None:
        """Train every grid point × seed the catalog lacks, as batched programs, with progress.

        Resumable: kill it at any moment and rerun the same command; finished batches are kept and
        only the rest is trained. Two sweeps may write one catalog at once; each run is stored once.
        """
        from phenolab.execute.grid import build_sweep_spec, sweep_points
        from phenolab.execute.sweep import plan_sweep

        spec = build_sweep_spec(base, file, grid or [], set_ or [], seeds)
        points = sweep_points(spec)
        settings = [p.setting for p in points]
        cat = open_catalog(catalog)
        if dry_run:
            batches, in_grid, stored = plan_sweep(settings, spec.seeds, cat, max_replicas)
            from phenolab.execute.estimate import plan_seconds, say_seconds

            seconds = plan_seconds(batches) if batches else 0.0
            plan = {"settings": len(settings), "seeds": len(spec.seeds), "runs_in_grid": in_grid,
                    "already_stored": stored, "to_train": in_grid - stored, "batches": len(batches),
                    "estimate_s": seconds,
                    "packed_widths": [[p.setting.model.width for p in b.parts] for b in batches if len(b.parts) > 1],
                    "shared_programs": [part_differences(b.parts) for b in batches if len(b.parts) > 1],
                    "grid": [{**p.overrides, "setting_id": p.setting.id} for p in points]}
            if as_json:
                print_json(plan)
            else:
                eta = f" ({say_seconds(seconds)} on this machine, modelled)" if batches and seconds is not None else ""
                console.print(f"{len(settings)} setting(s) × {len(spec.seeds)} seed(s) = {in_grid} runs; {stored} "
                              f"stored; {in_grid - stored} to train in {len(batches)} batch(es){eta}", highlight=False)
                for differences in plan["shared_programs"]:
                    varying = "; ".join(f"{f} {', '.join(map(str, v))}" for f, v in differences.items())
                    console.print(f"  one program for: {varying or 'equal settings'} (engine/packing.py; "
                                  "see docs/architecture.md)", highlight=False)
            return
        if executor == "local":
            set_threads(threads)
        outcome = sweep_runs(settings, spec.seeds, cat, executor=executor, address=address, device=device,
                             cpus_per_task=cpus_per_task, gpus_per_task=gpus_per_task, max_replicas=max_replicas)
        report = {"catalog": str(cat.path), "settings": len(settings), "seeds": spec.seeds,
                  "runs_in_grid": outcome.runs_in_grid, "already_stored": outcome.already_stored,
                  "trained": len(outcome.written), "stored_by_others": outcome.stored_by_others,
                  "remaining": outcome.remaining, "interrupted": outcome.interrupted,
                  "elapsed_s": round(outcome.elapsed_s, 3), "runs_per_s": round(outcome.runs_per_s, 3),
                  "executor": executor}
        if as_json:
            print_json(report)
        else:
            console.print(f"stored {len(outcome.written)} new run(s) in {outcome.elapsed_s:.1f} s "
                          f"({outcome.runs_per_s:.2f} runs/s); {outcome.already_stored} were already there, "
                          f"{outcome.stored_by_others} stored meanwhile by another writer; "
                          f"{outcome.remaining} remaining", highlight=False)
        refresh_report(cat, quiet=as_json)
        if outcome.interrupted:
            raise typer.Exit(130)
