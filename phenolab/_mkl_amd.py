"""Let MKL use its fast code paths on AMD CPUs (Linux), before torch is imported.

PyPI's CPU torch does its GEMMs with a statically linked MKL, and MKL picks slower kernels when
`mkl_serv_intel_cpu_true()` says the CPU is not Intel's, even on AMD CPUs with the same AVX2/FMA
(or AVX-512) units. A one-line library defining that function as `return 1`, loaded into the
global symbol scope *before* torch's libraries, is found first when torch's MKL looks the
function up (the well-known LD_PRELOAD workaround, done from Python). MKL still checks which
instruction sets the CPU has, so it only stops discriminating by vendor (what that gains:
`bench/README.md`).

The library is compiled once with the system's C compiler into phenolab's cache directory. Without
a compiler, on Intel CPUs, outside Linux x86-64, when torch was imported first, or with
`PHENOLAB_MKL_AMD=0`, nothing happens and `STATE` says why; provenance records it per run, since
different kernels round differently (same setting + seed ⇒ same numbers needs the same state).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from phenolab._cache import cache_dir
from phenolab._cpuinfo import cpuinfo

_SOURCE = "int mkl_serv_intel_cpu_true(void) { return 1; }\n"

STATE = "not tried"  # "on", or "off: <why>"; read by catalog provenance


def _cpu_vendor() -> str:
    return cpuinfo("vendor_id") or "unknown"


def _build(target: Path) -> None:
    """Compile `_SOURCE` into `target` atomically (parallel processes may race: each renames its own file)."""
    compiler = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if compiler is None:
        raise OSError("no C compiler (cc or gcc) on PATH")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        src, lib = Path(tmp) / "shim.c", Path(tmp) / "shim.so"
        src.write_text(_SOURCE)
        done = subprocess.run([compiler, "-shared", "-fPIC", "-O2", "-o", str(lib), str(src)],
                              capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            raise OSError(f"{compiler} failed: {done.stderr.strip()[:200]}")
        lib.chmod(0o755)  # whatever the umask: `enable` refuses a library others could write
        os.replace(lib, target)


def enable() -> str:
    """Load the vendor-check shim into the global scope if it can help here; return `STATE`."""
    global STATE
    if STATE == "on":
        return STATE
    if os.environ.get("PHENOLAB_MKL_AMD", "1") == "0":
        STATE = "off: PHENOLAB_MKL_AMD=0"
    elif not sys.platform.startswith("linux") or platform.machine() != "x86_64":
        STATE = "off: not Linux x86-64"
    elif (vendor := _cpu_vendor()) != "AuthenticAMD":
        STATE = f"off: CPU vendor {vendor} (only AMD CPUs are known to need it)"
    elif "torch" in sys.modules:
        STATE = "off: torch was imported before phenolab"
    else:
        lib = cache_dir() / f"mkl_intel_cpu_true-{hashlib.sha1(_SOURCE.encode()).hexdigest()[:10]}.so"
        try:
            if not lib.exists():
                _build(lib)
            st = lib.stat()  # code we load into the process: only our own, not writable by others
            if st.st_uid != os.getuid() or st.st_mode & 0o022:
                raise OSError(f"{lib} is not owned by this user or is writable by others")
            ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL)
            STATE = "on"
        except (OSError, subprocess.SubprocessError) as err:
            STATE = f"off: {err}"
    return STATE
