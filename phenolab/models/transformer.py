"""Batched small causal decoders for `a op b =` (Power et al. 2022; Nanda et al. 2023).

Token embedding, learned positions, `n_layers` blocks of causal multi-head self-attention and a
ReLU MLP, pre-LayerNorm residuals when `layernorm` (Power et al.) and no LayerNorm at all
otherwise (Nanda et al.), a final LayerNorm (if any) and an unembedding read at the last position.

Parameters (vectors are `[K, 1, n]` so they broadcast over the flattened `[K, B·T, d]` stream):
`embed [K, vocab, d]`, `pos [K, T, d]`; per layer i `l{i}.wq/wk/wv/wo [K, d, d]` (no attention
biases, as Nanda et al.), `l{i}.w_in [K, d, d_mlp]`, `l{i}.b_in`, `l{i}.w_out [K, d_mlp, d]`,
`l{i}.b_out`, and with LayerNorm `l{i}.ln1.w/.b`, `l{i}.ln2.w/.b`, `ln_f.w/.b`; `unembed [K, d, out]`.
Heads are the consecutive `d_head` column blocks of `wq/wk/wv` (and row blocks of `wo`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from phenolab.models._base import BatchedModel, Params, register_model
from phenolab.settings import TransformerModel


@register_model("transformer")
class BatchedTransformer(BatchedModel):
    """K decoders of one shape; `forward` returns the logits at the last position, `[K, B, out]`.

    Init follows Nanda et al.'s code (progress-measures-paper `transformers.py`): every matrix is
    N(0, 1/d_model), except the unembedding N(0, 1/vocab); biases and LayerNorm shifts are 0,
    LayerNorm gains 1 (LayerNorm eps 1e-5, PyTorch's). `init_scale` multiplies every drawn matrix
    (embeddings included). Draw order per replica: embed, pos, then per layer wq, wk, wv, wo,
    w_in, w_out, then unembed.
    """

    cfg: TransformerModel
    input_kind = "tokens"

    def __init__(self, cfg: TransformerModel, input_dim: int, out_dim: int, seq_len: int | None = None):
        super().__init__(cfg, input_dim, out_dim, seq_len)
        if cfg.d_model % cfg.n_heads:
            raise ValueError(f"transformer d_model={cfg.d_model} is not divisible by n_heads={cfg.n_heads}")
        if seq_len is None:
            raise ValueError("the transformer needs seq_len (token input)")

    def init(self, generators: list[torch.Generator], dtype: torch.dtype = torch.float32,
             device: torch.device | str = "cpu") -> Params:
        replicas = [self._init_one(g, dtype) for g in generators]
        return {n: torch.stack([r[n] for r in replicas]).to(device) for n in replicas[0]}

    def _init_one(self, gen: torch.Generator, dtype: torch.dtype) -> Params:
        c, d, vocab = self.cfg, self.cfg.d_model, self.input_dim
        scale = c.init_scale

        def normal(rows: int, cols: int, fan: int) -> torch.Tensor:
            return torch.randn(rows, cols, generator=gen, dtype=dtype) * (scale / math.sqrt(fan))

        def ones(n: int) -> torch.Tensor:
            return torch.ones(1, n, dtype=dtype)

        def zeros(n: int) -> torch.Tensor:
            return torch.zeros(1, n, dtype=dtype)

        out: Params = {"embed": normal(vocab, d, d), "pos": normal(self.seq_len, d, d)}
        for i in range(c.n_layers):
            if c.layernorm:
                out[f"l{i}.ln1.w"], out[f"l{i}.ln1.b"] = ones(d), zeros(d)
            for name in ("wq", "wk", "wv", "wo"):
                out[f"l{i}.{name}"] = normal(d, d, d)
            if c.layernorm:
                out[f"l{i}.ln2.w"], out[f"l{i}.ln2.b"] = ones(d), zeros(d)
            out[f"l{i}.w_in"], out[f"l{i}.b_in"] = normal(d, c.d_mlp, d), zeros(c.d_mlp)
            out[f"l{i}.w_out"], out[f"l{i}.b_out"] = normal(c.d_mlp, d, d), zeros(d)
        if c.layernorm:
            out["ln_f.w"], out["ln_f.b"] = ones(d), zeros(d)
        out["unembed"] = normal(d, self.out_dim, vocab)
        return out

    def forward(self, params: Params, x: torch.Tensor) -> torch.Tensor:
        """x: int64 tokens `[K, B, T]` -> logits at position T-1, `[K, B, out_dim]`.

        Only the last position's logits are read, so the last block computes its query, attention
        output and MLP for that position alone (keys and values still come from every position):
        the same function with about a third fewer FLOPs for Power et al.'s model, over half for
        Nanda et al.'s one-layer model.
        """
        c = self.cfg
        k, b, t = x.shape
        d = c.d_model
        # One flat lookup table of all replicas: `F.embedding`'s backward sums repeated tokens in a
        # fixed order, where advanced indexing (`embed[rows, x]`) varied with thread timing.
        vocab = params["embed"].shape[1]
        flat = x + torch.arange(k, device=x.device).view(k, 1, 1) * vocab
        h = torch.nn.functional.embedding(flat, params["embed"].reshape(k * vocab, d))
        h = h + params["pos"][:, None, :t]  # [K, B, T, d]
        h = h.reshape(k, b * t, d)
        for i in range(c.n_layers):
            last = i == c.n_layers - 1
            a = self._ln(params, f"l{i}.ln1", h)
            if last:  # from here on, only position T-1: [K, B, d]
                h = h.view(k, b, t, d)[:, :, -1]
            h = h + self._attention(params, f"l{i}", a, b, t, last_only=last)
            m = torch.relu(torch.baddbmm(params[f"l{i}.b_in"], self._ln(params, f"l{i}.ln2", h),
                                         params[f"l{i}.w_in"]))
            h = h + torch.baddbmm(params[f"l{i}.b_out"], m, params[f"l{i}.w_out"])
        return torch.bmm(self._ln(params, "ln_f", h), params["unembed"])

    def _ln(self, params: Params, prefix: str, h: torch.Tensor) -> torch.Tensor:
        if not self.cfg.layernorm:
            return h
        return torch.addcmul(params[prefix + ".b"], F.layer_norm(h, h.shape[-1:]), params[prefix + ".w"])

    def _attention(self, params: Params, prefix: str, a: torch.Tensor, b: int, t: int,
                   last_only: bool = False) -> torch.Tensor:
        """Causal multi-head attention of `a [K, B·T, d]`; `[K, B·T, d]`, or `[K, B, d]` for the
        last position alone. Scores and mixing are element-wise products summed over the head
        dimension and the T keys: for the few tokens of `a op b =` this is 2–4× faster on a CPU
        than `scaled_dot_product_attention` (whose kernels are built for long sequences) and is
        the same arithmetic."""
        k, _, d = a.shape
        heads = self.cfg.n_heads
        dh = d // heads

        def project(w: str, inp: torch.Tensor, n: int) -> torch.Tensor:  # -> [K·B, n, heads, dh]
            return torch.bmm(inp, params[f"{prefix}.{w}"]).view(k * b, n, heads, dh)

        keys, values = project("wk", a, t), project("wv", a, t)
        if last_only:
            q = project("wq", a.view(k, b, t, d)[:, :, -1].contiguous(), 1)  # [K·B, 1, heads, dh]
            mask = None
        else:
            q = project("wq", a, t)
            mask = torch.ones(t, t, dtype=torch.bool, device=a.device).triu(1)
        # scores[n, i, j, h] = q[n, i, h] · keys[n, j, h] / √dh, softmax over the keys j ≤ i
        scores = (q.unsqueeze(2) * keys.unsqueeze(1)).sum(-1).mul_(1.0 / math.sqrt(dh))
        if mask is not None:
            scores = scores.masked_fill(mask.view(t, t, 1), float("-inf"))
        z = (scores.softmax(2).unsqueeze(-1) * values.unsqueeze(1)).sum(2)  # [K·B, n, heads, dh]
        return torch.bmm(z.reshape(k, -1, d), params[f"{prefix}.wo"])

    def weight_names(self, params: Params) -> list[str]:
        """Every matrix except the positional embedding: embed, wq/wk/wv/wo, w_in/w_out, unembed."""
        mats = ("wq", "wk", "wv", "wo", "w_in", "w_out")
        return [n for n in params if n in ("embed", "unembed") or n.rsplit(".", 1)[-1] in mats]
