"""Plug-ins through the `phenolab.plugins` entry-point group: the example package in
examples/plugin/ (a task, a measure and the phenomenon `sparse-parity`, hidden progress after
Barak et al. 2022) is pip-installed from its folder and used through the real CLI in a fresh
interpreter: `train`, `reproduce`, `phase`, `report`, with nothing in phenolab naming it. A broken
plug-in costs one warning line, not the command."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import numpy as np
import pytest
import torch

from phenolab import Catalog
from phenolab import plugins as plugins_mod
from tests.helpers import run_subprocess

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "plugin"
MEASURE = "relevant_input_weight_share(k=3)"
SMALL = ["--set", "schedule.steps=40", "--set", "model.width=64", "--set", "task.n_train=200",
         "--set", "task.n_test=200", "--set", "eval.points=6", "--set", "checkpoints=final"]
# sparse_parity_demo cut to 300 steps: both seeds reach 99% test accuracy near step 120-170 (measured)
REAL = ["--set", "schedule.steps=300", "--set", "eval.points=20"]
# a 2 × 2 phase map on a short budget: 10 bits are learned within 150 steps
PHASE = ["--grid", "task.n_bits=10,30", "--grid", "model.width=32,128", "--seeds", "2",
         "--set", "schedule.steps=150", "--set", "eval.points=15"]


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    """examples/plugin installed by pip, as a user would, into a folder of its own (the shared venv stays clean)."""
    site = tmp_path_factory.mktemp("plugin-site")
    # build from a copy: setuptools writes build/ and *.egg-info beside the sources, and reuses them
    source = shutil.copytree(EXAMPLE, tmp_path_factory.mktemp("plugin-src") / "plugin",
                             ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                           "--target", str(site), str(source)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (site / "phenolab_example_plugin").is_dir() and list(site.glob("*.dist-info/entry_points.txt"))
    return site


@pytest.fixture(scope="module")
def study_catalog(tmp_path_factory) -> Path:
    """One catalog for the reproduction, the phase map and the report."""
    return tmp_path_factory.mktemp("study") / "cat"


@pytest.fixture(scope="module")
def reproduced(plugin_site, study_catalog) -> dict:
    """`phenolab reproduce sparse-parity` on its demo setting, 2 seeds, a short but real budget (--json)."""
    proc = run_subprocess("reproduce", "sparse-parity", "--setting", "sparse_parity_demo", "--seeds", "2", *REAL,
                          "--catalog", study_catalog, "--json", cwd=study_catalog.parent, path=plugin_site)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


# ---- the task and the measure -------------------------------------------------------------------
def test_plugin_task_and_measure_train_through_the_cli(plugin_site, tmp_path):
    cat = tmp_path / "cat"
    proc = run_subprocess("train", "sparse_parity_demo", *SMALL, "--seeds", "0-1", "--catalog", cat, "--json",
                          "--no-figure", path=plugin_site, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["trained"] == 2
    catalog = Catalog(cat)
    runs = catalog.runs()
    assert list(runs["task"]) == ["sparse_parity"] * 2 and list(runs["seed"]) == [0, 1]
    curves = catalog.curves(metrics=[MEASURE])
    assert sorted(curves["run_id"].unique()) == sorted(runs["run_id"])
    for run_id, df in curves.groupby("run_id"):
        df = df.sort_values("step")
        # at init every input gets the same expected share: k / n_bits = 3 / 20
        assert abs(df["value"].iloc[0] - 3 / 20) < 0.05
        # the recorded final value is the measure of the saved final weights, computed here by hand
        w0 = catalog.load_checkpoint(run_id)["w0"].double()
        assert w0.shape == (20, 64)
        by_hand = float(w0[:3].square().sum() / w0.square().sum())
        assert df["value"].iloc[-1] == pytest.approx(by_hand, rel=1e-9)
        assert df["value"].iloc[-1] != df["value"].iloc[0]


def test_without_the_plugin_its_setting_is_unknown(tmp_path):
    proc = run_subprocess("train", "sparse_parity_demo", "--catalog", tmp_path / "cat", path=None, cwd=tmp_path)
    assert proc.returncode == 2 and "unknown setting 'sparse_parity_demo'" in proc.stderr
    assert not (tmp_path / "cat").exists()


def write_broken_plugins(root: Path) -> Path:
    """Two installed-looking distributions whose entry points fail: one raises, one names no module."""
    site = root / "broken-site"
    site.mkdir()
    (site / "broken_plugin.py").write_text("def register():\n    raise RuntimeError('needs a GPU driver')\n")
    for dist, target in (("broken_plugin", "broken_plugin:register"), ("ghost_plugin", "no_such_module:register")):
        info = site / f"{dist}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist.replace('_', '-')}\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text(f"[phenolab.plugins]\n{dist.split('_')[0]} = {target}\n")
    return site


def test_settings_lists_the_plugin_setting_and_broken_plugins_cost_one_line_each(plugin_site, tmp_path):
    broken = write_broken_plugins(tmp_path)
    proc = run_subprocess("settings", "--json", path=f"{plugin_site}{os.pathsep}{broken}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    names = {row["name"]: row for row in json.loads(proc.stdout)}
    assert "sparse_parity_demo" in names and "Barak et al. 2022" in names["sparse_parity_demo"]["source"]
    assert "sparse_parity_sgd" in names  # the phenomenon's second canonical setting
    assert {"gromov2023", "mnist1d_mlp"} <= set(names)  # the built-ins are still there
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 2, proc.stderr
    assert "plug-in 'broken' (broken_plugin:register, from broken-plugin)" in lines[0]
    assert "RuntimeError: needs a GPU driver" in lines[0]
    assert "plug-in 'ghost'" in lines[1] and "ModuleNotFoundError" in lines[1]


def test_load_plugins_calls_callables_imports_modules_and_loads_once(monkeypatch, caplog):
    calls = []
    monkeypatch.setitem(sys.modules, "fake_phenolab_plugin", type(sys)("fake_phenolab_plugin"))
    sys.modules["fake_phenolab_plugin"].register = lambda: calls.append("called")
    sys.modules["fake_phenolab_plugin"].VALUE = 3
    eps = [EntryPoint("callable", "fake_phenolab_plugin:register", plugins_mod.GROUP),
           EntryPoint("module", "json", plugins_mod.GROUP),
           EntryPoint("not-callable", "fake_phenolab_plugin:VALUE", plugins_mod.GROUP)]
    monkeypatch.setattr(plugins_mod, "entry_points", lambda group: eps if group == plugins_mod.GROUP else [])
    monkeypatch.setattr(plugins_mod, "_STATUS", None)
    with caplog.at_level(logging.WARNING, logger="phenolab.plugins"):
        status = {s.name: s for s in plugins_mod.load_plugins()}
        plugins_mod.load_plugins()  # cached: nothing is called twice
    assert calls == ["called"]
    assert status["callable"].loaded and status["module"].loaded and not status["not-callable"].loaded
    assert "not a callable or module" in status["not-callable"].error
    assert [r.getMessage() for r in caplog.records] == [
        "phenolab: plug-in 'not-callable' (fake_phenolab_plugin:VALUE, from ?) was not loaded: "
        "TypeError: entry point target is a int, not a callable or module"]
    plugins_mod.load_plugins(reload=True)
    assert calls == ["called", "called"]


def test_parity_labels_are_the_parity_of_the_first_k_bits(plugin_site, monkeypatch):
    monkeypatch.syspath_prepend(str(plugin_site))
    from phenolab_example_plugin.parity import SparseParityTask, build_sparse_parity

    cfg = SparseParityTask(name="sparse_parity", n_bits=6, k=2, n_train=64, n_test=32)
    data = build_sparse_parity(cfg, [0, 1], "features", torch.float32)
    assert data.x_train.shape == (2, 64, 6) and data.num_classes == 2
    flips = (data.x_train[..., :2] < 0).sum(-1) % 2
    assert torch.equal(flips, data.y_train)
    assert not torch.equal(data.x_train[0], data.x_train[1])  # each seed its own draw
    again = build_sparse_parity(cfg, [1], "features", torch.float32)
    assert torch.equal(again.x_train[0], data.x_train[1])  # a replica's data do not depend on its batch


# ---- the phenomenon -----------------------------------------------------------------------------
def test_importing_the_phenomenon_registers_nothing_and_its_run_signature_reads_curves(plugin_site, monkeypatch):
    monkeypatch.syspath_prepend(str(plugin_site))
    from phenolab_example_plugin.hidden_progress import signature

    from phenolab.phenomena import PHENOMENA
    from phenolab.settings import NAMED_SETTINGS

    assert "sparse-parity" not in PHENOMENA and "sparse_parity_demo" not in NAMED_SETTINGS
    steps = np.array([0, 10, 20, 40, 80, 160])
    acc = np.array([0.5, 0.5, 0.51, 0.6, 0.995, 1.0])
    share = np.array([0.1, 0.12, 0.15, 0.3, 0.5, 0.9])
    curves = {"test_acc": (steps, acc), "train_acc": (steps, acc), MEASURE: (steps, share)}
    sig = signature.run_signature_of(MEASURE, 0.99).fn(curves)
    # t_learn 80, the evaluation nearest 40 is 40: (0.3 − 0.1) / (0.5 − 0.1)
    assert sig["outcome"] == "learned" and sig["t_learn"] == 80 and sig["half_step"] == 40
    assert sig["progress_before_jump"] == pytest.approx(0.5) and sig["test_acc_at_half"] == 0.6
    assert sig["final_share"] == 0.9 and sig["budget"] == 160
    looser = signature.run_signature_of(MEASURE, 0.55).fn(curves)  # the threshold is the option's
    assert looser["t_learn"] == 40 and looser["half_step"] == 20
    never = signature.run_signature_of(MEASURE, 0.99).fn({**curves, "test_acc": (steps, np.full(6, 0.5))})
    assert never["outcome"] == "not learned" and never["t_learn"] is None and never["progress_before_jump"] is None
    # every key a run or a summary carries explains itself
    assert all(key in signature.FIELDS for key in [*sig, "run_id", "seed", "outcomes", "n_runs"])


@pytest.mark.slow
def test_reproduce_prints_the_self_describing_signature_and_draws_the_figure(reproduced):
    out = reproduced
    assert out["phenomenon"] == "sparse-parity" and out["setting"] == "sparse_parity_demo" and out["trained"] == 2
    assert out["threshold"] == 0.99 and out["share_metric"] == MEASURE
    for key in ("t_learn", "share_at_start", "share_at_half", "progress_before_jump", "final_test_acc"):
        assert set(out[key]) == {"mean", "sd", "n"}, key
        assert out["fields"][key]["description"], key
    assert out["outcomes"] == {"learned": 2, "not learned": 0} and out["n_runs"] == 2
    assert out["fields"]["t_learn"]["unit"] == "steps"
    assert "relevant bits" in out["fields"]["share_at_start"]["description"]
    assert [r["seed"] for r in out["per_run"]] == [0, 1]
    assert {"run_id", "outcome", "t_learn", "progress_before_jump"} <= set(out["per_run"][0])
    assert set(out["fields"]) >= set(out["per_run"][0])  # per-run keys are described too
    assert Path(out["figure"]).is_file() and Path(out["figure"]).stat().st_size > 10_000


@pytest.mark.slow
def test_the_measured_signature_shows_hidden_progress(reproduced):
    """Measured (2-core CPU): t_learn 122 and 165, progress_before_jump 0.52 and 0.45, the share
    0.146 → 0.27 at half → 0.39-0.43 at t_learn. A share that did not move before accuracy did (or a
    measure of the wrong bits) fails this."""
    for run in reproduced["per_run"]:
        assert run["outcome"] == "learned" and 60 <= run["t_learn"] <= 250, run
        assert abs(run["share_at_start"] - 3 / 20) < 0.02  # k/n at a random init
        assert run["share_at_start"] < run["share_at_half"] < run["share_at_learn"] < run["final_share"]
        assert 0.25 < run["progress_before_jump"] < 0.8, run
        assert run["final_test_acc"] >= 0.99
    assert 0.25 < reproduced["progress_before_jump"]["mean"] < 0.8


def test_reproduce_help_shows_the_option_and_a_bad_value_is_one_line(plugin_site, tmp_path):
    proc = run_subprocess("reproduce", "sparse-parity", "--help", cwd=tmp_path, path=plugin_site, COLUMNS="200")
    assert proc.returncode == 0, proc.stderr
    assert "--accuracy-threshold" in proc.stdout and "counts as learned" in proc.stdout
    assert "sparse_parity_demo" in proc.stdout and "sparse_parity_sgd" in proc.stdout
    bad = run_subprocess("reproduce", "sparse-parity", "--accuracy-threshold", "2", "--catalog", tmp_path / "cat",
                         cwd=tmp_path, path=plugin_site)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip().splitlines() == ["error: --accuracy-threshold 2.0: input should be less than or "
                                               "equal to 1"]
    assert not (tmp_path / "cat").exists() and not (tmp_path / "phenolab-catalog").exists()


@pytest.mark.slow
def test_phase_maps_the_outcome_and_reads_the_threshold_option(plugin_site, study_catalog):
    cwd = study_catalog.parent
    proc = run_subprocess("phase", "sparse-parity", *PHASE, "--catalog", study_catalog, "--json", cwd=cwd,
                          path=plugin_site)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["field"] == "outcome" and out["trained"] == 8 and Path(out["figure"]).is_file()
    table = {(r["task.n_bits"], r["model.width"]): r for r in out["table"]}
    assert set(table) == {(10, 32), (10, 128), (30, 32), (30, 128)}
    assert all(r["n"] == 2 and r["value"] in ("learned", "not learned") for r in table.values())
    assert table[10, 32]["value"] == table[10, 128]["value"] == "learned"
    assert {"n_learned", "n_not learned"} <= set(out["table"][0])
    # the option reaches every cell's per-run signature: t_learn at 60% test accuracy, checked by hand
    proc = run_subprocess("phase", "sparse-parity", *PHASE, "--metric", "t_learn", "--accuracy-threshold", "0.6",
                          "--catalog", study_catalog, "--json", cwd=cwd, path=plugin_site)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["trained"] == 0
    catalog = Catalog(study_catalog)
    for row in out["table"]:
        runs = catalog.runs(setting_id=row["setting_id"])
        acc = [c["test_acc"] for c in catalog.curve_arrays(list(runs["run_id"]), ["test_acc"]).values()]
        at_60, at_99 = (first_steps_at(acc, t) for t in (0.6, 0.99))
        assert row["n"] == len(at_60) and row["n_missing"] == 2 - len(at_60)
        assert row["mean"] == (pytest.approx(np.mean(at_60)) if at_60 else None)
        if at_99:
            assert row["mean"] < np.mean(at_99)
    assert sum(r["n"] for r in out["table"]) >= 4  # the 10-bit cells at least


def first_steps_at(curves: list[tuple[np.ndarray, np.ndarray]], threshold: float) -> list[float]:
    """Per run that reaches `threshold`, the first evaluated step at or above it."""
    return [float(steps[np.argmax(v >= threshold)]) for steps, v in curves if (v >= threshold).any()]


@pytest.mark.slow
def test_report_shows_the_plugin_study_with_its_field_descriptions(plugin_site, study_catalog, reproduced, tmp_path):
    site = tmp_path / "site"
    proc = run_subprocess("report", "--catalog", study_catalog, "--out", site, cwd=tmp_path, path=plugin_site)
    assert proc.returncode == 0, proc.stderr
    pages = list(site.glob("phenomenon-sparse-parity-sparse_parity_demo-*.html"))
    assert len(pages) == 1
    html = pages[0].read_text()
    assert "progress_before_jump" in html and "the first half of the wait for accuracy" in html
    assert "first evaluated step with test accuracy ≥ the threshold" in html and "fraction" in html
    assert "phenolab reproduce sparse-parity" in html  # the command that reruns it
    index = (site / "index.html").read_text()
    assert "sparse-parity" in index and "hidden progress on sparse parity" in index
    assert "sparse_parity_sgd" in index and pages[0].name in index


def test_without_the_plugin_the_phenomenon_is_unknown(tmp_path):
    proc = run_subprocess("reproduce", "sparse-parity", "--catalog", tmp_path / "cat", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: unknown phenomenon 'sparse-parity'"), proc.stderr
    assert not (tmp_path / "cat").exists()
