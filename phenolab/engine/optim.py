"""Optimizers on stacked replica tensors, and the exact least-squares solve.

SGD, Adam and AdamW are element-wise, so one optimizer over `[K, ...]` tensors is exactly K
independent optimizers (the loss is a sum of per-replica means, so gradients don't mix).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from phenolab.engine.min_norm import min_norm_solve
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


def step_function(optimizer: torch.optim.Optimizer) -> Callable[[], None]:
    """`optimizer.step`, or for a fused SGD/Adam/AdamW the very kernel it runs, called directly.

    `Adam.step()` and `SGD.step()` spend ~50 µs per call in Python bookkeeping (grouping
    tensors, reading state) around one fused kernel: 10% of a K=32, width-16 MLP step, 15% of a
    width-4 one. Past the first step (which creates the state) this calls `torch._fused_adam(w)_`
    or `torch._fused_sgd_` on cached state lists with the same arguments, so results are bitwise
    those of `optimizer.step()`, and the optimizer's state stays the one `state_dict()` sees.
    Anything unusual (several groups or devices, amsgrad, a missing gradient) takes
    `optimizer.step()`.
    """
    groups = optimizer.param_groups
    if not (isinstance(optimizer, (torch.optim.Adam, torch.optim.SGD)) and len(groups) == 1
            and groups[0].get("fused")
            and not any(groups[0].get(k) for k in ("amsgrad", "maximize", "capturable", "differentiable"))):
        return optimizer.step
    group = groups[0]
    params: list[torch.Tensor] = group["params"]
    if len({(p.device, p.dtype) for p in params}) != 1:
        return optimizer.step
    sgd = isinstance(optimizer, torch.optim.SGD)
    keys = (("momentum_buffer",) if group["momentum"] else ()) if sgd else ("exp_avg", "exp_avg_sq", "step")
    cache: dict[str, list[torch.Tensor]] = {}
    ready = False  # the state exists (SGD without momentum has none: `cache` stays empty)

    def step() -> None:
        nonlocal ready
        grads = [p.grad for p in params]
        if not ready or any(g is None for g in grads) or isinstance(group["lr"], torch.Tensor):
            optimizer.step()
            if all(all(k in optimizer.state[p] for k in keys) for p in params):
                cache.update({k: [optimizer.state[p][k] for p in params] for k in keys})
                ready = True
            return
        with torch.no_grad():
            if sgd:
                torch._fused_sgd_(params, grads, cache.get("momentum_buffer", []), weight_decay=group["weight_decay"],
                                  momentum=group["momentum"], lr=group["lr"], dampening=group["dampening"],
                                  nesterov=group["nesterov"], maximize=False, is_first_step=False,
                                  grad_scale=None, found_inf=None)
                return
            kernel = torch._fused_adamw_ if group.get("decoupled_weight_decay") else torch._fused_adam_
            beta1, beta2 = group["betas"]
            torch._foreach_add_(cache["step"], 1)
            kernel(params, grads, cache["exp_avg"], cache["exp_avg_sq"], [], cache["step"], amsgrad=False,
                   lr=group["lr"], beta1=beta1, beta2=beta2, weight_decay=group["weight_decay"],
                   eps=group["eps"], maximize=False, grad_scale=None, found_inf=None)

    return step


def lstsq_readout(features: torch.Tensor, targets: torch.Tensor, ridge: float) -> torch.Tensor:
    """Min-norm (ridge = 0) or ridge least squares, per replica.

    features [K, N, P], targets [K, N, O] -> readout [K, P, O]. The min-norm solution is
    pinv(Φ)·y (what gradient descent from zero converges to; `engine.min_norm`); ridge solves
    (ΦᵀΦ + λ·N·I)⁻¹Φᵀy, i.e. λ is the penalty on the mean squared error scale.
    """
    if ridge == 0:
        if features.device.type == "cpu":
            return min_norm_solve(features, targets)  # one QR: 2.4–6× faster than gelsd or pinv
        return torch.linalg.pinv(features) @ targets  # CUDA's lstsq has no min-norm driver
    k, n, p = features.shape
    if p <= n:
        gram = features.transpose(1, 2) @ features
        eye = torch.eye(p, dtype=features.dtype, device=features.device)
        return _spd_solve(gram + ridge * n * eye, features.transpose(1, 2) @ targets)
    kernel = features @ features.transpose(1, 2)
    eye = torch.eye(n, dtype=features.dtype, device=features.device)
    return features.transpose(1, 2) @ _spd_solve(kernel + ridge * n * eye, targets)


def _spd_solve(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a⁻¹b for a batch of symmetric positive-definite `a` (a Gram matrix plus λ·n·I, λ > 0), by
    Cholesky. Not `torch.linalg.solve`: with torch 2.13's CPU build and more than one thread, its
    batched LU returned garbage (residual 1e55 for [3, 500, 500]) or failed with "Pivots given to
    lu_solve must all be greater or equal to 1", silently corrupting ridge fits; batched Cholesky
    was exact (residual ~1e-12) at the same shapes (`test_ridge_solve_is_exact_with_threads`)."""
    return torch.cholesky_solve(b, torch.linalg.cholesky(a))
