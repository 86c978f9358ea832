"""The MLP's activations, one table: every fact about an activation that code relies on.

`ACTIVATIONS` maps the names `MlpModel.activation` allows to an `Activation`: its forward (what
`BatchedMlp` runs), the backward formula the hand-written gradient program (`engine.step`) uses,
whether the forward may overwrite its input, its degree of positive homogeneity (what the
rescaling intervention needs) and whether σ(0) = 0 (what packing narrow MLPs into wide ones
needs). Keeping them in one place means a new activation is added once, and an unknown name is
an error everywhere (`activation`), never a silent identity. The tests check each fact against
torch: forward, backward against autograd, σ(0) = 0 and σ(c·z) = c^d·σ(z).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from phenolab.settings import SettingError

Forward = Callable[[torch.Tensor], torch.Tensor]
# (grad, a, h) -> grad · σ'(a) / backward_scale, with h = σ(a); may overwrite `grad`
Backward = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Activation:
    """One activation σ and the facts about it that the model, the gradient program, packing and
    the interventions read.

    `backward(grad, a, h)` is grad · σ'(a) / `backward_scale`, computed with the same ops autograd
    uses (h = σ(a), the forward's output); it may overwrite `grad`, which the gradient program
    passes as a fresh product nothing else reads. `backward_scale` is a constant factor of σ' that
    the gradient program multiplies into the (small) weight matrix instead of a pass over the
    [K, H, B] activations: x²'s derivative is 2x, so its backward is grad · a and its scale 2.
    `fn_` is a forward that may overwrite its input (None: use `fn`): ReLU's backward reads only
    its output, so its input need not be kept (one [K, H, B] tensor fewer per layer and step).
    """

    name: str
    fn: Forward
    backward: Backward
    degree: int | None  # d with σ(c·z) = c^d·σ(z) for every c > 0; None: not positively homogeneous
    zero_at_zero: bool  # σ(0) = 0
    backward_scale: int = 1
    fn_: Forward | None = None

    def forward_(self, a: torch.Tensor) -> torch.Tensor:
        """σ(a), overwriting `a` where the activation allows it (nothing else may read `a` after)."""
        return self.fn(a) if self.fn_ is None else self.fn_(a)


def _identity(h: torch.Tensor) -> torch.Tensor:
    return h


def _relu_backward(grad: torch.Tensor, a: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    return torch.ops.aten.threshold_backward.grad_input(grad, h, 0, grad_input=grad)


def _tanh_backward(grad: torch.Tensor, a: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    return torch.ops.aten.tanh_backward(grad, h)


def _gelu_backward(grad: torch.Tensor, a: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    return torch.ops.aten.gelu_backward(grad, a)


def _quadratic_backward(grad: torch.Tensor, a: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    return grad.mul_(a)  # the 2 of 2a is `backward_scale`


def _identity_backward(grad: torch.Tensor, a: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    return grad


ACTIVATIONS: dict[str, Activation] = {a.name: a for a in (
    Activation("relu", torch.relu, _relu_backward, degree=1, zero_at_zero=True, fn_=torch.relu_),
    Activation("tanh", torch.tanh, _tanh_backward, degree=None, zero_at_zero=True),
    # exact (erf) form, as nn.GELU()
    Activation("gelu", F.gelu, _gelu_backward, degree=None, zero_at_zero=True),
    # Gromov 2023's x² network for modular arithmetic
    Activation("quadratic", torch.square, _quadratic_backward, degree=2, zero_at_zero=True, backward_scale=2),
    Activation("identity", _identity, _identity_backward, degree=1, zero_at_zero=True),
)}


def activation(name: str) -> Activation:
    """The table's entry for `name`; an unknown name is an error naming the allowed ones."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise SettingError(f"unknown activation {name!r}; allowed: {', '.join(ACTIVATIONS)}") from None
