"""Replicas side by side on the CPU's cores: one thread per group of replicas, one core per op.

A program whose activations outgrow the cache (gromov2023: 5.6 MB a replica) already goes
through its replicas a few at a time (`engine.passes`); with two threads inside every op, each
op then pays a fork and join and both cores stream the same replica's activations. Training
halves of the replicas in two Python threads, each op on one core (`torch.set_num_threads(1)`
for the duration: MKL's thread count is global), keeps each core on its own replicas. For
gromov2023's 10 seeds on 2 cores this measured 28–31 s against 33–35 s (bench/README.md).

Each group is `train` of its own seeds, so replica k is what it is alone, and the numbers are
bitwise those of a 1-thread run whatever the core count (tested): the split never depends on
K's position, only on the shapes and the thread count. Only programs that already run in passes
split; GEMM-bound ones (MNIST-1D minibatches) gain nothing from it and keep their threads.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from phenolab.engine.passes import CHUNK_BYTES
from phenolab.models import BatchedModel, Params
from phenolab.models.mlp import BatchedMlp


def replica_thread_count(model: BatchedModel, loss: str, rows: int, k: int, dtype: torch.dtype,
                         device: torch.device) -> int:
    """How many threads of replicas to train: 1 (one program) unless this is the CPU's hand-derived
    MLP program (`engine.step.MlpGrads`), it would run in passes of fewer than K replicas, and
    there are several threads and replicas."""
    threads = torch.get_num_threads()
    if device.type != "cpu" or threads < 2 or k < 2:
        return 1
    if type(model) is not BatchedMlp or loss not in ("ce", "mse"):
        return 1
    widest = max(model.dims()[1:])
    per_pass = max(1, CHUNK_BYTES // (rows * widest * torch.empty((), dtype=dtype).element_size()))
    return min(threads, k) if per_pass < k else 1


def split_slices(k: int, parts: int) -> list[tuple[int, int]]:
    """Contiguous replica ranges [lo, hi) of near-equal size."""
    bounds = np.linspace(0, k, parts + 1).round().astype(int)
    return [(int(lo), int(hi)) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True) if hi > lo]


def run_in_threads(jobs: list[Callable[[], object]]) -> list[object]:
    """Run `jobs` in one thread each with torch's intra-op threads at 1, then restore them."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(len(jobs)) as pool:
            futures = [pool.submit(job) for job in jobs]
            return [f.result() for f in futures]
    finally:
        torch.set_num_threads(before)


def cat_params(parts: list[Params]) -> Params:
    return {n: torch.cat([p[n] for p in parts]) for n in parts[0]}
