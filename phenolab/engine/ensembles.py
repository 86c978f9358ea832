"""Members of an ensemble that train together (`Setting.trains_whole_ensembles`).

Seeds `e·M … e·M + M − 1` are ensemble e's members. When they differ in only one source (init or
data order), train on a joint objective, or a measure reads the whole ensemble
(`Setting.trains_whole_ensembles`), a member cannot be trained alone: `whole_ensembles`
widens any set of seeds to the ensembles they belong to (the engine trains those and returns
the asked-for ones), and the streams a member draws from are its ensemble's where shared
(`stream_seeds`). `Coupling` mixes each member's output gradient with the gradient of the loss at
the ensemble's mean logits, z̄ = mean_j z_j:

    g_j = (1 − β)·∇L(z_j) + β·∇L(z̄)

which is the gradient of Σ_j [(1 − β)·L(z_j)] + β·M·L(z̄), Jeffares et al.'s (2024) interpolation
times M (so a member's gradient does not shrink with M). β = 0 and M = 1 skip the mix, so such a
run takes exactly the steps of a plain run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from phenolab.settings import Setting

GradOf = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (outputs, targets) -> d loss / d outputs


@dataclass(frozen=True)
class Coupling:
    """Consecutive groups of `members` replicas (one ensemble each) and the weight β of their joint loss."""

    members: int
    joint: float

    @property
    def mixes(self) -> bool:
        return self.members > 1 and self.joint > 0

    def mean_over_members(self, z: torch.Tensor) -> torch.Tensor:
        """z [K, …] → each ensemble's mean [K / M, …], summed member after member: elementwise
        adds give the same bits for any number of ensembles, which a reduction kernel does not."""
        groups = z.reshape(z.shape[0] // self.members, self.members, *z.shape[1:])
        total = groups[:, 0]
        for j in range(1, self.members):
            total = total + groups[:, j]
        return total / self.members

    def first_member(self, t: torch.Tensor) -> torch.Tensor:
        """t [K, …] → the first member's rows [K / M, …] (members share their targets)."""
        return t.reshape(t.shape[0] // self.members, self.members, *t.shape[1:])[:, 0]

    def mix(self, own: torch.Tensor, at_mean: torch.Tensor) -> torch.Tensor:
        """(1 − β)·own + β·at_mean, `own` [K, …] per member, `at_mean` [K / M, …] per ensemble."""
        e = own.shape[0] // self.members
        # a product and a sum, each rounded on its own: a fused multiply-add (`add_(…, alpha=β)`)
        # runs vectorized or not depending on where an element falls in the flattened tensor, so
        # an ensemble's bits would depend on how many ensembles share the batch
        shared = (at_mean * self.joint).unsqueeze(1).expand(e, self.members, *at_mean.shape[1:])
        mixed = own.reshape(e, self.members, *own.shape[1:]) * (1 - self.joint) + shared
        return mixed.reshape(own.shape)

    def mixed_grad(self, z: torch.Tensor, y: torch.Tensor, grad_of: GradOf, grad_at_mean: GradOf) -> torch.Tensor:
        """The members' output gradients from `grad_of(z, y)` (which may overwrite z), mixed with
        the gradient at their ensemble's mean logits from `grad_at_mean` (whose bits must not
        depend on how many ensembles there are)."""
        at_mean = grad_at_mean(self.mean_over_members(z), self.first_member(y))
        return self.mix(grad_of(z, y), at_mean)

    def loss(self, per_member: torch.Tensor, at_mean: torch.Tensor) -> torch.Tensor:
        """The scalar autograd minimizes: Σ (1 − β)·L(z_j) + β·M·Σ_e L(z̄_e)."""
        return per_member.sum() * (1 - self.joint) + at_mean.sum() * (self.joint * self.members)


def coupling_of(setting: Setting) -> Coupling | None:
    """The setting's coupling, or None when its members (if any) train as independent runs."""
    cfg = setting.ensemble
    if cfg is None or not setting.trains_whole_ensembles:
        return None
    return Coupling(cfg.members, cfg.joint)


def whole_ensembles(setting: Setting, seeds: list[int]) -> tuple[list[int], list[int]] | None:
    """(every member of the ensembles `seeds` belong to, ensemble after ensemble in order of first
    appearance; the position of each of `seeds` among them), or None when members train alone."""
    coupling = coupling_of(setting)
    if coupling is None:
        return None
    m = coupling.members
    ensembles = list(dict.fromkeys(s // m for s in seeds))
    members = [e * m + j for e in ensembles for j in range(m)]
    where = {s: i for i, s in enumerate(members)}
    return members, [where[s] for s in seeds]


def stream_seeds(setting: Setting, seeds: list[int]) -> dict[str, list[int]]:
    """The seed each replica draws its "init", "order" and "data" streams from: its own, or its
    ensemble's first member's where the members share that source."""
    cfg = setting.ensemble
    own = {"init": list(seeds), "order": list(seeds), "data": list(seeds)}
    if cfg is None or not cfg.coupled:
        return own
    first = [s - s % cfg.members for s in seeds]
    return {"init": first if cfg.diversity == "order" else own["init"],
            "order": first if cfg.diversity == "init" else own["order"],
            "data": first}
