"""The hypothesis log: append-only and hash-chained, in the catalog's notes table.

Every entry (a registration or a verdict) carries a sequence number, its time, the hash of the
previous entry and its own hash, SHA-256 over all of that and its payload (the construction of
a hash chain / Merkle-Damgård log, as in certificate transparency, RFC 6962). Editing, removing
or reordering any entry breaks the chain from there on, which `verify` reports; the head hash it
prints can be published to pin the whole history (dropping trailing entries is only detectable
against a published head). Registration time is the entry's time, and it is what held-out runs
must postdate. A registered hypothesis cannot change: its id is its content hash; a revision is
a new hypothesis that names the old one in `supersedes`.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from phenolab.catalog import Catalog, CatalogError
from phenolab.hypotheses.spec import Hypothesis, validate_hypothesis
from phenolab.hypotheses.verdict import TESTS
from phenolab.settings._canonical import content_hash

LOG_KIND = "hypothesis_log"
GENESIS = "0" * 64
_HASH_PREFIX = b"phenolab.hypothesis-log/1\n"


@dataclass(frozen=True)
class Registration:
    """A registered hypothesis, as the log holds it."""

    id: str
    hypothesis: Hypothesis
    time: float  # registration (unix seconds): held-out evidence must start after it
    seq: int
    entry_hash: str
    settings: dict[str, Any]  # {"scope": [[setting ids]], "held_out": [[...]], "regularizer"?: ...} at registration
    held_out_seeds: list[int]


@dataclass(frozen=True)
class Verification:
    ok: bool
    entries: int
    head: str
    problems: list[str]

    def message(self) -> str:
        if self.ok:
            return f"hypothesis log ok: {self.entries} entries, head {self.head}"
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        return f"hypothesis log is broken: {self.problems[0]}{more}"


def entry_hash(entry: dict[str, Any]) -> str:
    """SHA-256 of an entry without its `hash` field, in canonical JSON."""
    body = {k: v for k, v in entry.items() if k != "hash"}
    return content_hash(_HASH_PREFIX, body)



class _Registered(Protocol):
    id: str


R = TypeVar("R", bound=_Registered)


def find_registration(regs: list[R], ref: str, name_of: Callable[[R], str], kind: str, kinds: str) -> R:
    """The registration `ref` names: by id, unique id prefix, or name (the latest of that name);
    otherwise a CatalogError listing the newest ones."""
    hits = [r for r in regs if r.id == ref] or [r for r in regs if r.id.startswith(ref)]
    if not hits:
        hits = [r for r in regs if name_of(r) == ref][-1:]
    if len(hits) != 1:
        known = ", ".join(f"{r.id} ({name_of(r)})" for r in regs[-8:]) or "none registered"
        what = f"matches several {kinds}" if hits else f"matches no registered {kind}"
        raise CatalogError(f"{kind} {ref!r} {what}; known: {known}")
    return hits[0]

class HypothesisLog:
    """Register hypotheses, record verdicts, and verify the chain, in one catalog."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    # ---- reading -------------------------------------------------------------------------
    def entries(self) -> list[dict[str, Any]]:
        """The stored entries, oldest first, each with its note id under `note_id`."""
        try:
            notes = self.catalog.notes(LOG_KIND)
        except ValueError as exc:  # json.loads of an edited row
            raise CatalogError(f"hypothesis log: an entry is not valid JSON ({exc}); "
                               "the log was edited outside phenolab") from None
        return [{**n["obj"], "note_id": n["id"], "note_key": n["key"]} for n in notes]

    def verify(self) -> Verification:
        """Recompute every hash and link; list what does not match."""
        try:
            entries = self.entries()
        except CatalogError as exc:
            return Verification(False, 0, GENESIS, [str(exc)])
        problems: list[str] = []
        prev = GENESIS
        for i, stored in enumerate(entries):
            entry = {k: v for k, v in stored.items() if k not in ("note_id", "note_key")}
            where = f"entry {i} (note id {stored['note_id']})"
            if entry.get("seq") != i:
                problems.append(f"{where}: sequence number {entry.get('seq')!r}, expected {i} "
                                "(an entry was removed or reordered)")
            if entry.get("prev") != prev:
                problems.append(f"{where}: its link does not match the previous entry's hash "
                                "(an entry before it was removed, reordered or rewritten)")
            if entry.get("hash") != entry_hash(entry):
                problems.append(f"{where}: its content does not match its hash (edited after it was written)")
            if stored["note_key"] != entry.get("hypothesis_id"):
                problems.append(f"{where}: the row's key {stored['note_key']!r} was changed")
            prev = entry.get("hash") if isinstance(entry.get("hash"), str) else prev
        return Verification(not problems, len(entries), prev, problems)

    def require_intact(self) -> None:
        check = self.verify()
        if not check.ok:
            raise CatalogError(check.message() + "; run `phenolab hypothesis verify` for every problem")

    def registrations(self) -> list[Registration]:
        return [_registration(e) for e in self.entries() if e.get("type") == "register"]

    def registration(self, ref: str) -> Registration:
        """A registration by id, unique id prefix, or name (the latest of that name)."""
        return find_registration(self.registrations(), ref, lambda r: r.hypothesis.name, "hypothesis", "hypotheses")

    def verdicts(self, hypothesis_id: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.entries() if e.get("type") == "verdict"
                and (hypothesis_id is None or e.get("hypothesis_id") == hypothesis_id)]

    def listing(self) -> list[dict[str, Any]]:
        """One row per registered hypothesis (refuted ones too), with its latest verdict."""
        regs = self.registrations()
        verdicts = {v["hypothesis_id"]: v for v in self.verdicts()}  # later ones overwrite
        superseded_by = {r.hypothesis.supersedes: r.id for r in regs if r.hypothesis.supersedes}
        rows = []
        for r in regs:
            v = verdicts.get(r.id, {}).get("payload", {})
            rows.append({"id": r.id, "name": r.hypothesis.name, "statement": r.hypothesis.statement,
                         "registered": _utc(r.time), "supersedes": r.hypothesis.supersedes,
                         "superseded_by": superseded_by.get(r.id), "verdict": v.get("status", "untested"),
                         "reason": v.get("reason", ""),
                         "failed": [k for k in TESTS if v.get("tests", {}).get(k, {}).get("status") == "fail"],
                         "tested": _utc(verdicts[r.id]["time"]) if v else None})
        return rows

    # ---- writing -------------------------------------------------------------------------
    def register(self, hyp: Hypothesis) -> tuple[Registration, bool]:
        """Append a registration; (registration, True) if new, (existing, False) if already there."""
        settings = hyp.frozen_setting_ids()
        n_seeds = max((g.n_seeds for g in hyp.held_out), default=0)
        with self._locked():
            self.require_intact()
            regs = self.registrations()
            for r in regs:
                if r.id == hyp.id:
                    return r, False
            by_id = {r.id: r for r in regs}
            superseded = {r.hypothesis.supersedes: r.id for r in regs if r.hypothesis.supersedes}
            if hyp.supersedes is not None:
                if hyp.supersedes not in by_id:
                    raise CatalogError(f"supersedes: {hyp.supersedes!r} is not a registered hypothesis id")
                if hyp.supersedes in superseded:
                    raise CatalogError(f"supersedes: {hyp.supersedes} is already superseded by "
                                       f"{superseded[hyp.supersedes]}; supersede that one instead")
            for r in regs:
                if r.hypothesis.name == hyp.name and r.id not in superseded and r.id != hyp.supersedes:
                    raise CatalogError(f"a hypothesis named {hyp.name!r} is registered ({r.id}) and a registered "
                                       f"hypothesis cannot change; to revise it add `supersedes: {r.id}`")
            payload = {"hypothesis": hyp.model_dump(mode="json"), "settings": settings,
                       "held_out_seeds": hyp.held_out_seeds(n_seeds)}
            entry = self._append("register", hyp.id, payload)
        return _registration(entry), True

    def record_verdict(self, hypothesis_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        with self._locked():
            self.require_intact()
            return self._append("verdict", hypothesis_id, payload)

    def append(self, kind: str, key: str, payload: dict[str, Any],
               guard: Callable[[list[dict[str, Any]]], dict[str, Any] | None] | None = None) -> dict[str, Any]:
        """Append an entry of another kind (a tournament's registration or result) to the same chain,
        so `verify` covers it. `guard(entries)` runs under the lock on the intact log: it may raise to
        refuse, or return an existing entry to append nothing."""
        if kind in ("register", "verdict"):
            raise ValueError(f"entry kind {kind!r} belongs to hypotheses: use register / record_verdict")
        with self._locked():
            self.require_intact()
            existing = guard(self.entries()) if guard is not None else None
            return existing if existing is not None else self._append(kind, key, payload)

    def _append(self, kind: str, hypothesis_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Call with the lock held, after `require_intact`."""
        entries = self.entries()
        prev = entries[-1]["hash"] if entries else GENESIS
        entry = {"seq": len(entries), "type": kind, "hypothesis_id": hypothesis_id, "time": time.time(),
                 "prev": prev, "payload": _plain(payload)}
        entry["hash"] = entry_hash(entry)
        note_id = self.catalog.add_note(LOG_KIND, hypothesis_id, entry)
        return {**entry, "note_id": note_id, "note_key": hypothesis_id}

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One writer at a time across processes, so two appends never share a `prev`."""
        self.catalog.root.mkdir(parents=True, exist_ok=True)
        with open(self.catalog.root / ".hypothesis-log.lock", "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)


def _registration(entry: dict[str, Any]) -> Registration:
    p = entry["payload"]
    return Registration(entry["hypothesis_id"], validate_hypothesis(p["hypothesis"]), float(entry["time"]),
                        int(entry["seq"]), entry["hash"], p["settings"], list(p["held_out_seeds"]))


def _plain(obj: Any) -> Any:
    """JSON-safe and round-trip exact: non-finite floats become None, tuples lists."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy / torch scalars
        return _plain(obj.item())
    return obj


def _utc(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
