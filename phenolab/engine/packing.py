"""MLP settings that differ only in width, init scale, label noise, lr, momentum or weight decay,
trained as one program (model-wise sweeps, and the cells of a phase diagram).

A double-descent sweep trains many widths, and a narrow one alone is all per-step overhead
(`bench/README.md` has the numbers). A width-h MLP is a width-H MLP whose extra hidden units have
zero weights in and out and zero bias: with σ(0) = 0 (`zero_at_zero` in `models.activations`,
which `program_key` reads) such a unit outputs 0, and since its outgoing weights are 0 its
gradients in and out are exactly 0 too — the padded entries stay exactly zero under SGD,
momentum, Adam(W), weight decay and the gradient filters (tested), and the replica computes its
own width's function. Each replica is drawn at its own width from its own generators (PyTorch's
default init depends on fan-in), then padded; measures, checkpoints and final parameters are read
back at the replica's own width, so a packed run is stored exactly as if it had been trained alone
(to float tolerance: summing a few more exact zeros can change how a GEMM blocks its sums).

The other differences are per replica already: each replica has its own init (drawn from its own
part's model, so at its own `init_scale`) and its own rows of the training labels (label noise is
drawn per replica), and `ReplicaOptimizer` gives each part's replicas their own learning rate,
weight decay and momentum, one fused-kernel call per part, bitwise what they would get in a
program of their own. So a phase diagram over noise × weight decay trains each width's cells in
one program instead of one program per cell (PER_REPLICA_FIELDS; `program_key` says what must
match).

Which widths go together is a cost model over one training step: a program costs a fixed
overhead plus its FLOPs, and padding a width to H costs FLOPs; adjacent widths (sorted) join a
pack while that lowers the modelled time (equal widths always join).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch

from phenolab._rng import generators
from phenolab.engine.replica_groups import ReplicaGroup, replica_slice
from phenolab.engine.train import BatchResult, ProgressFn, resolve_device, train
from phenolab.models import Params, build_model, model_class
from phenolab.models.activations import activation
from phenolab.settings import Setting
from phenolab.tasks import TaskData, build_task

# Setting fields whose values may differ between the parts of one program (see module doc).
# Each with the stand-in value `program_key` writes over it: any valid value (momentum > 0, so that
# a Nesterov setting stays valid).
_STAND_INS = {"model.width": 1, "model.init_scale": 1.0, "task.label_noise": 0.0, "optim.lr": 1.0,
              "optim.weight_decay": 0.0, "optim.momentum": 0.5}
PER_REPLICA_FIELDS = tuple(_STAND_INS)

# A training step's fixed cost in FLOP-equivalents: ~0.25 ms of per-op overhead for a program of
# narrow MLPs at ~100 GFLOP/s (2-core CPU, greydanus_kobak2024's widths 2–36, 10 replicas).
STEP_OVERHEAD_FLOPS = 25e6


@dataclass(frozen=True)
class Part:
    """One setting's runs inside a batch."""

    setting: Setting
    seeds: tuple[int, ...]


def program_key(setting: Setting) -> str | None:
    """What must be equal for two settings to share a program: everything but PER_REPLICA_FIELDS.
    None when the setting cannot be packed (not an MLP given by width × depth, pruned, or members
    of ensembles that train together)."""
    model = setting.model
    if model.name != "mlp" or model.widths is not None or model.depth < 1 or setting.prune is not None:
        return None
    if setting.trains_whole_ensembles:  # its members train as whole ensembles
        return None
    if setting.optim.name == "lstsq" or not activation(model.activation).zero_at_zero:  # see module doc
        return None
    return setting.with_overrides({f: _STAND_INS[f] for f in _fields_of(setting)}).canonical_json()


def part_differences(parts: Sequence[Part]) -> dict[str, list[object]]:
    """The PER_REPLICA_FIELDS whose values differ between the parts, each with its distinct
    values in part order (what a shared program mixes: `phenolab sweep --dry-run` prints it)."""
    out: dict[str, list[object]] = {}
    for field in _fields_of(parts[0].setting):
        values = list(dict.fromkeys(p.setting.value(field) for p in parts))
        if len(values) > 1:
            out[field] = values
    return out


def _fields_of(setting: Setting) -> list[str]:
    """The PER_REPLICA_FIELDS this setting has (not every task has label noise)."""
    task_fields = type(setting.task).model_fields
    return [f for f in PER_REPLICA_FIELDS if not f.startswith("task.") or f.split(".")[1] in task_fields]


def step_flops(setting: Setting, width: int, dims: tuple[int, int], n_train: int) -> float:
    """Matmul FLOPs of one replica's training step at `width` (forward and backward)."""
    d_in, d_out = dims
    depth = setting.model.depth
    batch = min(setting.schedule.batch_size or n_train, n_train)
    return 6.0 * batch * (d_in * width + (depth - 1) * width * width + width * d_out)


def plan_packs(parts: Sequence[Part], dims: tuple[int, int], n_train: int, max_replicas: int) -> list[list[Part]]:
    """Group the parts (all with one `program_key`) into packs, widths ascending: a part joins the
    current pack when one program at the pack's new width costs less than two (see module doc)."""
    ordered = sorted(parts, key=lambda p: p.setting.model.width)
    packs: list[list[Part]] = []
    for part in ordered:
        if packs:
            pack = packs[-1]
            reps = sum(len(p.seeds) for p in pack)
            wide = part.setting.model.width
            joined = STEP_OVERHEAD_FLOPS + (reps + len(part.seeds)) * step_flops(part.setting, wide, dims, n_train)
            apart = (2 * STEP_OVERHEAD_FLOPS + reps * step_flops(pack[-1].setting, pack[-1].setting.model.width,
                                                                 dims, n_train)
                     + len(part.seeds) * step_flops(part.setting, wide, dims, n_train))
            if joined <= apart and reps + len(part.seeds) <= max_replicas:
                pack.append(part)
                continue
        packs.append([part])
    return packs


def train_packed(parts: Sequence[Part], *, device: str | torch.device = "cpu",
                 progress: ProgressFn | None = None, data: TaskData | None = None) -> list[BatchResult]:
    """Train the parts (settings that differ only in PER_REPLICA_FIELDS) as one program at the
    widest width; one result per part, at its own width, as `train(part.setting, part.seeds)` gives."""
    widest = max(parts, key=lambda p: p.setting.model.width).setting
    keys = {program_key(p.setting) for p in parts}
    if None in keys or len(keys) != 1:
        raise ValueError(f"train_packed: the parts must be MLP settings that differ only in {PER_REPLICA_FIELDS}")
    seeds = [s for p in parts for s in p.seeds]
    dtype = torch.float64 if widest.dtype == "float64" else torch.float32
    if data is None:
        data = parts_data(parts, dtype)
    padded, groups = padded_init(parts, data, dtype)
    result = train(widest, seeds, device=resolve_device(device) if isinstance(device, str) else device,
                   init_params=padded, progress=progress, data=data, groups=groups)
    strategy = f"{result.strategy}, {len(parts)} widths packed at {widest.model.width}"
    return [_own_result(result, part, g, strategy) for part, g in zip(parts, groups, strict=True)]


def padded_init(parts: Sequence[Part], data: TaskData, dtype: torch.dtype) -> tuple[Params, list[ReplicaGroup]]:
    """Each part's init drawn at its own width from its seeds' generators, written into zeros of
    the widest part's shapes; and where each part's replicas and shapes are."""
    widest = max(parts, key=lambda p: p.setting.model.width).setting
    wide = build_model(widest.model, data.input_dim, data.out_dim, data.seq_len).init(generators([0], "init"), dtype)
    padded = {n: torch.zeros(sum(len(p.seeds) for p in parts), *t.shape[1:], dtype=dtype) for n, t in wide.items()}
    groups: list[ReplicaGroup] = []
    for part in parts:
        model = build_model(part.setting.model, data.input_dim, data.out_dim, data.seq_len)
        own = model.init(generators(list(part.seeds), "init"), dtype)
        lo = groups[-1].hi if groups else 0
        group = ReplicaGroup(lo, lo + len(part.seeds), model, {n: tuple(t.shape[1:]) for n, t in own.items()},
                             part.setting.optim)
        for n, view in group.view(padded).items():
            view.copy_(own[n])
        groups.append(group)
    return padded, groups


def parts_data(parts: Sequence[Part], dtype: torch.dtype) -> TaskData:
    """Every part's data, replicas part after part: one build per distinct task config, and a
    tensor the parts share (an expanded view of the same rows, as the test set of MNIST-1D is)
    stays one shared view rather than a copy per replica."""
    keys = [p.setting.task.model_dump_json() for p in parts]
    built: dict[str, TaskData] = {}
    used: dict[str, int] = {}  # replicas of each build taken so far
    runs: list[TaskData] = []
    for part, key in zip(parts, keys, strict=True):
        if key not in built:
            seeds = [s for p, k in zip(parts, keys, strict=True) if k == key for s in p.seeds]
            built[key] = build_task(part.setting.task, seeds, model_class("mlp").input_kind, dtype)
        lo = used.get(key, 0)
        used[key] = lo + len(part.seeds)
        runs.append(replica_slice(built[key], lo, used[key]))
    if len(built) == 1:  # one task config (a width-only pack): its build is already in part order
        return built[keys[0]]
    return concat_data(runs)


def concat_data(parts: Sequence[TaskData]) -> TaskData:
    """Replicas of several `TaskData` (same shapes) as one; shared rows stay shared (see above)."""
    first = parts[0]
    if len(parts) == 1:
        return first
    k = sum(d.replicas for d in parts)
    fields: dict[str, object] = {}
    for name, value in vars(first).items():
        tensors = [getattr(d, name) for d in parts]
        if name == "y_train_clean" and any(t is not None for t in tensors):  # a part without noise: clean = labels
            tensors = [d.y_train if t is None else t for t, d in zip(tensors, parts, strict=True)]
            value = tensors[0]
        if not isinstance(value, torch.Tensor):
            fields[name] = value
            continue
        shared = all(t.shape[0] == 1 or t.stride(0) == 0 for t in tensors)
        if shared and all(t.data_ptr() == value.data_ptr() or torch.equal(t[0], value[0]) for t in tensors):
            fields[name] = value[:1].expand(k, *value.shape[1:])
        else:
            fields[name] = torch.cat([t.expand(d.replicas, *t.shape[1:]) for t, d in zip(tensors, parts, strict=True)])
    return TaskData(**fields)  # type: ignore[arg-type]


def _own_result(result: BatchResult, part: Part, group: ReplicaGroup, strategy: str) -> BatchResult:
    """One part of a packed result, at its own width (contiguous copies, not views)."""

    def own(params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {n: p.contiguous() for n, p in group.view(params).items()}

    return replace(result, setting=part.setting, seeds=list(part.seeds),
                   curves={m: v[group.lo:group.hi] for m, v in result.curves.items()},
                   params=own(result.params),
                   checkpoints={step: own(ps) for step, ps in result.checkpoints.items()}, strategy=strategy)


def task_shape(setting: Setting) -> tuple[tuple[int, int], int]:
    """((input dim, output dim), training-set size) of a setting's task, from one seed's data."""
    data = build_task(setting.task, [0], model_class(setting.model.name).input_kind)
    return (data.input_dim, data.out_dim), data.n_train
