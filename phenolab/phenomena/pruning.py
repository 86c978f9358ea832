"""Iterative magnitude pruning on batched replicas: masks, controls, and a study's staged rounds.

Pruning follows Frankle & Carbin 2019: each round removes the smallest-magnitude *surviving*
weights, `round(rate · survivors)` of them (the count `torch.nn.utils.prune.l1_unstructured`
takes when called again on a pruned tensor), per layer (hidden layers at one rate, the output
layer at another) or across all layers at once. Biases are never pruned. Masks are `[K, ...]`
like the parameters: one mask per replica, 1 = keep; the engine applies them to gradients and
parameters at every step, so pruned weights stay exactly zero through Adam and weight decay.

A study's rounds run in stages (`run_rounds`): round r's mask comes from round r − 1's trained
ticket, read back from the catalog, so each round is stored as it finishes and an interrupted
study resumes where it stopped. Within a round, the ticket, its controls, every seed and the
instability copy train as one batched program: the engine ignores the settings' `prune`
section, so runs of different controls differ only in their start, mask and data order, which
the engine takes per replica.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from phenolab._rng import generators
from phenolab.catalog import Catalog, collect_provenance, run_id_for
from phenolab.engine import BatchResult, resolve_device, total_steps, train
from phenolab.execute import to_records
from phenolab.models import BatchedModel, Params, build_model, model_class
from phenolab.settings import Setting, validate_setting
from phenolab.tasks import build_task

Masks = dict[str, torch.Tensor]
CONTROLS = ("ticket", "reinit", "shuffle")
INSTABILITY = ("ends", "all", "none")  # rounds with a second-data-order copy: 0 and the last, every, none
REINIT_STREAM = "lottery_reinit"  # fresh init of the reinit control: the same draw in every round of a seed
SHUFFLE_STREAM = "lottery_shuffle"  # + "/<round>": the shuffled-mask control's permutations
StudyProgress = Callable[[int, int], None]  # (optimizer steps, runs) done so far of `study_work`


def full_masks(params: Params, names: list[str]) -> Masks:
    """All-ones masks for the weight tensors `names` (round 0: nothing pruned)."""
    return {n: torch.ones_like(params[n]) for n in names}


def layer_rates(names: list[str], rate_hidden: float, rate_output: float) -> dict[str, float]:
    """Per-layer pruning rates: the last weight tensor is the output layer (MLP `w{depth}`)."""
    return {n: (rate_output if i == len(names) - 1 else rate_hidden) for i, n in enumerate(names)}


def prune_count(rate: float, survivors: int) -> int:
    """How many of `survivors` weights one round removes: Python's round, as torch's pruning."""
    return round(rate * survivors)


def expected_survivors(size: int, rate: float, rounds: int) -> int:
    """Weights left in a tensor of `size` after `rounds` rounds at `rate` (layer-wise scope)."""
    keep = size
    for _ in range(rounds):
        keep -= prune_count(rate, keep)
    return keep


def prune_round(params: Params, masks: Masks, rates: dict[str, float], scope: str = "layer") -> Masks:
    """One IMP round: new masks without the smallest-|w| survivors of the trained `params`.

    `scope="layer"` prunes each tensor at its own rate; `"global"` ranks all tensors together
    at the hidden rate (open_lth's sparse_global strategy, output layer included).
    """
    if scope == "layer":
        return {n: _prune_rows(params[n], masks[n], rates[n]) for n in masks}
    if scope != "global":
        raise ValueError(f"prune.scope {scope!r}; allowed: layer, global")
    names = list(masks)
    rate = rates[names[0]]
    flat_w = torch.cat([params[n].reshape(params[n].shape[0], -1) for n in names], dim=1)
    flat_m = torch.cat([masks[n].reshape(masks[n].shape[0], -1) for n in names], dim=1)
    pruned = _prune_rows(flat_w, flat_m, rate)
    out, lo = {}, 0
    for n in names:
        size = masks[n][0].numel()
        out[n] = pruned[:, lo:lo + size].reshape(masks[n].shape)
        lo += size
    return out


def _prune_rows(weights: torch.Tensor, mask: torch.Tensor, rate: float) -> torch.Tensor:
    """Per replica (row of the leading dim), zero the mask at the round(rate · survivors) smallest
    |w| among survivors; pruned entries rank last (+inf) so they are never counted twice."""
    k = weights.shape[0]
    w = weights.detach().reshape(k, -1).abs().double()
    m = mask.reshape(k, -1) != 0
    scores = torch.where(m, w, torch.full_like(w, float("inf")))
    out = m.clone()
    for r in range(k):  # survivors may differ per replica under global scope
        n_prune = prune_count(rate, int(m[r].sum()))
        if n_prune:
            out[r, torch.topk(scores[r], n_prune, largest=False).indices] = False
    return out.to(mask.dtype).reshape(mask.shape)


def shuffle_masks(masks: Masks, gens: list[torch.Generator]) -> Masks:
    """The random-mask control: each replica's mask permuted within each layer (same per-layer
    sparsity, random positions), drawn from that replica's own generator."""
    out: Masks = {}
    for n, m in masks.items():
        rows = []
        for r, gen in enumerate(gens):
            flat = m[r].reshape(-1)
            rows.append(flat[torch.randperm(flat.numel(), generator=gen)].reshape(m[r].shape))
        out[n] = torch.stack(rows)
    return out


def remaining_fraction(masks: Masks) -> torch.Tensor:
    """Share of weights left per replica, [K] (biases are not counted, as in Frankle & Carbin)."""
    kept = sum(m.reshape(m.shape[0], -1).double().sum(1) for m in masks.values())
    total = sum(m[0].numel() for m in masks.values())
    return kept / total


def alternate_order_seed(seed: int) -> int:
    """Data-order seed of the instability copy: negative, so it never equals a run's own seed."""
    return -(int(seed) + 1)


@dataclass(frozen=True)
class LotteryPlan:
    """What one lottery study stands for: the settings of every round and control."""

    base: Setting  # the canonical setting (its prune section gives the rates and scope)
    rounds: int
    rewind_step: int = 0
    instability: str = "ends"

    @property
    def prune(self) -> dict[str, Any]:
        p = self.base.prune
        return {"rate_hidden": p.rate_hidden, "rate_output": p.rate_output, "scope": p.scope} if p else {}

    def _make(self, prune: dict[str, Any], schedule: dict[str, Any] | None = None) -> Setting:
        data = self.base.model_dump(mode="json")
        data.update(prune=prune, checkpoints="final")
        if schedule is not None:
            data["schedule"] = {**data["schedule"], **schedule}
        return validate_setting(data)

    def dense(self) -> Setting:
        """The dense baseline (round 0), trained from the init: also the first mask's source."""
        return self._make({"control": "dense"})

    def rewind_source(self) -> Setting | None:
        """The dense setting trained for `rewind_step` steps: its final params are θ_k (the engine is
        deterministic, so they equal the dense run's params at step k)."""
        if self.rewind_step == 0:
            return None
        return self._make({"control": "dense"}, {"steps": self.rewind_step, "epochs": None})

    def run(self, round: int, control: str, data_order: str = "seed") -> Setting:
        """Round ≥ 1: the mask of `round` IMP rounds with `control`; round 0: the unpruned start."""
        if round == 0 and control == "ticket" and self.rewind_step == 0 and data_order == "seed":
            return self.dense()
        prune = {"round": round, "control": control, "rewind_step": self.rewind_step, "data_order": data_order}
        return self._make({**prune, **(self.prune if round > 0 else {})})

    def instability_rounds(self) -> list[int]:
        return {"ends": sorted({0, self.rounds}), "all": list(range(self.rounds + 1)), "none": []}[self.instability]

    def settings(self) -> list[Setting]:
        """Every setting of the study; the last round's ticket first (it names the study's figure)."""
        out = [self.run(self.rounds, "ticket"), self.dense()]
        out += [s for s in [self.rewind_source()] if s is not None]
        out += [self.run(r, c) for r in range(1, self.rounds + 1) for c in CONTROLS]
        for r in self.instability_rounds():
            out += [self.run(r, "ticket"), self.run(r, "ticket", "alternate")]
        return list({s.id: s for s in out}.values())

    def with_rewind(self, rewind_step: int) -> LotteryPlan:
        return LotteryPlan(self.base, self.rounds, rewind_step, self.instability)


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


def study_work(plan: LotteryPlan, seeds: list[int]) -> tuple[int, int]:
    """(runs, optimizer steps) of a whole study, stored or not: the total of a progress bar, since
    `run_rounds` counts stored rounds as done rather than leaving the bar short of its end."""
    return len(plan.settings()) * len(seeds), plan.rewind_step + (plan.rounds + 1) * steps_per_run(plan.base)


def steps_per_run(setting: Setting) -> int:
    """Optimizer steps of one run of `setting` (epochs are counted on the task's training split)."""
    return total_steps(setting, build_task(setting.task, [0], model_class(setting.model.name).input_kind).n_train)


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
        todo = []
        for part in parts:
            done = self.catalog.existing_seeds(part.setting.id)
            keep = [i for i, s in enumerate(part.seeds) if s not in done]
            if keep and not any(p.setting.id == part.setting.id for p in todo):
                todo.append(part.subset(keep))
        if not todo:
            return
        engine_setting = todo[0].setting
        assert all(_engine_view(p.setting) == _engine_view(engine_setting) for p in todo)
        seeds = [s for p in todo for s in p.seeds]
        init = {n: torch.cat([p.init[n] for p in todo]) for n in todo[0].init}
        masks = {n: torch.cat([p.masks[n] for p in todo]) for n in todo[0].masks}
        orders = [o for p in todo for o in p.orders]
        result = _train(engine_setting, seeds, init, masks, orders, self.device, self.batched, self._on_step)
        lo, groups = 0, []
        batch_id = f"{engine_setting.id}@{result.started:.6f}"
        prov = dict(self.provenance, batch_wall_s=result.wall_s, lottery_batch=len(seeds), batched=self.batched)
        for part in todo:
            piece = _slice(result, part.setting, part.seeds, lo)
            records = to_records(piece, prov, batch_id, len(seeds), first_replica=lo)
            lo += len(part.seeds)
            groups.append((part.setting.canonical_json(), part.setting.id, records))
        self.written += self.catalog.write_many(groups)  # the round's parts whole or not at all (Ctrl-C)

    def load_final(self, setting: Setting, seeds: list[int]) -> Params:
        return load_final(self.catalog, setting, seeds)


def load_final(catalog: Catalog, setting: Setting, seeds: list[int]) -> Params:
    """The stored final parameters of (setting, seed) for every seed, stacked [K, ...]."""
    per_seed = [catalog.load_checkpoint(run_id_for(setting.id, s)) for s in seeds]
    return {n: torch.stack([p[n] for p in per_seed]) for n in per_seed[0]}


def _engine_view(setting: Setting) -> str:
    """What the engine reads of a setting: everything but the prune section."""
    return setting.model_copy(update={"prune": None}).canonical_json()


def _train(setting: Setting, seeds: list[int], init: Params, masks: Masks, orders: list[int],
           device: torch.device, batched: bool, progress: Callable[[int, int], None] | None = None) -> BatchResult:
    if batched:  # (one-by-one training, a benchmark's baseline, reports when its batch is done)
        return train(setting, seeds, device=device, init_params=init, masks=masks, order_seeds=orders,
                     progress=progress)
    singles = [train(setting, [s], device=device, init_params={n: v[i:i + 1] for n, v in init.items()},
                     masks={n: v[i:i + 1] for n, v in masks.items()}, order_seeds=[orders[i]])
               for i, s in enumerate(seeds)]
    first = singles[0]
    return replace(
        first, seeds=list(seeds), finished=singles[-1].finished,
        curves={m: np.concatenate([r.curves[m] for r in singles]) for m in first.curves},
        params={n: torch.cat([r.params[n] for r in singles]) for n in first.params},
        checkpoints={step: {n: torch.cat([r.checkpoints[step][n] for r in singles]) for n in ps}
                     for step, ps in first.checkpoints.items()})


def _slice(result: BatchResult, setting: Setting, seeds: list[int], lo: int) -> BatchResult:
    """Replicas lo.. of a merged batch as the result of `setting` alone."""
    hi = lo + len(seeds)
    return replace(result, setting=setting, seeds=list(seeds), curves={m: v[lo:hi] for m, v in result.curves.items()},
                   params={n: v[lo:hi] for n, v in result.params.items()},
                   checkpoints={step: {n: v[lo:hi] for n, v in ps.items()} for step, ps in result.checkpoints.items()})


def study_model(setting: Setting) -> BatchedModel:
    """The batched model of a setting (its input and output sizes read from the task)."""
    data = build_task(setting.task, [0], model_class(setting.model.name).input_kind)
    return build_model(setting.model, data.input_dim, data.out_dim, data.seq_len)
