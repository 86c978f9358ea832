"""The catalog's SQLite file: DDL, schema version, migrations, and opening a file safely.

Every connection is validated before anything is written, so a foreign SQLite file, a file that
is not SQLite at all, or a catalog written by a newer phenolab is refused with one clear line and
left byte-for-byte unchanged. Writes retry with backoff on "database is locked", so several
processes (a driver, a notebook, a second `phenolab run`) can share one catalog.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from phenolab.catalog.codec import CodecError
from phenolab.catalog.migrations import CURVES_DDL, MIGRATIONS, STEPS_DDL

SCHEMA_VERSION = 2
APPLICATION_ID = 0x50484C42  # "PHLB": marks the file as a phenolab catalog (PRAGMA application_id)
BUSY_TIMEOUT_S = 30.0
RETRY_DEADLINE_S = 300.0  # give up on a locked database after this long, on top of busy_timeout
_SQLITE_MAGIC = b"SQLite format 3\x00"

T = TypeVar("T")


class CatalogError(RuntimeError):
    """A catalog problem the user can act on; the message is one line."""


DDL: tuple[str, ...] = (
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE settings(
        setting_id TEXT PRIMARY KEY, json TEXT NOT NULL, task TEXT, model TEXT, created REAL NOT NULL)""",
    """CREATE TABLE runs(
        run_id TEXT PRIMARY KEY,
        setting_id TEXT NOT NULL REFERENCES settings(setting_id),
        seed INTEGER NOT NULL, status TEXT NOT NULL, started REAL, finished REAL, wall_s REAL,
        batch_id TEXT, replicas_in_batch INTEGER, provenance TEXT, summary TEXT,
        UNIQUE(setting_id, seed))""",
    STEPS_DDL,
    CURVES_DDL,
    """CREATE TABLE checkpoints(
        run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
        step INTEGER NOT NULL, path TEXT NOT NULL, sha256 TEXT NOT NULL,
        PRIMARY KEY(run_id, step))""",
    """CREATE TABLE notes(
        id INTEGER PRIMARY KEY, kind TEXT NOT NULL, key TEXT, json TEXT NOT NULL, created REAL NOT NULL)""",
    "CREATE INDEX notes_kind_key ON notes(kind, key)",
)

# MIGRATIONS[v] upgrades a file from schema v to v + 1 inside one transaction (migrations.py).


def is_busy(exc: BaseException) -> bool:
    """SQLite's lock contention, which is worth waiting out (anything else is a real error)."""
    msg = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in msg or "busy" in msg)


def with_retry(fn: Callable[[], T], deadline_s: float = RETRY_DEADLINE_S) -> T:
    """Call `fn` until it does not fail on a lock; busy_timeout alone misses some cases (WAL setup)."""
    start = time.monotonic()
    delay = 0.02
    while True:
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or time.monotonic() - start > deadline_s:
                raise
        time.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, 1.0)


def open_catalog(path: Path, *, write: bool) -> sqlite3.Connection | None:
    """A validated connection in autocommit mode (callers BEGIN themselves).

    For reading, a missing or still-empty file gives None and nothing is created; for writing,
    the parent directory and the schema are created on first use.
    """
    if not path.exists():
        if not write:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
    elif path.is_dir():
        raise CatalogError(f"{path} is a directory, not a phenolab catalog file")
    else:
        _check_header(path)
    mode = "rwc" if write else "rw"
    try:
        conn = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode={mode}",
            uri=True,
            timeout=BUSY_TIMEOUT_S,
            isolation_level=None,
            check_same_thread=False,
        )
    except sqlite3.OperationalError as exc:
        raise CatalogError(f"cannot open catalog {path}: {exc}") from None
    try:
        state = _state(conn, path)
        if state is None:
            if not write:
                conn.close()
                return None
            _initialize(conn, path)
        elif state < SCHEMA_VERSION:
            _migrate(conn, path)
        conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA journal_size_limit=67108864")  # a huge batch must not leave a huge -wal
        if write and conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            _set_wal(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def rollback(conn: sqlite3.Connection) -> None:
    """Roll back if a transaction is open (SQLite may already have rolled back on some errors)."""
    if conn.in_transaction:
        conn.execute("ROLLBACK")


def _check_header(path: Path) -> None:
    """Refuse a non-SQLite file before SQLite touches it (an empty file is a new catalog)."""
    try:
        with path.open("rb") as f:
            head = f.read(len(_SQLITE_MAGIC))
    except OSError as exc:
        raise CatalogError(f"cannot read catalog {path}: {exc}") from None
    if head and head != _SQLITE_MAGIC:
        raise CatalogError(f"{path} is not a phenolab catalog (not an SQLite database)")


def _state(conn: sqlite3.Connection, path: Path) -> int | None:
    """None for a blank database, else this catalog's schema version (refusing what isn't ours)."""

    def read() -> tuple[int, int, list[str]]:
        # One read transaction, so the three reads see one snapshot: read one by one, a process
        # creating the catalog meanwhile could commit between them (tables without the id).
        own = not conn.in_transaction
        if own:
            conn.execute("BEGIN")
        try:
            tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            app = conn.execute("PRAGMA application_id").fetchone()[0]
            ver = conn.execute("PRAGMA user_version").fetchone()[0]
        finally:
            if own:
                rollback(conn)
        return app, ver, tables

    try:
        app, ver, tables = with_retry(read)
    except sqlite3.DatabaseError as exc:
        if is_busy(exc):
            raise
        raise CatalogError(f"{path} is not a phenolab catalog ({exc})") from None
    if app == 0 and ver == 0 and not tables:
        return None
    if app != APPLICATION_ID:
        shown = ", ".join(sorted(tables)[:5]) or "none"
        raise CatalogError(
            f"{path} is not a phenolab catalog (an SQLite file with application_id {app}; tables: {shown})"
        )
    if ver > SCHEMA_VERSION:
        raise CatalogError(
            f"{path} was written by a newer phenolab (schema {ver}; this version reads ≤ {SCHEMA_VERSION});"
            " upgrade phenolab to read it"
        )
    return ver


def _initialize(conn: sqlite3.Connection, path: Path) -> None:
    """Create the schema once, even when several processes open a new catalog at the same moment."""

    def create() -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            if _state(conn, path) is None:  # re-read under the write lock: another process may have won
                for stmt in DDL:
                    conn.execute(stmt)
                conn.executemany(
                    "INSERT INTO meta(key, value) VALUES (?, ?)",
                    [
                        ("schema_version", str(SCHEMA_VERSION)),
                        ("application", "phenolab"),
                        ("created", repr(time.time())),
                    ],
                )
                conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            rollback(conn)
            raise

    with_retry(create)
    _set_wal(conn)


def _set_wal(conn: sqlite3.Connection) -> None:
    """WAL lets readers work while a batch is written; if another connection blocks the switch
    (SQLite then keeps the old mode), the next write tries again."""
    with contextlib.suppress(sqlite3.OperationalError):
        conn.execute("PRAGMA journal_mode=WAL").fetchone()


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Bring an older catalog up to SCHEMA_VERSION, one step per transaction."""

    def step() -> bool:
        conn.execute("BEGIN IMMEDIATE")
        try:
            ver = conn.execute("PRAGMA user_version").fetchone()[0]
            if ver >= SCHEMA_VERSION:
                conn.execute("COMMIT")
                return False
            if ver not in MIGRATIONS:
                raise CatalogError(f"{path}: no migration from catalog schema {ver} to {ver + 1}")
            try:
                MIGRATIONS[ver](conn)
            except CodecError as exc:
                raise CatalogError(f"{path}: migration from catalog schema {ver} failed ({exc})") from None
            conn.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(ver + 1),))
            conn.execute(f"PRAGMA user_version={ver + 1}")
            conn.execute("COMMIT")
            return True
        except BaseException:
            rollback(conn)
            raise

    migrated = False
    while with_retry(step):
        migrated = True
    if migrated:  # give the old layout's pages back to the file system (skipped while others use it)
        conn.execute("PRAGMA busy_timeout=1000")
        with contextlib.suppress(sqlite3.OperationalError):
            conn.execute("VACUUM")


# ---- JSON and setting filters -------------------------------------------------------------
_JSON_TOKEN = re.compile(r'"(?:\\.|[^"\\])*"|-?Infinity|NaN')


def loads_object(text: str, where: str) -> dict[str, Any]:
    """Parse a JSON object (a stored setting, a bundle line); anything else is one CatalogError line
    starting with `where`, so a corrupt row is named instead of surfacing as a bare ValueError."""
    try:
        obj = json.loads(text)
    except ValueError as exc:
        raise CatalogError(f"{where}: invalid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise CatalogError(f"{where}: JSON must be an object")
    return obj


def dumps_json(obj: Any) -> str:
    """Standard JSON (SQLite's json functions accept it): NaN -> null, ±inf -> ±9e999 (reads back as ±inf)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_json_default)
    subst = {"NaN": "null", "Infinity": "9e999", "-Infinity": "-9e999"}
    return _JSON_TOKEN.sub(lambda m: subst.get(m.group(0), m.group(0)), text)


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.ndarray, torch.Tensor)):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"cannot store {type(o).__name__} in the catalog as JSON")


def json_path(dotted: str) -> str:
    """'model.width' -> '$.model.width', refusing anything but plain field names and [i]."""
    if not re.fullmatch(r"[A-Za-z_][\w]*(\[\d+\])?(\.[A-Za-z_][\w]*(\[\d+\])?)*", dotted):
        raise CatalogError(f"bad setting field {dotted!r} in where=; use dotted names like 'model.width'")
    return "$." + dotted


def where_sql(setting_id: str | None, where: dict[str, Any] | None) -> tuple[list[str], list[Any]]:
    """SQL conditions on runs `r` joined to settings `s`: values are bound, never spliced in."""
    conds: list[str] = []
    params: list[Any] = []
    if setting_id is not None:
        conds.append("r.setting_id = ?")
        params.append(setting_id)
    for path, value in (where or {}).items():
        if value is None:
            conds.append("json_type(s.json, ?) = 'null'")
            params.append(json_path(path))
        elif isinstance(value, (list, tuple, dict)):
            conds.append("json_extract(s.json, ?) = json(?)")
            params += [json_path(path), dumps_json(value)]
        else:
            conds.append("json_extract(s.json, ?) = ?")
            params += [json_path(path), value.item() if isinstance(value, np.generic) else value]
    return conds, params


def check_paths_exist(conn: sqlite3.Connection, where: dict[str, Any]) -> None:
    """A misspelled field would silently match nothing; say so when no stored setting has it."""
    if conn.execute("SELECT 1 FROM settings LIMIT 1").fetchone() is None:
        return
    for path in where:
        hit = conn.execute(
            "SELECT 1 FROM settings WHERE json_type(json, ?) IS NOT NULL LIMIT 1", (json_path(path),)
        )
        if hit.fetchone() is None:
            raise CatalogError(
                f"no stored setting has a field {path!r}; see Catalog.setting(id) for the fields"
            )
