"""What the bad-input tests share: a small catalog (runs, curves, a registered hypothesis and a note),
a fingerprint of everything in it, and the assertion every refused command must pass."""

from __future__ import annotations

import hashlib
import sqlite3
from contextlib import closing
from pathlib import Path

from phenolab import Catalog, resolve_setting, run

# gromov2023 shrunk: p = 13, 30 full-batch steps, 8 eval points; trains in a fraction of a second
TINY = {"task.p": 13, "schedule.steps": 30, "eval.points": 8}
TINY_ARGS = ["--set", "task.p=13", "--set", "schedule.steps=30", "--set", "eval.points=8"]
HYPOTHESIS = """\
name: tiny-weight-norm
statement: weight norm tracks test accuracy on a tiny grokking setting
measure: weight_norm
target: test_acc
relation: {statistic: spearman, over: steps, direction: positive, threshold: 0.8}
scope:
  - setting: gromov2023
    overrides: {task.p: 13, schedule.steps: 30, eval.points: 8}
    seeds: 3
"""


def small_catalog(root: Path) -> Catalog:
    """A catalog with 3 stored runs of the tiny setting (seeds 0-2), a registered hypothesis and a note."""
    from phenolab.hypotheses import HypothesisLog, load_hypothesis

    root.mkdir(parents=True, exist_ok=True)
    cat = Catalog(root / "catalog.db")
    run(resolve_setting("gromov2023", TINY), [0, 1, 2], cat, device="cpu")
    (root / "hypothesis.yaml").write_text(HYPOTHESIS)
    HypothesisLog(cat).register(load_hypothesis(root / "hypothesis.yaml"))
    cat.add_note("test", "fixture", {"ok": True})
    return cat


def fingerprint(db: Path) -> dict[str, str]:
    """A hash of every row of every table (runs, curves, settings, notes with the hypothesis log, ...),
    read without writing, whatever the schema is."""
    with closing(sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)) as conn:
        tables = [t for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        out = {}
        for table in tables:
            digest = hashlib.sha256()
            for row in conn.execute(f'SELECT * FROM "{table}" ORDER BY 1'):
                digest.update(repr(row).encode())
            out[table] = digest.hexdigest()
        return out


def integrity(db: Path) -> str:
    with closing(sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.strip()]


def assert_refused_cleanly(code: int, err: str, before: dict[str, str], db: Path, what: str) -> str:
    """Exit 2 with exactly one `error:` line on stderr and nothing else there, no traceback, and the
    catalog exactly as it was; returns the line."""
    lines = error_lines(err)
    assert code == 2, f"{what}: exit {code}\n{err}"
    assert len(lines) == 1 and lines[0].startswith("error: "), f"{what}: not one error line:\n{err}"
    assert "Traceback" not in err, f"{what}:\n{err}"
    assert fingerprint(db) == before, f"{what}: a refused command changed the catalog"
    return lines[0]
