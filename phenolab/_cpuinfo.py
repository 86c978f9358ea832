"""What Linux says about the CPU (`/proc/cpuinfo`), read without importing torch: the start-up
switches (`_mkl_amd`, `_cpu_isa`) must act before torch loads, and provenance records it."""

from __future__ import annotations

import functools


@functools.cache
def cpuinfo(key: str) -> str | None:
    """The first processor's `key` field ("vendor_id", "model name", "flags"), or None where there
    is no /proc/cpuinfo or no such field."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                name, sep, value = line.partition(":")
                if sep and name.strip() == key:
                    return value.strip()
    except OSError:
        pass
    return None


def cpu_flags() -> frozenset[str]:
    """The instruction-set flags ("avx2", "avx512f", ...); empty where unknown."""
    return frozenset((cpuinfo("flags") or "").split())
