"""Retrain stored runs and compare them with the catalog: do these numbers reproduce here?

A shared catalog or bundle is worth what its numbers are worth elsewhere. A run's bits depend on
its setting and seed, and also on what computed them: the batch it was trained in (its replicas'
order and any packed parts: MKL rounds by buffer alignment), the thread count, and the CPU kernels
(docs/architecture.md, "Same numbers on another machine"). So a run is retrained inside its whole
original batch, rebuilt from the catalog in the order it was trained (the replica positions
provenance records), at the batch's recorded thread count, and every stored curve is compared with
the new one. Beside the verdict stand the provenance fields that can change bits and differ from
this process's. Nothing is written to the catalog.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from phenolab.catalog import Catalog, collect_provenance
from phenolab.engine import resolve_device
from phenolab.engine.packing import Part
from phenolab.execute.local import Batch, ReplicaStart, train_batch
from phenolab.settings import Setting, validate_setting

# Provenance fields that change a run's bits when they differ (git_commit: the code itself).
BIT_FIELDS = ("torch", "device", "threads", "cpu_isa", "cpu_capability", "mkl_amd_shim", "cpu_model", "git_commit")
# Who can rebuild where a stored batch's replicas started, when that is not their own init (a
# lottery round's tickets and controls: `phenomena.lottery.rounds.rebuild_start`); each returns
# None for batches that are not theirs.
StartBuilder = Callable[[Catalog, tuple[Part, ...]], ReplicaStart | None]
START_BUILDERS: list[StartBuilder] = []


def register_start_builder(builder: StartBuilder) -> StartBuilder:
    START_BUILDERS.append(builder)
    return builder


@dataclass(frozen=True)
class RunCheck:
    """One stored run against its retrained copy."""

    run_id: str
    identical: bool  # every stored curve equal, bit for bit, at the same steps
    worst_metric: str | None  # the metric with the largest difference (None when identical)
    max_abs_diff: float  # over all metrics and steps (inf where steps or metrics differ)
    first_diff_step: int | None  # the first evaluated step at which some curve differs
    finals: dict[str, tuple[float, float]]  # final value of each accuracy/loss curve: (stored, now)
    batch_size: int  # replicas retrained to reproduce it
    whole_batch: bool  # False when the catalog lacks some of the batch's runs (retrained alone)
    provenance_diff: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # field: (stored, now)


@dataclass(frozen=True)
class _Plan:
    batch: Batch
    run_ids: tuple[str, ...]  # the stored run of each replica, part after part
    whole: bool
    provenance: dict[str, Any]  # of the batch's first asked run (threads, kernels, ...)


def plan_reruns(catalog: Catalog, run_ids: list[str], alone: bool = False) -> list[_Plan]:
    """The batches that retrain `run_ids`: each run's stored batch, whole and in stored order, or
    (`alone`, or a batch the catalog holds only part of) the asked runs of its setting."""
    runs = {rid: catalog.run(rid) for rid in dict.fromkeys(run_ids)}  # one line for an unknown id
    settings: dict[str, Setting] = {}
    plans: list[_Plan] = []
    done: set[str] = set()
    for rid, run in runs.items():
        if rid in done:
            continue
        members = [] if alone or not run["batch_id"] else catalog.batch_runs(run["batch_id"])
        whole = 0 < len(members) == (run["replicas_in_batch"] or 0)
        if not whole:
            members = [(r, x["setting_id"], x["seed"]) for r, x in runs.items()
                       if r not in done and x["setting_id"] == run["setting_id"]]
        parts: list[Part] = []
        for r, sid, seed in members:
            if sid not in settings:
                settings[sid] = validate_setting(catalog.setting(sid))
            if parts and parts[-1].setting is settings[sid]:
                parts[-1] = Part(parts[-1].setting, (*parts[-1].seeds, int(seed)))
            else:
                parts.append(Part(settings[sid], (int(seed),)))
            done.add(r)
        batch = Batch(tuple(parts), _start(catalog, tuple(parts)))
        plans.append(_Plan(batch, tuple(r for r, _, _ in members), whole, run["provenance"]))
    return plans


def _start(catalog: Catalog, parts: tuple[Part, ...]) -> ReplicaStart | None:
    """Where the batch's replicas start: their own init, or (a lottery round) what a registered
    builder rebuilds from the catalog; a batch nobody can rebuild is refused in one line."""
    needs = [p.setting.id for p in parts if p.setting.prune is not None and p.setting.prune.needs_study]
    if not needs:
        return None
    for builder in START_BUILDERS:
        start = builder(catalog, parts)
        if start is not None:
            return start
    raise ValueError(f"setting {needs[0]} is a lottery-ticket round whose start (masks from the previous round) "
                     "cannot be rebuilt from this catalog: rerun the study with `phenolab reproduce lottery`")


def check_runs(catalog: Catalog, run_ids: list[str], *, device: str = "cpu", threads: int | None = None,
               alone: bool = False, on_batch: Callable[[int, int], None] | None = None) -> list[RunCheck]:
    """Retrain `run_ids` (see the module doc) and compare each with the catalog. `threads`
    overrides the recorded thread count; `alone` retrains only the asked runs, not their batches."""
    wanted = set(run_ids)
    plans = plan_reruns(catalog, run_ids, alone)
    dev = resolve_device(device)
    before = torch.get_num_threads()
    checks: list[RunCheck] = []
    try:
        for i, plan in enumerate(plans):
            n = threads or plan.provenance.get("threads") or before
            torch.set_num_threads(int(n))
            now = collect_provenance(str(dev), int(n))
            results = train_batch(plan.batch, dev)
            curves = catalog.curve_arrays([r for r in plan.run_ids if r in wanted])  # one read per batch
            stored = iter(plan.run_ids)
            for part, result in zip(plan.batch.parts, results, strict=True):
                for k in range(len(part.seeds)):
                    rid = next(stored)
                    if rid in wanted:
                        checks.append(_compare(rid, curves.get(rid, {}), result.replica_curves(k), plan, now,
                                               part.setting.id))
            if on_batch is not None:
                on_batch(i + 1, len(plans))
    finally:
        torch.set_num_threads(before)
    return checks


def _compare(run_id: str, stored: dict[str, tuple[np.ndarray, np.ndarray]],
             new: dict[str, tuple[np.ndarray, np.ndarray]], plan: _Plan, now: dict[str, Any],
             setting_id_now: str) -> RunCheck:
    worst, worst_diff, first = None, 0.0, None
    for metric in sorted(set(stored) | set(new)):
        if metric not in stored or metric not in new or not np.array_equal(stored[metric][0], new[metric][0]):
            diff, at = float("inf"), 0  # a curve missing or at other steps: different from the start
        else:
            gap = _gaps(stored[metric][1], np.asarray(new[metric][1], dtype=np.float64))
            if not gap.any():
                continue
            diff, at = float(gap.max()), int(stored[metric][0][np.argmax(gap > 0)])
        first = at if first is None else min(first, at)
        if worst is None or diff > worst_diff:
            worst, worst_diff = metric, diff
    finals = {m: (float(stored[m][1][-1]), float(new[m][1][-1])) for m in sorted(set(stored) & set(new))
              if m.endswith(("_acc", "_loss")) and len(stored[m][1]) and len(new[m][1])}
    prov_diff = {f: (plan.provenance.get(f), now.get(f)) for f in BIT_FIELDS
                 if plan.provenance.get(f) != now.get(f)}
    stored_setting = run_id.rsplit("-", 1)[0]
    if setting_id_now != stored_setting:  # this version reads the stored setting into another one
        prov_diff["setting_id"] = (stored_setting, setting_id_now)
    return RunCheck(run_id, worst is None, worst, worst_diff, first, finals, plan.batch.size, plan.whole, prov_diff)


def _gaps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a − b| per step: 0 where equal (equal infinities, NaN and NaN), inf where only one is NaN."""
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    with np.errstate(invalid="ignore"):
        gap = np.abs(a - b)
    gap[a == b] = 0.0
    gap[nan_a != nan_b] = np.inf
    gap[nan_a & nan_b] = 0.0
    return gap
