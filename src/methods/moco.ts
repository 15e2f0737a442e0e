/**
 * MoCo v2 (He et al. 2020, "Momentum Contrast for Unsupervised Visual Representation
 * Learning"; Chen et al. 2020, "Improved Baselines with Momentum Contrastive Learning"):
 * a query encoder trained by InfoNCE against keys from a momentum (EMA) encoder, with a FIFO
 * queue of past keys as negatives.
 *
 * - Momentum: m follows a cosine schedule from `momentum` (0.99 here; 0.999 in the paper, which
 *   trains 800 epochs on ImageNet) to 1 over the run.
 * - Queue: `memoryBankSize` keys (4096 by default for small datasets; 65536 for ImageNet scale).
 * - Shuffle-BN (§3.3) exists to stop the query and key encoders from sharing batch-norm
 *   statistics across devices. On one process there are no devices, so `shuffleGroups` G > 1
 *   replaces it: the key batch is shuffled and run through the momentum encoder in G chunks, each
 *   with its own BN statistics, then unshuffled, so keys never see the query batch's statistics.
 *   G = 1 turns it off.
 */
import type { Tensor } from '../torch/index.js';
import * as torch from '../torch/index.js';
import { NTXentLoss } from '../losses/ntxent.js';
import { MoCoProjectionHead } from '../models/heads.js';
import { SelfSupervisedMethod, type Backbone, type StepContext } from './method.js';
import { cosineSchedule } from '../optim/lr_scheduler.js';
import { initMomentumCopy, updateMomentum } from './momentum.js';

export interface MoCoV2Options {
  temperature?: number;
  memoryBankSize?: number;
  momentum?: number;
  hiddenDim?: number;
  outputDim?: number;
  shuffleGroups?: number;
  /** Also use view 1 as query and view 0 as key, averaging both losses. */
  symmetric?: boolean;
  /** Enqueue the keys of every rank of the process group (NTXentLoss `gatherDistributed`). Default false. */
  gatherDistributed?: boolean;
}

export class MoCoV2 extends SelfSupervisedMethod {
  readonly methodName = 'moco';
  backbone: Backbone;
  projection_head: MoCoProjectionHead;
  backbone_momentum: Backbone;
  projection_head_momentum: MoCoProjectionHead;
  criterion: NTXentLoss;
  readonly baseMomentum: number;
  readonly shuffleGroups: number;
  readonly symmetric: boolean;
  /** The momentum used by the last `afterStep`. */
  currentMomentum: number;

  /** `makeBackbone` builds the query encoder and its momentum copy (same architecture). */
  constructor(makeBackbone: () => Backbone, opts: MoCoV2Options = {}) {
    super();
    this.backbone = makeBackbone();
    this.backbone_momentum = makeBackbone();
    const dims = { inputDim: this.backbone.featureDim, hiddenDim: opts.hiddenDim ?? 512, outputDim: opts.outputDim ?? 128 };
    this.projection_head = new MoCoProjectionHead(dims);
    this.projection_head_momentum = new MoCoProjectionHead(dims);
    initMomentumCopy(this.backbone, this.backbone_momentum);
    initMomentumCopy(this.projection_head, this.projection_head_momentum);
    this.criterion = new NTXentLoss({ temperature: opts.temperature ?? 0.2, memoryBankSize: opts.memoryBankSize ?? 4096, dim: dims.outputDim, gatherDistributed: opts.gatherDistributed });
    this.baseMomentum = opts.momentum ?? 0.99;
    this.currentMomentum = this.baseMomentum;
    this.shuffleGroups = opts.shuffleGroups ?? 2;
    this.symmetric = opts.symmetric ?? false;
    if (!(this.baseMomentum >= 0 && this.baseMomentum <= 1)) throw new RangeError(`MoCoV2: momentum must be in [0, 1], got ${this.baseMomentum}`);
    if (!Number.isInteger(this.shuffleGroups) || this.shuffleGroups < 1) throw new RangeError(`MoCoV2: shuffleGroups must be a positive integer`);
  }

  /** q = g(f(x)) with the query encoder. */
  query(x: Tensor): Tensor {
    return this.projection_head.forward(this.backbone.forward(x));
  }

  /** k = g_m(f_m(x)) with the momentum encoder, no gradients, with single-process shuffle-BN. */
  key(x: Tensor): Tensor {
    return torch.noGrad(() => {
      const n = x.size(0);
      const g = Math.min(this.shuffleGroups, Math.floor(n / 2)) || 1;
      const run = (t: Tensor): Tensor => this.projection_head_momentum.forward(this.backbone_momentum.forward(t));
      if (g === 1) return run(x);
      const perm = torch.randperm(n).to(x.device); // drawn on the CPU generator: the same shuffle on every device
      const shuffled = x.indexSelect(0, perm);
      const keys = torch.cat(shuffled.chunk(g, 0).map(run), 0);
      return torch.zerosLike(keys).indexCopy_(0, perm, keys); // unshuffle: keys[perm[i]] = shuffledKeys[i]
    });
  }

  trainingStep(views: Tensor[], _ctx: StepContext): Tensor {
    if (views.length !== 2) throw new RangeError(`MoCoV2: expected 2 views, got ${views.length}`);
    const [x0, x1] = views as [Tensor, Tensor];
    const loss = this.criterion.forward(this.query(x0), this.key(x1));
    if (!this.symmetric) return loss;
    return loss.add(this.criterion.forward(this.query(x1), this.key(x0))).mul(0.5);
  }

  override afterStep(ctx: StepContext): void {
    this.currentMomentum = cosineSchedule(ctx.step + 1, ctx.totalSteps, this.baseMomentum, 1);
    updateMomentum(this.backbone, this.backbone_momentum, this.currentMomentum);
    updateMomentum(this.projection_head, this.projection_head_momentum, this.currentMomentum);
  }
}
