"""What the tests share: running the CLI (in-process through Typer or the real entry point, or in a
fresh interpreter) and tiny settings that train in well under a second."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

# gromov2023 shrunk to p = 13 and 30 full-batch steps: a real run in a fraction of a second
TINY_GROK = ["--set", "task.p=13", "--set", "schedule.steps=30"]
# mnist1d_mlp shrunk: 300 samples, width 16, 2 epochs
TINY_MLP = ["--set", "task.num_samples=300", "--set", "model.width=16", "--set", "schedule.epochs=2",
            "--set", "eval.points=4"]


def invoke(*args: object, input: str | None = None, catch_exceptions: bool = False) -> Result:
    """The CLI in-process through Typer's test runner, `input` typed on stdin; exceptions propagate
    (a SettingError is the one-line error `phenolab.cli.main` would print) unless `catch_exceptions`,
    which leaves them in `res.exception` with a non-zero `res.exit_code`."""
    from phenolab.cli import app

    return CliRunner().invoke(app, [str(a) for a in args], input=input, catch_exceptions=catch_exceptions)


def ok(*args: object) -> str:
    """`invoke`, asserting exit code 0; returns the output."""
    res = invoke(*args)
    assert res.exit_code == 0, res.output
    return res.output


def run_main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: object,
             ) -> tuple[int, str, str]:
    """The real entry point (`phenolab.cli.main`: user errors are one line and exit 2) in-process:
    (exit code, stdout, stderr)."""
    from phenolab.cli import main

    monkeypatch.setattr(sys, "argv", ["phenolab", *map(str, args)])
    try:
        main()
        code = 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else 0
    out = capsys.readouterr()
    return code, out.out, out.err


def user_error(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: object) -> str:
    """`run_main` on input it must refuse: asserts exit code 2 and exactly one line on stderr, and
    returns that line (what was captured before the call is dropped)."""
    capsys.readouterr()
    code, _, err = run_main(monkeypatch, capsys, *args)
    assert code == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    return lines[0]


def run_subprocess(*args: object, cwd: Path, path: Path | str | None = None, timeout: int = 300,
                   **env_vars: str) -> subprocess.CompletedProcess:
    """The CLI in a fresh interpreter (one torch thread), with `path` (e.g. a pip --target) importable."""
    env = dict(os.environ, PHENOLAB_THREADS="1", **env_vars)
    if path:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(path), env.get("PYTHONPATH", "")) if p)
    return subprocess.run([sys.executable, "-c", "from phenolab.cli import main; main()", *map(str, args)],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
