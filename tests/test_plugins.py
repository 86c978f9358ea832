"""Plug-ins through the `phenolab.plugins` entry-point group: the example package in
examples/plugin/ is pip-installed from its folder and used through the real CLI; a broken
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

import pytest
import torch

from phenolab import Catalog
from phenolab import plugins as plugins_mod

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "plugin"
MEASURE = "relevant_input_weight_share(k=3)"
SMALL = ["--set", "schedule.steps=40", "--set", "model.width=64", "--set", "task.n_train=200",
         "--set", "task.n_test=200", "--set", "eval.points=6", "--set", "checkpoints=final"]


def phenolab_cli(*args: object, path: Path | None, cwd: Path) -> subprocess.CompletedProcess:
    """The installed CLI's entry point in a fresh interpreter, with `path` (a pip --target) importable."""
    env = dict(os.environ, PHENOLAB_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(path) if path else "", env.get("PYTHONPATH", "")) if p)
    return subprocess.run([sys.executable, "-c", "from phenolab.cli import main; main()", *map(str, args)],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


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


def test_plugin_task_and_measure_train_through_the_cli(plugin_site, tmp_path):
    cat = tmp_path / "cat"
    proc = phenolab_cli("train", "sparse_parity_demo", *SMALL, "--seeds", "0-1", "--catalog", cat, "--json",
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
    proc = phenolab_cli("train", "sparse_parity_demo", "--catalog", tmp_path / "cat", path=None, cwd=tmp_path)
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
    proc = phenolab_cli("settings", "--json", path=Path(f"{plugin_site}{os.pathsep}{broken}"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    names = {row["name"]: row for row in json.loads(proc.stdout)}
    assert "sparse_parity_demo" in names and "Barak et al. 2022" in names["sparse_parity_demo"]["source"]
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
