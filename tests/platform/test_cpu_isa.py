"""AVX2 kernels on AVX-512 CPUs (`phenolab/_cpu_isa.py`): the plan for each CPU and environment,
its effect on torch's and MKL's kernels in a fresh interpreter, and a bad value refused in one line."""

import os
import subprocess
import sys

import pytest

from phenolab import _cpu_isa, _mkl_amd
from phenolab._cpuinfo import cpu_flags, cpuinfo
from tests.helpers import run_subprocess

AVX512 = frozenset({"avx2", "avx512f", "fma"})
AVX2 = frozenset({"avx2", "fma"})


def test_plan_caps_only_where_avx512_code_would_run_and_keeps_what_the_user_set() -> None:
    state, todo = _cpu_isa.plan("avx2", True, AVX512, False, {})
    assert todo == _cpu_isa.CAP and state.startswith("avx2: MKL_ENABLE_INSTRUCTIONS=AVX2")
    state, todo = _cpu_isa.plan("AVX2 ", True, AVX512, False, {"MKL_ENABLE_INSTRUCTIONS": "AVX512"})
    assert "MKL_ENABLE_INSTRUCTIONS" not in todo and set(todo) == {"ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA"}
    assert "MKL_ENABLE_INSTRUCTIONS=AVX512 (set before)" in state
    assert _cpu_isa.plan("avx2", True, AVX2, False, {}) == ("native: no AVX-512 (AVX2 code or narrower already)", {})
    assert _cpu_isa.plan("avx2", True, frozenset({"avx512f"}), False, {}) == ("native: no AVX2", {})
    assert _cpu_isa.plan("avx2", False, AVX512, False, {}) == ("native: not Linux x86-64", {})
    assert _cpu_isa.plan("avx2", True, AVX512, True, {}) == ("native: torch was imported before phenolab", {})
    assert _cpu_isa.plan("avx2", True, AVX512, True, _cpu_isa.CAP)[0].startswith("avx2: ")  # inherited: they hold
    assert _cpu_isa.plan("native", True, AVX512, False, {}) == ("native: PHENOLAB_CPU_ISA=native", {})
    assert _cpu_isa.plan("avx512", True, AVX512, False, {}) == (
        "invalid: PHENOLAB_CPU_ISA='avx512'; allowed: avx2, native", {})


PROBE = """
import hashlib, phenolab, torch
g = torch.Generator().manual_seed(0)
a, b = torch.randn(200, 500, generator=g), torch.randn(500, 97, generator=g)
digest = lambda t: hashlib.sha1(t.numpy().tobytes()).hexdigest()[:12]
print(phenolab._cpu_isa.STATE.split(":")[0], torch.backends.cpu.get_cpu_capability(), digest(a @ b),
      digest(torch.softmax(a, 1)))
"""


def probe(**env: str) -> list[str]:
    inherited = {k: v for k, v in os.environ.items() if k not in (*_cpu_isa.CAP, "PHENOLAB_CPU_ISA")}
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env={**inherited, **env},
                         check=True, timeout=120)
    return out.stdout.split()


@pytest.mark.slow
def test_the_cap_reaches_torchs_and_mkls_kernels_exactly_on_avx512_cpus() -> None:
    capped, native = probe(), probe(PHENOLAB_CPU_ISA="native")
    assert native[0] == "native"
    if sys.platform.startswith("linux") and {"avx2", "avx512f"} <= cpu_flags():
        assert capped[:2] == ["avx2", "AVX2"] and native[1] == "AVX512"
        assert capped[3] != native[3]  # torch's own vectorized softmax changes its bits
        if _mkl_amd.STATE == "on" or cpuinfo("vendor_id") == "GenuineIntel":  # MKL picks by instruction set
            assert capped[2] != native[2]  # and so does MKL's GEMM (a @ b)
    else:  # nothing to cap: the same kernels and bits either way
        assert capped[0] == "native" and capped[1:] == native[1:]


@pytest.mark.slow
def test_a_bad_value_is_one_line_and_exit_2_on_the_cli_and_an_error_in_train(tmp_path) -> None:
    env = {**os.environ, "PHENOLAB_CPU_ISA": "fast"}
    done = run_subprocess("settings", cwd=tmp_path, timeout=120, PHENOLAB_CPU_ISA="fast")
    assert done.returncode == 2
    assert done.stderr.strip() == "error: PHENOLAB_CPU_ISA='fast'; allowed: avx2, native"
    code = ("import phenolab\nfrom phenolab.settings import named_setting\n"
            "phenolab.train(named_setting('gromov2023'), [0])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode != 0 and "ValueError: PHENOLAB_CPU_ISA='fast'; allowed: avx2, native" in done.stderr


def test_provenance_records_the_kernels_that_ran() -> None:
    import torch

    from phenolab.catalog import collect_provenance

    prov = collect_provenance("cpu", 1)
    assert prov["cpu_isa"] == _cpu_isa.STATE and prov["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert "cpu_model" in prov


@pytest.mark.slow
def test_importing_torch_first_is_warned_exactly_where_a_switch_could_not_act() -> None:
    clean = {k: v for k, v in os.environ.items() if k not in (*_cpu_isa.CAP, "PHENOLAB_CPU_ISA", "PHENOLAB_MKL_AMD")}

    def run(code: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-W", "default", "-c", code], capture_output=True, text=True,
                              env=clean, check=True, timeout=120)

    first = run("import phenolab, torch; print(phenolab._mkl_amd.STATE == 'on' or "
                "phenolab._cpu_isa.STATE.startswith('avx2'))")
    assert "torch was imported before phenolab" not in first.stderr
    would_act = first.stdout.strip() == "True"  # a switch acts here when phenolab comes first
    assert ("torch was imported before phenolab" in run("import torch, phenolab").stderr) == would_act
