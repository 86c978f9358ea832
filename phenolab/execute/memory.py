"""The memory a batch needs, estimated from its setting's shapes before anything is allocated, and
batches split to fit what is available (a batch whose one replica cannot fit is refused in one line).

The estimate counts what a batched program holds at its peak: per replica, the parameters with
their start copy, gradients, optimizer state, gradient-filter state and pruning masks; the
replica's own data (its split, subset or noisy labels; data all replicas share once); the
activations of a training pass (on a CPU a pass is one replica's minibatch or `CHUNK_BYTES`,
whichever is larger, per thread; on a GPU all replicas at once); the exact solve's features;
curves and checkpoints, which are copied once more when stored. Built-in tasks and models only: a
plug-in's batch is not estimated (it trains as before). Checked in `fit_batches`, on the device's
free memory (`/proc/meminfo`'s MemAvailable and the cgroup's limit on a CPU, `cuda.mem_get_info` on
a GPU), or `PHENOLAB_MEMORY` (e.g. `8GiB`) where that is set.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from phenolab.engine.passes import CHUNK_BYTES, EVAL_BYTES
from phenolab.engine.schedule import total_steps
from phenolab.settings import Setting, SettingError

USABLE = 0.9  # of the available memory, the share a batch may plan to use
UNITS = {"": 1, "b": 1, "k": 1e3, "kb": 1e3, "kib": 2**10, "m": 1e6, "mb": 1e6, "mib": 2**20, "g": 1e9, "gb": 1e9,
         "gib": 2**30, "t": 1e12, "tb": 1e12, "tib": 2**40}


class BatchTooLarge(SettingError):
    """Even one replica of a batch needs more memory than is available (one line, exit 2)."""


@dataclass(frozen=True)
class TaskShape:
    """What a task's data looks like, from its config alone."""

    n_train: int  # training examples per replica
    n_test: int
    input_dim: int  # features (dense), or vocabulary (tokens)
    out_dim: int
    row_bytes: int  # one stored input row
    per_replica: bool  # each replica holds its own copy (a split per seed, a subset, noisy labels)
    shared_bytes: int = 0  # what is built once for all replicas (tables, the data set itself)


@dataclass(frozen=True)
class Estimate:
    """Bytes a batch of K replicas needs: `shared` once, plus `per_replica` for each replica."""

    shared: int
    per_replica: int
    parts: dict[str, int]  # per replica, by kind (for the message)

    def total(self, k: int) -> int:
        return self.shared + k * self.per_replica


def task_shape(setting: Setting) -> TaskShape | None:
    """The data's shapes, computed (nothing is built); None for a plug-in's task."""
    t, item = setting.task, 8 if setting.dtype == "float64" else 4
    kind = _input_kind(setting)
    if t.name == "modular":
        n_train = round(t.train_fraction * t.pairs)
        vocab = t.p + 2 if kind == "tokens" else 2 * t.p
        row = {"tokens": 4 * 8, "onehot": 2 * 8}.get(kind, 2 * t.p * item) + 8  # + the label
        return TaskShape(n_train, t.pairs - n_train, vocab, t.p, row, True, t.pairs * 8 * 4)
    if t.name == "mnist1d":
        total = t.num_samples // 10 * 10
        n_train = t.train_size or t.n_train
        shared = total * t.final_seq_length * (8 + item) + total * (t.template_len + t.padding[1]) * 8
        return TaskShape(n_train, total - t.n_train, t.final_seq_length, 10, t.final_seq_length * item + 8,
                         t.train_size is not None or t.label_noise > 0, shared)
    if t.name == "digits":
        n_test = round(t.test_fraction * t.IMAGES)
        return TaskShape(t.train_size or t.IMAGES - n_test, n_test, 64, 10, 64 * item + 8,
                         t.train_size is not None or t.label_noise > 0, t.IMAGES * 64 * (8 + item))
    if t.name == "linear_regression":  # drawn in float64 per replica, stacked, then cast
        return TaskShape(t.n_train, t.n_test, t.d, 1, (t.d + 1) * (16 + item), True)
    return None


def parameter_count(setting: Setting, shape: TaskShape) -> int | None:
    """Parameters of one replica (frozen ones included); None for a plug-in's model."""
    m, d_in, d_out = setting.model, shape.input_dim, shape.out_dim
    if m.name == "mlp":
        dims = [d_in, *m.hidden, d_out]
        return sum(a * b + (b if m.bias else 0) for a, b in zip(dims[:-1], dims[1:], strict=True))
    if m.name == "transformer":
        d, ln = m.d_model, (4 if m.layernorm else 0) * m.d_model
        block = 4 * d * d + 2 * d * m.d_mlp + m.d_mlp + d + ln
        return d_in * d + 4 * d + m.n_layers * block + d * d_out + (2 * d if m.layernorm else 0)
    if m.name == "random_features":
        phase = m.num_features if m.feature == "fourier" else 0
        return d_in * m.num_features + phase + m.num_features * d_out
    if m.name == "linear":
        return d_in * d_out
    return None


def estimate(setting: Setting, device: torch.device | str = "cpu", masks: bool = False) -> Estimate | None:
    """What a batch of this setting needs on `device` (None: a plug-in's task or model)."""
    shape = task_shape(setting)
    count = parameter_count(setting, shape) if shape is not None else None
    if shape is None or count is None:
        return None
    gpu = torch.device(device).type != "cpu"
    item = 8 if setting.dtype == "float64" else 4
    optim = setting.optim
    lstsq = optim.name == "lstsq"
    # measured: ~9 copies of the parameters besides optimizer state (init drawn per replica then
    # stacked, the start copy, gradients, measures' temporaries, the final copy and its records)
    copies = 9 + int(masks)
    if not lstsq:
        copies += 2 if optim.name in ("adam", "adamw") else int(optim.momentum > 0)
        copies += int(optim.grokfast_alpha > 0)
    total = 1 if lstsq else total_steps(setting, shape.n_train)
    every = setting.eval.every
    evals = min(total + 1, setting.eval.points + 2 + (total // every if every else 0))
    saved = {"none": 0, "final": 1, "eval": evals}[setting.checkpoints]
    metrics = 4 + len(setting.measures)
    act_shared, act_replica = _activations(setting, shape, item, gpu)
    parts = {
        "parameters and optimizer state": count * item * copies,
        "data": (shape.n_train + shape.n_test) * shape.row_bytes if shape.per_replica else 0,
        "activations": act_replica,
        "curves and checkpoints": 2 * (evals * metrics * 8 + saved * count * item),
    }
    shared = shape.shared_bytes + act_shared
    if not shape.per_replica:
        shared += (shape.n_train + shape.n_test) * shape.row_bytes
    return Estimate(shared, sum(parts.values()), parts)


def _layers(setting: Setting) -> int:
    m = setting.model
    if m.name == "mlp":
        return len(m.hidden) + 1
    return 2 * m.n_layers + 2 if m.name == "transformer" else 1


def _activations(setting: Setting, shape: TaskShape, item: int, gpu: bool) -> tuple[int, int]:
    """(shared, per replica) bytes of a training pass's activations, or of the exact solve's features.
    On a GPU every replica is in the pass; on a CPU a pass is one replica's minibatch or the
    `engine.passes` budget, whichever is larger, once per replica thread."""
    m = setting.model
    if setting.optim.name == "lstsq":
        width = m.num_features if m.name == "random_features" else shape.input_dim
        return 0, (2 * shape.n_train * width + 2 * min(shape.n_train, width) ** 2) * item
    rows = min(setting.schedule.batch_size or shape.n_train, shape.n_train)
    eval_rows = min(shape.n_train + shape.n_test, setting.eval.batch_size)
    if m.name == "transformer":  # autograd keeps every layer's tensors: ~12 d + 3 d_mlp + heads·T per token
        per_row = 6 * (12 * m.d_model + 3 * m.d_mlp + m.n_heads * 4) * m.n_layers * item
    else:  # pre- and post-activations and their gradients, layer by layer
        widest = max([*(m.hidden if m.name == "mlp" else ()), getattr(m, "num_features", 0), shape.out_dim])
        per_row = widest * _layers(setting) * 4 * item
    if gpu:
        return 0, (rows + eval_rows) * per_row
    return min(torch.get_num_threads(), 8) * max((CHUNK_BYTES + EVAL_BYTES) * 2, rows * per_row // 2), 0


def available_memory(device: torch.device | str = "cpu") -> tuple[int, str]:
    """(bytes a batch may use on `device`, where that number came from)."""
    text = os.environ.get("PHENOLAB_MEMORY", "").strip()
    if text:
        return parse_bytes(text), "PHENOLAB_MEMORY"
    dev = torch.device(device)
    if dev.type == "cuda":
        free, _ = torch.cuda.mem_get_info(dev)
        return int(free * USABLE), f"free on {dev}"
    free, source = _host_available()
    return int(free * USABLE), source


def _host_available() -> tuple[int, str]:
    found: list[tuple[int, str]] = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append((int(line.split()[1]) * 1024, "MemAvailable"))
    except (OSError, ValueError, IndexError):
        pass
    try:  # a container's limit (cgroup v2)
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
        if limit != "max":
            found.append((max(0, int(limit) - used), "the cgroup's memory.max"))
    except (OSError, ValueError):
        pass
    if not found:
        try:
            found.append((os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "free pages"))
        except (ValueError, OSError, AttributeError):
            return 1 << 62, "unknown"
    return min(found)


def parse_bytes(text: str) -> int:
    """'8GiB', '512MB', '1.5g' or a number of bytes."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([a-zA-Z]*)\s*", text)
    unit = match.group(2).lower() if match else ""
    if not match or unit not in UNITS or not math.isfinite(float(match.group(1))):
        raise SettingError(f"PHENOLAB_MEMORY={text!r}: give bytes with a unit, e.g. 8GiB or 512MB")
    value = float(match.group(1)) * UNITS[unit]
    if value < 1 or value > 2**62:
        raise SettingError(f"PHENOLAB_MEMORY={text!r}: give between 1 byte and 4 EiB")
    return int(value)


def gib(n: int) -> str:
    """Bytes in the unit that reads best: 1.2 GiB, 340 MiB, 12 KiB."""
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} B"


def fit_batches(batches: list, device: torch.device | str = "cpu") -> list:
    """The batches, each split into as few equal parts as fit the available memory (in order, so
    every replica still trains, and computes what it computes in any batch); raises BatchTooLarge,
    naming the estimate and the memory available, when one replica alone cannot fit."""
    budget: tuple[int, str] | None = None
    if os.environ.get("PHENOLAB_MEMORY", "").strip():  # a bad value is an error even with nothing to train
        budget = available_memory(device)
    out = []
    for batch in batches:
        est = estimate(batch.setting, device, masks=batch.start is not None)
        if est is None:
            out.append(batch)
            continue
        if budget is None:
            budget = available_memory(device)
        free, source = budget
        if est.total(batch.size) <= free:
            out.append(batch)
            continue
        if est.total(1) > free:
            biggest = max(est.parts, key=est.parts.__getitem__)
            raise BatchTooLarge(
                f"setting {batch.setting.id}: one replica needs about {gib(est.total(1))} ({biggest} "
                f"{gib(est.parts[biggest])}), more than the {gib(free)} available on {torch.device(device)} "
                f"({source}); make the model or data smaller, or set PHENOLAB_MEMORY if more is free")
        fits = max(1, (free - est.shared) // est.per_replica)
        pieces = math.ceil(batch.size / fits)
        out += split_batch(batch, pieces)
    return out


def split_batch(batch, pieces: int) -> list:
    """`batch` as `pieces` batches of (nearly) equal size, replicas in their order; a packed
    batch's parts and a given start (init, masks, data-order seeds) are split with them."""
    replicas = [(i, s) for i, part in enumerate(batch.parts) for s in part.seeds]
    size = math.ceil(len(replicas) / pieces)
    out = []
    for lo in range(0, len(replicas), size):
        chunk = replicas[lo:lo + size]
        parts = tuple(replace(part, seeds=tuple(s for j, s in chunk if j == i))
                      for i, part in enumerate(batch.parts) if any(j == i for j, _ in chunk))
        start = batch.start
        if start is not None:
            hi = lo + len(chunk)
            start = replace(start, init={n: v[lo:hi] for n, v in start.init.items()},
                            masks={n: v[lo:hi] for n, v in start.masks.items()},
                            order_seeds=tuple(start.order_seeds[lo:hi]))
        out.append(replace(batch, parts=parts, start=start))
    return out


def _input_kind(setting: Setting) -> str:
    from phenolab.models import model_class

    try:
        return model_class(setting.model.name).input_kind
    except (KeyError, ValueError):
        return "features"
