"""Per-neuron Fourier sparsity of the weights that read the residues of a modular task.

`fourier_sparsity` pools the power per frequency over all neurons, which stays flat for an MLP
whose neurons each pick one frequency but together cover them all (Gromov 2023's solution).
Doshi, Das, He & Gromov (2024) track the inverse participation ratio per neuron instead; this
measure is that, averaged over neurons (Nanda et al. 2023 read the same sparsity off the
transformer's embedding, one column at a time here).
"""

from __future__ import annotations

import torch

from phenolab.measures._base import MeasureContext, register_measure
from phenolab.measures.grokking import residue_weights
from phenolab.models import Params


@register_measure("fourier_neuron_ipr", "inverse participation ratio of each neuron's input-weight power over "
                  "Z_p frequencies, averaged over neurons by their power (Doshi, Das, He & Gromov 2024)")
def fourier_neuron_ipr(params: Params, ctx: MeasureContext, which: str = "auto", p: int = 0) -> torch.Tensor:
    """Σ_h w_h · IPR_h with IPR_h = Σ_f P_hf² / (Σ_f P_hf)² and w_h = h's share of the power.

    P_hf is the power of neuron h's weights on residue frequency f (`rfft` over the residues, the
    constant f = 0 left out; an MLP on one-hot(a) ⊕ one-hot(b) sums its a- and b-parts). IPR_h is
    1 when the neuron reads one frequency and 1/F when it reads all alike. `which`: "first_layer"
    (`w0` of such an MLP), "embedding" (the transformer's token embedding, a column per "neuron")
    or "auto"; `p` defaults to the task's number of classes.
    """
    parts = residue_weights(params, ctx, which, p, "fourier_neuron_ipr")
    power = sum(torch.fft.rfft(x.double(), dim=1).abs().square() for x in parts)[:, 1:]  # [K, F, H]
    per_neuron = power.sum(1)  # [K, H]
    ipr = power.square().sum(1) / per_neuron.square().clamp_min(1e-300)
    share = per_neuron / per_neuron.sum(1, keepdim=True).clamp_min(1e-300)
    return (share * ipr).sum(1)
