"""Per-run random streams: every source of randomness of a run is a `torch.Generator` seeded
from (seed, stream name) alone, so replica k of a batch draws exactly what it would alone."""

from __future__ import annotations

import hashlib

import torch

STREAMS = ("init", "data", "noise", "order", "split", "subset", "features")


def derive_seed(seed: int, stream: str) -> int:
    """A 63-bit seed for one named stream of one run; stable across machines and versions."""
    digest = hashlib.sha256(f"phenolab/{stream}/{int(seed)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def generator(seed: int, stream: str) -> torch.Generator:
    """A CPU generator for one stream of one run (draw on CPU, then move: same on every device)."""
    return torch.Generator(device="cpu").manual_seed(derive_seed(seed, stream))


def generators(seeds: list[int], stream: str) -> list[torch.Generator]:
    return [generator(s, stream) for s in seeds]
