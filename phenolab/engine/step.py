"""Gradient programs: what one training step computes, chosen per model and loss.

A step of K tiny replicas is bound by per-op overhead and by how well MKL runs small batched
GEMMs, not by arithmetic. So for MLPs (the most common model here) `MlpGrads` computes autograd's
gradients by hand, laid out for that:

- activations are feature-major, `[K, features, batch]`: the softmax runs over dim 1 with the
  batch contiguous, and the GEMMs are `[out, H]·[H, B]`, the orientation MKL runs fastest here;
- weight gradients are written into last step's gradient buffers, so no step pays the page
  faults of a fresh large tensor;
- no autograd graph is built, and no loss value except when asked for the batch's fit (`fit`):
  on the full batch, a recorded step's forward doubles as the train-set evaluation;
- the activation's forward and backward come from `models.activations` (ReLU in place), the
  one-hot first layer's gradient from `onehot_grads.onehot_rows_backward`, and a constant factor
  of σ' (x²'s 2) rides on the small weight matrix instead of a pass over [B, H] activations.

All GEMMs are batched (`bmm`), and replicas whose activations are large go through in passes of
a few (`replicas_per_pass`, see `engine.passes`). No choice depends on K, so replica k computes
what it computes alone. Every other model (and the StableMax loss) goes through `AutogradGrads`.
The measurements behind these choices, and what was tried instead, are in `bench/README.md`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch

from phenolab.engine.ensembles import Coupling
from phenolab.engine.losses import correct_count, loss_and_correct, per_replica_loss
from phenolab.engine.onehot_grads import FixedBatchLookups, onehot_rows_backward
from phenolab.engine.passes import model_tokens, replicas_per_pass
from phenolab.models import BatchedModel, Params
from phenolab.models.activations import activation
from phenolab.models.mlp import BatchedMlp, onehot_matmul

# The batch's fit, measured on the step's own forward: [K] mean loss, and [K] correct counts
# (None for regression), as `losses.loss_and_correct` gives them.
Fit = tuple[torch.Tensor, torch.Tensor | None]
GradsOf = Callable[[Params, torch.Tensor, torch.Tensor, dict[str, torch.Tensor | None], bool],
                   tuple[dict[str, torch.Tensor], Fit | None]]


def set_grads_in_passes(params: Params, names: list[str], xb: torch.Tensor, yb: torch.Tensor,
                        grads_of: GradsOf, out: dict[str, torch.Tensor | None], fit: bool = False,
                        tokens: int = 1, align: int = 1) -> Fit | None:
    """Set `.grad` of `names` from `grads_of(params, xb, yb, out, fit)`, run over all replicas at
    once or, when their activations are large, over `replicas_per_pass` of them at a time, each
    pass writing into its slice of the `out` buffers (or fresh ones); a pass holds whole groups of
    `align` replicas (an ensemble whose members train together). Returns the batch's fit when
    `fit` is asked for."""
    k, per = xb.shape[0], replicas_per_pass(params, xb.shape[1], tokens)
    per = max(align, per // align * align)
    if per >= k:
        grads, batch_fit = grads_of(params, xb, yb, out, fit)
    else:
        grads = {n: torch.empty_like(params[n]) if out.get(n) is None else out[n] for n in names}
        fits: list[Fit] = []
        for k0 in range(0, k, per):
            sl = slice(k0, k0 + per)
            part, part_fit = grads_of({n: p[sl] for n, p in params.items()}, xb[sl], yb[sl],
                                      {n: grads[n][sl] for n in names}, fit)
            if part_fit is not None:
                fits.append(part_fit)
            for n, g in part.items():
                if g.data_ptr() != grads[n][sl].data_ptr():
                    grads[n][sl].copy_(g)
        batch_fit = _cat_fits(fits) if fit else None
    for n, g in grads.items():
        params[n].grad = g
    return batch_fit


def _cat_fits(fits: list[Fit]) -> Fit:
    rights = [right for _, right in fits]
    return torch.cat([loss for loss, _ in fits]), None if rights[0] is None else torch.cat(rights)  # type: ignore[arg-type]


class GradProgram(Protocol):
    """Sets `.grad` of every trainable parameter for one minibatch (`xb [K, B, ...]`, `yb`); with
    `fit`, also returns how well the parameters fit that batch, from the same forward."""

    strategy: str

    def __call__(self, params: Params, xb: torch.Tensor, yb: torch.Tensor, fit: bool = False) -> Fit | None: ...


class AutogradGrads:
    """Any model and loss: the model's forward, the sum of per-replica mean losses (with a
    coupling, the ensembles' joint objective, `engine.ensembles`), backward."""

    strategy = "autograd"

    def __init__(self, model: BatchedModel, loss: str, num_classes: int | None, trainable: list[str],
                 coupling: Coupling | None = None):
        self.model, self.loss, self.num_classes, self.trainable = model, loss, num_classes, trainable
        self.tokens = model_tokens(model)
        self.coupling = coupling if coupling is not None and coupling.mixes else None
        self.align = coupling.members if coupling is not None else 1

    def __call__(self, params: Params, xb: torch.Tensor, yb: torch.Tensor, fit: bool = False) -> Fit | None:
        return set_grads_in_passes(params, self.trainable, xb, yb, self._grads, {}, fit, self.tokens, self.align)

    def _grads(self, params: Params, xb: torch.Tensor, yb: torch.Tensor, out: dict[str, torch.Tensor | None],
               fit: bool) -> tuple[dict[str, torch.Tensor], Fit | None]:
        """The trainable parameters' gradients, with these replicas as leaves of their own graph."""
        leaves = {n: p.detach().requires_grad_(n in self.trainable) for n, p in params.items()}
        logits = self.model.forward(leaves, xb)
        loss = per_replica_loss(self.loss, logits, yb, self.num_classes)
        if self.coupling is None:
            loss.sum().backward()
        else:
            c = self.coupling
            means, targets = c.mean_over_members(logits), c.first_member(yb)
            # one ensemble at a time: a loss kernel's bits may depend on how many rows it is given
            at_mean = torch.cat([per_replica_loss(self.loss, means[e:e + 1], targets[e:e + 1], self.num_classes)
                                 for e in range(means.shape[0])])
            c.loss(loss, at_mean).backward()
        right = None if self.num_classes is None or not fit else correct_count(logits.detach(), yb)
        return {n: leaves[n].grad for n in self.trainable}, (loss.detach(), right) if fit else None


class MlpGrads:
    """Hand-derived gradients of `BatchedMlp` for the "ce" and "mse" losses (see module doc)."""

    strategy = "mlp-bmm"

    def __init__(self, model: BatchedMlp, loss: str, num_classes: int | None, coupling: Coupling | None = None):
        self.act = activation(model.cfg.activation)
        self.coupling = coupling if coupling is not None and coupling.mixes else None
        self.align = coupling.members if coupling is not None else 1
        self.bias = model.cfg.bias
        self.loss, self.num_classes = loss, num_classes
        self.depth = len(model.dims()) - 1
        self.lookups = FixedBatchLookups()

    @staticmethod
    def supports(model: BatchedModel, loss: str) -> bool:
        return type(model) is BatchedMlp and loss in ("ce", "mse")

    def __call__(self, params: Params, xb: torch.Tensor, yb: torch.Tensor, fit: bool = False) -> Fit | None:
        names = [n for n in params if n[0] in "wb"]
        buffers = {n: _reusable_grad(params[n]) for n in names}
        lookups = self.lookups(xb, params["w0"].shape[1], params["w0"].dtype)
        done = 0  # replicas before this pass (passes run in order)

        def grads_of(p: Params, x: torch.Tensor, y: torch.Tensor, out: dict[str, torch.Tensor | None],
                     fit: bool) -> tuple[dict[str, torch.Tensor], Fit | None]:
            nonlocal done
            part = None if lookups is None else lookups[done:done + x.shape[0]]
            done += x.shape[0]
            return self._grads(p, x, y, out, fit, part)

        with torch.no_grad():
            return set_grads_in_passes(params, names, xb, yb, grads_of, buffers, fit, align=self.align)

    def _grads(self, params: Params, xb: torch.Tensor, yb: torch.Tensor, out: dict[str, torch.Tensor | None],
               fit: bool, lookups: list[torch.Tensor] | None) -> tuple[dict[str, torch.Tensor], Fit | None]:
        """Gradients of every weight and bias, written into `out` buffers where given (`lookups`:
        the one-hot layer's CSR lookup matrices of these replicas, see `onehot_grads`)."""
        b = xb.shape[1]
        onehot = not xb.is_floating_point()
        # detached: with `requires_grad` weights, embedding_bag takes its slower training kernel
        w = [params[f"w{i}"].detach() for i in range(self.depth)]
        bias = [params[f"b{i}"].detach() if self.bias else None for i in range(self.depth)]
        grads: dict[str, torch.Tensor] = {}
        # Forward, feature-major: ins[i] [K, n_i, B] is layer i's input, pre[i] its pre-activation.
        ins: list[torch.Tensor | None] = [None if onehot else xb.transpose(1, 2)]
        pre: list[torch.Tensor] = []
        for i in range(self.depth):
            if i == 0 and onehot:  # row-major [K, B, H] storage seen feature-major: no transposing copy
                a = _onehot_rows(xb, w[0], bias[0]).transpose(1, 2)
            else:
                a = _linear_t(w[i], bias[i], ins[i])
            pre.append(a)
            if i < self.depth - 1:
                ins.append(self.act.forward_(a))  # in place only where the backward needs just σ(a)
        batch_fit = loss_and_correct(self.loss, pre[-1].transpose(1, 2), yb, self.num_classes) if fit else None
        g = self._output_grad(pre[-1], yb, b)
        # Backward: g is d(sum of per-replica losses)/d(pre[i]), [K, n_{i+1}, B].
        for i in reversed(range(self.depth)):
            if self.bias:
                grads[f"b{i}"] = g.sum(2).unsqueeze(1)
            if i == 0 and onehot:
                grads["w0"] = onehot_rows_backward(xb, g.transpose(1, 2), w[0].shape, out.get("w0"), lookups)
                break
            grads[f"w{i}"] = torch.bmm(ins[i], g.transpose(1, 2), out=out.get(f"w{i}"))
            # a constant factor of σ' (x²'s 2 of 2x) rides on the (small) weight, not on a [K, B, H]
            # pass; scaling by 2 is exact, so these are the bits of ·2 after the product
            scale = self.act.backward_scale
            back = w[i] * scale if scale != 1 else w[i]
            if i == 1 and onehot:  # layer 0 lives row-major: its gradient is computed row-major too
                rows = torch.bmm(g.transpose(1, 2), back.transpose(1, 2))
                g = self.act.backward(rows, pre[0].transpose(1, 2), ins[1].transpose(1, 2)).transpose(1, 2)
            elif i > 0:
                g = self.act.backward(torch.bmm(back, g), pre[i - 1], ins[i])
        return grads, batch_fit

    def _output_grad(self, z: torch.Tensor, y: torch.Tensor, b: int) -> torch.Tensor:
        """d(mean loss)/dz per replica, z [K, C, B], mixed with the ensemble's where members train
        jointly. MSE overwrites z (nothing reads it after)."""
        if self.coupling is not None:
            return self.coupling.mixed_grad(z, y, lambda zz, yy: self._own_output_grad(zz, yy, b),
                                            lambda zz, yy: self._own_output_grad(zz, yy, b, rows=True))
        return self._own_output_grad(z, y, b)

    def _own_output_grad(self, z: torch.Tensor, y: torch.Tensor, b: int, rows: bool = False) -> torch.Tensor:
        if self.loss == "mse" and self.num_classes is None:
            return z.sub_(y.transpose(1, 2)).mul_(2.0 / z[0].numel())
        # minus one_hot(y), in place: adding −1 at the label is subtracting 1 (the same bits), and
        # no [K, C, B] target is built
        minus_one = z.new_full((1, 1, 1), -1.0).expand(z.shape[0], 1, b)
        if self.loss == "ce":
            # rows: softmax over the contiguous last dim, whose bits do not depend on how many
            # tensors of [C, B] there are (over dim 1 they do: an ensemble's mean would differ
            # with the number of ensembles in the batch); slower for few classes, so only there
            probs = torch.softmax(z.transpose(1, 2), dim=2).transpose(1, 2) if rows else torch.softmax(z, dim=1)
            return probs.scatter_add_(1, y.unsqueeze(1), minus_one).div_(b)
        return z.scatter_add_(1, y.unsqueeze(1), minus_one).mul_(2.0 / z[0].numel())


def _linear_t(w: torch.Tensor, b: torch.Tensor | None, h: torch.Tensor) -> torch.Tensor:
    """wᵀ·h (+ bᵀ) per replica: w [K, in, out], h [K, in, B] -> [K, out, B]."""
    wt = w.transpose(1, 2)
    return torch.bmm(wt, h) if b is None else torch.baddbmm(b.transpose(1, 2), wt, h)


def _reusable_grad(p: torch.Tensor) -> torch.Tensor | None:
    """Last step's gradient buffer of `p`, to be overwritten (see module doc)."""
    g = p.grad
    ok = g is not None and g.shape == p.shape and g.dtype == p.dtype and g.is_contiguous()
    return g if ok else None


def _onehot_rows(idx: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    """one_hot(idx).sum(-2) @ w (+ b) per replica, as `BatchedMlp` computes it: [K, B, J] -> [K, B, H]."""
    rows = onehot_matmul(idx, w)
    return rows if b is None else rows + b


def grad_program(model: BatchedModel, loss: str, num_classes: int | None, trainable: list[str],
                 coupling: Coupling | None = None) -> GradProgram:
    """The fastest exact program for this model and loss (see module doc); `coupling`: replicas
    that are members of ensembles training together (`engine.ensembles`)."""
    if MlpGrads.supports(model, loss):
        return MlpGrads(model, loss, num_classes, coupling)  # type: ignore[arg-type]
    return AutogradGrads(model, loss, num_classes, trainable, coupling)
