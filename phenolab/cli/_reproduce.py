"""`phenolab reproduce PHENOMENON`: train (or reuse) a canonical study, then signature + figure."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Annotated, Any

import typer
from rich.table import Table

from phenolab.cli._common import (
    CatalogOpt,
    JsonOpt,
    console,
    open_catalog,
    print_json,
    resolve_phenomenon,
    set_threads,
    training_progress,
)
from phenolab.cli._train import DeviceOpt, SetOpt, ThreadsOpt, train_missing
from phenolab.settings import parse_assignments, parse_seeds


def signature_table(summary: dict[str, Any]) -> Table:
    table = Table(title="signature (mean ± sd over seeds)")
    for col in ("field", "mean", "sd", "n"):
        table.add_column(col, justify="left" if col == "field" else "right")
    for key, val in summary.items():
        if isinstance(val, dict) and "mean" in val:
            mean = "—" if val["mean"] is None else f"{val['mean']:.4g}"
            sd = "—" if val["sd"] is None else f"{val['sd']:.3g}"
            table.add_row(key, mean, sd, str(val["n"]))
        elif isinstance(val, dict):
            table.add_row(key, ", ".join(f"{k}: {v}" for k, v in val.items()), "", "")
        else:
            table.add_row(key, str(val), "", "")
    return table


def capacity_table(rows: list[dict[str, Any]], axis: Any) -> Table:
    """Double descent: one row per capacity (the curve behind the signature)."""
    label = axis.get("label", "capacity") if isinstance(axis, dict) else str(axis)
    table = Table(title=f"per {label} (mean ± sd over seeds)")
    cols = [c for c in ("capacity", "params", "train_mean", "test_mean", "test_sd", "bias", "variance",
                        "p_eff_test") if any(c in r for r in rows)]
    for col in cols:
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(*("" if r.get(c) is None else f"{r[c]:.3g}" if isinstance(r[c], float) else str(r[c])
                        for c in cols))
    return table


def register(app: typer.Typer) -> None:
    @app.command()
    def reproduce(
        phenomenon: Annotated[str, typer.Argument(help="grokking, double-descent, lottery or figure4.")],
        setting: Annotated[str | None, typer.Option(help="Canonical setting (default: the phenomenon's).")] = None,
        seeds: Annotated[str, typer.Option(help="Number of seeds (N ⇒ 0..N-1) or a range like 0-9.")] = "5",
        quick: Annotated[bool, typer.Option(help="A shorter budget where the source's is long (said on the "
                                            "figure and in the output).")] = False,
        set_: SetOpt = None,
        rounds: Annotated[int | None, typer.Option(help="lottery: pruning rounds.")] = None,
        rewind_step: Annotated[int | None, typer.Option(help="lottery: rewind survivors to their values "
                                                        "at this step (0 = init).")] = None,
        compare: Annotated[str | None, typer.Option(help="grokking: 'accelerators' compares weight decay, "
                                                    "Grokfast, StableMax and ⊥Grad on the same seeds.")] = None,
        catalog: CatalogOpt = None,
        device: DeviceOpt = "auto",
        threads: ThreadsOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Reproduce a phenomenon: train its runs as batched programs (reusing any already in the
        catalog), then print its measured signature and save its figure."""
        ph, name = resolve_phenomenon(phenomenon, setting)
        seed_list = parse_seeds(int(seeds) if seeds.isdigit() else seeds)
        options = {k: v for k, v in (("rounds", rounds), ("rewind_step", rewind_step), ("compare", compare))
                   if v is not None}
        options["device"] = device
        study = ph.study(name, seed_list, parse_assignments(set_ or []), quick, options)
        set_threads(threads)
        cat = open_catalog(catalog)
        work = ph.staged_work(study)  # lottery rounds: trained outside train_missing and its bar
        with training_progress(*work) if work else nullcontext() as progress:
            if work:
                task = progress.add_task(f"training {phenomenon}", total=work[1], runs=0)
                study.options["progress"] = lambda steps, runs: progress.update(task, completed=steps, runs=runs)
            written = ph.execute(study, cat, lambda settings, seeds: train_missing(settings, seeds, cat, device))
        sig = ph.signature(cat, study)
        fig = ph.figure(cat, study, cat.root / "figures" / f"{phenomenon}-{name}-{study.settings[0].id}.png")
        cat.add_note("signature", f"{phenomenon}:{name}:{study.settings[0].id}",
                     {"phenomenon": phenomenon, **{k: v for k, v in sig.items() if k != "per_run"},
                      "seeds": seed_list, "figure": str(fig)})
        if as_json:
            print_json({**sig["summary"], "phenomenon": phenomenon, "setting": name,
                        "setting_ids": [s.id for s in study.settings], "note": study.note,
                        "trained": len(written), "figure": str(fig), "per_run": sig["per_run"],
                        **{k: sig[k] for k in ("per_capacity", "axis", "error") if k in sig}})
            return
        console.print(f"[bold]{phenomenon}[/] · {name}: {len(written)} run(s) trained, "
                      f"the rest reused from {cat.path}")
        if study.note:
            console.print(f"[yellow]{study.note}[/]")
        console.print(signature_table(sig["summary"]))
        if sig.get("per_capacity"):
            console.print(capacity_table(sig["per_capacity"], sig.get("axis", "capacity")), overflow="ignore",
                          crop=False)
        console.print(f"figure: {fig}")
