"""Plain progress lines for logs (the first within seconds, then one per period), and `--version`."""

from __future__ import annotations

from phenolab.cli import _common


def test_first_line_within_seconds_then_every_period(monkeypatch, capsys) -> None:
    now = [100.0]
    monkeypatch.setattr(_common.time, "monotonic", lambda: now[0])
    progress = _common.LogProgress(every=10.0, total_runs=4)
    progress.add_task("training", total=1000)
    for t, done in ((1.0, 10), (2.9, 20), (3.1, 30), (5.0, 40), (13.0, 50), (13.2, 60), (23.5, 70)):
        now[0] = 100.0 + t
        progress.update(0, completed=done)
    lines = capsys.readouterr().err.splitlines()
    assert [ln.split(":")[1].split("/")[0].strip() for ln in lines] == ["30", "60", "70"]
    assert "ETA" in lines[0] and "runs 0/4" in lines[0]


def test_version() -> None:
    import importlib.metadata

    import torch

    from tests.helpers import ok

    out = ok("--version")
    assert out.strip() == f"phenolab {importlib.metadata.version('phenolab')} (torch {torch.__version__})"
