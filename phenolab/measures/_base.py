"""The measures registry: functions of a batch's parameters returning one number per replica."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from phenolab.models import BatchedModel, Params
from phenolab.settings import ENSEMBLE_MEASURES, MEASURES


@dataclass
class MeasureContext:
    """What a measure may look at besides the current parameters."""

    model: BatchedModel
    init_params: Params
    step: int
    data: Any = None  # phenolab.tasks.TaskData (train/test tensors) when available
    extra: dict[str, Any] = field(default_factory=dict)  # from the training loop: "train_correct" (`labels`)


MeasureFn = Callable[..., torch.Tensor]  # (params, ctx, **kwargs) -> Tensor[K]


@dataclass(frozen=True)
class Measure:
    name: str
    fn: MeasureFn
    description: str


MEASURE_REGISTRY: dict[str, Measure] = {}


def register_measure(name: str, description: str, ensemble: bool = False) -> Callable[[MeasureFn], MeasureFn]:
    """Decorator: add `fn(params, ctx, **kwargs) -> Tensor[K]` to the registry under `name`;
    `ensemble`: it reads whole ensembles (`measures.ensembles`), so its settings train them whole."""

    def deco(fn: MeasureFn) -> MeasureFn:
        MEASURE_REGISTRY[name] = Measure(name, fn, description)
        MEASURES[name] = frozenset(list(inspect.signature(fn).parameters)[2:])  # after (params, ctx)
        if ensemble:
            ENSEMBLE_MEASURES.add(name)
        return fn

    return deco


def compute_measure(name: str, params: Params, ctx: MeasureContext, **kwargs: Any) -> torch.Tensor:
    """Evaluate a registered measure without tracking gradients; returns float64 [K] on CPU."""
    if name not in MEASURE_REGISTRY:
        raise KeyError(f"unknown measure {name!r}; allowed: {', '.join(sorted(MEASURE_REGISTRY))}")
    with torch.no_grad():
        out = MEASURE_REGISTRY[name].fn(params, ctx, **kwargs)
    return out.detach().to("cpu", torch.float64).reshape(-1)
