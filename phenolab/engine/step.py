"""Gradient programs: what one training step computes, chosen per model and shape.

Why not always autograd over `model.forward`: a step of K tiny replicas is bound by per-op
overhead, not arithmetic. For MLPs (the most common model here) `MlpGrads` computes the same
gradients by hand in a feature-major layout `[K, features, batch]`, where

- the softmax runs over a contiguous class axis (torch's last-dim softmax is ~10× slower for
  10 classes than a softmax over dim 1 with the batch contiguous),
- the small GEMMs have the batch as their wide dimension (MKL is several times slower on
  `[B, H] @ [H, 10]` than on `[10, H] @ [H, B]`),
- no loss value and no autograd graph are built (curves are recorded by evaluation, not here).

The weight gradient of a large layer (`h·gᵀ`, contracting over the batch) is one `mm` per
replica on one CPU thread: MKL's batched GEMM reaches ~45 GFLOP/s there against ~60 for
per-model GEMMs (forward and input-gradient GEMMs are as fast batched). With several threads
every `mm` is its own parallel region, and per-replica calls were up to 5× slower than one `bmm`
(measured on a 2-core VM), so there everything stays batched. The choice depends on layer shape,
device and thread count, never on K, so replica k computes exactly what it computes alone.
Every other model (and the StableMax loss) goes through `AutogradGrads`.
"""

from __future__ import annotations

from typing import Protocol

import torch
import torch.nn.functional as F

from phenolab.engine.losses import per_replica_loss
from phenolab.models import BatchedModel, Params
from phenolab.models.mlp import BatchedMlp

# A weight gradient with at least this many entries per replica is one `mm` per replica (on one
# CPU thread): measured faster from 512×512 up; at 256×256 and below the two are even.
PER_REPLICA_DW = 1 << 18


class GradProgram(Protocol):
    """Sets `.grad` of every trainable parameter for one minibatch (`xb [K, B, ...]`, `yb`)."""

    strategy: str

    def __call__(self, params: Params, xb: torch.Tensor, yb: torch.Tensor) -> None: ...


class AutogradGrads:
    """Any model and loss: the model's forward, the sum of per-replica mean losses, backward."""

    strategy = "autograd"

    def __init__(self, model: BatchedModel, loss: str, num_classes: int | None, trainable: list[str]):
        self.model, self.loss, self.num_classes, self.trainable = model, loss, num_classes, trainable

    def __call__(self, params: Params, xb: torch.Tensor, yb: torch.Tensor) -> None:
        for n in self.trainable:
            params[n].grad = None
        out = self.model.forward(params, xb)
        if self.loss == "ce" and out.shape[-1] < 16:
            loss = small_class_ce(out, yb)
        else:
            loss = per_replica_loss(self.loss, out, yb, self.num_classes)
        loss.sum().backward()


def small_class_ce(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """[K] mean cross-entropy, equal to `per_replica_loss("ce", ...)` but with the softmax over a
    strided class axis: for fewer than 16 classes torch's last-dim log-softmax is ~10× slower."""
    logp = F.log_softmax(out.transpose(1, 2), dim=1)  # [K, C, B]
    return -logp.gather(1, y.unsqueeze(1)).squeeze(1).mean(1)


class MlpGrads:
    """Hand-derived gradients of `BatchedMlp` for the "ce" and "mse" losses (see module doc).

    `per_replica[i]` says whether layer i's weight gradient is one `mm` per replica.
    """

    def __init__(self, model: BatchedMlp, loss: str, num_classes: int | None, device: torch.device):
        self.act = model.cfg.activation
        self.bias = model.cfg.bias
        self.loss, self.num_classes = loss, num_classes
        dims = model.dims()
        self.depth = len(dims) - 1
        single_cpu = device.type == "cpu" and torch.get_num_threads() == 1
        self.per_replica = [single_cpu and a * b >= PER_REPLICA_DW for a, b in zip(dims[:-1], dims[1:], strict=True)]
        layers = ",".join(str(i) for i, p in enumerate(self.per_replica) if p)
        self.strategy = "mlp-bmm" + (f"+mm:dW{layers}" if layers else "")

    @staticmethod
    def supports(model: BatchedModel, loss: str) -> bool:
        return type(model) is BatchedMlp and loss in ("ce", "mse")

    def __call__(self, params: Params, xb: torch.Tensor, yb: torch.Tensor) -> None:
        with torch.no_grad():
            self._grads(params, xb, yb)

    def _grads(self, params: Params, xb: torch.Tensor, yb: torch.Tensor) -> None:
        k, b = xb.shape[:2]
        onehot = not xb.is_floating_point()
        w = [params[f"w{i}"] for i in range(self.depth)]
        bias = [params[f"b{i}"] if self.bias else None for i in range(self.depth)]
        # Forward, feature-major: ins[i] [K, in_i, B] is layer i's input, pre[i] its pre-activation.
        ins: list[torch.Tensor | None] = [None if onehot else xb.transpose(1, 2)]
        pre: list[torch.Tensor] = []
        for i in range(self.depth):
            if i == 0 and onehot:
                a = _onehot_rows(xb, w[0]).transpose(1, 2)
                a = a + bias[0].transpose(1, 2) if self.bias else a
            else:
                a = _linear_t(w[i], bias[i], ins[i])
            pre.append(a)
            if i < self.depth - 1:
                ins.append(_act(self.act, a))
        g = self._output_grad(pre[-1], yb, b)
        # Backward: g is d(sum of per-replica losses)/d(pre-activation of layer i), [K, out_i, B].
        for i in reversed(range(self.depth)):
            if self.bias:
                bias[i].grad = g.sum(2).unsqueeze(1)
            if i == 0 and onehot:
                w[0].grad = _onehot_rows_backward(xb, g.transpose(1, 2), w[0].shape)
                break
            w[i].grad = _mm(ins[i], g.transpose(1, 2), self.per_replica[i], _reusable_grad(w[i]))
            if i > 0:
                g = _act_backward(self.act, torch.bmm(w[i], g), pre[i - 1], ins[i])

    def _output_grad(self, z: torch.Tensor, y: torch.Tensor, b: int) -> torch.Tensor:
        """d(mean loss)/dz per replica, z [K, C, B]."""
        if self.loss == "ce":
            g = torch.softmax(z, dim=1)
            g.scatter_add_(1, y.unsqueeze(1), g.new_full((1, 1, 1), -1.0).expand(z.shape[0], 1, b))
            return g.div_(b)
        if self.num_classes is not None:
            target = torch.zeros_like(z).scatter_(1, y.unsqueeze(1), 1.0)
        else:
            target = y.transpose(1, 2)
        return (z - target).mul_(2.0 / z[0].numel())


def _linear_t(w: torch.Tensor, b: torch.Tensor | None, h: torch.Tensor) -> torch.Tensor:
    """wᵀ·h (+ bᵀ) per replica: w [K, in, out], h [K, in, B] -> [K, out, B]."""
    wt = w.transpose(1, 2)
    return torch.bmm(wt, h) if b is None else torch.baddbmm(b.transpose(1, 2), wt, h)


def _mm(a: torch.Tensor, c: torch.Tensor, per_replica: bool, out: torch.Tensor | None) -> torch.Tensor:
    """a·c per replica, as one bmm or one mm per replica, into `out` when given."""
    if out is None:
        out = a.new_empty(a.shape[0], a.shape[1], c.shape[2])
    if not per_replica:
        return torch.bmm(a, c, out=out)
    for r in range(a.shape[0]):
        torch.mm(a[r], c[r], out=out[r])
    return out


def _reusable_grad(p: torch.Tensor) -> torch.Tensor | None:
    """Last step's gradient buffer of `p`, to be overwritten. A fresh [K, 1024, 1024] tensor each
    step is a new mmap: its page faults made the weight-gradient GEMM 1.5× slower on CPU."""
    g = p.grad
    return g if g is not None and g.shape == p.shape and g.is_contiguous() and g.dtype == p.dtype else None


def _act(kind: str, a: torch.Tensor) -> torch.Tensor:
    if kind == "relu":
        return torch.relu(a)
    if kind == "tanh":
        return torch.tanh(a)
    if kind == "gelu":
        return F.gelu(a)
    if kind == "quadratic":
        return torch.square(a)
    return a


def _act_backward(kind: str, grad: torch.Tensor, a: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """grad · act'(a), with the formulas autograd uses (h = act(a))."""
    if kind == "relu":
        return torch.ops.aten.threshold_backward(grad, h, 0)
    if kind == "tanh":
        return torch.ops.aten.tanh_backward(grad, h)
    if kind == "gelu":
        return torch.ops.aten.gelu_backward(grad, a)
    if kind == "quadratic":
        return grad.mul_(a).mul_(2)
    return grad


def _onehot_offsets(idx: torch.Tensor, n_in: int) -> torch.Tensor:
    return idx + (torch.arange(idx.shape[0], device=idx.device) * n_in).view(-1, 1, 1)


def _onehot_rows(idx: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """one_hot(idx).sum(-2) @ w per replica, as `BatchedMlp` computes it: [K, B, J] -> [K, B, H]."""
    k, n_in, hidden = w.shape
    return F.embedding(_onehot_offsets(idx, n_in), w.reshape(k * n_in, hidden)).sum(2)


def _onehot_rows_backward(idx: torch.Tensor, grad: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Gradient of `_onehot_rows` w.r.t. w, from grad [K, B, H]."""
    k, n_in, hidden = shape
    rows = grad.unsqueeze(2).expand(*idx.shape, hidden)
    flat = torch.ops.aten.embedding_dense_backward(rows, _onehot_offsets(idx, n_in), k * n_in, -1, False)
    return flat.view(shape)


def grad_program(model: BatchedModel, loss: str, num_classes: int | None, trainable: list[str],
                 device: torch.device) -> GradProgram:
    """The fastest exact program for this model and loss (see module doc)."""
    if MlpGrads.supports(model, loss):
        return MlpGrads(model, loss, num_classes, device)  # type: ignore[arg-type]
    return AutogradGrads(model, loss, num_classes, trainable)
