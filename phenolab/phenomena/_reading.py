"""What phenomena read their signatures with: mean ± sd over seeds, first crossings, a study's
curves, and `--quick`'s budget under the user's `--set` fields."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from phenolab.catalog import Catalog
from phenolab.settings import Setting, resolve_setting

if TYPE_CHECKING:
    from phenolab.phenomena._contract import Study


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


def quick_setting(setting_name: str, overrides: dict[str, Any], quick: bool, quick_over: Mapping[str, Any],
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
    all_replaced = replaced and not other_effects and len(replaced) == len(quick_over)
    if not quick or not (quick_over or other_effects) or all_replaced:
        return setting, False, ""
    if replaced:
        note += f" (but --set {', '.join(replaced)} replaces --quick's value)"
    return setting, True, note


def study_curves(catalog: Catalog, study: Study) -> pd.DataFrame:
    """All curves of the study's runs, with the setting id and seed of each."""
    frames = [catalog.curves(setting_id=s.id) for s in study.settings]
    frames = [f[f["seed"].isin(study.seeds)] for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=["run_id", "setting_id", "seed", "metric", "step", "value"])
    return pd.concat(frames, ignore_index=True)

