"""Settings made by mutating valid ones (unknown and misspelt fields, wrong types, out-of-range values,
NaN and ±inf, huge values, empty and unicode strings, missing sections): each is a Setting or one
`SettingError` line, never another exception; a Setting that validates serialises, round-trips, has a
memory estimate, and (where that is cheap) builds its data and initializes its model."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import given, note, seed
from hypothesis import strategies as st

import phenolab  # noqa: F401  (registers tasks, models, measures)
from phenolab.execute.memory import estimate, parameter_count, task_shape
from phenolab.models import build_model, model_class
from phenolab.settings import NAMED_SETTINGS, Setting, SettingError, validate_setting
from phenolab.tasks import build_task
from tests.fuzz.conftest import SEED, fuzz_settings

BASES = sorted(NAMED_SETTINGS)
SECTIONS = {
    "task": ["name", "p", "op", "train_fraction", "label_noise", "num_samples", "train_split", "data_seed",
             "padding", "max_translation", "template_len", "final_seq_length", "train_size", "test_fraction",
             "split_seed", "d", "n_train", "n_test", "noise_std", "slow_dims", "slow_scale", "slow_signal"],
    "model": ["name", "width", "depth", "widths", "activation", "bias", "init_scale", "n_layers", "d_model",
              "n_heads", "d_mlp", "layernorm", "num_features", "feature"],
    "optim": ["name", "lr", "momentum", "nesterov", "betas", "eps", "weight_decay", "warmup_steps", "ridge",
              "grokfast_alpha", "grokfast_lambda", "orthogonal_grad"],
    "schedule": ["steps", "epochs", "batch_size"],
    "eval": ["points", "every", "batch_size"],
    "prune": ["round", "control", "rate_hidden", "rate_output", "scope", "rewind_step", "data_order"],
}
TOP = ["task", "model", "optim", "schedule", "eval", "loss", "measures", "dtype", "checkpoints", "prune"]
NAMES = ["modular", "mnist1d", "digits", "linear_regression", "mlp", "transformer", "random_features", "linear",
         "sgd", "adam", "adamw", "lstsq", "ce", "mse", "stablemax_ce", "float32", "float64", "none", "final", "eval",
         "relu", "tanh", "gelu", "quadratic", "identity", "fourier", "+", "-", "*", "/", "x2+xy+y2", "x3+xy",
         "weight_norm", "distance_from_init", "prime_parameter_count", "ticket", "reinit", "shuffle", "dense"]


def misspell(draw: st.DrawFn, name: str) -> str:
    """A near miss: a letter dropped, doubled, swapped or replaced; or a unicode look-alike."""
    if not name:
        return "x"
    i = draw(st.integers(0, len(name) - 1))
    kind = draw(st.sampled_from(["drop", "double", "swap", "replace", "unicode", "case"]))
    if kind == "drop":
        return name[:i] + name[i + 1:] or "x"
    if kind == "double":
        return name[:i] + name[i] + name[i:]
    if kind == "swap" and i + 1 < len(name):
        return name[:i] + name[i + 1] + name[i] + name[i + 2:]
    if kind == "unicode":
        return name[:i] + draw(st.sampled_from(["é", "ı", "ｍ", "\u200b", "ß"])) + name[i + 1:]
    if kind == "case":
        return name.upper()
    return name[:i] + draw(st.sampled_from("abcdefghijklmnopqrstuvwxyz_0")) + name[i + 1:]


# values by kind: wrong types, out of range, NaN and ±inf, huge, empty and unicode strings, valid small ones
SMALL = [0, 1, 2, 3, 5, 7, 13, -1, -7, 0.0, 0.5, 0.9, 0.99, 1.0, 1.5, -0.5, 1e-9, 97, 100]
HUGE = [10**12, 2**63 - 1, 2**63, 10**30, -(10**30), 1e308, -1e308, 1e-320, 10**400]
SPECIAL = [float("nan"), float("inf"), float("-inf"), "nan", "inf", "-inf", "NaN", "Infinity"]
STRINGS = ["", " ", "é", "🙂", "\u200b", "abc", "1e3", "12", "true", "null", "x" * 300, "名前"]
SHAPES = [None, True, False, [], [1], [1, 2], [300, 100], [0.9, 0.999], [[1]], {}, {"name": "mlp"}, {"a": 1},
          [float("nan"), 1.0], [True, 0.5]]


def a_value(draw: st.DrawFn) -> Any:
    kind = draw(st.sampled_from(["small", "huge", "special", "string", "shape", "name", "float"]))
    if kind == "small":
        return draw(st.sampled_from(SMALL))
    if kind == "huge":
        return draw(st.sampled_from(HUGE))
    if kind == "special":
        return draw(st.sampled_from(SPECIAL))
    if kind == "string":
        return draw(st.one_of(st.sampled_from(STRINGS), st.text(max_size=8)))
    if kind == "name":
        return draw(st.sampled_from(NAMES))
    if kind == "float":
        return draw(st.floats(allow_nan=True, allow_infinity=True))
    return copy.deepcopy(draw(st.sampled_from(SHAPES)))


@st.composite
def mutated_settings(draw: st.DrawFn) -> tuple[str, dict[str, Any], list[str]]:
    base = draw(st.sampled_from(BASES))
    data = copy.deepcopy(NAMED_SETTINGS[base].data)
    done = []
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["set", "set", "set", "misspell", "drop", "add", "section", "name"]))
        section = draw(st.sampled_from(TOP))
        if op == "drop":
            if draw(st.booleans()) or not isinstance(data.get(section), dict):
                data.pop(section, None)
                done.append(f"drop {section}")
            else:
                field = draw(st.sampled_from(sorted(data[section]) or ["name"]))
                data[section].pop(field, None)
                done.append(f"drop {section}.{field}")
        elif op == "add":
            key = draw(st.one_of(st.sampled_from(["modle", "optimizer", "Task", "seed", "steps", "é"]),
                                 st.text(min_size=1, max_size=6)))
            data[key] = a_value(draw)
            done.append(f"add {key!r}")
        elif op == "section":
            data[section] = a_value(draw)
            done.append(f"{section} = {data[section]!r}")
        elif op == "name" and section in ("task", "model"):
            data[section] = {"name": draw(st.sampled_from(NAMES))}
            done.append(f"{section} = {data[section]!r}")
        else:
            fields = SECTIONS.get(section)
            if fields is None:
                data[section] = a_value(draw)
                done.append(f"{section} = {data[section]!r}")
                continue
            field = draw(st.sampled_from(fields))
            if op == "misspell":
                field = misspell(draw, field)
            node = data.get(section)
            if not isinstance(node, dict):
                node = data[section] = {}
            node[field] = a_value(draw)
            done.append(f"{section}.{field} = {node[field]!r}")
    return base, data, done


@seed(SEED)
@fuzz_settings(700)
@given(case=mutated_settings())
def test_a_mutated_setting_is_a_setting_or_one_line(case):
    base, data, done = case
    note(f"{base}: {'; '.join(done)}")
    try:
        setting = validate_setting(data)
    except SettingError as exc:
        message = str(exc)
        assert message and "\n" not in message and "(and " not in message, message
        return
    check_valid(setting)


def check_valid(setting: Setting) -> None:
    """What a validated setting promises: strict JSON, a stable id, an estimate, and data and a model
    that build (checked where that is cheap: nothing big is allocated here)."""
    text = setting.canonical_json()
    again = validate_setting(json.loads(text))
    assert again == setting and again.id == setting.id
    est = estimate(setting)
    shape = task_shape(setting)
    if est is None or shape is None:
        return
    assert est.total(1) > 0
    t = setting.task
    cheap_data = (t.name == "modular" and t.pairs <= 20_000) or t.name == "digits" or (
        t.name == "linear_regression" and (t.n_train + t.n_test) * t.d <= 200_000)
    if not cheap_data:
        return
    kind = model_class(setting.model.name).input_kind
    data = build_task(t, [0], kind)
    assert data.n_train == shape.n_train and data.input_dim == shape.input_dim, (data.n_train, shape)
    count = parameter_count(setting, shape)
    if count is not None and count <= 300_000:
        import torch

        model = build_model(setting.model, data.input_dim, data.out_dim, data.seq_len)
        params = model.init([torch.Generator().manual_seed(0)])
        assert sum(p[0].numel() for p in params.values()) == count
