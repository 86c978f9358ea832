"""Slices of a batch's replicas: `ReplicaGroup` and the helpers that cut a batch into parts.

A packed batch (`engine.packing`) holds several settings' replicas padded to one shape, and a
batch trained in threads (`engine.replica_threads`) is cut into contiguous slices; both are
described by replicas `lo:hi`. These live apart from `train.py` and `packing.py` because both
need them and `packing` imports `train`: here neither imports the other to get them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from phenolab.models import BatchedModel, Params
from phenolab.settings import OptimConfig
from phenolab.tasks import TaskData


@dataclass(frozen=True)
class ReplicaGroup:
    """Replicas `lo:hi` of a packed batch (`engine.packing`): their own model and parameter
    shapes, which are the leading corner of the batch's wider ones, and their own optimizer
    hyperparameters."""

    lo: int
    hi: int
    model: BatchedModel
    shapes: dict[str, tuple[int, ...]]
    optim: OptimConfig

    def view(self, params: Params) -> Params:
        """These replicas' parameters at their own shapes (views into the padded tensors)."""
        return {n: p[self.lo:self.hi][(slice(None), *(slice(0, d) for d in self.shapes[n]))]
                for n, p in params.items()}


def groups_within(groups: list[ReplicaGroup], lo: int, hi: int) -> list[ReplicaGroup]:
    """The groups' parts within replicas lo:hi, numbered from lo."""
    return [replace(g, lo=max(g.lo, lo) - lo, hi=min(g.hi, hi) - lo) for g in groups if g.lo < hi and g.hi > lo]


def replica_slice(data: TaskData, lo: int, hi: int) -> TaskData:
    """Replicas lo:hi of a batch's data (views)."""
    return TaskData(**{f: (v[lo:hi] if isinstance(v, torch.Tensor) else v) for f, v in vars(data).items()})
