"""A lottery study's rounds, trained in stages: round r's masks come from round r − 1's tickets.

Each round is stored as it finishes (through `phenolab.execute`, as every batch is), so an
interrupted study resumes where it stopped. Within a round, the ticket, its controls, every seed
and the instability copy train as one batched program: the engine ignores the settings' `prune`
section, so runs of different controls differ only in their start, mask and data order, which
the engine takes per replica (`execute.ReplicaStart`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from phenolab._rng import generators
from phenolab.catalog import Catalog, collect_provenance, run_id_for
from phenolab.engine import BatchResult, resolve_device, train
from phenolab.engine.packing import Part
from phenolab.execute.local import Batch, ReplicaStart, batch_records, split_result, store_batch, train_batch
from phenolab.models import Params
from phenolab.phenomena.lottery.plan import LotteryPlan, alternate_order_seed, steps_per_run, study_model
from phenolab.pruning import Masks, full_masks, layer_rates, prune_round, shuffle_masks
from phenolab.settings import Setting

REINIT_STREAM = "lottery_reinit"  # fresh init of the reinit control: the same draw in every round of a seed
SHUFFLE_STREAM = "lottery_shuffle"  # + "/<round>": the shuffled-mask control's permutations
StudyProgress = Callable[[int, int], None]  # (optimizer steps, runs) done so far of `study_work`


@dataclass
class _Part:
    """Runs of one setting inside a round's batch: their start, masks and data orders."""

    setting: Setting
    seeds: list[int]
    init: Params
    masks: Masks
    orders: list[int]

    def subset(self, keep: list[int]) -> _Part:
        idx = torch.tensor(keep, dtype=torch.long)
        return _Part(self.setting, [self.seeds[i] for i in keep], {n: v[idx] for n, v in self.init.items()},
                     {n: v[idx] for n, v in self.masks.items()}, [self.orders[i] for i in keep])


def run_rounds(plan: LotteryPlan, seeds: list[int], catalog: Catalog, *, device: str = "auto",
               batched: bool = True, on_round: Callable[[int, int], None] | None = None,
               progress: StudyProgress | None = None) -> list[str]:
    """Train what the catalog lacks, round by round; returns the run ids written.

    `batched=False` trains every replica alone (the per-model loop of bench/lottery_study.py);
    `on_round(round, rounds)` is called after each round is stored; `progress(steps, runs)` while
    training and after every batch, stored ones included, counting towards `study_work`.
    """
    dev = resolve_device(device)
    ctx = _Context(catalog, dev, batched, collect_provenance(str(dev), torch.get_num_threads()), progress)
    model = study_model(plan.base)
    dtype = torch.float64 if plan.base.dtype == "float64" else torch.float32
    theta0 = model.init(generators(seeds, "init"), dtype)  # exactly what the engine draws
    names = model.weight_names(theta0)
    masks = full_masks(theta0, names)
    own, alt = list(seeds), [alternate_order_seed(s) for s in seeds]

    start = theta0
    source = plan.rewind_source()
    if source is not None:
        ctx.train([_Part(source, own, theta0, masks, own)], plan.rewind_step)
        start = ctx.load_final(source, seeds)
    instability = plan.instability_rounds()
    round0 = [_Part(plan.dense(), own, theta0, masks, own)]
    if 0 in instability:
        round0 += [_Part(plan.run(0, "ticket"), own, start, masks, own),
                   _Part(plan.run(0, "ticket", "alternate"), own, start, masks, alt)]
    per_round = steps_per_run(plan.base)
    ctx.train(round0, per_round)
    if on_round is not None:
        on_round(0, plan.rounds)

    rates = layer_rates(names, plan.base.prune.rate_hidden, plan.base.prune.rate_output)
    reinit = model.init(generators(seeds, REINIT_STREAM), dtype)
    for r in range(1, plan.rounds + 1):
        trained = ctx.load_final(plan.dense() if r == 1 else plan.run(r - 1, "ticket"), seeds)
        masks = prune_round(trained, masks, rates, plan.base.prune.scope)
        shuffled = shuffle_masks(masks, generators(seeds, f"{SHUFFLE_STREAM}/{r}"))
        parts = [_Part(plan.run(r, "ticket"), own, start, masks, own),
                 _Part(plan.run(r, "reinit"), own, reinit, masks, own),
                 _Part(plan.run(r, "shuffle"), own, start, shuffled, own)]
        if r in instability:
            parts.append(_Part(plan.run(r, "ticket", "alternate"), own, start, masks, alt))
        ctx.train(parts, per_round)
        if on_round is not None:
            on_round(r, plan.rounds)
    return ctx.written


@dataclass
class _Context:
    catalog: Catalog
    device: torch.device
    batched: bool
    provenance: dict[str, Any]
    progress: StudyProgress | None = None
    written: list[str] = field(default_factory=list)
    steps_done: int = 0
    runs_done: int = 0

    def train(self, parts: list[_Part], steps: int) -> None:
        """Train the parts' missing runs (`steps` each) as one batched program; store them all in
        one transaction."""
        runs = len({p.setting.id for p in parts}) * len(parts[0].seeds)
        self._train(parts)
        self._advance(steps, runs)

    def _advance(self, steps: int, runs: int) -> None:
        self.steps_done += steps
        self.runs_done += runs
        if self.progress is not None:
            self.progress(self.steps_done, self.runs_done)

    def _on_step(self, done: int, _total: int) -> None:
        if self.progress is not None:
            self.progress(self.steps_done + done, self.runs_done)

    def _train(self, parts: list[_Part]) -> None:
        """The parts' runs the catalog lacks, as one batch (every part keeps only its missing seeds)."""
        todo = []
        for part in parts:
            done = self.catalog.existing_seeds(part.setting.id)
            keep = [i for i, s in enumerate(part.seeds) if s not in done]
            if keep and not any(p.setting.id == part.setting.id for p in todo):
                todo.append(part.subset(keep))
        if not todo:
            return
        start = ReplicaStart({n: torch.cat([p.init[n] for p in todo]) for n in todo[0].init},
                             {n: torch.cat([p.masks[n] for p in todo]) for n in todo[0].masks},
                             tuple(o for p in todo for o in p.orders))
        batch = Batch(tuple(Part(p.setting, tuple(p.seeds)) for p in todo), start)
        results = train_batch(batch, self.device, self._on_step) if self.batched else _one_by_one(batch, self.device)
        provenance = dict(self.provenance, lottery_batch=batch.size, batched=self.batched)
        # the round's parts whole or not at all (Ctrl-C), as every batch
        self.written += store_batch(self.catalog, batch_records(batch, results, provenance))

    def load_final(self, setting: Setting, seeds: list[int]) -> Params:
        return load_final(self.catalog, setting, seeds)


def load_final(catalog: Catalog, setting: Setting, seeds: list[int]) -> Params:
    """The stored final parameters of (setting, seed) for every seed, stacked [K, ...]."""
    per_seed = [catalog.load_checkpoint(run_id_for(setting.id, s)) for s in seeds]
    return {n: torch.stack([p[n] for p in per_seed]) for n in per_seed[0]}


def _one_by_one(batch: Batch, device: torch.device) -> list[BatchResult]:
    """Every replica of the batch trained alone (a benchmark's per-model loop), put back together."""
    start = batch.start
    assert start is not None
    singles = [train(batch.setting, [s], device=device, init_params={n: v[i:i + 1] for n, v in start.init.items()},
                     masks={n: v[i:i + 1] for n, v in start.masks.items()}, order_seeds=[start.order_seeds[i]])
               for i, s in enumerate(batch.seeds)]
    first = singles[0]
    merged = replace(
        first, seeds=list(batch.seeds), finished=singles[-1].finished,
        curves={m: np.concatenate([r.curves[m] for r in singles]) for m in first.curves},
        params={n: torch.cat([r.params[n] for r in singles]) for n in first.params},
        checkpoints={step: {n: torch.cat([r.checkpoints[step][n] for r in singles]) for n in ps}
                     for step, ps in first.checkpoints.items()})
    return split_result(merged, batch.parts)
