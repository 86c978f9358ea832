"""The Catalog: every run's setting, curves, summary, provenance and checkpoints, in one SQLite file.

Connections are short-lived (one per operation), so a Catalog is just a path: it pickles, and any
number of threads and processes may share one file. A batch of runs is written in one transaction,
so a crash leaves whole runs or none; checkpoints (safetensors, never pickle) reach their final
names before that transaction commits. Curves are encoded (`codec.py`: each curve one exact blob,
each distinct step array stored once) before the transaction starts, so the write lock is short.
Reads are in `_reads.py`; `snapshot()` pins one state of the file for many reads.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from safetensors.torch import save_file as _st_save_file

from phenolab.catalog._reads import CURVE_COLUMNS, RUN_COLUMNS, CatalogReads
from phenolab.catalog._records import RunRecord
from phenolab.catalog.codec import encode_run, encode_steps
from phenolab.catalog.migrations import StepIds
from phenolab.catalog.schema import (
    CatalogError,
    dumps_json,
    loads_object,
    open_catalog,
    rollback,
    with_retry,
)
from phenolab.settings import SettingError, validate_setting

DEFAULT_CATALOG = "./phenolab-catalog/catalog.db"
DB_NAME = "catalog.db"
T = TypeVar("T")
CurveRow = tuple[str, bytes, bytes, bytes]  # metric, steps key, steps blob, values blob
__all__ = ["CURVE_COLUMNS", "DB_NAME", "DEFAULT_CATALOG", "RUN_COLUMNS", "Catalog", "check_setting_json"]


class Catalog(CatalogReads):
    """A phenolab catalog file; `root` is its directory, where checkpoints/ lives beside it."""

    _pinned: sqlite3.Connection | None = None  # set on the copy `snapshot()` yields

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        text = os.fspath(path) if path is not None else os.environ.get("PHENOLAB_CATALOG") or DEFAULT_CATALOG
        raw = Path(text).expanduser()
        # a directory (existing, "dir/", or a new name without a suffix) holds catalog.db
        is_dir = raw.is_dir() or text.endswith(("/", os.sep)) or (not raw.exists() and not raw.suffix)
        self.path: Path = (raw / DB_NAME if is_dir else raw).absolute()
        self.root: Path = self.path.parent

    def __repr__(self) -> str:
        return f"Catalog({str(self.path)!r})"

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_pinned"}

    # ---- plumbing ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def _conn(self, write: bool) -> Iterator[sqlite3.Connection | None]:
        conn = open_catalog(self.path, write=write)
        try:
            yield conn
        finally:
            if conn is not None:
                conn.close()

    def _read(self, fn: Callable[[sqlite3.Connection], T], empty: T) -> T:
        """Run `fn` in one read transaction (the snapshot's, inside `snapshot()`)."""
        if self._pinned is not None:
            return fn(self._pinned)

        def attempt() -> T:
            with self._conn(write=False) as conn:
                if conn is None:
                    return empty
                conn.execute("BEGIN")
                try:
                    return fn(conn)
                finally:
                    rollback(conn)

        return with_retry(attempt)

    def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` in one BEGIN IMMEDIATE transaction, retried as a whole while the file is locked."""
        if self._pinned is not None:
            raise CatalogError(f"{self.path}: a snapshot of the catalog is read-only")

        def attempt() -> T:
            with self._conn(write=True) as conn:
                assert conn is not None
                conn.execute("BEGIN IMMEDIATE")
                try:
                    out = fn(conn)
                    conn.execute("COMMIT")
                except BaseException:
                    rollback(conn)
                    raise
                return out

        return with_retry(attempt)

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[Catalog]:
        """A read-only view of the catalog as it is now: every read through it sees this one state,
        whatever other processes write meanwhile (one SQLite read transaction, held until the end
        of the `with` block; in WAL mode writers are not blocked)."""
        if self._pinned is not None:
            yield self
            return

        def start() -> sqlite3.Connection | None:
            conn = open_catalog(self.path, write=False)
            if conn is not None:
                try:
                    conn.execute("BEGIN")
                    conn.execute("SELECT COUNT(*) FROM meta").fetchone()  # the snapshot starts here
                except BaseException:
                    conn.close()
                    raise
            return conn

        conn = with_retry(start)
        if conn is None:  # no catalog yet: every read is empty
            yield self
            return
        view = copy.copy(self)
        view._pinned = conn
        try:
            yield view
        finally:
            rollback(conn)
            conn.close()

    # ---- writing ----------------------------------------------------------------------------
    def write_runs(self, setting_json: str, setting_id: str, records: list[RunRecord]) -> list[str]:
        """Store the setting and every new run in one transaction; runs already stored are skipped.

        Returns the run ids actually written.
        """
        return self.write_many([(setting_json, setting_id, records)])

    def write_many(self, groups: list[tuple[str, str, list[RunRecord]]],
                   encoded: dict[str, list[CurveRow]] | None = None) -> list[str]:
        """`write_runs` for several settings at once, all in one transaction (bundle import). A run in
        `encoded` is stored with those curves, already in the catalog's form, instead of its record's."""
        checked = []
        for setting_json, setting_id, records in groups:
            task, model = check_setting_json(setting_json, setting_id)
            for rec in records:
                if rec.setting_id != setting_id:
                    raise CatalogError(f"run {rec.run_id} belongs to setting {rec.setting_id}, not {setting_id}")
            checked.append((setting_json, setting_id, task, model, records))
        given = encoded or {}
        rows = {rec.run_id: given[rec.run_id] if rec.run_id in given else curve_rows(rec)
                for _, _, _, _, records in checked for rec in records}
        now = time.time()

        def txn(conn: sqlite3.Connection) -> list[str]:
            written_files: list[Path] = []
            try:
                written: list[str] = []
                step_ids = StepIds(conn)
                for setting_json, setting_id, task, model, records in checked:
                    written += self._insert_group(conn, setting_json, setting_id, task, model, records, now,
                                                  written_files, rows, step_ids)
                return written
            except BaseException:
                for f in written_files:  # no row will point at them
                    f.unlink(missing_ok=True)
                raise

        return self._write(txn)

    def _insert_group(self, conn: sqlite3.Connection, setting_json: str, setting_id: str, task: str | None,
                      model: str | None, records: list[RunRecord], now: float, written_files: list[Path],
                      encoded: dict[str, list[CurveRow]], step_ids: StepIds) -> list[str]:
        conn.execute(
            "INSERT OR IGNORE INTO settings(setting_id, json, task, model, created) VALUES (?,?,?,?,?)",
            (setting_id, setting_json, task, model, now),
        )
        seen = {r[0] for r in conn.execute("SELECT seed FROM runs WHERE setting_id=?", (setting_id,))}
        written: list[str] = []
        for rec in records:
            if int(rec.seed) in seen:
                continue
            seen.add(int(rec.seed))
            ckpts = []
            for step, tensors in sorted(rec.checkpoints.items()):
                rel, sha = self._save_checkpoint(rec.run_id, int(step), tensors, written_files)
                ckpts.append((rec.run_id, int(step), rel, sha))
            _insert_run(conn, rec)
            conn.executemany(
                "INSERT INTO curves(run_id, metric, steps_id, vals) VALUES (?,?,?,?)",
                [(rec.run_id, m, step_ids(key, steps), vals) for m, key, steps, vals in encoded[rec.run_id]],
            )
            conn.executemany("INSERT INTO checkpoints(run_id, step, path, sha256) VALUES (?,?,?,?)", ckpts)
            written.append(rec.run_id)
        return written

    def _save_checkpoint(
        self, run_id: str, step: int, tensors: dict[str, torch.Tensor], written: list[Path]
    ) -> tuple[str, str]:
        """Write atomically (temp name, fsync, os.replace); return (path relative to root, sha256)."""
        rel = Path("checkpoints") / run_id / f"step-{step}.safetensors"
        final = self.root / rel
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_name(f".{final.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        # clone: slices of a [K, ...] replica tensor share storage, which safetensors refuses
        plain = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
        try:
            _st_save_file(plain, str(tmp))
            with tmp.open("rb+") as f:
                sha = hashlib.sha256(f.read()).hexdigest()
                os.fsync(f.fileno())
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        written.append(final)
        return rel.as_posix(), sha

    def add_note(self, kind: str, key: str | None, obj: Any) -> int:
        """Append a free-form JSON record (signatures, hypotheses, ...); returns its id."""
        row = (kind, key, dumps_json(obj), time.time())
        sql = "INSERT INTO notes(kind, key, json, created) VALUES (?,?,?,?)"
        return self._write(lambda c: int(c.execute(sql, row).lastrowid or 0))


def _insert_run(conn: sqlite3.Connection, rec: RunRecord) -> None:
    """One run's row (a module function so tests can make a transaction fail midway)."""
    conn.execute(
        "INSERT INTO runs(run_id, setting_id, seed, status, started, finished, wall_s, batch_id,"
        " replicas_in_batch, provenance, summary) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        (
            rec.run_id, rec.setting_id, int(rec.seed), getattr(rec, "status", "done"),
            float(rec.started), float(rec.finished), float(rec.wall_s), rec.batch_id,
            int(rec.replicas_in_batch), dumps_json(rec.provenance), dumps_json(rec.summary),
        ),
    )


def curve_rows(rec: RunRecord) -> list[CurveRow]:
    """Each curve of a run encoded for the catalog (codec.py), checked for matching lengths."""
    steps, values = {}, {}
    for metric, (s, v) in rec.curves.items():
        steps[metric], values[metric] = np.asarray(s).ravel(), np.asarray(v, dtype=np.float64).ravel()
        if steps[metric].shape != values[metric].shape:
            raise CatalogError(f"run {rec.run_id} curve {metric!r}: {steps[metric].size} steps but "
                               f"{values[metric].size} values")
    blobs = encode_run(values)
    return [(metric, *encode_steps(steps[metric]), blobs[metric]) for metric in rec.curves]


def check_setting_json(setting_json: str, setting_id: str) -> tuple[str | None, str | None]:
    """Parse the setting JSON and confirm its content id, so a catalog never files runs under a wrong id;
    returns its task and model names."""
    data = loads_object(setting_json, f"setting {setting_id}")
    try:
        actual = validate_setting(data).id
    except SettingError as exc:
        raise CatalogError(f"setting {setting_id}: {exc}") from None
    if actual != setting_id:
        raise CatalogError(f"setting id {setting_id} does not match its JSON (content id {actual})")
    return _name(data.get("task")), _name(data.get("model"))


def _name(part: Any) -> str | None:
    return part.get("name") if isinstance(part, dict) else None
