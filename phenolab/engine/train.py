"""The training loop: K replicas of one setting (one per seed) as one batched program.

Reads top to bottom: build data and models, then for each step draw every replica's batch
from its own generator, take one optimizer step on the sum of per-replica mean losses,
re-apply pruning masks, and record curves at the scheduled steps. What a step computes (its
gradient program, and so its speed) is chosen in `engine.step`; `BatchResult.strategy` says which.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from phenolab import _cpu_isa
from phenolab._rng import generators
from phenolab.engine.ensembles import coupling_of, stream_seeds, whole_ensembles
from phenolab.engine.evaluate import evaluate, measure_key
from phenolab.engine.gradient_filters import gradient_filter
from phenolab.engine.optim import ReplicaOptimizer, lstsq_readout
from phenolab.engine.replica_groups import ReplicaGroup, groups_within, replica_slice
from phenolab.engine.replica_threads import Stopped, cat_params, replica_thread_count, run_in_threads, split_slices
from phenolab.engine.schedule import eval_steps, total_steps, warmup_factor
from phenolab.engine.step import Fit, grad_program
from phenolab.measures import MeasureContext, compute_measure
from phenolab.models import BatchedModel, Params, build_model, model_class
from phenolab.settings import Setting, SettingError
from phenolab.tasks import TaskData, build_task

ProgressFn = Callable[[int, int], None]  # (steps done, total steps)


@dataclass
class BatchResult:
    """What one batched program produced: curves per replica, final (and checkpointed) params."""

    setting: Setting
    seeds: list[int]
    steps: list[int]
    curves: dict[str, np.ndarray]  # metric -> [K, len(steps)] float64
    params: Params  # final, [K, ...], on CPU
    checkpoints: dict[int, Params] = field(default_factory=dict)  # step -> [K, ...] on CPU
    started: float = 0.0
    finished: float = 0.0
    device: str = "cpu"
    strategy: str = ""  # the gradient program used (see `engine.step`)

    @property
    def wall_s(self) -> float:
        return self.finished - self.started

    def replica_curves(self, k: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        steps = np.asarray(self.steps, dtype=np.int64)
        return {m: (steps, v[k].astype(np.float64)) for m, v in self.curves.items()}


DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"


def resolve_device(device: str = "auto", *, available: bool = True) -> torch.device:
    """'auto' is CUDA when present, else CPU. Anything but cpu/cuda[:N], or (with `available`) a
    CUDA device this machine lacks, is a SettingError saying what is allowed: a user's typo or a
    CPU-only torch must not surface as a traceback from deep inside torch."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda"):
        raise SettingError(f"device {device!r}: allowed {DEVICE_CHOICES}")
    if available and dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise SettingError(f"device {device!r}: this machine has no CUDA GPU that torch {torch.__version__} "
                               "can use; use cpu or auto")
        if (dev.index or 0) >= count:
            raise SettingError(f"device {device!r}: this machine has {count} CUDA GPU(s), cuda:0 to cuda:{count - 1}")
    return dev


def train(
    setting: Setting,
    seeds: list[int],
    *,
    device: str | torch.device = "cpu",
    init_params: Params | None = None,
    masks: dict[str, torch.Tensor] | None = None,
    order_seeds: list[int] | None = None,
    progress: ProgressFn | None = None,
    data: TaskData | None = None,
    groups: list[ReplicaGroup] | None = None,
    replica_threads: int | None = None,
) -> BatchResult:
    """Train the runs (setting, seed) for all `seeds` as one batched program.

    `init_params` replaces the drawn init (lottery-ticket rewinding), `masks` (1 = keep) are
    applied to gradients and parameters at every step so pruned weights stay exactly zero, and
    `order_seeds` draws data order from other seeds (linear mode connectivity: same init,
    different order). `groups` (from `engine.packing`) say which replicas are narrower models
    padded to this setting's shapes (measures are computed on each group's own parameters) and
    which optimizer hyperparameters each group trains with. `replica_threads` (default: chosen by
    `engine.replica_threads`, 1 = never; not for padded groups) trains contiguous slices of the
    replicas side by side in threads, one core per op. Members of ensembles that train together
    (`Setting.ensemble`, see `engine.ensembles`) are trained with their whole ensembles, and the
    result holds the asked-for seeds.
    """
    _cpu_isa.check()  # a bad PHENOLAB_CPU_ISA is an error, not a silent change of kernels
    widened = whole_ensembles(setting, list(seeds))
    if widened is not None:
        if init_params is not None or masks or order_seeds is not None or groups is not None:
            raise SettingError("ensemble: members that train together take no given start, masks, data order "
                               "or packing")
        members, where = widened
        if members != list(seeds):
            whole = train(setting, members, device=device, progress=progress, replica_threads=replica_threads)
            return _select(whole, where)
    started = time.time()
    dev = resolve_device(device) if isinstance(device, str) else device
    dtype = torch.float64 if setting.dtype == "float64" else torch.float32
    streams = stream_seeds(setting, list(seeds))
    if data is None:
        data = build_task(setting.task, streams["data"], model_class(setting.model.name).input_kind, dtype)
    data = data.to(dev)
    model = build_model(setting.model, data.input_dim, data.out_dim, data.seq_len)
    unpadded = groups is None or len({tuple(sorted(g.shapes.items())) for g in groups}) == 1
    if replica_threads is None and unpadded and setting.optim.name != "lstsq":
        rows = min(setting.schedule.batch_size or data.n_train, data.n_train)
        replica_threads = replica_thread_count(model, setting.loss, rows, len(seeds), dtype, dev)
    if replica_threads is not None and replica_threads > 1:
        return _train_in_threads(setting, seeds, replica_threads, dev, init_params, masks, order_seeds,
                                 progress, data, started, groups)
    params = model.init(generators(streams["init"], "init"), dtype, dev)
    if init_params is not None:
        params = {n: init_params[n].to(dev, dtype).clone() for n in params}
    masks = {n: m.to(dev, dtype) for n, m in (masks or {}).items()}
    for name, mask in masks.items():
        params[name].mul_(mask)
    start_params = {n: p.detach().clone() for n, p in params.items()}

    if setting.optim.name == "lstsq":
        return _solve(setting, seeds, model, params, start_params, data, started, dev)

    trainable = [n for n in params if n not in model.frozen]
    for n in trainable:
        params[n].requires_grad_(True)
    spans = None if groups is None else [(g.lo, g.hi, g.optim) for g in groups]
    optimizer = ReplicaOptimizer(setting.optim, [params[n] for n in trainable], spans)

    n_train = data.n_train
    batch = min(setting.schedule.batch_size or n_train, n_train)
    total = total_steps(setting, n_train)
    record_at = eval_steps(total, setting.eval.points, setting.eval.every)
    batches = _BatchSampler(order_seeds or streams["order"], n_train, batch, dev)
    recorder = _Recorder(setting, model, start_params, data, groups)
    checkpoints: dict[int, Params] = {}
    grads = grad_program(model, setting.loss, data.num_classes, trainable, coupling_of(setting))
    x_rows, y_rows = _Rows(data.x_train), _Rows(data.y_train)
    filter_grads = gradient_filter(setting.optim, [params[n] for n in trainable])
    warmup = setting.optim.warmup_steps

    next_record = 0
    for step in range(total + 1):
        record = step == record_at[next_record]
        # On the full batch, a recorded step's own forward is the train-set evaluation: its fit
        # is recorded instead of a second pass over the training set (at the last step, which
        # takes no step, the program runs for its fit alone).
        fit = None
        if step < total or (record and batches.full):
            idx = batches.next()
            fit = grads(params, x_rows.take(idx), y_rows.take(idx), fit=record and batches.full)
        if record:
            recorder.record(step, params, fit)
            if setting.checkpoints == "eval" or (setting.checkpoints == "final" and step == total):
                checkpoints[step] = _to_cpu(params)
            next_record += 1
        if step == total:
            break
        if filter_grads is not None:
            filter_grads()
        for name, mask in masks.items():
            params[name].grad.mul_(mask)
        if warmup and step <= warmup:
            optimizer.lr_scale = warmup_factor(step, warmup)
        optimizer.step()
        if masks:
            with torch.no_grad():
                for name, mask in masks.items():
                    params[name].mul_(mask)
        if progress is not None and (step + 1) % 50 == 0:
            progress(step + 1, total)
    if progress is not None:
        progress(total, total)
    return BatchResult(setting, list(seeds), recorder.steps, recorder.curves(), _to_cpu(params),
                       checkpoints, started, time.time(), str(dev), grads.strategy)


def _train_in_threads(setting: Setting, seeds: list[int], threads: int, dev: torch.device,
                      init_params: Params | None, masks: dict[str, torch.Tensor] | None,
                      order_seeds: list[int] | None, progress: ProgressFn | None, data: TaskData,
                      started: float, groups: list[ReplicaGroup] | None = None) -> BatchResult:
    """`train` of contiguous groups of the replicas, one thread each (`engine.replica_threads`),
    put back together as one batch's result."""
    k = len(seeds)

    def rows(t: dict[str, torch.Tensor] | None, lo: int, hi: int) -> dict[str, torch.Tensor] | None:
        return None if t is None else {n: v[lo:hi] if v.shape[0] == k else v for n, v in t.items()}

    def job(lo: int, hi: int, report: bool) -> Callable[[threading.Event], BatchResult]:
        def run(stop: threading.Event) -> BatchResult:
            def reported(done: int, total: int) -> None:
                if stop.is_set():
                    raise Stopped
                if report and progress is not None:
                    progress(done, total)

            return train(setting, seeds[lo:hi], device=dev, init_params=rows(init_params, lo, hi),
                         masks=rows(masks, lo, hi), order_seeds=None if order_seeds is None else order_seeds[lo:hi],
                         progress=reported, data=replica_slice(data, lo, hi), replica_threads=1,
                         groups=None if groups is None else groups_within(groups, lo, hi))
        return run

    coupling = coupling_of(setting)
    unit = coupling.members if coupling is not None else 1  # a thread trains whole ensembles
    slices = [(lo * unit, hi * unit) for lo, hi in split_slices(k // unit, threads)]
    parts = [job(lo, hi, i == 0) for i, (lo, hi) in enumerate(slices)]
    results: list[BatchResult] = run_in_threads(parts)  # type: ignore[assignment]
    first = results[0]
    return BatchResult(setting, list(seeds), first.steps,
                       {m: np.concatenate([r.curves[m] for r in results]) for m in first.curves},
                       cat_params([r.params for r in results]),
                       {step: cat_params([r.checkpoints[step] for r in results]) for step in first.checkpoints},
                       started, time.time(), str(dev), f"{first.strategy}, {len(results)} replica threads")


def _select(result: BatchResult, where: list[int]) -> BatchResult:
    """The result of the replicas at positions `where`, in that order."""
    idx = torch.tensor(where)
    return replace(result, seeds=[result.seeds[i] for i in where],
                   curves={m: v[where] for m, v in result.curves.items()},
                   params={n: p.index_select(0, idx) for n, p in result.params.items()},
                   checkpoints={step: {n: p.index_select(0, idx) for n, p in ps.items()}
                                for step, ps in result.checkpoints.items()})


def _solve(setting: Setting, seeds: list[int], model: BatchedModel, params: Params, start: Params,
           data: TaskData, started: float, dev: torch.device) -> BatchResult:
    """The exact fit: step 0 is the init, step 1 the min-norm / ridge solution."""
    recorder = _Recorder(setting, model, start, data)
    recorder.record(0, params)
    targets = data.y_train
    if data.num_classes is not None:  # regression onto one-hot targets
        targets = torch.nn.functional.one_hot(targets, data.num_classes).to(params[model.readout].dtype)
    with torch.no_grad():
        phi = model.features(params, data.x_train)
        params[model.readout] = lstsq_readout(phi, targets, setting.optim.ridge)
    recorder.record(1, params)
    checkpoints = {1: _to_cpu(params)} if setting.checkpoints != "none" else {}
    return BatchResult(setting, list(seeds), recorder.steps, recorder.curves(), _to_cpu(params),
                       checkpoints, started, time.time(), str(dev), "lstsq")


class _BatchSampler:
    """Each replica's own shuffled order (sampling without replacement, reshuffled each epoch)."""

    def __init__(self, seeds: list[int], n: int, batch: int, device: torch.device):
        self.full = batch >= n
        self.n, self.batch, self.device = n, batch, device
        self.gens = generators(seeds, "order")
        self.per_epoch = math.ceil(n / batch)
        self.pos = self.per_epoch
        self.order: torch.Tensor | None = None

    def next(self) -> torch.Tensor | None:
        if self.full:
            return None
        if self.pos == self.per_epoch:
            self.order = torch.stack([torch.randperm(self.n, generator=g) for g in self.gens]).to(self.device)
            self.pos = 0
        lo = self.pos * self.batch
        self.pos += 1
        return self.order[:, lo:lo + self.batch]


class _Rows:
    """Gathers rows `idx[k]` of replica k with one `index_select` (advanced indexing of `[K, N]`
    by `[K, B]` costs ~4× more per step); a shared (expanded) tensor is indexed once, not K times."""

    def __init__(self, t: torch.Tensor):
        self.full = t
        self.shared = t.dim() > 0 and t.shape[0] > 1 and t.stride(0) == 0
        self.flat = t[0] if self.shared else t.reshape(t.shape[0] * t.shape[1], *t.shape[2:])
        self.offsets = torch.arange(t.shape[0], device=t.device).unsqueeze(1) * t.shape[1]

    def take(self, idx: torch.Tensor | None) -> torch.Tensor:
        if idx is None:
            return self.full
        flat = idx.reshape(-1) if self.shared else (idx + self.offsets).view(-1)
        return self.flat.index_select(0, flat).view(*idx.shape, *self.full.shape[2:])


def _to_cpu(params: Params) -> Params:
    return {n: p.detach().to("cpu").clone() for n, p in params.items()}


class _Recorder:
    """Collects train/test loss and accuracy and the setting's measures at each recorded step."""

    def __init__(self, setting: Setting, model: BatchedModel, init: Params, data: TaskData,
                 groups: list[ReplicaGroup] | None = None):
        self.setting, self.model, self.data = setting, model, data
        self.init = init
        self.groups = groups
        self.steps: list[int] = []
        self.values: dict[str, list[torch.Tensor]] = {}

    def record(self, step: int, params: Params, train_fit: Fit | None = None) -> None:
        """Evaluate at `step`; `train_fit` (the gradient program's fit on the full training set,
        at these parameters) stands in for evaluating the training set again."""
        self.steps.append(step)
        extra: dict[str, torch.Tensor] = {}
        with torch.no_grad():
            detached = {n: p.detach() for n, p in params.items()}
            if train_fit is None:
                if self.setting.measures and self.data.num_classes is not None:
                    # per-sample train fit, so that `label_fit` needs no second forward
                    extra["train_correct"] = torch.empty(self.data.y_train.shape, dtype=torch.bool,
                                                         device=self.data.y_train.device)
                metrics = evaluate(self.setting, self.model, detached, self.data,
                                   train_correct=extra.get("train_correct"))
            else:
                loss, right = train_fit
                metrics = {"train_loss": loss.double()}
                if right is not None:
                    metrics["train_acc"] = right.double() / self.data.n_train
                metrics.update(evaluate(self.setting, self.model, detached, self.data, splits=("test",)))
            for spec in self.setting.measures:
                metrics[measure_key(spec)] = self._measure(spec.name, spec.params, step, detached, extra)
        for name, value in metrics.items():
            self.values.setdefault(name, []).append(value.detach().to("cpu", torch.float64))

    def _measure(self, name: str, kwargs: dict, step: int, params: Params,
                 extra: dict[str, torch.Tensor]) -> torch.Tensor:
        """A measure of every replica; of a packed batch, group by group at the group's own shapes
        (a padded unit would count in a parameter count or a mean |w|). `extra`: per-replica
        tensors ([K, ...]) the evaluation already computed, e.g. "train_correct"."""
        if self.groups is None:
            ctx = MeasureContext(self.model, self.init, step, self.data, dict(extra))
            if self.setting.trains_whole_ensembles:  # replicas are whole ensembles, member after member
                ctx.extra["ensemble_members"] = self.setting.ensemble.members  # type: ignore[union-attr]
            return compute_measure(name, params, ctx, **kwargs)
        parts = []
        for g in self.groups:
            data = replica_slice(self.data, g.lo, g.hi)
            ctx = MeasureContext(g.model, g.view(self.init), step, data, {n: t[g.lo:g.hi] for n, t in extra.items()})
            parts.append(compute_measure(name, g.view(params), ctx, **kwargs))
        return torch.cat(parts)

    def curves(self) -> dict[str, np.ndarray]:
        return {m: torch.stack(v, dim=1).numpy() for m, v in self.values.items()}
