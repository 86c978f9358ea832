"""Evaluation of K replicas at once: loss and accuracy on the train and test sets, in passes of
a few replicas × samples (`passes.eval_passes`) so a layer's activations stay cache-sized."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from phenolab.engine.losses import correct_mask, per_replica_loss
from phenolab.engine.passes import eval_passes, model_tokens
from phenolab.models import BatchedModel, Params
from phenolab.settings import MeasureSpec, Setting
from phenolab.tasks import TaskData


def measure_key(spec: MeasureSpec) -> str:
    """Curve name of a measure: its name, with its parameters when it has any."""
    if not spec.params:
        return spec.name
    return spec.name + "(" + ",".join(f"{k}={v}" for k, v in sorted(spec.params.items())) + ")"


def evaluate(setting: Setting, model: BatchedModel, params: Params, data: TaskData,
             splits: tuple[str, ...] = ("train", "test"),
             train_correct: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """{split}_{loss,acc} as [K] tensors for each of `splits`. Train metrics use the labels trained
    on (noisy where label noise is on); accuracy is a fraction in [0, 1], absent for regression.
    `train_correct`, a [K, n_train] bool buffer, receives which training samples the argmax gets
    right, for measures that need them per sample (`measures.labels`) without a forward of their own."""
    out: dict[str, torch.Tensor] = {}
    sets = {"train": (data.x_train, data.y_train), "test": (data.x_test, data.y_test)}
    for split in splits:
        x, y = sets[split]
        k, n = x.shape[:2]
        loss_sum = torch.zeros(k, dtype=torch.float64, device=x.device)
        correct = torch.zeros_like(loss_sum)
        keep = train_correct if split == "train" and data.num_classes is not None else None
        for reps, cols, out_b in _forward_in_passes(model, params, x, setting.eval.batch_size):
            loss = per_replica_loss(setting.loss, out_b, y[reps, cols], data.num_classes)
            loss_sum[reps] += loss.double() * out_b.shape[1]
            if data.num_classes is not None:
                right = correct_mask(out_b, y[reps, cols])
                correct[reps] += right.sum(1).double()
                if keep is not None:
                    keep[reps, cols] = right
        out[f"{split}_loss"] = loss_sum / n
        if data.num_classes is not None:
            out[f"{split}_acc"] = correct / n
    return out


def outputs(model: BatchedModel, params: Params, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    """The model's outputs [K, N, out] on x [K, N, ...], computed in evaluation's passes."""
    out: torch.Tensor | None = None
    for reps, cols, out_b in _forward_in_passes(model, params, x, batch_size):
        if out is None:
            out = out_b.new_empty(x.shape[0], x.shape[1], *out_b.shape[2:])
        out[reps, cols] = out_b
    assert out is not None
    return out


def _forward_in_passes(model: BatchedModel, params: Params, x: torch.Tensor, batch_size: int
                       ) -> Iterator[tuple[slice, slice, torch.Tensor]]:
    """(replicas, samples, outputs) of each pass (`passes.eval_passes`) over x [K, N, ...]."""
    k, n = x.shape[:2]
    per, chunk = eval_passes(params, n, batch_size, model_tokens(model))
    for r0 in range(0, k, per):
        reps = slice(r0, r0 + per)
        part = params if per >= k else {name: p[reps] for name, p in params.items()}
        for lo in range(0, n, chunk):
            cols = slice(lo, lo + chunk)
            yield reps, cols, model.forward(part, x[reps, cols])
