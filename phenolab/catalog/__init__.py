"""The catalog: the single source of truth for settings, runs, curves, checkpoints and notes."""

from phenolab.catalog._reads import runs_frame
from phenolab.catalog._records import RunRecord, run_id_for
from phenolab.catalog.provenance import collect_provenance, utc_now
from phenolab.catalog.schema import SCHEMA_VERSION, CatalogError
from phenolab.catalog.store import Catalog

__all__ = [
    "SCHEMA_VERSION",
    "Catalog",
    "CatalogError",
    "RunRecord",
    "collect_provenance",
    "run_id_for",
    "runs_frame",
    "utc_now",
]
