"""Phenomena: canonical settings named after their papers, signatures and figures from the catalog."""

from phenolab.phenomena import double_descent, figure4, grokking, lottery  # noqa: F401  (register settings)
from phenolab.phenomena._base import PHENOMENA, Phenomenon, Study, register_phenomenon, stat

__all__ = ["PHENOMENA", "Phenomenon", "Study", "register_phenomenon", "stat"]
