"""Sweeps: grid expansion, skipping stored runs, Ctrl-C and kill -9 mid-sweep then resume, two
concurrent sweeps on one catalog (phase diagrams: tests/studies/test_phase.py)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest

from phenolab.catalog import Catalog
from phenolab.execute.grid import (
    SweepSpec,
    build_sweep_spec,
    expand_grid,
    load_sweep_file,
    parse_grid_arg,
    resolve_axes,
    sweep_points,
)
from phenolab.settings import SettingError, resolve_setting
from tests.helpers import TINY_GROK, run_main

# Ctrl-C is KeyboardInterrupt even when this test runs with SIGINT ignored (a shell's background
# job, `nohup`): a child inherits SIG_IGN, and Python then leaves it ignored.
SWEEP_MAIN = ("import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
              "from phenolab.cli import main; main()")


def subprocess_sweep(args: list[str], cwd: Path) -> subprocess.Popen:
    env = dict(os.environ, PHENOLAB_THREADS="1")
    return subprocess.Popen([sys.executable, "-c", SWEEP_MAIN, "sweep", *args],
                            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stored(cat: Path) -> list[str]:
    with closing(sqlite3.connect(cat)) as conn:
        return [r for (r,) in conn.execute("SELECT run_id FROM runs")]


def catalog_is_whole(cat: Path, n_metrics: int = 4) -> None:
    """Integrity ok, every run stored once with all its curves, no curve without its run."""
    c = Catalog(cat)
    assert c.integrity_check() == "ok"
    ids = stored(cat)
    assert len(ids) == len(set(ids))
    with closing(sqlite3.connect(cat)) as conn:
        per_run = dict(conn.execute("SELECT run_id, COUNT(*) FROM curves GROUP BY run_id").fetchall())
    assert set(per_run) == set(ids) and set(per_run.values()) <= {n_metrics}


# ---- grids --------------------------------------------------------------------------------------
def test_grid_values_are_typed_by_the_field():
    base = resolve_setting("gromov2023", {})
    width, frac, lr, wd = resolve_axes(base, [
        parse_grid_arg("model.width=16:256:5:log"), parse_grid_arg("task.train_fraction=0.1:0.9:9"),
        parse_grid_arg("optim.lr=1e-3:1e-1:3:log"), parse_grid_arg("optim.weight_decay=0,1,5,10")])
    assert width.values == (16, 32, 64, 128, 256) and all(type(v) is int for v in width.values)
    assert frac.values == (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)  # 0.3, not 0.30000000000000004
    assert lr.values == (0.001, 0.01, 0.1)
    assert wd.values == (0, 1, 5, 10)
    # an int range that rounds to repeated values keeps each int once
    assert resolve_axes(base, [parse_grid_arg("model.width=1:3:7")])[0].values == (1, 2, 3)
    # lists in brackets are one value each
    axis = parse_grid_arg("model.widths=[300,100],[64,32]")
    assert axis.values == ([300, 100], [64, 32])


def test_expansion_is_the_cartesian_product_with_distinct_ids():
    base = resolve_setting("gromov2023", {"task.p": 13})
    axes = resolve_axes(base, [parse_grid_arg("task.train_fraction=0.2,0.4,0.6"),
                               parse_grid_arg("optim.weight_decay=0,1")])
    points = expand_grid(base, axes)
    assert len(points) == 6 and len({p.setting.id for p in points}) == 6
    assert points[1].overrides == {"task.train_fraction": 0.2, "optim.weight_decay": 1}
    assert points[1].setting.id == base.with_overrides(points[1].overrides).id
    # a value equal to the base gives the same setting as typing nothing: one point, not two
    assert len(expand_grid(base, resolve_axes(base, [parse_grid_arg("task.p=13,13.0")]))) == 1
    with pytest.raises(SettingError, match="model.width"):
        resolve_axes(base, [parse_grid_arg("model.width=8,0")])


def test_sweep_file_equals_the_command_line(tmp_path):
    f = tmp_path / "sweep.yaml"
    f.write_text("base: gromov2023\nset: {task.p: 13}\ngrid:\n  task.train_fraction: [0.2, 0.4]\n"
                 "  model.width: '16:64:3:log'\nseeds: 0-2\n")
    from_file = load_sweep_file(f)
    from_cli = build_sweep_spec("gromov2023", None, ["task.train_fraction=0.2,0.4", "model.width=16:64:3:log"],
                                ["task.p=13"], "0-2")
    assert from_file.seeds == from_cli.seeds == [0, 1, 2]
    ids = [p.setting.id for p in sweep_points(from_file)]
    assert ids == [p.setting.id for p in sweep_points(from_cli)] and len(ids) == 6
    assert isinstance(from_cli, SweepSpec)


# ---- running ------------------------------------------------------------------------------------
def test_dry_run_names_what_each_shared_program_mixes_and_trains_nothing(tmp_path, capsys, monkeypatch):
    cat = tmp_path / "cat"
    args = ["sweep", "gromov2023", *TINY_GROK, "--grid", "model.width=8,16", "--grid", "optim.weight_decay=0,5",
            "--seeds", "0-1", "--catalog", str(cat), "--dry-run"]
    code, out, _ = run_main(monkeypatch, capsys, *args, "--json")
    plan = json.loads(out)
    assert code == 0 and plan["to_train"] == 8 and plan["batches"] == 1
    assert plan["shared_programs"] == [{"model.width": [8, 16], "optim.weight_decay": [0.0, 5.0]}]
    code, out, _ = run_main(monkeypatch, capsys, *args)
    assert code == 0 and "one program for: model.width 8, 16; optim.weight_decay 0.0, 5.0" in out
    assert not (cat / "catalog.db").exists() or Catalog(cat).count_runs() == 0


def test_sweep_stores_every_run_once_and_skips_them_on_rerun(tmp_path, capsys, monkeypatch):
    cat = tmp_path / "cat"
    args = ["sweep", "gromov2023", *TINY_GROK, "--grid", "task.train_fraction=0.3,0.6", "--grid",
            "optim.weight_decay=0,5", "--catalog", str(cat), "--json"]
    code, out, err = run_main(monkeypatch, capsys, *args, "--seeds", "0-2")
    assert code == 0, err
    report = json.loads(out)
    assert code == 0 and report["trained"] == 12 and report["already_stored"] == 0 and report["remaining"] == 0
    assert "4 setting(s) × 3 seed(s) = 12 runs" in err
    runs = Catalog(cat).runs()
    # the two weight decays of a train fraction share one program (engine.packing): 2 programs of 6
    assert len(runs) == 12 and set(runs["replicas_in_batch"]) == {6} and runs["batch_id"].nunique() == 2
    code, out, _ = run_main(monkeypatch, capsys, *args, "--seeds", "0-3")
    again = json.loads(out)
    assert code == 0 and again["already_stored"] == 12 and again["trained"] == 4  # only seed 3 is new
    catalog_is_whole(cat / "catalog.db")


@pytest.mark.slow
def test_ctrl_c_then_kill_9_then_rerun_loses_and_duplicates_nothing(tmp_path, capsys, monkeypatch):
    cat = tmp_path / "c.db"
    args = ["gromov2023", "--set", "task.p=13", "--set", "schedule.steps=200", "--grid",
            "task.train_fraction=0.2:0.8:7", "--grid", "optim.weight_decay=1,5", "--seeds", "0-1",
            "--catalog", str(cat), "--json"]
    total = 14 * 2

    def wait_for(n: int, proc: subprocess.Popen) -> int:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            have = Catalog(cat).count_runs()
            if have >= n:
                return have
            time.sleep(0.02)
        raise AssertionError(f"sweep ended or stalled before {n} runs: {proc.communicate()}")

    first = subprocess_sweep(args, tmp_path)
    wait_for(2, first)
    first.send_signal(signal.SIGINT)  # Ctrl-C
    out, err = first.communicate(timeout=60)
    kept = len(stored(cat))
    assert first.returncode == 130, err
    assert "interrupted" in err and "Rerun the same command" in err
    assert json.loads(out)["trained"] == kept and 2 <= kept < total
    catalog_is_whole(cat)

    second = subprocess_sweep(args, tmp_path)
    wait_for(kept + 2, second)
    second.kill()  # kill -9, wherever it is: training, or inside a write transaction
    second.communicate(timeout=60)
    after_kill = len(stored(cat))
    assert second.returncode == -signal.SIGKILL and kept + 2 <= after_kill < total
    catalog_is_whole(cat)

    code, out, _ = run_main(monkeypatch, capsys, "sweep", *args)
    report = json.loads(out)
    assert code == 0 and report["already_stored"] == after_kill and report["trained"] == total - after_kill
    assert len(stored(cat)) == total
    catalog_is_whole(cat)
    assert not list(tmp_path.rglob("*.tmp"))


@pytest.mark.slow
def test_two_sweeps_at_once_on_overlapping_grids_store_the_union_once(tmp_path):
    cat = tmp_path / "shared.db"
    common = ["--set", "task.p=13", "--set", "schedule.steps=200", "--seeds", "0-2", "--catalog", str(cat), "--json"]
    a = subprocess_sweep(["gromov2023", "--grid", "task.train_fraction=0.2,0.3,0.4,0.5,0.6", *common], tmp_path)
    b = subprocess_sweep(["gromov2023", "--grid", "task.train_fraction=0.6,0.5,0.4,0.7,0.8", *common], tmp_path)
    (out_a, err_a), (out_b, err_b) = a.communicate(timeout=300), b.communicate(timeout=300)
    assert a.returncode == 0 and b.returncode == 0, (err_a, err_b)
    assert "locked" not in err_a + err_b
    ra, rb = json.loads(out_a), json.loads(out_b)
    union = 7 * 3
    assert len(stored(cat)) == union
    # every run was written by exactly one process; what the other trained too was skipped, not duplicated
    assert ra["trained"] + rb["trained"] == union
    assert ra["remaining"] == rb["remaining"] == 0
    catalog_is_whole(cat)
