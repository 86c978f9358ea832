"""Tournament files: every mistake is one line naming the field and what is allowed, exit 2, and
nothing written (property tests over bad values with Hypothesis)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phenolab import SettingError
from phenolab.settings import MEASURES
from phenolab.tournament import validate_tournament
from phenolab.tournament.spec import DERIVED, METRICS
from tests.helpers import user_error
from tests.tournament.conftest import TINY, tiny_tournament


def error(data: dict) -> str:
    with pytest.raises(SettingError) as exc:
        validate_tournament(data)
    message = str(exc.value)
    assert "\n" not in message and message.startswith("invalid tournament: "), message
    return message


def test_a_valid_tournament_has_a_stable_id_and_derived_held_out_seeds() -> None:
    t = validate_tournament(tiny_tournament())
    assert t.id == validate_tournament(json.loads(json.dumps(tiny_tournament()))).id
    seeds = t.held_out_seeds()
    assert seeds[0] == seeds[1] and len(seeds[0]) == 2 and seeds[0][0] >= 1000
    assert [c.name for c in t.competitors()][-2:] == ["time", "magnitude"]
    explicit = validate_tournament(tiny_tournament(held_out=[{"setting": "gromov2023", "overrides": TINY | {
        "task.op": "-"}, "seeds": [5, 6]}]))
    assert explicit.held_out_seeds() == [[5, 6]]
    assert all(s.checkpoints == "final" for g in t.scope_settings() for s in g)  # interventions need them


@pytest.mark.parametrize("change, expected", [
    (lambda d: d.update(target="accuracy"), "target: unknown measure or metric 'accuracy'"),
    (lambda d: d.update(target="step"), "target: 'step' is a step; allowed: a recorded metric"),
    (lambda d: d["explanations"][0].update(direction="up"), "explanations.0.direction: Input should be"),
    (lambda d: d["explanations"][1].update(name="time"), "explanations.1.name: 'time' is a baseline's name"),
    (lambda d: d["explanations"][1].update(name="weight-norm"), "explanations.1.name: 'weight-norm' is used twice"),
    (lambda d: d["explanations"][0].pop("measure"), "explanations.0: give exactly one of `measure`"),
    (lambda d: d["explanations"][0].update(combine={"op": "log", "of": ["step"]}), "give exactly one of"),
    (lambda d: d["explanations"].append({"name": "c", "combine": {"op": "ratio", "of": ["step"]},
                                         "direction": "positive"}), "op 'ratio' takes 2 value(s)"),
    (lambda d: d["explanations"][0].update(measure={"field": "model.nope"}), "'model.nope' is not a numeric field"),
    (lambda d: d["explanations"][0].update(measure={"name": "weight_norm", "params": {"scale": 2}}),
     "measure 'weight_norm' has no parameter 'scale'"),
    (lambda d: d.update(read="final"), "baselines.time: with read 'final'"),
    (lambda d: d.update(phenomenon="grok"), "phenomenon: unknown phenomenon 'grok' (did you mean 'grokking'?)"),
    (lambda d: d.update(scoring={"n_boot": 10}), "scoring.n_boot: Input should be greater than or equal to 100"),
    (lambda d: d.update(scoring={"alpha": 1.5}), "scoring.alpha: Input should be less than 1"),
    (lambda d: d.update(interventions=[{"kind": "regularizer", "field": "optim.lr", "values": [0.1]}]),
     "interventions.0.kind 'regularizer': allowed: rescale, permute"),
    (lambda d: d.update(held_out=[d["scope"][0] | {"n_seeds": 2}]), "held_out.0: setting"),
    (lambda d: d["held_out"][0]["overrides"].update({"task.p": -3}), "held_out.0: task.p"),
    (lambda d: d.update(colour="red"), "colour: unknown field"),
    (lambda d: d.pop("held_out"), "held_out: Field required"),
    (lambda d: d["explanations"][0].update(measure="test_acc"), "the target itself predicts nothing"),
])
def test_a_bad_field_is_one_line_naming_it(change, expected) -> None:
    data = copy.deepcopy(tiny_tournament())
    change(data)
    assert expected in error(data)


NAMES = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12).filter(
    lambda s: s not in MEASURES and s not in METRICS and s not in DERIVED and s != "step")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=NAMES, where=st.sampled_from(["target", "explanation", "baseline"]))
def test_any_unknown_measure_is_named_with_what_is_allowed(name: str, where: str) -> None:
    data = copy.deepcopy(tiny_tournament())
    if where == "target":
        data["target"] = name
    elif where == "explanation":
        data["explanations"][2]["measure"] = name
    else:
        data["baselines"] = {"magnitude": name}
    message = error(data)
    assert f"unknown measure or metric {name!r}" in message and "allowed: " in message and "weight_norm" in message


@settings(max_examples=25, deadline=None)
@given(n_boot=st.one_of(st.integers(max_value=99), st.integers(min_value=1_000_001)),
       alpha=st.one_of(st.floats(max_value=0), st.floats(min_value=1)))
def test_out_of_range_scoring_is_refused(n_boot: int, alpha: float) -> None:
    data = copy.deepcopy(tiny_tournament())
    data["scoring"] = {"n_boot": n_boot}
    assert error(data).startswith("invalid tournament: scoring.n_boot: ")
    data["scoring"] = {"alpha": alpha}
    assert error(data).startswith("invalid tournament: scoring.alpha: ")


def test_the_cli_refuses_a_bad_file_in_one_line_and_writes_nothing(tmp_path: Path, monkeypatch, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nstatement: s\nphenomenon: grokking\ntarget: test_acc\nexplanations: []\n")
    cat = tmp_path / "cat"
    line = user_error(monkeypatch, capsys, "tournament", "run", bad, "--catalog", cat)
    assert line.startswith("error: invalid tournament: explanations: ") and "at least 1 item" in line
    assert not cat.exists()
    (tmp_path / "not.yaml").write_text("name: [unclosed\n")
    assert "does not parse" in user_error(monkeypatch, capsys, "tournament", "run", tmp_path / "not.yaml",
                                          "--catalog", cat)
    assert "does not exist" in user_error(monkeypatch, capsys, "tournament", "run", tmp_path / "none.yaml")
    assert not cat.exists()
