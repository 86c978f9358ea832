"""Run a sweep's batches on an executor, resumably and safely beside other writers.

Resume is the catalog itself: a batch is stored in one transaction as soon as it finishes, so
after kill -9 a rerun of the same sweep plans only the runs not stored. Before each batch the
catalog is read again, so two sweeps over overlapping grids skip what the other has stored by
then (a run both trained anyway is stored once: the catalog skips (setting, seed) duplicates).
Ctrl-C stops between batches' writes: whatever was stored is kept, the batch in training is lost.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Literal

from phenolab.catalog import Catalog
from phenolab.execute.local import DEFAULT_MAX_REPLICAS, Batch, plan_batches, run_local
from phenolab.settings import Setting, SettingError

Executor = Literal["local", "ray"]
EXECUTORS = ("local", "ray")
RunsProgress = Callable[[float], None]  # runs done so far in this sweep (fractional within a batch)


@dataclass
class SweepOutcome:
    """What a sweep did: runs planned, found stored already, written here, and whether it was cut short."""

    runs_in_grid: int
    already_stored: int
    planned: int
    written: list[str] = field(default_factory=list)
    stored_by_others: int = 0  # planned runs another process stored first
    interrupted: bool = False
    elapsed_s: float = 0.0

    @property
    def remaining(self) -> int:
        return self.planned - len(self.written) - self.stored_by_others

    @property
    def runs_per_s(self) -> float:
        return len(self.written) / self.elapsed_s if self.elapsed_s > 0 else 0.0


def plan_sweep(settings: Iterable[Setting], seeds: list[int], catalog: Catalog,
               max_replicas: int = DEFAULT_MAX_REPLICAS) -> tuple[list[Batch], int, int]:
    """(batches of the missing runs, runs in the grid, runs already stored)."""
    settings = list({s.id: s for s in settings}.values())
    batches = plan_batches(settings, seeds, catalog, max_replicas)
    in_grid = len(settings) * len(seeds)
    return batches, in_grid, in_grid - sum(b.size for b in batches)


def run_sweep(batches: list[Batch], catalog: Catalog, *, executor: str = "local", address: str | None = None,
              device: str = "auto", cpus_per_task: float = 1.0, gpus_per_task: float | None = None,
              on_runs: RunsProgress | None = None, runs_in_grid: int | None = None,
              already_stored: int = 0) -> SweepOutcome:
    """Train `batches` on the chosen executor and store each as it finishes; never raises
    KeyboardInterrupt (the outcome says `interrupted`)."""
    if executor not in EXECUTORS:
        raise SettingError(f"--executor {executor!r}: allowed: {', '.join(EXECUTORS)}")
    if address is not None and executor != "ray":
        raise SettingError("--address is for --executor ray (the address of a running Ray cluster)")
    if executor == "local":  # every batch's memory, before the first trains: too large ones are split
        from phenolab.engine import resolve_device
        from phenolab.execute.memory import fit_batches

        batches = fit_batches(batches, resolve_device(device))
    planned = sum(b.size for b in batches)
    out = SweepOutcome(runs_in_grid if runs_in_grid is not None else planned + already_stored,
                       already_stored, planned)
    started = time.monotonic()
    if executor == "ray":
        from phenolab.execute.ray_executor import run_ray

        run_ray(batches, catalog, out, address=address, device=device, cpus_per_task=cpus_per_task,
                gpus_per_task=gpus_per_task, on_runs=on_runs)
    else:
        _run_batches_locally(batches, catalog, out, device, on_runs)
    out.elapsed_s = time.monotonic() - started
    return out


def _run_batches_locally(batches: list[Batch], catalog: Catalog, out: SweepOutcome, device: str,
                         on_runs: RunsProgress | None) -> None:
    done = 0.0
    try:
        for batch in batches:
            trimmed = _trim(batch, catalog)
            todo = trimmed.size if trimmed is not None else 0
            out.stored_by_others += batch.size - todo
            done += batch.size - todo
            if trimmed is None:
                continue

            def on_step(_b: Batch, step: int, total: int, base: float = done, k: int = todo) -> None:
                if on_runs is not None:
                    on_runs(base + k * step / max(total, 1))

            ids = run_local([trimmed], catalog, device=device, on_step=on_step)
            out.written.extend(ids)
            out.stored_by_others += todo - len(ids)  # another process stored them while we trained
            done += todo
            if on_runs is not None:
                on_runs(done)
    except KeyboardInterrupt:
        out.interrupted = True


def _trim(batch: Batch, catalog: Catalog) -> Batch | None:
    """The batch without the runs another process stored since it was planned (None: nothing left)."""
    parts = []
    for part in batch.parts:
        stored = catalog.existing_seeds(part.setting.id)
        seeds = tuple(s for s in part.seeds if s not in stored)
        if seeds:
            parts.append(replace(part, seeds=seeds))
    return Batch(tuple(parts)) if parts else None
