"""Bundles: export → import round trip is exact (runs, curves, checkpoints), importing twice
changes nothing, nothing is unpickled, and corrupted or hand-edited bundles are refused."""

from __future__ import annotations

import gzip
import hashlib
import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import phenolab
from phenolab.catalog import Catalog, RunRecord
from phenolab.catalog.bundle import BUNDLE_VERSION
from phenolab.settings import resolve_setting
from tests.helpers import run_main

RUN_COLS = ["run_id", "setting_id", "seed", "task", "model", "status", "started", "finished", "wall_s",
            "batch_id", "replicas_in_batch", "final_train_acc", "final_test_acc", "final_test_loss", "final_step"]


def fingerprint(path: Path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Catalog:
    """Real runs: two settings × two seeds, with final checkpoints."""
    cat = Catalog(tmp_path_factory.mktemp("src") / "catalog.db")
    for frac in (0.3, 0.6):
        s = resolve_setting("gromov2023", {"task.p": 13, "schedule.steps": 30, "task.train_fraction": frac,
                                           "checkpoints": "final"})
        phenolab.run(s, [0, 1], cat, device="cpu")
    return cat


@pytest.fixture(scope="module")
def bundle(source, tmp_path_factory) -> Path:
    from phenolab.catalog.bundle import export_bundle

    out = tmp_path_factory.mktemp("b") / "bundle"
    export_bundle(source, out, list(source.runs(where={"task.train_fraction": 0.3})["run_id"]))
    return out


def test_round_trip_is_exact_and_importing_twice_changes_nothing(source, tmp_path, capsys, monkeypatch):
    out = tmp_path / "exported"
    code, text, err = run_main(monkeypatch, capsys, "export", str(out), "--where", "task.train_fraction=0.3",
                               "--catalog", str(source.path), "--json")
    assert code == 0, err
    assert json.loads(text)["runs"] == 2 and json.loads(text)["checkpoints"] == 2
    manifest = json.loads((out / "manifest.json").read_text())
    for name, entry in manifest["files"].items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == entry["sha256"]
    assert not [p for p in out.rglob("*") if p.suffix in (".pkl", ".pt", ".pickle")]

    dest = Catalog(tmp_path / "dest" / "catalog.db")
    code, text, err = run_main(monkeypatch, capsys, "import", str(out), "--catalog", str(dest.path), "--json")
    assert code == 0 and json.loads(text)["imported"] == 2, err

    src_runs = source.runs(where={"task.train_fraction": 0.3})
    got = dest.runs()
    pd.testing.assert_frame_equal(got[RUN_COLS].reset_index(drop=True), src_runs[RUN_COLS].reset_index(drop=True))
    ids = list(src_runs["run_id"])
    pd.testing.assert_frame_equal(dest.curves(run_ids=ids), source.curves(run_ids=ids))  # bit for bit
    for rid in ids:
        assert dest.run(rid)["provenance"] == source.run(rid)["provenance"]
        assert dest.setting(rid.rsplit("-", 1)[0]) == source.setting(rid.rsplit("-", 1)[0])
        a, b = dest.load_checkpoint(rid), source.load_checkpoint(rid)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert dest.integrity_check() == "ok"

    before = fingerprint(dest.path)
    code, text, _ = run_main(monkeypatch, capsys, "import", str(out), "--catalog", str(dest.path), "--json")
    assert code == 0 and json.loads(text) == {"bundle": str(out), "runs_in_bundle": 2, "imported": 0,
                                              "already_present": 2}
    assert fingerprint(dest.path) == before
    # into the catalog it came from: all present already
    code, text, _ = run_main(monkeypatch, capsys, "import", str(out), "--catalog", str(source.path), "--json")
    assert code == 0 and json.loads(text)["imported"] == 0 and len(source.runs()) == 4


def test_import_never_unpickles(bundle, tmp_path, monkeypatch):
    from phenolab.catalog.bundle import import_bundle

    def refuse(*_a, **_k):
        raise AssertionError("something was unpickled")

    for mod, name in ((pickle, "loads"), (pickle, "load"), (pickle, "Unpickler"), (torch, "load")):
        monkeypatch.setattr(mod, name, refuse)
    report = import_bundle(Catalog(tmp_path / "c.db"), bundle)
    assert len(report.written) == 2


def _fix_sha(root: Path, name: str) -> None:
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["files"][name]["sha256"] = hashlib.sha256((root / name).read_bytes()).hexdigest()
    (root / "manifest.json").write_text(json.dumps(manifest))


def _edit_manifest(root: Path, fn) -> None:
    manifest = json.loads((root / "manifest.json").read_text())
    fn(manifest)
    (root / "manifest.json").write_text(json.dumps(manifest))


def _flip_byte(root: Path) -> None:
    data = bytearray((root / "curve_blobs.parquet").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (root / "curve_blobs.parquet").write_bytes(bytes(data))


def _edit_setting(root: Path) -> None:  # a hand edit, with the sha made to match
    line = json.loads((root / "settings.jsonl").read_text().splitlines()[0])
    setting = json.loads(line["json"])
    setting["optim"]["lr"] = 0.5
    line["json"] = json.dumps(setting)
    (root / "settings.jsonl").write_text(json.dumps(line) + "\n")
    _fix_sha(root, "settings.jsonl")


def _edit_seed(root: Path) -> None:
    lines = [json.loads(x) for x in gzip.decompress((root / "runs.jsonl.gz").read_bytes()).splitlines()]
    lines[0]["seed"] = 7
    (root / "runs.jsonl.gz").write_bytes(gzip.compress("".join(json.dumps(x) + "\n" for x in lines).encode()))
    _fix_sha(root, "runs.jsonl.gz")


def _drop_run(root: Path) -> None:
    lines = gzip.decompress((root / "runs.jsonl.gz").read_bytes()).splitlines()
    (root / "runs.jsonl.gz").write_bytes(gzip.compress(lines[0] + b"\n"))
    _fix_sha(root, "runs.jsonl.gz")


def _delete_checkpoint(root: Path) -> None:
    next(root.glob("checkpoints/*/*.safetensors")).unlink()


def _traversal(root: Path) -> None:
    _edit_manifest(root, lambda m: m["files"].update({"../../etc/passwd": {"sha256": "0" * 64}}))


TAMPERS = [
    (_flip_byte, "curve_blobs.parquet does not match its sha256"),
    (_edit_setting, "does not match its JSON (content id"),
    (_edit_seed, "is not '<setting_id>-<seed>'"),
    (_drop_run, "which the bundle's runs lack"),
    (_delete_checkpoint, "is missing"),
    (lambda r: (r / "notes.txt").write_text("hi"), "notes.txt is not listed in manifest.json"),
    (lambda r: _edit_manifest(r, lambda m: m.update(version=BUNDLE_VERSION + 1)), "written by a newer phenolab"),
    (lambda r: (r / "manifest.json").write_text("{not json"), "manifest.json is not valid JSON"),
    (lambda r: (r / "manifest.json").unlink(), "no manifest.json"),
    (lambda r: _edit_manifest(r, lambda m: m["counts"].update(runs=3)), "manifest counts 3 runs"),
    (_traversal, "unexpected file name '../../etc/passwd'"),
]


@pytest.mark.parametrize("tamper, fragment", TAMPERS, ids=[f for _, f in TAMPERS])
def test_corrupted_or_edited_bundles_are_refused_and_nothing_is_written(bundle, tamper, fragment, tmp_path, capsys,
                                                                         monkeypatch):
    bad = tmp_path / "bad"
    shutil.copytree(bundle, bad)
    tamper(bad)
    target = Catalog(tmp_path / "t.db")
    s = resolve_setting("gromov2023", {"task.p": 13})
    target.write_runs(s.canonical_json(), s.id, [RunRecord(s.id, 0, {"x": (np.arange(3), np.ones(3))}, {}, {},
                                                           0.0, 1.0, 1.0)])
    before = fingerprint(target.path)
    code, _, err = run_main(monkeypatch, capsys, "import", str(bad), "--catalog", str(target.path))
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and fragment in lines[0], err
    assert fingerprint(target.path) == before
    assert not (target.root / "checkpoints").exists()
