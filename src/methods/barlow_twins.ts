/**
 * Barlow Twins (Zbontar et al. 2021, "Barlow Twins: Self-Supervised Learning via Redundancy
 * Reduction"): one network, a projector, and `BarlowTwinsLoss` (λ = 5e-3) on the two views'
 * projections. Projector: 3 layers of 8192 in the paper; 2 layers of 2048 by default here (lightly's
 * CIFAR-10 benchmark). Each view runs as its own batch, so the loss's batch standardisation and the
 * projector's batch norm see one view at a time, as in the paper.
 */
import type { Tensor } from '../torch/index.js';
import { BarlowTwinsLoss } from '../losses/barlow_twins.js';
import { BarlowTwinsProjectionHead } from '../models/ssl_heads.js';
import { SelfSupervisedMethod, type Backbone, type StepContext } from './method.js';

export interface BarlowTwinsOptions {
  hiddenDim?: number;
  outputDim?: number;
  numLayers?: number;
  lambdaParam?: number;
}

export class BarlowTwins extends SelfSupervisedMethod {
  readonly methodName = 'barlow';
  backbone: Backbone;
  projection_head: BarlowTwinsProjectionHead;
  criterion: BarlowTwinsLoss;

  constructor(backbone: Backbone, opts: BarlowTwinsOptions = {}) {
    super();
    this.backbone = backbone;
    this.projection_head = new BarlowTwinsProjectionHead({ inputDim: backbone.featureDim, hiddenDim: opts.hiddenDim ?? 2048, outputDim: opts.outputDim ?? 2048, numLayers: opts.numLayers ?? 2 });
    this.criterion = new BarlowTwinsLoss({ lambdaParam: opts.lambdaParam });
  }

  trainingStep(views: Tensor[], _ctx: StepContext): Tensor {
    if (views.length !== 2) throw new RangeError(`BarlowTwins: expected 2 views, got ${views.length}`);
    const [z0, z1] = views.map((x) => this.projection_head.forward(this.backbone.forward(x))) as [Tensor, Tensor];
    return this.criterion.forward(z0, z1);
  }
}
