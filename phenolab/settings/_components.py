"""Configuration models of the built-in tasks and models, and the registry plug-ins extend.

A component config is plain data: its `name` picks the implementation (registered by
`phenolab.tasks` / `phenolab.models`), the other fields are its hyperparameters. Each field has
a default that reproduces the source it is named after, so adding a field later with a neutral
default leaves every existing setting id unchanged (only non-default values enter the id).
"""

from __future__ import annotations

import types
import typing
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

MODULAR_OPS = ("+", "-", "*", "/", "x2+xy+y2", "x3+xy")
INT64_MAX = 2**63 - 1  # what SQLite, torch and NumPy can hold: a larger integer is refused when read
SEED_MAX = 2**32 - 1  # NumPy's seeds (mnist1d's data_seed, digits' split_seed)
# every config model: unknown fields refused, immutable, NaN and ±inf refused in every float
STRICT = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _numeric(annotation: Any) -> bool:
    """Whether a field holds numbers: int, float, an optional one, or a tuple of them."""
    if annotation in (int, float):
        return True
    args = [a for a in typing.get_args(annotation) if a is not type(None) and a is not Ellipsis]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, tuple):
        return bool(args) and all(_numeric(a) for a in args)
    return False


def check_numbers(cls: type[BaseModel], value: Any, info: ValidationInfo) -> Any:
    """Before pydantic's own checks, for every field: a number field refuses true/false (which
    pydantic would read as 1/0) and integers beyond 64 bits (which nothing downstream can hold)."""
    field = cls.model_fields.get(info.field_name or "")
    if field is None or not _numeric(field.annotation):
        return value
    items = value if isinstance(value, (list, tuple)) else [value]
    for v in items:
        if isinstance(v, bool):
            raise ValueError(f"expected a number, not {str(v).lower()}")
        if isinstance(v, int) and abs(v) > INT64_MAX:
            raise ValueError("too large (at most 2**63 - 1)")
    return value


class Component(BaseModel):
    """Base of every task/model config: strict fields, immutable, `name` required."""

    model_config = STRICT
    name: str

    _numbers = field_validator("*", mode="before")(classmethod(check_numbers))


def is_prime(n: int) -> bool:
    """Trial division: p ≤ 1000 here, so this is instant."""
    if n < 2:
        return False
    return all(n % d for d in range(2, int(n**0.5) + 1))


def _nearest_primes(n: int) -> str:
    below = next((m for m in range(n - 1, 1, -1) if is_prime(m)), None)
    above = next(m for m in range(n + 1, 2 * n + 3) if is_prime(m))
    return f"{below} or {above}" if below else str(above)


def split_sizes(n: int, train_fraction: float) -> tuple[int, int]:
    """(train, test) sizes when round(train_fraction·n) of n examples train (the tasks' rule)."""
    n_train = round(train_fraction * n)
    return n_train, n - n_train


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

    @property
    def pairs(self) -> int:
        """How many operand pairs there are (b = 0 is left out for `/`)."""
        return self.p * (self.p - 1) if self.op == "/" else self.p * self.p

    @model_validator(mode="after")
    def _consistent(self) -> ModularTask:
        if self.op == "/" and not is_prime(self.p):
            raise ValueError(f"task.op '/' needs a prime task.p (every b != 0 must have an inverse mod p); "
                             f"{self.p} is not prime: try {_nearest_primes(self.p)}")
        n_train, n_test = split_sizes(self.pairs, self.train_fraction)
        if n_train < 1 or n_test < 1:
            raise ValueError(f"task.train_fraction {self.train_fraction} of the {self.pairs} pairs of p = {self.p} "
                             f"leaves {n_train} to train and {n_test} to test; each needs at least 1")
        return self


class Mnist1dTask(Component):
    """MNIST-1D made procedurally by `mnist1d.data.make_dataset` (Greydanus & Kobak 2024).

    Field defaults are the package's documented `get_dataset_args()`; the data set itself is
    fixed by `data_seed`, while label noise and training subsets are drawn per run seed.
    """

    name: Literal["mnist1d"]
    num_samples: int = Field(5000, ge=20, le=200_000)
    train_split: float = Field(0.8, gt=0, lt=1)
    data_seed: int = Field(42, ge=0, le=SEED_MAX)
    template_len: int = Field(12, ge=1, le=10_000)
    padding: tuple[int, int] = (36, 60)
    scale_coeff: float = Field(0.4, ge=0)
    max_translation: int = Field(48, ge=1)
    corr_noise_scale: float = Field(0.25, ge=0)
    iid_noise_scale: float = Field(2e-2, ge=0)
    shear_scale: float = Field(0.75, ge=0)
    shuffle_seq: bool = False
    final_seq_length: int = Field(40, ge=1, le=100_000)
    train_size: int | None = Field(None, ge=1, description="per-run random subset of the training set")
    label_noise: float = Field(0.0, ge=0, le=1, description="share of training labels redrawn uniformly")

    @property
    def n_train(self) -> int:
        """Training examples of the data set (`make_dataset`: num_samples // 10 per class, the first
        int(train_split · n) of them train)."""
        return int(self.num_samples // 10 * 10 * self.train_split)

    @model_validator(mode="after")
    def _consistent(self) -> Mnist1dTask:
        low, high = self.padding
        if not 0 <= low <= high <= 10_000:
            raise ValueError(f"task.padding {list(self.padding)}: give [low, high] with 0 <= low <= high <= 10000")
        if self.max_translation > self.template_len + high:
            raise ValueError(f"task.max_translation {self.max_translation} is longer than the padded template "
                             f"(task.template_len + task.padding[1] = {self.template_len + high})")
        n = self.num_samples // 10 * 10
        if not 1 <= self.n_train < n:
            raise ValueError(f"task.train_split {self.train_split} of {n} samples leaves {self.n_train} to train "
                             f"and {n - self.n_train} to test; each needs at least 1")
        _check_train_size(self.train_size, self.n_train)
        return self


def _check_train_size(train_size: int | None, available: int) -> None:
    if train_size is not None and train_size > available:
        raise ValueError(f"task.train_size {train_size} is more than the {available} training examples there are")


class DigitsTask(Component):
    """scikit-learn's bundled 8x8 digits (1797 images, no download), pixels scaled to [0, 1]."""

    name: Literal["digits"]
    test_fraction: float = Field(0.3, gt=0, lt=1)
    split_seed: int = Field(0, ge=0, le=INT64_MAX, description="fixed train/test split, shared by all seeds")
    train_size: int | None = Field(None, ge=1, description="per-run random subset of the training set")
    label_noise: float = Field(0.0, ge=0, le=1)

    IMAGES: typing.ClassVar[int] = 1797  # scikit-learn's bundled digits

    @model_validator(mode="after")
    def _consistent(self) -> DigitsTask:
        n_test = round(self.test_fraction * self.IMAGES)
        if not 0 < n_test < self.IMAGES:
            raise ValueError(f"task.test_fraction {self.test_fraction} of {self.IMAGES} images leaves an empty "
                             "train or test set")
        _check_train_size(self.train_size, self.IMAGES - n_test)
        return self


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
        if v is not None and (not v or len(v) > 32 or any(not 1 <= w <= 65_536 for w in v)):
            raise ValueError("widths must be a list of 1 to 32 integers between 1 and 65536")
        return v

    @model_validator(mode="after")
    def _widths_or_width(self) -> MlpModel:
        # widths replaces width and depth: a width or depth given beside it would do nothing
        defaults = {f: type(self).model_fields[f].default for f in ("width", "depth")}
        if self.widths is not None and any(getattr(self, f) != d for f, d in defaults.items()):
            raise ValueError(f"model.widths {list(self.widths)} replaces model.width and model.depth; give "
                             "widths, or width and depth, not both")
        return self

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

    @model_validator(mode="after")
    def _heads_divide(self) -> TransformerModel:
        if self.d_model % self.n_heads:
            raise ValueError(f"model.d_model {self.d_model} must be divisible by model.n_heads {self.n_heads} "
                             "(each head gets d_model / n_heads dimensions)")
        return self


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
# Measures of a whole ensemble (recorded on each of its members): a setting recording one trains
# its ensembles' members side by side (`Setting.trains_whole_ensembles`).
ENSEMBLE_MEASURES: set[str] = set()


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
