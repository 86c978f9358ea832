"""phenolab's on-disk cache (generated data sets, built helpers): one place decides where it is."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """`$PHENOLAB_CACHE`, else `~/.cache/phenolab`."""
    return Path(os.environ.get("PHENOLAB_CACHE") or Path.home() / ".cache" / "phenolab")
