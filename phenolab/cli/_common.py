"""Shared CLI plumbing: one-line errors, the catalog option, threads, the progress bar."""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

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

console = Console()
err_console = Console(stderr=True)

# The flags several commands share, each with one meaning everywhere: `phenolab --help` lists them,
# docs/bad-input.md shows this table (a test keeps both equal to this list).
COMMON_FLAGS: tuple[tuple[str, str], ...] = (
    ("--seeds", "which seeds: N is N seeds, 0..N-1; 0-7, 0,3,5 or 0-3,10 name them (train refuses a bare N "
     "for now: it once meant seed N; write 0-2 for three seeds, 3-3 for seed 3)"),
    ("--set FIELD=VALUE", "override one setting field, e.g. model.width=128 (repeatable; a later --set of the "
     "same field wins; VALUE is JSON where it parses)"),
    ("--grid FIELD=VALUES", "a factor to sweep: FIELD=v1,v2,… or FIELD=start:stop:num[:log] (repeatable; the "
     "cartesian product)"),
    ("--threads N", "torch CPU threads, N >= 1 (default: PHENOLAB_THREADS, else all cores; rerun: the count "
     "the batch recorded)"),
    ("--catalog PATH", "the catalog file or its folder (default: PHENOLAB_CATALOG, else ./phenolab-catalog); "
     "commands that only read need it to exist"),
    ("--json", "print JSON for machines instead of a table"),
)

CatalogOpt = Annotated[
    Path | None,
    typer.Option("--catalog", "-c", help="Catalog file or directory "
                 "(env PHENOLAB_CATALOG; default ./phenolab-catalog/catalog.db)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for machines instead of a table.")]


def print_json(obj: Any) -> None:
    """`--json` output as strict JSON: NaN and ±inf (which `json.dumps` writes as bare NaN and
    Infinity, refused by jq and most parsers) become null, NumPy scalars plain numbers, anything
    else without a JSON form its str."""
    print(json.dumps(_strict(obj), indent=2, default=str, allow_nan=False))


def _strict(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _strict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_strict(v) for v in obj]
    if hasattr(obj, "item") and getattr(obj, "ndim", None) == 0:  # NumPy / torch scalars
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def fail(message: str, code: int = 2) -> NoReturn:
    """Print one line naming the problem and exit non-zero."""
    print_error(message)
    raise typer.Exit(code)


def print_error(message: str) -> None:
    """The one-line form of every user error: "error: …" on stderr, the message printed as is, except
    that characters that would break the line or the terminal (a newline, a control character in a
    path the user typed) are shown escaped."""
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(message))
    err_console.print(f"[bold red]error:[/] {escape(shown)}", highlight=False, soft_wrap=True)


def open_catalog(path: Path | Catalog | None) -> Catalog:
    """A catalog a command may write (train, reproduce, phase, register, import), checked before any
    work: it can be created and written (nothing is created yet)."""
    from phenolab.execute.preflight import writable_catalog as check

    return check(path)


writable_catalog = open_catalog


def read_catalog(path: Path | None) -> Catalog:
    """A catalog a read command reads: "no catalog at PATH" (exit 2) when it does not exist."""
    from phenolab.execute.preflight import existing_catalog

    return existing_catalog(path)


MAX_THREADS = 1024  # more is a typo, not a machine


def thread_count(threads: int | None) -> int:
    """--threads, else PHENOLAB_THREADS, else all cores; below 1 (or not a number) is one line."""
    if threads is not None:
        if not 1 <= threads <= MAX_THREADS:
            fail(f"--threads {threads}: give 1 to {MAX_THREADS} threads (leave --threads out for all cores)")
        return threads
    env = os.environ.get("PHENOLAB_THREADS", "").strip()
    if env:
        if not env.isdigit() or not 1 <= int(env) <= MAX_THREADS:
            fail(f"PHENOLAB_THREADS={env!r}: give 1 to {MAX_THREADS} threads (unset it for all cores)")
        return int(env)
    return os.cpu_count() or 1


def set_threads(threads: int | None) -> int:
    """Set torch's intra-op threads explicitly (defaults oversubscribe when processes share cores)."""
    n = thread_count(threads)
    torch.set_num_threads(n)
    return n


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


FIRST_LINE_S = 3.0  # the first plain progress line comes this soon: a log shows work has started


class LogProgress:
    """Progress as plain lines on stderr: the first after `FIRST_LINE_S` seconds, then one per
    `every` seconds: for runs whose stderr is a log file (nohup, a cluster job), where a live bar
    would show nothing until the end. Quiet for runs shorter than the first line's wait. Used like
    Rich's Progress: `with`, `add_task`, `update`."""

    def __init__(self, every: float, unit: str = "steps", total_runs: int | None = None) -> None:
        self.every, self.unit, self.total_runs = every, unit, total_runs
        self.start = time.monotonic()
        self.next_at = self.start + min(FIRST_LINE_S, every)
        self.description, self.total, self.completed, self.runs = "", 0, 0, 0

    def __enter__(self) -> LogProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, description: str, total: int, runs: int = 0) -> int:
        self.description, self.total, self.runs = description, total, runs
        return 0

    def update(self, task: int, completed: int | None = None, runs: int | None = None) -> None:
        self.completed = self.completed if completed is None else completed
        self.runs = self.runs if runs is None else runs
        now = time.monotonic()
        if now < self.next_at:
            return
        self.next_at, elapsed = now + self.every, now - self.start
        done = self.completed / self.total if self.total else 0.0
        eta = _clock(elapsed * (1 - done) / done) if done > 0 else "?"
        runs_part = f" · runs {self.runs}/{self.total_runs}" if self.total_runs is not None else ""
        print(f"{self.description}: {self.completed:.0f}/{self.total:.0f} {self.unit} ({100 * done:.0f}%){runs_part} · "
              f"{_clock(elapsed)} elapsed · ETA {eta}", file=sys.stderr, flush=True)


def log_progress_every() -> float | None:
    """Seconds between `LogProgress` lines when stderr is not a terminal (PHENOLAB_PROGRESS_EVERY,
    default 10; 0 means never), or None for Rich's live bar: a terminal, or PHENOLAB_PROGRESS=1."""
    if sys.stderr.isatty() or os.environ.get("PHENOLAB_PROGRESS") == "1":
        return None
    every = os.environ.get("PHENOLAB_PROGRESS_EVERY", "10")
    try:
        seconds = float(every)
    except ValueError:
        fail(f"PHENOLAB_PROGRESS_EVERY={every!r}: must be a number of seconds (0 turns it off)")
    return seconds if seconds > 0 else float("inf")


def busy_cpu_note(load: float | None = None, cores: int | None = None) -> str | None:
    """One line when other work keeps the CPU busy (1-minute load ≥ ¾ of the cores + 0.5): many
    tiny models are bound by per-op overhead, and sharing cores makes them several times slower
    than the documented times. None when quiet, unknown, or PHENOLAB_BUSY_NOTE=0."""
    if os.environ.get("PHENOLAB_BUSY_NOTE", "1") == "0":
        return None
    try:
        load = os.getloadavg()[0] if load is None else load
    except OSError:
        return None
    cores = cores or os.cpu_count() or 1
    if load < 0.75 * cores + 0.5:
        return None
    return (f"note: the CPU is busy (load {load:.1f} on {cores} cores): training will be slower than on an idle "
            "machine, and times are not comparable")


@contextmanager
def training_progress(total_runs: int, total_steps: int) -> Iterator[Progress | LogProgress]:
    """A Rich bar over optimizer steps of all batches, with runs done, speed and ETA; plain
    `LogProgress` lines instead when stderr is not a terminal (`log_progress_every`). Says first
    when the CPU is already busy (`busy_cpu_note`)."""
    note = busy_cpu_note()
    if note is not None:
        print(note, file=sys.stderr, flush=True)
    every = log_progress_every()
    progress = LogProgress(every, "steps", total_runs) if every is not None else Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("steps · runs {task.fields[runs]}/" + str(total_runs)),
        TimeElapsedColumn(), TimeRemainingColumn(), console=err_console, transient=False,
    )
    with progress:
        yield progress
