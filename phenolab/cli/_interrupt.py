"""Ctrl-C (SIGINT) and SIGTERM: one line saying what was kept, what was lost and how to resume.

Batches are stored one transaction each, so an interrupt keeps every finished batch and loses
the one in training; the catalog stays consistent either way (SQLite rolls an open transaction
back). A second Ctrl-C exits at once. The training paths (`train_missing`, `sweep_runs`) tell
`WORK` what they are doing; `phenolab.cli.main` installs the handlers and prints the line.
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
import threading
from dataclasses import dataclass
from types import FrameType
from typing import Any

EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}  # 128 + the signal's number, as shells report


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C's KeyboardInterrupt would be, so the same cleanup runs."""


@dataclass
class Work:
    """What the running command trains: its catalog, runs stored before it began, runs it set out
    to train, and the size of the batch in training (0 between batches)."""

    catalog: Any = None
    runs_before: int = 0
    planned: int = 0
    in_flight: int = 0
    signal: int | None = None  # the signal that stopped it
    reported: bool = False  # the line was printed already (by `sweep_runs`)

    def start(self, catalog: Any, planned: int) -> None:
        """Training of `planned` runs begins in `catalog` (called again by later stages: they add up)."""
        if self.catalog is None:
            self.catalog = catalog
            try:
                self.runs_before = catalog.count_runs()
            except Exception:  # noqa: BLE001  (a count for a message must never stop training)
                self.runs_before = 0
        self.planned += planned

    def what(self) -> str:
        return "SIGTERM" if self.signal == signal.SIGTERM else "interrupted"

    def line(self) -> str:
        """The one line an interrupt prints."""
        resume, what = resume_command(), self.what()
        if self.catalog is None:
            return f"{what}: nothing was trained; rerun the same command to do it: {resume}"
        try:
            kept = self.catalog.count_runs() - self.runs_before
        except Exception:  # noqa: BLE001
            kept = 0
        lost = f"lost the batch in training ({self.in_flight} run(s))" if self.in_flight else "lost no finished run"
        left = max(0, self.planned - kept - self.in_flight)
        rest = f", {left} run(s) not started" if left else ""
        return (f"{what}: kept {kept} new run(s) in {self.catalog.path} (every finished batch; the catalog is "
                f"consistent); {lost}{rest}. Rerun the same command to resume (stored runs are skipped): {resume}")


WORK = Work()


def resume_command() -> str:
    """The command line that was run: running it again resumes (stored runs are skipped)."""
    return "phenolab " + shlex.join(sys.argv[1:])


def reset() -> None:
    """A fresh record for the next command (in-process callers run several)."""
    global WORK
    WORK = Work()


def work() -> Work:
    return WORK


def install() -> dict[int, Any]:
    """Handlers for SIGINT and SIGTERM while a command runs (where Python's defaults are in place:
    a signal the shell ignores, as for a background job, stays ignored); returns the old ones."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    old: dict[int, Any] = {}
    for sig, default in ((signal.SIGINT, signal.default_int_handler), (signal.SIGTERM, signal.SIG_DFL)):
        if signal.getsignal(sig) is default:
            old[sig] = signal.signal(sig, _handler)
    return old


def restore(old: dict[int, Any]) -> None:
    for sig, handler in old.items():
        signal.signal(sig, handler)


def _handler(signum: int, frame: FrameType | None) -> None:
    if WORK.signal is not None:  # the second one: out at once
        os.write(2, b"interrupted again: exiting now; every stored batch is kept\n")
        os._exit(EXIT_CODES.get(signum, 130))
    WORK.signal = signum
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()
