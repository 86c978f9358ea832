"""Compact curves: the codec gives back every bit, a schema-1 catalog written by phenolab 0.2 is
migrated in place with every curve bit-equal, its bundles still import, and a snapshot sees one state."""

from __future__ import annotations

import shutil
import sqlite3
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from phenolab.catalog import SCHEMA_VERSION, Catalog, CatalogError, RunRecord
from phenolab.catalog import migrations as migrations_mod
from phenolab.catalog.bundle import export_bundle, import_bundle
from phenolab.catalog.codec import (
    FLOAT32,
    FLOAT64,
    RATIO,
    RAW,
    SCALED,
    CodecError,
    decode_many,
    decode_steps,
    decode_values,
    encode_run,
    encode_steps,
    encode_values,
)
from phenolab.settings import resolve_setting

DATA = Path(__file__).parent / "data"


def bits(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a, dtype="<f8").view("<u8").tobytes()


# ---- the codec ------------------------------------------------------------------------------------
EDGE = [np.array([]), np.array([0.1]), np.array([np.nan, -0.0, np.inf, -np.inf]), np.array([5e-324, -2.5e-310]),
        np.array([-0.0, 0.0]), np.array([1e300, -1e300, 3.4e38]), np.full(50, 0.5), np.arange(10) / 3,
        np.array([np.float64(np.nan).view("<u8") | 1]).view("<f8")]  # a NaN with a payload


@pytest.mark.parametrize("values", EDGE, ids=range(len(EDGE)))
def test_codec_round_trips_edge_values(values):
    assert bits(decode_values(encode_values(values))) == bits(values)


def test_codec_picks_an_exact_form_and_round_trips_random_curves():
    rng = np.random.default_rng(0)
    curves = []
    for _ in range(600):
        n = int(rng.integers(0, 300))
        d = int(rng.integers(1, 100_000))
        curves += [rng.random(n), rng.random(n).astype(np.float32).astype(np.float64), rng.integers(0, d, n) / d,
                   rng.standard_normal(n) * 10.0 ** int(rng.integers(-300, 300)),
                   rng.integers(0, 2**62, n, dtype=np.int64).view(np.float64)]
    blobs = [encode_values(c) for c in curves]
    for c, got in zip(curves, decode_many(blobs), strict=True):
        assert got.dtype == np.float64 and bits(got) == bits(c)
    codecs = [b[0] & ~RAW for b in blobs[:5]]
    assert codecs[:3] == [FLOAT64, FLOAT32, RATIO]
    # what each form costs on 200 points of an accuracy (k/n), a float32 loss and float64 noise
    acc, loss = np.sort(rng.integers(0, 6586, 200)) / 6586, np.sort(rng.random(200)).astype(np.float32)
    assert len(encode_values(acc)) < 2 * 200 and len(encode_values(loss.astype(np.float64))) < 4 * 200
    assert len(encode_values(rng.random(200))) <= 8 * 200 + 14


def test_a_run_s_test_loss_is_stored_as_numerators_over_its_accuracy_s_denominator():
    """As `evaluate` computes them: test loss = Σ float32 pass loss × pass size / n_test, and
    test accuracy = correct / n_test; the numerators have far fewer significant bits than the values."""
    rng = np.random.default_rng(2)
    n_test, sizes = 6586, [2048, 2048, 2048, 442]
    passes = rng.random((200, len(sizes))).astype(np.float32).astype(np.float64)
    loss = (passes * np.array(sizes, dtype=np.float64)).sum(axis=1) / n_test
    acc = np.sort(rng.integers(0, n_test + 1, 200)) / n_test
    blobs = encode_run({"test_loss": loss, "test_acc": acc, "other": rng.random(200)})
    assert [blobs[m][0] & ~RAW for m in ("test_loss", "test_acc", "other")] == [SCALED, RATIO, FLOAT64]
    assert len(blobs["test_loss"]) < 0.85 * len(encode_values(loss))  # 16 of 52 mantissa bits are zeros
    back = decode_many(list(blobs.values()))
    assert [bits(b) for b in back] == [bits(loss), bits(acc), bits(decode_values(blobs["other"]))]


def test_steps_round_trip_any_int64_and_are_keyed_by_content():
    for steps in (np.array([], dtype=np.int64), np.array([0, 3, 2**40, -5]), np.array([-2**63, 2**63 - 1, 0]),
                  np.unique(np.geomspace(1, 10**6, 300).astype(np.int64))):
        key, blob = encode_steps(steps)
        got = decode_steps(blob)
        assert got.dtype == np.int64 and np.array_equal(got, steps)
        assert key == encode_steps(steps.copy())[0] != encode_steps(steps + 1)[0] or steps.size == 0


def test_corrupt_blobs_are_refused():
    blob = encode_values(np.random.default_rng(1).random(100))
    for bad in (blob[:3], bytes([99]) + blob[1:], blob[:-5], blob + b"x"):
        with pytest.raises(CodecError):
            decode_many([bad], strict=True)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = bytes([FLOAT64]) + (1).to_bytes(4, "little") + bytes([8]) + deflate.compress(bytes(10**7)) + deflate.flush()
    with pytest.raises(CodecError, match="past its end"):  # never inflated beyond the declared 8 bytes
        decode_many([bomb], strict=True)


# ---- migration of a schema-1 catalog ----------------------------------------------------------------
def v1_copy(tmp_path: Path) -> Path:
    """catalog-v1.db (written by phenolab 0.2, schema 1; make_v1_fixtures.py) with its checkpoints."""
    root = tmp_path / "v1"
    root.mkdir()
    shutil.copyfile(DATA / "catalog-v1.db", root / "catalog.db")
    shutil.copytree(DATA / "checkpoints", root / "checkpoints")
    return root / "catalog.db"


def raw_v1(path: Path) -> dict[tuple[str, str], tuple[bytes, bytes]]:
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
        return {(r, m): (s, v) for r, m, s, v in conn.execute("SELECT run_id, metric, steps, vals FROM curves")}


def test_a_schema_1_catalog_is_migrated_in_place_and_every_curve_reads_back_bit_equal(tmp_path):
    path = v1_copy(tmp_path)
    raw = raw_v1(path)
    with sqlite3.connect(path) as conn:
        runs_before = conn.execute("SELECT * FROM runs ORDER BY run_id").fetchall()
        notes_before = conn.execute("SELECT * FROM notes").fetchall()
    assert len(raw) > 50 and any(len(v) == 0 for _, v in raw.values())
    cat = Catalog(path)
    long = cat.curves()  # the first read migrates
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
        assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == "2"
        assert conn.execute("SELECT * FROM runs ORDER BY run_id").fetchall() == runs_before
        assert conn.execute("SELECT * FROM notes").fetchall() == notes_before
        assert {t for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")} == {
            "meta", "settings", "runs", "steps", "curves", "checkpoints", "notes"}
        assert conn.execute("SELECT COUNT(*) FROM steps").fetchone()[0] < len(raw) / 3  # shared step arrays
    arrays = cat.curve_arrays(sorted({r for r, _ in raw}))
    assert sum(len(m) for m in arrays.values()) == len(raw)
    for (rid, metric), (steps, vals) in raw.items():
        got_steps, got_vals = arrays[rid][metric]
        assert got_steps.astype("<i8").tobytes() == steps and bits(got_vals) == vals, (rid, metric)
    # the long table, as phenolab 0.2 built it from the raw rows
    expected = []
    for (rid, metric), (steps, vals) in sorted(raw.items()):
        s, v = np.frombuffer(steps, "<i8"), np.frombuffer(vals, "<f8")
        expected.append(pd.DataFrame({"run_id": rid, "setting_id": rid.rsplit("-", 1)[0],
                                      "seed": int(rid.rsplit("-", 1)[1]), "metric": metric, "step": s, "value": v}))
    want = pd.concat(expected, ignore_index=True)
    assert list(long.columns) == list(want.columns) and len(long) == len(want)
    assert long[["run_id", "metric"]].values.tolist() == want[["run_id", "metric"]].values.tolist()
    assert np.array_equal(long["step"].to_numpy(), want["step"].to_numpy())
    assert bits(long["value"].to_numpy()) == bits(want["value"].to_numpy())
    assert cat.integrity_check() == "ok" and cat.run(next(iter(raw))[0])["metrics"]
    assert cat.load_checkpoint(f"{long['setting_id'].iloc[0]}-0")["w"].shape == (2, 3)
    # and it keeps working: a new run is written and read back
    s = resolve_setting("gromov2023", {"task.p": 13, "task.train_fraction": 0.3})
    rec = RunRecord(s.id, 9, {"test_acc": (np.arange(3), np.array([0.25, 0.5, 1.0]))}, {}, {}, 0.0, 1.0, 1.0)
    assert cat.write_runs(s.canonical_json(), s.id, [rec]) == [rec.run_id]
    assert cat.curves(run_ids=[rec.run_id])["value"].tolist() == [0.25, 0.5, 1.0]


def test_a_failed_migration_leaves_the_schema_1_file_as_it_was(tmp_path, monkeypatch):
    path = v1_copy(tmp_path)
    before = path.read_bytes()
    calls = []
    real = migrations_mod.encode_run

    def failing(curves):
        calls.append(1)
        if len(calls) == 4:
            raise RuntimeError("power cut")
        return real(curves)

    monkeypatch.setattr(migrations_mod, "encode_run", failing)
    with pytest.raises(RuntimeError, match="power cut"):
        Catalog(path).count_runs()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    assert raw_v1(path) == raw_v1(DATA / "catalog-v1.db")
    monkeypatch.undo()
    assert Catalog(path).count_runs() == 6 and len(path.read_bytes()) <= len(before)


def test_a_version_1_bundle_still_imports_bit_equal(tmp_path):
    cat = Catalog(tmp_path / "c.db")
    report = import_bundle(cat, DATA / "bundle-v1")
    assert len(report.written) == 2
    raw = raw_v1(DATA / "catalog-v1.db")
    arrays = cat.curve_arrays(report.written)
    for rid in report.written:  # a version-1 bundle's long table has no row for an empty curve
        assert set(arrays[rid]) == {m for r, m in raw if r == rid and raw[r, m][0]}
        for metric, (steps, vals) in arrays[rid].items():
            assert steps.astype("<i8").tobytes() == raw[rid, metric][0] and bits(vals) == raw[rid, metric][1]
    assert len(cat.load_checkpoint(report.written[0])) == 1
    assert import_bundle(cat, DATA / "bundle-v1").written == []


def test_bundle_round_trip_keeps_the_blobs_and_refuses_an_edited_curve(tmp_path):
    src = Catalog(v1_copy(tmp_path))
    ids = list(src.runs()["run_id"])
    out = tmp_path / "b"
    manifest = export_bundle(src, out, ids)
    assert manifest["version"] == 2 and manifest["counts"]["curves"] == len(raw_v1(DATA / "catalog-v1.db"))
    dest = Catalog(tmp_path / "d.db")
    assert len(import_bundle(dest, out).written) == len(ids)
    pd.testing.assert_frame_equal(dest.curves(), src.curves())
    import hashlib
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(out / "curve_blobs.parquet")
    vals = table.column("values").to_pylist()
    vals[0] = vals[0][:-2]  # a truncated blob, with the manifest's sha made to match
    pq.write_table(table.set_column(3, "values", pa.array(vals, pa.binary())), out / "curve_blobs.parquet")
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["files"]["curve_blobs.parquet"]["sha256"] = hashlib.sha256(
        (out / "curve_blobs.parquet").read_bytes()).hexdigest()
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CatalogError, match="curve_blobs.parquet: curve blob"):
        import_bundle(Catalog(tmp_path / "e.db"), out)


# ---- snapshots ---------------------------------------------------------------------------------------
def test_a_snapshot_sees_one_state_while_another_process_writes(tmp_path):
    cat = Catalog(tmp_path / "c.db")
    s = resolve_setting("gromov2023", {"task.p": 13})
    rec = lambda seed: RunRecord(s.id, seed, {"x": (np.arange(2), np.ones(2))}, {}, {}, 0.0, 1.0, 1.0)  # noqa: E731
    cat.write_runs(s.canonical_json(), s.id, [rec(0)])
    with cat.snapshot() as snap:
        assert snap.count_runs() == 1
        cat.write_runs(s.canonical_json(), s.id, [rec(1)])
        cat.add_note("signature", "k", {"a": 1})
        assert cat.count_runs() == 2 and snap.count_runs() == 1
        assert len(snap.runs()) == 1 and snap.notes("signature") == [] and len(snap.curves()) == 2
        with pytest.raises(CatalogError, match="read-only"):
            snap.add_note("x", None, {})
    assert cat.count_runs() == 2
    with Catalog(tmp_path / "none.db").snapshot() as empty:
        assert empty.count_runs() == 0 and not (tmp_path / "none.db").exists()
