/**
 * SimCLR (Chen et al. 2020, "A Simple Framework for Contrastive Learning of Visual
 * Representations"): backbone f(·), projection head g(·), NT-Xent between the projections of
 * two augmented views of each image.
 *
 * The two views go through the network as ONE batch of 2N images, as the paper's implementation
 * concatenates them: batch norm then sees both views (the paper's "global BN" on one device),
 * and the larger batch uses the CPU/GPU better. `concatViews: false` runs them separately.
 */
import type { Tensor } from '../torch/index.js';
import * as torch from '../torch/index.js';
import { NTXentLoss } from '../losses/ntxent.js';
import { SimCLRProjectionHead } from '../models/heads.js';
import { Method, type Backbone, type StepContext } from './method.js';

export interface SimCLROptions {
  /** τ of NT-Xent; 0.5 in the paper's CIFAR-10 recipe (Appendix B.9). */
  temperature?: number;
  hiddenDim?: number;
  outputDim?: number;
  numLayers?: 2 | 3;
  concatViews?: boolean;
}

export class SimCLR extends Method {
  readonly methodName = 'simclr';
  backbone: Backbone;
  projection_head: SimCLRProjectionHead;
  criterion: NTXentLoss;
  readonly concatViews: boolean;

  constructor(backbone: Backbone, opts: SimCLROptions = {}) {
    super();
    this.backbone = backbone;
    this.projection_head = new SimCLRProjectionHead({
      inputDim: backbone.featureDim, hiddenDim: opts.hiddenDim ?? 512, outputDim: opts.outputDim ?? 128, numLayers: opts.numLayers ?? 2,
    });
    this.criterion = new NTXentLoss({ temperature: opts.temperature ?? 0.5 });
    this.concatViews = opts.concatViews ?? true;
  }

  /** z = g(f(x)): [N, outputDim]. */
  project(x: Tensor): Tensor {
    return this.projection_head.forward(this.backbone.forward(x));
  }

  trainingStep(views: Tensor[], _ctx: StepContext): Tensor {
    if (views.length !== 2) throw new RangeError(`SimCLR: expected 2 views, got ${views.length}`);
    const [x0, x1] = views as [Tensor, Tensor];
    if (this.concatViews) {
      const [z0, z1] = this.project(torch.cat([x0, x1], 0)).chunk(2, 0) as [Tensor, Tensor];
      return this.criterion.forward(z0, z1);
    }
    return this.criterion.forward(this.project(x0), this.project(x1));
  }
}
