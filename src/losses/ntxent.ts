/**
 * NT-Xent / InfoNCE loss (Chen et al. 2020, "A Simple Framework for Contrastive Learning of
 * Visual Representations", eq. 1; van den Oord et al. 2018, "Representation Learning with
 * Contrastive Predictive Coding").
 *
 * `forward(out0 [B, D], out1 [B, D])` → scalar. Rows are L2-normalised, and similarities
 * divided by the temperature τ.
 * - Without a memory bank: the 2B × 2B similarity matrix of both views; each row's positive is
 *   the other view of the same image, the other 2B − 2 rows are negatives, and self-similarity
 *   is masked out. The loss is the mean cross-entropy over all 2B rows.
 * - With a memory bank (MoCo-style): logits are [out0·out1 | out0·bankᵀ] ([B, 1 + M]) with the
 *   positive at index 0; the normalised `out1` (the keys) is enqueued after the loss is computed.
 * - `gatherDistributed` (lightly's `gather_distributed`; SimCLR's cross-replica negatives): with a
 *   process group of W ranks, each rank's 2B rows are scored against the 2·W·B rows of every rank
 *   (`gatherWithGrad`, whose backward all-reduces the gradient), the positive at its global index;
 *   the mean over ranks of the per-rank losses is the single-process loss on the concatenated
 *   batch. With a memory bank, the keys of every rank are enqueued (MoCo's queue across GPUs).
 * Stable: log-softmax via cross-entropy on logits, masked entries set to −∞ (never exp of a
 * large number).
 */
import * as nn from '../nn/index.js';
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { MemoryBank } from './memory_bank.js';
import { gatherWithGrad } from '../distributed/gather.js';
import { getRank, getWorldSize, isInitialized } from '../distributed/process_group.js';

const F = torch.functional;

export interface NTXentLossOptions {
  /** τ in eq. 1. SimCLR's CIFAR-10 recipe uses 0.5; MoCo uses 0.2 (v2) or 0.07 (v1). */
  temperature?: number;
  /** Size of a FIFO bank of negatives (0 = in-batch negatives only). */
  memoryBankSize?: number;
  /** Embedding size; required with a memory bank. */
  dim?: number;
  /** Use the negatives (and enqueue the keys) of every rank of the process group. Default false. */
  gatherDistributed?: boolean;
}

/** A module, so that a memory bank (`memory_bank.bank`) is saved with the method's checkpoint. */
export class NTXentLoss extends nn.Module {
  readonly temperature: number;
  readonly gatherDistributed: boolean;
  memory_bank: MemoryBank | null;

  constructor(opts: NTXentLossOptions = {}) {
    super();
    const t = opts.temperature ?? 0.5;
    if (!(t > 0) || !Number.isFinite(t)) throw new RangeError(`NTXentLoss: temperature must be a positive number, got ${t}`);
    const m = opts.memoryBankSize ?? 0;
    if (!Number.isInteger(m) || m < 0) throw new RangeError(`NTXentLoss: memoryBankSize must be a non-negative integer, got ${m}`);
    if (m > 0 && !(opts.dim! > 0)) throw new RangeError('NTXentLoss: a memory bank needs the embedding size: pass { dim }');
    this.temperature = t;
    this.gatherDistributed = opts.gatherDistributed ?? false;
    this.memory_bank = m > 0 ? new MemoryBank({ size: m, dim: opts.dim! }) : null;
  }

  /** The memory bank, if any. */
  get memoryBank(): MemoryBank | null {
    return this.memory_bank;
  }

  forward(out0: Tensor, out1: Tensor): Tensor {
    const s0 = checkViewPair('NTXentLoss.forward', out0, out1, this.memory_bank === null ? 2 : 1);
    const loss = torch.scope(() => {
      const z0 = F.normalize(out0);
      const z1 = F.normalize(out1);
      if (this.memory_bank !== null) {
        const pos = z0.mul(z1).sum(1, { keepdim: true }); // [B, 1]
        const neg = z0.matmul(this.memory_bank.negatives().t()); // [B, M]
        const logits = torch.cat([pos, neg], 1).div(this.temperature);
        const target = torch.zeros([s0[0]!], { dtype: 'int64', device: logits.device });
        const l = F.crossEntropy(logits, target);
        this.memory_bank.enqueue(this.distributed() ? gatherWithGrad(z1.detach()) : z1);
        return l;
      }
      if (this.distributed()) return gatheredLoss(z0, z1, this.temperature);
      const { logits, partner } = viewPairLogits(z0, z1, this.temperature);
      const eye = torch.eye(logits.size(0), logits.size(0), { dtype: 'bool', device: logits.device });
      return F.crossEntropy(logits.maskedFill(eye, -Infinity), partner);
    });
    return loss;
  }

  private distributed(): boolean {
    return this.gatherDistributed && isInitialized() && getWorldSize() > 1;
  }
}

/**
 * NT-Xent of this rank's rows z0, z1 [B, D] against every rank's (W ranks): logits [2B, 2WB] of
 * [z0; z1] against [Z0; Z1] (Z = the gathered views, rank r's rows at r·B), self-similarity masked,
 * each row's positive the other view of the same image at its global index.
 */
function gatheredLoss(z0: Tensor, z1: Tensor, temperature: number): Tensor {
  const b = z0.size(0);
  const w = getWorldSize();
  const keys = torch.cat([gatherWithGrad(z0), gatherWithGrad(z1)], 0); // [2WB, D]
  const logits = torch.cat([z0, z1], 0).matmul(keys.t()).div(temperature); // [2B, 2WB]
  const on = { device: z0.device };
  const idx = torch.arange(0, b, 1, on).add(getRank() * b);
  const self = torch.cat([idx, idx.add(w * b)]);
  const partner = torch.cat([idx.add(w * b), idx]);
  const mask = torch.arange(0, 2 * w * b, 1, on).unsqueeze(0).eq(self.unsqueeze(1)); // [2B, 2WB], true at each row's own column
  return F.crossEntropy(logits.maskedFill(mask, -Infinity), partner);
}

/**
 * Checks two views' outputs are both [B, D] with B ≥ minBatch; returns the shape. Shared by the
 * contrastive losses so that their messages read alike.
 */
export function checkViewPair(where: string, out0: Tensor, out1: Tensor, minBatch: number): number[] {
  const s0 = out0.shape;
  const s1 = out1.shape;
  if (s0.length !== 2 || s1.length !== 2 || s0[0] !== s1[0] || s0[1] !== s1[1]) {
    throw new RangeError(`${where}: out0 and out1 must both be [B, D] with the same shape, got [${s0}] and [${s1}]`);
  }
  if (s0[0]! < minBatch) throw new RangeError(`${where}: need at least 2 samples for in-batch negatives, got ${s0[0]}`);
  return s0;
}

/**
 * In-batch similarity logits of two views' L2-normalised rows z0, z1 [B, D]: the [2B, 2B] matrix
 * of z = [z0; z1] against itself over τ (the diagonal not yet masked), and each row's positive
 * `partner` [2B] (row i's is i ± B).
 */
export function viewPairLogits(z0: Tensor, z1: Tensor, temperature: number): { logits: Tensor; partner: Tensor } {
  const b = z0.size(0);
  const z = torch.cat([z0, z1], 0);
  const idx = torch.arange(0, b, 1, { device: z0.device });
  return { logits: z.matmul(z.t()).div(temperature), partner: torch.cat([idx.add(b), idx]) };
}
