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
from phenolab.catalog import Catalog, CatalogError, collect_provenance, run_id_for
from phenolab.engine import BatchResult, resolve_device, train
from phenolab.engine.packing import Part
from phenolab.execute.local import Batch, ReplicaStart, batch_records, split_result, store_batch, train_batch
from phenolab.execute.rerun import register_start_builder
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


class RoundStarts:
    """Where every run of a plan starts: its parameters, masks and data-order seeds, derived as the
    study derives them (the init and reinit generators, the stored rewind source, the masks pruned
    from the stored tickets of earlier rounds). Computed on demand, per replica, so a stored round's
    batch can be rebuilt for any subset of its seeds (`rebuild_start`)."""

    def __init__(self, plan: LotteryPlan, seeds: list[int], load: Callable[[Setting, list[int]], Params]):
        self.plan, self.seeds, self.load = plan, list(seeds), load
        self.model = study_model(plan.base)
        self.dtype = torch.float64 if plan.base.dtype == "float64" else torch.float32
        self.theta0 = self.model.init(generators(self.seeds, "init"), self.dtype)  # exactly what the engine draws
        self.names = self.model.weight_names(self.theta0)
        self._masks = {0: full_masks(self.theta0, self.names)}
        self._start: Params | None = None

    def start(self) -> Params:
        """θ_k: the init, or the rewind source's stored final parameters."""
        if self._start is None:
            source = self.plan.rewind_source()
            self._start = self.theta0 if source is None else self.load(source, self.seeds)
        return self._start

    def masks(self, r: int) -> Masks:
        """Round r's masks: r IMP rounds, each pruning the previous round's stored ticket."""
        prune = self.plan.base.prune
        rates = layer_rates(self.names, prune.rate_hidden, prune.rate_output)
        for i in range(max(self._masks) + 1, r + 1):
            trained = self.load(self.plan.dense() if i == 1 else self.plan.run(i - 1, "ticket"), self.seeds)
            self._masks[i] = prune_round(trained, self._masks[i - 1], rates, prune.scope)
        return self._masks[r]

    def source_part(self) -> _Part | None:
        """The dense run trained to the rewind step (its final parameters are θ_k), if k > 0."""
        source = self.plan.rewind_source()
        return None if source is None else _Part(source, self.seeds, self.theta0, self._masks[0], self.seeds)

    def round_parts(self, r: int) -> list[_Part]:
        """Round r's runs, one part per setting: round 0 the dense net (and its copies), then the
        ticket, its two controls and, in instability rounds, the ticket's other-data-order copy."""
        plan, own = self.plan, self.seeds
        alt = [alternate_order_seed(s) for s in own]
        copies = r in plan.instability_rounds()
        if r == 0:
            parts = [_Part(plan.dense(), own, self.theta0, self._masks[0], own)]
            if copies:
                parts += [_Part(plan.run(0, "ticket"), own, self.start(), self._masks[0], own),
                          _Part(plan.run(0, "ticket", "alternate"), own, self.start(), self._masks[0], alt)]
            return parts
        masks = self.masks(r)
        reinit = self.model.init(generators(own, REINIT_STREAM), self.dtype)
        shuffled = shuffle_masks(masks, generators(own, f"{SHUFFLE_STREAM}/{r}"))
        parts = [_Part(plan.run(r, "ticket"), own, self.start(), masks, own),
                 _Part(plan.run(r, "reinit"), own, reinit, masks, own),
                 _Part(plan.run(r, "shuffle"), own, self.start(), shuffled, own)]
        if copies:
            parts.append(_Part(plan.run(r, "ticket", "alternate"), own, self.start(), masks, alt))
        return parts


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
    starts = RoundStarts(plan, seeds, ctx.load_final)
    source = starts.source_part()
    if source is not None:
        ctx.train([source], plan.rewind_step)
    per_round = steps_per_run(plan.base)
    for r in range(plan.rounds + 1):
        ctx.train(starts.round_parts(r), per_round)
        if on_round is not None:
            on_round(r, plan.rounds)
    return ctx.written


@register_start_builder
def rebuild_start(catalog: Catalog, parts: tuple[Part, ...]) -> ReplicaStart | None:
    """The start of a stored lottery batch (a round's ticket, controls and copies), rebuilt from the
    catalog as the study built it, so `phenolab rerun` can retrain it; None when the parts are not
    one round of one lottery study, or the catalog lacks what the round was built from."""
    studied = [p.setting for p in parts if p.setting.prune is not None and p.setting.prune.needs_study]
    if not studied:
        return None
    ref = studied[0]  # a round's run: the study's schedule (not the rewind source's) and, from round 1, its rates
    prune = ref.prune
    base = ref.model_copy(update={"prune": None}).with_overrides(
        {"prune.control": "dense", "prune.rate_hidden": prune.rate_hidden, "prune.rate_output": prune.rate_output,
         "prune.scope": prune.scope})
    seeds = sorted({s for p in parts for s in p.seeds})
    plan = LotteryPlan(base, max(prune.round, 1), prune.rewind_step, "all")
    starts = RoundStarts(plan, seeds, lambda setting, sd: load_final(catalog, setting, sd))
    try:
        built = {p.setting.id: p for p in starts.round_parts(prune.round)}
    except CatalogError:  # the earlier rounds or the rewind source are not stored (with checkpoints)
        return None
    if any(p.setting.id not in built for p in parts):
        return None  # not the settings this plan makes: a batch of another shape
    pieces = [built[p.setting.id].subset([seeds.index(s) for s in p.seeds]) for p in parts]
    return ReplicaStart({n: torch.cat([q.init[n] for q in pieces]) for n in pieces[0].init},
                        {n: torch.cat([q.masks[n] for q in pieces]) for n in pieces[0].masks},
                        tuple(o for q in pieces for o in q.orders))


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
