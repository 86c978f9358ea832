"""Optimizers on stacked replica tensors, and the exact least-squares solve.

SGD, Adam and AdamW are element-wise, so one optimizer over `[K, ...]` tensors is exactly K
independent optimizers (the loss is a sum of per-replica means, so gradients don't mix).
"""

from __future__ import annotations

import torch

from phenolab.settings import OptimConfig


def make_optimizer(cfg: OptimConfig, params: list[torch.Tensor]) -> torch.optim.Optimizer:
    """A torch optimizer over the trainable stacked tensors (fused kernels where torch has them)."""
    fused = _fused_ok(params)
    if cfg.name == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                               weight_decay=cfg.weight_decay, foreach=not fused, fused=fused or None)
    if cfg.name in ("adam", "adamw"):
        cls = torch.optim.Adam if cfg.name == "adam" else torch.optim.AdamW
        return cls(params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay,
                   foreach=not fused, fused=fused or None)
    raise ValueError(f"optim.name {cfg.name!r} has no iterative optimizer")


def _fused_ok(params: list[torch.Tensor]) -> bool:
    return all(p.is_floating_point() for p in params) and all(p.device.type in ("cpu", "cuda") for p in params)


def lstsq_readout(features: torch.Tensor, targets: torch.Tensor, ridge: float) -> torch.Tensor:
    """Min-norm (ridge = 0) or ridge least squares, per replica.

    features [K, N, P], targets [K, N, O] -> readout [K, P, O]. The min-norm solution is
    pinv(Φ)·y (what gradient descent from zero converges to); ridge solves
    (ΦᵀΦ + λ·N·I)⁻¹Φᵀy, i.e. λ is the penalty on the mean squared error scale.
    """
    if ridge == 0:
        return torch.linalg.pinv(features) @ targets
    k, n, p = features.shape
    if p <= n:
        gram = features.transpose(1, 2) @ features
        eye = torch.eye(p, dtype=features.dtype, device=features.device)
        return torch.linalg.solve(gram + ridge * n * eye, features.transpose(1, 2) @ targets)
    kernel = features @ features.transpose(1, 2)
    eye = torch.eye(n, dtype=features.dtype, device=features.device)
    return features.transpose(1, 2) @ torch.linalg.solve(kernel + ridge * n * eye, targets)
