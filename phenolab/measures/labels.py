"""Which training labels a network fits, split by whether label noise changed them.

A network trained on noisy labels fits the clean ones first and memorises the changed ones later
(Arpit et al. 2017); Kubo, Uda & Iida 2026 read epoch-wise double descent off these two curves:
test error rises while the changed labels are being memorised and falls again once they all are.
`label_fit(subset=noisy)` is that memorisation, per replica.
"""

from __future__ import annotations

import torch

from phenolab.measures._base import MeasureContext, register_measure
from phenolab.models import Params

SUBSETS = ("noisy", "clean")


@register_measure("label_fit", "share of training samples predicted as the label trained on, among those "
                  "whose label the label noise changed (subset='noisy', the default) or kept (subset='clean')")
def label_fit(params: Params, ctx: MeasureContext, subset: str = "noisy", chunk: int = 8192) -> torch.Tensor:
    """Per replica: of the training samples in `subset`, the share whose predicted class is the
    label trained on. "noisy": the label noise drew a different class than the clean label (a
    redraw that hit the clean class counts as clean); NaN for a replica with none (no label
    noise). Reads the recorder's per-sample train fit (`ctx.extra["train_correct"]`, from the
    evaluation it already ran) where there is one; otherwise runs the forward itself, in chunks
    of `chunk` samples."""
    if subset not in SUBSETS:
        raise ValueError(f"label_fit: subset must be one of {', '.join(SUBSETS)}, not {subset!r}")
    data = ctx.data
    if data is None or data.num_classes is None:
        raise ValueError("label_fit needs a classification task's training data (ctx.data)")
    y = data.y_train
    clean = y if data.y_train_clean is None else data.y_train_clean
    changed = y != clean
    member = changed if subset == "noisy" else ~changed
    k = params[next(iter(params))].shape[0]
    member, y = member.expand(k, -1), y.expand(k, -1)
    correct = ctx.extra.get("train_correct")  # the recorder's train-set evaluation, when it ran one
    if correct is not None:
        hits = (correct & member).sum(1).double()
    else:
        hits = torch.zeros(k, dtype=torch.float64, device=y.device)
        x = data.x_train.expand(k, *data.x_train.shape[1:])
        for lo in range(0, x.shape[1], chunk):
            pred = ctx.model.forward(params, x[:, lo:lo + chunk]).argmax(-1)
            hits += ((pred == y[:, lo:lo + chunk]) & member[:, lo:lo + chunk]).sum(1).double()
    counts = member.sum(1).double()
    return torch.where(counts > 0, hits / counts.clamp(min=1), torch.full_like(hits, float("nan")))
