"""Sparse parity: the label is the parity of k fixed bits among n random ±1 bits.

Barak, Edelman, Goel, Kakade, Malach & Zhang 2022 ("Hidden progress in deep learning: SGD learns
parities near the computational limit") show that SGD finds the k relevant bits after a long
plateau with no visible progress in the loss; Merrill, Tsilivis & Shukla 2023 ("A tale of two
circuits") see grokking on it with a finite training set. Relevant bits are the first k. The
phenomenon this plug-in studies on it, and its canonical settings, are in `hidden_progress/`.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field, model_validator

from phenolab.settings import Component, register_task_config
from phenolab.tasks import TaskData, register_task

DATA_STREAM = 7_919  # offsets the run seed, so this task's data draws are not the init draws


class SparseParityTask(Component):
    """n_bits uniform ±1 inputs; label = parity of the first k bits (1 when an odd number are −1)."""

    name: Literal["sparse_parity"]
    n_bits: int = Field(40, ge=1, le=10_000, description="input bits n")
    k: int = Field(3, ge=1, description="relevant bits (the first k)")
    n_train: int = Field(1000, ge=1, le=1_000_000)
    n_test: int = Field(1000, ge=1, le=1_000_000)

    @model_validator(mode="after")
    def _k_fits(self) -> SparseParityTask:
        if self.k > self.n_bits:
            raise ValueError(f"task.k = {self.k} must be at most task.n_bits = {self.n_bits}")
        return self


def sample(cfg: SparseParityTask, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """n inputs in {−1, +1}^n_bits and their parity labels (0/1, int64)."""
    x = torch.randint(0, 2, (n, cfg.n_bits), generator=gen, dtype=torch.int64) * 2 - 1
    y = (x[:, : cfg.k].prod(dim=1) < 0).to(torch.int64)
    return x.to(torch.float64), y


def build_sparse_parity(cfg: SparseParityTask, seeds: list[int], input_kind: str, dtype: torch.dtype) -> TaskData:
    """Per run its own training and test draws, from a generator seeded by the run seed alone, so a
    replica sees the same data whichever seeds share its batch."""
    if input_kind == "tokens":
        raise ValueError("task 'sparse_parity' gives ±1 features; use a model that takes features (e.g. mlp)")
    parts = []
    for seed in seeds:
        gen = torch.Generator().manual_seed(DATA_STREAM + int(seed))
        parts.append((*sample(cfg, cfg.n_train, gen), *sample(cfg, cfg.n_test, gen)))
    x_train, y_train, x_test, y_test = (torch.stack(t) for t in zip(*parts, strict=True))
    return TaskData(x_train=x_train.to(dtype), y_train=y_train, x_test=x_test.to(dtype), y_test=y_test,
                    input_kind="features", input_dim=cfg.n_bits, out_dim=2, num_classes=2)


def register() -> None:
    register_task_config(SparseParityTask)
    register_task("sparse_parity", build_sparse_parity)

