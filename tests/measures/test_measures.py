"""Measures: hand-computed values on tiny parameters, one number per replica."""

from __future__ import annotations

import math

import pytest
import torch

from phenolab.measures import MEASURE_REGISTRY, MeasureContext, compute_measure
from phenolab.measures.weights import is_prime_large, prime_sieve
from phenolab.models import BatchedModel, Params, build_model
from phenolab.settings import MEASURES, LinearModel, MlpModel, RandomFeaturesModel, TransformerModel
from phenolab.tasks._base import TaskData


def gens(n: int) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(s) for s in range(n)]


def ctx(model: BatchedModel, init: Params, data: TaskData | None = None) -> MeasureContext:
    return MeasureContext(model=model, init_params=init, step=0, data=data)


def linear_with(readout: torch.Tensor) -> tuple[BatchedModel, Params]:
    model = build_model(LinearModel(name="linear"), readout.shape[1], readout.shape[2])
    return model, {"readout": readout}


def test_registry_fills_settings_measures() -> None:
    names = {"weight_norm", "distance_from_init", "mean_abs_weight", "parameter_count",
             "prime_parameter_count", "fourier_sparsity", "softmax_collapse"}
    assert names <= set(MEASURE_REGISTRY) and names <= MEASURES.keys()
    assert all(MEASURE_REGISTRY[n].description for n in names)
    with pytest.raises(KeyError, match="unknown measure"):
        compute_measure("no_such_measure", {}, None)  # type: ignore[arg-type]


def test_norms_distance_and_mean_abs_by_hand() -> None:
    model, params = linear_with(torch.tensor([[[3.0], [4.0]], [[1.0], [-1.0]]]))  # K=2, [K, 2, 1]
    zero = {"readout": torch.zeros_like(params["readout"])}
    c = ctx(model, zero)
    norm = compute_measure("weight_norm", params, c)
    assert norm.dtype == torch.float64 and norm.shape == (2,)
    torch.testing.assert_close(norm, torch.tensor([5.0, math.sqrt(2)], dtype=torch.float64))
    torch.testing.assert_close(compute_measure("distance_from_init", params, c), norm)
    torch.testing.assert_close(compute_measure("mean_abs_weight", params, c),
                               torch.tensor([3.5, 1.0], dtype=torch.float64))
    assert compute_measure("distance_from_init", params, ctx(model, params)).eq(0).all()


def test_frozen_features_are_not_counted() -> None:
    model = build_model(RandomFeaturesModel(name="random_features", num_features=6, feature="fourier"), 3, 2)
    params = model.init(gens(2))
    params["readout"] = torch.full_like(params["readout"], 0.5)
    c = ctx(model, model.init(gens(2)))
    torch.testing.assert_close(compute_measure("weight_norm", params, c),
                               torch.full((2,), math.sqrt(12 * 0.25), dtype=torch.float64))
    assert compute_measure("parameter_count", params, c).tolist() == [12.0, 12.0]


def test_distance_from_init_is_zero_at_init() -> None:
    model = build_model(MlpModel(name="mlp", width=8, depth=2), 5, 3)
    params = model.init(gens(3))
    c = ctx(model, {n: p.clone() for n, p in params.items()})
    assert compute_measure("distance_from_init", params, c).tolist() == [0.0, 0.0, 0.0]
    assert (compute_measure("weight_norm", params, c) > 0).all()


@pytest.mark.parametrize("h", [2, 16, 47, 300])
def test_parameter_count_of_greydanus_kobak_mlp(h: int) -> None:
    model = build_model(MlpModel(name="mlp", width=h, depth=2), 40, 10)
    params = model.init(gens(2))
    count = compute_measure("parameter_count", params, ctx(model, params))
    assert count.tolist() == [float(h * h + 52 * h + 10)] * 2


def test_prime_parameter_count_by_hand() -> None:
    values = torch.tensor([2.2, 3.0, 4.0, -5.4, 1.0, 0.2])
    model, params = linear_with(torch.stack([values, -values[[1, 1, 1, 4, 4, 4]]])[:, :, None])
    c = ctx(model, params)
    # rounded: 2 3 4 5 1 0 -> primes 2, 3, 5; replica 1: 3 3 3 1 1 1 -> three 3s
    assert compute_measure("prime_parameter_count", params, c).tolist() == [3.0, 3.0]
    # scale 10: 22 30 40 54 10 2 -> only 2; replica 1: 30 30 30 10 10 10 -> none
    assert compute_measure("prime_parameter_count", params, c, scale=10.0).tolist() == [1.0, 0.0]


def test_primality_sieve_and_large_values() -> None:
    assert prime_sieve(30).nonzero().flatten().tolist() == [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]

    def slow(n: int) -> bool:
        return n > 1 and all(n % d for d in range(2, math.isqrt(n) + 1))

    big = torch.arange(100_000_000, 100_000_200)
    assert is_prime_large(big).tolist() == [slow(int(n)) for n in big]
    model, params = linear_with(torch.tensor([[[16777259.0], [16777260.0], [13.0]]], dtype=torch.float64))
    assert compute_measure("prime_parameter_count", params, ctx(model, params)).tolist() == [
        float(slow(16777259) + slow(16777260) + 1)]


def modular_data(p: int, x_train: torch.Tensor) -> TaskData:
    k, n = x_train.shape[:2]
    y = torch.zeros(k, n, dtype=torch.long)
    return TaskData(x_train, y, x_train, y, "features", x_train.shape[-1], p, p)


def test_fourier_sparsity_of_single_frequency_is_maximal() -> None:
    p, d = 13, 8
    model = build_model(TransformerModel(name="transformer", d_model=d, n_heads=2, n_layers=1, d_mlp=8),
                        p + 2, p, 4)
    params = model.init(gens(2))
    a = torch.arange(p, dtype=torch.float32)[:, None]
    phases = torch.rand(1, d, generator=torch.Generator().manual_seed(0)) * 6.28
    params["embed"][0, :p] = torch.cos(2 * math.pi * 5 * a / p + phases)  # replica 0: one frequency
    c = ctx(model, params, modular_data(p, torch.zeros(2, 1, 3)))
    ipr = compute_measure("fourier_sparsity", params, c, stat="ipr")
    gini = compute_measure("fourier_sparsity", params, c, stat="gini")
    n_freq = p // 2
    torch.testing.assert_close(ipr[0].item(), 1.0)
    torch.testing.assert_close(gini[0].item(), (n_freq - 1) / n_freq)
    assert 1 / n_freq <= ipr[1] < 0.5 and 0 <= gini[1] < 0.6
    assert compute_measure("fourier_sparsity", params, c, which="embedding").tolist() == ipr.tolist()


def test_fourier_sparsity_of_mlp_first_layer() -> None:
    p, hidden = 11, 6
    cfg = MlpModel(name="mlp", width=hidden, depth=1, activation="quadratic", bias=False)
    model = build_model(cfg, 2 * p, p)
    params = model.init(gens(2))
    a = torch.arange(p, dtype=torch.float32)[:, None]
    params["w0"][0, :p] = torch.cos(2 * math.pi * 3 * a / p + torch.arange(hidden))
    params["w0"][0, p:] = torch.sin(2 * math.pi * 3 * a / p - torch.arange(hidden))
    c = ctx(model, params, modular_data(p, torch.zeros(2, 1, 2 * p)))
    ipr = compute_measure("fourier_sparsity", params, c)
    torch.testing.assert_close(ipr[0].item(), 1.0)
    assert ipr[1] < 0.5
    with pytest.raises(ValueError, match="2p"):
        wrong_p = modular_data(p + 2, torch.zeros(2, 1, 1))
        compute_measure("fourier_sparsity", params, ctx(model, params, wrong_p))


def test_softmax_collapse_on_huge_and_small_logits() -> None:
    n = 5
    x = torch.eye(n).expand(2, n, n)  # one-hot inputs: logits = rows of the readout
    readout = torch.stack([1000.0 * torch.eye(n), 0.01 * torch.eye(n)])
    model, params = linear_with(readout)
    c = ctx(model, params, modular_data(n, x))
    assert compute_measure("softmax_collapse", params, c).tolist() == [1.0, 0.0]
    assert compute_measure("softmax_collapse", params, c, chunk=2).tolist() == [1.0, 0.0]
    # a margin of 20 collapses in float32 (e^-20 < ulp(1)/2) but not in float64
    params64 = {"readout": torch.stack([20.0 * torch.eye(n), 20.0 * torch.eye(n)]).double()}
    c64 = ctx(model, params64, modular_data(n, x.double()))
    assert compute_measure("softmax_collapse", params64, c64).tolist() == [1.0, 1.0]
    assert compute_measure("softmax_collapse", params64, c64, dtype="model").tolist() == [0.0, 0.0]
    mixed = {"readout": torch.stack([1000.0 * torch.eye(n), 1000.0 * torch.eye(n)])}
    mixed["readout"][1, :2] = 0.0  # two rows give all-zero logits: uniform softmax
    assert compute_measure("softmax_collapse", mixed, c).tolist() == [1.0, 3 / 5]


def test_label_fit_splits_noise_changed_and_kept_labels_by_hand() -> None:
    n = 6
    x = torch.eye(n).expand(2, n, n)  # one-hot features: sample i's logits are readout row i
    clean = torch.tensor([[0, 1, 2, 0, 1, 2], [0, 1, 2, 0, 1, 2]])
    noisy = torch.tensor([[0, 1, 2, 1, 2, 2], [0, 1, 2, 0, 1, 2]])  # replica 0: samples 3, 4 changed
    predict = torch.tensor([[0, 1, 0, 1, 0, 2], [0, 0, 2, 0, 1, 2]])  # the class each replica predicts
    readout = torch.nn.functional.one_hot(predict, 3).float()  # [2, n, 3]
    model, params = linear_with(readout)
    data = TaskData(x, noisy, x, clean, "features", n, 3, 3, y_train_clean=clean)
    c = ctx(model, params, data)
    noisy_fit = compute_measure("label_fit", params, c)  # replica 0: sample 3 memorised, 4 not
    assert noisy_fit[0].item() == 0.5 and math.isnan(noisy_fit[1].item())  # replica 1 has no changed label
    kept = compute_measure("label_fit", params, c, subset="clean", chunk=4)  # chunks give the same shares
    assert kept.tolist() == [3 / 4, 5 / 6]
    without_noise = TaskData(x, clean, x, clean, "features", n, 3, 3)
    assert compute_measure("label_fit", params, ctx(model, params, without_noise), subset="clean").tolist() == [
        3 / 6, 5 / 6]
    with pytest.raises(ValueError, match="subset must be one of noisy, clean"):
        compute_measure("label_fit", params, c, subset="both")


def test_label_fit_recorded_from_the_evaluation_equals_its_own_forward() -> None:
    """With minibatches the recorder's train-set evaluation hands label_fit its per-sample fit;
    the recorded curve must be what the measure's own forward gives on the recorded parameters."""
    from phenolab.engine import train
    from phenolab.models import model_class
    from phenolab.settings import validate_setting
    from phenolab.tasks import build_task

    setting = validate_setting({
        "task": {"name": "mnist1d", "num_samples": 600, "label_noise": 0.3},
        "model": {"name": "mlp", "width": 32, "depth": 2},
        "optim": {"name": "adam", "lr": 1e-2}, "schedule": {"steps": 80, "batch_size": 50},
        "eval": {"points": 5}, "checkpoints": "eval",
        "measures": ["label_fit", {"name": "label_fit", "params": {"subset": "clean"}}]})
    result = train(setting, [0, 1])
    data = build_task(setting.task, [0, 1], model_class("mlp").input_kind, torch.float32)
    model = build_model(setting.model, data.input_dim, data.out_dim)
    for i, step in enumerate(result.steps):
        c = MeasureContext(model, result.checkpoints[0], step, data)  # no extra: the measure's own forward
        for key, kwargs in (("label_fit", {}), ("label_fit(subset=clean)", {"subset": "clean"})):
            own = compute_measure("label_fit", result.checkpoints[step], c, **kwargs).numpy()
            assert result.curves[key][:, i].tolist() == own.tolist(), (key, step)
    assert result.curves["label_fit"][:, -1].min() > result.curves["label_fit"][:, 0].max()  # it memorised some


def test_settings_refuse_a_measure_parameter_it_does_not_take() -> None:
    from phenolab.settings import SettingError, named_setting

    base = named_setting("epochwise")
    assert base.with_overrides({"measures": [{"name": "label_fit", "params": {"subset": "clean"}}]})
    with pytest.raises(SettingError, match="measure 'label_fit' has no parameter 'subst'; allowed: chunk, subset"):
        base.with_overrides({"measures": [{"name": "label_fit", "params": {"subst": "clean"}}]})
