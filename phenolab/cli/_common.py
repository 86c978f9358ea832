"""Shared CLI plumbing: one-line errors, the catalog option, threads, phenomenon lookup, the progress bar."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import torch
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from phenolab.catalog import Catalog

if TYPE_CHECKING:
    from phenolab.phenomena import Phenomenon

console = Console()
err_console = Console(stderr=True)

CatalogOpt = Annotated[
    Path | None,
    typer.Option("--catalog", "-c", help="Catalog file or directory "
                 "(env PHENOLAB_CATALOG; default ./phenolab-catalog/catalog.db)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for machines instead of a table.")]


def fail(message: str, code: int = 2) -> NoReturn:
    """Print one line naming the problem and exit non-zero."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def open_catalog(path: Path | None) -> Catalog:
    return Catalog(path)


def set_threads(threads: int | None) -> int:
    """Set torch's intra-op threads explicitly (defaults oversubscribe when processes share cores)."""
    n = threads or int(os.environ.get("PHENOLAB_THREADS", 0)) or os.cpu_count() or 1
    if n < 1:
        fail(f"--threads {n}: must be >= 1")
    torch.set_num_threads(n)
    return n


def resolve_phenomenon(phenomenon: str, setting: str | None) -> tuple[Phenomenon, str]:
    """The phenomenon and its canonical setting (`--setting`, default the phenomenon's), or a
    one-line error listing what is allowed: `reproduce` and `phase` accept the same names."""
    from phenolab.phenomena import PHENOMENA

    if phenomenon not in PHENOMENA:
        fail(f"unknown phenomenon {phenomenon!r}; allowed: {', '.join(sorted(PHENOMENA))}")
    ph = PHENOMENA[phenomenon]
    name = setting or ph.default_setting
    if name not in ph.canonical:
        fail(f"--setting {name!r} is not a {phenomenon} setting; allowed: {', '.join(ph.canonical)}")
    return ph, name


@contextmanager
def training_progress(total_runs: int, total_steps: int) -> Iterator[Progress]:
    """A Rich bar over optimizer steps of all batches, with runs done, speed and ETA."""
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("steps · runs {task.fields[runs]}/" + str(total_runs)),
        TimeElapsedColumn(), TimeRemainingColumn(), console=err_console, transient=False,
        disable=not sys.stderr.isatty() and os.environ.get("PHENOLAB_PROGRESS") != "1",
    )
    with progress:
        yield progress
