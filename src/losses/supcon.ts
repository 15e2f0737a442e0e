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
 *
 * `gatherDistributed` (as `NTXentLoss`'s): with a process group of W > 1 ranks, this rank's 2B rows
 * are contrasted with every rank's 2WB rows (`gatherWithGrad`), the labels gathered alongside, so
 * positives and negatives come from the global batch; the mean over this rank's rows, averaged by
 * DDP over the ranks, is the single-process loss on the concatenated batch. Unlabelled rows (their
 * own class, a negative label) are made unique across ranks before the gather.
 */
import * as nn from '../nn/index.js';
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { checkViewPair, viewPairLogits } from './ntxent.js';
import { gatherWithGrad } from '../distributed/gather.js';
import { getRank, getWorldSize, isInitialized } from '../distributed/process_group.js';

const F = torch.functional;

export interface SupConLossOptions {
  /** τ. Default 0.1. */
  temperature?: number;
  /** Positives and negatives from every rank of the process group. Default false. */
  gatherDistributed?: boolean;
}

export class SupConLoss extends nn.Module {
  readonly temperature: number;
  readonly gatherDistributed: boolean;

  constructor(opts: SupConLossOptions = {}) {
    super();
    const t = opts.temperature ?? 0.1;
    if (!(t > 0) || !Number.isFinite(t)) throw new RangeError(`SupConLoss: temperature must be a positive number, got ${t}`);
    this.temperature = t;
    this.gatherDistributed = opts.gatherDistributed ?? false;
  }

  forward(out0: Tensor, out1: Tensor, labels: Tensor | null = null): Tensor {
    const [b] = checkViewPair('SupConLoss.forward', out0, out1, 2);
    if (labels !== null && (labels.shape.length !== 1 || labels.shape[0] !== b)) {
      throw new RangeError(`SupConLoss.forward: labels must be [${b}] (one class per row of out0), got [${labels.shape}]`);
    }
    return torch.scope(() => {
      if (this.gatherDistributed && isInitialized() && getWorldSize() > 1) {
        return gatheredSupCon(F.normalize(out0), F.normalize(out1), labels === null ? torch.arange(1, b! + 1, 1, { device: out0.device }).neg() : labels.long(), this.temperature);
      }
      const { logits } = viewPairLogits(F.normalize(out0), F.normalize(out1), this.temperature);
      const n = 2 * b!;
      const self = torch.eye(n, n, { dtype: 'bool', device: logits.device });
      const logProb = F.logSoftmax(logits.maskedFill(self, -Infinity), 1).maskedFill(self, 0);
      const y = labels === null ? torch.arange(0, b!, 1, { device: logits.device }) : labels.long().to(logits.device);
      const yy = torch.cat([y, y]);
      const positive = yy.unsqueeze(1).eq(yy.unsqueeze(0)).logicalAnd(self.logicalNot()).float(); // [2B, 2B]
      return logProb.mul(positive).sum(1).div(positive.sum(1)).mean().neg();
    });
  }
}

/**
 * SupCon of this rank's rows z0, z1 [B, D] (labels y [B], negative = a class of its own) against
 * every rank's: logits [2B, 2WB] of [z0; z1] against the gathered [Z0; Z1] (rank r's rows at r·B),
 * each row's own column masked, positives the rows of its class in the global batch.
 */
function gatheredSupCon(z0: Tensor, z1: Tensor, y: Tensor, temperature: number): Tensor {
  const b = z0.size(0);
  const w = getWorldSize();
  const r = getRank();
  const own = torch.where(y.lt(0), y.sub(r * b), y); // unlabelled rows: classes unique across ranks
  const all = gatherWithGrad(own.to('float64')).to('int64'); // [WB]
  const keys = torch.cat([gatherWithGrad(z0), gatherWithGrad(z1)], 0); // [2WB, D]
  const logits = torch.cat([z0, z1], 0).matmul(keys.t()).div(temperature); // [2B, 2WB]
  const on = { device: z0.device };
  const idx = torch.arange(0, b, 1, on).add(r * b);
  const self = torch.arange(0, 2 * w * b, 1, on).unsqueeze(0).eq(torch.cat([idx, idx.add(w * b)]).unsqueeze(1)); // [2B, 2WB]
  const logProb = F.logSoftmax(logits.maskedFill(self, -Infinity), 1).maskedFill(self, 0);
  const rows = torch.cat([own, own]);
  const cols = torch.cat([all, all]);
  const positive = rows.unsqueeze(1).eq(cols.unsqueeze(0)).logicalAnd(self.logicalNot()).float();
  return logProb.mul(positive).sum(1).div(positive.sum(1)).mean().neg();
}
