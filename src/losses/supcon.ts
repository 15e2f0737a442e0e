/**
 * Supervised contrastive loss (Khosla et al. 2020, "Supervised Contrastive Learning", eq. 2,
 * L^sup_out; lightly's `SupConLoss`): NT-Xent where every other view of the same class is a
 * positive.
 *
 * `forward(out0 [B, D], out1 [B, D], labels? [B] int64)` → scalar. Rows are L2-normalised; over
 * the 2B rows z of both views, with A(i) all rows but i and P(i) = {p ∈ A(i) : y_p = y_i},
 *
 *   L = 1/2B Σ_i −1/|P(i)| Σ_{p ∈ P(i)} log( exp(z_i·z_p/τ) / Σ_{a ∈ A(i)} exp(z_i·z_a/τ) ).
 *
 * Without labels each image is its own class, P(i) is the other view only, and the loss is
 * NT-Xent (`NTXentLoss`) exactly. τ = 0.1 (the paper's). The reference code's extra factor
 * τ / 0.07 is left out (it is 1 at the paper's τ = 0.07 and only rescales the loss).
 */
import * as nn from '../nn/index.js';
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { checkViewPair, viewPairLogits } from './ntxent.js';

const F = torch.functional;

export interface SupConLossOptions {
  /** τ. Default 0.1. */
  temperature?: number;
}

export class SupConLoss extends nn.Module {
  readonly temperature: number;

  constructor(opts: SupConLossOptions = {}) {
    super();
    const t = opts.temperature ?? 0.1;
    if (!(t > 0) || !Number.isFinite(t)) throw new RangeError(`SupConLoss: temperature must be a positive number, got ${t}`);
    this.temperature = t;
  }

  forward(out0: Tensor, out1: Tensor, labels: Tensor | null = null): Tensor {
    const [b] = checkViewPair('SupConLoss.forward', out0, out1, 2);
    if (labels !== null && (labels.shape.length !== 1 || labels.shape[0] !== b)) {
      throw new RangeError(`SupConLoss.forward: labels must be [${b}] (one class per row of out0), got [${labels.shape}]`);
    }
    return torch.scope(() => {
      const { logits } = viewPairLogits(F.normalize(out0), F.normalize(out1), this.temperature);
      const n = 2 * b!;
      const self = torch.eye(n, n, { dtype: 'bool' });
      const logProb = F.logSoftmax(logits.maskedFill(self, -Infinity), 1).maskedFill(self, 0);
      const y = labels === null ? torch.arange(b!) : labels.long();
      const yy = torch.cat([y, y]);
      const positive = yy.unsqueeze(1).eq(yy.unsqueeze(0)).logicalAnd(self.logicalNot()).float(); // [2B, 2B]
      return logProb.mul(positive).sum(1).div(positive.sum(1)).mean().neg();
    });
  }
}
