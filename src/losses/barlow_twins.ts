/**
 * Barlow Twins loss (Zbontar et al. 2021, "Barlow Twins: Self-Supervised Learning via Redundancy
 * Reduction", eq. 1; lightly's `BarlowTwinsLoss`).
 *
 * `forward(z_a [N, D], z_b [N, D])` → scalar. Each view's outputs are standardised along the
 * batch (mean 0, unbiased std 1 per feature), C = z_aᵀ z_b / N is their [D, D] cross-correlation,
 * and
 *
 *   L = Σ_i (1 − C_ii)² + λ Σ_i Σ_{j≠i} C_ij²
 *
 * (invariance on the diagonal, redundancy reduction off it). λ = 5e-3 (the paper's, lightly's).
 */
import * as nn from '../nn/index.js';
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';

export interface BarlowTwinsLossOptions {
  /** λ, the weight of the off-diagonal (redundancy) term. Default 5e-3. */
  lambdaParam?: number;
}

export class BarlowTwinsLoss extends nn.Module {
  readonly lambdaParam: number;

  constructor(opts: BarlowTwinsLossOptions = {}) {
    super();
    this.lambdaParam = opts.lambdaParam ?? 5e-3;
    if (!(this.lambdaParam >= 0) || !Number.isFinite(this.lambdaParam)) throw new RangeError(`BarlowTwinsLoss: lambdaParam must be a non-negative number, got ${this.lambdaParam}`);
  }

  forward(zA: Tensor, zB: Tensor): Tensor {
    const [n] = checkPair('BarlowTwinsLoss', zA, zB, 2);
    return torch.scope(() => {
      const std = (z: Tensor): Tensor => z.sub(z.mean(0, { keepdim: true })).div(z.std(0, { keepdim: true }));
      const c = std(zA).t().matmul(std(zB)).div(n!);
      const diag = c.diagonal();
      const onDiag = diag.sub(1).square().sum();
      const offDiag = c.square().sum().sub(diag.square().sum());
      return onDiag.add(offDiag.mul(this.lambdaParam));
    });
  }
}

/** Checks two outputs are both [N, D] with N ≥ minBatch; returns the shape. */
export function checkPair(where: string, a: Tensor, b: Tensor, minBatch: number): number[] {
  const s0 = a.shape;
  const s1 = b.shape;
  if (s0.length !== 2 || s0.join() !== s1.join()) throw new RangeError(`${where}: both inputs must be [N, D] with the same shape, got [${s0}] and [${s1}]`);
  if (s0[0]! < minBatch) throw new RangeError(`${where}: needs a batch of at least ${minBatch} for its batch statistics, got ${s0[0]}`);
  return s0;
}
