"""Step budgets, evaluation steps and the learning-rate warmup."""

from __future__ import annotations

import math

import numpy as np

from phenolab.settings import Setting


def total_steps(setting: Setting, n_train: int) -> int:
    """Optimizer steps of the run: `schedule.steps`, or epochs × ⌈n_train / batch⌉."""
    sched = setting.schedule
    if sched.steps is not None:
        return sched.steps
    batch = min(sched.batch_size or n_train, n_train)
    return sched.epochs * math.ceil(n_train / batch)


def eval_steps(total: int, points: int, every: int | None = None) -> list[int]:
    """Steps after which curves are recorded: 0 (the init), `points` log-spaced steps in
    [1, total], every `every`-th step, and always the last.

    Log spacing keeps 10² and 10⁵ steps equally resolved (grokking spans both); past the first
    few integer steps, the relative gap between consecutive evaluations is at most
    total^(1/(points-1)), e.g. 17% for 60 points over 10⁴ steps, which bounds how much a
    threshold-crossing step can be overstated.
    """
    steps = {0, total}
    if total >= 1:
        steps.update(int(s) for s in np.unique(np.round(np.geomspace(1, total, points)).astype(int)))
    if every:
        steps.update(range(every, total + 1, every))
    return sorted(s for s in steps if 0 <= s <= total)


def warmup_factor(step: int, warmup_steps: int) -> float:
    """Linear warmup: the lr of update `step` (0-based) is lr · min(1, (step + 1) / warmup)."""
    if warmup_steps <= 0:
        return 1.0
    return min(1.0, (step + 1) / warmup_steps)
