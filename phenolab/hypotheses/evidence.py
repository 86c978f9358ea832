"""What a hypothesis is tested on: its runs in the catalog, read into units, and the checks that
keep evidence honest (settings frozen at registration; deciding runs started after it).

A unit (one value of the statistic) is a run over its recorded steps, a (sweep group, seed)
over the group's settings (final values), or, across seeds, a sweep group: M(s) and T(s) collapse
its [settings × seeds] table of final values, which the unit keeps for the bootstrap.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from phenolab.catalog import Catalog, CatalogError, run_id_for
from phenolab.hypotheses.across_seeds import SeedTable, collapse
from phenolab.hypotheses.registry import Registration
from phenolab.hypotheses.spec import STEP, Hypothesis
from phenolab.settings import Setting


@dataclass
class Unit:
    label: str
    m: np.ndarray
    t: np.ndarray
    z: list[np.ndarray]
    seeds: SeedTable | None = None  # across seeds: the values M, T and z were collapsed from


def check_frozen(reg: Registration) -> None:
    """Refuse to test a hypothesis whose settings no longer resolve to the ids it was registered with."""
    if reg.hypothesis.frozen_setting_ids() != reg.settings:
        raise CatalogError(f"hypothesis {reg.id}: its settings no longer resolve to the setting ids frozen at "
                           "registration (a named setting changed); register a superseding hypothesis")


def check_after_registration(catalog: Catalog, reg: Any, groups: list[list[Setting]],
                             seeds: list[list[int]], what: str, remedy: str, kind: str = "hypothesis") -> list[str]:
    """Run ids of deciding evidence (`what`: held-out, regularizer) of a registration (`reg`: its
    `id` and `time`; `kind`: hypothesis or tournament); refuse if any of it started before
    registration: such runs could have shaped the claim they would test."""
    ids = []
    for settings, group_seeds in zip(groups, seeds, strict=True):
        for s in settings:
            runs = catalog.runs(setting_id=s.id)
            for row in runs[runs["seed"].isin(group_seeds)].itertuples():
                if float(row.started) <= reg.time:
                    raise CatalogError(
                        f"{what} run {row.run_id} started {utc(row.started)}, before {kind} {reg.id} was "
                        f"registered ({utc(reg.time)}): evidence that predates registration cannot test it; "
                        f"{remedy}")
                ids.append(row.run_id)
    return ids


def run_tables(catalog: Catalog, setting: Setting, seeds: list[int], keys: list[str]) -> dict[int, pd.DataFrame]:
    """Per stored seed: its curves of `keys`, one column per key, indexed by step."""
    curves = catalog.curves(setting_id=setting.id, metrics=keys)
    out = {}
    for seed in seeds:
        sub = curves[curves["seed"] == seed]
        if sub.empty:
            continue
        table = sub.pivot_table(index="step", columns="metric", values="value").sort_index()
        absent = [k for k in keys if k not in table]
        if absent:
            raise CatalogError(f"run {run_id_for(setting.id, seed)} has no curve {absent[0]!r}")
        out[seed] = table
    return out


def collect_units(catalog: Catalog, hyp: Hypothesis, groups: list[list[Setting]],
                  seeds: list[list[int]]) -> tuple[list[Unit], list[str]]:
    """The units of the claimed statistic, and the run ids that are missing from the catalog."""
    keys = list(dict.fromkeys([hyp.measure_key, hyp.target_key, *[k for k in hyp.confound_keys if k != STEP]]))
    m_key, t_key = hyp.measure_key, hyp.target_key
    units: list[Unit] = []
    missing: list[str] = []
    for gi, (settings, group_seeds) in enumerate(zip(groups, seeds, strict=True)):
        wide = {}
        for s in settings:
            tables = run_tables(catalog, s, group_seeds, keys)
            missing += [run_id_for(s.id, seed) for seed in group_seeds if seed not in tables]
            wide.update({(s.id, seed): table for seed, table in tables.items()})
        if hyp.relation.over == "steps":
            for (sid, seed), table in wide.items():
                units.append(Unit(run_id_for(sid, seed), table[m_key].to_numpy(), table[t_key].to_numpy(),
                                  _confounds(hyp, table)))
        elif hyp.relation.across == "seeds":
            complete = [seed for seed in group_seeds if all((s.id, seed) in wide for s in settings)]
            if len(complete) < 2:
                continue  # a spread needs two seeds with every setting (the missing runs are listed)
            mats = {k: np.array([[_final(wide[(s.id, seed)], k) for seed in complete] for s in settings])
                    for k in dict.fromkeys([m_key, t_key, *hyp.confound_keys])}
            seeds_table = SeedTable(_setting_labels(settings), complete, mats[m_key], mats[t_key],
                                    [mats[k] for k in hyp.confound_keys])
            units.append(Unit(f"group {gi}", *collapse(seeds_table, hyp.relation), seeds_table))
        else:
            for seed in group_seeds:
                tables = [wide[(s.id, seed)] for s in settings if (s.id, seed) in wide]
                if len(tables) < len(settings):
                    continue  # an incomplete sweep is no unit (its missing runs are listed)
                finals = pd.DataFrame([t.iloc[-1].rename(None) for t in tables])
                finals[STEP] = [float(t.index[-1]) for t in tables]
                units.append(Unit(f"group {gi} seed {seed}", finals[m_key].to_numpy(), finals[t_key].to_numpy(),
                                  [finals[k].to_numpy() for k in hyp.confound_keys]))
    return units, missing


def _final(table: pd.DataFrame, key: str) -> float:
    return float(table.index[-1]) if key == STEP else float(table[key].iloc[-1])


def _setting_labels(settings: list[Setting]) -> list[str]:
    """Each setting named by the fields in which the group's settings differ, e.g. model.num_features=500."""
    flat = [pd.json_normalize(s.model_dump(mode="json"), sep=".").iloc[0].to_dict() for s in settings]
    varying = [k for k in flat[0] if any(str(f.get(k)) != str(flat[0][k]) for f in flat[1:])]
    return [",".join(f"{k}={f.get(k)}" for k in varying) or s.id for f, s in zip(flat, settings, strict=True)]


def _confounds(hyp: Hypothesis, table: pd.DataFrame) -> list[np.ndarray]:
    return [table.index.to_numpy(dtype=float) if k == STEP else table[k].to_numpy() for k in hyp.confound_keys]


def in_sample_values(units: list[Unit]) -> tuple[np.ndarray, np.ndarray]:
    """Every finite (M, T) pair of the in-sample units: what M's and T's ranges are measured on."""
    m = np.concatenate([u.m for u in units]) if units else np.array([])
    t = np.concatenate([u.t for u in units]) if units else np.array([])
    ok = np.isfinite(m) & np.isfinite(t)
    return m[ok], t[ok]


def not_run(why: str) -> dict[str, Any]:
    return {"status": "not_run", "detail": why, "mean": None, "sd": None, "n": 0}


def utc(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(t)))
