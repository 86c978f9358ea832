"""`phenolab.reproduce`: a phenomenon's canonical study, trained (or reused) and read, as one call.

    result = phenolab.reproduce("grokking", setting="gromov2023", seeds=5)
    result.summary      # the signature: one row per field, mean ± sd over seeds, unit, description
    result.runs         # one row per run
    result.figure       # the figure's path

The CLI's `phenolab reproduce` is this call with a progress bar (it passes its own `Trainer`).
Everything is checked before any training (`plan_reproduction`), and what the study measured is
stored in the catalog as a note (kind "signature"), which the report reads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from phenolab.catalog import Catalog
from phenolab.phenomena import PHENOMENA, Fields, Phenomenon, Reproducible, Signature, Study, Trainer, unknown_name
from phenolab.settings import Setting, SettingError


def reproducible(name: str) -> Reproducible:
    """The phenomenon or study `name` (`phenolab reproduce NAME`), or a one-line SettingError."""
    from phenolab.studies import STUDIES

    if not isinstance(name, str):
        raise SettingError(f"phenomenon {name!r}: give its name, one of: {', '.join(sorted([*PHENOMENA, *STUDIES]))}")
    found = PHENOMENA.get(name) or STUDIES.get(name)
    if found is None:
        raise SettingError(unknown_name("phenomenon", name, sorted([*PHENOMENA, *STUDIES])))
    return found


def seed_list(seeds: int | str | Sequence[int]) -> list[int]:
    """Seeds as the API and the CLI take them: N (⇒ 0..N-1), a range text as `--seeds` takes it
    ("0-4,7"), or integers ≥ 0 (negative, non-integer and repeated seeds are refused)."""
    from phenolab.execute.grid import seeds_from_value
    from phenolab.settings import check_seeds

    return seeds_from_value(seeds) if isinstance(seeds, str) else check_seeds(seeds)


def plan_reproduction(phenomenon: str, setting: str | None = None, seeds: int | str | Sequence[int] = 5, *,
                      quick: bool = False, overrides: Mapping[str, Any] | None = None,
                      options: Mapping[str, Any] | None = None) -> tuple[Reproducible, Study]:
    """The study a reproduction trains, with every input checked (nothing is read or written)."""
    from phenolab.settings import check_overrides

    rep = reproducible(phenomenon)
    if setting is not None and not isinstance(setting, str):
        raise SettingError(f"setting {setting!r}: give the name of one of {rep.name}'s canonical settings")
    if isinstance(rep, Phenomenon):
        name = rep.default_setting if setting is None else setting
        rep.canonical_setting(name)  # one line naming the allowed settings
    elif setting is not None:
        raise SettingError(f"{phenomenon} is a study with its own settings; it takes no --setting")
    else:
        name = rep.name
    overrides = check_overrides(overrides)
    if not isinstance(quick, bool):
        raise SettingError(f"quick {quick!r}: give True or False")
    if options is not None and not isinstance(options, Mapping):
        raise SettingError(f"options {options!r}: give a mapping of option names to values")
    study = rep.study(name, seed_list(seeds), dict(overrides), quick, rep.parse_options(options))
    study.overrides = dict(overrides)
    return rep, study


@dataclass
class Reproduction:
    """A reproduction's result: the study, what it measured, its figure, the runs it trained."""

    phenomenon: str
    study: Study
    signature: Signature
    fields: Fields
    figure: Path
    trained: list[str]
    catalog: Catalog

    @property
    def summary(self) -> pd.DataFrame:
        """The signature, one row per field: mean, sd, n (or a value), unit and description."""
        return summary_frame(self.signature.summary, self.fields)

    @property
    def runs(self) -> pd.DataFrame:
        """One row per run (the signature's per-run rows)."""
        return pd.DataFrame(self.signature.per_run)

    def to_json(self) -> dict[str, Any]:
        """What `phenolab reproduce --json` prints."""
        sig = self.signature
        return {**sig.summary, "phenomenon": self.phenomenon, "setting": self.study.setting_name,
                "setting_ids": [s.id for s in self.study.settings], "note": self.study.note,
                "trained": len(self.trained), "figure": str(self.figure), "per_run": sig.per_run,
                **{k: sig.extra[k] for k in sig.output if k in sig.extra},
                "fields": self.fields.explain(list(sig.summary) + list(sig.per_run[0] if sig.per_run else []))}


def complete_reproduction(rep: Reproducible, study: Study, catalog: Catalog, trainer: Trainer | None = None,
                          ) -> Reproduction:
    """Train what the catalog lacks (through `trainer`, default in this process), read the signature
    and draw the figure, and note the study in the catalog."""
    trainer = trainer or Trainer.local(catalog)
    written = rep.train(study, trainer)
    sig = rep.signature(catalog, study)
    stem = f"{rep.name}-{study.setting_name}-{study.settings[0].id}"
    fig = rep.figure(catalog, study, catalog.root / "figures" / f"{stem}.png")
    catalog.add_note("signature", f"{rep.name}:{study.setting_name}:{study.settings[0].id}",
                     {"phenomenon": rep.name, **sig.stored(), "setting_ids": [s.id for s in study.settings],
                      "seeds": study.seeds, "figure": str(fig),
                      "options": study.options.model_dump(mode="json", exclude_defaults=True),
                      "overrides": study.overrides, "quick": study.quick})
    return Reproduction(rep.name, study, sig, rep.fields(study.setting_name), fig, written, catalog)


def reproduce(phenomenon: str, setting: str | None = None, seeds: int | str | Sequence[int] = 5,
              catalog: Catalog | str | Path | None = None, *, quick: bool = False,
              overrides: Mapping[str, Any] | None = None, device: str = "auto", **options: Any) -> Reproduction:
    """Reproduce `phenomenon` on its canonical `setting` (default: the phenomenon's) with `seeds`
    (N ⇒ 0..N-1, or a list): train the runs the catalog lacks as batched programs, then read the
    signature and draw the figure. `overrides` are `--set` fields; `options` the phenomenon's own
    (e.g. `rounds=3` for the lottery). Bad input raises `SettingError` before any work."""
    from phenolab.engine import resolve_device
    from phenolab.execute.preflight import writable_catalog

    rep, study = plan_reproduction(phenomenon, setting, seeds, quick=quick, overrides=overrides, options=options)
    if not isinstance(device, str):
        raise SettingError(f"device {device!r}: give 'auto', 'cpu' or 'cuda[:N]'")
    resolve_device(device)
    cat = writable_catalog(catalog)  # a catalog path training cannot write: one line, before any work
    return complete_reproduction(rep, study, cat, Trainer.local(cat, device))


def plan_summary(settings: Sequence[Setting], seeds: list[int], catalog: Catalog) -> dict[str, Any]:
    """What training a study would do, read from the catalog (nothing is written, a missing catalog
    is an empty one): runs in the study, runs already stored, runs to train."""
    unique = list({s.id: s for s in settings}.values())
    stored = sum(len(catalog.existing_seeds(s.id) & set(seeds)) for s in unique)
    total = len(unique) * len(seeds)
    return {"settings": len(unique), "seeds": len(seeds), "runs": total, "stored": stored,
            "to_train": total - stored, "catalog": str(catalog.path),
            "estimate_s": training_estimate(unique, seeds, catalog) if total > stored else 0.0}


def training_estimate(settings: Sequence[Setting], seeds: list[int], catalog: Catalog) -> float | None:
    """Modelled seconds to train what the catalog lacks (`execute.estimate`); None when it is not
    modelled (not an MLP, or runs trained in stages)."""
    from phenolab.execute import plan_batches
    from phenolab.execute.estimate import plan_seconds

    try:
        return plan_seconds(plan_batches(list(settings), seeds, catalog))
    except SettingError:
        return None


def summary_frame(summary: dict[str, Any], fields: Fields) -> pd.DataFrame:
    """A signature's summary as rows: field, mean, sd, n (for mean ± sd fields) or value, unit, description."""
    rows = []
    for key, val in summary.items():
        f = fields.get(key)
        row: dict[str, Any] = {"field": key, "mean": None, "sd": None, "n": None, "value": None,
                               "unit": f.unit if f else "", "description": f.description if f else ""}
        if isinstance(val, dict) and "mean" in val:
            row.update(mean=val["mean"], sd=val["sd"], n=val.get("n"))
        else:
            row["value"] = val
        rows.append(row)
    return pd.DataFrame(rows, columns=["field", "mean", "sd", "n", "value", "unit", "description"])
