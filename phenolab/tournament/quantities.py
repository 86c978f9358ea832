"""Runs → points: the target and every competitor's value at each evaluation point, read from the catalog.

A point is one recorded step of one run (`read: steps`) or its last (`read: final`). Each row
keeps its held-out group, setting and seed, because the bootstrap resamples seeds, breadth counts
settings, and a statistic over seeds (`seed_statistic`) is taken per setting and step. Values of
an explanation are `x:<name>`; the target is `target`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from phenolab.catalog import Catalog, run_id_for
from phenolab.hypotheses.evidence import run_tables
from phenolab.settings import Setting
from phenolab.tournament.spec import DERIVED, Competitor, Explanation, Ref, Tournament, field_value

UNARY: dict[str, Callable[[np.ndarray], np.ndarray]] = {"log": np.log, "abs_log": lambda a: np.abs(np.log(a))}
BINARY: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "ratio": np.divide, "log_ratio": lambda a, b: np.log(a / b), "abs_log_ratio": lambda a, b: np.abs(np.log(a / b)),
    "product": np.multiply, "difference": np.subtract,
}
STATISTICS: dict[str, Callable[[pd.Series], float]] = {
    "variance": lambda s: float(s.var(ddof=1)), "sd": lambda s: float(s.std(ddof=1)),
    "mad": lambda s: float((s - s.median()).abs().median()),
}
KEYS = ["group", "group_label", "setting_id", "setting", "seed", "run_id", "step"]


def column(name: str) -> str:
    return f"x:{name}"


def read_points(catalog: Catalog, t: Tournament, section: str, groups: list[list[Setting]],
                seeds: list[list[int]]) -> tuple[pd.DataFrame, list[str]]:
    """(points with `target` and an `x:<name>` column per competitor, missing run ids) of the
    `section` ("scope" or "held_out") whose settings and seeds are given."""
    refs = t.refs()
    keys = sorted({r.key for r in refs if r.kind in ("metric", "measure")})
    frames, missing = [], []
    for gi, (settings, group_seeds) in enumerate(zip(groups, seeds, strict=True)):
        labels = setting_labels(settings) if len(settings) > 1 else [""]
        for s, label in zip(settings, labels, strict=True):
            tables = run_tables(catalog, s, group_seeds, keys)
            missing += [run_id_for(s.id, seed) for seed in group_seeds if seed not in tables]
            for seed, table in tables.items():
                table = table.iloc[[-1]] if t.read == "final" else table
                frame = pd.DataFrame({"group": gi, "group_label": group_label(t, section, gi), "setting_id": s.id,
                                      "setting": label, "seed": seed,
                                      "run_id": run_id_for(s.id, seed), "step": table.index.to_numpy(dtype=float)})
                values = {r.model_dump_json(): ref_value(r, table, s) for r in refs}
                frame["target"] = values[t.target.model_dump_json()]
                for c in t.competitors():
                    frame[column(c.name)] = combined(c.value, values)
                frames.append(frame)
    points = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=[*KEYS, "target", *(column(c.name) for c in t.competitors())])
    return with_seed_statistics(points, t.competitors()), missing


def ref_value(ref: Ref, table: pd.DataFrame, setting: Setting) -> np.ndarray:
    """The ref's value at each row of one run's table (indexed by step)."""
    if ref.kind == "step":
        return table.index.to_numpy(dtype=float)
    if ref.kind == "field":
        return np.full(len(table), float(field_value(setting, ref.name)))
    values = table[ref.key].to_numpy(dtype=float)
    return 1.0 - values if ref.kind == "metric" and ref.name in DERIVED else values


def combined(e: Explanation, values: dict[str, np.ndarray]) -> np.ndarray:
    """An explanation's value before any statistic over seeds: its measure, or its combination."""
    args = [values[r.model_dump_json()] for r in e.refs]
    if e.combine is None:
        return args[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        return UNARY[e.combine.op](args[0]) if len(args) == 1 else BINARY[e.combine.op](args[0], args[1])


def with_seed_statistics(points: pd.DataFrame, competitors: list[Competitor]) -> pd.DataFrame:
    """Replace each seed-statistic competitor's column by its statistic over the seeds of the same
    setting and step (every row of that setting and step gets it)."""
    out = points.copy()
    for c in competitors:
        stat = c.value.seed_statistic
        if stat != "none" and len(out):
            col = column(c.name)
            out[col] = out.groupby(["setting_id", "step"])[col].transform(STATISTICS[stat])
    return out


def setting_labels(settings: list[Setting]) -> list[str]:
    """Each setting named by the fields in which a group's settings differ, e.g. num_features=500."""
    flat = [pd.json_normalize(s.model_dump(mode="json"), sep=".").iloc[0].to_dict() for s in settings]
    varying = [k for k in flat[0] if any(str(f.get(k)) != str(flat[0][k]) for f in flat[1:])]
    return [",".join(f"{k.split('.')[-1]}={f.get(k)}" for k in varying) or s.id
            for f, s in zip(flat, settings, strict=True)]


def group_label(t: Tournament, section: str, index: int) -> str:
    """A held-out or scope group by its overrides, e.g. 'op=-, train_fraction=0.3'."""
    group = (t.scope if section == "scope" else t.held_out)[index]
    shown = {k.split(".")[-1]: v for k, v in group.overrides.items() if not k.startswith(("eval.", "schedule."))}
    name = group.setting if isinstance(group.setting, str) else "inline"
    return f"{name} " + ", ".join(f"{k}={v}" for k, v in shown.items())
