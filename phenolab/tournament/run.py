"""A tournament from file to leaderboard: plan, train the scope, fit, freeze, register, train the
held-out runs, score, record.

The order is what makes the scores honest: the predictors are fitted on scope runs only and
stored in the registration entry before any held-out run exists (registration is refused
otherwise); the held-out runs are trained after it, on seeds fixed in the file or derived from its
hash, and must have started after it; scoring reads the stored predictors and never refits. A
tournament run again after registration scores again with the same frozen predictors and appends
another result.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from phenolab.catalog import Catalog, CatalogError, run_id_for
from phenolab.hypotheses.evidence import check_after_registration
from phenolab.settings import Setting
from phenolab.tournament.interventions import intervention_results
from phenolab.tournament.log import TournamentLog, TournamentRegistration, check_frozen
from phenolab.tournament.predictors import Predictor, fit_predictor, predict, predictors_digest, undefined
from phenolab.tournament.quantities import column, read_points
from phenolab.tournament.scoring import score
from phenolab.tournament.spec import Tournament

TrainMissing = Callable[[list[Setting], list[int]], list[str]]


@dataclass
class Plan:
    """What `run` would do: which runs are stored and which it would train."""

    tournament: Tournament
    registration: TournamentRegistration | None
    scope_stored: list[str] = field(default_factory=list)
    scope_missing: list[str] = field(default_factory=list)
    held_out_stored: list[str] = field(default_factory=list)
    held_out_missing: list[str] = field(default_factory=list)

    @property
    def blocked(self) -> bool:
        """Not registered, and a held-out run exists already: registration would be refused."""
        return self.registration is None and bool(self.held_out_stored)


def plan(catalog: Catalog, t: Tournament) -> Plan:
    """Read-only: the registration (if any) and the stored and missing runs of each part."""
    reg = TournamentLog(catalog).find(t.id) if catalog.path.is_file() else None
    out = Plan(t, reg)
    parts = (("scope", t.scope_settings(), t.scope_seeds()), ("held_out", t.held_out_settings(), t.held_out_seeds()))
    for part, groups, seeds in parts:
        for settings, group_seeds in zip(groups, seeds, strict=True):
            for s in settings:
                have = catalog.existing_seeds(s.id) if catalog.path.is_file() else set()
                for seed in group_seeds:
                    getattr(out, f"{part}_{'stored' if seed in have else 'missing'}").append(run_id_for(s.id, seed))
    return out


def fit_all(t: Tournament, points: pd.DataFrame) -> dict[str, Predictor]:
    """Every competitor's map, fitted on the scope points (explanations in their claimed direction)."""
    y = points["target"].to_numpy(float)
    return {c.name: fit_predictor(points[column(c.name)].to_numpy(float), y, c.value.fit, c.direction)
            for c in t.competitors()}


def register(catalog: Catalog, t: Tournament, train_missing: TrainMissing | None) -> TournamentRegistration:
    """Train the missing scope runs, fit every predictor on them, and register it all, frozen;
    the registration already there if there is one. Refused while a held-out run exists."""
    log = TournamentLog(catalog)
    log.log.require_intact()
    reg = log.find(t.id)
    if reg is not None:
        return reg
    log.check_registrable(t)  # before any training: fail fast
    scope, seeds = t.scope_settings(), t.scope_seeds()
    if train_missing is not None:
        for settings, group_seeds in zip(scope, seeds, strict=True):
            train_missing(settings, group_seeds)
    points, missing = read_points(catalog, t, "scope", scope, seeds)
    if missing:
        raise CatalogError(f"tournament {t.name}: {len(missing)} scope run(s) missing (e.g. {missing[0]}); the "
                           "predictors are fitted on every scope run: train them first (run without --no-train)")
    predictors = fit_all(t, points)
    reg, _ = log.register(t, predictors, sorted(points["run_id"].unique().tolist()))
    return reg


def run(catalog: Catalog, t: Tournament, train_missing: TrainMissing | None, record: bool = True,
        figure: bool = True) -> dict[str, Any]:
    """Register if new, train what is missing, score on the held-out runs with the frozen
    predictors, and append the result to the log (whatever it says)."""
    reg = register(catalog, t, train_missing)
    return score_registered(catalog, reg, train_missing, record, figure)


def score_registered(catalog: Catalog, reg: TournamentRegistration, train_missing: TrainMissing | None,
                     record: bool = True, figure: bool = True) -> dict[str, Any]:
    """Score a registered tournament with the predictors frozen in its registration."""
    t = reg.tournament
    check_frozen(reg)
    held, seeds = t.held_out_settings(), reg.held_out_seeds
    if train_missing is not None:
        for settings, group_seeds in zip(held, seeds, strict=True):
            train_missing(settings, group_seeds)
    runs = check_after_registration(catalog, reg, held, seeds, "held-out", "register a superseding tournament "
                                    "(a new hash gives new held-out seeds)", kind="tournament")
    points, missing = read_points(catalog, t, "held_out", held, seeds)
    if points.empty:
        raise CatalogError(f"tournament {t.name}: none of its {len(missing)} held-out runs is in the catalog; "
                           "train them (run without --no-train)")
    predictions = {n: predict(p, points[column(n)].to_numpy(float)) for n, p in reg.predictors.items()}
    scores = score(points, t.competitors(), predictions, t.scoring, t.id)
    scope_points, _ = read_points(catalog, t, "scope", t.scope_settings(), t.scope_seeds())
    for name, result in intervention_results(catalog, t, scope_points).items():
        scores["competitors"][name]["intervention"] = result
    for c in t.competitors():
        entry = scores["competitors"][c.name]
        entry["undefined"] = undefined(reg.predictors[c.name], points[column(c.name)].to_numpy(float))
        entry["reads_test_labels"] = any(r.reads_test_labels for r in c.value.refs)
        entry["fit"] = reg.predictors[c.name].form
        entry["increasing"] = reg.predictors[c.name].increasing
    result: dict[str, Any] = {
        "tournament_id": reg.id, "name": t.name, "statement": t.statement, "phenomenon": t.phenomenon,
        "target": t.target.label, "read": t.read, "registered": reg.time, "scored": time.time(),
        "predictors_digest": predictors_digest(reg.predictors), "scores": scores,
        "runs": {"scope": reg.fitted_on, "held_out": runs}, "held_out_missing": missing,
    }
    if figure:
        from phenolab.tournament.figure import tournament_figure

        path = catalog.root / "figures" / f"tournament-{reg.id}.png"
        result["figure"] = str(tournament_figure(points, predictions, scores, f"{t.name} ({reg.id}): predicted vs "
                                                 f"observed {t.target.label} on held-out runs", t.target.label, path))
    if record:
        TournamentLog(catalog).record_result(reg.id, result)
    return result


def latest_result(catalog: Catalog, ref: str) -> tuple[TournamentRegistration, dict[str, Any] | None]:
    log = TournamentLog(catalog)
    reg = log.registration(ref)
    results = log.results(reg.id)
    return reg, results[-1]["payload"] if results else None
