"""Models linear in their trained parameters: random features and a plain linear readout.

Both expose `features(params, x) -> φ(x) [K, B, P]` and `readout`, so the engine can solve the
min-norm (or ridge) least-squares problem exactly, the setting of the double-descent theory
(Belkin, Hsu, Ma & Mandal 2019; Nakkiran, Venkat, Kakade & Ma 2021).
"""

from __future__ import annotations

import math

import torch

from phenolab.models._base import BatchedModel, Params, register_model
from phenolab.settings import RandomFeaturesModel


def apply_readout(phi: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """φ·w per replica. A single output column is K matrix–vector products: on CPU `bmm` with
    one column is ~7× slower than `mv` (measured, float32 and float64), and one replica's `mv` is
    the same operation alone or batched."""
    if w.shape[-1] != 1:
        return torch.bmm(phi, w)
    return torch.stack([torch.mv(phi[k], w[k, :, 0]) for k in range(w.shape[0])]).unsqueeze(-1)


@register_model("random_features")
class BatchedRandomFeatures(BatchedModel):
    """φ(x) = act(x·W/√d_in) with frozen `w_feat [K, in, P]` ~ N(0, 1), trained `readout [K, P, out]`.

    `relu`: φ = relu(x·W/√d_in) (random ReLU features). `fourier`: φ = √(2/P)·cos(x·W/√d_in + b)
    with frozen `phase [K, 1, P]` ~ U(0, 2π): Rahimi & Recht's (2007) random Fourier features of
    the Gaussian kernel exp(−‖x−y‖²/(2σ²)) with bandwidth σ = √d_in, Belkin et al.'s double-descent
    model. The readout starts at zero, so gradient descent from init converges to the min-norm fit.
    Draw order per replica: `w_feat`, then `phase`.
    """

    cfg: RandomFeaturesModel
    frozen = frozenset({"w_feat", "phase"})
    readout = "readout"

    def init(self, generators: list[torch.Generator], dtype: torch.dtype = torch.float32,
             device: torch.device | str = "cpu") -> Params:
        d, p = self.input_dim, self.cfg.num_features
        w, phase = [], []
        for g in generators:
            w.append(torch.randn(d, p, generator=g, dtype=dtype))
            if self.cfg.feature == "fourier":
                phase.append(torch.rand(1, p, generator=g, dtype=dtype) * (2 * math.pi))
        params = {"w_feat": torch.stack(w)}
        if phase:
            params["phase"] = torch.stack(phase)
        params["readout"] = torch.zeros(len(generators), p, self.out_dim, dtype=dtype)
        return {n: t.to(device) for n, t in params.items()}

    def features(self, params: Params, x: torch.Tensor) -> torch.Tensor:
        phi = self._unscaled_features(params, x)
        return phi if self.cfg.feature == "relu" else phi.mul_(self._fourier_scale())

    def forward(self, params: Params, x: torch.Tensor) -> torch.Tensor:
        readout = params["readout"]
        if not readout.requires_grad and not readout.any():  # evaluating the zero init: φ·0 = 0 (φ is finite)
            return readout.new_zeros(x.shape[0], x.shape[1], readout.shape[-1])
        if self.cfg.feature == "fourier":  # √(2/P) on the [K, P, out] readout, not on the [K, B, P] features
            readout = readout * self._fourier_scale()
        return apply_readout(self._unscaled_features(params, x), readout)

    def _unscaled_features(self, params: Params, x: torch.Tensor) -> torch.Tensor:
        """relu(x·W/√d_in), or cos(x·W/√d_in + b) without Fourier's √(2/P): the passes over the
        large [K, B, P] are few (the GEMM adds the phase and the 1/√d_in, all else is in place)."""
        scale = 1 / math.sqrt(self.input_dim)
        if self.cfg.feature == "relu":
            return torch.bmm(x, params["w_feat"]).mul_(scale).relu_()
        phase = params["phase"].expand(x.shape[0], x.shape[1], -1)
        return torch.baddbmm(phase, x, params["w_feat"], alpha=scale).cos_()

    def _fourier_scale(self) -> float:
        return math.sqrt(2 / self.cfg.num_features)


@register_model("linear")
class BatchedLinear(BatchedModel):
    """y = x·β with `readout [K, in, out]` starting at zero (no bias): the exact double-descent model."""

    readout = "readout"

    def init(self, generators: list[torch.Generator], dtype: torch.dtype = torch.float32,
             device: torch.device | str = "cpu") -> Params:
        shape = (len(generators), self.input_dim, self.out_dim)
        return {"readout": torch.zeros(shape, dtype=dtype, device=device)}

    def features(self, params: Params, x: torch.Tensor) -> torch.Tensor:
        return x

    def forward(self, params: Params, x: torch.Tensor) -> torch.Tensor:
        return apply_readout(x, params["readout"])
