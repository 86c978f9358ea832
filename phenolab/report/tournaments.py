"""Tournaments as the report shows them: one page, `tournaments.html`, read from the hypothesis log.

`phenolab.tournament` appends entries of type "tournament" (the registration: the file, the
frozen predictors, the held-out seeds) and "tournament_result" (the scores, whatever they say) to
the log in notes of kind "hypothesis_log". The page shows, per tournament, its latest leaderboard,
the significant pairwise wins, what each explanation's source claims beside what it measured, the
figure of predicted against observed, and every earlier result; then, for each explanation named
in more than one tournament (e.g. the weight norm in grokking and in double descent), one table
across them. The site calls `tournament_figures` (figures to copy), `tournament_ids` (entries the
hypotheses page leaves out) and `tournament_outputs` (the page).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2

from phenolab.report.data import ReportData, digest
from phenolab.report.incremental import Output
from phenolab.report.studies import fmt_time

REGISTER, RESULT = "tournament", "tournament_result"
SLUG = "tournaments"

TEMPLATE = """{% extends "base.html" %}
{% block title %}tournaments · phenolab report{% endblock %}
{% block main %}
<h1>Tournaments: explanations head to head</h1>
<p class="lede">Each explanation's value is mapped to the target by a monotone fit on the scope runs, frozen in
  the registration entry of the hash-chained log before any held-out run existed, and scored on the same held-out
  runs as two trivial baselines: time (the step, or a sweep's capacity) and magnitude (the weight norm). Every result
  is listed, negative ones included. {{ tournaments|length }} tournament(s).</p>
{% for t in tournaments %}
<h2 id="{{ t.anchor }}">{{ t.name }} <code class="muted">{{ t.id }}</code></h2>
<p>{{ t.statement }}</p>
<p class="muted">{{ t.phenomenon }} · target <code>{{ t.target }}</code> ({{ t.read }}) · registered
  {{ t.registered }} · {{ t.results|length }} result(s){% if t.superseded_by %} · superseded by
  <code>{{ t.superseded_by }}</code>{% endif %}</p>
{% if t.board %}
<p>Latest result ({{ t.board.scored }}): {{ t.board.n_runs }} held-out run(s), {{ t.board.n_points }} point(s);
  {{ t.board.rank_by }} with a 95% interval from {{ t.board.n_boot }} bootstrap resamples of the held-out seeds.</p>
<table class="stack">
  <thead><tr><th>#</th><th>competitor</th><th>value (direction)</th><th>{{ t.board.rank_by }} [95% CI]</th><th>ρ</th>
    <th>skill vs time</th><th>skill vs magnitude</th><th>partial ρ</th><th>intervention</th><th>breadth</th>
    <th>beats (Holm)</th></tr></thead>
  <tbody>
  {% for r in t.board.rows %}
    <tr><td class="num">{{ r.rank }}</td><td class="field">{{ r.name }}{% if r.labels %} †{% endif %}
      <br><span class="muted">{{ r.role }}</span></td><td data-label="value">{{ r.value }}</td>
      <td class="num" data-label="error">{{ r.error }}</td><td class="num" data-label="ρ">{{ r.rho }}</td>
      <td class="num" data-label="skill vs time">{{ r.skill_time }}</td>
      <td class="num" data-label="skill vs magnitude">{{ r.skill_magnitude }}</td>
      <td class="num" data-label="partial ρ">{{ r.partial }}</td><td data-label="intervention">{{ r.intervention }}</td>
      <td class="num" data-label="breadth">{{ r.breadth }}</td><td data-label="beats">{{ r.beats }}</td></tr>
  {% endfor %}
  </tbody>
</table>
{% if t.board.labels %}<p class="muted">†: reads the held-out runs' test labels (the others do not).</p>{% endif %}
<h3>What each source claims, and what was measured</h3>
<ul>
{% for c in t.board.claims %}
  <li><strong>{{ c.name }}</strong> ({{ c.source or "no source given" }}): {{ c.claim or "no claim given" }}
    — <em>{{ c.measured }}</em></li>
{% endfor %}
</ul>
{% if t.figure %}<figure><img src="{{ t.figure }}" alt="predicted against observed {{ t.target }}, per competitor">
  <figcaption>Predicted against observed {{ t.target }} on the held-out runs, one panel per competitor.</figcaption>
</figure>{% endif %}
{% else %}
<p class="muted">Registered, not scored yet.</p>
{% endif %}
{% if t.results|length > 1 %}
<details><summary>every result ({{ t.results|length }})</summary><ul>
{% for r in t.results %}<li>{{ r.scored }}: {{ r.ranking }}</li>{% endfor %}
</ul></details>
{% endif %}
<details><summary>the registered file and the frozen predictors (digest <code>{{ t.digest }}</code>)</summary>
<pre><code>{{ t.spec }}</code></pre></details>
{% else %}
<p class="muted">No tournaments yet: <code>phenolab tournament run examples/tournaments/grokking_mlp.yaml</code>.</p>
{% endfor %}
{% if across %}
<h2 id="across">One explanation, several tournaments</h2>
{% for name, rows in across.items() %}
<h3>{{ name }}</h3>
<table class="stack">
  <thead><tr><th>tournament</th><th>phenomenon</th><th>target</th><th>rank</th><th>error</th><th>skill vs time</th>
    <th>skill vs magnitude</th><th>breadth</th></tr></thead>
  <tbody>
  {% for r in rows %}
    <tr><td class="field"><a href="#{{ r.anchor }}">{{ r.tournament }}</a></td><td>{{ r.phenomenon }}</td>
      <td>{{ r.target }}</td><td>{{ r.rank }}</td><td class="num">{{ r.error }}</td>
      <td class="num">{{ r.skill_time }}</td><td class="num">{{ r.skill_magnitude }}</td>
      <td class="num">{{ r.breadth }}</td></tr>
  {% endfor %}
  </tbody>
</table>
{% endfor %}
{% endif %}
{% endblock %}
"""


def _entries(data: ReportData) -> list[dict[str, Any]]:
    return [n for n in data.hypothesis_notes()
            if isinstance(n["obj"], dict) and n["obj"].get("type") in (REGISTER, RESULT)]


def tournament_ids(data: ReportData) -> set[str]:
    """Keys of the log's tournament entries: not hypotheses, so the hypotheses page leaves them out."""
    return {str(n["obj"].get("hypothesis_id")) for n in _entries(data)}


def tournament_figures(data: ReportData) -> list[tuple[str, str]]:
    """(recorded figure path, name stem in the site) of each tournament's latest result."""
    latest = {n["obj"]["hypothesis_id"]: n["obj"]["payload"] for n in _entries(data) if n["obj"]["type"] == RESULT}
    return [(str(p["figure"]), f"tournament-{tid}") for tid, p in latest.items() if p.get("figure")]


def tournament_outputs(data: ReportData, env: jinja2.Environment, common: dict[str, Any], code: str,
                       images: Callable[[str], list[str]]) -> list[Output]:
    """The tournaments page, keyed by the log entries it shows and the figures it links."""
    entries = _entries(data)
    figures = images(SLUG)
    key = digest(code, SLUG, [(n["id"], n["text"]) for n in entries], figures)

    def write(dest: Path) -> None:
        views = tournament_views(entries, figures)
        html = env.from_string(TEMPLATE).render(tournaments=views, across=across(views), **common,
                                                built=fmt_time(time.time()))
        dest.write_text(html, encoding="utf-8")

    return [Output(f"{SLUG}.html", key, write)]


def tournament_views(entries: list[dict[str, Any]], figures: list[str]) -> list[dict[str, Any]]:
    """One view per registered tournament, oldest first, with its results."""
    import json

    regs = [n["obj"] for n in entries if n["obj"]["type"] == REGISTER]
    superseded = {r["payload"]["tournament"].get("supersedes"): r["hypothesis_id"] for r in regs}
    views = []
    for reg in regs:
        tid, spec = reg["hypothesis_id"], reg["payload"]["tournament"]
        results = [n["obj"] for n in entries if n["obj"]["type"] == RESULT and n["obj"]["hypothesis_id"] == tid]
        figure = next((f for f in figures if f"tournament-{tid}." in f), None)
        views.append({
            "id": tid, "anchor": f"t-{tid}", "name": spec.get("name", tid), "statement": spec.get("statement", ""),
            "phenomenon": spec.get("phenomenon", ""), "target": _label(spec.get("target")),
            "read": "every recorded step" if spec.get("read", "steps") == "steps" else "final value of each run",
            "registered": fmt_time(reg["time"]), "superseded_by": superseded.get(tid),
            "digest": reg["payload"].get("predictors_digest", ""), "figure": figure,
            "spec": json.dumps({"tournament": spec, "predictors": reg["payload"].get("predictors")}, indent=2,
                               sort_keys=True),
            "results": [{"scored": fmt_time(r["time"]), "ranking": " > ".join(r["payload"]["scores"]["ranking"])}
                        for r in results],
            "board": _board(results[-1]) if results else None,
        })
    return views


def across(views: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Per explanation scored in more than one tournament: one row per tournament."""
    rows: dict[str, list[dict[str, Any]]] = {}
    for v in views:
        for r in (v["board"] or {}).get("rows", []):
            if r["role"] == "explanation":
                rows.setdefault(r["name"], []).append({
                    "tournament": v["name"], "anchor": v["anchor"], "phenomenon": v["phenomenon"],
                    "target": v["target"], "rank": f"{r['rank']} of {len(v['board']['rows'])}", "error": r["point"],
                    "skill_time": r["skill_time"], "skill_magnitude": r["skill_magnitude"], "breadth": r["breadth"]})
    return {k: v for k, v in rows.items() if len(v) > 1}


def _board(result: dict[str, Any]) -> dict[str, Any]:
    p = result["payload"]
    s = p["scores"]
    metric = s["rank_by"]
    rows, claims = [], []
    for rank, name in enumerate(s["ranking"], 1):
        c = s["competitors"][name]
        ci = c["boot"][metric].get("ci95")
        breadth = c.get("breadth")
        rows.append({"rank": rank, "name": name, "role": c["role"], "labels": bool(c.get("reads_test_labels")),
                     "value": f"{c['value']} ({c['direction']})", "point": _num(c[metric], 4),
                     "error": _num(c[metric], 4) + (f" [{ci[0]:.4f}, {ci[1]:.4f}]" if ci else ""),
                     "rho": _num(c["spearman"]), "skill_time": _num(c["skill"].get("time")),
                     "skill_magnitude": _num(c["skill"].get("magnitude")),
                     "partial": _num(c.get("partial")) if c["role"] == "explanation" else "—",
                     "intervention": (c.get("intervention") or {}).get("status", "—").replace("not_run", "—"),
                     "breadth": f"{breadth['n']}/{breadth['of']}" if breadth else "—",
                     "beats": ", ".join(c.get("beats", [])) or "—"})
        if c["role"] == "explanation":
            sig = [b for b in ("time", "magnitude") if b in c.get("beats", [])]
            won = ("does not beat both baselines" if not c.get("beats_both_baselines") else
                   f"beats both baselines (significantly (Holm): {' and '.join(sig) or 'neither'})")
            where = f"; beats both in {breadth['n']} of {breadth['of']} held-out groups" if breadth else ""
            claims.append({"name": name, "source": c.get("source", ""), "claim": c.get("claim", ""),
                           "measured": f"rank {rank} of {len(s['ranking'])}, {won}{where}"})
    return {"scored": fmt_time(result["time"]), "n_runs": s["n_runs"], "n_points": s["n_points"],
            "n_boot": s["n_boot"], "rank_by": metric, "rows": rows, "claims": claims,
            "labels": any(r["labels"] for r in rows)}


def _label(ref: Any) -> str:
    if isinstance(ref, dict):
        params = ",".join(f"{k}={v}" for k, v in sorted((ref.get("params") or {}).items()))
        return f"{ref.get('name', '')}{f'({params})' if params else ''}"
    return str(ref)


def _num(v: Any, digits: int = 3) -> str:
    return "—" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.{digits}f}"
