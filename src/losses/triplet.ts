/**
 * Triplet loss over a labelled batch, with the triplets mined in the batch (Schroff et al. 2015,
 * "FaceNet: A Unified Embedding for Face Recognition and Clustering", §3.2 semi-hard negatives;
 * Hermans, Beyer & Leibe 2017, "In Defense of the Triplet Loss for Person Re-Identification",
 * batch-hard and batch-all). Batches come from a P×K sampler (`PKBatchSampler`): P classes × K
 * images each, so every anchor has K − 1 positives.
 *
 * `forward(embeddings [B, D], labels [B] int64)` → scalar. d is the Euclidean distance between
 * rows (L2-normalised first when `normalize`, FaceNet's choice); a triplet (a, p, n) has
 * y_a = y_p, a ≠ p, y_n ≠ y_a and loss max(d(a, p) − d(a, n) + margin, 0).
 * - 'batch-all': every valid triplet; the mean over the active ones (loss > 0; Hermans et al.'s
 *   BA≠0, which they found better than the mean over all).
 * - 'batch-hard': per anchor, the farthest positive and the nearest negative; mean over anchors
 *   that have both.
 * - 'semi-hard': per positive pair (a, p), the nearest negative farther than p
 *   (d(a, n) > d(a, p)), or, when there is none, the farthest negative (as TensorFlow Addons'
 *   `triplet_semihard_loss`); mean over positive pairs that have a negative.
 *
 * `activeFraction` holds, after each forward, the fraction of the mined triplets (all valid ones,
 * the anchors, or the positive pairs) with a loss > 0: as it falls, the mining runs out of
 * informative triplets.
 */
import * as nn from '../nn/index.js';
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';

export type TripletMining = 'batch-all' | 'batch-hard' | 'semi-hard';
export const TRIPLET_MININGS: readonly TripletMining[] = ['batch-all', 'batch-hard', 'semi-hard'];

export interface TripletLossOptions {
  /** Default 0.2 (FaceNet's α). */
  margin?: number;
  /** Default 'batch-hard' (Hermans et al.'s recommendation). */
  mining?: TripletMining;
  /** L2-normalise the embeddings first. Default true. */
  normalize?: boolean;
}

export class TripletLoss extends nn.Module {
  readonly margin: number;
  readonly mining: TripletMining;
  readonly normalize: boolean;
  /** Fraction of the mined triplets with a positive loss in the last forward (NaN before any). */
  activeFraction = NaN;

  constructor(opts: TripletLossOptions = {}) {
    super();
    this.margin = opts.margin ?? 0.2;
    this.mining = opts.mining ?? 'batch-hard';
    this.normalize = opts.normalize ?? true;
    if (!(this.margin >= 0) || !Number.isFinite(this.margin)) throw new RangeError(`TripletLoss: margin must be a non-negative number, got ${this.margin}`);
    if (!TRIPLET_MININGS.includes(this.mining)) throw new RangeError(`TripletLoss: mining must be one of ${TRIPLET_MININGS.join(', ')}, got '${String(this.mining)}'`);
  }

  forward(embeddings: Tensor, labels: Tensor): Tensor {
    const s = embeddings.shape;
    if (s.length !== 2 || labels.shape.length !== 1 || labels.shape[0] !== s[0]) {
      throw new RangeError(`TripletLoss: expected embeddings [B, D] and labels [B], got [${s}] and [${labels.shape}]`);
    }
    const b = s[0]!;
    let active = 0;
    let count = 0;
    const loss = torch.scope(() => {
      const x = this.normalize ? torch.functional.normalize(embeddings) : embeddings;
      const d = pairwiseDistances(x);
      const y = labels.long();
      const same = y.unsqueeze(1).eq(y.unsqueeze(0));
      const pos = same.logicalAnd(torch.eye(b, b, { dtype: 'bool', device: same.device }).logicalNot()); // [B, B]: (a, p)
      const neg = same.logicalNot(); // [B, B]: (a, n)
      let l: Tensor;
      let valid: Tensor;
      if (this.mining === 'batch-all') {
        l = d.unsqueeze(2).sub(d.unsqueeze(1)).add(this.margin).relu(); // [B(a), B(p), B(n)]
        valid = pos.unsqueeze(2).logicalAnd(neg.unsqueeze(1));
      } else if (this.mining === 'batch-hard') {
        const hardPos = d.maskedFill(pos.logicalNot(), -Infinity).amax(1);
        const hardNeg = d.maskedFill(neg.logicalNot(), Infinity).amin(1);
        valid = pos.sum(1).gt(0).logicalAnd(neg.sum(1).gt(0));
        l = hardPos.sub(hardNeg).add(this.margin).relu().maskedFill(valid.logicalNot(), 0);
      } else {
        const dap = d.unsqueeze(2); // [B(a), B(p), 1]
        const dan = d.unsqueeze(1); // [B(a), 1, B(n)]
        const outside = neg.unsqueeze(1).logicalAnd(dan.gt(dap)); // [B, B, B]
        const nearestOutside = torch.where(outside, dan, Infinity).amin(2); // [B(a), B(p)]
        const farthest = d.maskedFill(neg.logicalNot(), -Infinity).amax(1, { keepdim: true }); // [B(a), 1]
        const chosen = torch.where(outside.sum(2).gt(0), nearestOutside, farthest);
        valid = pos.logicalAnd(neg.sum(1, { keepdim: true }).gt(0));
        l = d.sub(chosen).add(this.margin).relu().maskedFill(valid.logicalNot(), 0);
      }
      l = l.mul(valid.float());
      const act = l.gt(0).logicalAnd(valid);
      count = valid.sum().item();
      active = act.sum().item();
      const denom = this.mining === 'batch-all' ? active : count;
      return denom > 0 ? l.sum().div(denom) : l.sum().mul(0);
    });
    this.activeFraction = count > 0 ? active / count : 0;
    return loss;
  }
}

/** Euclidean distances between the rows of x [B, D] → [B, B], with a gradient that stays finite at 0. */
export function pairwiseDistances(x: Tensor): Tensor {
  return torch.scope(() => {
    const sq = x.square().sum(1);
    const d2 = sq.unsqueeze(1).add(sq.unsqueeze(0)).sub(x.matmul(x.t()).mul(2)).clampMin(0);
    // sqrt'(0) is infinite: zero distances (the diagonal, duplicates) get distance 0 and no gradient
    const zero = d2.le(1e-16);
    return d2.maskedFill(zero, 1).sqrt().maskedFill(zero, 0);
  });
}
