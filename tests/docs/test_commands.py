"""Every `phenolab` command in README.md and docs/ still works, so the docs cannot rot.

Commands are read from fenced `bash`/`console`/`sh` blocks (in `console` blocks only the lines
after a `$ ` prompt). Training commands (`reproduce`, `phase`, `sweep`, `train`, `audit`) run with
`--dry-run`: every flag, setting, option and seed range is checked exactly as a real run checks
it, and nothing is trained (a `--device cuda` command is checked as its CPU twin on a machine
without a GPU). Other commands must name a real command (`--help` of it runs). Blocks whose info
string says `runnable` are run for real, against a fresh catalog.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import torch

from tests.helpers import invoke

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```", re.S | re.M)
PLACEHOLDER = re.compile(r"<[^>]*>|^[A-Z][A-Z_]+$|…|\.\.\.")
PLUGIN = re.compile(r"sparse.parity")  # the example plug-in's names
DRY_RUN = {"reproduce", "phase", "sweep", "train", "audit"}


def commands(page: Path) -> list[tuple[str, bool, list[str]]]:
    """(where, runnable, argv after `phenolab`) of every phenolab command in the page's code blocks."""
    out = []
    for match in FENCE.finditer(page.read_text(encoding="utf-8")):
        info, body = match.group(1).strip().split(), match.group(2)
        if not info or info[0] not in ("bash", "console", "sh"):
            continue
        text = body.replace("\\\n", " ")
        for line in text.splitlines():
            line = line.strip()
            if info[0] == "console":
                if not line.startswith("$ "):
                    continue
                line = line[2:]
            try:
                argv = shlex.split(line, comments=True)
            except ValueError:
                continue
            if argv and argv[0].endswith("phenolab"):
                out.append((f"{page.relative_to(ROOT)}:{lines_before(page, match.start()) + 1}", "runnable" in info,
                            argv[1:]))
    return out


def lines_before(page: Path, offset: int) -> int:
    return page.read_text(encoding="utf-8")[:offset].count("\n")


CASES = [c for page in PAGES for c in commands(page)]


def test_the_docs_have_commands_to_check():
    assert len(CASES) >= 30, [c[0] for c in CASES]


@pytest.mark.parametrize("where, runnable, argv", CASES, ids=[f"{c[0]} {' '.join(c[2])[:50]}" for c in CASES])
def test_a_documented_command_is_valid(where, runnable, argv, tmp_path, monkeypatch):
    monkeypatch.setenv("PHENOLAB_CATALOG", str(tmp_path / "cat"))
    monkeypatch.chdir(tmp_path)
    if any(PLACEHOLDER.search(a) for a in argv):
        pytest.skip(f"{where}: a placeholder to fill in")
    if any(PLUGIN.search(a) for a in argv):
        pytest.skip(f"{where}: needs the example plug-in installed (tests/plugins runs these commands)")
    if not torch.cuda.is_available():  # a GPU command is checked as the same command on the CPU
        argv = ["cpu" if a.startswith("cuda") and i and argv[i - 1] == "--device" else a for i, a in enumerate(argv)]
    if runnable:
        res = invoke(*argv, catch_exceptions=True)
    elif argv and argv[0] in DRY_RUN and "--help" not in argv:
        res = invoke(*argv, "--dry-run", catch_exceptions=True)
    else:
        path = [a for a in argv[:2] if not a.startswith("-")][:2]
        res = invoke(*path, "--help", catch_exceptions=True)
        if res.exit_code != 0:  # a command with one level only (`phenolab runs ARG`)
            res = invoke(*path[:1], "--help", catch_exceptions=True)
    assert res.exit_code == 0, f"{where}: phenolab {' '.join(argv)}\n{res.output}\n{res.exception!r}"
