"""The self-evaluation checklist of the position paper (its Table 1), answers stored per study.

Questions are verbatim from "Table 1. Self-Evaluation Checklist" of Jeffares & van der Schaar (2025),
"Position: Not All Explanations for Deep Learning Phenomena Are Equally Valuable": three
research phases, two categories each. Every answer session is appended to the catalog as a note
of kind "checklist" keyed by the study id; the report merges them in order (the latest non-empty
answer to a question wins), so nothing is ever overwritten.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from phenolab.catalog import Catalog
from phenolab.settings import SettingError

NOTE_KIND = "checklist"
SOURCE = ("Table 1, Self-Evaluation Checklist: 'A curated selection of key questions for researchers to consider "
          "at each stage of studying deep learning phenomena.'")


class ChecklistError(SettingError):
    """A bad answers file or question id (one line, like every user error)."""


@dataclass(frozen=True)
class Question:
    id: str  # "<category slug>.<n>", stable: answers are stored under it
    phase: str
    category: str
    text: str


_TABLE: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("Early Stage Problem Identification", "Context & Literature Review", "context", (
        "How have others framed or approached this phenomenon in the past?",
        "In which modalities, architectures, optimizers, etc. has it been observed thus far?",
        "What are both the most simple and complex settings in which this phenomenon can be observed?",
        "How has this phenomenon been understood in the past and what are the limitations of these explanations?",
    )),
    ("Early Stage Problem Identification", "Research Value Assessment", "value", (
        "Does this phenomenon appear in practical, real-world settings or is it an edge case? "
        "Where does its value lie?",
        "If it is an edge case, how synthetic are the conditions required to induce this phenomenon?",
        "What theories or assumptions does this phenomenon challenge either implicitly or explicitly?",
        "Optimistically, what are some of the greatest impact outcomes that could be achieved by making progress "
        "on this phenomenon?",
    )),
    ("Throughout the Research Process", "Continuous Reassessment of Utility", "reassessment", (
        "What predictions does my explanation make beyond this specific setup?",
        "Is practical utility being considered in selecting which research questions are being pursued?",
        "Have I controlled for confounding factors like metric choice, initialization scale, or overfitting?",
        "Are there measurable sub-patterns or intermediate behaviors worth isolating?",
        "How is this analysis evolving? Does it continue to hold promise for contributing to broader explanatory "
        "theories or has the scope drifted?",
    )),
    ("Throughout the Research Process", "Scientific Methodology", "methodology", (
        "What hypothesis (if any) is being tested — and is it falsifiable?",
        "Am I remaining conscious of common cognitive biases such as confirmation bias or false causality?",
        "Am I following other important scientific principles as described in Section 5.2?",
    )),
    ("Concluding Considerations", "Cataloging & Reconciliation with Literature", "cataloging", (
        "Are my findings reproducible, and is my code (or data) easily reusable and extendable?",
        "Did I document negative or ambiguous results that may be valuable?",
        "Have I explicitly reconciled my findings with previous works? Where do they agree and disagree?",
        "Have I been clear about which claims are empirical, theoretical, or speculative?",
    )),
    ("Concluding Considerations", "Avenues to Practical Utility", "utility", (
        "Have I explicitly stated just how these findings may contribute to broader explanatory theories? "
        "How are these findings useful?",
        "If utility is not immediate, have I articulated a vision for future relevance?",
        "Have I helped clarify when and why this phenomenon matters (or doesn't)?",
        "How transferable are these findings across e.g. architectures, tasks, or training regimes?",
        "Concretely, what promising future research may this work contribute to? Can I map out a speculative path "
        "to those contributions?",
    )),
)

QUESTIONS: tuple[Question, ...] = tuple(
    Question(f"{slug}.{i}", phase, category, text)
    for phase, category, slug, texts in _TABLE
    for i, text in enumerate(texts, start=1)
)
_BY_ID = {q.id: q for q in QUESTIONS}
_BY_TEXT = {q.text: q for q in QUESTIONS}


def grouped() -> list[tuple[str, list[tuple[str, list[Question]]]]]:
    """[(phase, [(category, questions), ...]), ...] in the table's order."""
    out: list[tuple[str, list[tuple[str, list[Question]]]]] = []
    for q in QUESTIONS:
        if not out or out[-1][0] != q.phase:
            out.append((q.phase, []))
        cats = out[-1][1]
        if not cats or cats[-1][0] != q.category:
            cats.append((q.category, []))
        cats[-1][1].append(q)
    return out


def normalize_answers(raw: Any, where: str = "answers") -> dict[str, str]:
    """{question id or verbatim question text: answer} -> {question id: answer}, empty answers dropped."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ChecklistError(f"{where}: expected a mapping of question id to answer, e.g. 'context.1: ...'")
    out: dict[str, str] = {}
    for key, value in raw.items():
        q = _BY_ID.get(str(key)) or _BY_TEXT.get(str(key).strip())
        if q is None:
            raise ChecklistError(f"{where}: unknown question {str(key)!r}; allowed ids: {', '.join(_BY_ID)}")
        if value is None:
            continue
        if not isinstance(value, (str, int, float, bool)):
            raise ChecklistError(f"{where}: answer to {q.id} must be text, not a {type(value).__name__}")
        text = str(value).strip()
        if text:
            out[q.id] = text
    return out


def load_answers_file(path: str | Path) -> dict[str, str]:
    """Answers from a YAML file: `question id: answer` (ids as in `phenolab checklist --list`)."""
    p = Path(path)
    if not p.is_file():
        raise ChecklistError(f"answers file {str(p)!r} does not exist")
    try:
        raw = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise ChecklistError(f"answers file {str(p)!r} does not parse: {str(exc).splitlines()[0]}") from None
    return normalize_answers(raw, where=f"answers file {str(p)!r}")


def record_answers(catalog: Catalog, study: str, answers: dict[str, str]) -> int:
    """Append one answer session for `study` to the catalog; returns the note id."""
    return catalog.add_note(NOTE_KIND, study, {"study": study, "answers": normalize_answers(answers)})


def recorded_answers(catalog: Catalog, study: str) -> dict[str, dict[str, Any]]:
    """{question id: {"answer", "created"}} merged over every session, the latest answer winning."""
    return merge_answers(catalog.notes(NOTE_KIND, study))


def merge_answers(notes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """`recorded_answers` of one study's checklist notes (oldest first)."""
    out: dict[str, dict[str, Any]] = {}
    for note in notes:
        answers = note["obj"].get("answers", {}) if isinstance(note["obj"], dict) else {}
        for qid, text in answers.items():
            if qid in _BY_ID and isinstance(text, str) and text.strip():
                out[qid] = {"answer": text, "created": note["created"]}
    return out
