"""Canonical JSON and content hashes, defined once: setting ids, hypothesis ids and the hypothesis
log's chain must all serialise alike, or a pinned id drifts when one copy changes."""

from __future__ import annotations

import hashlib
import json
from typing import Any, ClassVar


def canonical_dumps(obj: Any) -> str:
    """Sorted keys, no whitespace, ASCII only, no NaN: equal objects give equal bytes."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def content_hash(prefix: bytes, obj: Any) -> str:
    """SHA-256 (hex) of `prefix` + the canonical JSON of `obj`; the prefix keeps kinds of record apart."""
    return hashlib.sha256(prefix + canonical_dumps(obj).encode()).hexdigest()


class ContentAddressed:
    """Mixin for the pydantic models named by their content (Setting, Hypothesis).

    The id covers only non-default fields (as open_lth names runs), so a field added later with a
    neutral default keeps every old id valid; `id_prefix` keeps one kind's ids from another's.
    """

    id_prefix: ClassVar[bytes]

    def canonical_json(self) -> str:
        """Every field, sorted keys, no whitespace: the full record stored in the catalog."""
        return canonical_dumps(self.model_dump(mode="json"))

    @property
    def id(self) -> str:
        """Content id: 16 hex digits of SHA-256 over the non-default fields."""
        return content_hash(self.id_prefix, self.model_dump(mode="json", exclude_defaults=True))[:16]
