"""Compute with AVX2 kernels on CPUs that also have AVX-512, so a run's numbers do not depend on
which x86-64 CPU computed them. Set before torch is imported.

MKL (GEMMs), torch's own vectorized kernels and oneDNN each pick code by the widest instruction
set the CPU has, and AVX-512 code adds in another order than AVX2 code, so the same setting and
seed gives other numbers on an AVX-512 CPU than on an AVX2 one; with these three capped at AVX2
both give the same numbers (docs/architecture.md, "Same numbers on another machine"; what the
cap costs: `bench/README.md`). CPUs with 512-bit units (many Intel servers) may lose GEMM speed:
`PHENOLAB_CPU_ISA=native` leaves the choice to the libraries.

The cap is three environment variables the libraries read when they first compute:
`MKL_ENABLE_INSTRUCTIONS=AVX2`, `ATEN_CPU_CAPABILITY=avx2` and `ONEDNN_MAX_CPU_ISA=AVX2`; one the
user has set is left as it is. Nothing is set on CPUs without AVX-512 (they run AVX2 code
anyway), outside Linux x86-64 (no /proc/cpuinfo to check for AVX2: `ATEN_CPU_CAPABILITY=avx2` on
a CPU without it would crash), or when torch was imported first (too late). `STATE` says which;
provenance records it, with the capability torch actually uses, for every run.
"""

from __future__ import annotations

import os
import platform
import sys
import warnings
from collections.abc import Mapping

from phenolab._cpuinfo import cpu_flags

CAP = {"MKL_ENABLE_INSTRUCTIONS": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
MODES = ("avx2", "native")

STATE = "not tried"  # "avx2: ...", "native: <why>" or "invalid: <message>"; read by provenance and the CLI
TOO_LATE = "torch was imported before phenolab"


def plan(mode: str, linux_x86: bool, flags: frozenset[str], torch_loaded: bool,
         environ: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    """(STATE, the variables to set) for `PHENOLAB_CPU_ISA=mode` on this CPU and environment."""
    mode = mode.strip().lower()
    if mode not in MODES:
        return f"invalid: PHENOLAB_CPU_ISA={mode!r}; allowed: {', '.join(MODES)}", {}
    if mode == "native":
        return "native: PHENOLAB_CPU_ISA=native", {}
    if not linux_x86:
        return "native: not Linux x86-64", {}
    if "avx512f" not in flags:
        return "native: no AVX-512 (AVX2 code or narrower already)", {}
    if "avx2" not in flags:
        return "native: no AVX2", {}
    todo = {k: v for k, v in CAP.items() if k not in environ}
    if todo and torch_loaded:  # (all set already, e.g. inherited from a phenolab parent: they hold)
        return f"native: {TOO_LATE}", {}
    kept = [f"{k}={environ[k]} (set before)" for k in CAP if k in environ]
    return "avx2: " + " ".join([f"{k}={v}" for k, v in todo.items()] + kept), todo


def pin() -> str:
    """Cap the kernels at AVX2 where that changes anything (see the module doc); return `STATE`."""
    global STATE
    if STATE != "not tried":
        return STATE
    STATE, todo = plan(os.environ.get("PHENOLAB_CPU_ISA", "avx2"),
                       sys.platform.startswith("linux") and platform.machine() == "x86_64",
                       cpu_flags(), "torch" in sys.modules, os.environ)
    os.environ.update(todo)
    return STATE


def warn_if_too_late(mkl_amd_state: str) -> None:
    """One warning when importing torch first kept either start-up switch from acting where it
    would have (AMD's MKL kernels, the AVX2 cap): the numbers then differ from other machines'."""
    lost = [what for what, state in (("MKL's fast kernels for AMD CPUs", mkl_amd_state),
                                     ("the AVX2 cap on this AVX-512 CPU", STATE)) if TOO_LATE in state]
    if lost:
        warnings.warn(f"phenolab: torch was imported before phenolab, so {' and '.join(lost)} could not be "
                      "set up: these runs' numbers can differ from other machines' and the documented ones "
                      "(provenance records it); import phenolab first", RuntimeWarning, stacklevel=3)


def check() -> None:
    """Raise ValueError naming the bad `PHENOLAB_CPU_ISA` value and the allowed ones, if it is bad
    (`pin` runs at import, where an error would be a traceback: the CLI and `train` call this)."""
    if STATE.startswith("invalid: "):
        raise ValueError(STATE.removeprefix("invalid: "))
