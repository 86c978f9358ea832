"""Evaluation of K replicas at once: loss and accuracy on the train and test sets, in passes of
a few replicas × samples (`passes.eval_passes`) so a layer's activations stay cache-sized."""

from __future__ import annotations

import torch

from phenolab.engine.losses import loss_and_correct
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
             splits: tuple[str, ...] = ("train", "test")) -> dict[str, torch.Tensor]:
    """{split}_{loss,acc} as [K] tensors for each of `splits`. Train metrics use the labels trained
    on (noisy where label noise is on); accuracy is a fraction in [0, 1], absent for regression."""
    out: dict[str, torch.Tensor] = {}
    sets = {"train": (data.x_train, data.y_train), "test": (data.x_test, data.y_test)}
    for split in splits:
        x, y = sets[split]
        k, n = x.shape[:2]
        loss_sum = torch.zeros(k, dtype=torch.float64, device=x.device)
        correct = torch.zeros_like(loss_sum)
        per, chunk = eval_passes(params, n, setting.eval.batch_size, model_tokens(model))
        for r0 in range(0, k, per):
            reps = slice(r0, r0 + per)
            part = params if per >= k else {name: p[reps] for name, p in params.items()}
            for lo in range(0, n, chunk):
                xb, yb = x[reps, lo:lo + chunk], y[reps, lo:lo + chunk]
                loss, right = loss_and_correct(setting.loss, model.forward(part, xb), yb, data.num_classes)
                loss_sum[reps] += loss.double() * xb.shape[1]
                if right is not None:
                    correct[reps] += right.double()
        out[f"{split}_loss"] = loss_sum / n
        if data.num_classes is not None:
            out[f"{split}_acc"] = correct / n
    return out
