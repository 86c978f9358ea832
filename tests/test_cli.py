"""The CLI as a user runs it: train, list, curves, show, plot; bad input is one line, exit 2,
and nothing is written."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from phenolab import Catalog
from phenolab.cli import app

TINY = ["--set", "task.num_samples=300", "--set", "model.width=16", "--set", "schedule.epochs=2",
        "--set", "eval.points=4"]
runner = CliRunner()


def cli(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def phenolab_subprocess(*args: str, cwd: Path, **env_vars: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PHENOLAB_THREADS="1", **env_vars)
    return subprocess.run([sys.executable, "-c", "from phenolab.cli import main; main()", *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_train_runs_curves_show_plot(tmp_path):
    cat = str(tmp_path / "cat")
    res = cli("train", *TINY, "--seeds", "0-2", "--catalog", cat, "--json")
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    assert report["trained"] == 3 and Path(report["figure"]).is_file()
    assert 0 <= report["final"]["test_acc"]["mean"] <= 1 and report["final"]["test_acc"]["n"] == 3

    again = json.loads(cli("train", *TINY, "--seeds", "0-3", "--catalog", cat, "--json").output)
    assert again["trained"] == 1 and again["skipped"] == 3  # only the missing seed is trained

    runs = json.loads(cli("runs", "--catalog", cat, "--json").output)
    assert sorted(r["seed"] for r in runs) == [0, 1, 2, 3]
    run_id = runs[0]["run_id"]

    out = tmp_path / "c.csv"
    assert cli("curves", run_id, "--catalog", cat, "--csv", str(out)).exit_code == 0
    header = out.read_text().splitlines()[0].split(",")
    assert {"step", "train_acc", "test_acc", "weight_norm"} <= set(header)

    shown = json.loads(cli("show", run_id, "--catalog", cat).output)
    assert shown["seed"] in (0, 1, 2, 3) and shown["provenance"]["torch"]
    assert cli("plot", report["setting_id"], "--catalog", cat, "--out", str(tmp_path / "p.png")).exit_code == 0
    assert (tmp_path / "p.png").stat().st_size > 1000
    assert Catalog(cat).integrity_check() == "ok"


def test_setting_file_equals_set_flags(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("task: {name: mnist1d, num_samples: 300}\nmodel: {name: mlp, width: 16}\n"
                 "schedule: {epochs: 2, batch_size: 100}\neval: {points: 4}\n"
                 "measures: [weight_norm, distance_from_init]\n")
    from_file = json.loads(cli("train", str(f), "--seeds", "0", "--catalog", str(tmp_path), "--json",
                               "--no-figure").output)
    from_flags = json.loads(cli("train", *TINY, "--seeds", "0", "--catalog", str(tmp_path), "--json",
                                "--no-figure").output)
    assert from_file["setting_id"] == from_flags["setting_id"] and from_flags["trained"] == 0


@pytest.mark.parametrize("args, fragment", [
    (["train", "--set", "model.width=-1"], "model.width = -1"),
    (["train", "--set", "model.widht=8"], "unknown field 'model.widht'"),
    (["train", "--set", "optim.name=rmsprop"], "optim.name = 'rmsprop'"),
    (["train", "--seeds", "7-3"], "--seeds"),
    (["train", "no_such_setting"], "unknown setting 'no_such_setting'"),
    (["train", "--set", "nonsense"], "expected FIELD=VALUE"),
    (["curves", "deadbeef-0"], "deadbeef-0"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, args, fragment):
    proc = phenolab_subprocess(*args, "--catalog", str(tmp_path / "cat"), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and fragment in lines[0], proc.stderr
    assert not (tmp_path / "cat").exists()


def test_every_command_has_help():
    top = cli("--help")
    assert top.exit_code == 0
    import typer

    commands = sorted(typer.main.get_command(app).commands)
    assert {"train", "runs", "curves", "demo", "reproduce"} <= set(commands)
    for name in commands:
        res = cli(name, "--help")
        assert res.exit_code == 0 and len(res.output.strip()) > 40, name


def test_demo_command_end_to_end_small(tmp_path):
    res = cli("demo", "--seeds", "2", "--catalog", str(tmp_path))
    assert res.exit_code == 0, res.output
    assert "catalog:" in res.output and "figure:" in res.output
    assert len(Catalog(tmp_path).runs()) == 2


def test_progress_lines_when_stderr_is_a_log(tmp_path):
    """Not a terminal: plain progress lines on stderr (here one per update), JSON alone on stdout."""
    args = ["train", *TINY, "--set", "schedule.epochs=60", "--seeds", "0-1", "--catalog", str(tmp_path / "c"), "--json"]
    proc = phenolab_subprocess(*args, cwd=tmp_path, PHENOLAB_PROGRESS_EVERY="1e-9")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["trained"] == 2
    lines = [ln for ln in proc.stderr.splitlines() if " steps (" in ln]
    assert len(lines) >= 2, proc.stderr
    assert re.search(r"training \S+: \d+/\d+ steps \(\d+%\) · runs [0-2]/2 · 0:00:\d\d elapsed · ETA ", lines[0])
    done, total = map(int, re.search(r"(\d+)/(\d+) steps", lines[-1]).groups())
    assert done == total  # the last update is the finished training


def test_sweep_progress_lines_when_stderr_is_a_log(tmp_path):
    args = ["sweep", "mnist1d_mlp", "--set", "task.num_samples=300", "--set", "schedule.epochs=2",
            "--grid", "model.width=8,16", "--seeds", "0-1", "--catalog",
            str(tmp_path / "c")]
    proc = phenolab_subprocess(*args, cwd=tmp_path, PHENOLAB_PROGRESS_EVERY="1e-9")
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^sweep: 4/4 runs \(100%\) · 0:00:\d\d elapsed · ETA 0:00:00$", proc.stderr, re.M), proc.stderr


def test_progress_every_must_be_a_number(tmp_path):
    args = ["train", *TINY, "--seeds", "0", "--catalog", str(tmp_path / "c")]
    proc = phenolab_subprocess(*args, cwd=tmp_path, PHENOLAB_PROGRESS_EVERY="soon")
    assert proc.returncode == 2 and "PHENOLAB_PROGRESS_EVERY='soon'" in proc.stderr
    assert not (tmp_path / "c").exists() or Catalog(tmp_path / "c").count_runs() == 0
