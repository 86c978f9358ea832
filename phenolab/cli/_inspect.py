"""Reading the catalog: `runs`, `curves`, `show`, `settings`, `plot`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.table import Table

from phenolab.cli._common import CatalogOpt, JsonOpt, console, fail, print_json, read_catalog
from phenolab.settings import parse_assignments

SUMMARY_COLS = ("final_train_acc", "final_test_acc", "final_train_loss", "final_test_loss")


def _table(df: pd.DataFrame, title: str = "") -> Table:
    table = Table(title=title or None)
    for col in df.columns:
        table.add_column(str(col), overflow="fold")
    for row in df.itertuples(index=False):
        table.add_row(*(_fmt(v) for v in row))
    return table


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def register(app: typer.Typer) -> None:
    @app.command()
    def runs(
        catalog: CatalogOpt = None,
        setting: Annotated[str | None, typer.Option(help="Only runs of this setting id.")] = None,
        where: Annotated[list[str] | None, typer.Option(help="Filter on a setting field: FIELD=VALUE "
                                                        "(repeatable), e.g. model.width=128.")] = None,
        limit: Annotated[int, typer.Option(help="Show at most this many rows (0 = all).")] = 50,
        as_json: JsonOpt = False,
    ) -> None:
        """List the runs in the catalog with their final train/test numbers."""
        cat = read_catalog(catalog)
        df = cat.runs(setting_id=setting, where=parse_assignments(where or []) or None)
        if as_json:
            print(df.to_json(orient="records", indent=2))
            return
        if df.empty:
            console.print(f"no runs in {cat.path}")
            return
        cols = ["run_id", "seed", "task", "model", *[c for c in SUMMARY_COLS if c in df], "wall_s"]
        shown = df[cols] if not limit else df[cols].head(limit)
        console.print(_table(shown, f"{len(df)} run(s) in {cat.path}"))

    @app.command()
    def curves(
        run_id: Annotated[str, typer.Argument(help="A run id (see `phenolab runs`).")],
        catalog: CatalogOpt = None,
        metric: Annotated[list[str] | None, typer.Option(help="Only these metrics (repeatable).")] = None,
        csv: Annotated[Path | None, typer.Option(help="Write the curves to this CSV file.")] = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Print one run's curves (step × metric), or export them as CSV/JSON."""
        from phenolab.execute.preflight import writable_file

        if csv is not None:
            writable_file(csv, "--csv")
        cat = read_catalog(catalog)
        cat.run(run_id)  # clear error when the id is unknown
        df = cat.curves(run_ids=[run_id], metrics=metric or None)
        wide = df.pivot_table(index="step", columns="metric", values="value").reset_index()
        wide.columns.name = None
        if csv is not None:
            wide.to_csv(csv, index=False)
            console.print(f"wrote {len(wide)} rows to {csv}")
        elif as_json:
            print(wide.to_json(orient="records", indent=2))
        else:
            console.print(_table(wide, f"curves of {run_id}"))

    @app.command()
    def show(
        ident: Annotated[str, typer.Argument(help="A run id or a setting id.")],
        catalog: CatalogOpt = None,
    ) -> None:
        """Print a run (setting, provenance, final numbers) or a setting as JSON."""
        cat = read_catalog(catalog)
        if "-" in ident:
            print_json(cat.run(ident))
        else:
            print_json(cat.setting(ident))

    @app.command()
    def settings(
        name: Annotated[str | None, typer.Argument(help="A named setting: show it whole (every field, its "
                                                   "source, what the source published).")] = None,
        as_json: JsonOpt = False,
    ) -> None:
        """List the named (canonical) settings, or show one whole."""
        import json

        from phenolab.phenomena import PHENOMENA, unknown_name
        from phenolab.settings import NAMED_SETTINGS, SettingError, named_setting

        owner = {c.name: (ph.name, c) for ph in PHENOMENA.values() for c in ph.canonical}
        if name is None:
            rows = [{"name": n.name, "phenomenon": owner.get(n.name, ("",))[0], "description": n.description,
                     "source": n.source} for n in sorted(NAMED_SETTINGS.values(), key=lambda n: n.name)]
            if as_json:
                print_json(rows)
            else:
                table = pd.DataFrame(rows).drop(columns=["source"])
                console.print(_table(table, "named settings (`phenolab settings NAME` shows one whole)"))
            return
        if name not in NAMED_SETTINGS:
            raise SettingError(unknown_name("setting", name, sorted(NAMED_SETTINGS)))
        named, setting = NAMED_SETTINGS[name], named_setting(name)
        phenomenon, canon = owner.get(name, ("", None))
        info = {"name": name, "id": setting.id, "phenomenon": phenomenon, "source": named.source,
                "description": named.description, "published": canon.published if canon else "",
                "quick": dict(canon.quick) if canon else {}, "setting": setting.model_dump(mode="json")}
        if as_json:
            print_json(info)
            return
        for key in ("name", "id", "phenomenon", "description", "source", "published", "quick"):
            if info[key]:
                console.print(f"[bold]{key}[/]: {info[key]}", soft_wrap=True, highlight=False)
        console.print(json.dumps(info["setting"], indent=2), soft_wrap=True, highlight=False, markup=False)

    @app.command()
    def plot(
        setting_id: Annotated[str, typer.Argument(help="Setting id whose runs to plot (mean ± sd over seeds).")],
        catalog: CatalogOpt = None,
        out: Annotated[Path | None, typer.Option(help="PNG path (default: CATALOG_DIR/figures/ID.png).")] = None,
    ) -> None:
        """Draw train/test accuracy and loss vs step for all seeds of a setting."""
        from phenolab.execute.preflight import writable_file
        from phenolab.figures import curves_figure

        if out is not None:
            writable_file(out, "--out")
        cat = read_catalog(catalog)
        df = cat.curves(setting_id=setting_id)
        if df.empty:
            fail(f"setting {setting_id!r} has no runs in {cat.path}; see `phenolab runs`")
        path = curves_figure(df, out or cat.root / "figures" / f"{setting_id}.png", title=setting_id)
        console.print(f"figure: {path}")
