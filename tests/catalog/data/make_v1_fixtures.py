"""Writes the schema-1 fixtures beside this file with the catalog code of commit b4cd765 (schema 1,
bundle version 1), the last one that wrote them:

    git archive b4cd765 phenolab | tar -x -C /tmp/phenolab-v1
    PYTHONPATH=/tmp/phenolab-v1 python tests/catalog/data/make_v1_fixtures.py

catalog-v1.db holds curves chosen to catch a lossy or wrong conversion: float32-exact values, k/n
accuracies, float64 noise, NaN, ±inf, -0.0, subnormals, empty and one-point curves, step arrays
shared and not; bundle-v1/ is two of its runs exported by that version's `export_bundle`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch

from phenolab.catalog import Catalog, RunRecord
from phenolab.catalog.bundle import export_bundle
from phenolab.settings import resolve_setting

HERE = Path(__file__).parent


def curves(seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    steps = np.unique(np.round(np.geomspace(1, 5000, 60)).astype(np.int64))
    n = steps.size
    out = {
        "train_acc": (steps, np.rint(rng.random(n) * 2823) / 2823),
        "test_acc": (steps, np.sort(rng.integers(0, 6586, n)) / 6586),
        "train_loss": (steps, rng.random(n).astype(np.float32).astype(np.float64)),
        "test_loss": (steps, rng.random(n) * 3.0),
        "weight_norm": (steps, np.cumsum(rng.random(n)) + 1e-300),
        "odd": (np.array([0, 3, 2**40, -5], dtype=np.int64),
                np.array([np.nan, -0.0, np.inf, -np.inf])),
        "subnormal": (np.array([7, 8], dtype=np.int64), np.array([5e-324, -2.5e-310])),
        "one": (np.array([9], dtype=np.int64), np.array([0.1])),
        "empty": (np.array([], dtype=np.int64), np.array([], dtype=np.float64)),
        "constant": (steps, np.full(n, 0.5)),
    }
    if seed % 2:
        out["late"] = (np.arange(100, 100 + 7 * 40, 7, dtype=np.int64), rng.standard_normal(40))
    return out


def main() -> None:
    db = HERE / "catalog-v1.db"
    for p in HERE.glob("catalog-v1.db*"):
        p.unlink()
    shutil.rmtree(HERE / "bundle-v1", ignore_errors=True)
    cat = Catalog(db)
    for frac in (0.3, 0.5):
        s = resolve_setting("gromov2023", {"task.p": 13, "task.train_fraction": frac})
        recs = []
        for seed in range(3):
            cv = curves(seed + int(frac * 10))
            summary = {f"final_{m}": float(v[-1]) for m, (_, v) in cv.items() if v.size}
            ckpt = {5: {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3) * seed}} if seed == 0 else {}
            recs.append(RunRecord(s.id, seed, cv, summary, {"device": "cpu", "replica": seed}, 1000.0 + seed,
                                  1010.0 + seed, 10.0, batch_id=f"{s.id}@1", replicas_in_batch=3,
                                  checkpoints=ckpt))
        cat.write_runs(s.canonical_json(), s.id, recs)
    cat.add_note("signature", "grokking:gromov2023:x", {"phenomenon": "grokking", "seeds": [0, 1, 2]})
    ids = list(cat.runs(where={"task.train_fraction": 0.3})["run_id"])[:2]
    export_bundle(cat, HERE / "bundle-v1", ids)
    # one file, no -wal/-shm beside it
    import sqlite3

    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.execute("VACUUM")
    conn.close()


if __name__ == "__main__":
    main()
