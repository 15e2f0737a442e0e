/**
 * VICReg loss (Bardes, Ponce & LeCun 2022, "VICReg: Variance-Invariance-Covariance
 * Regularization for Self-Supervised Learning", eq. 1–6; lightly's `VICRegLoss`).
 *
 * `forward(z_a [N, D], z_b [N, D])` → scalar
 *
 *   λ·s(z_a, z_b) + μ·[v(z_a) + v(z_b)]/2 + ν·[c(z_a) + c(z_b)]
 *
 * - invariance s: the mean squared error between the two views;
 * - variance v(z) = mean_j max(0, 1 − sqrt(Var(z_·j) + ε)) (unbiased variance over the batch);
 * - covariance c(z) = Σ_{i≠j} Cov(z)_ij² / D, with Cov(z) = (z − z̄)ᵀ(z − z̄) / (N − 1).
 *
 * λ = 25, μ = 25, ν = 1, ε = 1e-4 (the paper's and lightly's defaults).
 */
import * as nn from '../nn/index.js';
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { checkPair } from './barlow_twins.js';

export interface VICRegLossOptions {
  /** λ: invariance weight. Default 25. */
  lambdaParam?: number;
  /** μ: variance weight. Default 25. */
  muParam?: number;
  /** ν: covariance weight. Default 1. */
  nuParam?: number;
  /** ε inside the variance's square root. Default 1e-4. */
  eps?: number;
}

export class VICRegLoss extends nn.Module {
  readonly lambdaParam: number;
  readonly muParam: number;
  readonly nuParam: number;
  readonly eps: number;

  constructor(opts: VICRegLossOptions = {}) {
    super();
    this.lambdaParam = opts.lambdaParam ?? 25;
    this.muParam = opts.muParam ?? 25;
    this.nuParam = opts.nuParam ?? 1;
    this.eps = opts.eps ?? 1e-4;
    for (const [k, v] of [['lambdaParam', this.lambdaParam], ['muParam', this.muParam], ['nuParam', this.nuParam]] as const) {
      if (!(v >= 0) || !Number.isFinite(v)) throw new RangeError(`VICRegLoss: ${k} must be a non-negative number, got ${v}`);
    }
    if (!(this.eps > 0)) throw new RangeError(`VICRegLoss: eps must be positive, got ${this.eps}`);
  }

  forward(zA: Tensor, zB: Tensor): Tensor {
    checkPair('VICRegLoss', zA, zB, 2);
    return torch.scope(() => {
      const inv = torch.functional.mseLoss(zA, zB);
      const variance = (z: Tensor): Tensor => z.var(0).add(this.eps).sqrt().neg().add(1).relu().mean();
      const covariance = (z: Tensor): Tensor => {
        const [n, d] = z.shape as [number, number];
        const c = z.sub(z.mean(0, { keepdim: true }));
        const cov = c.t().matmul(c).div(n - 1);
        return cov.square().sum().sub(cov.diagonal().square().sum()).div(d);
      };
      const v = variance(zA).add(variance(zB)).mul(0.5);
      const c = covariance(zA).add(covariance(zB));
      return inv.mul(this.lambdaParam).add(v.mul(this.muParam)).add(c.mul(this.nuParam));
    });
  }
}
