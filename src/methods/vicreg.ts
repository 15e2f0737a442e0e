/**
 * VICReg (Bardes, Ponce & LeCun 2022, "VICReg: Variance-Invariance-Covariance Regularization for
 * Self-Supervised Learning"): one network, an expander, and `VICRegLoss` (λ = 25, μ = 25, ν = 1)
 * on the two views' embeddings. Expander: 3 layers of 8192 in the paper; 2 layers of 2048 by
 * default here (the size lightly's CIFAR-10 benchmark gives Barlow Twins' projector). Views run as separate batches.
 */
import type { Tensor } from '../torch/index.js';
import { VICRegLoss, type VICRegLossOptions } from '../losses/vicreg.js';
import { VICRegProjectionHead } from '../models/ssl_heads.js';
import { SelfSupervisedMethod, type Backbone, type StepContext } from './method.js';

export interface VICRegOptions extends VICRegLossOptions {
  hiddenDim?: number;
  outputDim?: number;
  numLayers?: number;
}

export class VICReg extends SelfSupervisedMethod {
  readonly methodName = 'vicreg';
  backbone: Backbone;
  projection_head: VICRegProjectionHead;
  criterion: VICRegLoss;

  constructor(backbone: Backbone, opts: VICRegOptions = {}) {
    super();
    this.backbone = backbone;
    this.projection_head = new VICRegProjectionHead({ inputDim: backbone.featureDim, hiddenDim: opts.hiddenDim ?? 2048, outputDim: opts.outputDim ?? 2048, numLayers: opts.numLayers ?? 2 });
    this.criterion = new VICRegLoss(opts);
  }

  trainingStep(views: Tensor[], _ctx: StepContext): Tensor {
    if (views.length !== 2) throw new RangeError(`VICReg: expected 2 views, got ${views.length}`);
    const [z0, z1] = views.map((x) => this.projection_head.forward(this.backbone.forward(x))) as [Tensor, Tensor];
    return this.criterion.forward(z0, z1);
  }
}
