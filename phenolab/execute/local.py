"""Run settings × seeds: skip what the catalog has, pack the rest into batches, train, store.

Each batch is written in one catalog transaction as soon as it finishes, so an interrupted
sweep keeps every finished batch and a rerun does only what is missing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

from phenolab.catalog import Catalog, RunRecord, collect_provenance
from phenolab.engine import BatchResult, resolve_device, train
from phenolab.settings import Setting, SettingError

DEFAULT_MAX_REPLICAS = 64


@dataclass(frozen=True)
class Batch:
    """Runs trained together: one setting, several seeds."""

    setting: Setting
    seeds: tuple[int, ...]

    @property
    def size(self) -> int:
        return len(self.seeds)


def plan_batches(settings: Iterable[Setting], seeds: list[int], catalog: Catalog | None,
                 max_replicas: int = DEFAULT_MAX_REPLICAS) -> list[Batch]:
    """Batches of the runs not yet in the catalog (same setting id and seed ⇒ skipped)."""
    out: list[Batch] = []
    seen: set[str] = set()
    for setting in settings:
        if setting.prune is not None and (setting.prune.control != "dense" or setting.prune.data_order != "seed"):
            raise SettingError("prune: a pruned setting (ticket, control or alternate data order) needs its masks "
                               "and start point; train it with `phenolab reproduce lottery`, not train/sweep")
        if setting.id in seen:
            continue
        seen.add(setting.id)
        done = catalog.existing_seeds(setting.id) if catalog is not None else set()
        todo = [s for s in seeds if s not in done]
        for lo in range(0, len(todo), max_replicas):
            out.append(Batch(setting, tuple(todo[lo:lo + max_replicas])))
    return out


def to_records(result: BatchResult, provenance: dict) -> list[RunRecord]:
    """One catalog record per replica: its curves, final values and the batch's provenance."""
    batch_id = f"{result.setting.id}@{result.started:.6f}"
    records = []
    for k, seed in enumerate(result.seeds):
        curves = result.replica_curves(k)
        summary = {f"final_{m}": float(v[-1]) for m, (_, v) in curves.items()}
        summary["final_step"] = float(result.steps[-1])
        ckpts = {step: {n: p[k].contiguous() for n, p in params.items()}
                 for step, params in result.checkpoints.items()}
        records.append(RunRecord(
            setting_id=result.setting.id, seed=seed, curves=curves, summary=summary,
            provenance=provenance, started=result.started, finished=result.finished,
            wall_s=result.wall_s, batch_id=batch_id, replicas_in_batch=len(result.seeds),
            checkpoints=ckpts,
        ))
    return records


BatchDone = Callable[[Batch, BatchResult, list[str]], None]
StepProgress = Callable[[Batch, int, int], None]


def run_local(batches: list[Batch], catalog: Catalog, *, device: str = "auto",
              on_step: StepProgress | None = None, on_batch: BatchDone | None = None) -> list[str]:
    """Train batches one after another in this process and store each as it finishes."""
    dev = resolve_device(device)
    provenance = collect_provenance(str(dev), torch.get_num_threads())
    written: list[str] = []
    for batch in batches:
        progress = (lambda done, total, b=batch: on_step(b, done, total)) if on_step else None
        result = train(batch.setting, list(batch.seeds), device=dev, progress=progress)
        prov = dict(provenance, batch_wall_s=result.wall_s, finished_utc=time.strftime(
            "%Y-%m-%dT%H:%M:%SZ", time.gmtime(result.finished)))
        ids = catalog.write_runs(batch.setting.canonical_json(), batch.setting.id, to_records(result, prov))
        written.extend(ids)
        if on_batch is not None:
            on_batch(batch, result, ids)
    return written
