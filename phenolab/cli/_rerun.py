"""`phenolab rerun`: retrain stored runs and say whether their numbers reproduce here."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer
from rich.table import Table

from phenolab.cli._common import CatalogOpt, JsonOpt, console, fail, print_json, read_catalog, thread_count
from phenolab.cli._train import device_option


def register(app: typer.Typer) -> None:
    @app.command()
    def rerun(
        run_ids: Annotated[list[str] | None, typer.Argument(help="Run ids (see `phenolab runs`).")] = None,
        setting: Annotated[str | None, typer.Option(help="Every run of this setting id.")] = None,
        catalog: CatalogOpt = None,
        device: Annotated[str, device_option("cpu (default) or cuda[:N]: where to retrain.")] = "cpu",
        threads: Annotated[int | None, typer.Option("--threads", help="torch CPU threads (default: the "
                                                    "count each run's batch recorded).")] = None,
        alone: Annotated[bool, typer.Option(help="Retrain only the asked runs, not their whole stored "
                                            "batches (faster; equal to float rounding, not bitwise).")] = False,
        as_json: JsonOpt = False,
    ) -> None:
        """Retrain stored runs and compare every curve with the catalog, bit for bit.

        Each run is retrained inside its stored batch (the same replicas and
        packed parts, in the same order) at the batch's recorded thread count.
        Exit code 0: every run identical; 1: some differ (the provenance fields
        that change bits and differ here are listed). Nothing is written.
        """
        from phenolab.execute.rerun import check_runs

        if threads is not None:
            thread_count(threads)  # 1 or more, as everywhere
        cat = read_catalog(catalog)
        ids = list(dict.fromkeys(run_ids or []))  # a run named twice is checked once
        if setting is not None:
            ids += [r for r in cat.runs(setting_id=setting)["run_id"] if r not in ids]
            if not ids:
                fail(f"--setting {setting}: no runs of that setting in {cat.path}")
        if not ids:
            fail("give run ids or --setting SETTING_ID (list them with `phenolab runs`)")
        try:
            checks = check_runs(cat, ids, device=device, threads=threads, alone=alone,
                                on_batch=None if as_json else _batch_done)
        except ValueError as exc:
            fail(str(exc))
        if as_json:
            print_json([asdict(c) for c in checks])
        else:
            _print(checks)
        if not all(c.identical for c in checks):
            raise typer.Exit(1)


def _batch_done(done: int, total: int) -> None:
    console.print(f"retrained batch {done}/{total}")


def _print(checks: list) -> None:
    table = Table(title=f"{sum(c.identical for c in checks)} of {len(checks)} run(s) identical to the catalog")
    for col in ("run", "verdict", "largest difference", "final test_acc: stored → now", "batch"):
        table.add_column(col, overflow="fold")
    for c in checks:
        diff = "" if c.identical else f"{c.max_abs_diff:.3g} ({c.worst_metric}), from step {c.first_diff_step}"
        acc = c.finals.get("test_acc")
        batch = f"{c.batch_size} replicas" + ("" if c.whole_batch else ", not the stored batch")
        table.add_row(c.run_id, "identical" if c.identical else "differs", diff,
                      "" if acc is None else f"{acc[0]:.4f} → {acc[1]:.4f}", batch)
    console.print(table)
    fields = {f: v for c in checks if not c.identical for f, v in c.provenance_diff.items()}
    for f, (then, now) in fields.items():
        console.print(f"  {f}: stored {then!r}, here {now!r}", highlight=False)
