"""Configuration models of the built-in tasks and models, and the registry plug-ins extend.

A component config is plain data: its `name` picks the implementation (registered by
`phenolab.tasks` / `phenolab.models`), the other fields are its hyperparameters. Each field has
a default that reproduces the source it is named after, so adding a field later with a neutral
default leaves every existing setting id unchanged (only non-default values enter the id).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MODULAR_OPS = ("+", "-", "*", "/", "x2+xy+y2", "x3+xy")


class Component(BaseModel):
    """Base of every task/model config: strict fields, immutable, `name` required."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str


class ModularTask(Component):
    """`a op b mod p` over all pairs, split at random per seed (Power et al. 2022).

    `/` is multiplication by the modular inverse of b (b = 0 excluded); `x2+xy+y2` and
    `x3+xy` (non-commutative) are the polynomial ops of Power et al.'s appendix.
    """

    name: Literal["modular"]
    p: int = Field(97, ge=2, le=1000, description="prime modulus")
    op: Literal["+", "-", "*", "/", "x2+xy+y2", "x3+xy"] = Field("+", description="operation")
    train_fraction: float = Field(0.5, gt=0, lt=1, description="share of all pairs used for training")
    label_noise: float = Field(0.0, ge=0, le=1, description="share of training labels redrawn uniformly")


class Mnist1dTask(Component):
    """MNIST-1D made procedurally by `mnist1d.data.make_dataset` (Greydanus & Kobak 2024).

    Field defaults are the package's documented `get_dataset_args()`; the data set itself is
    fixed by `data_seed`, while label noise and training subsets are drawn per run seed.
    """

    name: Literal["mnist1d"]
    num_samples: int = Field(5000, ge=20, le=200_000)
    train_split: float = Field(0.8, gt=0, lt=1)
    data_seed: int = Field(42, ge=0)
    template_len: int = 12
    padding: tuple[int, int] = (36, 60)
    scale_coeff: float = 0.4
    max_translation: int = 48
    corr_noise_scale: float = 0.25
    iid_noise_scale: float = 2e-2
    shear_scale: float = 0.75
    shuffle_seq: bool = False
    final_seq_length: int = Field(40, ge=1)
    train_size: int | None = Field(None, ge=1, description="per-run random subset of the training set")
    label_noise: float = Field(0.0, ge=0, le=1, description="share of training labels redrawn uniformly")


class DigitsTask(Component):
    """scikit-learn's bundled 8x8 digits (1797 images, no download), pixels scaled to [0, 1]."""

    name: Literal["digits"]
    test_fraction: float = Field(0.3, gt=0, lt=1)
    split_seed: int = Field(0, ge=0, description="fixed train/test split, shared by all seeds")
    train_size: int | None = Field(None, ge=1, description="per-run random subset of the training set")
    label_noise: float = Field(0.0, ge=0, le=1)


class LinearRegressionTask(Component):
    """y = x·β + ε with x ~ N(0, I_d), ‖β‖ = 1 (Nakkiran, Venkat, Kakade & Ma 2021)."""

    name: Literal["linear_regression"]
    d: int = Field(100, ge=1, le=100_000, description="input dimension")
    n_train: int = Field(100, ge=1, le=1_000_000)
    n_test: int = Field(1000, ge=1, le=1_000_000)
    noise_std: float = Field(0.5, ge=0)
    slow_dims: int = Field(0, ge=0, le=100_000, description="the last slow_dims inputs are scaled by slow_scale "
                           "(two feature scales, Pezeshki et al. 2022); 0 = isotropic")
    slow_scale: float = Field(1.0, gt=0, le=1.0, description="scale of the slow inputs")
    slow_signal: float = Field(0.0, ge=0, le=1.0, description="share of the signal variance x·β carried "
                               "by the slow inputs")

    @model_validator(mode="after")
    def _slow_fits(self) -> LinearRegressionTask:
        if self.slow_dims >= self.d and self.slow_dims > 0:
            raise ValueError(f"slow_dims = {self.slow_dims}: must be below d = {self.d}")
        return self


class MlpModel(Component):
    """Fully connected net; `depth` hidden layers of `width` units; PyTorch's default init × `init_scale`."""

    name: Literal["mlp"]
    width: int = Field(128, ge=1, le=65_536)
    depth: int = Field(2, ge=0, le=32, description="number of hidden layers")
    widths: tuple[int, ...] | None = Field(
        None, description="hidden widths layer by layer (e.g. [300, 100] for LeNet-300-100); overrides width/depth"
    )
    activation: Literal["relu", "tanh", "gelu", "quadratic", "identity"] = "relu"
    bias: bool = True
    init_scale: float = Field(1.0, gt=0, description="multiplier on the default init (Omnigrok's α)")


    @field_validator("widths")
    @classmethod
    def _positive(cls, v: tuple[int, ...] | None) -> tuple[int, ...] | None:
        if v is not None and (not v or any(w < 1 for w in v)):
            raise ValueError("widths must be a non-empty list of positive integers")
        return v

    @property
    def hidden(self) -> tuple[int, ...]:
        """Hidden widths, input side first."""
        return self.widths if self.widths is not None else (self.width,) * self.depth


class TransformerModel(Component):
    """Small causal decoder over the tokens `a op b =` (Power et al. 2022; Nanda et al. 2023)."""

    name: Literal["transformer"]
    n_layers: int = Field(2, ge=1, le=12)
    d_model: int = Field(128, ge=4, le=4096)
    n_heads: int = Field(4, ge=1, le=64)
    d_mlp: int = Field(512, ge=1, le=16384)
    layernorm: bool = True
    init_scale: float = Field(1.0, gt=0)


class RandomFeaturesModel(Component):
    """Fixed random features φ(x) = act(x·W/√d_in) with a trained linear readout (Belkin et al. 2019)."""

    name: Literal["random_features"]
    num_features: int = Field(100, ge=1, le=1_000_000)
    feature: Literal["relu", "fourier"] = "relu"


class LinearModel(Component):
    """Linear readout on the raw inputs (no bias): the exact double-descent model."""

    name: Literal["linear"]


TASKS: dict[str, type[Component]] = {
    "modular": ModularTask,
    "mnist1d": Mnist1dTask,
    "digits": DigitsTask,
    "linear_regression": LinearRegressionTask,
}
MODELS: dict[str, type[Component]] = {
    "mlp": MlpModel,
    "transformer": TransformerModel,
    "random_features": RandomFeaturesModel,
    "linear": LinearModel,
}
# Registered measures: name -> the parameters it takes. `phenolab.measures` fills it so settings
# can reject an unknown measure or parameter before anything trains.
MEASURES: dict[str, frozenset[str]] = {}


def register_task_config(cls: type[Component]) -> type[Component]:
    """Make a task config known to settings validation (used by plug-ins)."""
    TASKS[_literal_name(cls)] = cls
    return cls


def register_model_config(cls: type[Component]) -> type[Component]:
    """Make a model config known to settings validation (used by plug-ins)."""
    MODELS[_literal_name(cls)] = cls
    return cls


def _literal_name(cls: type[Component]) -> str:
    default = cls.model_fields["name"].annotation
    args = getattr(default, "__args__", ())
    if len(args) != 1 or not isinstance(args[0], str):
        raise TypeError(f"{cls.__name__}.name must be annotated as Literal['<name>']")
    return args[0]
