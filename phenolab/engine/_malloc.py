"""Keep the engine's large temporaries on the heap instead of fresh `mmap`s (Linux, glibc).

glibc serves allocations above its mmap threshold (128 KB, raised dynamically up to 32 MB) with
a fresh `mmap` and returns them with `munmap` when freed, so every new activation tensor of a
few MB starts with a page fault per 4 KB page, and evaluation and steps allocate such tensors
every pass. The thresholds below keep them on the heap (what that gains: `bench/README.md`).
The cost is that up to `THRESHOLD` bytes of freed memory stay with the process instead of going
back to the OS. `PHENOLAB_MALLOPT=0` leaves glibc's defaults alone. Elsewhere (macOS, musl) this
does nothing.
"""

from __future__ import annotations

import ctypes
import os
import sys

THRESHOLD = 256 << 20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)


def keep_large_allocations_on_heap(threshold: int = THRESHOLD) -> bool:
    """Raise glibc's mmap and trim thresholds to `threshold`; True when both were set."""
    if not sys.platform.startswith("linux") or os.environ.get("PHENOLAB_MALLOPT", "1") == "0":
        return False
    try:  # the process's own symbols: no `find_library` (it runs ldconfig) at every engine import
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, threshold)) and bool(mallopt(_M_TRIM_THRESHOLD, threshold))
