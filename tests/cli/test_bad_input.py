"""Bad input to sweep / phase / export / import, through the real entry point: one line naming the
problem and what is allowed, a non-zero exit, and catalog files left byte for byte as they were."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from phenolab.catalog import Catalog, RunRecord
from phenolab.catalog.schema import APPLICATION_ID
from phenolab.settings import resolve_setting
from tests.helpers import run_main


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """A catalog with two stored runs, plus a non-SQLite file, a foreign SQLite file, a catalog
    from a newer schema, and sweep files that are broken in different ways."""
    root = tmp_path_factory.mktemp("bad")
    setting = resolve_setting("gromov2023", {"task.p": 13})
    steps = np.arange(5)
    recs = [RunRecord(setting.id, s, {"test_acc": (steps, steps / 4.0)}, {"final_test_acc": 1.0}, {}, 0.0, 1.0, 1.0)
            for s in (0, 1)]
    Catalog(root / "main.db").write_runs(setting.canonical_json(), setting.id, recs)
    (root / "text.db").write_text("these are not the runs you are looking for\n")
    conn = sqlite3.connect(root / "foreign.db")
    conn.execute("CREATE TABLE experiments(id INTEGER PRIMARY KEY, name TEXT)")
    conn.commit()
    conn.close()
    Catalog(root / "newer.db").write_runs(setting.canonical_json(), setting.id, recs[:1])
    conn = sqlite3.connect(root / "newer.db")
    conn.execute("PRAGMA user_version=99")
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    conn.close()
    (root / "syntax.yaml").write_text("base: gromov2023\ngrid: {model.width: [8, 16\n")
    (root / "unknown_key.yaml").write_text("base: gromov2023\ngird: {model.width: [8]}\n")
    (root / "no_base.yaml").write_text("grid: {model.width: [8]}\n")
    (root / "bad_seeds.yaml").write_text("base: gromov2023\nseeds: [0, -1]\n")
    (root / "full").mkdir()
    (root / "full" / "x.txt").write_text("occupied")
    return {p.name: p for p in root.iterdir()}


def fingerprint(paths: list[Path]) -> dict[str, tuple[str, int]]:
    return {p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) for p in paths}


S = ["sweep", "gromov2023"]
CASES = [
    # (args, catalog file to pass, fragments the one line must contain); @name is a path in the fixture's folder
    ([*S, "--grid", "model.widht=8,16"], "main.db", ["unknown field 'model.widht'", "allowed:"]),
    ([*S, "--grid", "model.width=eight,16"], "main.db", ["model.width", "'eight'", "integer"]),
    ([*S, "--grid", "task.train_fraction=0.5,1.5"], "main.db", ["task.train_fraction", "1.5", "less than 1"]),
    ([*S, "--grid", "model.width=0,8"], "main.db", ["model.width", "greater than or equal to 1"]),
    ([*S, "--grid", "task.op=+,%"], "main.db", ["task.op", "'%'", "'+'"]),
    ([*S, "--grid", "model.width="], "main.db", ["no values for model.width", "start:stop:num"]),
    ([*S, "--grid", "model.width=8,,16"], "main.db", ["empty value"]),
    ([*S, "--grid", "model.width=1:10"], "main.db", ["bad range '1:10'", "start:stop:num"]),
    ([*S, "--grid", "model.width=1:x:3"], "main.db", ["bad range", "numbers"]),
    ([*S, "--grid", "optim.lr=0:1:3:log"], "main.db", ["log range needs start > 0"]),
    ([*S, "--grid", "optim.lr=0.1:1:0"], "main.db", ["num must be between 1 and"]),
    ([*S, "--grid", "model.width"], "main.db", ["expected FIELD=v1,v2"]),
    ([*S, "--grid", "model.width=8", "--grid", "model.width=16"], "main.db", ["given twice"]),
    ([*S, "--set", "model.width=8", "--grid", "model.width=16,32"], "main.db", ["also fixed by --set"]),
    (["sweep", "no_such_setting"], "main.db", ["unknown setting 'no_such_setting'", "gromov2023"]),
    (["sweep"], "main.db", ["give a BASE_SETTING"]),
    ([*S, "--set", 'measures=["no_such_measure"]'], "main.db", ["unknown measure 'no_such_measure'", "allowed"]),
    ([*S, "--seeds", "5-2"], "main.db", ["--seeds '5-2'", "low-high"]),
    ([*S, "--seeds", "a-b"], "main.db", ["--seeds 'a-b'", "e.g. 0-7"]),
    ([*S, "--executor", "spark"], "main.db", ["--executor 'spark'", "local, ray"]),
    ([*S, "--address", "10.0.0.1:6379"], "main.db", ["--address is for --executor ray"]),
    ([*S, "--max-replicas", "0"], "main.db", ["--max-replicas 0", "between 1 and"]),
    (["sweep", "--file", "@syntax.yaml"], "main.db", ["does not parse"]),
    (["sweep", "--file", "@unknown_key.yaml"], "main.db", ["unknown key 'gird'", "base, set, grid, seeds"]),
    (["sweep", "--file", "@no_base.yaml"], "main.db", ["'base' must name a setting"]),
    (["sweep", "--file", "@bad_seeds.yaml"], "main.db", ["seeds must be a non-empty list of integers"]),
    (["sweep", "--file", "@missing.yaml"], "main.db", ["does not exist"]),
    ([*S, "--set", "task.p=13"], "text.db", ["not a phenolab catalog (not an SQLite database)"]),
    ([*S, "--set", "task.p=13"], "foreign.db", ["not a phenolab catalog", "tables: experiments"]),
    ([*S, "--set", "task.p=13"], "newer.db", ["newer phenolab (schema 99", "upgrade phenolab"]),
    (["phase", "no_such_phenomenon", "--grid", "a=1", "--grid", "b=2"], "main.db",
     ["unknown phenomenon 'no_such_phenomenon'", "grokking"]),
    (["phase", "grokking", "--grid", "task.train_fraction=0.2,0.4"], "main.db", ["exactly two --grid factors"]),
    (["phase", "grokking", "--setting", "mnist1d_mlp", "--grid", "a=1", "--grid", "b=2"], "main.db",
     ["not a grokking setting", "gromov2023"]),
    (["phase", "grokking", "--metric", "no_such_field", "--grid", "task.train_fraction=0.2,0.4", "--grid",
      "optim.weight_decay=0,1"], "main.db", ["--metric 'no_such_field'", "t_test"]),
    (["phase", "grokking", "--seeds", "0", "--grid", "task.p=13", "--grid", "model.width=8"], "main.db",
     ["seeds 0: give at least 1"]),
    (["export"], "main.db", ["give OUT"]),
    (["export", "@new_bundle", "--where", "model.no_such_field=3"], "main.db",
     ["no stored setting has a field 'model.no_such_field'"]),
    (["export", "@new_bundle", "--where", "task.p=97"], "main.db", ["no runs selected"]),
    (["export", "@full"], "main.db", ["already exists"]),
    (["import", "@missing_bundle"], "main.db", ["is not a directory"]),
    (["import", "@full"], "main.db", ["no manifest.json; not a phenolab bundle"]),
    (["runs"], "newer.db", ["newer phenolab"]),
    (["train", "gromov2023", "--device", "foo"], "main.db", ["device 'foo'", "allowed auto, cpu, cuda or cuda:N"]),
    (["reproduce", "grokking", "--device", "cuda:7"], "main.db", ["device 'cuda:7'", "CUDA GPU"]),
    ([*S, "--grid", "model.width=8", "--device", "mps"], "main.db", ["device 'mps'", "allowed"]),
    ([*S, "--grid", "model.width=8", "--device", "cuda:7"], "main.db", ["device 'cuda:7'", "CUDA GPU"]),
]


@pytest.mark.parametrize("args, catalog, fragments", CASES, ids=[" ".join(c[0])[:60] for c in CASES])
def test_bad_input_is_one_line_nonzero_and_leaves_the_catalog_alone(files, args, catalog, fragments, capsys,
                                                                    monkeypatch):
    root = files["main.db"].parent
    args = [str(root / a[1:]) if a.startswith("@") else a for a in args]  # @name: a file beside the catalogs
    watched = [p for p in root.iterdir() if p.suffix == ".db"]
    before = fingerprint(watched)
    code, _, err = run_main(monkeypatch, capsys, *args, "--catalog", str(files[catalog]))
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code != 0, err
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    for frag in fragments:
        assert frag in lines[0], lines[0]
    assert fingerprint(watched) == before
    assert not (root / "new_bundle").exists()
    assert sorted(p.name for p in root.iterdir() if p.suffix == ".db") == sorted(before)


def test_there_are_at_least_twenty_cases():
    assert len(CASES) >= 20
