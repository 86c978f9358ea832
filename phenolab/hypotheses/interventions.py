"""Transformations of trained parameters that leave the network's function unchanged.

A measure M that "explains" a target T computed from the network's outputs must not move when
the outputs cannot: if M changes a lot under a function-preserving transformation while T stays
fixed, M does not determine T (position paper §3.2, App. A: the prime count is an artifact of
parameter magnitude). Two classic symmetries:

- rescaling: for an activation that is positively homogeneous of degree d (ReLU and identity:
  d = 1, x² as in Gromov 2023: d = 2; `degree` in `models.activations`), σ(c·z) = c^d·σ(z) for
  c > 0, so multiplying a hidden layer's incoming weights and bias by c and its outgoing weights
  by c^-d changes nothing (Dinh, Pascanu, Bengio & Bengio 2017, "Sharp minima can generalize for
  deep nets");
- permutation: reordering a layer's hidden units (rows of the incoming, columns of the outgoing
  weights) changes nothing either (Hecht-Nielsen 1990; Entezari et al. 2022).

Both act on every replica of a `[K, ...]` parameter dict at once and return a new dict.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from phenolab.models import BatchedModel, Params
from phenolab.models.activations import ACTIVATIONS, activation
from phenolab.settings import SettingError


@dataclass(frozen=True)
class HiddenLayer:
    """The parameters around one hidden layer: incoming weight [K, in, H] (and bias [K, 1, H]),
    outgoing weight [K, H, out], and the activation's degree of homogeneity."""

    w_in: str
    b_in: str | None
    w_out: str
    degree: int


def hidden_layer(model: BatchedModel, params: Params, layer: int) -> HiddenLayer:
    """Locate hidden layer `layer` of an MLP, or the MLP block of transformer layer `layer`."""
    cfg = model.cfg
    if cfg.name == "mlp":
        depth = len(cfg.hidden)
        if layer >= depth:
            raise SettingError(f"intervention layer {layer}: the MLP has {depth} hidden layer(s); "
                               f"allowed 0..{depth - 1}")
        degree = activation(cfg.activation).degree
        if degree is None:
            homogeneous = [a.name for a in ACTIVATIONS.values() if a.degree is not None]
            raise SettingError(f"intervention: activation {cfg.activation!r} is not positively homogeneous; "
                               f"allowed: {', '.join(homogeneous)}")
        bias = f"b{layer}" if f"b{layer}" in params else None
        return HiddenLayer(f"w{layer}", bias, f"w{layer + 1}", degree)
    if cfg.name == "transformer":
        if layer >= cfg.n_layers:
            raise SettingError(f"intervention layer {layer}: the transformer has {cfg.n_layers} layer(s)")
        return HiddenLayer(f"l{layer}.w_in", f"l{layer}.b_in", f"l{layer}.w_out", 1)  # ReLU MLP block
    raise SettingError(f"interventions need model 'mlp' or 'transformer', not {cfg.name!r}")


def rescale(model: BatchedModel, params: Params, layer: int, c: float) -> Params:
    """Scale hidden layer `layer`'s incoming weights and bias by c and its outgoing weights by c^-d."""
    if not c > 0:
        raise SettingError(f"rescale factor {c}: must be > 0")
    where = hidden_layer(model, params, layer)
    out = dict(params)
    out[where.w_in] = params[where.w_in] * c
    if where.b_in is not None:
        out[where.b_in] = params[where.b_in] * c
    out[where.w_out] = params[where.w_out] * c ** (-where.degree)
    return out


def permute(model: BatchedModel, params: Params, layer: int, generator: torch.Generator) -> Params:
    """Reorder hidden layer `layer`'s units by one random permutation per replica."""
    where = hidden_layer(model, params, layer)
    k, _, hidden = params[where.w_in].shape
    perms = torch.stack([torch.randperm(hidden, generator=generator) for _ in range(k)])
    perms = perms.to(params[where.w_in].device)
    rows = torch.arange(k, device=perms.device)[:, None]
    out = dict(params)
    out[where.w_in] = params[where.w_in][rows, :, perms].transpose(1, 2)  # advanced indexing puts H first
    if where.b_in is not None:
        out[where.b_in] = params[where.b_in][rows, :, perms].transpose(1, 2)
    out[where.w_out] = params[where.w_out][rows, perms, :]
    return out


def output_change(model: BatchedModel, before: Params, after: Params, x: torch.Tensor) -> float:
    """max |f_after(x) − f_before(x)| / max |f_before(x)| over replicas and inputs: ~1e-7 in
    float32 when the transformation preserves the function."""
    with torch.no_grad():
        a, b = model.forward(before, x), model.forward(after, x)
    return float((b - a).abs().max() / a.abs().max().clamp_min(1e-30))
