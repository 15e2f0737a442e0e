/**
 * Triplet margin loss with PyTorch's semantics (`torch.nn.TripletMarginLoss`; Schroff et al.
 * 2015, "FaceNet", eq. 1; the distance swap of Balntas et al. 2016, "Learning local feature
 * descriptors with triplets and shallow convolutional neural networks").
 *
 * `forward(anchor [N, D], positive [N, D], negative [N, D])` → scalar (reduction 'mean' or 'sum')
 * or [N] ('none'):
 *
 *   ℓ_i = max(d(a_i, p_i) − d(a_i, n_i) + margin, 0),  d(x, y) = ‖x − y + ε‖_p
 *
 * (`pairwise_distance` with ε = 1e-6). With `swap`, d(a_i, n_i) is replaced by
 * min(d(a_i, n_i), d(p_i, n_i)). Defaults as PyTorch: margin 1, p 2, ε 1e-6, no swap, mean.
 */
import * as nn from '../nn/index.js';
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';

export interface TripletMarginLossOptions {
  margin?: number;
  p?: number;
  eps?: number;
  swap?: boolean;
  reduction?: 'mean' | 'sum' | 'none';
}

export class TripletMarginLoss extends nn.Module {
  readonly margin: number;
  readonly p: number;
  readonly eps: number;
  readonly swap: boolean;
  readonly reduction: 'mean' | 'sum' | 'none';

  constructor(opts: TripletMarginLossOptions = {}) {
    super();
    this.margin = opts.margin ?? 1;
    this.p = opts.p ?? 2;
    this.eps = opts.eps ?? 1e-6;
    this.swap = opts.swap ?? false;
    this.reduction = opts.reduction ?? 'mean';
    if (!(this.margin > 0) || !Number.isFinite(this.margin)) throw new RangeError(`TripletMarginLoss: margin must be a positive number, got ${this.margin}`);
    if (!(this.p > 0)) throw new RangeError(`TripletMarginLoss: p must be positive, got ${this.p}`);
    if (!(this.eps >= 0)) throw new RangeError(`TripletMarginLoss: eps must be non-negative, got ${this.eps}`);
    if (!['mean', 'sum', 'none'].includes(this.reduction)) throw new RangeError(`TripletMarginLoss: reduction must be 'mean', 'sum' or 'none', got '${this.reduction}'`);
  }

  forward(anchor: Tensor, positive: Tensor, negative: Tensor): Tensor {
    const s = anchor.shape;
    if (s.length !== 2 || positive.shape.join() !== s.join() || negative.shape.join() !== s.join()) {
      throw new RangeError(`TripletMarginLoss: anchor, positive and negative must all be [N, D] alike, got [${s}], [${positive.shape}], [${negative.shape}]`);
    }
    return torch.scope(() => {
      const d = (x: Tensor, y: Tensor): Tensor => x.sub(y).add(this.eps).norm(this.p, 1);
      const dap = d(anchor, positive);
      let dan = d(anchor, negative);
      if (this.swap) dan = dan.minimum(d(positive, negative));
      const l = dap.sub(dan).add(this.margin).clampMin(0);
      return this.reduction === 'mean' ? l.mean() : this.reduction === 'sum' ? l.sum() : l;
    });
  }
}
