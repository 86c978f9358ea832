"""What every task returns: per-replica data stacked on a leading replica dimension K."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch

from phenolab.settings import Component


@dataclass
class TaskData:
    """Training and test data for K replicas (row k belongs to seeds[k]).

    Tensors shared by all replicas may be `expand`ed views (no copy). Classification labels are
    int64 `[K, N]`; regression targets are float `[K, N, out_dim]`.
    """

    x_train: torch.Tensor  # [K, N, F] float features, [K, N, J] int64 one-hot indices, [K, N, T] tokens
    y_train: torch.Tensor
    x_test: torch.Tensor  # [K, M, F] / [K, M, T]
    y_test: torch.Tensor
    input_kind: Literal["features", "onehot", "tokens"]
    input_dim: int  # F for features (and for one-hot indices into F), vocabulary size for tokens
    out_dim: int  # number of classes, or regression output dimension
    num_classes: int | None  # None for regression
    seq_len: int | None = None  # T for tokens
    y_train_clean: torch.Tensor | None = None  # labels before label noise, where noise was added

    @property
    def replicas(self) -> int:
        return self.x_train.shape[0]

    @property
    def n_train(self) -> int:
        return self.x_train.shape[1]

    def to(self, device: torch.device | str) -> TaskData:
        """Move to `device`, keeping shared (expanded) tensors shared: one copy, not K."""
        fields = {k: (_move(v, device) if isinstance(v, torch.Tensor) else v) for k, v in vars(self).items()}
        return TaskData(**fields)


def _move(t: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    if t.device == torch.device(device):
        return t
    if t.dim() and t.shape[0] > 1 and t.stride(0) == 0:
        return t[:1].to(device).expand(t.shape)
    return t.to(device)


# builder(cfg, seeds, input_kind, dtype) -> TaskData, on CPU
TaskBuilder = Callable[[Component, list[int], str, torch.dtype], TaskData]
TASK_BUILDERS: dict[str, TaskBuilder] = {}
ONEHOT_TASKS: set[str] = set()  # tasks whose features are one-hot and can be given as indices


def register_task(name: str, builder: TaskBuilder, *, onehot: bool = False) -> None:
    """Register the data builder for task config `name` (its config class goes to
    `phenolab.settings.register_task_config`). `onehot`: the builder also accepts
    input_kind "onehot" (features given as the indices of their ones)."""
    TASK_BUILDERS[name] = builder
    if onehot:
        ONEHOT_TASKS.add(name)


def build_task(cfg: Component, seeds: list[int], input_kind: str = "features",
               dtype: torch.dtype = torch.float32) -> TaskData:
    """Data for the runs `seeds` of a task: replica k's split, noise and subset come only from
    seeds[k]'s random streams (see `phenolab._rng`)."""
    if cfg.name not in TASK_BUILDERS:
        raise KeyError(f"no data builder registered for task {cfg.name!r}")
    if input_kind == "onehot" and cfg.name not in ONEHOT_TASKS:
        input_kind = "features"  # models that take one-hot indices also take dense features
    return TASK_BUILDERS[cfg.name](cfg, list(seeds), input_kind, dtype)
