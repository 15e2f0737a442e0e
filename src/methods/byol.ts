/**
 * BYOL (Grill et al. 2020, "Bootstrap Your Own Latent: A New Approach to Self-Supervised
 * Learning"): an online network (backbone, projector, predictor) predicts the projection of the
 * other view by a target network, an EMA of the online backbone and projector; no negatives.
 *
 * - Loss: the symmetrised negative cosine similarity, ½·[−cos(q(z0), z1') − cos(q(z1), z0')]
 *   (eq. 2 is 2 − 2·cos; same gradients up to a factor); target outputs take no gradient.
 * - Target momentum τ: cosine schedule from `momentum` to 1 over the run (§3.2; 0.996 in the
 *   paper, 0.99 here and in lightly's examples for short runs).
 * - Heads: projector in → 4096 → 256 and predictor 256 → 4096 → 256 in the paper; defaults here are
 *   lightly's CIFAR-10 benchmark sizes for small backbones (1024 hidden).
 */
import type { Tensor } from '../torch/index.js';
import * as torch from '../torch/index.js';
import { NegativeCosineSimilarity } from '../losses/negative_cosine.js';
import { BYOLPredictionHead, BYOLProjectionHead } from '../models/ssl_heads.js';
import { cosineSchedule } from '../optim/lr_scheduler.js';
import { SelfSupervisedMethod, type Backbone, type StepContext } from './method.js';
import { initMomentumCopy, updateMomentum } from './momentum.js';

export interface BYOLOptions {
  momentum?: number;
  hiddenDim?: number;
  outputDim?: number;
}

export class BYOL extends SelfSupervisedMethod {
  readonly methodName = 'byol';
  backbone: Backbone;
  projection_head: BYOLProjectionHead;
  prediction_head: BYOLPredictionHead;
  backbone_momentum: Backbone;
  projection_head_momentum: BYOLProjectionHead;
  criterion = new NegativeCosineSimilarity();
  readonly baseMomentum: number;
  currentMomentum: number;

  /** `makeBackbone` builds the online backbone and its target copy (same architecture). */
  constructor(makeBackbone: () => Backbone, opts: BYOLOptions = {}) {
    super();
    this.backbone = makeBackbone();
    this.backbone_momentum = makeBackbone();
    const dims = { inputDim: this.backbone.featureDim, hiddenDim: opts.hiddenDim ?? 1024, outputDim: opts.outputDim ?? 256 };
    this.projection_head = new BYOLProjectionHead(dims);
    this.projection_head_momentum = new BYOLProjectionHead(dims);
    this.prediction_head = new BYOLPredictionHead({ inputDim: dims.outputDim, hiddenDim: dims.hiddenDim, outputDim: dims.outputDim });
    initMomentumCopy(this.backbone, this.backbone_momentum);
    initMomentumCopy(this.projection_head, this.projection_head_momentum);
    this.baseMomentum = opts.momentum ?? 0.99;
    this.currentMomentum = this.baseMomentum;
    if (!(this.baseMomentum >= 0 && this.baseMomentum <= 1)) throw new RangeError(`BYOL: momentum must be in [0, 1], got ${this.baseMomentum}`);
  }

  /** Online prediction q(g(f(x))) [N, outputDim]. */
  online(x: Tensor): Tensor {
    return this.prediction_head.forward(this.projection_head.forward(this.backbone.forward(x)));
  }

  /** Target projection g'(f'(x)) [N, outputDim], no gradient. */
  target(x: Tensor): Tensor {
    return torch.noGrad(() => this.projection_head_momentum.forward(this.backbone_momentum.forward(x)));
  }

  trainingStep(views: Tensor[], _ctx: StepContext): Tensor {
    if (views.length !== 2) throw new RangeError(`BYOL: expected 2 views, got ${views.length}`);
    const [x0, x1] = views as [Tensor, Tensor];
    const [p0, p1] = this.online(torch.cat([x0, x1], 0)).chunk(2, 0) as [Tensor, Tensor];
    const [z0, z1] = this.target(torch.cat([x0, x1], 0)).chunk(2, 0) as [Tensor, Tensor];
    return this.criterion.forward(p0, z1).add(this.criterion.forward(p1, z0)).mul(0.5);
  }

  override afterStep(ctx: StepContext): void {
    this.currentMomentum = cosineSchedule(ctx.step + 1, ctx.totalSteps, this.baseMomentum, 1);
    updateMomentum(this.backbone, this.backbone_momentum, this.currentMomentum);
    updateMomentum(this.projection_head, this.projection_head_momentum, this.currentMomentum);
  }
}
