"""The activation table (`models.activations`): every fact it states is checked against torch, and
an unknown activation is an error wherever one is looked up."""

from __future__ import annotations

import typing

import pytest
import torch
from torch import nn

from phenolab._rng import generators
from phenolab.engine.packing import program_key
from phenolab.engine.step import MlpGrads
from phenolab.hypotheses.interventions import rescale
from phenolab.models import build_model
from phenolab.models.activations import ACTIVATIONS, activation
from phenolab.settings import MlpModel, SettingError, validate_setting

REFERENCE = {  # independent forwards: torch's modules, or the formula
    "relu": nn.ReLU(),
    "tanh": nn.Tanh(),
    "gelu": nn.GELU(),  # exact (erf) form
    "quadratic": lambda z: z * z,
    "identity": nn.Identity(),
}


def sample(dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.randn(3, 7, 11, generator=torch.Generator().manual_seed(0), dtype=dtype) * 3


def test_table_is_the_settings_literal() -> None:
    allowed = typing.get_args(MlpModel.model_fields["activation"].annotation)
    assert list(allowed) == list(ACTIVATIONS) == list(REFERENCE)
    assert all(a.name == name for name, a in ACTIVATIONS.items())


@pytest.mark.parametrize("name", list(ACTIVATIONS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_forward_equals_reference(name: str, dtype: torch.dtype) -> None:
    act, z = activation(name), sample(dtype)
    assert torch.equal(act.fn(z), REFERENCE[name](z))
    assert torch.equal(act.forward_(z.clone()), act.fn(z))


def test_only_relu_runs_in_place() -> None:
    z = sample()
    out = activation("relu").forward_(z)
    assert out.data_ptr() == z.data_ptr()
    assert [a.name for a in ACTIVATIONS.values() if a.fn_ is not None] == ["relu"]


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_backward_times_scale_is_autograds_derivative(name: str) -> None:
    act = activation(name)
    a = sample().requires_grad_(True)
    grad = torch.randn(a.shape, generator=torch.Generator().manual_seed(1), dtype=a.dtype)
    h = act.fn(a)
    (expected,) = torch.autograd.grad(h, a, grad_outputs=grad)
    got = act.backward(grad.clone(), a.detach(), h.detach()) * act.backward_scale
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_zero_at_zero_is_true(name: str) -> None:
    act = activation(name)
    assert bool(act.fn(torch.zeros(5, dtype=torch.float64)).eq(0).all()) == act.zero_at_zero


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_degree_of_homogeneity_is_true(name: str) -> None:
    act, z, c = activation(name), sample(), 2.5
    for d in (1, 2, 3):
        homogeneous = torch.allclose(act.fn(c * z), c**d * act.fn(z), rtol=1e-12, atol=1e-12)
        assert homogeneous == (act.degree == d), (name, d)


def test_unknown_activation_is_an_error_naming_the_allowed_ones() -> None:
    allowed = ", ".join(ACTIVATIONS)
    with pytest.raises(SettingError, match=f"unknown activation 'sigmoid'; allowed: {allowed}"):
        activation("sigmoid")
    assert issubclass(SettingError, ValueError)


def test_unknown_activation_is_an_error_everywhere_it_is_read() -> None:
    """Model, gradient program, packing and interventions: never a silent identity."""
    cfg = MlpModel.model_construct(name="mlp", width=4, depth=1, activation="sigmoid")
    model = build_model(cfg, 3, 2)
    params = model.init(generators([0], "init"))
    for use in (lambda: model.forward(params, torch.zeros(1, 2, 3)), lambda: MlpGrads(model, "ce", 2),
                lambda: rescale(model, params, 0, 2.0)):
        with pytest.raises(SettingError, match="unknown activation 'sigmoid'"):
            use()
    setting = validate_setting({"task": {"name": "mnist1d", "num_samples": 200},
                                "model": {"name": "mlp", "width": 4, "depth": 1}})
    bad = setting.model_copy(update={"model": cfg})
    with pytest.raises(SettingError, match="unknown activation 'sigmoid'"):
        program_key(bad)


def test_non_homogeneous_activation_is_refused_naming_the_homogeneous_ones() -> None:
    model = build_model(MlpModel(name="mlp", width=4, depth=1, activation="tanh"), 3, 2)
    with pytest.raises(SettingError, match="'tanh' is not positively homogeneous; allowed: relu, quadratic, identity$"):
        rescale(model, model.init(generators([0], "init")), 0, 2.0)
