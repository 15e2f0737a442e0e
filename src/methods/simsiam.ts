/**
 * SimSiam (Chen & He 2021, "Exploring Simple Siamese Representation Learning"): one network,
 * a predictor on one side and a stop-gradient on the other; no negatives, no momentum encoder.
 *
 * Loss (eq. 3): ½·D(p0, stopgrad(z1)) + ½·D(p1, stopgrad(z0)) with D the negative cosine
 * similarity. Heads: the projector whose last BN has no affine parameters, 2 layers in → 2048 →
 * 2048 (the paper's CIFAR-10 setting and lightly's CIFAR-10 benchmark; 3 layers on ImageNet), and
 * the bottleneck predictor 2048 → 512 → 2048.
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
  numLayers?: 2 | 3;
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
    const out = opts.outputDim ?? 2048;
    this.projection_head = new SimSiamProjectionHead({ inputDim: backbone.featureDim, hiddenDim: opts.hiddenDim ?? 2048, outputDim: out, numLayers: opts.numLayers ?? 2 });
    this.prediction_head = new SimSiamPredictionHead({ inputDim: out, hiddenDim: opts.predictionHiddenDim ?? 512, outputDim: out });
  }

  trainingStep(views: Tensor[], _ctx: StepContext): Tensor {
    if (views.length !== 2) throw new RangeError(`SimSiam: expected 2 views, got ${views.length}`);
    const z = this.projection_head.forward(this.backbone.forward(torch.cat(views, 0)));
    const [p0, p1] = this.prediction_head.forward(z).chunk(2, 0) as [Tensor, Tensor];
    const [z0, z1] = z.detach().chunk(2, 0) as [Tensor, Tensor];
    return this.criterion.forward(p0, z1).add(this.criterion.forward(p1, z0)).mul(0.5);
  }
}
