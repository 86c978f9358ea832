"""Replicas side by side on the CPU's cores: one thread per group of replicas, one core per op.

A program whose activations outgrow the cache (gromov2023: 5.6 MB a replica) already goes
through its replicas a few at a time (`engine.passes`); with two threads inside every op, each
op then pays a fork and join and both cores stream the same replica's activations. Training
halves of the replicas in two Python threads, each op on one core (`torch.set_num_threads(1)`
for the duration: MKL's thread count is global), keeps each core on its own replicas and pays
no fork and join per op (measured: `bench/README.md`).

Each group is `train` of its own seeds on one core, so a split batch's numbers are bitwise those
of the whole batch on one thread, however it is split and however many cores there are (tested).
A batch that does not split (one seed, one thread, or a GEMM-bound program) keeps its threads
and MKL's multi-threaded rounding. Replica k still equals its run alone to float tolerance. Only
programs that go through one replica per pass split (`replica_thread_count` says when), and only
into equal groups: GEMM-bound ones (MNIST-1D minibatches) gain nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from phenolab.engine.passes import replicas_within
from phenolab.engine.step import MlpGrads
from phenolab.models import BatchedModel, Params


def replica_thread_count(model: BatchedModel, loss: str, rows: int, k: int, dtype: torch.dtype,
                         device: torch.device) -> int:
    """How many threads of replicas to train: 1 (one program) unless this is the CPU's hand-derived
    MLP program (`engine.step.MlpGrads`), one replica's activations fill a training pass on their
    own, and the replicas divide evenly among the threads. Measured on 2 cores: gromov2023 (5.6 MB
    a replica, one per pass) gains 7%; prieto2025 (4 MB, two per pass) breaks even at 4 seeds and
    loses 10–15% at 5, where one thread gets 3 replicas and the other 2."""
    threads = torch.get_num_threads()
    if device.type != "cpu" or threads < 2 or k < 2:
        return 1
    if not MlpGrads.supports(model, loss):
        return 1
    row_bytes = max(model.dims()[1:]) * torch.empty((), dtype=dtype).element_size()
    return threads if replicas_within(rows, row_bytes) == 1 and k % threads == 0 else 1


def split_slices(k: int, parts: int) -> list[tuple[int, int]]:
    """Contiguous replica ranges [lo, hi) of near-equal size."""
    bounds = np.linspace(0, k, parts + 1).round().astype(int)
    return [(int(lo), int(hi)) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True) if hi > lo]


class Stopped(Exception):
    """Raised inside a group's training (at its next progress report) once another has failed or
    the caller was interrupted, so that Ctrl-C does not wait for every group to finish."""


def run_in_threads(jobs: list[Callable[[threading.Event], object]]) -> list[object]:
    """Run `jobs` in one thread each with torch's intra-op threads at 1, then restore them. Each
    job gets the stop event, set when any job fails or the caller is interrupted; a job should
    raise `Stopped` soon after (train's progress reports do)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    stop = threading.Event()
    try:
        with ThreadPoolExecutor(len(jobs)) as pool:
            futures = [pool.submit(job, stop) for job in jobs]
            try:
                return [f.result() for f in futures]
            except BaseException:
                stop.set()
                raise
    finally:
        torch.set_num_threads(before)


def cat_params(parts: list[Params]) -> Params:
    return {n: torch.cat([p[n] for p in parts]) for n in parts[0]}
