"""Optimizers on stacked replica tensors, and the exact least-squares solve.

SGD, Adam and AdamW are element-wise, so one optimizer over `[K, ...]` tensors is exactly K
independent optimizers (the loss is a sum of per-replica means, so gradients don't mix).
"""

from __future__ import annotations

import torch

from phenolab.engine.min_norm import min_norm_solve
from phenolab.settings import OptimConfig

# Replicas lo:hi of every stacked tensor and the optimizer hyperparameters they train with.
ReplicaSpan = tuple[int, int, OptimConfig]


class ReplicaOptimizer:
    """SGD (momentum, Nesterov), Adam or AdamW on the stacked replica tensors, by the fused kernels
    that `torch.optim`'s fused path runs (`torch._fused_sgd_`, `_fused_adam_`, `_fused_adamw_`),
    called directly with the same arguments: parameters are bitwise those of
    `torch.optim.SGD/Adam/AdamW(fused=True)` (tested).

    Why not a `torch.optim.Optimizer`: creating one imports `torch._dynamo` (its `__init__` is
    wrapped in `torch._disable_dynamo`), ~2 s once per process, ~6% of a 10-seed gromov2023
    command; and its `step()` spends ~50 µs per call grouping tensors and reading state, 10–15%
    of a narrow MLP's step.

    `spans` give replicas lo:hi their own hyperparameters (learning rate, weight decay, ...; one
    optimizer name): each span is one kernel call on its rows of every tensor, with its own state,
    so its replicas get the update they would get in a program of their own (this is what lets the
    cells of a phase diagram share programs, `engine.packing`) — bitwise, except where a tensor's
    element count is not a multiple of the kernel's vector width (8 floats on AVX2): the kernel
    updates its last few elements with scalar code, whose rounding can differ in the last bit, and
    those elements belong to the last replica of the call. `lr_scale` multiplies
    every span's lr (warmup). A parameter whose `.grad` is None is skipped, and its state is
    created at its first gradient, as torch.optim does.
    """

    def __init__(self, cfg: OptimConfig, params: list[torch.Tensor], spans: list[ReplicaSpan] | None = None):
        k = params[0].shape[0] if params else 0
        self.spans = _merged(spans or [(0, k, cfg)])
        names = {c.name for _, _, c in self.spans}
        if unknown := sorted(names - {"sgd", "adam", "adamw"}):
            raise ValueError(f"optim.name {unknown[0]!r} has no iterative optimizer")
        if len(names) != 1:
            raise ValueError("ReplicaOptimizer: every span must use the same optimizer")
        bad = [p for p in params if not p.is_floating_point() or p.device.type not in ("cpu", "cuda")]
        if bad:
            raise ValueError(f"ReplicaOptimizer: floating-point CPU or CUDA tensors only, got {bad[0].dtype} "
                             f"on {bad[0].device}")
        self.params, self.lr_scale = params, 1.0
        self.whole = len(self.spans) == 1 and self.spans[0][:2] == (0, k)  # no slicing
        self.state: list[list[dict[str, torch.Tensor]]] = [[{} for _ in params] for _ in self.spans]

    @torch.no_grad()
    def step(self) -> None:
        live = [i for i, p in enumerate(self.params) if p.grad is not None]
        for (lo, hi, cfg), state in zip(self.spans, self.state, strict=True):
            rows = (lambda t: t) if self.whole else (lambda t, lo=lo, hi=hi: t[lo:hi])
            params = {i: rows(self.params[i]) for i in live}
            grads = {i: rows(self.params[i].grad) for i in live}
            lr = cfg.lr * self.lr_scale
            new = [i for i in live if not state[i]]
            if cfg.name == "sgd":
                for first, idx in ((True, new), (False, [i for i in live if state[i]])):
                    if idx:
                        _sgd(cfg, lr, [params[i] for i in idx], [grads[i] for i in idx], [state[i] for i in idx],
                             first)
                continue
            for i in new:
                state[i].update(step=torch.zeros((), dtype=torch.float32, device=params[i].device),
                                exp_avg=torch.zeros_like(params[i], memory_format=torch.preserve_format),
                                exp_avg_sq=torch.zeros_like(params[i], memory_format=torch.preserve_format))
            _adam(cfg, lr, [params[i] for i in live], [grads[i] for i in live], [state[i] for i in live])


def _merged(spans: list[ReplicaSpan]) -> list[ReplicaSpan]:
    """Adjacent spans with equal hyperparameters as one: one kernel call on their rows instead of
    one per span, and none of the per-step slicing when that leaves a single span over all
    replicas (a width-only pack of a double-descent sweep: 6 calls and ~100 slices a step, ~0.35 ms
    of 1.3). The kernels are element-wise, so the updates are the same bits (up to the scalar
    tail of the last call, see `ReplicaOptimizer`)."""
    out: list[ReplicaSpan] = []
    for lo, hi, cfg in spans:
        if out and out[-1][1] == lo and out[-1][2] == cfg:
            out[-1] = (out[-1][0], hi, cfg)
        else:
            out.append((lo, hi, cfg))
    return out


def _sgd(cfg: OptimConfig, lr: float, params: list[torch.Tensor], grads: list[torch.Tensor],
         state: list[dict[str, torch.Tensor]], first: bool) -> None:
    buffers: list[torch.Tensor] = []
    if cfg.momentum:
        if first:  # the kernel fills a fresh buffer with the (decayed) gradient, as torch's first step
            for st, g in zip(state, grads, strict=True):
                st["momentum_buffer"] = torch.empty_like(g)
        buffers = [st["momentum_buffer"] for st in state]
    torch._fused_sgd_(params, grads, buffers, weight_decay=cfg.weight_decay, momentum=cfg.momentum, lr=lr,
                      dampening=0.0, nesterov=cfg.nesterov, maximize=False, is_first_step=first and bool(cfg.momentum),
                      grad_scale=None, found_inf=None)


def _adam(cfg: OptimConfig, lr: float, params: list[torch.Tensor], grads: list[torch.Tensor],
          state: list[dict[str, torch.Tensor]]) -> None:
    steps = [st["step"] for st in state]
    torch._foreach_add_(steps, 1)
    kernel = torch._fused_adamw_ if cfg.name == "adamw" else torch._fused_adam_
    kernel(params, grads, [st["exp_avg"] for st in state], [st["exp_avg_sq"] for st in state], [], steps,
           amsgrad=False, lr=lr, beta1=cfg.betas[0], beta2=cfg.betas[1], weight_decay=cfg.weight_decay,
           eps=cfg.eps, maximize=False, grad_scale=None, found_inf=None)


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
