"""`phenolab export` and `phenolab import`: move runs between catalogs as checked bundles."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from phenolab.cli._common import CatalogOpt, JsonOpt, console, fail, open_catalog
from phenolab.settings import parse_assignments


def register(app: typer.Typer) -> None:
    @app.command()
    def export(
        out: Annotated[Path | None, typer.Argument(help="New bundle directory to write.")] = None,
        where: Annotated[list[str] | None, typer.Option(help="Only runs whose setting has FIELD=VALUE "
                                                        "(repeatable), e.g. task.p=13.")] = None,
        setting: Annotated[list[str] | None, typer.Option(help="Only runs of this setting id (repeatable).")] = None,
        catalog: CatalogOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Write the selected runs (settings, curves, checkpoints) to a bundle directory with a sha256
        manifest; `phenolab import` reads it into another catalog."""
        from phenolab.catalog.bundle import export_bundle

        # Targets: a bundle directory (OUT). Other targets (issue 7: `--mlflow URI`) are options that
        # take the same selection below; exactly one target is required.
        if out is None:
            fail("give OUT, a new directory for the bundle (e.g. phenolab export runs-bundle --where task.p=13)")
        cat = open_catalog(catalog)
        run_ids = selected_run_ids(cat, where or [], setting or [])
        manifest = export_bundle(cat, out, run_ids)
        counts = manifest["counts"]
        if as_json:
            print(json.dumps({"bundle": str(out), **counts}, indent=2))
        else:
            console.print(f"exported {counts['runs']} run(s) of {counts['settings']} setting(s), "
                          f"{counts['checkpoints']} checkpoint(s) to {out}", highlight=False)

    @app.command("import")
    def import_(
        bundle: Annotated[Path, typer.Argument(help="A bundle directory written by `phenolab export`.")],
        catalog: CatalogOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Add a bundle's runs to the catalog after checking every file's sha256 and every setting's id;
        runs already in the catalog are left as they are (importing twice changes nothing)."""
        from phenolab.catalog.bundle import import_bundle

        cat = open_catalog(catalog)
        report = import_bundle(cat, bundle)
        if as_json:
            print(json.dumps({"bundle": report.bundle, "runs_in_bundle": report.runs_in_bundle,
                              "imported": len(report.written), "already_present": report.already_present},
                             indent=2))
        else:
            console.print(f"imported {len(report.written)} run(s) from {bundle} into {cat.path}; "
                          f"{report.already_present} were already there", highlight=False)


def selected_run_ids(cat, where: list[str], settings: list[str]) -> list[str]:
    """Run ids matching every --where and any --setting (all runs when neither is given)."""
    filters = parse_assignments(where) or None
    if settings:
        ids: list[str] = []
        for sid in settings:
            ids += list(cat.runs(setting_id=sid, where=filters)["run_id"])
        return ids
    return list(cat.runs(where=filters)["run_id"])
