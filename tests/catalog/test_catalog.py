"""The catalog: round trips, skipping duplicates, refusing foreign files, concurrency, atomicity."""

from __future__ import annotations

import multiprocessing as mp
import pickle
import sqlite3
from pathlib import Path

import numpy as np
import pytest
import torch

from phenolab.catalog import SCHEMA_VERSION, Catalog, CatalogError, RunRecord, collect_provenance, run_id_for
from phenolab.catalog import store as store_mod
from phenolab.settings import Setting, named_setting


def _setting(width: int = 128) -> Setting:
    return named_setting("mnist1d_mlp").with_overrides({"model.width": width})


def _record(setting: Setting, seed: int, points: int = 30, checkpoints: dict | None = None) -> RunRecord:
    steps = np.unique(np.geomspace(1, 10_000, points).astype(np.int64))
    rng = np.random.default_rng(seed)
    curves = {"train_loss": (steps, rng.random(steps.size)), "test_acc": (steps, rng.random(steps.size))}
    return RunRecord(
        setting_id=setting.id,
        seed=seed,
        curves=curves,
        summary={**{m: float(v[-1]) for m, (_, v) in curves.items()}, "grok": {"step": 42.0}},
        provenance={"device": "cpu", "threads": 1, "seed_arr": np.int64(seed)},
        started=1000.0 + seed,
        finished=1010.0 + seed,
        wall_s=10.0,
        batch_id="b0",
        replicas_in_batch=4,
        checkpoints=checkpoints or {},
    )


def _write(cat: Catalog, setting: Setting, seeds, **kw) -> list[str]:
    return cat.write_runs(setting.canonical_json(), setting.id, [_record(setting, s, **kw) for s in seeds])


def test_round_trip(tmp_path: Path) -> None:
    cat, s = Catalog(tmp_path / "c.db"), _setting()
    assert _write(cat, s, [0, 1, 2]) == [run_id_for(s.id, k) for k in (0, 1, 2)]
    df = cat.runs()
    assert list(df["seed"]) == [0, 1, 2] and set(df["task"]) == {"mnist1d"} and set(df["model"]) == {"mlp"}
    assert {"train_loss", "test_acc", "grok.step", "replicas_in_batch", "wall_s"} <= set(df.columns)
    rec = _record(s, 1)
    row = df[df["seed"] == 1].iloc[0]
    assert row["train_loss"] == rec.summary["train_loss"] and row["grok.step"] == 42.0
    cv = cat.curves(run_ids=[rec.run_id], metrics=["test_acc"])
    assert list(cv.columns) == ["run_id", "setting_id", "seed", "metric", "step", "value"]
    np.testing.assert_array_equal(cv["step"].to_numpy(), rec.curves["test_acc"][0])
    np.testing.assert_array_equal(cv["value"].to_numpy(), rec.curves["test_acc"][1])
    assert len(cat.curves(setting_id=s.id)) == 3 * 2 * rec.curves["test_acc"][0].size
    one = cat.run(rec.run_id)
    assert one["provenance"] == {"device": "cpu", "threads": 1, "seed_arr": 1}
    assert one["summary"]["grok"] == {"step": 42.0} and one["metrics"] == ["test_acc", "train_loss"]
    assert cat.setting(s.id) == s.model_dump(mode="json")
    assert list(cat.settings()["runs"]) == [3]
    assert cat.existing_seeds(s.id) == {0, 1, 2} and cat.count_runs() == 3
    assert cat.integrity_check() == "ok" and pickle.loads(pickle.dumps(cat)).path == cat.path
    with pytest.raises(CatalogError, match="no run"):
        cat.run("nope-1")
    with pytest.raises(CatalogError, match="no setting"):
        cat.setting("0" * 16)


def test_duplicates_skipped_and_notes(tmp_path: Path) -> None:
    cat, s = Catalog(tmp_path), _setting()
    assert cat.path == tmp_path / "catalog.db" and cat.root == tmp_path
    _write(cat, s, [0, 1])
    assert _write(cat, s, [1, 2, 2]) == [run_id_for(s.id, 2)]
    n_steps = _record(s, 0).curves["test_acc"][0].size
    assert cat.count_runs() == 3 and len(cat.curves()) == 3 * 2 * n_steps
    nid = cat.add_note("signature", "grokking", {"delay": 1.5, "nan": float("nan"), "inf": float("-inf")})
    (note,) = cat.notes("signature")
    assert note["id"] == nid and note["key"] == "grokking" and note["obj"]["delay"] == 1.5
    assert note["obj"]["nan"] is None and note["obj"]["inf"] == float("-inf")
    assert cat.notes("hypothesis") == []


def test_where_filter(tmp_path: Path) -> None:
    cat, a, b = Catalog(tmp_path), _setting(64), _setting(128)
    _write(cat, a, [0, 1])
    _write(cat, b, [0, 1, 2])
    assert set(cat.runs(where={"model.width": 128})["setting_id"]) == {b.id}
    assert len(cat.runs(where={"model.width": 64, "task.name": "mnist1d"})) == 2
    assert len(cat.runs(setting_id=a.id, where={"model.width": 128})) == 0
    measures = [{"name": "weight_norm", "params": {}}, {"name": "distance_from_init", "params": {}}]
    assert len(cat.runs(where={"measures": measures})) == 5
    assert len(cat.runs(where={"measures[0].name": "weight_norm", "schedule.steps": None})) == 5
    assert len(cat.runs(where={"optim.nesterov": False, "optim.lr": 1e-3})) == 5
    assert len(cat.runs(where={"optim.nesterov": True})) == 0
    with pytest.raises(CatalogError, match="no stored setting has a field 'model.widht'"):
        cat.runs(where={"model.widht": 128})
    with pytest.raises(CatalogError, match="bad setting field"):
        cat.runs(where={"model.width') OR 1=1 --": 1})


def test_checkpoint_round_trip_and_sha(tmp_path: Path) -> None:
    cat, s = Catalog(tmp_path), _setting()
    big = torch.randn(4, 3, 5)  # a replica-stacked tensor: slices share its storage
    ck = {10: {"W1": big[1], "b1": torch.zeros(5)}, 100: {"W1": big[2], "b1": torch.ones(5)}}
    (rid,) = _write(cat, s, [7], checkpoints=ck)
    assert cat.run(rid)["checkpoints"] == [10, 100]
    torch.testing.assert_close(cat.load_checkpoint(rid)["W1"], big[2])
    torch.testing.assert_close(cat.load_checkpoint(rid, 10)["b1"], torch.zeros(5))
    with pytest.raises(CatalogError, match="no checkpoint at step 5"):
        cat.load_checkpoint(rid, 5)
    f = tmp_path / "checkpoints" / rid / "step-100.safetensors"
    data = bytearray(f.read_bytes())
    data[-1] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(CatalogError, match="modified or is corrupt"):
        cat.load_checkpoint(rid)
    assert not list((tmp_path / "checkpoints").rglob("*.tmp"))


@pytest.mark.parametrize("kind", ["foreign_sqlite", "not_sqlite"])
def test_foreign_files_refused_unchanged(tmp_path: Path, kind: str) -> None:
    p = tmp_path / "other.db"
    if kind == "foreign_sqlite":
        con = sqlite3.connect(p)
        con.execute("CREATE TABLE people(name TEXT)")
        con.commit()
        con.close()
    else:
        p.write_bytes(b"name,age\nada,36\n" * 20)
    before = p.read_bytes()
    s = _setting()
    for op in (lambda c: c.runs(), lambda c: _write(c, s, [0]), lambda c: c.count_runs()):
        with pytest.raises(CatalogError, match=r"is not a phenolab catalog \(") as err:
            op(Catalog(p))
        assert "\n" not in str(err.value)
    assert p.read_bytes() == before and sorted(x.name for x in tmp_path.iterdir()) == ["other.db"]


def test_newer_schema_refused(tmp_path: Path) -> None:
    cat, s = Catalog(tmp_path), _setting()
    _write(cat, s, [0])
    con = sqlite3.connect(cat.path)
    con.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    con.commit()
    con.close()
    before = cat.path.read_bytes()
    msg = rf"newer phenolab \(schema {SCHEMA_VERSION + 1}; this version reads ≤ {SCHEMA_VERSION}\)"
    with pytest.raises(CatalogError, match=msg):
        cat.runs()
    with pytest.raises(CatalogError, match=msg):
        _write(cat, s, [1])
    assert cat.path.read_bytes() == before


def test_reading_missing_catalog_creates_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHENOLAB_CATALOG", str(tmp_path / "sub" / "cat"))
    cat = Catalog()
    assert cat.path == tmp_path / "sub" / "cat" / "catalog.db"
    assert cat.runs().empty and list(cat.runs().columns)[:3] == ["run_id", "setting_id", "seed"]
    assert cat.curves().empty and cat.settings().empty and cat.existing_seeds("x") == set()
    assert cat.count_runs() == 0 and cat.notes("k") == [] and cat.integrity_check() == "ok"
    with pytest.raises(CatalogError, match="no checkpoints"):
        cat.load_checkpoint("x-0")
    assert list(tmp_path.iterdir()) == []
    cat.add_note("k", None, [1])  # a write creates it
    assert cat.path.exists() and cat.notes("k")[0]["obj"] == [1]


def test_setting_id_must_match(tmp_path: Path) -> None:
    s = _setting()
    with pytest.raises(CatalogError, match="does not match"):
        Catalog(tmp_path).write_runs(s.canonical_json(), "0123456789abcdef", [])
    assert not (tmp_path / "catalog.db").exists()


def test_failed_transaction_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cat, s = Catalog(tmp_path), _setting()
    real, calls = store_mod._insert_run, []

    def flaky(conn, rec):
        calls.append(rec.run_id)
        if len(calls) == 2:
            raise RuntimeError("disk on fire")
        real(conn, rec)

    monkeypatch.setattr(store_mod, "_insert_run", flaky)
    with pytest.raises(RuntimeError, match="disk on fire"):
        _write(cat, s, [0, 1, 2], checkpoints={5: {"w": torch.ones(2)}})
    assert len(calls) == 2
    assert cat.count_runs() == 0 and cat.curves().empty and cat.settings().empty
    assert not [f for f in (tmp_path / "checkpoints").rglob("*") if f.is_file()]
    monkeypatch.setattr(store_mod, "_insert_run", real)
    assert len(_write(cat, s, [0, 1, 2], checkpoints={5: {"w": torch.ones(2)}})) == 3
    assert cat.integrity_check() == "ok"


def _writer(path: str, offset: int, barrier) -> None:
    s = _setting()
    cat = Catalog(path)
    barrier.wait()
    for k in range(50):  # one transaction per run: as much contention as possible
        cat.write_runs(s.canonical_json(), s.id, [_record(s, offset + k, points=10)])


@pytest.mark.slow
def test_two_processes_write_concurrently(tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(2)
    path = str(tmp_path / "shared" / "catalog.db")  # neither process finds a catalog: both create it
    procs = [ctx.Process(target=_writer, args=(path, off, barrier)) for off in (0, 1000)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
    assert [p.exitcode for p in procs] == [0, 0]
    cat = Catalog(path)
    s = _setting()
    assert cat.count_runs() == 100 and cat.existing_seeds(s.id) == set(range(50)) | set(range(1000, 1050))
    assert len(cat.runs()) == 100 and cat.integrity_check() == "ok"
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_many_runs_round_trip(tmp_path: Path) -> None:
    # speed at scale is measured in bench/, not asserted here
    cat, s = Catalog(tmp_path), _setting()
    _write(cat, s, range(2000), points=400)  # ~200 distinct log-spaced steps each
    cv = cat.curves(metrics=["test_acc"])
    df = cat.runs(where={"model.width": 128})
    assert len(df) == 2000 and cv["run_id"].nunique() == 2000


def test_provenance() -> None:
    p = collect_provenance("cpu", 2)
    assert p["device"] == "cpu" and p["threads"] == 2 and p["torch"] == torch.__version__
    assert {"phenolab", "python", "numpy", "platform", "hostname", "git_commit", "git_dirty"} <= set(p)
    assert p["timestamp"].endswith("Z")
    assert collect_provenance("cpu", 2)["git_commit"] == p["git_commit"]  # cached lookup
