"""Executing settings × seeds: in-process by default; batches are the unit of work."""

from phenolab.execute.local import DEFAULT_MAX_REPLICAS, Batch, plan_batches, run_local, to_records

__all__ = ["DEFAULT_MAX_REPLICAS", "Batch", "plan_batches", "run_local", "to_records"]
