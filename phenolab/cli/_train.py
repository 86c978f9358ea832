"""`phenolab train`: any setting × seeds as one batched program, stored in the catalog."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from phenolab.cli import _interrupt
from phenolab.cli._common import (
    CatalogOpt,
    JsonOpt,
    console,
    err_console,
    print_json,
    set_threads,
    training_progress,
    writable_catalog,
)
from phenolab.cli._report import refresh_report
from phenolab.settings import Setting, SettingError, parse_assignments, parse_seeds, resolve_setting

SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", help="Override a field: FIELD=VALUE, e.g. model.width=128 (repeatable, each field "
                 "once)."),
]
SeedsOpt = Annotated[str, typer.Option("--seeds", help="Seeds: a range like 0-7, 0,3,5 or 0-3,10. A bare N is "
                                       "refused here for now (it once meant seed N; elsewhere it means N seeds).")]


def device_option(help_text: str, available: bool = True) -> typer.models.OptionInfo:
    """`--device`, checked before anything is read or written: a name torch does not know, or (with
    `available`) a CUDA device this machine lacks, is one line and exit 2 (`engine.resolve_device`)."""

    def check(value: str) -> str:
        from phenolab.engine import resolve_device

        resolve_device(value, available=available)
        return value

    return typer.Option("--device", help=help_text, callback=check)


DeviceOpt = Annotated[str, device_option("auto (CUDA when present), cpu or cuda[:N].")]
ThreadsOpt = Annotated[int | None, typer.Option("--threads", help="torch CPU threads, N >= 1 (default: "
                                                "PHENOLAB_THREADS, else all cores).")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Check everything and print the plan (runs stored, runs "
                                         "to train); train nothing, write nothing.")]


def train_seeds(text: str) -> list[int]:
    """`train --seeds`: a range or list. A bare N is refused with both readings: it once meant seed
    N here, while everywhere else (and in `train` from now on) N means N seeds."""
    spec = str(text).strip()
    if spec.isdigit():
        n = int(spec)
        both = f"0-{n - 1} ({n} seeds) or {n}-{n} (seed {n})" if n >= 1 else "0-0 (seed 0)"
        raise SettingError(f"--seeds {spec}: ambiguous in train (a bare N once meant seed N here; in reproduce, "
                           f"sweep and phase it means N seeds); did you mean {both}?")
    return parse_seeds(spec)


def train_missing(settings: list[Setting], seeds: list[int], catalog, device: str) -> list[str]:
    """Train the runs of settings × seeds not yet in the catalog, under one progress bar. Every
    batch's memory is checked (and a batch too large for it split) before the first one trains."""
    from phenolab.engine import resolve_device, total_steps
    from phenolab.execute import plan_batches, run_local
    from phenolab.execute.memory import fit_batches, task_shape

    batches = plan_batches(settings, seeds, catalog)
    if not batches:
        return []
    planned = len(batches)
    batches = fit_batches(batches, resolve_device(device))
    if len(batches) > planned:
        err_console.print(f"memory: split into {len(batches)} batches to fit (phenolab/execute/memory.py)",
                          highlight=False)
    steps = {}
    for b in batches:
        if b.setting.id not in steps:
            shape = task_shape(b.setting)
            n_train = shape.n_train if shape is not None else _built_n_train(b)
            steps[b.setting.id] = total_steps(b.setting, n_train) if b.setting.optim.name != "lstsq" else 1
    total = sum(steps[b.setting.id] for b in batches)
    work = _interrupt.work()
    work.start(catalog, sum(b.size for b in batches))
    with training_progress(sum(b.size for b in batches), total) as progress:
        label = settings[0].id if len(settings) == 1 else f"{len(settings)} settings"
        task = progress.add_task(f"training {label}", total=total, runs=0)
        state = {"offset": 0, "runs": 0, "done": 0}
        work.in_flight = batches[0].size  # the batch in training is what an interrupt loses

        def on_step(_batch, done: int, _total: int) -> None:
            progress.update(task, completed=state["offset"] + done)

        def on_batch(batch, _result, _ids) -> None:
            state["done"] += 1
            work.in_flight = batches[state["done"]].size if state["done"] < len(batches) else 0
            state["offset"] += steps[batch.setting.id]
            state["runs"] += batch.size
            progress.update(task, completed=state["offset"], runs=state["runs"])

        return run_local(batches, catalog, device=device, on_step=on_step, on_batch=on_batch)


def _built_n_train(batch) -> int:
    """A plug-in task's training-set size, from its data for one seed."""
    from phenolab.tasks import build_task

    return build_task(batch.setting.task, [batch.parts[0].seeds[0]], _input_kind(batch.setting)).n_train


def train_and_store(setting: Setting, seeds: list[int], catalog_path: Path | None, device: str,
                    figure: bool, as_json: bool, title: str = "") -> dict:
    """Train the missing runs of (setting, seeds) with a progress bar; store, plot, report."""
    from phenolab.figures import curves_figure

    catalog = writable_catalog(catalog_path)
    written = train_missing([setting], seeds, catalog, device)
    runs = catalog.runs(setting_id=setting.id)
    runs = runs[runs["seed"].isin(seeds)]
    fig_path = None
    if figure and len(runs):
        curves = catalog.curves(run_ids=list(runs["run_id"]))
        fig_path = curves_figure(curves, catalog.root / "figures" / f"{setting.id}.png",
                                 title=title or f"{setting.task.name} · {setting.model.name} · {setting.id}")
    report = {
        "setting_id": setting.id,
        "seeds": seeds,
        "trained": len(written),
        "skipped": len(seeds) - len(written),
        "catalog": str(catalog.path),
        "figure": str(fig_path) if fig_path else None,
        "final": _final_table(runs),
    }
    if as_json:
        print_json(report)
    else:
        _print_report(report)
    return report


def _input_kind(setting: Setting) -> str:
    from phenolab.models import model_class

    return model_class(setting.model.name).input_kind


def _final_table(runs) -> dict:
    cols = [c for c in ("final_train_acc", "final_test_acc", "final_train_loss", "final_test_loss") if c in runs]
    out = {}
    for c in cols:
        vals = runs[c].astype(float)
        out[c.removeprefix("final_")] = {"mean": float(vals.mean()), "sd": float(vals.std(ddof=1)) if len(vals) > 1
                                         else 0.0, "n": int(len(vals))}
    if "wall_s" in runs and len(runs):
        out["batch_wall_s"] = float(runs["wall_s"].max())
    return out


def _print_report(report: dict) -> None:
    console.print(f"setting [bold]{report['setting_id']}[/]: trained {report['trained']} run(s), "
                  f"{report['skipped']} already in the catalog")
    for name, stat in report["final"].items():
        if isinstance(stat, dict):
            console.print(f"  final {name:<11} {stat['mean']:.4f} ± {stat['sd']:.4f}  (n={stat['n']})")
    console.print(f"catalog: {report['catalog']}")
    if report["figure"]:
        console.print(f"figure:  {report['figure']}")


def register(app: typer.Typer) -> None:
    @app.command()
    def train(
        base: Annotated[str | None, typer.Argument(help="Named setting (see `phenolab settings`) or a "
                                                   ".yaml/.toml/.json setting file (default: mnist1d_mlp).")] = None,
        set_: SetOpt = None,
        seeds: SeedsOpt = "0-7",
        catalog: CatalogOpt = None,
        device: DeviceOpt = "auto",
        threads: ThreadsOpt = None,
        figure: Annotated[bool, typer.Option(help="Save a train/test accuracy figure.")] = True,
        as_json: JsonOpt = False,
        dry_run: DryRunOpt = False,
    ) -> None:
        """Train (setting, seed) runs as one batched program and store them in the catalog.

        Runs already in the catalog (same setting id and seed) are skipped. Everything is checked
        before any work: the setting, the seeds, the catalog path and the memory a batch needs.
        """
        from phenolab.engine import resolve_device
        from phenolab.execute import plan_batches
        from phenolab.execute.memory import fit_batches

        setting = resolve_setting(base, parse_assignments(set_ or []))
        seed_list = train_seeds(seeds)
        set_threads(threads)
        cat = writable_catalog(catalog)
        batches = fit_batches(plan_batches([setting], seed_list, cat), resolve_device(device))
        if dry_run:
            from phenolab.execute.estimate import plan_seconds, say_seconds

            todo = sum(b.size for b in batches)
            seconds = plan_seconds(batches) if todo else 0.0
            plan = {"setting_id": setting.id, "seeds": len(seed_list), "stored": len(seed_list) - todo,
                    "to_train": todo, "batches": len(batches), "catalog": str(cat.path), "estimate_s": seconds}
            if as_json:
                print_json(plan)
            else:
                eta = f" ({say_seconds(seconds)} on this machine, modelled)" if todo and seconds is not None else ""
                console.print(f"plan: setting {setting.id} × {len(seed_list)} seed(s): {plan['stored']} stored in "
                              f"{cat.path}, {todo} to train in {len(batches)} batch(es){eta}", highlight=False,
                              soft_wrap=True)
            return
        train_and_store(setting, seed_list, cat, device, figure, as_json)
        refresh_report(cat, quiet=as_json)
