"""The Catalog: every run's setting, curves, summary, provenance and checkpoints, in one SQLite file.

Connections are short-lived (one per operation), so a Catalog is just a path: it pickles, and any
number of threads and processes may share one file. A batch of runs is written in one transaction,
so a crash leaves whole runs or none; checkpoints (safetensors, never pickle) reach their final
names before that transaction commits.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load as _st_load
from safetensors.torch import save_file as _st_save_file

from phenolab.catalog._records import RunRecord
from phenolab.catalog.schema import (
    CatalogError,
    check_paths_exist,
    dumps_json,
    encode_curve,
    loads_object,
    open_catalog,
    rollback,
    where_sql,
    with_retry,
)
from phenolab.settings import SettingError, validate_setting

DEFAULT_CATALOG = "./phenolab-catalog/catalog.db"
DB_NAME = "catalog.db"
RUN_COLUMNS = [
    "run_id", "setting_id", "seed", "task", "model", "status",
    "started", "finished", "wall_s", "batch_id", "replicas_in_batch",
]
CURVE_COLUMNS = ["run_id", "setting_id", "seed", "metric", "step", "value"]
_CHUNK = 900  # ids per IN (...) list, under every SQLite's variable limit
T = TypeVar("T")


class Catalog:
    """A phenolab catalog file; `root` is its directory, where checkpoints/ lives beside it."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        text = os.fspath(path) if path is not None else os.environ.get("PHENOLAB_CATALOG") or DEFAULT_CATALOG
        raw = Path(text).expanduser()
        # a directory (existing, "dir/", or a new name without a suffix) holds catalog.db
        is_dir = raw.is_dir() or text.endswith(("/", os.sep)) or (not raw.exists() and not raw.suffix)
        self.path: Path = (raw / DB_NAME if is_dir else raw).absolute()
        self.root: Path = self.path.parent

    def __repr__(self) -> str:
        return f"Catalog({str(self.path)!r})"

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
        def attempt() -> T:
            with self._conn(write=False) as conn:
                return empty if conn is None else fn(conn)

        return with_retry(attempt)

    def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` in one BEGIN IMMEDIATE transaction, retried as a whole while the file is locked."""

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

    # ---- writing ----------------------------------------------------------------------------
    def write_runs(self, setting_json: str, setting_id: str, records: list[RunRecord]) -> list[str]:
        """Store the setting and every new run in one transaction; runs already stored are skipped.

        Returns the run ids actually written.
        """
        return self.write_many([(setting_json, setting_id, records)])

    def write_many(self, groups: list[tuple[str, str, list[RunRecord]]]) -> list[str]:
        """`write_runs` for several settings at once, all in one transaction (bundle import)."""
        checked = []
        for setting_json, setting_id, records in groups:
            task, model = check_setting_json(setting_json, setting_id)
            for rec in records:
                if rec.setting_id != setting_id:
                    raise CatalogError(f"run {rec.run_id} belongs to setting {rec.setting_id}, not {setting_id}")
            checked.append((setting_json, setting_id, task, model, records))
        now = time.time()

        def txn(conn: sqlite3.Connection) -> list[str]:
            written_files: list[Path] = []
            try:
                written: list[str] = []
                for setting_json, setting_id, task, model, records in checked:
                    written += self._insert_group(conn, setting_json, setting_id, task, model, records, now,
                                                  written_files)
                return written
            except BaseException:
                for f in written_files:  # no row will point at them
                    f.unlink(missing_ok=True)
                raise

        return self._write(txn)

    def _insert_group(self, conn: sqlite3.Connection, setting_json: str, setting_id: str, task: str | None,
                      model: str | None, records: list[RunRecord], now: float, written_files: list[Path]) -> list[str]:
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
                "INSERT INTO curves(run_id, metric, steps, vals) VALUES (?,?,?,?)",
                [(rec.run_id, m, *encode_curve(rec.run_id, m, s, v)) for m, (s, v) in rec.curves.items()],
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

    # ---- reading ----------------------------------------------------------------------------
    def runs(self, setting_id: str | None = None, where: dict[str, Any] | None = None) -> pd.DataFrame:
        """One row per run; summary keys become columns; `where` matches setting fields by dotted path."""
        sql = (
            "SELECT r.run_id, r.setting_id, r.seed, s.task, s.model, r.status, r.started, r.finished,"
            " r.wall_s, r.batch_id, r.replicas_in_batch, r.summary"
            " FROM runs r JOIN settings s USING(setting_id)"
        )
        conds, params = where_sql(setting_id, where)
        sql += (" WHERE " + " AND ".join(conds) if conds else "") + " ORDER BY r.setting_id, r.seed"

        def query(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            rows = conn.execute(sql, params).fetchall()
            if not rows and where:
                check_paths_exist(conn, where)
            return rows

        rows = self._read(query, [])
        if not rows:
            return pd.DataFrame(columns=RUN_COLUMNS)
        base = pd.DataFrame([r[:-1] for r in rows], columns=RUN_COLUMNS)
        flat = [_flatten(json.loads(r[-1]) if r[-1] else {}) for r in rows]
        extra = pd.DataFrame(flat, index=base.index)
        extra.columns = [f"summary.{c}" if c in RUN_COLUMNS else c for c in extra.columns]
        return pd.concat([base, extra], axis=1) if len(extra.columns) else base

    def curves(
        self,
        run_ids: list[str] | None = None,
        metrics: list[str] | None = None,
        setting_id: str | None = None,
    ) -> pd.DataFrame:
        """Long format: one row per (run, metric, step)."""
        conds, params = [], []
        if setting_id is not None:
            conds.append("r.setting_id = ?")
            params.append(setting_id)
        if metrics is not None:
            conds.append(f"c.metric IN ({','.join('?' * len(metrics))})")
            params.extend(metrics)
        base = (
            "SELECT c.run_id, r.setting_id, r.seed, c.metric, c.steps, c.vals"
            " FROM curves c JOIN runs r USING(run_id)"
        )

        def query(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            if run_ids is None:
                where = " WHERE " + " AND ".join(conds) if conds else ""
                return conn.execute(base + where + " ORDER BY c.run_id, c.metric", params).fetchall()
            out: list[tuple[Any, ...]] = []
            ids = list(dict.fromkeys(run_ids))
            for i in range(0, len(ids), _CHUNK):
                chunk = ids[i : i + _CHUNK]
                cs = [*conds, f"c.run_id IN ({','.join('?' * len(chunk))})"]
                out += conn.execute(base + " WHERE " + " AND ".join(cs), [*params, *chunk]).fetchall()
            return out

        rows = self._read(query, [])
        if not rows:
            return pd.DataFrame({c: pd.Series(dtype=t) for c, t in _CURVE_DTYPES.items()})
        steps = [np.frombuffer(r[4], dtype="<i8") for r in rows]
        lens = np.fromiter((len(s) for s in steps), dtype=np.int64, count=len(rows))
        # one row per curve, then repeated: far faster than building 10^7 strings column by column
        head = pd.DataFrame([r[:4] for r in rows], columns=CURVE_COLUMNS[:4]).astype({"seed": "int64"})
        out = head.take(np.repeat(np.arange(len(rows)), lens)).reset_index(drop=True)
        out["step"] = np.concatenate(steps).astype(np.int64)
        out["value"] = np.concatenate([np.frombuffer(r[5], dtype="<f8") for r in rows]).astype(np.float64)
        return out

    def curve_arrays(self, run_ids: list[str], metrics: list[str] | None = None
                     ) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
        """{run_id: {metric: (steps int64, values float64)}}: the stored arrays as they are, without
        the long table `curves` builds (per-run signatures over 10⁴ runs read this)."""
        mcond = f" AND metric IN ({','.join('?' * len(metrics))})" if metrics else ""

        def query(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            out: list[tuple[Any, ...]] = []
            ids = list(dict.fromkeys(run_ids))
            for i in range(0, len(ids), _CHUNK):
                chunk = ids[i : i + _CHUNK]
                sql = f"SELECT run_id, metric, steps, vals FROM curves WHERE run_id IN ({','.join('?' * len(chunk))})"
                out += conn.execute(sql + mcond, [*chunk, *(metrics or [])]).fetchall()
            return out

        result: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
        for rid, metric, steps, vals in self._read(query, []):
            result.setdefault(rid, {})[metric] = (np.frombuffer(steps, dtype="<i8").astype(np.int64),
                                                  np.frombuffer(vals, dtype="<f8").astype(np.float64))
        return result

    def setting(self, setting_id: str) -> dict[str, Any]:
        """The stored setting's full JSON (rebuild one with phenolab.settings.validate_setting)."""
        sql = "SELECT json FROM settings WHERE setting_id=?"
        row = self._read(lambda c: c.execute(sql, (setting_id,)).fetchone(), None)
        if row is None:
            raise CatalogError(f"no setting {setting_id!r} in {self.path}; list them with Catalog.settings()")
        return json.loads(row[0])

    def settings(self) -> pd.DataFrame:
        """One row per stored setting with its run count and JSON."""
        cols = ["setting_id", "task", "model", "created", "runs", "json"]
        sql = (
            "SELECT s.setting_id, s.task, s.model, s.created, COUNT(r.run_id), s.json FROM settings s"
            " LEFT JOIN runs r USING(setting_id) GROUP BY s.setting_id ORDER BY s.created, s.setting_id"
        )
        return pd.DataFrame(self._read(lambda c: c.execute(sql).fetchall(), []), columns=cols)

    def run(self, run_id: str) -> dict[str, Any]:
        """Every stored field of one run, with provenance, summary, metric names and checkpoint steps."""

        def query(conn: sqlite3.Connection) -> dict[str, Any] | None:
            cur = conn.execute(
                "SELECT r.*, s.task, s.model FROM runs r JOIN settings s USING(setting_id) WHERE r.run_id=?",
                (run_id,),
            )
            row = cur.fetchone()
            if row is None:
                return None
            out = dict(zip([d[0] for d in cur.description], row, strict=True))
            for key, sql in (("metrics", _METRICS_SQL), ("checkpoints", _STEPS_SQL)):
                out[key] = [v for (v,) in conn.execute(sql, (run_id,))]
            return out

        out = self._read(query, None)
        if out is None:
            raise CatalogError(
                f"no run {run_id!r} in {self.path}; run ids are '<setting_id>-<seed>': "
                "list them with `phenolab runs` or Catalog.runs()['run_id']"
            )
        for key in ("provenance", "summary"):
            out[key] = json.loads(out[key]) if out[key] else {}
        return out

    def batch_runs(self, batch_id: str) -> list[tuple[str, str, int]]:
        """(run_id, setting_id, seed) of every run stored from batch `batch_id`, in the order they
        were trained: by the replica position their provenance records, else as they were written
        (part after part, replica after replica; a bundle's import writes them in run-id order)."""
        sql = ("SELECT run_id, setting_id, seed FROM runs WHERE batch_id=?"
               " ORDER BY json_extract(provenance, '$.replica'), rowid")
        return [(r, s, int(k)) for r, s, k in self._read(lambda c: c.execute(sql, (batch_id,)).fetchall(), [])]

    def existing_seeds(self, setting_id: str) -> set[int]:
        """Seeds of `setting_id` already stored: what a resumed sweep skips."""
        sql = "SELECT seed FROM runs WHERE setting_id=?"
        rows = self._read(lambda c: c.execute(sql, (setting_id,)).fetchall(), [])
        return {int(s) for (s,) in rows}

    def count_runs(self) -> int:
        return int(self._read(lambda c: c.execute("SELECT COUNT(*) FROM runs").fetchone()[0], 0))

    def notes(self, kind: str, key: str | None = None) -> list[dict[str, Any]]:
        """Notes of one kind (optionally one key), oldest first: {id, kind, key, created, obj}."""
        sql, params = "SELECT id, kind, key, created, json FROM notes WHERE kind=?", [kind]
        if key is not None:
            sql, params = sql + " AND key=?", [kind, key]
        rows = self._read(lambda c: c.execute(sql + " ORDER BY id", params).fetchall(), [])
        names = ("id", "kind", "key", "created", "obj")
        return [dict(zip(names, (*r[:4], json.loads(r[4])), strict=True)) for r in rows]

    def load_checkpoint(self, run_id: str, step: int | None = None) -> dict[str, torch.Tensor]:
        """The parameters saved at `step` (None: the last), after checking the file's sha256."""
        sql = "SELECT step, path, sha256 FROM checkpoints WHERE run_id=? ORDER BY step"
        rows = self._read(lambda c: c.execute(sql, (run_id,)).fetchall(), [])
        if not rows:
            raise CatalogError(f"run {run_id!r} has no checkpoints in {self.path} (checkpoints='none'?)")
        by_step = {int(s): (p, h) for s, p, h in rows}
        key = max(by_step) if step is None else int(step)
        if key not in by_step:
            raise CatalogError(f"run {run_id!r} has no checkpoint at step {key}; steps: {sorted(by_step)}")
        rel, sha = by_step[key]
        file = self.root / rel
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise CatalogError(f"checkpoint {file} of run {run_id!r} cannot be read: {exc}") from None
        if hashlib.sha256(data).hexdigest() != sha:
            raise CatalogError(f"checkpoint {file} of run {run_id!r} was modified or is corrupt (sha256)")
        return _st_load(data)

    def integrity_check(self) -> str:
        """'ok', or what SQLite's integrity and foreign-key checks found."""

        def check(conn: sqlite3.Connection) -> str:
            res = "; ".join(r[0] for r in conn.execute("PRAGMA integrity_check").fetchall())
            if res != "ok":
                return res
            bad = conn.execute("PRAGMA foreign_key_check").fetchall()
            return "ok" if not bad else f"{len(bad)} foreign-key violations, first: {bad[0]}"

        return self._read(check, "ok")


_CURVE_DTYPES = dict(zip(CURVE_COLUMNS, [object, object, "int64", object, "int64", "float64"], strict=True))
_METRICS_SQL = "SELECT metric FROM curves WHERE run_id=? ORDER BY metric"
_STEPS_SQL = "SELECT step FROM checkpoints WHERE run_id=? ORDER BY step"


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


def _flatten(obj: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in obj.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = math.nan if v is None else v
    return out
