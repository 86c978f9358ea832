"""The `phenolab` entry point answers `--help` and `--version` without importing torch, with the
full CLI's own text: the first `--help` renders and caches it, later ones read it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # fresh interpreters

PROBE = ("import sys, _phenolab_launcher as L; sys.argv = ['phenolab', *sys.argv[1:]]; L.main(); "
         "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH', file=sys.stderr)")


def launch(*args: str, cache: Path) -> tuple[subprocess.CompletedProcess, float]:
    env = dict(os.environ, PHENOLAB_CACHE=str(cache), COLUMNS="100")
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], env=env, capture_output=True, text=True, timeout=120)
    return proc, time.perf_counter() - start


def test_help_is_the_full_clis_and_later_calls_skip_torch(tmp_path) -> None:
    first, _ = launch("--help", cache=tmp_path)
    assert first.returncode == 0 and "TORCH" in first.stderr.split()  # rendered by the full CLI once
    full = subprocess.run([sys.executable, "-c", "from phenolab.cli import main; main()", "--help"],
                          env=dict(os.environ, COLUMNS="100"), capture_output=True, text=True, timeout=120)
    assert first.stdout == full.stdout and "tournament" in first.stdout
    again, seconds = launch("--help", cache=tmp_path)
    bare, _ = launch(cache=tmp_path)
    assert again.stdout == bare.stdout == first.stdout
    assert "NO-TORCH" in again.stderr.split() and "NO-TORCH" in bare.stderr.split()
    assert seconds < 2.0  # an interpreter and a file read (about 0.06 s on a 2-core VM); torch alone takes ~1 s
    (cached,) = (tmp_path / "help").glob("*.txt")
    cached.write_text("stale")
    import _phenolab_launcher

    os.utime(Path(_phenolab_launcher.__file__).resolve().parent / "phenolab" / "cli" / "__init__.py")  # a change…
    fresh, _ = launch("--help", cache=tmp_path)
    assert fresh.stdout == first.stdout  # …is another key: never the stale text


def test_version_without_torch(tmp_path) -> None:
    import importlib.metadata

    proc, _ = launch("--version", cache=tmp_path)
    assert proc.stdout.strip() == (f"phenolab {importlib.metadata.version('phenolab')} "
                                   f"(torch {importlib.metadata.version('torch')})")
    assert "NO-TORCH" in proc.stderr.split()
