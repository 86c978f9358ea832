"""The batched training engine: K replicas of a setting, one per seed, as one program."""

from phenolab.engine._malloc import keep_large_allocations_on_heap
from phenolab.engine.evaluate import evaluate, measure_key
from phenolab.engine.losses import per_replica_loss
from phenolab.engine.schedule import eval_steps, total_steps, warmup_factor
from phenolab.engine.train import BatchResult, resolve_device, train

keep_large_allocations_on_heap()  # once per process: see `_malloc` (2 MB+ temporaries every pass)

__all__ = [
    "BatchResult", "eval_steps", "evaluate", "measure_key", "per_replica_loss", "resolve_device",
    "total_steps", "train", "warmup_factor",
]
