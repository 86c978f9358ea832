"""How much of a batch of K replicas one pass computes: the one rule that keeps activations cache-sized.

A step or an evaluation of K tiny replicas is fastest when one layer's activations of a pass
fit in cache, not when all K go at once (gromov2023's [2823, 500] activations are 5.6 MB a
replica). So steps go through `replicas_per_pass` replicas at a time (their rows are the
minibatch), and an evaluation through `eval_passes` (replicas × samples), each within a byte
budget (the constants below; their measurements are in `bench/README.md`). Every choice depends
on shapes (and CPU vs GPU) only, never on K, so replica k computes what it computes alone. A GPU
wants all replicas in one kernel: no passes there.
"""

from __future__ import annotations

from phenolab.models import BatchedModel, Params

# One layer's activations per training pass. 8 MB: MNIST-1D minibatches of 100 fit 10–100
# replicas; gromov2023's full batch goes one replica at a time.
CHUNK_BYTES = 8 << 20
# One layer's activations per evaluation pass: at width 300, 2,048 samples of one replica per pass
# beat passes of 10 replicas × 256 samples and all samples at once (bench/README.md).
EVAL_BYTES = 2 << 20
MIN_EVAL_ROWS = 256  # fewer samples per pass only add per-op overhead


def model_tokens(model: BatchedModel) -> int:
    """Activations per sample in units of a layer's width: the sequence length for token models."""
    return (model.seq_len or 1) if model.input_kind == "tokens" else 1


def _on_gpu(params: Params) -> bool:
    return next(iter(params.values())).device.type != "cpu"


def row_bytes(params: Params, tokens: int = 1) -> int:
    """Bytes of one sample's widest layer activation: tokens × the widest parameter's last
    dimension × the element size (tokens: sequence length for token models, else 1)."""
    first = next(iter(params.values()))
    widest = max(p.shape[-1] for p in params.values())
    return tokens * widest * first.element_size()


def replicas_per_pass(params: Params, rows: int, tokens: int = 1, budget: int | None = None) -> int:
    """Replicas per training pass of `rows` samples each: as many as keep a layer's activations
    within `budget` (default `CHUNK_BYTES`), at least one; all of them on a GPU."""
    if _on_gpu(params):
        return 1 << 30
    return replicas_within(rows, row_bytes(params, tokens), budget)


def replicas_within(rows: int, bytes_per_row: int, budget: int | None = None) -> int:
    """Replicas of `rows` samples whose widest activation fits `budget` (default `CHUNK_BYTES`);
    at least one. The CPU rule of `replicas_per_pass`, for callers that know the row size."""
    budget = CHUNK_BYTES if budget is None else budget
    return max(1, budget // (rows * bytes_per_row))


def eval_passes(params: Params, n: int, batch_size: int, tokens: int = 1) -> tuple[int, int]:
    """(replicas, samples) per evaluation pass over `n` samples: samples first, as many as fit one
    replica's activations within `EVAL_BYTES` (at least `MIN_EVAL_ROWS`, at most `batch_size`),
    then as many replicas as fit with them. On a GPU: all replicas, `batch_size` samples."""
    if _on_gpu(params):
        return 1 << 30, min(n, batch_size)
    rows = min(n, batch_size, max(MIN_EVAL_ROWS, EVAL_BYTES // row_bytes(params, tokens)))
    return replicas_per_pass(params, rows, tokens, EVAL_BYTES), rows
