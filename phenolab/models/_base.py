"""The batched-model contract: functional models whose parameters carry a leading replica dim K."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import torch

from phenolab.settings import Component

Params = dict[str, torch.Tensor]


class BatchedModel:
    """K independent models of one architecture, evaluated as one program.

    Parameters live in a flat dict of tensors `[K, ...]` (safetensors-ready). `init` draws
    replica k only from `generators[k]` (on CPU, then moves), so a replica equals its run alone.
    """

    # the inputs this model asks its task for (`tasks.build_task`'s input_kind): "features" (dense
    # [K, B, F]), "onehot" (int64 indices of a one-hot input's ones, [K, B, J]; a task that cannot
    # give them gives features) or "tokens" ([K, B, T])
    input_kind: ClassVar[str] = "features"
    frozen: ClassVar[frozenset[str]] = frozenset()  # parameter names that are never trained

    def __init__(self, cfg: Component, input_dim: int, out_dim: int, seq_len: int | None = None):
        self.cfg = cfg
        self.input_dim = input_dim
        self.out_dim = out_dim
        self.seq_len = seq_len

    def init(self, generators: list[torch.Generator], dtype: torch.dtype = torch.float32,
             device: torch.device | str = "cpu") -> Params:
        raise NotImplementedError

    def forward(self, params: Params, x: torch.Tensor) -> torch.Tensor:
        """x: [K, B, F] (or [K, B, T] tokens) -> outputs [K, B, out_dim]."""
        raise NotImplementedError

    def features(self, params: Params, x: torch.Tensor) -> torch.Tensor:
        """For linear-in-parameters models: φ(x) [K, B, P] with output = φ(x) @ params[readout]."""
        raise NotImplementedError(f"{type(self).__name__} is not linear in its parameters")

    readout: ClassVar[str | None] = None  # the parameter `features` multiplies, for lstsq

    def weight_names(self, params: Params) -> list[str]:
        """Names of the weight matrices (no biases, norms or positional embeddings): what pruning
        acts on by default. This rule, every parameter of 3+ dims that is not `frozen`, fits models
        without `[K, 1, n]` vectors; the MLP and the transformer override it."""
        return [n for n, p in params.items() if p.dim() >= 3 and n not in self.frozen]


MODEL_CLASSES: dict[str, type[BatchedModel]] = {}


def register_model(name: str) -> Callable[[type[BatchedModel]], type[BatchedModel]]:
    def deco(cls: type[BatchedModel]) -> type[BatchedModel]:
        MODEL_CLASSES[name] = cls
        return cls

    return deco


def build_model(cfg: Component, input_dim: int, out_dim: int, seq_len: int | None = None) -> BatchedModel:
    if cfg.name not in MODEL_CLASSES:
        raise KeyError(f"no batched model registered for model {cfg.name!r}")
    return MODEL_CLASSES[cfg.name](cfg, input_dim, out_dim, seq_len)


def model_class(name: str) -> type[BatchedModel]:
    return MODEL_CLASSES[name]
