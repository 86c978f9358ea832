"""A measure for sparse parity: how much of the first layer's weight sits on the relevant inputs."""

from __future__ import annotations

import torch

from phenolab.measures import MeasureContext, register_measure
from phenolab.models import Params


def relevant_input_weight_share(params: Params, ctx: MeasureContext, k: int = 3) -> torch.Tensor:
    """‖W₀[:k]‖² / ‖W₀‖² per replica, W₀ = the first weight matrix `[K, inputs, units]`: k/n at a
    random init, near 1 once the network reads only the k relevant bits (Barak et al. 2022)."""
    name = ctx.model.weight_names(params)[0]
    w = params[name].double()
    if w.dim() != 3 or not 1 <= int(k) <= w.shape[1]:
        raise ValueError(f"relevant_input_weight_share: k={k} must be between 1 and the {w.shape[1]} inputs of {name}")
    sq = w.square()
    return sq[:, : int(k)].sum(dim=(1, 2)) / sq.sum(dim=(1, 2))


def register() -> None:
    register_measure(
        "relevant_input_weight_share",
        "share of the first layer's squared weight norm on the first k inputs (example plug-in)",
    )(relevant_input_weight_share)
