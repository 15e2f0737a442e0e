/**
 * Negative cosine similarity (lightly's `NegativeCosineSimilarity`; the loss of SimSiam, Chen & He
 * 2021, "Exploring Simple Siamese Representation Learning", eq. 1, and of BYOL, Grill et al. 2020,
 * eq. 2 up to the constant 2 − 2·cos).
 *
 * `forward(x0 [N, D], x1 [N, D])` → scalar −mean_i cos(x0_i, x1_i), as
 * `-torch.nn.functional.cosine_similarity(x0, x1, dim, eps).mean()`. The value lies in [−1, 1].
 * Stop-gradients are the caller's business (`x1.detach()`).
 */
import * as nn from '../nn/index.js';
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';

export interface NegativeCosineSimilarityOptions {
  /** Dimension of the vectors. Default 1. */
  dim?: number;
  /** Guards the division by the norms (PyTorch's default 1e-8). */
  eps?: number;
}

export class NegativeCosineSimilarity extends nn.Module {
  readonly dim: number;
  readonly eps: number;

  constructor(opts: NegativeCosineSimilarityOptions = {}) {
    super();
    this.dim = opts.dim ?? 1;
    this.eps = opts.eps ?? 1e-8;
    if (!Number.isInteger(this.dim)) throw new RangeError(`NegativeCosineSimilarity: dim must be an integer, got ${this.dim}`);
    if (!(this.eps > 0)) throw new RangeError(`NegativeCosineSimilarity: eps must be positive, got ${this.eps}`);
  }

  forward(x0: Tensor, x1: Tensor): Tensor {
    if (x0.shape.join() !== x1.shape.join()) throw new RangeError(`NegativeCosineSimilarity: x0 and x1 must have the same shape, got [${x0.shape}] and [${x1.shape}]`);
    return torch.scope(() => torch.functional.cosineSimilarity(x0, x1, { dim: this.dim, eps: this.eps }).mean().neg());
  }
}
