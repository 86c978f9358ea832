"""Phase diagrams: a signature field of a phenomenon over two factors, averaged over seeds.

Each grid cell is the phenomenon's own study at that point (`Phenomenon.study` with the two factor
values as overrides), so any registered phenomenon maps without a line here naming it. A cell's
value comes from the phenomenon's per-run signature when it has one (`Phenomenon.run_signature`:
one read of the curves for all cells, fast enough for 10⁴ runs), else from its
`Phenomenon.signature(catalog, study)`: the per-run rows when they carry the field (mean over
seeds), else the summary's (e.g. a double-descent peak location per cell). Numeric fields give
mean ± sd; text fields (grokking's phase) give the commonest value and its share, drawn with one
fixed colour per category (declared with the field). After Liu et al. 2022 (Omnigrok), whose
phase diagrams classify comprehension / grokking / memorization / confusion per cell.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from phenolab.catalog import Catalog, run_id_for
from phenolab.execute.grid import GridAxis, resolve_axes
from phenolab.figures import pyplot, save_figure
from phenolab.phenomena import Options, Phenomenon, RunSignature, Signature, Study, Trainer
from phenolab.settings import SettingError

CATEGORY_COLOURS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c")


# ---- cells --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PhaseCell:
    x: Any
    y: Any
    study: Study


def phase_cells(ph: Phenomenon, setting_name: str, overrides: dict[str, Any], axes: list[GridAxis],
                seeds: list[int], quick: bool = False, options: Options | None = None,
                ) -> tuple[list[GridAxis], list[PhaseCell]]:
    """The two typed axes and one study per cell (x varies slowest); everything validated.
    `quick`: each cell is the phenomenon's `--quick` study; `options`: its options."""
    if len(axes) != 2:
        raise SettingError(f"phase: give exactly two --grid factors (x and y), got {len(axes)}")
    options = ph.parse_options(options)
    base = ph.study(setting_name, seeds, overrides, quick, options).settings[0]
    axes = resolve_axes(base, axes, overrides)
    fx, fy = axes[0].field, axes[1].field
    cells = []
    for x in axes[0].values:
        for y in axes[1].values:
            try:
                study = ph.study(setting_name, seeds, {**overrides, fx: x, fy: y}, quick, options)
            except SettingError as exc:
                raise SettingError(f"grid point {fx}={x} {fy}={y}: {exc}") from None
            cells.append(PhaseCell(x, y, study))
    if ph.run_signature(setting_name, options) is not None and len(cells[0].study.settings) > 1:
        raise SettingError(f"phase {ph.name}: with these options a cell is {len(cells[0].study.settings)} settings; "
                           "a phase diagram of per-run signatures maps one setting per cell")
    return axes, cells


def phase_field(ph: Phenomenon, field: str | None, setting_name: str) -> str:
    """The field to draw: `--metric` (checked against the fields the phenomenon declares a phase
    diagram may map, when it declares any), else its default."""
    if field is None:
        if ph.phase_default:
            return ph.phase_default
        raise SettingError(f"phase {ph.name}: give --metric (a field of its signature)")
    allowed = ph.fields(setting_name).mappable()
    if allowed and field not in allowed:
        raise SettingError(f"--metric {field!r}: not a {ph.name} signature field; allowed: {', '.join(allowed)}")
    return field


def train_cells(ph: Phenomenon, cells: list[PhaseCell], trainer: Trainer) -> list[str]:
    """Train what the catalog lacks: all cells in one sweep, unless the phenomenon stages its own
    training (then cell by cell through `Phenomenon.train`)."""
    return trainer.studies(ph, [c.study for c in cells])


# ---- the table ----------------------------------------------------------------------------------
def phase_table(catalog: Catalog, ph: Phenomenon, axes: list[GridAxis], cells: list[PhaseCell],
                field: str) -> pd.DataFrame:
    """One row per cell: the factors, the setting id(s), n, and mean/sd (numeric) or the commonest
    value, its share and a count per category (text). `n_missing`: seeds without a value (censored,
    e.g. a threshold never reached, or no run stored)."""
    # the phenomenon's signature of each cell, once: the field's values (without a per-run
    # signature) and the `phase_context` fields both come from it
    setting_name = cells[0].study.setting_name
    run_sig = ph.run_signature(setting_name, cells[0].study.options)
    sigs: list[Signature | None] = [ph.signature(catalog, c.study) for c in cells] \
        if run_sig is None or ph.phase_context else [None for _ in cells]
    per_cell = _cell_values_fast(catalog, run_sig, cells, field) if run_sig is not None else \
        [_signature_values(ph, sig, field) for sig in sigs]
    per_cell = [[_bool_as_text(v) for v in vals] for vals in per_cell]  # a yes/no field is two categories
    if not any(v is not None for vals in per_cell for v in vals):
        raise SettingError(f"phase: no values of {field!r} in the catalog for these cells")
    categorical = any(isinstance(v, str) for vals in per_cell for v in vals)
    cats = _categories(ph, setting_name, field, per_cell) if categorical else ()
    rows = []
    for cell, vals, sig in zip(cells, per_cell, sigs, strict=True):
        row: dict[str, Any] = {axes[0].field: cell.x, axes[1].field: cell.y,
                               "setting_id": ";".join(_ids(cell))}
        present = [v for v in vals if is_present(v)]
        row["n"], row["n_missing"] = len(present), len(vals) - len(present)
        if categorical:
            counts = Counter(present)
            top = max(cats, key=lambda c: counts[c]) if present else None  # ties: the earlier category
            row["value"] = top
            row["share"] = counts[top] / len(present) if present else None
            row.update({f"n_{c}": counts[c] for c in cats})
        else:
            arr = np.asarray(present, dtype=float)
            row["mean"] = float(arr.mean()) if arr.size else None
            row["sd"] = float(arr.std(ddof=1)) if arr.size > 1 else (0.0 if arr.size else None)
        row.update(_context(ph, sig, field))
        rows.append(row)
    table = pd.DataFrame(rows)
    # context fields no cell's signature has (a double-descent field of the other axis) are left out
    context = [c for c in ph.phase_context if c != field and table[c].notna().any()]
    table = table.drop(columns=[c for c in ph.phase_context if c in table and c not in context])
    table.attrs.update(field=field, phenomenon=ph.name, categorical=categorical, categories=list(cats),
                       seeds=len(cells[0].study.seeds), context=context)
    return table


def _cell_values_fast(catalog: Catalog, sig: RunSignature, cells: list[PhaseCell], field: str) -> list[list[Any]]:
    run_ids = [[run_id_for(sid, seed) for sid in _ids(c) for seed in c.study.seeds] for c in cells]
    by_run = catalog.curve_arrays([r for ids in run_ids for r in ids], list(sig.metrics))
    out = []
    for ids in run_ids:
        out.append([sig.fn(by_run[r]).get(field) if r in by_run else None for r in ids])  # None: no run
    return out


def _bool_as_text(v: Any) -> Any:
    return ("true" if v else "false") if isinstance(v, (bool, np.bool_)) else v


def _ids(cell: PhaseCell) -> list[str]:
    """Setting ids of a cell, hashed once per cell (Setting.id hashes on every access)."""
    return [s.id for s in cell.study.settings]


def _signature_values(ph: Phenomenon, sig: Signature | None, field: str) -> list[Any]:
    """The field's values in a cell's signature: per run where its rows carry it, else the summary's."""
    rows = sig.per_run if sig is not None else []
    if rows and field in rows[0]:
        return [r.get(field) for r in rows]
    summary = sig.summary if sig is not None else {}
    if field in summary:
        val = summary[field]
        return [val["mean"] if isinstance(val, dict) and "mean" in val else val]
    fields = sorted({*(rows[0] if rows else {}), *summary})
    if not rows and not summary:
        return []
    raise SettingError(f"--metric {field!r}: not in the {ph.name} signature; allowed: {', '.join(fields)}")


def _context(ph: Phenomenon, sig: Signature | None, field: str) -> dict[str, Any]:
    """The phenomenon's `phase_context` fields of a cell's signature (means of mean ± sd fields),
    e.g. where a double-descent peak sits and how far it rises above the seed spread."""
    summary = sig.summary if sig is not None else {}
    out = {}
    for name in ph.phase_context:
        if name != field:
            val = summary.get(name)
            out[name] = val.get("mean") if isinstance(val, dict) else val
    return out


def _categories(ph: Phenomenon, setting_name: str, field: str, per_cell: list[list[Any]]) -> tuple[str, ...]:
    declared_field = ph.fields(setting_name).get(field)
    declared = declared_field.categories if declared_field is not None else ()
    seen = sorted({v for vals in per_cell for v in vals if isinstance(v, str)} - set(declared))
    return (*declared, *seen)


# ---- the figure ---------------------------------------------------------------------------------
def phase_figure(table: pd.DataFrame, axes: list[GridAxis], out: str | Path, *, title: str = "") -> Path:
    """Heat map, x factor across, y factor up; categories get fixed colours and a legend, numbers
    a colour bar; each cell is annotated (commonest phase and its share, or the mean)."""
    plt = pyplot()
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    fx, fy = axes[0].field, axes[1].field
    xs, ys = list(axes[0].values), list(axes[1].values)
    grid = np.full((len(ys), len(xs)), np.nan)
    labels = [["no value\n(censored)" for _ in xs] for _ in ys]  # overwritten where a cell has one
    cats = table.attrs.get("categories", [])
    for r in table.to_dict("records"):
        i, j = ys.index(r[fy]), xs.index(r[fx])
        if table.attrs.get("categorical"):
            if r["value"] is not None:
                grid[i, j] = cats.index(r["value"])
                labels[i][j] = str(r["value"]) + (f"\n{r['share']:.0%}" if r["n"] > 1 else "")
        elif is_present(r["mean"]):
            grid[i, j] = r["mean"]
            labels[i][j] = f"{r['mean']:.3g}"
        for name in table.attrs.get("context", [])[:2]:  # e.g. where the threshold and the peak are
            if not np.isnan(grid[i, j]) and is_present(r.get(name)):
                labels[i][j] += f"\n{name} {_tick(r[name])}"
    fig, ax = plt.subplots(figsize=(1.1 * len(xs) + 3.5, 0.7 * len(ys) + 2.2))
    if table.attrs.get("categorical"):
        cmap = ListedColormap([CATEGORY_COLOURS[k % len(CATEGORY_COLOURS)] for k in range(len(cats))])
        ax.imshow(grid, origin="lower", cmap=cmap, vmin=-0.5, vmax=len(cats) - 0.5, aspect="auto")
        handles = [Patch(color=cmap(k), label=c) for k, c in enumerate(cats)]
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    else:
        im = ax.imshow(grid, origin="lower", cmap="viridis", aspect="auto")
        fig.colorbar(im, ax=ax, label=table.attrs.get("field", ""))
    for i in range(len(ys)):
        for j in range(len(xs)):
            empty = np.isnan(grid[i, j])
            ax.text(j, i, labels[i][j], ha="center", va="center", fontsize=7, color="grey" if empty else "white")
    ax.set_xticks(range(len(xs)), [_tick(v) for v in xs])
    ax.set_yticks(range(len(ys)), [_tick(v) for v in ys])
    ax.set_xlabel(fx)
    ax.set_ylabel(fy)
    n = table.attrs.get("seeds") or (int(table["n"].max()) if len(table) else 0)
    ax.set_title(f"{title}  ({table.attrs.get('field')}, {n} seeds per cell)".strip(), fontsize=10)
    return save_figure(fig, out)


def is_present(v: Any) -> bool:
    """Not a missing value: None, or NaN once through a DataFrame."""
    return v is not None and not (isinstance(v, float) and math.isnan(v))


def _tick(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)

