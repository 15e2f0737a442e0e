/**
 * SimSiam (Chen & He 2021, "Exploring Simple Siamese Representation Learning"): one network,
 * a predictor on one side and a stop-gradient on the other; no negatives, no momentum encoder.
 *
 * Loss (eq. 3): ½·D(p0, stopgrad(z1)) + ½·D(p1, stopgrad(z0)) with D the negative cosine
 * similarity. Heads: the 3-layer projector whose last BN has no affine parameters, and the
 * bottleneck predictor (paper: 2048 → 2048 → 2048 and 2048 → 512 → 2048; defaults here are
 * lightly's CIFAR-10 benchmark sizes, 512 → 128 and 128 → 64 → 128 for small backbones).
 */
import type { Tensor } from '../torch/index.js';
import * as torch from '../torch/index.js';
import { NegativeCosineSimilarity } from '../losses/negative_cosine.js';
import { SimSiamPredictionHead, SimSiamProjectionHead } from '../models/ssl_heads.js';
import { SelfSupervisedMethod, type Backbone, type StepContext } from './method.js';

export interface SimSiamOptions {
  hiddenDim?: number;
  outputDim?: number;
  predictionHiddenDim?: number;
}

export class SimSiam extends SelfSupervisedMethod {
  readonly methodName = 'simsiam';
  backbone: Backbone;
  projection_head: SimSiamProjectionHead;
  prediction_head: SimSiamPredictionHead;
  criterion = new NegativeCosineSimilarity();

  constructor(backbone: Backbone, opts: SimSiamOptions = {}) {
    super();
    this.backbone = backbone;
    const out = opts.outputDim ?? 128;
    this.projection_head = new SimSiamProjectionHead({ inputDim: backbone.featureDim, hiddenDim: opts.hiddenDim ?? 512, outputDim: out });
    this.prediction_head = new SimSiamPredictionHead({ inputDim: out, hiddenDim: opts.predictionHiddenDim ?? 64, outputDim: out });
  }

  trainingStep(views: Tensor[], _ctx: StepContext): Tensor {
    if (views.length !== 2) throw new RangeError(`SimSiam: expected 2 views, got ${views.length}`);
    const z = this.projection_head.forward(this.backbone.forward(torch.cat(views, 0)));
    const [p0, p1] = this.prediction_head.forward(z).chunk(2, 0) as [Tensor, Tensor];
    const [z0, z1] = z.detach().chunk(2, 0) as [Tensor, Tensor];
    return this.criterion.forward(p0, z1).add(this.criterion.forward(p1, z0)).mul(0.5);
  }
}
