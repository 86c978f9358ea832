"""Settings: canonical JSON, stable content ids, one-line errors, overrides, files, seeds."""

import json

import pytest

import phenolab  # noqa: F401  (registers measures so unknown ones are refused)
from phenolab.settings import (
    SettingError,
    apply_overrides,
    load_setting_file,
    named_setting,
    parse_assignments,
    parse_seeds,
    resolve_setting,
    validate_setting,
)

MINIMAL = {"task": {"name": "modular", "p": 97, "op": "/"}, "model": {"name": "mlp", "width": 64}}


def test_pinned_id_is_stable_across_machines_and_versions():
    # If this changes, every id in every catalog changes: add new fields with neutral defaults.
    assert validate_setting(MINIMAL).id == "0db62b7196f6b365"


def test_id_ignores_defaults_spelled_out_and_key_order():
    spelled = {"model": {"width": 64, "name": "mlp", "depth": 2, "activation": "relu"},
               "task": {"op": "/", "name": "modular", "p": 97, "train_fraction": 0.5}, "dtype": "float32"}
    assert validate_setting(spelled).id == validate_setting(MINIMAL).id
    assert validate_setting(apply_overrides(MINIMAL, {"model.width": 65})).id != validate_setting(MINIMAL).id


def test_canonical_json_round_trips():
    s = named_setting("mnist1d_mlp")
    again = validate_setting(json.loads(s.canonical_json()))
    assert again == s and again.id == s.id


@pytest.mark.parametrize("override, fragment", [
    ({"model.width": -3}, "model.width = -3"),
    ({"model.widht": 3}, "unknown field 'model.widht' (did you mean 'model.width'?); allowed: activation, bias, depth"),
    ({"task.name": "foo"}, "unknown task name 'foo'; allowed: digits, linear_regression, mnist1d, modular"),
    ({"optim.lr": "abc"}, "optim.lr = 'abc'"),
    ({"model.activation": "sigmoid"}, "'relu', 'tanh', 'gelu', 'quadratic' or 'identity'"),
    ({"optim.betas": [0.9, 1.5]}, "each beta must be in [0, 1)"),
    ({"optim.name": "sgd", "optim.nesterov": True}, "optim.nesterov needs optim.momentum > 0"),
    ({"measures": ["nope"]}, "unknown measure 'nope'; allowed:"),
    ({"foo": 1}, "unknown section 'foo'; allowed: checkpoints, dtype"),
    ({"task.name": "modular", "task.op": "%"}, "task.op = '%'"),
    ({"optim.name": "lstsq"}, "needs model.name 'linear' or 'random_features'"),
])
def test_bad_fields_get_one_line_naming_field_and_allowed(override, fragment):
    with pytest.raises(SettingError) as err:
        named_setting("mnist1d_mlp").with_overrides(override)
    msg = str(err.value)
    assert fragment in msg and "\n" not in msg


def test_overrides_parse_values_and_switch_components():
    s = resolve_setting("mnist1d_mlp", parse_assignments(
        ["optim.lr=1e-2", "model.bias=false", "schedule.steps=10", "task.name=digits"]))
    assert s.optim.lr == 0.01 and s.model.bias is False
    assert s.schedule.steps == 10 and s.schedule.epochs is None
    assert s.task.name == "digits"
    with pytest.raises(SettingError, match="expected FIELD=VALUE"):
        parse_assignments(["model.width"])


def test_setting_files_yaml_toml_json(tmp_path):
    (tmp_path / "a.yaml").write_text("task: {name: modular, p: 13}\nmodel: {name: mlp, width: 8}\n")
    (tmp_path / "a.toml").write_text('[task]\nname = "modular"\np = 13\n[model]\nname = "mlp"\nwidth = 8\n')
    (tmp_path / "a.json").write_text(json.dumps({"task": {"name": "modular", "p": 13},
                                                 "model": {"name": "mlp", "width": 8}}))
    ids = {validate_setting(load_setting_file(tmp_path / f"a.{ext}")).id for ext in ("yaml", "toml", "json")}
    assert len(ids) == 1
    (tmp_path / "bad.yaml").write_text("task: [unclosed\n")
    with pytest.raises(SettingError, match="does not parse"):
        load_setting_file(tmp_path / "bad.yaml")
    with pytest.raises(SettingError, match="does not exist"):
        load_setting_file(tmp_path / "missing.yaml")


def test_seeds():
    assert parse_seeds("0-3,7") == [0, 1, 2, 3, 7]
    assert parse_seeds(3) == [0, 1, 2]
    for bad in ("a-b", "5-2", "", "-1"):
        with pytest.raises(SettingError):
            parse_seeds(bad)
