"""Executing settings × seeds: in-process by default, Ray for a cluster; batches are the unit of work."""

from phenolab.execute.grid import GridAxis, SweepSpec, expand_grid, load_sweep_file, parse_grid_arg, sweep_points
from phenolab.execute.local import DEFAULT_MAX_REPLICAS, Batch, plan_batches, run_local, to_records
from phenolab.execute.sweep import SweepOutcome, plan_sweep, run_sweep

__all__ = [
    "DEFAULT_MAX_REPLICAS", "Batch", "GridAxis", "SweepOutcome", "SweepSpec", "expand_grid", "load_sweep_file",
    "parse_grid_arg", "plan_batches", "plan_sweep", "run_local", "run_sweep", "sweep_points", "to_records",
]
