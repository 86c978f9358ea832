"""Ensemble statistics over replicas that share a test set: bias–variance decompositions.

The "main" prediction is the ensemble's:

- squared error (Adlam & Pennington 2020, the classical decomposition): main f̄ = mean over
  members of the outputs; bias² = MSE of f̄; variance = mean over members of the squared distance
  of a member's outputs to f̄. Both average over test points and outputs, as the training loss does.
- cross-entropy (Yang, Yu, You, Steinhardt & Ma 2020, "Rethinking bias-variance trade-off"): main
  π̄ ∝ exp(mean log π_s) = softmax(mean logits); bias = CE(y, π̄); variance = mean over members of
  KL(π̄ ‖ π_s).

In both, bias + variance equals the members' mean test loss exactly (variance uses 1/K), so the
"bias" is that of a K-member ensemble. For the 0-1 error they also give the ensemble's error
(argmax of π̄ or f̄) and the disagreement, the mean share of test points where a member's prediction
differs from the ensemble's (Domingos 2000). Members are typically seeds: then the variance is the
total over init, data order, label-noise draw and training subset.
"""

from __future__ import annotations

import torch


def ce_decomposition(logits: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """logits [K, M, C] of K seeds on M shared test points with labels y [M]."""
    logp = torch.log_softmax(logits.double(), dim=-1)  # [K, M, C]
    log_main = torch.log_softmax(logits.double().mean(0), dim=-1)  # log π̄, [M, C]
    nll = -logp.gather(-1, y.expand(logp.shape[0], -1).unsqueeze(-1)).squeeze(-1)  # [K, M]
    bias = float(-log_main.gather(-1, y.unsqueeze(-1)).mean())
    variance = float((log_main.exp() * (log_main - logp)).sum(-1).mean())  # mean_s mean_x KL(π̄‖π_s)
    out = {"mean_loss": float(nll.mean()), "bias": bias, "variance": variance}
    out.update(_zero_one(logits.argmax(-1), log_main.argmax(-1), y))
    return out


def mse_decomposition(outputs: torch.Tensor, targets: torch.Tensor, labels: torch.Tensor | None = None,
                      ) -> dict[str, float]:
    """outputs [K, M, O] against targets [M, O] (one-hot for classification, with `labels` [M])."""
    out64, t64 = outputs.double(), targets.double()
    main = out64.mean(0)
    res = {
        "mean_loss": float((out64 - t64).pow(2).mean()),
        "bias": float((main - t64).pow(2).mean()),
        "variance": float((out64 - main).pow(2).mean()),
    }
    if labels is not None:
        res.update(_zero_one(outputs.argmax(-1), main.argmax(-1), labels))
    return res


def _zero_one(pred: torch.Tensor, main: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    return {
        "mean_error": float((pred != y).double().mean()),
        "ensemble_error": float((main != y).double().mean()),
        "disagreement": float((pred != main).double().mean()),
    }


def prob_average_decomposition(logits: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """The classic deep ensemble (Lakshminarayanan et al. 2017) averages probabilities, p̄ = mean_s
    π_s. Its cross-entropy splits exactly as CE(y, p̄) = mean_s CE(y, π_s) − diversity, with
    diversity = mean_x [log p̄_y − mean_s log π_s,y] ≥ 0 (Jensen's gap at the label)."""
    logp = torch.log_softmax(logits.double(), dim=-1)  # [K, M, C]
    log_mean = torch.logsumexp(logp, dim=0) - torch.log(torch.tensor(float(logp.shape[0]), dtype=logp.dtype))
    at_label = logp.gather(-1, y.expand(logp.shape[0], -1).unsqueeze(-1)).squeeze(-1)  # [K, M]
    ens_at_label = log_mean.gather(-1, y.unsqueeze(-1)).squeeze(-1)  # [M]
    return {"loss": float(-ens_at_label.mean()), "diversity": float((ens_at_label - at_label.mean(0)).mean()),
            "error": float((log_mean.argmax(-1) != y).double().mean())}


def pairwise_disagreement(logits: torch.Tensor) -> float:
    """Mean over pairs of members of the share of points where their argmax predictions differ
    (Fort, Hu & Lakshminarayanan 2019); nan for one member."""
    pred = logits.argmax(-1)  # [K, M]
    k = pred.shape[0]
    if k < 2:
        return float("nan")
    differ = (pred.unsqueeze(0) != pred.unsqueeze(1)).double().mean(-1)  # [K, K]
    return float(differ.sum() / (k * (k - 1)))


def prediction_change(logits: torch.Tensor, moved: torch.Tensor) -> dict[str, float]:
    """How much predictions change when the inputs are transformed: logits [K, M, C] on the
    inputs and moved [T, K, M, C] on T transformed copies of them. For the members (mean over
    them) and for their ensemble (softmax of the mean logits): the total-variation distance
    between the predicted distributions and the share of argmax predictions that flip."""
    p = torch.softmax(logits.double(), -1)
    q = torch.softmax(moved.double(), -1)
    p_ens = torch.softmax(logits.double().mean(0), -1)
    q_ens = torch.softmax(moved.double().mean(1), -1)
    return {
        "member_tv": float(0.5 * (q - p).abs().sum(-1).mean()),
        "ensemble_tv": float(0.5 * (q_ens - p_ens).abs().sum(-1).mean()),
        "member_flips": float((q.argmax(-1) != p.argmax(-1)).double().mean()),
        "ensemble_flips": float((q_ens.argmax(-1) != p_ens.argmax(-1)).double().mean()),
    }
