"""The engine: a replica of a batch equals its run alone; runs are deterministic; masks hold;
the exact solve is the min-norm solution; training really learns."""

import numpy as np
import pytest
import torch

import phenolab  # noqa: F401
from phenolab.engine import eval_steps, evaluate, train, warmup_factor
from phenolab.models import build_model, model_class
from phenolab.settings import resolve_setting, validate_setting
from phenolab.tasks import build_task

MLP_SGD = {
    "task": {"name": "mnist1d", "num_samples": 600, "label_noise": 0.1},
    "model": {"name": "mlp", "width": 32, "depth": 2},
    "optim": {"name": "sgd", "lr": 0.05, "momentum": 0.9},
    "schedule": {"steps": 60, "batch_size": 50},
    "eval": {"points": 8},
    "measures": ["weight_norm", "distance_from_init"],
}
MLP_ADAMW_FULL = {
    "task": {"name": "modular", "p": 13, "op": "/", "train_fraction": 0.5},
    "model": {"name": "mlp", "width": 24, "depth": 1, "activation": "quadratic", "bias": False},
    "optim": {"name": "adamw", "lr": 1e-2, "betas": [0.9, 0.98], "weight_decay": 1.0, "warmup_steps": 5},
    "schedule": {"steps": 40},
    "loss": "mse",
    "eval": {"points": 6},
}
TRANSFORMER = {
    "task": {"name": "modular", "p": 7, "op": "+", "train_fraction": 0.5},
    "model": {"name": "transformer", "n_layers": 2, "d_model": 16, "n_heads": 4, "d_mlp": 32},
    "optim": {"name": "adamw", "lr": 1e-3, "betas": [0.9, 0.98], "weight_decay": 1.0, "warmup_steps": 10},
    "schedule": {"steps": 25, "batch_size": 8},
    "eval": {"points": 5},
}


def _assert_replica_equals_alone(cfg, seeds=(0, 1, 2), atol=1e-6):
    setting = validate_setting(cfg)
    batched = train(setting, list(seeds))
    for k, seed in enumerate(seeds):
        alone = train(setting, [seed])
        assert batched.steps == alone.steps
        for name in batched.params:
            torch.testing.assert_close(batched.params[name][k], alone.params[name][0], atol=atol, rtol=1e-5)
        for metric, values in batched.curves.items():
            np.testing.assert_allclose(values[k], alone.curves[metric][0], atol=atol * 10, rtol=1e-5)


def test_mlp_replica_equals_alone_sgd_minibatch():
    _assert_replica_equals_alone(MLP_SGD)


def test_mlp_replica_equals_alone_adamw_fullbatch_mse():
    _assert_replica_equals_alone(MLP_ADAMW_FULL)


def test_transformer_replica_equals_alone():
    _assert_replica_equals_alone(TRANSFORMER, seeds=(0, 1))


@pytest.mark.parametrize("cfg", [
    {**MLP_ADAMW_FULL, "dtype": "float64"},  # hand-derived MLP program, MSE
    {**MLP_ADAMW_FULL, "loss": "stablemax_ce", "dtype": "float64"},  # autograd program
    {**MLP_ADAMW_FULL, "task": {"name": "linear_regression", "d": 6, "n_train": 30}, "loss": "mse",
     "model": {"name": "mlp", "width": 8}, "dtype": "float64"},  # regression: no accuracy
    {**TRANSFORMER, "schedule": {"steps": 12}, "dtype": "float64"},  # tokens, full batch (as nanda2023)
])
def test_full_batch_train_curves_equal_an_evaluation_of_the_recorded_params(cfg):
    """On the full batch, train loss and accuracy come from the step's own forward (no second pass
    over the training set): they must be what evaluating those parameters gives, last step included."""
    setting = validate_setting({**cfg, "checkpoints": "eval"})
    result = train(setting, [0, 1])
    data = build_task(setting.task, [0, 1], model_class(setting.model.name).input_kind, torch.float64)
    model = build_model(setting.model, data.input_dim, data.out_dim, data.seq_len)
    names = ["train_loss", "train_acc"] if data.num_classes is not None else ["train_loss"]
    assert set(names) < set(result.curves)
    for i, step in enumerate(result.steps):
        want = evaluate(setting, model, result.checkpoints[step], data)
        for name in names:
            np.testing.assert_allclose(result.curves[name][:, i], want[name].numpy(), rtol=1e-12, atol=1e-15)
    assert result.curves["train_loss"][:, -1].max() < result.curves["train_loss"][:, 0].min()  # it trained


def test_same_setting_and_seed_give_identical_numbers():
    setting = validate_setting(MLP_SGD)
    a, b = train(setting, [3, 4]), train(setting, [3, 4])
    for m in a.curves:
        assert np.array_equal(a.curves[m], b.curves[m])
    for n in a.params:
        assert torch.equal(a.params[n], b.params[n])


@pytest.mark.slow
def test_transformer_runs_are_deterministic_on_two_threads(two_threads):
    """The token embedding's gradient must not depend on thread timing. Advanced indexing of the
    [K, vocab, d] table (`embed[rows, x]`) had a backward whose sums changed from run to run on 2
    threads with this many repeated tokens; the flat `F.embedding` lookup's backward does not."""
    setting = validate_setting({
        "task": {"name": "modular", "p": 97, "op": "/", "train_fraction": 0.5},
        "model": {"name": "transformer", "n_layers": 1, "d_model": 64, "n_heads": 4, "d_mlp": 64},
        "optim": {"name": "adamw", "lr": 1e-3, "betas": [0.9, 0.98], "weight_decay": 1.0},
        "schedule": {"steps": 3}, "eval": {"points": 2},
    })
    first = train(setting, [0, 1])
    for _ in range(2):
        again = train(setting, [0, 1])
        for n in first.params:
            assert torch.equal(first.params[n], again.params[n]), n


@pytest.mark.slow
def test_replica_threads_give_the_one_thread_numbers_bit_for_bit(two_threads):
    """A cache-bound MLP program (gromov2023's shapes) trains groups of its replicas side by side,
    one thread each and one core per op: its numbers are the whole batch's on one thread, exactly,
    masks, checkpoints and progress included, and the thread count is restored. An odd number of
    replicas does not split (the groups would be unequal)."""
    setting = resolve_setting("gromov2023", {"schedule.steps": 12, "checkpoints": "eval"})
    gen = torch.Generator().manual_seed(0)
    masks = {"w1": (torch.rand(4, 500, 97, generator=gen) > 0.5).double()}
    seen: list[tuple[int, int]] = []
    split = train(setting, [0, 1, 2, 3], masks=masks, progress=lambda done, total: seen.append((done, total)))
    assert split.strategy.endswith("2 replica threads")
    assert torch.get_num_threads() == 2
    assert seen[-1] == (12, 12)
    assert train(setting.with_overrides({"schedule.steps": 2}), [0, 1, 2]).strategy == "mlp-bmm"
    torch.set_num_threads(1)
    whole = train(setting, [0, 1, 2, 3], masks=masks, replica_threads=1)
    assert whole.strategy == "mlp-bmm"
    for name in whole.params:
        assert torch.equal(split.params[name], whole.params[name]), name
        for step in whole.checkpoints:
            assert torch.equal(split.checkpoints[step][name], whole.checkpoints[step][name])
    for metric in whole.curves:
        assert np.array_equal(split.curves[metric], whole.curves[metric]), metric
    assert torch.all(split.params["w1"][masks["w1"] == 0] == 0)


def test_replica_threads_stop_the_others_when_one_fails(two_threads):
    """One group failing (or Ctrl-C in the caller) sets the stop event, so the others end at their
    next progress report instead of training on; torch's thread count comes back either way."""
    import threading
    import time

    from phenolab.engine.replica_threads import Stopped, run_in_threads

    def fails(stop: threading.Event) -> None:
        raise ValueError("group 0")

    def waits(stop: threading.Event) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if stop.is_set():
                raise Stopped
            time.sleep(0.01)

    started = time.monotonic()
    with pytest.raises(ValueError, match="group 0"):
        run_in_threads([fails, waits])
    assert time.monotonic() - started < 10
    assert torch.get_num_threads() == 2


def test_different_seeds_differ():
    res = train(validate_setting(MLP_SGD), [0, 1])
    assert not torch.equal(res.params["w0"][0], res.params["w0"][1])


def test_float64_setting_trains_in_float64():
    res = train(validate_setting({**MLP_ADAMW_FULL, "dtype": "float64"}), [0])
    assert all(p.dtype == torch.float64 for p in res.params.values())


def test_masks_keep_pruned_weights_exactly_zero_through_adamw_and_decay():
    setting = validate_setting(MLP_ADAMW_FULL)
    probe = train(setting.with_overrides({"schedule.steps": 1}), [0, 1])
    gen = torch.Generator().manual_seed(0)
    masks = {n: (torch.rand(p.shape, generator=gen) > 0.7).float()
             for n, p in probe.params.items() if p.dim() == 3}
    res = train(setting, [0, 1], masks=masks)
    for name, mask in masks.items():
        assert torch.all(res.params[name][mask == 0] == 0)
        assert torch.any(res.params[name][mask == 1] != 0)


def test_init_params_override_rewinds():
    setting = validate_setting(MLP_ADAMW_FULL)
    first = train(setting.with_overrides({"schedule.steps": 1}), [0])
    again = train(setting, [0], init_params={n: p for n, p in first.params.items()})
    fresh = train(setting, [0])
    assert not torch.equal(again.params["w0"], fresh.params["w0"])


def test_lstsq_is_the_min_norm_solution():
    setting = validate_setting({
        "task": {"name": "linear_regression", "d": 30, "n_train": 20, "n_test": 50},
        "model": {"name": "linear"}, "optim": {"name": "lstsq"}, "loss": "mse", "dtype": "float64",
    })
    res = train(setting, [0])
    from phenolab.tasks import build_task

    data = build_task(setting.task, [0], "features", torch.float64)
    x, y = data.x_train[0].numpy(), data.y_train[0].numpy()
    expected = np.linalg.pinv(x) @ y
    np.testing.assert_allclose(res.params["readout"][0].numpy(), expected, atol=1e-10)
    assert res.curves["train_loss"][0, -1] < 1e-20  # interpolates (n < d)


def test_training_learns_mnist1d():
    setting = validate_setting({**MLP_SGD, "schedule": {"steps": 300, "batch_size": 50},
                                "task": {"name": "mnist1d", "num_samples": 600}})
    res = train(setting, [0, 1])
    acc = res.curves["test_acc"][:, -1]
    assert np.all(acc > 0.3), acc  # chance is 0.1
    assert np.all(res.curves["train_loss"][:, -1] < res.curves["train_loss"][:, 0])


def test_eval_steps_are_log_spaced_with_ends():
    steps = eval_steps(10_000, 30)
    assert steps[0] == 0 and steps[-1] == 10_000 and steps == sorted(set(steps))
    big = np.array([s for s in steps if s >= 20])
    assert (big[1:] / big[:-1]).max() <= 10_000 ** (1 / 29) * 1.05  # the documented resolution
    assert set(range(100, 1001, 100)) <= set(eval_steps(1000, 5, every=100))


def test_warmup_is_linear_then_flat():
    assert [warmup_factor(s, 4) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert warmup_factor(0, 0) == 1.0


def test_onehot_index_input_equals_dense_one_hot_features():
    from phenolab.models import build_model
    from phenolab.tasks import build_task

    setting = validate_setting(MLP_ADAMW_FULL)
    sparse = build_task(setting.task, [0, 1], "onehot")
    dense = build_task(setting.task, [0, 1], "features")
    assert sparse.x_train.dtype == torch.int64 and sparse.x_train.shape[-1] == 2
    model = build_model(setting.model, dense.input_dim, dense.out_dim)
    params = model.init([torch.Generator().manual_seed(s) for s in (0, 1)])
    torch.testing.assert_close(model.forward(params, sparse.x_train), model.forward(params, dense.x_train))
