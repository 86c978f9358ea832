"""Per-replica losses. Training minimizes their sum, so each replica gets exactly its own gradient."""

from __future__ import annotations

import torch


def per_replica_loss(kind: str, out: torch.Tensor, y: torch.Tensor, num_classes: int | None) -> torch.Tensor:
    """[K] mean loss of each replica over its batch.

    "ce": cross-entropy on logits. "mse": squared error averaged over samples and outputs
    (torch's default reduction), against one-hot targets for classification (Gromov 2023;
    Liu et al. 2022).
    """
    k, b = out.shape[:2]
    if kind == "ce":
        flat = torch.nn.functional.cross_entropy(out.reshape(k * b, -1), y.reshape(k * b), reduction="none")
        return flat.view(k, b).mean(1)
    if num_classes is not None:
        y = torch.nn.functional.one_hot(y, num_classes).to(out.dtype)
    return (out - y).pow(2).reshape(k, -1).mean(1)
