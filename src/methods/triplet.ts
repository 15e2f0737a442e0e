/**
 * Metric learning with the triplet loss (Schroff et al. 2015, "FaceNet"; Hermans et al. 2017,
 * "In Defense of the Triplet Loss for Person Re-Identification"): "an anchor, a positive and a
 * negative", mined inside P×K batches (P classes × K images each, `PKBatchSampler`), so the
 * method needs labels. One augmented view per image; an embedding head in → 512 → 128 (BN, ReLU;
 * Hermans et al. use 1024 → 128) on the backbone; `TripletLoss` with margin 0.2 and batch-hard
 * mining by default. `activeFraction` is the last batch's fraction of active (loss > 0) triplets.
 */
import type { Tensor } from '../torch/index.js';
import { TripletLoss, type TripletMining } from '../losses/triplet.js';
import { ProjectionHead, bn, relu } from '../models/heads.js';
import { SelfSupervisedMethod, type Backbone, type LabelledViews, type StepContext } from './method.js';

export interface TripletOptions {
  margin?: number;
  mining?: TripletMining;
  hiddenDim?: number;
  outputDim?: number;
}

export class Triplet extends SelfSupervisedMethod<LabelledViews> {
  readonly methodName = 'triplet';
  override readonly numViews = 1;
  override readonly usesLabels = true;
  override readonly batchSampling = 'pk';
  backbone: Backbone;
  embedding_head: ProjectionHead;
  criterion: TripletLoss;

  constructor(backbone: Backbone, opts: TripletOptions = {}) {
    super();
    this.backbone = backbone;
    const h = opts.hiddenDim ?? 512;
    this.embedding_head = new ProjectionHead([{ inDim: backbone.featureDim, outDim: h, norm: bn(h), activation: relu() }, { inDim: h, outDim: opts.outputDim ?? 128 }]);
    this.criterion = new TripletLoss({ margin: opts.margin, mining: opts.mining });
  }

  get activeFraction(): number {
    return this.criterion.activeFraction;
  }

  trainingStep(batch: LabelledViews, _ctx: StepContext): Tensor {
    const { views, labels } = batch;
    if (views.length !== 1) throw new RangeError(`Triplet: expected 1 view, got ${views.length}`);
    if (labels.lt(0).any().item()) throw new RangeError('Triplet: every image needs a class label (triplets are mined from labels); use a folder with class subfolders');
    return this.criterion.forward(this.embedding_head.forward(this.backbone.forward(views[0]!)), labels);
  }
}
