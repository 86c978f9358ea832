"""The Catalog's reads: runs, curves, settings, notes, checkpoints (a mixin of `store.Catalog`).

Every read runs in one read transaction, so the several queries of one call (a run and its metric
names, curves and their step arrays) see one state of the file; `Catalog.snapshot()` extends that
to many calls.
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load as _st_load

from phenolab.catalog.codec import CodecError, decode_many
from phenolab.catalog.schema import CatalogError, check_paths_exist, where_sql

RUN_COLUMNS = [
    "run_id", "setting_id", "seed", "task", "model", "status",
    "started", "finished", "wall_s", "batch_id", "replicas_in_batch",
]
CURVE_COLUMNS = ["run_id", "setting_id", "seed", "metric", "step", "value"]
RUNS_SQL = (
    "SELECT r.run_id, r.setting_id, r.seed, s.task, s.model, r.status, r.started, r.finished,"
    " r.wall_s, r.batch_id, r.replicas_in_batch, r.summary FROM runs r JOIN settings s USING(setting_id)"
)
_CHUNK = 900  # ids per IN (...) list, under every SQLite's variable limit
_CURVE_DTYPES = dict(zip(CURVE_COLUMNS, [object, object, "int64", object, "int64", "float64"], strict=True))
_METRICS_SQL = "SELECT metric FROM curves WHERE run_id=? ORDER BY metric"
_STEPS_SQL = "SELECT step FROM checkpoints WHERE run_id=? ORDER BY step"
T = TypeVar("T")


class CatalogReads:
    """Reading methods; `store.Catalog` provides `path`, `root` and `_read`."""

    path: Path
    root: Path

    def _read(self, fn: Callable[[sqlite3.Connection], T], empty: T) -> T:  # pragma: no cover - see store
        raise NotImplementedError

    def runs(self, setting_id: str | None = None, where: dict[str, Any] | None = None) -> pd.DataFrame:
        """One row per run; summary keys become columns; `where` matches setting fields by dotted path."""
        conds, params = where_sql(setting_id, where)
        sql = RUNS_SQL + (" WHERE " + " AND ".join(conds) if conds else "") + " ORDER BY r.setting_id, r.seed"

        def query(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            rows = conn.execute(sql, params).fetchall()
            if not rows and where:
                check_paths_exist(conn, where)
            return rows

        return runs_frame(self._read(query, []))

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
        base = ("SELECT c.run_id, r.setting_id, r.seed, c.metric, c.steps_id, c.vals"
                " FROM curves c JOIN runs r USING(run_id)")

        def query(conn: sqlite3.Connection) -> tuple[list[tuple[Any, ...]], dict[int, np.ndarray]]:
            if run_ids is None:
                where = " WHERE " + " AND ".join(conds) if conds else ""
                rows = conn.execute(base + where + " ORDER BY c.run_id, c.metric", params).fetchall()
            else:
                rows = []
                for chunk in _chunks(list(dict.fromkeys(run_ids))):
                    cs = [*conds, f"c.run_id IN ({','.join('?' * len(chunk))})"]
                    rows += conn.execute(base + " WHERE " + " AND ".join(cs), [*params, *chunk]).fetchall()
            return rows, _step_arrays(conn, {r[4] for r in rows})

        rows, steps = self._read(query, ([], {}))
        if not rows:
            return pd.DataFrame({c: pd.Series(dtype=t) for c, t in _CURVE_DTYPES.items()})
        values = _decode(r[5] for r in rows)
        step_list = [steps[r[4]] for r in rows]
        lens = np.fromiter((len(v) for v in values), dtype=np.int64, count=len(rows))
        # one row per curve, then repeated: far faster than building 10^7 strings column by column
        head = pd.DataFrame([r[:4] for r in rows], columns=CURVE_COLUMNS[:4]).astype({"seed": "int64"})
        out = head.take(np.repeat(np.arange(len(rows)), lens)).reset_index(drop=True)
        out["step"] = np.concatenate(step_list).astype(np.int64, copy=False)
        out["value"] = np.concatenate(values).astype(np.float64, copy=False)
        return out

    def curve_arrays(self, run_ids: list[str], metrics: list[str] | None = None
                     ) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
        """{run_id: {metric: (steps int64, values float64)}}: the stored arrays as they are, without
        the long table `curves` builds (per-run signatures over 10⁴ runs read this). Step arrays are
        shared between the curves that have the same steps, and read-only."""
        mcond = f" AND metric IN ({','.join('?' * len(metrics))})" if metrics else ""

        def query(conn: sqlite3.Connection) -> tuple[list[tuple[Any, ...]], dict[int, np.ndarray]]:
            out: list[tuple[Any, ...]] = []
            ids = list(dict.fromkeys(run_ids))
            if len(ids) > 4 * _CHUNK and 3 * len(ids) > conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]:
                wanted = set(ids)  # most of the catalog: one pass over the table beats an index seek per run
                sql = "SELECT run_id, metric, steps_id, vals FROM curves WHERE 1" + mcond
                out = [r for r in conn.execute(sql, metrics or []).fetchall() if r[0] in wanted]
                return out, _step_arrays(conn, {r[2] for r in out})
            for chunk in _chunks(ids):
                sql = ("SELECT run_id, metric, steps_id, vals FROM curves"
                       f" WHERE run_id IN ({','.join('?' * len(chunk))})")
                out += conn.execute(sql + mcond, [*chunk, *(metrics or [])]).fetchall()
            return out, _step_arrays(conn, {r[2] for r in out})

        rows, steps = self._read(query, ([], {}))
        result: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
        for (rid, metric, sid, _), vals in zip(rows, _decode([r[3] for r in rows]), strict=True):
            run = result.get(rid)
            if run is None:
                run = result[rid] = {}
            run[metric] = (steps[sid], vals)
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

    def note_kinds(self, prefix: str = "") -> list[str]:
        """Kinds of the stored notes that start with `prefix`, sorted."""
        sql = "SELECT DISTINCT kind FROM notes WHERE substr(kind, 1, ?) = ? ORDER BY kind"
        return [k for (k,) in self._read(lambda c: c.execute(sql, (len(prefix), prefix)).fetchall(), [])]

    def rows(self, note_kinds: tuple[str, ...] = (), note_prefix: str | None = None
             ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """Every setting (setting_id, json, task, model, created; as first stored), every run (the
        columns of `runs()` before the summary is parsed: run_id, setting_id, seed, task, model,
        status, started, finished, wall_s, batch_id, replicas_in_batch, summary text; by setting and
        seed) and the notes of these kinds or this prefix (id, kind, key, created, json text), in
        one read: what a report shows, as stored."""
        marks = ",".join("?" * len(note_kinds)) or "NULL"
        prefix = "" if note_prefix is None else " OR substr(kind, 1, ?) = ?"
        note_args = [*note_kinds, *([len(note_prefix), note_prefix] if note_prefix is not None else [])]

        def query(conn: sqlite3.Connection) -> tuple[list[Any], list[Any], list[Any]]:
            return (conn.execute("SELECT setting_id, json, task, model, created FROM settings"
                                 " ORDER BY created, setting_id").fetchall(),
                    conn.execute(RUNS_SQL + " ORDER BY r.setting_id, r.seed").fetchall(),
                    conn.execute(f"SELECT id, kind, key, created, json FROM notes WHERE kind IN ({marks}){prefix}"
                                 " ORDER BY id", note_args).fetchall())

        return self._read(query, ([], [], []))

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


def runs_frame(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    """`Catalog.runs()`'s table from rows of RUNS_SQL: summary keys flattened into columns."""
    if not rows:
        return pd.DataFrame(columns=RUN_COLUMNS)
    base = pd.DataFrame([r[:-1] for r in rows], columns=RUN_COLUMNS)
    flat = [_flatten(json.loads(r[-1]) if r[-1] else {}) for r in rows]
    extra = pd.DataFrame(flat, index=base.index)
    extra.columns = [f"summary.{c}" if c in RUN_COLUMNS else c for c in extra.columns]
    return pd.concat([base, extra], axis=1) if len(extra.columns) else base


def _chunks(ids: list[str]) -> Iterable[list[str]]:
    for i in range(0, len(ids), _CHUNK):
        yield ids[i : i + _CHUNK]


def _step_arrays(conn: sqlite3.Connection, ids: set[int]) -> dict[int, np.ndarray]:
    """The decoded step arrays with these ids (read-only: curves share them)."""
    rows: list[tuple[int, bytes]] = []
    ordered = sorted(ids)
    for i in range(0, len(ordered), _CHUNK):
        chunk = ordered[i : i + _CHUNK]
        rows += conn.execute(f"SELECT id, data FROM steps WHERE id IN ({','.join('?' * len(chunk))})",
                             chunk).fetchall()
    out = {}
    for (sid, _), arr in zip(rows, _decode(r[1] for r in rows), strict=True):
        arr.flags.writeable = False
        out[int(sid)] = arr
    return out


def _decode(blobs: Iterable[bytes]) -> list[np.ndarray]:
    try:
        return decode_many(blobs if isinstance(blobs, list) else list(blobs))
    except CodecError as exc:
        raise CatalogError(f"a stored curve cannot be read: {exc}") from None


def _flatten(obj: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in obj.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = math.nan if v is None else v
    return out
