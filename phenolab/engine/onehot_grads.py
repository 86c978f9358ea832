"""The weight gradient of a one-hot input layer: the rows of `grad [K, B, H]` summed into the rows
of `w [K, in, H]` that each sample looked up (`models.mlp.onehot_matmul`'s backward).

Two programs, the same sums in the same order (every sample's row added in sample order to the
row it looked up): `index_add_` for any batch, and, on the CPU, for a batch that comes back
unchanged every step (full-batch training: the same tensor each time), one sparse CSR product per
replica with the batch's 0/1 lookup matrix, built once. The second exists because `index_add_`
runs as a scatter over a [B, H] int64 index: on gromov2023 (B 2823, H 500), 11 MB read for
5.6 MB of gradient (timings: `bench/README.md`).
"""

from __future__ import annotations

import warnings
import weakref

import torch


def onehot_rows_backward(idx: torch.Tensor, grad: torch.Tensor, shape: torch.Size, out: torch.Tensor | None = None,
                         lookups: list[torch.Tensor] | None = None) -> torch.Tensor:
    """Gradient w.r.t. w [K, in, H] from grad [K, B, H] of the lookups idx [K, B, J], into `out`
    where given. `lookups`: the replicas' CSR lookup matrices (`FixedBatchLookups`), or None for
    one `index_add_` per one-hot slot (3× faster than `embedding_dense_backward`, which sorts)."""
    k, n_in, hidden = shape
    flat = out if out is not None else torch.empty(shape, dtype=grad.dtype, device=grad.device)
    if lookups is not None:
        for r in range(k):
            torch.mm(lookups[r], grad[r], out=flat[r])
        return flat
    offsets = idx + (torch.arange(k, device=idx.device) * n_in).view(-1, 1, 1)
    src = grad.reshape(-1, hidden)
    rows = flat.zero_().view(k * n_in, hidden)
    for j in range(idx.shape[2]):
        rows.index_add_(0, offsets[..., j].reshape(-1), src)
    return flat


class FixedBatchLookups:
    """The CSR lookup matrices of a batch that is passed again unchanged (same tensor object, same
    version counter), built at its second sighting, so a minibatch (a new tensor every step) never
    pays for them. None where they don't apply: off the CPU (one `index_add_` serves all replicas
    in one kernel there), dense inputs, or a row looked up from two slots (the two programs would
    add in different orders)."""

    def __init__(self) -> None:
        self._seen: tuple[weakref.ref, int, int, torch.dtype] | None = None
        self._lookups: list[torch.Tensor] | None = None

    def __call__(self, idx: torch.Tensor, n_in: int, dtype: torch.dtype) -> list[torch.Tensor] | None:
        if idx.is_floating_point() or idx.device.type != "cpu":
            return None
        seen = self._seen
        if seen is not None and seen[0]() is idx and seen[1:] == (idx._version, n_in, dtype):
            if self._lookups is None:
                self._lookups = _lookup_matrices(idx, n_in, dtype)
            return self._lookups or None
        self._seen, self._lookups = (weakref.ref(idx), idx._version, n_in, dtype), None
        return None


def _lookup_matrices(idx: torch.Tensor, n_in: int, dtype: torch.dtype) -> list[torch.Tensor]:
    """Per replica, the [in, B] CSR matrix with a 1 at (row, sample) for each lookup; [] when
    some row is looked up from two slots."""
    k, b, j = idx.shape
    slots = [torch.bincount(idx[..., s].reshape(-1), minlength=n_in) > 0 for s in range(j)]
    if j > 1 and bool((torch.stack(slots).sum(0) > 1).any()):
        return []
    matrices = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR tensor support is in beta state"
        for r in range(k):
            flat = idx[r].t().reshape(-1)  # slot-major: each row's samples end up in sample order
            order = torch.argsort(flat, stable=True)
            crow = torch.zeros(n_in + 1, dtype=torch.int64)
            torch.cumsum(torch.bincount(flat, minlength=n_in), 0, out=crow[1:])
            matrices.append(torch.sparse_csr_tensor(crow, order % b, torch.ones(b * j, dtype=dtype), (n_in, b)))
    return matrices
