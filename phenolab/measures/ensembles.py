"""Measures of a whole ensemble, recorded on each of its members, so that an explanation of deep
ensembles can be registered and tested as a hypothesis like any other measure.

A setting recording one trains each ensemble's members side by side (`Setting.ensemble`,
`Setting.trains_whole_ensembles`): replicas arrive as whole ensembles, member after member, and
`ctx.extra["ensemble_members"]` says how many. Every member gets its ensemble's value. The
ensemble is the softmax of its members' mean logits, whose cross-entropy splits exactly into the
mean member's minus the diversity (`phenolab.analysis.ensemble`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from phenolab.analysis.ensemble import ce_decomposition, pairwise_disagreement, prediction_change
from phenolab.measures._base import MeasureContext, register_measure
from phenolab.models import Params

SPLITS = ("test", "train")


def _logits(params: Params, ctx: MeasureContext, split: str, name: str, shift: int = 0) -> torch.Tensor:
    """Every replica's outputs [K, N, C] on the split's inputs (circularly shifted by `shift`)."""
    if split not in SPLITS:
        raise ValueError(f"{name}: split must be one of {', '.join(SPLITS)}, not {split!r}")
    data = ctx.data
    if data is None or data.num_classes is None:
        raise ValueError(f"{name} needs a classification task's data (ctx.data)")
    x = data.x_test if split == "test" else data.x_train
    if shift:
        x = torch.roll(x, shift, dims=-1)
    return ctx.model.forward(params, x)


def _per_ensemble(params: Params, ctx: MeasureContext, split: str, name: str,
                  fn: Callable[[torch.Tensor, torch.Tensor], float]) -> torch.Tensor:
    """`fn(logits [M, N, C], labels [N])` of each ensemble, given to each of its members: [K]."""
    members = ctx.extra.get("ensemble_members", 1)
    logits = _logits(params, ctx, split, name)
    y = ctx.data.y_test if split == "test" else ctx.data.y_train
    k = logits.shape[0]
    values = [fn(logits[lo:lo + members], y[lo]) for lo in range(0, k, members)]
    return torch.tensor(values, dtype=torch.float64).repeat_interleave(members)[:k]


def _decomposed(key: str) -> Callable[[torch.Tensor, torch.Tensor], float]:
    return lambda logits, y: ce_decomposition(logits, y)[key]


def _ensemble_measure(name: str, description: str, key: str) -> None:
    def fn(params: Params, ctx: MeasureContext, split: str = "test") -> torch.Tensor:
        return _per_ensemble(params, ctx, split, name, _decomposed(key))

    fn.__name__ = name
    register_measure(name, description, ensemble=True)(fn)


_ensemble_measure("ensemble_error", "error of the member's ensemble (argmax of the mean logits) on a split",
                  "ensemble_error")
_ensemble_measure("ensemble_member_error", "mean error of the ensemble's members on a split", "mean_error")
_ensemble_measure("ensemble_loss", "cross-entropy of the ensemble (softmax of the mean logits) on a split", "bias")
_ensemble_measure("ensemble_member_loss", "mean cross-entropy of the ensemble's members on a split", "mean_loss")
_ensemble_measure("ensemble_diversity", "mean KL(ensemble ‖ member) on a split: member loss − ensemble loss",
                  "variance")


@register_measure("ensemble_gain", "mean member error − ensemble error on a split", ensemble=True)
def ensemble_gain(params: Params, ctx: MeasureContext, split: str = "test") -> torch.Tensor:
    def gain(logits: torch.Tensor, y: torch.Tensor) -> float:
        d = ce_decomposition(logits, y)
        return d["mean_error"] - d["ensemble_error"]

    return _per_ensemble(params, ctx, split, "ensemble_gain", gain)


@register_measure("ensemble_disagreement", "share of a split's inputs on which two members' predictions differ "
                  "(mean over pairs)", ensemble=True)
def ensemble_disagreement(params: Params, ctx: MeasureContext, split: str = "test") -> torch.Tensor:
    return _per_ensemble(params, ctx, split, "ensemble_disagreement", lambda logits, _y: pairwise_disagreement(logits))


@register_measure("ensemble_size", "members in the ensemble", ensemble=True)
def ensemble_size(params: Params, ctx: MeasureContext) -> torch.Tensor:
    k = params[next(iter(params))].shape[0]
    return torch.full((k,), float(ctx.extra.get("ensemble_members", 1)), dtype=torch.float64)


def _shift_change(params: Params, ctx: MeasureContext, max_shift: int, key: str, name: str) -> torch.Tensor:
    """`prediction_change` of each ensemble under circular shifts of the test inputs by ±1…±max_shift."""
    if max_shift < 1:
        raise ValueError(f"{name}: max_shift must be ≥ 1, not {max_shift}")
    members = ctx.extra.get("ensemble_members", 1)
    base = _logits(params, ctx, "test", name)
    moved = torch.stack([_logits(params, ctx, "test", name, s) for s in range(-max_shift, max_shift + 1) if s])
    k = base.shape[0]
    values = [prediction_change(base[lo:lo + members], moved[:, lo:lo + members])[key] for lo in range(0, k, members)]
    return torch.tensor(values, dtype=torch.float64).repeat_interleave(members)[:k]


@register_measure("ensemble_shift_tv", "how much the ensemble's test predictions change under circular shifts of "
                  "the input by ±1…±max_shift (mean total-variation distance)", ensemble=True)
def ensemble_shift_tv(params: Params, ctx: MeasureContext, max_shift: int = 4) -> torch.Tensor:
    return _shift_change(params, ctx, max_shift, "ensemble_tv", "ensemble_shift_tv")


@register_measure("ensemble_member_shift_tv", "the same for its members (mean over them)", ensemble=True)
def ensemble_member_shift_tv(params: Params, ctx: MeasureContext, max_shift: int = 4) -> torch.Tensor:
    return _shift_change(params, ctx, max_shift, "member_tv", "ensemble_member_shift_tv")
