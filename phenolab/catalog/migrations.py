"""Schema migrations: MIGRATIONS[v] upgrades a catalog from schema v to v + 1 inside the caller's
transaction (`schema._migrate`), so a crash leaves the old schema or the new one, never a mix.

Schema 1 → 2, compact curves: schema 1 stored each curve's steps (int64) and values (float64) raw,
one ~3.2 KB row per curve, so a 4 KB page held one row and most of the rest was padding (21 bytes
per point at 200 points). Schema 2 stores each distinct step array once (table `steps`) and each
curve's values as one blob in the smallest exact form (`codec.py`): every value reads back bit for
bit, which the conversion checks curve by curve before it drops the old table.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import numpy as np

from phenolab.catalog.codec import CodecError, decode_many, encode_run, encode_steps

STEPS_DDL = "CREATE TABLE steps(id INTEGER PRIMARY KEY, sha256 BLOB NOT NULL UNIQUE, data BLOB NOT NULL)"
CURVES_DDL = """CREATE TABLE curves(
        run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
        metric TEXT NOT NULL, steps_id INTEGER NOT NULL REFERENCES steps(id), vals BLOB NOT NULL,
        PRIMARY KEY(run_id, metric))"""
_CHUNK = 2000


class StepIds:
    """The id of each distinct step array, inserting the ones the catalog lacks (within the caller's
    write transaction; a dict remembers what this transaction already looked up)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.known: dict[bytes, int] = {}

    def __call__(self, key: bytes, blob: bytes) -> int:
        sid = self.known.get(key)
        if sid is None:
            row = self.conn.execute("SELECT id FROM steps WHERE sha256=?", (key,)).fetchone()
            if row is None:
                sid = int(self.conn.execute("INSERT INTO steps(sha256, data) VALUES (?, ?)", (key, blob)).lastrowid)
            else:
                sid = int(row[0])
            self.known[key] = sid
        return sid


def compact_curves(conn: sqlite3.Connection) -> None:
    """Schema 1 → 2: every curve re-encoded, checked bit for bit, the raw table dropped."""
    conn.execute("ALTER TABLE curves RENAME TO curves_v1")
    conn.execute(STEPS_DDL)
    conn.execute(CURVES_DDL)
    step_ids = StepIds(conn)
    last = -1
    while True:
        rows = conn.execute("SELECT rowid, run_id, metric, steps, vals FROM curves_v1 WHERE rowid > ?"
                            " ORDER BY rowid LIMIT ?", (last, _CHUNK)).fetchall()
        if not rows:
            break
        by_run: dict[str, list[tuple[str, bytes, bytes]]] = {}
        for _, run_id, metric, steps_raw, vals_raw in rows:  # a run's curves were written together
            by_run.setdefault(run_id, []).append((metric, steps_raw, vals_raw))
        out = []
        for run_id, curves in by_run.items():
            blobs = encode_run({m: np.frombuffer(v, dtype="<f8") for m, _, v in curves})
            decoded = decode_many([blobs[m] for m, _, _ in curves])
            for (metric, steps_raw, vals_raw), back in zip(curves, decoded, strict=True):
                if back.view("<u8").tobytes() != vals_raw:  # never lose a bit
                    raise CodecError(f"curve {run_id}/{metric} does not survive re-encoding")
                steps = step_ids(*encode_steps(np.frombuffer(steps_raw, dtype="<i8")))
                out.append((run_id, metric, steps, blobs[metric]))
        conn.executemany("INSERT INTO curves(run_id, metric, steps_id, vals) VALUES (?,?,?,?)", out)
        last = rows[-1][0]
    conn.execute("DROP TABLE curves_v1")


MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {1: compact_curves}
