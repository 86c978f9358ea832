"""The grokking figure: train and test accuracy and loss over steps (mean ± sd over seeds), with
the measures that explain it beside them where the setting records them."""

from __future__ import annotations

from pathlib import Path

from phenolab.catalog import Catalog
from phenolab.figures import curves_figure
from phenolab.phenomena import Study, study_curves

MEASURE_PANELS = ("weight_norm", "fourier_sparsity", "softmax_collapse")  # drawn when recorded


def grokking_figure(catalog: Catalog, study: Study, out: Path) -> Path:
    curves = study_curves(catalog, study)
    title = f"grokking · {study.setting_name}" + (" (--quick)" if study.quick else "")
    panels = (("train_acc", "test_acc"), ("train_loss", "test_loss"), *((m,) for m in MEASURE_PANELS))
    return curves_figure(curves, out, title=title, panels=panels)
