"""Keeping a report as fresh as its catalog.

A report is a snapshot; a reader who opens it after `phenolab reproduce` should not see the state
before. So the commands that add runs or verdicts (`reproduce`, `train`, `sweep`, `hypothesis
test`) end with `refresh_if_present(catalog)`: every report already built from that catalog is
rebuilt incrementally (only the pages whose rows changed; nothing when nothing did), with the
options it was built with, drawing at most `NEW_FIGURES` new figures (after a sweep of a hundred
settings, their pages come at once and their curves at the next `phenolab report`). No report is
created where none was asked for.

Which folders hold a report of a catalog: its default one (`CATALOG_DIR/report`) and every `--out`
it was built into, listed in `CATALOG_DIR/.phenolab-reports.json`; a folder counts only while it
holds a report manifest naming this catalog. Pages made by other commands (`phase`, `audit`,
`checklist`, `import`) appear at the next refresh; each page's footer gives the command.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from phenolab.catalog import Catalog
from phenolab.report.incremental import MARKER

REGISTRY = ".phenolab-reports.json"
NEW_FIGURES = 12  # figures a refresh draws anew at most (matplotlib: a few tenths of a second each)


def remember(catalog: Catalog, target: Path) -> None:
    """Note `target` as a report folder of `catalog` (best effort: a read-only catalog folder keeps
    its default report only)."""
    folder = str(target.resolve())
    known = _listed(catalog)
    if folder in known:
        return
    with contextlib.suppress(OSError):
        fd, tmp = tempfile.mkstemp(prefix=".reports-", dir=catalog.root)
        with os.fdopen(fd, "w") as f:
            json.dump({"reports": [*known, folder]}, f, indent=1)
        os.replace(tmp, catalog.root / REGISTRY)


def report_folders(catalog: Catalog) -> list[Path]:
    """The folders that hold a report built from `catalog`, the default one first."""
    own = catalog.path.resolve()
    out = []
    for folder in dict.fromkeys([str((catalog.root / "report").resolve()), *_listed(catalog)]):
        manifest = _manifest(Path(folder))
        if manifest is None:
            continue
        built_from = _build(manifest).get("catalog")
        if built_from is None and Path(folder) != (catalog.root / "report").resolve():
            continue  # a report of unknown origin outside the catalog's folder: not ours to rebuild
        if built_from is not None and Path(built_from).resolve() != own:
            continue
        out.append(Path(folder))
    return out


def refresh_if_present(catalog: Catalog) -> list[Path]:
    """Rebuild, incrementally, every report of `catalog` (see the module doc); returns their index
    pages (empty when the catalog has none)."""
    from phenolab.report.site import build_report

    done = []
    for folder in report_folders(catalog):
        options = _build(_manifest(folder) or {})
        result = build_report(catalog, folder, max_figures=int(options.get("max_figures", 200)),
                              setting_pages=bool(options.get("setting_pages", False)), new_figures=NEW_FIGURES)
        done.append(result.index)
    return done


def _listed(catalog: Catalog) -> list[str]:
    try:
        obj = json.loads((catalog.root / REGISTRY).read_text())
    except (OSError, ValueError):
        return []
    reports = obj.get("reports") if isinstance(obj, dict) else None
    return [str(r) for r in reports if isinstance(r, str)] if isinstance(reports, list) else []


def _build(manifest: dict[str, Any]) -> dict[str, Any]:
    """How the report was built (catalog, options), as its manifest records it."""
    build = manifest.get("build")
    return build if isinstance(build, dict) else {}


def _manifest(folder: Path) -> dict[str, Any] | None:
    try:
        obj = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None
