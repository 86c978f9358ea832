"""A bundle's curves: written as the catalog stores them (version 2), read from either version.

Version 2 (`curve_blobs.parquet`): one row per curve with the catalog's own blobs (`codec.py`), so
export copies bytes and import decodes each blob once, to check it, and stores it as it is.
Version 1 (`curves.parquet`): the long table run_id, metric, step, value, encoded on import.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from phenolab.catalog._reads import _CHUNK
from phenolab.catalog.codec import CodecError, decode_many, element_count, encode_run, encode_steps
from phenolab.catalog.schema import CatalogError
from phenolab.catalog.store import Catalog, CurveRow

CURVE_FILES = {1: "curves.parquet", 2: "curve_blobs.parquet"}
LONG_COLUMNS = ["run_id", "metric", "step", "value"]
BLOB_COLUMNS = ["run_id", "metric", "steps", "values"]


def write_curves(catalog: Catalog, run_ids: list[str], root: Path) -> dict[str, int]:
    """curve_blobs.parquet of these runs, their blobs copied from the catalog; the counts for the manifest."""

    def query(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = []
        ids = sorted(set(run_ids))
        for i in range(0, len(ids), _CHUNK):
            chunk = ids[i : i + _CHUNK]
            rows += conn.execute(
                "SELECT c.run_id, c.metric, s.data, c.vals FROM curves c JOIN steps s ON s.id = c.steps_id"
                f" WHERE c.run_id IN ({','.join('?' * len(chunk))}) ORDER BY c.run_id, c.metric", chunk).fetchall()
        return rows

    rows = catalog._read(query, [])
    cols = list(zip(*rows, strict=True)) if rows else [[], [], [], []]
    table = pa.table({"run_id": pa.array(cols[0], pa.string()), "metric": pa.array(cols[1], pa.string()),
                      "steps": pa.array(cols[2], pa.binary()), "values": pa.array(cols[3], pa.binary())})
    # the blobs are compressed already; runs, metrics and the step arrays they share are dictionary-encoded
    pq.write_table(table, root / CURVE_FILES[2], use_dictionary=["run_id", "metric", "steps"],
                   compression={"run_id": "zstd", "metric": "zstd", "steps": "zstd", "values": "none"})
    return {"curves": len(rows), "points": sum(element_count(v) for v in cols[3])}


def read_curves(root: Path, version: int, run_ids: set[str]) -> tuple[dict[str, list[CurveRow]], dict[str, int]]:
    """{run_id: encoded curves} of a bundle, every curve checked; and the counts to match the manifest."""
    if version == 1:
        return _read_long(root, run_ids)
    table = _read_table(root, CURVE_FILES[2])
    if table.column_names != BLOB_COLUMNS or not all(
            pa.types.is_binary(table.schema.field(c).type) for c in ("steps", "values")):
        raise CatalogError(f"bundle {root}: {CURVE_FILES[2]} columns {table.column_names}; expected {BLOB_COLUMNS}"
                           " (steps and values binary)")
    rids, metrics = table.column("run_id").to_pylist(), table.column("metric").to_pylist()
    steps, values = table.column("steps").to_pylist(), table.column("values").to_pylist()
    unique_steps = list(dict.fromkeys(steps))
    try:
        step_arrays = dict(zip(unique_steps, decode_many(unique_steps, strict=True), strict=True))
        value_arrays = decode_many(values, strict=True)
    except CodecError as exc:
        raise CatalogError(f"bundle {root}: {CURVE_FILES[2]}: {exc}") from None
    keys = {blob: hashlib.sha256(arr.astype("<i8").tobytes()).digest() for blob, arr in step_arrays.items()}
    out: dict[str, list[CurveRow]] = {}
    seen: set[tuple[str, str]] = set()
    for rid, metric, s, v, arr in zip(rids, metrics, steps, values, value_arrays, strict=True):
        _check_row(root, CURVE_FILES[2], rid, metric, run_ids, seen)
        if step_arrays[s].dtype != np.int64 or arr.dtype != np.float64 or step_arrays[s].size != arr.size:
            raise CatalogError(f"bundle {root}: curve {rid}/{metric}: steps and values do not match")
        out.setdefault(rid, []).append((metric, keys[s], s, v))
    return out, {"curves": len(rids), "points": sum(a.size for a in value_arrays)}


def _read_long(root: Path, run_ids: set[str]) -> tuple[dict[str, list[CurveRow]], dict[str, int]]:
    df = _read_table(root, CURVE_FILES[1]).to_pandas()
    if list(df.columns) != LONG_COLUMNS:
        raise CatalogError(f"bundle {root}: {CURVE_FILES[1]} columns {list(df.columns)}; expected {LONG_COLUMNS}")
    if not (pd.api.types.is_integer_dtype(df["step"]) and pd.api.types.is_float_dtype(df["value"])):
        raise CatalogError(f"bundle {root}: {CURVE_FILES[1]} needs integer steps and float values")
    unknown = set(df["run_id"].unique()) - run_ids
    if unknown:
        raise CatalogError(f"bundle {root}: {CURVE_FILES[1]} has run {sorted(unknown)[0]!r},"
                           " which the bundle's runs lack")
    out: dict[str, list[CurveRow]] = {}
    for rid, run in df.groupby("run_id", sort=True):
        curves = {str(m): (g["step"].to_numpy(np.int64), g["value"].to_numpy(np.float64))
                  for m, g in run.groupby("metric", sort=True)}
        blobs = encode_run({m: v for m, (_, v) in curves.items()})
        out[str(rid)] = [(m, *encode_steps(s), blobs[m]) for m, (s, _) in curves.items()]
    return out, {"curve_rows": len(df)}


def _read_table(root: Path, name: str) -> pa.Table:
    try:
        return pq.read_table(root / name)
    except Exception as exc:  # pyarrow raises many types for a bad file
        raise CatalogError(f"bundle {root}: {name} cannot be read ({str(exc).splitlines()[0]})") from None


def _check_row(root: Path, name: str, rid: Any, metric: Any, run_ids: set[str], seen: set[tuple[str, str]]) -> None:
    if not isinstance(rid, str) or not isinstance(metric, str):
        raise CatalogError(f"bundle {root}: {name} has a curve without run id or metric")
    if rid not in run_ids:
        raise CatalogError(f"bundle {root}: {name} has run {rid!r}, which the bundle's runs lack")
    if (rid, metric) in seen:
        raise CatalogError(f"bundle {root}: {name} has curve {rid}/{metric} twice")
    seen.add((rid, metric))
