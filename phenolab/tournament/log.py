"""Tournaments in the hypothesis log: registration (with the frozen predictors) and results.

A tournament is appended to the same hash-chained log as hypotheses (`hypotheses.registry`),
as entries of type "tournament" and "tournament_result" keyed by its id, so `phenolab hypothesis
verify` covers it: editing a stored predictor breaks the entry's hash. Registration is refused
while any of its held-out runs exists (they could have shaped the explanations or the file), and
results are appended whatever they say.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from phenolab.catalog import Catalog, CatalogError, run_id_for
from phenolab.hypotheses.registry import HypothesisLog, find_registration
from phenolab.tournament.predictors import Predictor, predictors_digest
from phenolab.tournament.spec import Tournament, validate_tournament

REGISTER = "tournament"
RESULT = "tournament_result"


@dataclass(frozen=True)
class TournamentRegistration:
    """A registered tournament, as the log holds it."""

    id: str
    tournament: Tournament
    time: float  # held-out runs must start after it
    seq: int
    entry_hash: str
    settings: dict[str, Any]  # {"scope": [[setting ids]], "held_out": [[...]]} at registration
    held_out_seeds: list[list[int]]
    predictors: dict[str, Predictor]
    fitted_on: list[str]  # the scope runs the predictors were fitted on
    digest: str


def existing_held_out_runs(catalog: Catalog, t: Tournament) -> list[str]:
    """Held-out runs already in the catalog: while there is one, the tournament cannot be registered."""
    found = []
    for settings, seeds in zip(t.held_out_settings(), t.held_out_seeds(), strict=True):
        for s in settings:
            have = catalog.existing_seeds(s.id)
            found += [run_id_for(s.id, seed) for seed in seeds if seed in have]
    return found


def refuse_held_out(found: list[str], t: Tournament) -> None:
    if found:
        shown = ", ".join(found[:6]) + (f" and {len(found) - 6} more" if len(found) > 6 else "")
        raise CatalogError(f"tournament {t.id} ({t.name}): {len(found)} held-out run(s) already exist ({shown}); "
                           "a tournament must be registered before any of its held-out runs exist. Change the "
                           "held-out seeds (`seeds:`) or any other content (a new id derives new seeds)")


def refuse_name(entries: list[dict[str, Any]], t: Tournament) -> None:
    """A registered name cannot take other content, except through `supersedes` of its latest version."""
    regs = [e for e in entries if e.get("type") == REGISTER]
    names = {e["payload"]["tournament"]["name"]: e["hypothesis_id"] for e in regs}
    superseded = {e["payload"]["tournament"].get("supersedes") for e in regs}
    if t.supersedes is not None and t.supersedes not in names.values():
        raise CatalogError(f"supersedes: {t.supersedes!r} is not a registered tournament id")
    if t.supersedes is not None and t.supersedes in superseded:
        raise CatalogError(f"supersedes: {t.supersedes} is already superseded; supersede its successor")
    taken = names.get(t.name)
    if taken is not None and taken != t.supersedes and taken not in superseded:
        raise CatalogError(f"a tournament named {t.name!r} is registered ({taken}) and a registered tournament "
                           f"cannot change; to revise it add `supersedes: {taken}`")


class TournamentLog:
    """Register tournaments and record their results in a catalog's hypothesis log."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.log = HypothesisLog(catalog)

    def registrations(self) -> list[TournamentRegistration]:
        return [_registration(e) for e in self.log.entries() if e.get("type") == REGISTER]

    def find(self, tournament_id: str) -> TournamentRegistration | None:
        return next((r for r in self.registrations() if r.id == tournament_id), None)

    def registration(self, ref: str) -> TournamentRegistration:
        """By id, unique id prefix, or name (the latest of that name)."""
        return find_registration(self.registrations(), ref, lambda r: r.tournament.name, "tournament", "tournaments")

    def results(self, tournament_id: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.log.entries() if e.get("type") == RESULT
                and (tournament_id is None or e.get("hypothesis_id") == tournament_id)]

    def register(self, t: Tournament, predictors: dict[str, Predictor], fitted_on: list[str]
                 ) -> tuple[TournamentRegistration, bool]:
        """Append the registration with its frozen predictors; (existing, False) if already there.
        Refused (CatalogError) while a held-out run exists, or when the name is taken."""
        payload = {"tournament": t.model_dump(mode="json"), "settings": t.frozen_setting_ids(),
                   "held_out_seeds": t.held_out_seeds(),
                   "predictors": {k: v.model_dump(mode="json") for k, v in predictors.items()},
                   "fitted_on": fitted_on, "predictors_digest": predictors_digest(predictors)}
        state = {"new": True}

        def guard(entries: list[dict[str, Any]]) -> dict[str, Any] | None:
            existing = next((e for e in entries if e.get("type") == REGISTER and e["hypothesis_id"] == t.id), None)
            if existing is not None:
                state["new"] = False
                return existing
            refuse_name(entries, t)
            refuse_held_out(existing_held_out_runs(self.catalog, t), t)
            return None

        entry = self.log.append(REGISTER, t.id, payload, guard)
        return _registration(entry), state["new"]

    def check_registrable(self, t: Tournament) -> None:
        """Raise now what `register` would refuse (its name, a held-out run), before any training."""
        entries = self.log.entries()
        if not any(e.get("type") == REGISTER and e["hypothesis_id"] == t.id for e in entries):
            refuse_name(entries, t)
            refuse_held_out(existing_held_out_runs(self.catalog, t), t)

    def record_result(self, tournament_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        return self.log.append(RESULT, tournament_id, payload)

    def listing(self) -> list[dict[str, Any]]:
        """One row per tournament (every one, whatever its result), with its latest result's ranking."""
        results = {r["hypothesis_id"]: r for r in self.results()}
        regs = self.registrations()
        superseded_by = {r.tournament.supersedes: r.id for r in regs if r.tournament.supersedes}
        rows = []
        for r in regs:
            res = results.get(r.id, {}).get("payload", {})
            board = res.get("scores", {})
            beat = [n for n, c in board.get("competitors", {}).items() if c.get("beats_both_baselines")]
            rows.append({"id": r.id, "name": r.tournament.name, "phenomenon": r.tournament.phenomenon,
                         "registered": utc(r.time), "scored": utc(results[r.id]["time"]) if res else None,
                         "ranking": board.get("ranking", []), "beat_both_baselines": beat,
                         "explanations": [e.name for e in r.tournament.explanations],
                         "superseded_by": superseded_by.get(r.id)})
        return rows


def check_frozen(reg: TournamentRegistration) -> None:
    """Refuse a tournament whose settings no longer resolve to the ids it was registered with."""
    if reg.tournament.frozen_setting_ids() != reg.settings:
        raise CatalogError(f"tournament {reg.id}: its settings no longer resolve to the setting ids frozen at "
                           "registration (a named setting changed); register a superseding tournament")
    if predictors_digest(reg.predictors) != reg.digest:
        raise CatalogError(f"tournament {reg.id}: its stored predictors do not match their digest")


def _registration(entry: dict[str, Any]) -> TournamentRegistration:
    p = entry["payload"]
    return TournamentRegistration(entry["hypothesis_id"], validate_tournament(p["tournament"]), float(entry["time"]),
                                  int(entry["seq"]), entry["hash"], p["settings"],
                                  [list(s) for s in p["held_out_seeds"]],
                                  {k: Predictor.model_validate(v) for k, v in p["predictors"].items()},
                                  list(p["fitted_on"]), p["predictors_digest"])


def utc(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(t)))
