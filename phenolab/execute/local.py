"""Run settings × seeds: skip what the catalog has, pack the rest into batches, train, store.

A batch's runs (every part of a shared program) are written in one catalog transaction as soon
as the batch finishes, so an interrupted sweep keeps every finished batch whole and a rerun does
only what is missing.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

import torch

from phenolab.catalog import Catalog, RunRecord, collect_provenance
from phenolab.engine import BatchResult, resolve_device, train
from phenolab.engine.packing import Part, plan_packs, program_key, task_shape, train_packed
from phenolab.models import Params
from phenolab.settings import Setting, SettingError

DEFAULT_MAX_REPLICAS = 64


@dataclass(frozen=True)
class ReplicaStart:
    """Where each replica of a batch starts, when not from its own init: its parameters, its
    pruning masks (1 = keep) and the seed its data order is drawn from, replica after replica."""

    init: Params
    masks: Params
    order_seeds: tuple[int, ...]


@dataclass(frozen=True)
class Batch:
    """Runs trained together as one program: the seeds of one setting, the parts of a pack of MLP
    settings that differ only in `engine.packing.PER_REPLICA_FIELDS` (narrow widths padded to the
    widest, each part with its own labels and optimizer settings), or, with `start`, parts whose
    settings differ only where the engine does not look (a lottery round's controls: their `prune`
    sections) and that start from given parameters and masks."""

    parts: tuple[Part, ...]
    start: ReplicaStart | None = None

    @classmethod
    def of(cls, setting: Setting, seeds: Iterable[int]) -> Batch:
        return cls((Part(setting, tuple(seeds)),))

    @property
    def size(self) -> int:
        return sum(len(p.seeds) for p in self.parts)

    @property
    def setting(self) -> Setting:
        """The program's setting: the widest part's (the only one unless packed)."""
        return max(self.parts, key=lambda p: p.setting.model.width if p.setting.model.name == "mlp" else 0).setting

    @property
    def seeds(self) -> tuple[int, ...]:
        """Every replica's seed, part after part."""
        return tuple(s for p in self.parts for s in p.seeds)


def plan_batches(settings: Iterable[Setting], seeds: list[int], catalog: Catalog | None,
                 max_replicas: int = DEFAULT_MAX_REPLICAS, pack: bool = True) -> list[Batch]:
    """Batches of the runs not yet in the catalog (same setting id and seed ⇒ skipped). With
    `pack`, MLP settings that differ only in `engine.packing.PER_REPLICA_FIELDS` share programs
    where that is cheaper (always, at equal widths)."""
    todo: list[Part] = []
    seen: set[str] = set()
    for setting in settings:
        if setting.prune is not None and setting.prune.needs_study:
            raise SettingError("prune: a pruned setting (ticket, control or alternate data order) needs its masks "
                               "and start point; train it with `phenolab reproduce lottery`, not train/sweep")
        if setting.id in seen:
            continue
        seen.add(setting.id)
        done = catalog.existing_seeds(setting.id) if catalog is not None else set()
        missing = [s for s in seeds if s not in done]
        todo += [Part(setting, tuple(missing[lo:lo + max_replicas])) for lo in range(0, len(missing), max_replicas)]
    keys = [program_key(part.setting) if pack else None for part in todo]  # a validation each: once
    keyed: dict[str, list[Part]] = {}
    for part, key in zip(todo, keys, strict=True):
        if key is not None:
            keyed.setdefault(key, []).append(part)
    out: list[Batch] = []
    emitted: set[str] = set()
    for part, key in zip(todo, keys, strict=True):
        if key is None or len(keyed[key]) == 1:
            out.append(Batch((part,)))
        elif key not in emitted:
            emitted.add(key)
            dims, n_train = task_shape(part.setting)
            out += [Batch(tuple(p)) for p in plan_packs(keyed[key], dims, n_train, max_replicas)]
    return out


def to_records(result: BatchResult, provenance: dict, batch_id: str | None = None,
               replicas_in_batch: int | None = None, first_replica: int = 0) -> list[RunRecord]:
    """One catalog record per replica: its curves, final values and the batch's provenance, with
    the replica's position in its batch (`replica`: `phenolab rerun` rebuilds the batch in order)."""
    batch_id = batch_id or f"{result.setting.id}@{result.started:.6f}"
    records = []
    for k, seed in enumerate(result.seeds):
        curves = result.replica_curves(k)
        summary = {f"final_{m}": float(v[-1]) for m, (_, v) in curves.items()}
        summary["final_step"] = float(result.steps[-1])
        ckpts = {step: {n: p[k].contiguous() for n, p in params.items()}
                 for step, params in result.checkpoints.items()}
        records.append(RunRecord(
            setting_id=result.setting.id, seed=seed, curves=curves, summary=summary,
            provenance=dict(provenance, replica=first_replica + k), started=result.started, finished=result.finished,
            wall_s=result.wall_s, batch_id=batch_id, replicas_in_batch=replicas_in_batch or len(result.seeds),
            checkpoints=ckpts,
        ))
    return records


def train_batch(batch: Batch, device: torch.device | str, progress=None) -> list[BatchResult]:
    """Train one batch as one program: one result per part."""
    if batch.start is not None:
        if len({_engine_view(p.setting) for p in batch.parts}) > 1:
            raise ValueError("a batch with given starts needs parts that differ only in their prune section")
        start = batch.start
        result = train(batch.setting, list(batch.seeds), device=device, init_params=start.init, masks=start.masks,
                       order_seeds=list(start.order_seeds), progress=progress)
        return split_result(result, batch.parts)
    if len(batch.parts) == 1:
        part = batch.parts[0]
        return [train(part.setting, list(part.seeds), device=device, progress=progress)]
    return train_packed(batch.parts, device=device, progress=progress)


def split_result(result: BatchResult, parts: tuple[Part, ...]) -> list[BatchResult]:
    """A program's result over the parts' replicas (in order) as one result per part."""
    out, lo = [], 0
    for part in parts:
        hi = lo + len(part.seeds)
        out.append(replace(result, setting=part.setting, seeds=list(part.seeds),
                           curves={m: v[lo:hi] for m, v in result.curves.items()},
                           params={n: v[lo:hi] for n, v in result.params.items()},
                           checkpoints={step: {n: v[lo:hi] for n, v in ps.items()}
                                        for step, ps in result.checkpoints.items()}))
        lo = hi
    return out


def _engine_view(setting: Setting) -> str:
    """What the engine reads of a setting: everything but the prune section."""
    return setting.model_copy(update={"prune": None}).canonical_json()


def batch_records(batch: Batch, results: list[BatchResult], provenance: dict) -> list[tuple[Part, list[RunRecord]]]:
    """Each part's catalog records; the parts of a pack share one batch id."""
    first = results[0]
    batch_id = f"{batch.setting.id}@{first.started:.6f}"
    prov = dict(provenance, batch_wall_s=first.wall_s, finished_utc=time.strftime(
        "%Y-%m-%dT%H:%M:%SZ", time.gmtime(first.finished)))
    if len(batch.parts) > 1 and batch.start is None:
        prov["packed"] = first.strategy
    firsts = itertools.accumulate((len(p.seeds) for p in batch.parts[:-1]), initial=0)
    return [(part, to_records(r, prov, batch_id, batch.size, first))
            for part, r, first in zip(batch.parts, results, firsts, strict=True)]


def store_batch(catalog: Catalog, parts: Iterable[tuple[Part, list[RunRecord]]]) -> list[str]:
    """Write every part's records in one transaction (`Catalog.write_many`): a batch is stored
    whole or not at all, so Ctrl-C cannot leave it half-written and uncounted. Returns the run ids
    written (runs another process stored first are skipped)."""
    return catalog.write_many([(part.setting.canonical_json(), part.setting.id, records) for part, records in parts])


BatchDone = Callable[[Batch, BatchResult, list[str]], None]
StepProgress = Callable[[Batch, int, int], None]


def run_local(batches: list[Batch], catalog: Catalog, *, device: str = "auto",
              on_step: StepProgress | None = None, on_batch: BatchDone | None = None) -> list[str]:
    """Train batches one after another in this process and store each as it finishes. Every batch's
    memory is estimated first: one too large for the device is split (`execute.memory`), and one
    whose single replica cannot fit is refused before anything trains."""
    from phenolab.execute.memory import fit_batches

    dev = resolve_device(device)
    batches = fit_batches(batches, dev)
    provenance = collect_provenance(str(dev), torch.get_num_threads())
    written: list[str] = []
    for batch in batches:
        progress = (lambda done, total, b=batch: on_step(b, done, total)) if on_step else None
        results = train_batch(batch, dev, progress)
        ids = store_batch(catalog, batch_records(batch, results, provenance))
        written.extend(ids)
        if on_batch is not None:
            on_batch(batch, results, ids)
    return written
