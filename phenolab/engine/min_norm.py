"""Min-norm least squares from one Householder QR: the exact fits and their smoother rows.

The min-norm solution pinv(Φ)·y is what gradient descent from zero converges to, the fit of the
double-descent theory. `torch.linalg.pinv` and LAPACK's `gelsd` get it through an SVD; when Φ has
full rank, one QR gives the same answer (to ~1e-14 relative, 5e-13 at the square, ill-conditioned
p = n) in a fraction of the time: Φ = QR when P ≤ N, so pinv(Φ) = R⁻¹Qᵀ; Φᵀ = QR when P > N, so
pinv(Φ) = Q·R⁻ᵀ. The fits never form Q (`geqrf` + `ormqr`); the smoother of a wide design forms it
once for its eval rows, then multiplies (a GEMM beats `ormqr` there). Timings: `bench/README.md`.

A replica whose R has a diagonal entry at or below pinv's own cutoff (eps·max(N, P)·max|R_ii|) is
treated as rank-deficient and goes through `pinv`, whose truncation is then the definition.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class MinNormQR:
    """Householder QR of one or K designs Φ [..., N, P] (of Φᵀ when P > N), as `torch.geqrf` stores it."""

    a: torch.Tensor  # reflectors below the diagonal, R on and above it
    tau: torch.Tensor
    n: int
    p: int

    @property
    def wide(self) -> bool:
        return self.p > self.n

    @classmethod
    def of(cls, phi: torch.Tensor) -> MinNormQR:
        n, p = phi.shape[-2:]
        a, tau = torch.geqrf(phi.transpose(-1, -2) if p > n else phi)
        return cls(a, tau, n, p)

    @property
    def r(self) -> torch.Tensor:
        m = min(self.n, self.p)
        return self.a[..., :m, :].triu()

    def full_rank(self) -> torch.Tensor:
        """Per design: is every |R_ii| above pinv's cutoff? (bool, [K] or scalar)"""
        diag = self.a.diagonal(dim1=-2, dim2=-1).abs()
        cutoff = torch.finfo(self.a.dtype).eps * max(self.n, self.p) * diag.amax(-1)
        return diag.amin(-1) > cutoff

    def solve(self, y: torch.Tensor) -> torch.Tensor:
        """pinv(Φ)·y for y [..., N, O] -> [..., P, O] (full-rank designs)."""
        r = self.r
        if not self.wide:
            qty = torch.ormqr(self.a, self.tau, y, transpose=True)[..., :self.p, :]
            return torch.linalg.solve_triangular(r, qty, upper=True)
        z = torch.linalg.solve_triangular(r.transpose(-1, -2), y, upper=False)
        padded = torch.cat([z, z.new_zeros(*z.shape[:-2], self.p - self.n, z.shape[-1])], dim=-2)
        return torch.ormqr(self.a, self.tau, padded)


def min_norm_solve(phi: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """pinv(Φ)·y per replica: phi [K, N, P], y [K, N, O] -> [K, P, O]; by QR, by `pinv` for the
    replicas whose design is rank-deficient (see module doc)."""
    qr = MinNormQR.of(phi)
    out = qr.solve(y)
    deficient = (~qr.full_rank()).nonzero().flatten().tolist()
    for k in deficient:
        out[k] = torch.linalg.pinv(phi[k]) @ y[k]
    return out


def min_norm_smoother_norms2(phi: torch.Tensor, phi_evals: list[torch.Tensor]) -> list[torch.Tensor]:
    """‖ŝ(x)‖² = ‖pinv(Φ)ᵀφ(x)‖² for each row φ(x) of each eval set [M, P], for one design Φ
    [N, P]: ‖R⁻ᵀφ(x)‖² when P ≤ N, ‖R⁻¹Qᵀφ(x)‖² when P > N, with R (and Q) formed once for all the
    eval sets; through `pinv` when Φ is rank-deficient, as `min_norm_solve`."""
    qr = MinNormQR.of(phi)
    evs = [e.T.to(phi.dtype) for e in phi_evals]  # [P, M] each
    if not bool(qr.full_rank()):
        pinv = torch.linalg.pinv(phi)  # [P, N]
        return [(pinv.T @ ev).square().sum(0) for ev in evs]
    r = qr.r
    if not qr.wide:
        return [torch.linalg.solve_triangular(r.T, ev, upper=False).square().sum(0) for ev in evs]
    q = torch.linalg.householder_product(qr.a, qr.tau)  # [P, N]: then a GEMM, 1.4× faster than ormqr here
    return [torch.linalg.solve_triangular(r, q.T @ ev, upper=True).square().sum(0) for ev in evs]
