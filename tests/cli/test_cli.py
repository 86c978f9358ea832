"""The CLI as a user runs it: train, list, curves, show, plot; bad input is one line, exit 2,
and nothing is written."""

import json
import re
from pathlib import Path

import pytest

from phenolab import Catalog
from phenolab.cli import app
from tests.helpers import TINY_MLP, invoke, run_subprocess


@pytest.mark.slow
def test_train_runs_curves_show_plot(tmp_path):
    cat = str(tmp_path / "cat")
    res = invoke("train", *TINY_MLP, "--seeds", "0-2", "--catalog", cat, "--json")
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    assert report["trained"] == 3 and Path(report["figure"]).is_file()
    assert 0 <= report["final"]["test_acc"]["mean"] <= 1 and report["final"]["test_acc"]["n"] == 3

    again = json.loads(invoke("train", *TINY_MLP, "--seeds", "0-3", "--catalog", cat, "--json").output)
    assert again["trained"] == 1 and again["skipped"] == 3  # only the missing seed is trained

    runs = json.loads(invoke("runs", "--catalog", cat, "--json").output)
    assert sorted(r["seed"] for r in runs) == [0, 1, 2, 3]
    run_id = runs[0]["run_id"]

    out = tmp_path / "c.csv"
    assert invoke("curves", run_id, "--catalog", cat, "--csv", str(out)).exit_code == 0
    header = out.read_text().splitlines()[0].split(",")
    assert {"step", "train_acc", "test_acc", "weight_norm"} <= set(header)

    shown = json.loads(invoke("show", run_id, "--catalog", cat).output)
    assert shown["seed"] in (0, 1, 2, 3) and shown["provenance"]["torch"]
    assert invoke("plot", report["setting_id"], "--catalog", cat, "--out", str(tmp_path / "p.png")).exit_code == 0
    assert (tmp_path / "p.png").stat().st_size > 1000
    assert Catalog(cat).integrity_check() == "ok"


def test_setting_file_equals_set_flags(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("task: {name: mnist1d, num_samples: 300}\nmodel: {name: mlp, width: 16}\n"
                 "schedule: {epochs: 2, batch_size: 100}\neval: {points: 4}\n"
                 "measures: [weight_norm, distance_from_init]\n")
    from_file = json.loads(invoke("train", str(f), "--seeds", "0-0", "--catalog", str(tmp_path), "--json",
                               "--no-figure").output)
    from_flags = json.loads(invoke("train", *TINY_MLP, "--seeds", "0-0", "--catalog", str(tmp_path), "--json",
                                "--no-figure").output)
    assert from_file["setting_id"] == from_flags["setting_id"] and from_flags["trained"] == 0


@pytest.mark.slow
@pytest.mark.parametrize("args, fragment", [
    (["train", "--set", "model.width=-1"], "model.width = -1"),
    (["train", "--set", "model.widht=8"], "unknown field 'model.widht'"),
    (["train", "--set", "optim.name=rmsprop"], "optim.name = 'rmsprop'"),
    (["train", "--seeds", "7-3"], "--seeds"),
    (["train", "no_such_setting"], "unknown setting 'no_such_setting'"),
    (["train", "--set", "nonsense"], "expected FIELD=VALUE"),
    (["curves", "deadbeef-0"], "no catalog at"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, args, fragment):
    proc = run_subprocess(*args, "--catalog", str(tmp_path / "cat"), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and fragment in lines[0], proc.stderr
    assert not (tmp_path / "cat").exists()


def test_every_command_has_help():
    top = invoke("--help")
    assert top.exit_code == 0
    import typer

    commands = sorted(typer.main.get_command(app).commands)
    assert {"train", "runs", "curves", "demo", "reproduce"} <= set(commands)
    for name in commands:
        res = invoke(name, "--help")
        assert res.exit_code == 0 and len(res.output.strip()) > 40, name


@pytest.mark.slow
def test_demo_shows_grokking_its_signature_the_published_number_and_the_report(tmp_path):
    res = invoke("demo", "--seeds", "2", "--catalog", str(tmp_path))
    assert res.exit_code == 0, res.output
    runs = Catalog(tmp_path).runs()
    assert len(runs) == 2 and set(runs["task"]) == {"modular"}  # gromov2023: a + b mod 97
    out = res.output
    assert "grokking · gromov2023" in out and "t_test" in out and "published (Gromov 2023)" in out
    assert (tmp_path / "report" / "index.html").is_file() and "figure:" in out
    look = next(line for line in out.splitlines() if line.startswith("look at:"))
    assert "2 of 2 runs grokked" in look  # read from the measured signature, not written in advance
    assert "try next:" in out and "phenolab phase grokking" in out


@pytest.mark.slow
def test_progress_lines_when_stderr_is_a_log(tmp_path):
    """Not a terminal: plain progress lines on stderr (here one per update), JSON alone on stdout."""
    args = ["train", *TINY_MLP, "--set", "schedule.epochs=60", "--seeds", "0-1", "--catalog", str(tmp_path / "c"),
            "--json"]
    proc = run_subprocess(*args, cwd=tmp_path, PHENOLAB_PROGRESS_EVERY="1e-9")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["trained"] == 2
    lines = [ln for ln in proc.stderr.splitlines() if " steps (" in ln]
    assert len(lines) >= 2, proc.stderr
    assert re.search(r"training \S+: \d+/\d+ steps \(\d+%\) · runs [0-2]/2 · 0:00:\d\d elapsed · ETA ", lines[0])
    done, total = map(int, re.search(r"(\d+)/(\d+) steps", lines[-1]).groups())
    assert done == total  # the last update is the finished training


@pytest.mark.slow
def test_sweep_progress_lines_when_stderr_is_a_log(tmp_path):
    args = ["sweep", "mnist1d_mlp", "--set", "task.num_samples=300", "--set", "schedule.epochs=2",
            "--grid", "model.width=8,16", "--seeds", "0-1", "--catalog",
            str(tmp_path / "c")]
    proc = run_subprocess(*args, cwd=tmp_path, PHENOLAB_PROGRESS_EVERY="1e-9")
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^sweep: 4/4 runs \(100%\) · 0:00:\d\d elapsed · ETA 0:00:00$", proc.stderr, re.M), proc.stderr


@pytest.mark.slow
def test_progress_every_must_be_a_number(tmp_path):
    args = ["train", *TINY_MLP, "--seeds", "0-0", "--catalog", str(tmp_path / "c")]
    proc = run_subprocess(*args, cwd=tmp_path, PHENOLAB_PROGRESS_EVERY="soon")
    assert proc.returncode == 2 and "PHENOLAB_PROGRESS_EVERY='soon'" in proc.stderr
    assert not (tmp_path / "c").exists() or Catalog(tmp_path / "c").count_runs() == 0
