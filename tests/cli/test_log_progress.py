"""Plain progress lines for logs (the first within seconds, then one per period), the busy-CPU note, `--version`."""

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


def test_a_busy_cpu_is_said_once_before_training(monkeypatch) -> None:
    monkeypatch.setenv("PHENOLAB_BUSY_NOTE", "1")
    assert _common.busy_cpu_note(load=0.4, cores=2) is None
    assert _common.busy_cpu_note(load=1.9, cores=2) is None
    note = _common.busy_cpu_note(load=2.0, cores=2)
    assert note is not None and "load 2.0 on 2 cores" in note
    monkeypatch.setenv("PHENOLAB_BUSY_NOTE", "0")
    assert _common.busy_cpu_note(load=9.0, cores=2) is None
