"""Batched fully connected nets: K MLPs of one shape evaluated with `torch.baddbmm`.

Parameters: `w0 [K, in, H]`, `b0 [K, 1, H]`, ..., `w{depth} [K, H, out]`, `b{depth} [K, 1, out]`
(no `b*` when `bias=False`). Weights are stored input-major (`x @ w`), i.e. the transpose of
`nn.Linear.weight`. The activations and their facts are in `activations`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from phenolab.models._base import BatchedModel, Params, register_model
from phenolab.models.activations import activation
from phenolab.settings import MlpModel


@register_model("mlp")
class BatchedMlp(BatchedModel):
    """`depth` hidden layers of `width` units; depth 0 is a linear (affine) model.

    Init is PyTorch's `nn.Linear` default, U(-1/√fan_in, 1/√fan_in) for weights and biases,
    drawn per replica in `nn.Linear` order (layer by layer, weight then bias), so replica k equals
    an `nn.Sequential` built under the same seed. `init_scale` multiplies weights *and* biases
    (Omnigrok's α, Liu, Michaud & Tegmark 2022).
    """

    cfg: MlpModel
    input_kind = "onehot"  # one-hot tasks give indices; all others give dense features

    def dims(self) -> list[int]:
        return [self.input_dim, *self.cfg.hidden, self.out_dim]

    def init(self, generators: list[torch.Generator], dtype: torch.dtype = torch.float32,
             device: torch.device | str = "cpu") -> Params:
        replicas = [self._init_one(g, dtype) for g in generators]
        return {n: torch.stack([r[n] for r in replicas]).to(device) for n in replicas[0]}

    def _init_one(self, gen: torch.Generator, dtype: torch.dtype) -> Params:
        out: Params = {}
        dims = self.dims()
        for i, (fan_in, fan_out) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
            w = torch.empty(fan_out, fan_in, dtype=dtype)
            torch.nn.init.kaiming_uniform_(w, a=math.sqrt(5), generator=gen)  # exactly nn.Linear's
            out[f"w{i}"] = w.t().contiguous()
            if self.cfg.bias:
                bound = 1 / math.sqrt(fan_in)
                out[f"b{i}"] = torch.empty(1, fan_out, dtype=dtype).uniform_(-bound, bound, generator=gen)
        if self.cfg.init_scale != 1.0:
            out = {n: p * self.cfg.init_scale for n, p in out.items()}
        return out

    def forward(self, params: Params, x: torch.Tensor) -> torch.Tensor:
        """x: float features [K, B, in], or int64 indices [K, B, J] of the ones of one-hot inputs
        (then the first layer is a row lookup-and-sum: same numbers, no matmul over zeros)."""
        act = activation(self.cfg.activation).fn
        h = x
        depth = len(self.cfg.hidden)
        for i in range(depth + 1):
            w = params[f"w{i}"]
            if i == 0 and not x.is_floating_point():
                h = onehot_matmul(x, w)
                h = h + params["b0"] if self.cfg.bias else h
            else:
                h = torch.baddbmm(params[f"b{i}"], h, w) if self.cfg.bias else torch.bmm(h, w)
            if i < depth:
                h = act(h)
        return h

    def weight_names(self, params: Params) -> list[str]:
        """The weight matrices `w0..w{depth}` (biases are `[K, 1, n]`, so the base rule would count them)."""
        return [n for n in params if n.startswith("w")]


def onehot_matmul(idx: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """one_hot(idx).sum(-2) @ w per replica: idx [K, B, J] into w [K, in, H] -> [K, B, H]."""
    k, n_in, hidden = w.shape
    b, j = idx.shape[1:]
    offsets = (torch.arange(k, device=idx.device) * n_in).view(k, 1, 1)
    # one bag of J rows per sample: gather and sum fused (5× faster than embedding(...).sum(2) on
    # CPU for gromov2023's shapes, and the same sums in the same order)
    rows = F.embedding_bag((idx + offsets).view(k * b, j), w.reshape(k * n_in, hidden), mode="sum")
    return rows.view(k, b, hidden)
