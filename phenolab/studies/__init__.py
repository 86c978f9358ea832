"""Studies that span phenomena: phase diagrams of any phenomenon (`phase`) and reproductions that
are not a phenomenon of their own, such as the position paper's Figure 4 (`figure4`).

`STUDIES` holds the reproducible ones (`phenolab reproduce NAME` finds them beside the phenomena).
"""

from __future__ import annotations

from phenolab.phenomena import Reproducible

STUDIES: dict[str, Reproducible] = {}


def register_study(study: Reproducible) -> Reproducible:
    STUDIES[study.name] = study
    return study


def _register_builtins() -> None:
    from phenolab.studies.figure4 import FIGURE4

    register_study(FIGURE4)


_register_builtins()
