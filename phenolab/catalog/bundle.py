"""Bundles: move runs between catalogs (cluster node → laptop, you → a colleague) as plain files.

A bundle is a directory:

    manifest.json        format, version, counts, and the sha256 and size of every other file
    settings.jsonl       {"setting_id", "json"}: each setting's canonical JSON, as stored
    runs.jsonl.gz        every stored column of a run, its summary, provenance and checkpoint list
                         (gzip: a batch's runs share most of their provenance)
    curve_blobs.parquet  one row per curve: run_id, metric, steps, values, the two arrays as the
                         catalog stores them (`codec.py`: exact, byte planes, zlib)
    checkpoints/<run_id>/step-<N>.safetensors

Version 1 bundles (phenolab ≤ 0.2) hold `curves.parquet` instead, the long table run_id, metric,
step, value (int64 / float64), and `runs.jsonl` uncompressed; they still import. Nothing is ever
unpickled: JSON, Parquet and safetensors only. Import checks everything before it writes anything
(every file's sha256, no unlisted or missing file, every setting's content id, every run's id and
references, every curve decoded with its steps and values of one length), then stores the new
runs in one transaction; runs the catalog already has (same setting id and seed) are left alone,
so importing a bundle twice changes nothing.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
import sqlite3
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safetensors.torch import load as st_load

from phenolab.catalog._bundle_curves import CURVE_FILES, read_curves, write_curves
from phenolab.catalog._reads import _CHUNK as CHUNK
from phenolab.catalog._records import RunRecord, run_id_for
from phenolab.catalog.provenance import phenolab_version, utc_now
from phenolab.catalog.schema import SCHEMA_VERSION, CatalogError, dumps_json, loads_object
from phenolab.catalog.store import Catalog, CurveRow, check_setting_json

BUNDLE_FORMAT = "phenolab-bundle"
BUNDLE_VERSION = 2
MANIFEST = "manifest.json"
RUN_FIELDS = ("run_id", "setting_id", "seed", "status", "started", "finished", "wall_s", "batch_id",
              "replicas_in_batch", "provenance", "summary", "checkpoints")
RUNS_FILES = {1: "runs.jsonl", 2: "runs.jsonl.gz"}
_FILE_NAME = re.compile(r"(settings\.jsonl|runs\.jsonl(\.gz)?|curves\.parquet|curve_blobs\.parquet"
                        r"|checkpoints/[\w.-]+/step-\d+\.safetensors)")


@dataclass
class ImportReport:
    """What an import did."""

    bundle: str
    runs_in_bundle: int
    written: list[str]
    settings_in_bundle: int

    @property
    def already_present(self) -> int:
        return self.runs_in_bundle - len(self.written)


# ---- export -------------------------------------------------------------------------------------
def export_bundle(catalog: Catalog, out: str | os.PathLike[str], run_ids: list[str]) -> dict[str, Any]:
    """Write the runs `run_ids` (with their settings, curves and checkpoints) to a new bundle
    directory `out`; returns the manifest. Written under a temporary name, then renamed, so a
    crash never leaves a bundle that looks complete."""
    dest = Path(out)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise CatalogError(f"export: {dest} already exists; give a new (or empty) directory for the bundle")
    if not run_ids:
        raise CatalogError("export: no runs selected; check --where / --setting against `phenolab runs`")
    rows = _raw_runs(catalog, run_ids)
    missing = sorted(set(run_ids) - {r["run_id"] for r in rows})
    if missing:
        raise CatalogError(f"export: run {missing[0]!r} is not in {catalog.path}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    try:
        manifest = _write_bundle(catalog, tmp, rows)
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; a bundle is meant to be shared
        if dest.exists():
            dest.rmdir()
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return manifest


def _raw_runs(catalog: Catalog, run_ids: list[str]) -> list[dict[str, Any]]:
    """Every stored column of these runs (provenance and summary parsed) with their setting's JSON
    text and checkpoint rows {step, path, sha256}: what a bundle export needs, in few queries."""

    def query(conn: sqlite3.Connection) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        ids = list(dict.fromkeys(run_ids))
        for i in range(0, len(ids), CHUNK):
            chunk = ids[i : i + CHUNK]
            marks = ",".join("?" * len(chunk))
            cur = conn.execute(
                f"SELECT r.*, s.json AS setting_json FROM runs r JOIN settings s USING(setting_id)"
                f" WHERE r.run_id IN ({marks}) ORDER BY r.run_id", chunk)
            names = [d[0] for d in cur.description]
            rows = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
            ckpts: dict[str, list[dict[str, Any]]] = {}
            for rid, step, path, sha in conn.execute(
                    f"SELECT run_id, step, path, sha256 FROM checkpoints WHERE run_id IN ({marks})"
                    " ORDER BY run_id, step", chunk):
                ckpts.setdefault(rid, []).append({"step": int(step), "path": path, "sha256": sha})
            for row in rows:
                for key in ("provenance", "summary"):
                    row[key] = json.loads(row[key]) if row[key] else {}
                row["checkpoints"] = ckpts.get(row["run_id"], [])
            out += rows
        return out

    return catalog._read(query, [])  # package-internal: a short-lived read connection, retried on locks


def _write_bundle(catalog: Catalog, root: Path, rows: list[dict[str, Any]]) -> dict[str, Any]:
    settings = {r["setting_id"]: r["setting_json"] for r in rows}
    _write_lines(root / "settings.jsonl", [{"setting_id": k, "json": v} for k, v in sorted(settings.items())])
    n_ckpt = 0
    lines = []
    for row in rows:
        ckpts = []
        for c in row["checkpoints"]:
            rel = f"checkpoints/{row['run_id']}/step-{c['step']}.safetensors"
            data = (catalog.root / c["path"]).read_bytes()
            if hashlib.sha256(data).hexdigest() != c["sha256"]:
                raise CatalogError(f"export: checkpoint {c['path']} of run {row['run_id']} was modified (sha256)")
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data)
            ckpts.append({"step": c["step"], "file": rel})
            n_ckpt += 1
        lines.append({**{k: row[k] for k in RUN_FIELDS if k != "checkpoints"}, "checkpoints": ckpts})
    (root / RUNS_FILES[2]).write_bytes(gzip.compress("".join(dumps_json(o) + "\n" for o in lines).encode(), mtime=0))
    curve_counts = write_curves(catalog, [r["run_id"] for r in rows], root)
    files = {p.relative_to(root).as_posix(): _file_entry(p) for p in sorted(root.rglob("*")) if p.is_file()}
    manifest = {
        "format": BUNDLE_FORMAT, "version": BUNDLE_VERSION, "created": utc_now(), "phenolab": phenolab_version(),
        "catalog_schema": SCHEMA_VERSION, "source": str(catalog.path),
        "counts": {"settings": len(settings), "runs": len(rows), **curve_counts, "checkpoints": n_ckpt},
        "files": files,
    }
    (root / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def _write_lines(path: Path, objs: list[dict[str, Any]]) -> None:
    path.write_text("".join(dumps_json(o) + "\n" for o in objs))


def _file_entry(path: Path) -> dict[str, Any]:
    return {"sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "bytes": path.stat().st_size}


# ---- import -------------------------------------------------------------------------------------
def import_bundle(catalog: Catalog, bundle: str | os.PathLike[str]) -> ImportReport:
    """Check the whole bundle, then store the runs the catalog lacks in one transaction."""
    root = Path(bundle)
    manifest = read_manifest(root)
    check_files(root, manifest)
    settings = _read_settings(root)
    runs = _read_runs(root, settings, manifest)
    curves, curve_counts = read_curves(root, manifest["version"], {r["run_id"] for r in runs})
    counts = manifest.get("counts", {})
    for key, actual in (("settings", len(settings)), ("runs", len(runs)), *curve_counts.items()):
        if counts.get(key) != actual:
            raise CatalogError(f"bundle {root}: manifest counts {counts.get(key)} {key}, the files hold {actual}")
    groups = _new_run_groups(catalog, root, settings, runs)
    written = catalog.write_many(groups, encoded=curves) if groups else []
    return ImportReport(str(root), len(runs), written, len(settings))


def read_manifest(root: Path) -> dict[str, Any]:
    if not root.is_dir():
        raise CatalogError(f"bundle {root} is not a directory; give the directory `phenolab export` wrote")
    path = root / MANIFEST
    if not path.is_file():
        raise CatalogError(f"bundle {root}: no {MANIFEST}; not a phenolab bundle")
    try:
        manifest = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise CatalogError(f"bundle {root}: {MANIFEST} is not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        raise CatalogError(f"bundle {root}: {MANIFEST} is not a {BUNDLE_FORMAT} manifest")
    version = manifest.get("version")
    if not isinstance(version, int) or version < 1:
        raise CatalogError(f"bundle {root}: bad bundle version {version!r}; this phenolab reads 1..{BUNDLE_VERSION}")
    if version > BUNDLE_VERSION:
        raise CatalogError(f"bundle {root} was written by a newer phenolab (bundle version {version}; this one reads"
                           f" ≤ {BUNDLE_VERSION}); upgrade phenolab to import it")
    if not isinstance(manifest.get("files"), dict) or not isinstance(manifest.get("counts"), dict):
        raise CatalogError(f"bundle {root}: {MANIFEST} lacks 'files' or 'counts'")
    return manifest


def check_files(root: Path, manifest: dict[str, Any]) -> None:
    """Every listed file present with its sha256; no file on disk that the manifest does not list."""
    listed: dict[str, Any] = manifest["files"]
    for name in ("settings.jsonl", RUNS_FILES[manifest["version"]], CURVE_FILES[manifest["version"]]):
        if name not in listed:
            raise CatalogError(f"bundle {root}: {MANIFEST} does not list {name}")
    for name, entry in listed.items():
        if not isinstance(name, str) or not _FILE_NAME.fullmatch(name) or ".." in name.split("/"):
            raise CatalogError(f"bundle {root}: unexpected file name {name!r} in {MANIFEST}")
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
            raise CatalogError(f"bundle {root}: {MANIFEST} entry for {name} lacks a sha256")
        path = root / name
        if not path.is_file():
            raise CatalogError(f"bundle {root}: file {name} is missing")
        if hashlib.sha256(path.read_bytes()).hexdigest() != entry["sha256"]:
            raise CatalogError(f"bundle {root}: {name} does not match its sha256 in {MANIFEST} (corrupted or edited)")
    on_disk = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} - {MANIFEST}
    extra = sorted(on_disk - set(listed))
    if extra:
        raise CatalogError(f"bundle {root}: file {extra[0]} is not listed in {MANIFEST}")


def _read_jsonl(root: Path, name: str) -> list[dict[str, Any]]:
    data = (root / name).read_bytes()
    if name.endswith(".gz"):
        inflate = zlib.decompressobj(wbits=31)  # gzip; never inflated past a generous bound
        try:
            data = inflate.decompress(data, max(1 << 28, 200 * len(data)))
        except zlib.error as exc:
            raise CatalogError(f"bundle {root}: {name} is not gzip ({exc})") from None
        if not inflate.eof:
            raise CatalogError(f"bundle {root}: {name} is truncated or too large")
    try:
        lines = data.decode().splitlines()
    except UnicodeDecodeError:
        raise CatalogError(f"bundle {root}: {name} is not UTF-8 text") from None
    return [loads_object(line, f"bundle {root}: {name} line {i}") for i, line in enumerate(lines, start=1)]


def _read_settings(root: Path) -> dict[str, str]:
    """setting_id -> canonical JSON text, each checked against its content id."""
    out: dict[str, str] = {}
    for i, obj in enumerate(_read_jsonl(root, "settings.jsonl"), start=1):
        sid, text = obj.get("setting_id"), obj.get("json")
        if not isinstance(sid, str) or not isinstance(text, str):
            raise CatalogError(f"bundle {root}: settings.jsonl line {i} needs string fields setting_id and json")
        try:
            check_setting_json(text, sid)  # the same check a catalog makes before it files a run
        except CatalogError as exc:
            raise CatalogError(f"bundle {root}: {str(exc).splitlines()[0]}") from None
        out[sid] = text
    return out


def _read_runs(root: Path, settings: dict[str, str], manifest: dict[str, Any]) -> list[dict[str, Any]]:
    runs, ids = [], set()
    name = RUNS_FILES[manifest["version"]]
    for i, obj in enumerate(_read_jsonl(root, name), start=1):
        where = f"bundle {root}: {name} line {i}"
        missing = [k for k in RUN_FIELDS if k not in obj]
        if missing:
            raise CatalogError(f"{where} lacks field {missing[0]!r}")
        seed = obj["seed"]
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise CatalogError(f"{where}: seed {seed!r} must be an integer ≥ 0")
        if obj["setting_id"] not in settings:
            raise CatalogError(f"{where}: setting {obj['setting_id']!r} is not in settings.jsonl")
        if obj["run_id"] != run_id_for(obj["setting_id"], seed):
            raise CatalogError(f"{where}: run id {obj['run_id']!r} is not '<setting_id>-<seed>'")
        if obj["run_id"] in ids:
            raise CatalogError(f"{where}: run {obj['run_id']} appears twice")
        ids.add(obj["run_id"])
        for key in ("summary", "provenance"):
            if not isinstance(obj[key], dict):
                raise CatalogError(f"{where}: {key} must be a JSON object")
        if not isinstance(obj["checkpoints"], list):
            raise CatalogError(f"{where}: checkpoints must be a list")
        for c in obj["checkpoints"]:
            step = c.get("step") if isinstance(c, dict) else None
            expected = f"checkpoints/{obj['run_id']}/step-{step}.safetensors"
            if not isinstance(step, int) or c.get("file") != expected or expected not in manifest["files"]:
                raise CatalogError(f"{where}: bad checkpoint entry {c!r}")
        runs.append(obj)
    return runs


def _new_run_groups(catalog: Catalog, root: Path, settings: dict[str, str], runs: list[dict[str, Any]],
                    ) -> list[tuple[str, str, list[RunRecord]]]:
    """RunRecords of the runs the catalog lacks, grouped by setting (nothing new ⇒ []); their curves
    come encoded, beside them."""
    stored = _stored_seeds(catalog, set(settings))
    new = [r for r in runs if r["seed"] not in stored.get(r["setting_id"], set())]
    if not new:
        return []
    groups: dict[str, list[RunRecord]] = {}
    for r in new:
        ckpts = {c["step"]: st_load((root / c["file"]).read_bytes()) for c in r["checkpoints"]}
        rec = RunRecord(setting_id=r["setting_id"], seed=r["seed"], curves={}, summary=r["summary"],
                        provenance=r["provenance"], started=_num(r["started"]), finished=_num(r["finished"]),
                        wall_s=_num(r["wall_s"]), batch_id=r["batch_id"] or "",
                        replicas_in_batch=int(r["replicas_in_batch"] or 1), checkpoints=ckpts)
        rec.status = str(r["status"] or "done")  # type: ignore[attr-defined]  (_insert_run reads it)
        groups.setdefault(r["setting_id"], []).append(rec)
    return [(settings[sid], sid, recs) for sid, recs in groups.items()]


def _stored_seeds(catalog: Catalog, setting_ids: set[str]) -> dict[str, set[int]]:
    """Seeds the catalog holds of each of these settings, in one query per chunk of ids."""

    def query(conn: Any) -> dict[str, set[int]]:
        out: dict[str, set[int]] = {}
        ids = sorted(setting_ids)
        for i in range(0, len(ids), CHUNK):
            chunk = ids[i : i + CHUNK]
            sql = f"SELECT setting_id, seed FROM runs WHERE setting_id IN ({','.join('?' * len(chunk))})"
            for sid, seed in conn.execute(sql, chunk):
                out.setdefault(sid, set()).add(int(seed))
        return out

    return catalog._read(query, {})


def _num(v: Any) -> float:
    return float("nan") if v is None else float(v)


__all__ = ["BUNDLE_VERSION", "CurveRow", "ImportReport", "export_bundle", "import_bundle"]
