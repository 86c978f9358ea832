"""Phenomena: canonical settings named after their papers, signatures and figures from the catalog."""

from phenolab.phenomena import grokking  # noqa: F401  (registers settings and the phenomenon)
from phenolab.phenomena._base import PHENOMENA, Phenomenon, Study, register_phenomenon, stat

__all__ = ["PHENOMENA", "Phenomenon", "Study", "register_phenomenon", "stat"]
