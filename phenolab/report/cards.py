"""The index as an atlas: one card per registered phenomenon.

A card shows what a reader wants first: the figure of the phenomenon's newest recorded study (or
the command that makes one), its headline signature (mean ± sd, n) beside what the source
published, and links to its studies, phase diagrams and hypotheses. Everything is read from the
registry (`phenolab.phenomena.PHENOMENA`) and the catalog, so a new phenomenon package gets its card
with no change here. The points of a sweep stay inside their study; sources are cited on the study
pages.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from phenolab.phenomena import Fields, Phenomenon
from phenolab.report.hypotheses import HypothesisView
from phenolab.report.studies import Study, fmt, ordered_keys

MAX_HEADLINE = 4  # fields on a card
MAX_LINKS = 5  # studies listed on a card (the index's table lists them all)


def headline_keys(summary: dict[str, Any], fields: Fields | None, phase_default: str = "",
                  phase_context: tuple[str, ...] = ()) -> list[str]:
    """The summary fields a card shows. The phenomenon's phase-map field and its context fields,
    when the summary has them (what its author chose to characterize a study); otherwise the first
    fields it declares that the summary holds, leaving out bookkeeping (`phase=False`)."""
    chosen = [k for k in (phase_default, *phase_context) if k and k in summary]
    if chosen:
        return chosen[:MAX_HEADLINE]
    if fields is None:
        return []
    keep = []
    for key in ordered_keys([k for k in summary if fields.get(k) is not None], fields):
        declared = fields.get(key)
        if declared is not None and declared.phase and not _nested(summary[key]):
            keep.append(key)
    return keep[:MAX_HEADLINE]


def headline(summary: dict[str, Any], fields: Fields | None, ph: Phenomenon | None = None) -> list[dict[str, str]]:
    """[{field, value, n, unit, description}] for the card: a stat as `mean ± sd` with its n."""
    keys = headline_keys(summary, fields, getattr(ph, "phase_default", ""), getattr(ph, "phase_context", ()))
    out = []
    for key in keys:
        val = summary[key]
        declared = fields.get(key) if fields is not None else None
        about = {"unit": declared.unit if declared else "", "description": declared.description if declared else ""}
        if isinstance(val, dict) and "mean" in val and "n" in val:
            text = fmt(val.get("mean")) + ("" if val.get("sd") is None else f" ± {fmt(val.get('sd'))}")
            out.append({"field": key, "value": text, "n": fmt(val.get("n")), **about})
        else:
            out.append({"field": key, "value": fmt(val), "n": "", **about})
    return out


def _nested(val: Any) -> bool:
    return isinstance(val, dict) and not ("mean" in val and "n" in val)


def phenomenon_cards(registry: dict[str, Phenomenon], studies: list[Study], phases: list[Study],
                     hyps: list[HypothesisView], images: Callable[[str], list[str]],
                     fields: Callable[[Study], Fields | None]) -> list[dict[str, Any]]:
    """One card per registered phenomenon, in name order; `images(slug)` gives a study's figures
    as made, `fields(study)` its declared signature fields."""
    cards = []
    for name in sorted(registry):
        ph = registry[name]
        mine = sorted((s for s in studies if s.phenomenon == name), key=lambda s: s.created or 0.0, reverse=True)
        newest = mine[0] if mine else None
        canon = _canonical(ph, newest.setting_name if newest else None)
        figure = next(iter(images(newest.slug)), None) if newest else None
        names = set(ph.setting_names())
        cards.append({
            "name": name, "title": ph.title, "command": f"phenolab reproduce {name}",
            "settings": list(ph.setting_names()),  # what `reproduce NAME --setting` takes (sources: study pages)
            "newest": None if newest is None else {"slug": newest.slug, "title": newest.title,
                                                    "setting": newest.setting_name, "created": newest.created},
            "figure": figure,
            "headline": headline(newest.summary, fields(newest), ph) if newest else [],
            "published": canon.published if canon else "", "published_setting": canon.name if canon else "",
            "studies": [{"slug": s.slug, "title": s.title, "seeds": len(s.seeds)} for s in mine[:MAX_LINKS]],
            "more_studies": max(0, len(mine) - MAX_LINKS),
            "phases": [{"slug": p.slug, "title": p.title} for p in phases if p.phenomenon == name],
            "hypotheses": [{"anchor": h.anchor, "name": h.name or h.id, "statement": h.title, "verdict": h.verdict}
                           for h in hyps if names & set(h.settings)],
        })
    return cards


def _canonical(ph: Phenomenon, setting: str | None) -> Any:
    """The canonical setting a card quotes: the newest study's (none if that study's setting is not
    canonical: a published number of another setting would mislead), else the phenomenon's first."""
    if setting is None:
        return ph.canonical[0] if ph.canonical else None
    return next((c for c in ph.canonical if c.name == setting), None)
