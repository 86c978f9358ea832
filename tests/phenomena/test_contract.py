"""The phenomenon contract: the registry, options as flags, self-describing signature fields, and a
phenomenon defined outside phenolab's folder working through the API, phase maps and the report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import Field

import phenolab
from phenolab.catalog import Catalog
from phenolab.figures import curves_figure
from phenolab.phenomena import (
    PHENOMENA,
    Canonical,
    Fields,
    Options,
    Phenomenon,
    Signature,
    SignatureField,
    Study,
    register_phenomenon,
    stat,
    study_curves,
)
from phenolab.report import build_site
from phenolab.settings import NAMED_SETTINGS, SettingError
from phenolab.studies import STUDIES
from tests.helpers import invoke, run_main


def test_fields_are_looked_up_by_name_then_by_pattern():
    fields = Fields(SignatureField("t_test", "first step at 99%", "steps"),
                    SignatureField("r* ticket", "ticket accuracy at round rNN", "accuracy"),
                    SignatureField("n_runs", "runs read", phase=False))
    assert fields.get("t_test").unit == "steps" and fields.get("r03 51.2% ticket").unit == "accuracy"
    assert fields.get("r03 51.2% reinit") is None and "t_test" in fields
    assert fields.names() == ("t_test", "n_runs") and fields.mappable() == ("t_test",)
    assert fields.explain(["t_test", "unknown"]) == {"t_test": {"description": "first step at 99%", "unit": "steps"}}


def test_each_phenomenon_and_study_is_a_reproduce_subcommand_with_its_options_as_flags():
    listing = invoke("reproduce", "--help").output
    assert all(name in listing for name in [*PHENOMENA, *STUDIES])
    lottery = invoke("reproduce", "lottery", "--help").output
    assert all(flag in lottery for flag in ("--rounds", "--rewind-step", "--instability", "--setting", "--seeds"))
    assert "frankle_carbin2019_digits" in lottery  # the canonical settings are in the help
    assert "--compare" in invoke("reproduce", "grokking", "--help").output
    assert "--rounds" not in invoke("reproduce", "double-descent", "--help").output
    assert "--setting" not in invoke("reproduce", "figure4", "--help").output  # a study brings its own settings
    assert "--rounds" in invoke("phase", "lottery", "--help").output


@pytest.mark.parametrize("args, fragment", [
    (["reproduce", "lottery", "--rounds", "0"], "--rounds 0: input should be greater than or equal to 1"),
    (["reproduce", "lottery", "--instability", "sometimes"], "--instability 'sometimes'"),
    (["reproduce", "grokking", "--compare", "optimizers"], "--compare 'optimizers'"),
    (["reproduce", "grokin"], "unknown phenomenon 'grokin' (did you mean 'grokking'?); allowed:"),
    (["phase", "lotery", "--grid", "a=1"], "unknown phenomenon 'lotery' (did you mean 'lottery'?)"),
    (["reproduce", "grokking", "--setting", "gromov2024"], "--setting 'gromov2024' is not a grokking setting"),
    (["reproduce", "figure4", "--set", "task.p=7"], "figure4 takes no --set overrides"),
])
def test_bad_options_are_one_line_exit_2_and_write_nothing(tmp_path, monkeypatch, capsys, args, fragment):
    code, _, err = run_main(monkeypatch, capsys, *args, "--catalog", tmp_path / "cat")
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and fragment in lines[0], err
    assert not (tmp_path / "cat").exists()


def test_the_python_api_refuses_what_the_cli_refuses(tmp_path):
    with pytest.raises(SettingError, match="--rounds 0"):
        phenolab.reproduce("lottery", rounds=0, catalog=tmp_path)
    with pytest.raises(SettingError, match="unknown option 'round' for lottery; allowed: rounds"):
        phenolab.reproduce("lottery", round=3, catalog=tmp_path)
    with pytest.raises(SettingError, match="seeds"):
        phenolab.reproduce("grokking", seeds=[0, -1], catalog=tmp_path)
    with pytest.raises(SettingError, match="mapping"):
        phenolab.reproduce("grokking", overrides=["model.width=8"], catalog=tmp_path)
    assert not any(tmp_path.iterdir())


# ---- a phenomenon from outside phenolab's folder ------------------------------------------------
class ToyOptions(Options):
    threshold: float = Field(0.5, gt=0, le=1, description="test accuracy a run must reach")


class Toy(Phenomenon):
    """The smallest phenomenon: does test accuracy reach a threshold? (gromov2023 shrunk)"""

    name = "toy-reach"
    title = "whether a tiny modular MLP reaches a test accuracy (a contract test)"
    options_model = ToyOptions
    phase_default = "reached"
    canonical = (Canonical("toy_reach_tiny", {
        "task": {"name": "modular", "p": 13, "op": "+", "train_fraction": 0.5},
        "model": {"name": "mlp", "width": 32, "depth": 1, "activation": "quadratic", "bias": False},
        "optim": {"name": "adamw", "lr": 1e-2, "weight_decay": 1.0},
        "schedule": {"steps": 40}, "loss": "mse", "eval": {"points": 5}},
        source="a test", description="a test setting", published="nothing"),)
    FIELDS = Fields(SignatureField("final_test_acc", "test accuracy at the last step", "accuracy"),
                    SignatureField("reached", "final test accuracy ≥ the threshold", categories=("yes", "no")),
                    SignatureField("seed", "the run's seed", phase=False))

    def signature(self, catalog: Catalog, study: Study) -> Signature:
        curves = study_curves(catalog, study)
        finals = curves[curves["metric"] == "test_acc"].sort_values("step").groupby("seed")["value"].last()
        threshold = study.options.threshold  # type: ignore[attr-defined]
        rows = [{"seed": int(s), "final_test_acc": float(v), "reached": "yes" if v >= threshold else "no"}
                for s, v in finals.items()]
        summary: dict[str, Any] = {"final_test_acc": stat([r["final_test_acc"] for r in rows])}
        return Signature(study.setting_name, summary, rows, study.note)

    def figure(self, catalog: Catalog, study: Study, out: Path) -> Path:
        return curves_figure(study_curves(catalog, study), out, title=self.name)

    def fields(self, setting_name: str) -> Fields:
        return self.FIELDS


@pytest.fixture
def toy():
    ph = register_phenomenon(Toy())
    yield ph
    del PHENOMENA[ph.name]
    del NAMED_SETTINGS["toy_reach_tiny"]


@pytest.mark.slow
def test_a_phenomenon_registered_from_outside_works_through_the_api_phase_and_report(toy, tmp_path):
    cat = Catalog(tmp_path / "cat")
    assert NAMED_SETTINGS["toy_reach_tiny"].source == "a test"  # its canonical setting is a named setting
    result = phenolab.reproduce("toy-reach", seeds=2, catalog=cat, threshold=0.01)
    assert len(result.trained) == 2 and result.study.options.threshold == 0.01  # the option reached the study
    for row in result.runs.to_dict("records"):
        assert row["reached"] == ("yes" if row["final_test_acc"] >= 0.01 else "no")
    assert result.summary.set_index("field").loc["final_test_acc", "unit"] == "accuracy"
    assert json.loads(json.dumps(result.to_json()))["fields"]["reached"]["description"]

    from phenolab.execute.grid import parse_grid_arg
    from phenolab.phenomena import Trainer
    from phenolab.studies.phase import phase_cells, phase_field, phase_table, train_cells

    axes, cells = phase_cells(toy, "toy_reach_tiny", {}, [parse_grid_arg("optim.lr=0.01,0.001"),
                                                          parse_grid_arg("model.width=16,32")], [0, 1],
                              options={"threshold": 0.9})
    train_cells(toy, cells, Trainer.local(cat))
    table = phase_table(cat, toy, axes, cells, phase_field(toy, None, "toy_reach_tiny"))
    assert len(table) == 4 and table.attrs["categories"][:2] == ["yes", "no"] and set(table["n"]) == {2}

    index = build_site(cat, tmp_path / "site")
    html = index.read_text()
    assert "toy-reach" in html and "toy_reach_tiny" in html
    assert "published (toy_reach_tiny):</span> nothing" in html  # its card: the published number
    study_page = next(p for p in index.parent.glob("phenomenon-*.html"))
    assert "test accuracy at the last step" in study_page.read_text()  # the field's description


def test_a_setting_name_taken_with_other_values_is_refused():
    class Clash(Toy):
        name = "clash"
        canonical = (Canonical("gromov2023", {"task": {"name": "modular", "p": 7}, "model": {"name": "mlp"}},
                               source="", description=""),)

    with pytest.raises(SettingError, match="setting 'gromov2023' is already registered with other values"):
        register_phenomenon(Clash())
    assert "clash" not in PHENOMENA
