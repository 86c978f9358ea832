"""Every member's outputs, read from its final parameters in the catalog: on the test set, on the
training set, on shifted test inputs, and for ensembles of perturbations of one trained member."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from phenolab._rng import generator
from phenolab.catalog import Catalog, run_id_for
from phenolab.engine.ensembles import stream_seeds
from phenolab.engine.evaluate import outputs as model_outputs
from phenolab.models import BatchedModel, Params, build_model, model_class
from phenolab.settings import Setting
from phenolab.tasks import TaskData, build_task


@dataclass
class Members:
    """The members of E ensembles of M: their stacked final parameters [E·M, …] (ensemble after
    ensemble), the model, and the data (the test set is shared; the training set is, unless
    members drew their own subsets or label noise: then training-set statistics are not read)."""

    setting: Setting
    ensembles: list[int]
    members: int
    model: BatchedModel
    params: Params
    data: TaskData
    shared_train: bool = True  # False: members drew their own training subsets or label noise

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs [E, M, N, C] of every member on the same inputs x [N, …]."""
        k = self.params[next(iter(self.params))].shape[0]
        with torch.no_grad():
            out = model_outputs(self.model, self.params, x.unsqueeze(0).expand(k, *x.shape),
                                self.setting.eval.batch_size)
        return out.reshape(len(self.ensembles), self.members, *out.shape[1:])

    @property
    def x_test(self) -> torch.Tensor:
        return self.data.x_test[0]

    @property
    def y_test(self) -> torch.Tensor:
        return self.data.y_test[0]

    @property
    def x_train(self) -> torch.Tensor:
        return self.data.x_train[0]

    @property
    def y_train(self) -> torch.Tensor:
        return self.data.y_train[0]


def member_seeds(members: int, ensembles: list[int]) -> list[int]:
    """Seeds of the members of `ensembles`, ensemble after ensemble."""
    return [e * members + j for e in ensembles for j in range(members)]


def load_members(catalog: Catalog, setting: Setting, ensembles: list[int], step: int | None = None) -> Members:
    """The members of `ensembles` under `setting`, from their checkpoints at `step` (None: the last)."""
    m = setting.ensemble.members if setting.ensemble is not None else 1
    seeds = member_seeds(m, ensembles)
    dtype = torch.float64 if setting.dtype == "float64" else torch.float32
    # each member's training set as it was drawn in training (its own, or its ensemble's)
    data = build_task(setting.task, stream_seeds(setting, seeds)["data"], model_class(setting.model.name).input_kind,
                      dtype)
    shared = all(torch.equal(data.x_train[0], data.x_train[k]) and torch.equal(data.y_train[0], data.y_train[k])
                 for k in range(1, len(seeds)))
    ckpts = [catalog.load_checkpoint(run_id_for(setting.id, s), step) for s in seeds]
    params = {n: torch.stack([c[n] for c in ckpts]).to(dtype) for n in ckpts[0]}
    model = build_model(setting.model, data.input_dim, data.out_dim, data.seq_len)
    return Members(setting, list(ensembles), m, model, params, data, shared)


def perturbed(members: Members, scale: float) -> Members:
    """Ensembles of M Gaussian perturbations of each ensemble's first member (Fort et al. 2019's
    samples around one solution): every tensor gets noise of `scale` × its own RMS, drawn from
    a stream of the member's seed, so the perturbations are the same on every machine."""
    m = members.members
    params: Params = {}
    for name, p in members.params.items():
        base = p.reshape(len(members.ensembles), m, *p.shape[1:])[:, 0]
        rows = []
        for i, e in enumerate(members.ensembles):
            rms = base[i].pow(2).mean().sqrt()
            for j in range(m):
                noise = torch.randn(base[i].shape, generator=generator(e * m + j, f"perturb/{name}"),
                                    dtype=torch.float64).to(base.dtype)
                rows.append(base[i] + scale * rms * noise)
        params[name] = torch.stack(rows)
    return Members(members.setting, members.ensembles, m, members.model, params, members.data,
                   members.shared_train)


def shifted(x: torch.Tensor, shifts: tuple[int, ...]) -> list[torch.Tensor]:
    """Circular shifts of each input signal [N, L] along its last axis."""
    return [torch.roll(x, s, dims=-1) for s in shifts]
