"""What the catalog stores per run: plain data, so the engine need not know the catalog."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch


def run_id_for(setting_id: str, seed: int) -> str:
    """Runs are named by content: the setting id and the seed."""
    return f"{setting_id}-{int(seed)}"


@dataclass
class RunRecord:
    """One finished run, ready to be written."""

    setting_id: str
    seed: int
    curves: dict[str, tuple[np.ndarray, np.ndarray]]  # metric -> (steps int64, values float64)
    summary: dict[str, float]  # final value of every curve, plus derived numbers
    provenance: dict[str, Any]  # versions, device, threads, host, git commit, ...
    started: float  # unix time of the batch's start
    finished: float
    wall_s: float  # wall time of the whole batch this run was trained in
    batch_id: str = ""
    replicas_in_batch: int = 1
    checkpoints: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)  # step -> params

    @property
    def run_id(self) -> str:
        return run_id_for(self.setting_id, self.seed)
