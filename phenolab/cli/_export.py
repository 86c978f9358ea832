"""`phenolab export` and `phenolab import`: move runs between catalogs as checked bundles, or copy
them to an MLflow tracking store (`export --mlflow URI`; `export-mlflow URI` is its alias)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from phenolab.cli._common import CatalogOpt, JsonOpt, console, fail, open_catalog, print_json, read_catalog
from phenolab.settings import parse_assignments

WhereOpt = Annotated[list[str] | None, typer.Option(help="Only runs whose setting has FIELD=VALUE "
                                                    "(repeatable), e.g. task.p=13.")]
ExperimentOpt = Annotated[str, typer.Option(help="MLflow experiment to write into (MLflow export only).")]


def register(app: typer.Typer) -> None:
    @app.command()
    def export(
        out: Annotated[Path | None, typer.Argument(help="New bundle directory to write.")] = None,
        where: WhereOpt = None,
        setting: Annotated[list[str] | None, typer.Option(help="Only runs of this setting id (repeatable).")] = None,
        mlflow: Annotated[str | None, typer.Option(
            "--mlflow", metavar="TRACKING_URI", help="Copy the runs to this MLflow tracking store instead of a "
            "bundle, e.g. sqlite:///mlflow.db or http://host:5000.")] = None,
        experiment: ExperimentOpt = "phenolab",
        catalog: CatalogOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Write the selected runs (settings, curves, checkpoints) to a bundle directory with a sha256
        manifest, which `phenolab import` reads into another catalog; or, with --mlflow, copy them to an
        MLflow tracking store (runs already exported there are skipped)."""
        from phenolab.catalog.bundle import export_bundle

        # Targets: a bundle directory (OUT) or an MLflow store (--mlflow); both take the same selection.
        if out is None and mlflow is None:
            fail("give OUT, a new directory for the bundle (e.g. phenolab export runs-bundle --where task.p=13), "
                 "or --mlflow TRACKING_URI")
        if out is not None and mlflow is not None:
            fail(f"give OUT or --mlflow, not both (OUT {str(out)!r}, --mlflow {mlflow!r})")
        if out is not None:
            from phenolab.execute.preflight import writable_folder

            writable_folder(out, "OUT", new=True)
        cat = read_catalog(catalog)
        run_ids = selected_run_ids(cat, where or [], setting or [])
        if mlflow is not None:
            export_to_mlflow(cat, mlflow, run_ids, experiment, as_json)
            return
        manifest = export_bundle(cat, out, run_ids)
        counts = manifest["counts"]
        if as_json:
            print_json({"bundle": str(out), **counts})
        else:
            console.print(f"exported {counts['runs']} run(s) of {counts['settings']} setting(s), "
                          f"{counts['checkpoints']} checkpoint(s) to {out}", highlight=False)

    @app.command("export-mlflow")
    def export_mlflow_cmd(
        uri: Annotated[str, typer.Argument(help="MLflow tracking URI, e.g. sqlite:///mlflow.db or http://host:5000.")],
        catalog: CatalogOpt = None,
        where: WhereOpt = None,
        experiment: ExperimentOpt = "phenolab",
    ) -> None:
        """Alias of `phenolab export --mlflow URI`: copy runs to an MLflow tracking store (params = the
        setting, metrics = curves with steps, tags = phenomenon, setting id, seed); runs already there are
        skipped."""
        cat = read_catalog(catalog)
        export_to_mlflow(cat, uri, selected_run_ids(cat, where or [], []), experiment, False)

    @app.command("import")
    def import_(
        bundle: Annotated[Path, typer.Argument(help="A bundle directory written by `phenolab export`.")],
        catalog: CatalogOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Add a bundle's runs to the catalog after checking every file's sha256 and every setting's id;
        runs already in the catalog are left as they are (importing twice changes nothing)."""
        from phenolab.catalog.bundle import import_bundle
        from phenolab.settings import SettingError

        try:
            bundle.is_dir()
        except OSError as exc:
            raise SettingError(f"BUNDLE {str(bundle)[:80]!r}: {exc.strerror or exc}") from None
        cat = open_catalog(catalog)
        report = import_bundle(cat, bundle)
        if as_json:
            print_json({"bundle": report.bundle, "runs_in_bundle": report.runs_in_bundle,
                        "imported": len(report.written), "already_present": report.already_present})
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


def export_to_mlflow(cat, uri: str, run_ids: list[str], experiment: str, as_json: bool) -> int:
    """Copy the runs `run_ids` to the MLflow store at `uri` and say how many were new."""
    from phenolab.export_mlflow import export_mlflow

    n = export_mlflow(cat, uri, run_ids=run_ids, experiment=experiment)
    if as_json:
        print_json({"mlflow": uri, "experiment": experiment, "selected": len(run_ids), "exported": n})
    else:
        console.print(f"exported {n} run(s) to {uri} (experiment {experiment!r})", highlight=False, soft_wrap=True)
    return n
