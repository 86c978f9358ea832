"""What every phenomenon module provides, and the statistics they share.

A phenomenon is a plug-in over the engine: it names canonical settings, says which runs a
study needs (`study`), and reads a signature and a figure from the catalog (never from
in-memory training state, so both can be regenerated at any time).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from phenolab.catalog import Catalog
from phenolab.settings import Setting, resolve_setting


def stat(values: Sequence[float]) -> dict[str, float | int | None]:
    """Mean, sample sd and n of the finite values (n = 0 ⇒ mean/sd are None)."""
    arr = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if arr.size == 0:
        return {"mean": None, "sd": None, "n": 0}
    sd = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    return {"mean": float(arr.mean()), "sd": sd, "n": int(arr.size)}


def first_step_at_least(steps: np.ndarray, values: np.ndarray, threshold: float) -> float | None:
    """The first recorded step whose value is ≥ threshold, or None (censored)."""
    hit = np.nonzero(values >= threshold)[0]
    return float(steps[hit[0]]) if hit.size else None


def quick_setting(setting_name: str, overrides: dict[str, Any], quick: bool, quick_over: dict[str, Any],
                  note: str, other_effects: bool = False) -> tuple[Setting, bool, str]:
    """Resolve a named setting with `--quick`'s overrides under the user's `--set` ones.

    The user's fields win. Returns (setting, quick, note): `quick` stays on only while some of its
    effect is left (a quick field not replaced, or `other_effects` such as a shorter width grid),
    and the note then names any `--set` field that replaced a quick value, so the output never
    claims a budget the runs did not have.
    """
    quick_over = quick_over if quick else {}
    replaced = sorted(k for k in quick_over if k in overrides)
    setting = resolve_setting(setting_name, {**quick_over, **overrides})
    if not quick or (replaced and not other_effects and len(replaced) == len(quick_over)):
        return setting, False, ""
    if replaced:
        note += f" (but --set {', '.join(replaced)} replaces --quick's value)"
    return setting, True, note


@dataclass
class Study:
    """The runs a reproduction needs: settings (e.g. one per width) × seeds."""

    phenomenon: str
    setting_name: str
    settings: list[Setting]
    seeds: list[int]
    quick: bool = False
    note: str = ""
    options: dict[str, Any] = field(default_factory=dict)  # phenomenon-specific (e.g. rounds)


# (settings, seeds) -> run ids written; the CLI passes one with a progress bar
TrainMissing = Callable[[list[Setting], list[int]], list[str]]


class Phenomenon:
    """Base class; subclasses set `name`, `settings` and implement the three methods."""

    name: str = ""
    canonical: tuple[str, ...] = ()  # named settings this phenomenon registers
    default_setting: str = ""
    phase_metric: str = ""  # `phenolab phase`'s field when none is given and no run signature is registered
    phase_context: tuple[str, ...] = ()  # summary fields a phase table shows beside the mapped one

    def study(self, setting_name: str, seeds: list[int], overrides: dict[str, Any], quick: bool,
              options: dict[str, Any] | None = None) -> Study:
        """The settings × seeds a reproduction needs (`options`: e.g. rounds, rewind_step)."""
        raise NotImplementedError

    def execute(self, study: Study, catalog: Catalog, train_missing: TrainMissing) -> list[str]:
        """Train what the catalog lacks. Default: every setting × seed as batched programs;
        phenomena with staged training (lottery-ticket rounds) override this."""
        return train_missing(study.settings, study.seeds)

    def staged_work(self, study: Study) -> tuple[int, int] | None:
        """(runs, optimizer steps) that `execute` trains itself rather than through `train_missing`
        (which draws its own bar), so a caller can draw one bar for them and pass option "progress",
        `fn(steps done, runs done)`; None: no such training."""
        return None

    def signature(self, catalog: Catalog, study: Study) -> dict[str, Any]:
        """{"per_run": DataFrame-able list of dicts, "summary": {field: stat(...)}}."""
        raise NotImplementedError

    def figure(self, catalog: Catalog, study: Study, out: Path) -> Path:
        raise NotImplementedError

    def phase_fields(self, setting_name: str) -> tuple[str, ...]:
        """The signature fields `phenolab phase --metric` may map for this setting, so that a typo
        fails before any training; () = not declared (then checked once the signature exists)."""
        return ()


def study_curves(catalog: Catalog, study: Study) -> pd.DataFrame:
    """All curves of the study's runs, with the setting id and seed of each."""
    frames = [catalog.curves(setting_id=s.id) for s in study.settings]
    frames = [f[f["seed"].isin(study.seeds)] for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=["run_id", "setting_id", "seed", "metric", "step", "value"])
    return pd.concat(frames, ignore_index=True)


PHENOMENA: dict[str, Phenomenon] = {}


def register_phenomenon(ph: Phenomenon) -> Phenomenon:
    PHENOMENA[ph.name] = ph
    return ph
