"""Settings refuse what cannot train, before anything runs: cross-field rules, NaN and ±inf anywhere,
true/false for numbers, integers beyond 64 bits; errors name the real mistake (an unknown section, a
near-miss name, everything that is missing); seeds have one meaning."""

from __future__ import annotations

import numpy as np
import pytest

import phenolab  # noqa: F401  (registers measures)
from phenolab.settings import (
    SettingError,
    check_overrides,
    check_seeds,
    load_setting_file,
    named_setting,
    parse_seeds,
    parse_value,
    validate_setting,
)
from phenolab.tasks import build_task

GROK = {"task": {"name": "modular", "p": 13}, "model": {"name": "mlp", "width": 8}}


def refused(data_or_overrides, *, base: str | None = "gromov2023") -> str:
    with pytest.raises(SettingError) as err:
        if base is None:
            validate_setting(data_or_overrides)
        else:
            named_setting(base).with_overrides(data_or_overrides)
    message = str(err.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("override, fragment", [
    ({"task.p": 100, "task.op": "/"}, "100 is not prime: try 97 or 101"),
    ({"task.p": 2, "task.op": "/", "task.train_fraction": 0.1}, "leaves 0 to train and 2 to test"),
    ({"task.train_fraction": 0.00001}, "leaves 0 to train"),
    ({"optim.grokfast_lambda": 2.0}, "Grokfast needs both"),
    ({"optim.ridge": 0.5}, "needs optim.name 'lstsq'"),
    ({"model.name": "transformer", "model.n_heads": 5}, "divisible by model.n_heads 5"),
])
def test_cross_field_rules(override, fragment):
    assert fragment in refused(override)


def test_the_operation_that_needs_a_prime_builds_for_every_prime():
    for p in (2, 3, 13, 97):
        setting = named_setting("gromov2023").with_overrides({"task.p": p, "task.op": "/"})
        assert build_task(setting.task, [0], "onehot").n_train >= 1


@pytest.mark.parametrize("field, value", [
    ("optim.lr", float("nan")), ("optim.weight_decay", float("inf")), ("optim.weight_decay", "-inf"),
    ("optim.betas", [0.9, float("inf")]), ("task.train_fraction", "NaN"),
    ("measures", [{"name": "prime_parameter_count", "params": {"scale": float("nan")}}]),
])
def test_nan_and_inf_are_refused_everywhere_and_the_message_says_so(field, value):
    assert "must be a finite number (NaN and ±inf are refused)" in refused({field: value})


def test_mnist1d_fields_that_would_break_the_generator_are_refused():
    base = named_setting("mnist1d_mlp")
    for over, fragment in [({"task.padding": [60, 36]}, "0 <= low <= high"), ({"task.max_translation": 0}, "greater"),
                           ({"task.max_translation": 500}, "longer than the padded template"),
                           ({"task.data_seed": 2**40}, "less than or equal"),
                           ({"task.train_size": 10**6}, "more than the"), ({"task.train_split": 0.0001}, "at least 1")]:
        with pytest.raises(SettingError, match=fragment.replace("(", r"\(")):
            base.with_overrides(over)


@pytest.mark.parametrize("value", [True, False, [True, 0.9]])
def test_true_and_false_are_not_numbers(value):
    field = "optim.betas" if isinstance(value, list) else "model.width"
    assert "expected a number, not" in refused({field: value})


def test_integers_beyond_64_bits_are_refused():
    assert "too large (at most 2**63 - 1)" in refused({"schedule.batch_size": 2**70})
    assert "too large" in refused({"optim.weight_decay": 10**400})


def test_an_unknown_section_is_named_with_the_allowed_ones_not_reported_as_missing():
    message = refused({"task": {"name": "modular", "p": 13}, "modle": {"name": "mlp"}}, base=None)
    assert message.startswith("invalid setting: unknown section 'modle' (did you mean 'model'?); allowed: checkpoints")
    assert message.endswith("; also missing: model")


def test_what_is_missing_is_listed_not_counted():
    assert refused({"dtype": "float64"}, base=None) == "invalid setting: missing task, model"
    message = refused({"task": {"name": "modular", "p": 1}, "optim": {"lr": -1}}, base=None)
    assert "and 1 more" not in message and "also missing: model" in message and "also wrong:" in message


@pytest.mark.parametrize("override, hint", [
    ({"model.widht": 8}, "did you mean 'model.width'?"),
    ({"optim.name": "adma"}, "did you mean 'adam'?"),
    ({"measures": ["wieght_norm"]}, "did you mean 'weight_norm'?"),
    ({"task.name": "modulr"}, "did you mean 'modular'?"),
    ({"optim.grokfast_lamda": 1}, "did you mean 'optim.grokfast_lambda'?"),
])
def test_near_misses_get_a_did_you_mean(override, hint):
    assert hint in refused(override)


def test_settings_and_files_that_are_not_mappings(tmp_path):
    assert "expected a mapping" in refused([1, 2], base=None)
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(SettingError, match="cannot be read"):
        load_setting_file(tmp_path / "bin.yaml")
    (tmp_path / "deep.json").write_text("[" * 100_000)
    with pytest.raises(SettingError, match="does not parse"):
        load_setting_file(tmp_path / "deep.json")


def test_set_values_that_json_cannot_read_are_text():
    assert parse_value("9" * 5000) == "9" * 5000  # past Python's int-from-text limit: text, refused by the field
    assert parse_value("[" * 100_000) == "[" * 100_000


def test_seeds_have_one_meaning():
    assert parse_seeds("3") == [0, 1, 2] == parse_seeds(3)
    assert parse_seeds("3-3") == [3] and parse_seeds("0,3") == [0, 3]
    for bad in ("0", "0-99999999999", "1-99999999999999999999", "x", "-1"):
        with pytest.raises(SettingError):
            parse_seeds(bad)


def test_the_apis_seeds():
    assert check_seeds(3) == [0, 1, 2] and check_seeds([3, 1]) == [1, 3] and check_seeds(np.arange(2)) == [0, 1]
    assert check_seeds([3, 1], keep_order=True) == [3, 1] and check_seeds(np.int64(2)) == [0, 1]
    for bad, fragment in [("0-3", "give integers"), ([-1], "seed -1"), ([1.0], "seed 1.0"), ([True], "seed True"),
                          (True, "give N"), (0, "give 1 to"), ([], "no seeds"), ([2, 2], "given twice"),
                          (None, "give N"), ([2**63], "seed 9223372036854775808")]:
        with pytest.raises(SettingError, match=fragment):
            check_seeds(bad)


def test_overrides_must_be_a_mapping_of_field_names():
    assert check_overrides(None) == {} and check_overrides({"model.width": 8}) == {"model.width": 8}
    for bad in (["model.width=8"], "model.width=8", {"model..width": 8}, {3: 8}, {"": 1}):
        with pytest.raises(SettingError):
            check_overrides(bad)
