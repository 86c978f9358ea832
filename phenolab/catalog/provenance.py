"""Provenance: what produced a run, so any number in a report can be traced to code and machine.

Called once per batch, so everything slow (git, package metadata) is looked up once per process.
"""

from __future__ import annotations

import datetime as _dt
import functools
import os
import platform
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from phenolab import _cpu_isa, _mkl_amd
from phenolab._cpuinfo import cpuinfo

_PKG_DIR = Path(__file__).resolve().parent.parent  # the `phenolab` package directory


def utc_now() -> str:
    """ISO-8601 UTC timestamp with seconds, e.g. '2026-01-31T12:00:00Z'."""
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@functools.lru_cache(maxsize=1)
def phenolab_version() -> str:
    try:
        return metadata.version("phenolab")
    except metadata.PackageNotFoundError:
        return "unknown"


@functools.lru_cache(maxsize=1)
def git_state() -> tuple[str | None, bool | None]:
    """(commit, dirty) of the checkout phenolab is imported from, or (None, None) when not in one.

    An installed copy (site-packages) is never attributed to whatever repository happens to
    contain the virtual environment. Untracked files don't count as dirty (the catalog may live
    in the checkout).
    """
    if "site-packages" in _PKG_DIR.parts or "dist-packages" in _PKG_DIR.parts:
        return None, None
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}  # never take the index lock: other runs are writing

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", "-C", str(_PKG_DIR), *args],
                capture_output=True,
                text=True,
                timeout=3,
                env=env,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return None, None
    status = git("status", "--porcelain", "--untracked-files=no")
    return commit, (None if status is None else bool(status))


def collect_provenance(device: str, threads: int) -> dict[str, Any]:
    """Versions, machine, device and git state for the runs of one batch (JSON-ready)."""
    commit, dirty = git_state()
    prov: dict[str, Any] = {
        "phenolab": phenolab_version(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        "argv": list(sys.argv),
        "device": str(device),
        "device_name": None,
        "threads": int(threads),
        "torch_threads": torch.get_num_threads(),
        "mkl_amd_shim": _mkl_amd.STATE,  # which GEMM kernels ran (they round differently)
        "cpu_isa": _cpu_isa.STATE,  # AVX2 kernels on an AVX-512 CPU, or the libraries' own choice
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),  # torch's vectorized kernels
        "cpu_model": cpuinfo("model name"),
        "git_commit": commit,
        "git_dirty": dirty,
        "timestamp": utc_now(),
    }
    if str(device).startswith("cuda") and torch.cuda.is_available():
        prov["device_name"] = torch.cuda.get_device_name(torch.device(device))
    return prov
