"""Members that train together: the joint objective's gradient, bit-for-bit reproducibility of an
ensemble in any batch, and the streams each diversity source shares."""

from __future__ import annotations

import pytest
import torch

import phenolab  # noqa: F401  (first: sets up the CPU kernels)
from phenolab.engine import train
from phenolab.engine.ensembles import Coupling, stream_seeds, whole_ensembles
from phenolab.engine.step import AutogradGrads, MlpGrads
from phenolab.models import build_model
from phenolab.settings import SettingError, validate_setting

BASE = {"task": {"name": "mnist1d", "num_samples": 600}, "model": {"name": "mlp", "width": 24, "depth": 2},
        "optim": {"name": "adam", "lr": 2e-3}, "schedule": {"steps": 40, "batch_size": 50}, "eval": {"points": 4}}


def setting(**ensemble: object):
    return validate_setting({**BASE, "ensemble": ensemble} if ensemble else BASE)


def same(a, b) -> bool:
    return all(torch.equal(a.params[n], b.params[n]) for n in a.params)


@pytest.mark.parametrize("loss", ["ce", "mse"])
def test_hand_written_gradient_is_that_of_the_joint_objective(loss: str) -> None:
    """Σ_j (1 − β)·L(z_j) + β·M·L(mean_j z_j), differentiated by autograd from scratch."""
    model = build_model(setting().model, 40, 10, None)
    params = model.init([torch.Generator().manual_seed(i) for i in range(6)], torch.float64, "cpu")
    x = torch.randn(6, 16, 40, dtype=torch.float64)
    y = torch.randint(0, 10, (2, 16)).repeat_interleave(3, 0)  # two ensembles of 3 sharing targets
    beta = 0.3
    hand = {n: p.clone() for n, p in params.items()}
    MlpGrads(model, loss, 10, Coupling(3, beta))(hand, x, y)
    leaves = {n: p.clone().requires_grad_(True) for n, p in params.items()}
    z = model.forward(leaves, x)

    def crit(out: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if loss == "ce":
            return torch.nn.functional.cross_entropy(out.reshape(-1, 10), t.reshape(-1), reduction="sum") / t.shape[-1]
        return (out - torch.nn.functional.one_hot(t, 10)).pow(2).sum() / (t.shape[-1] * 10)

    mean = z.reshape(2, 3, 16, 10).mean(1)
    objective = (1 - beta) * crit(z, y) + beta * 3 * crit(mean, y[::3])
    objective.backward()
    for n in params:
        torch.testing.assert_close(hand[n].grad, leaves[n].grad, rtol=1e-10, atol=1e-13)
    auto = {n: p.clone() for n, p in params.items()}
    AutogradGrads(model, loss, 10, list(auto), Coupling(3, beta))(auto, x, y)
    for n in params:
        torch.testing.assert_close(auto[n].grad, leaves[n].grad, rtol=1e-10, atol=1e-13)


@pytest.mark.slow
def test_joint_training_of_one_member_is_independent_training_bit_for_bit() -> None:
    plain = train(setting(), [0, 1, 2])
    assert same(plain, train(setting(members=1, joint=0.7, diversity="init"), [0, 1, 2]))
    # β = 0 with every source differing is plain training too, whatever M
    assert same(plain, train(setting(members=3), [0, 1, 2]))


@pytest.mark.slow
@pytest.mark.parametrize("threads", [1, 2])
def test_an_ensemble_trains_the_same_alone_or_beside_others(threads: int) -> None:
    joint = setting(members=4, joint=0.5, diversity="init")
    batch = train(joint, list(range(12)), replica_threads=threads)
    alone = train(joint, [4, 5, 6, 7], replica_threads=1)
    assert all(torch.equal(batch.params[n][4:8], alone.params[n]) for n in batch.params)
    two = train(joint, list(range(8)), replica_threads=1)
    assert all(torch.equal(batch.params[n][:8], two.params[n]) for n in batch.params)
    # asking for some members trains their whole ensembles and returns the asked-for ones, in order
    part = train(joint, [6, 1], replica_threads=1)
    assert part.seeds == [6, 1]
    assert all(torch.equal(part.params[n], batch.params[n][[6, 1]]) for n in batch.params)
    # and the coupling changes training: β = 0.5 is not independent training
    assert not same(batch, train(setting(members=4, diversity="init"), list(range(12))))


@pytest.mark.slow
def test_diversity_sources_share_what_they_say() -> None:
    def start_and_end(**ens: object):
        s = setting(members=2, **ens).with_overrides({"checkpoints": "eval"})
        r = train(s, [0, 1])
        return r.checkpoints[0]["w0"], r.params["w0"]

    init0, _ = start_and_end(diversity="order")  # same init, other order
    assert torch.equal(init0[0], init0[1])
    init1, end1 = start_and_end(diversity="init")  # other init, same order
    assert not torch.equal(init1[0], init1[1])
    assert stream_seeds(setting(members=2, diversity="init"), [2, 3])["order"] == [2, 2]
    assert stream_seeds(setting(members=2, diversity="order"), [2, 3])["init"] == [2, 2]
    assert stream_seeds(setting(members=2), [2, 3]) == {"init": [2, 3], "order": [2, 3], "data": [2, 3]}
    assert whole_ensembles(setting(members=2, diversity="init"), [3]) == ([2, 3], [1])
    assert whole_ensembles(setting(members=2), [3]) is None  # independent members train alone


def test_joint_training_needs_members_that_share_batches() -> None:
    with pytest.raises(SettingError, match="ensemble.joint 0.5 needs ensemble.diversity 'init'"):
        setting(members=4, joint=0.5)
    with pytest.raises(SettingError, match="ensemble.members"):
        setting(members=0)


@pytest.mark.slow
def test_ensemble_measures_read_whole_ensembles_without_changing_training() -> None:
    from phenolab.analysis.ensemble import ce_decomposition
    from phenolab.engine.evaluate import outputs
    from phenolab.tasks import build_task

    measured = validate_setting({**BASE, "ensemble": {"members": 3}, "checkpoints": "final",
                                 "measures": ["ensemble_gain", "ensemble_diversity", "ensemble_size",
                                              {"name": "ensemble_loss", "params": {"split": "train"}}]})
    assert measured.trains_whole_ensembles and not setting(members=3).trains_whole_ensembles
    r = train(measured, [4, 0, 1, 2], replica_threads=2)  # ensembles 1 (partly asked for) and 0
    assert r.seeds == [4, 0, 1, 2]
    plain = train(setting(), [3, 4, 5, 0, 1, 2], replica_threads=2)  # the program the measured run trains
    assert all(torch.equal(plain.params[n][[1, 3, 4, 5]], r.params[n]) for n in r.params)  # recording changes nothing
    data = build_task(measured.task, [0, 1, 2], "features", torch.float32)
    model = build_model(measured.model, 40, 10, None)
    logits = outputs(model, {n: p[1:] for n, p in r.params.items()}, data.x_test, 8192)  # ensemble 0
    d = ce_decomposition(logits, data.y_test[0])
    assert r.curves["ensemble_gain"][1:, -1] == pytest.approx([d["mean_error"] - d["ensemble_error"]] * 3)
    assert r.curves["ensemble_diversity"][1:, -1] == pytest.approx([d["variance"]] * 3, rel=1e-5)
    assert set(r.curves["ensemble_size"][:, -1]) == {3.0}
    with pytest.raises(SettingError, match="measure 'ensemble_gain' reads a whole ensemble"):
        validate_setting({**BASE, "measures": ["ensemble_gain"]})
