"""MLflow export round trip: runs written with `phenolab export --mlflow` (or its alias
`phenolab export-mlflow`) are read back with MLflow's own client, params = the setting, metrics =
the catalog's curves step by step, tags = phenomenon, setting id, seed; a second export adds nothing."""

from __future__ import annotations

import json
import sys

import pytest

from phenolab import Catalog
from phenolab.export_mlflow import export_mlflow, metric_key, setting_params
from tests.helpers import TINY_GROK, invoke, ok, run_main

mlflow = pytest.importorskip("mlflow", reason="the MLflow export is optional: pip install 'phenolab[mlflow]'")
from mlflow.tracking import MlflowClient  # noqa: E402

# every test reads the runs the module fixture trains and exports
pytestmark = pytest.mark.slow

PRIME = ["--set", "task.p=11", "--set", "schedule.steps=20", "--set",
         'measures=[{"name": "prime_parameter_count", "params": {"scale": 10}}]']


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow")
    cat = root / "cat"
    ok("reproduce", "grokking", *TINY_GROK, "--seeds", "2", "--catalog", cat)
    ok("train", "gromov2023", *PRIME, "--seeds", "0-1", "--catalog", cat, "--no-figure")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    out = ok("export-mlflow", uri, "--catalog", cat)
    return Catalog(cat), uri, out


def test_runs_params_metrics_and_tags_round_trip(exported):
    catalog, uri, out = exported
    assert "exported 4 run(s)" in out
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("phenolab")
    runs = {r.data.tags["phenolab.run_id"]: r for r in client.search_runs([exp.experiment_id])}
    table = catalog.runs()
    assert sorted(runs) == sorted(table["run_id"])
    grok_id = catalog.notes("signature")[0]["obj"]["setting_id"]
    for row in table.itertuples():
        run = runs[row.run_id]
        assert run.info.status == "FINISHED" and run.info.run_name == row.run_id
        tags = run.data.tags
        assert tags["phenolab.setting_id"] == row.setting_id and tags["phenolab.seed"] == str(row.seed)
        assert tags["phenolab.phenomenon"] == ("grokking" if row.setting_id == grok_id else "")
        params = run.data.params
        assert params == {**setting_params(catalog.setting(row.setting_id)), "seed": str(row.seed)}
        assert params["optim.name"] == "adamw" and params["task.p"] in ("13", "11")
        assert params["optim.betas"] == "[0.9,0.98]" and params["schedule.steps"] in ("30", "20")
        curves = catalog.curves(run_ids=[row.run_id])
        assert set(run.data.metrics) == {metric_key(m) for m in curves["metric"].unique()}
        for metric, df in curves.groupby("metric"):
            history = sorted(client.get_metric_history(run.info.run_id, metric_key(metric)), key=lambda m: m.step)
            assert [m.step for m in history] == df["step"].tolist()
            assert [m.value for m in history] == df["value"].tolist()  # float64 both ways: exact


def test_measure_names_mlflow_rejects_are_renamed_and_recorded(exported):
    catalog, uri, _ = exported
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("phenolab")
    prime = [r for r in client.search_runs([exp.experiment_id])
             if "prime_parameter_count_scale_10" in r.data.metrics]
    assert len(prime) == 2
    assert prime[0].data.tags["phenolab.metric_names"] == \
        '{"prime_parameter_count_scale_10": "prime_parameter_count(scale=10)"}'
    assert catalog.curves(metrics=["prime_parameter_count(scale=10)"])["value"].max() > 0


def test_second_export_adds_nothing_and_where_selects(exported):
    catalog, uri, _ = exported
    assert "exported 0 run(s)" in ok("export-mlflow", uri, "--catalog", catalog.path)
    client = MlflowClient(tracking_uri=uri)
    assert len(client.search_runs([client.get_experiment_by_name("phenolab").experiment_id])) == 4
    assert "exported 2 run(s)" in ok("export-mlflow", uri, "--catalog", catalog.path, "--where", "task.p=13",
                                     "--experiment", "only-p13")
    only = client.search_runs([client.get_experiment_by_name("only-p13").experiment_id])
    assert {r.data.params["task.p"] for r in only} == {"13"}
    one = str(catalog.runs()["run_id"].iloc[-1])  # the selection `phenolab export --mlflow` passes
    assert export_mlflow(catalog, uri, run_ids=[one], experiment="one-run") == 1
    assert [r.data.tags["phenolab.run_id"] for r in
            client.search_runs([client.get_experiment_by_name("one-run").experiment_id])] == [one]


def test_export_option_writes_the_selected_runs_through_the_cli(exported, tmp_path):
    catalog, _, _ = exported
    uri = f"sqlite:///{tmp_path / 'via-export.db'}"
    grok_id = catalog.notes("signature")[0]["obj"]["setting_id"]
    res = invoke("export", "--mlflow", uri, "--setting", grok_id, "--experiment", "via-export", "--json",
                 "--catalog", catalog.path)
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)  # MLflow's own log lines go to stderr
    assert out == {"mlflow": uri, "experiment": "via-export", "selected": 2, "exported": 2}
    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("via-export").experiment_id])
    assert sorted(r.data.tags["phenolab.run_id"] for r in runs) == sorted(catalog.runs(setting_id=grok_id)["run_id"])
    for run in runs:
        assert run.info.status == "FINISHED" and run.data.tags["phenolab.phenomenon"] == "grokking"
        assert run.data.params == {**setting_params(catalog.setting(grok_id)), "seed": run.data.tags["phenolab.seed"]}
    assert "exported 2 run(s)" in ok("export", "--mlflow", uri, "--where", "task.p=11", "--catalog", catalog.path)
    assert "exported 0 run(s)" in ok("export", "--mlflow", uri, "--where", "task.p=11", "--catalog", catalog.path)
    assert len(client.search_runs([client.get_experiment_by_name("phenolab").experiment_id])) == 2


def test_export_takes_one_target(exported, tmp_path, monkeypatch, capsys):
    catalog, uri, _ = exported
    code, _, err = run_main(monkeypatch, capsys, "export", tmp_path / "b", "--mlflow", uri, "--catalog", catalog.path)
    assert code == 2 and "give OUT or --mlflow, not both" in err
    assert not (tmp_path / "b").exists()


def test_without_mlflow_the_error_is_one_line(exported, monkeypatch, capsys):
    catalog, _, _ = exported
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)  # what an install without the extra sees
    code, _, out = run_main(monkeypatch, capsys, "export-mlflow", "sqlite:///x.db", "--catalog", catalog.path)
    err = [ln for ln in out.splitlines() if ln.strip()]
    assert code == 2 and len(err) == 1 and "MLflow export needs mlflow: pip install 'phenolab" in err[0]


def test_an_interrupted_export_is_deleted_and_redone(exported):
    catalog, uri, _ = exported
    client = MlflowClient(tracking_uri=uri)
    exp_id = client.create_experiment("interrupted")
    first = str(catalog.runs()["run_id"].iloc[0])
    stale = client.create_run(exp_id, tags={"phenolab.run_id": first}, run_name=first)  # never terminated
    assert "exported 4 run(s)" in ok("export-mlflow", uri, "--catalog", catalog.path, "--experiment", "interrupted")
    active = client.search_runs([exp_id])
    assert len(active) == 4 and stale.info.run_id not in {r.info.run_id for r in active}
    assert all(r.info.status == "FINISHED" for r in active)
