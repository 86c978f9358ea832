"""The Ray executor: each batch is one Ray task; the driver alone writes the catalog.

Ray does the scheduling (resources declared per task: `num_cpus`, `num_gpus`); phenolab only
keeps a bounded number of tasks in flight and stores each batch's runs as its result arrives,
so a sweep interrupted on the driver keeps every batch that came back. Workers need phenolab
installed (same version as the driver: setting ids are content hashes of the same schema).
See docs/sweeps.md for running on an existing cluster.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from phenolab.catalog import Catalog, CatalogError, RunRecord
from phenolab.execute.local import Batch, store_batch

if TYPE_CHECKING:
    from phenolab.execute.sweep import RunsProgress, SweepOutcome

IN_FLIGHT_PER_SLOT = 2  # tasks queued per schedulable slot: keeps workers busy, results flowing back


def train_batch_task(parts: list[tuple[str, list[int]]], device: str, threads: int) -> list[list[RunRecord]]:
    """Runs on a Ray worker: train one batch (its parts as (setting JSON, seeds)) and return each
    part's catalog records (no catalog access)."""
    import torch

    from phenolab.catalog import collect_provenance
    from phenolab.engine import resolve_device
    from phenolab.engine.packing import Part
    from phenolab.execute.local import Batch, batch_records, train_batch
    from phenolab.settings import Setting

    torch.set_num_threads(max(1, threads))
    batch = Batch(tuple(Part(Setting.model_validate_json(js), tuple(seeds)) for js, seeds in parts))
    dev = resolve_device(device)
    results = train_batch(batch, dev)
    prov = dict(collect_provenance(str(dev), torch.get_num_threads()), executor="ray")
    return [records for _, records in batch_records(batch, results, prov)]


def run_ray(batches: list[Batch], catalog: Catalog, out: SweepOutcome, *, address: str | None = None,
            device: str = "auto", cpus_per_task: float = 1.0, gpus_per_task: float | None = None,
            on_runs: RunsProgress | None = None) -> None:
    """Submit batches as Ray tasks and write each result to the catalog as it arrives.

    Connects to `address` (or RAY_ADDRESS, or starts a local instance) unless Ray is already
    initialized in this process; shuts down only what it started. `gpus_per_task` defaults to
    1 when `device` names CUDA, else 0.
    """
    try:
        import ray
    except ImportError:
        raise CatalogError("--executor ray needs Ray: pip install 'phenolab[ray]'") from None
    if cpus_per_task <= 0:
        raise CatalogError(f"--cpus-per-task {cpus_per_task}: must be > 0")
    gpus = gpus_per_task if gpus_per_task is not None else (1.0 if device.startswith("cuda") else 0.0)
    if gpus < 0:
        raise CatalogError(f"--gpus-per-task {gpus}: must be >= 0")
    started_here = not ray.is_initialized()
    if started_here:
        _connect(ray, address)
    try:
        remote = ray.remote(train_batch_task).options(num_cpus=cpus_per_task, num_gpus=gpus, max_retries=1)
        threads = max(1, int(cpus_per_task))
        resources = ray.cluster_resources()
        slots = int(resources.get("CPU", 1) // cpus_per_task)
        if gpus > 0:
            slots = min(slots, int(resources.get("GPU", 0) // gpus))
        slots = max(1, slots)
        window = IN_FLIGHT_PER_SLOT * slots
        pending: dict[Any, Batch] = {}
        queue = list(batches)
        done = 0.0
        try:
            while queue or pending:
                while queue and len(pending) < window:
                    batch = queue.pop(0)
                    parts = [(p.setting.canonical_json(), list(p.seeds)) for p in batch.parts]
                    ref = remote.remote(parts, device, threads)
                    pending[ref] = batch
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    batch = pending.pop(ref)
                    ids = store_batch(catalog, zip(batch.parts, ray.get(ref), strict=True))
                    out.written.extend(ids)
                    out.stored_by_others += batch.size - len(ids)
                    done += batch.size
                    if on_runs is not None:
                        on_runs(done)
        except KeyboardInterrupt:
            out.interrupted = True
            for ref in pending:
                ray.cancel(ref, force=True)
    finally:
        if started_here:
            ray.shutdown()


def _connect(ray: Any, address: str | None) -> None:
    """Join the given cluster, or RAY_ADDRESS's, or start a local instance sized to this machine."""
    try:
        if address is None and not os.environ.get("RAY_ADDRESS"):
            ray.init(log_to_driver=False, include_dashboard=False)
        else:
            ray.init(address=address, log_to_driver=False)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CatalogError(f"--address {address or os.environ.get('RAY_ADDRESS')!r}: cannot reach Ray ({first})") \
            from None
