"""MKL's vendor check on AMD CPUs (`phenolab/_mkl_amd.py`): loaded when it can help, off (and why) otherwise.

Each case runs in a fresh interpreter: the shim only works if loaded before torch.
"""

import os
import platform
import shutil
import subprocess
import sys

import pytest

from phenolab import _mkl_amd

PROBE = """
import ctypes, sys
{pre}
import phenolab, phenolab._mkl_amd as m
try:
    answer = ctypes.CDLL(None).mkl_serv_intel_cpu_true()  # what a global-scope lookup (MKL's) finds
except AttributeError:
    answer = None
print(m.STATE, "|", answer)
"""


def probe(tmp_path, pre: str = "", **env: str) -> tuple[str, str]:
    inherited = {k: v for k, v in os.environ.items() if k != "PHENOLAB_MKL_AMD"}  # the suite may run with it 0
    full = {**inherited, "PHENOLAB_CACHE": str(tmp_path / "cache"), **env}
    out = subprocess.run([sys.executable, "-c", PROBE.format(pre=pre)], capture_output=True, text=True,
                         env=full, check=True, timeout=120)
    state, answer = out.stdout.strip().rsplit("|", 1)
    return state.strip(), answer.strip()


def can_help() -> bool:
    return (sys.platform.startswith("linux") and platform.machine() == "x86_64"
            and _mkl_amd._cpu_vendor() == "AuthenticAMD" and shutil.which("cc") is not None)


@pytest.mark.slow
def test_shim_is_on_exactly_where_it_can_help(tmp_path):
    state, answer = probe(tmp_path)
    if can_help():
        assert state == "on"
        assert answer == "1"  # the global scope now says "Intel" to MKL
        assert list((tmp_path / "cache").glob("mkl_intel_cpu_true-*.so"))  # built once, into the cache
        assert probe(tmp_path)[0] == "on"  # and reused
    else:
        assert state.startswith("off: ")
        assert answer == "None"


@pytest.mark.slow
def test_env_switch_and_import_order_turn_it_off(tmp_path):
    assert probe(tmp_path, PHENOLAB_MKL_AMD="0") == ("off: PHENOLAB_MKL_AMD=0", "None")
    if can_help():
        assert probe(tmp_path, pre="import torch") == ("off: torch was imported before phenolab", "None")


@pytest.mark.slow
@pytest.mark.skipif(not can_help(), reason="needs Linux x86-64, an AMD CPU and a C compiler")
def test_a_broken_compiler_leaves_it_off_with_the_reason(tmp_path):
    state, _ = probe(tmp_path, CC="false", PATH="/nonexistent")
    assert state == "off: no C compiler (cc or gcc) on PATH"


def test_provenance_records_the_state():
    from phenolab.catalog import collect_provenance

    assert collect_provenance("cpu", 1)["mkl_amd_shim"] == _mkl_amd.STATE


@pytest.mark.slow
@pytest.mark.skipif(not can_help(), reason="needs Linux x86-64, an AMD CPU and a C compiler")
def test_a_library_others_can_write_is_not_loaded(tmp_path):
    assert probe(tmp_path)[0] == "on"
    (lib,) = (tmp_path / "cache").glob("mkl_intel_cpu_true-*.so")
    lib.chmod(0o777)
    state, answer = probe(tmp_path)
    assert state == f"off: {lib} is not owned by this user or is writable by others" and answer == "None"
