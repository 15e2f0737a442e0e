/**
 * Supervised contrastive learning (Khosla et al. 2020, "Supervised Contrastive Learning"):
 * SimCLR's network (backbone, 2-layer projection head in → 512 → 128) trained with `SupConLoss`,
 * where every view of the same class is a positive. It trains on `LabelledViews`: the trainer
 * passes the data's labels. Images without a label (−1) count as their own class, so on unlabeled
 * data the loss is NT-Xent. τ = 0.1 (the paper's).
 */
import type { Tensor } from '../torch/index.js';
import * as torch from '../torch/index.js';
import { SupConLoss } from '../losses/supcon.js';
import { SimCLRProjectionHead } from '../models/heads.js';
import { SelfSupervisedMethod, type Backbone, type LabelledViews, type StepContext } from './method.js';

export interface SupConOptions {
  temperature?: number;
  hiddenDim?: number;
  outputDim?: number;
  /** SupConLoss with positives and negatives from every rank of the process group. Default false. */
  gatherDistributed?: boolean;
}

export class SupCon extends SelfSupervisedMethod<LabelledViews> {
  readonly methodName = 'supcon';
  override readonly usesLabels = true;
  backbone: Backbone;
  projection_head: SimCLRProjectionHead;
  criterion: SupConLoss;

  constructor(backbone: Backbone, opts: SupConOptions = {}) {
    super();
    this.backbone = backbone;
    this.projection_head = new SimCLRProjectionHead({ inputDim: backbone.featureDim, hiddenDim: opts.hiddenDim ?? 512, outputDim: opts.outputDim ?? 128, numLayers: 2 });
    this.criterion = new SupConLoss({ temperature: opts.temperature ?? 0.1, gatherDistributed: opts.gatherDistributed });
  }

  trainingStep(batch: LabelledViews, _ctx: StepContext): Tensor {
    const { views, labels } = batch;
    if (views.length !== 2) throw new RangeError(`SupCon: expected 2 views, got ${views.length}`);
    const [z0, z1] = this.projection_head.forward(this.backbone.forward(torch.cat(views, 0))).chunk(2, 0) as [Tensor, Tensor];
    return this.criterion.forward(z0, z1, ownClassWhereUnlabelled(labels));
  }
}

/** Labels [N] with each −1 replaced by a class of its own (−1 − i), so unlabeled images only match their other view. */
export function ownClassWhereUnlabelled(labels: Tensor): Tensor {
  return torch.scope(() => {
    const y = labels.long();
    return torch.where(y.lt(0), torch.arange(1, y.size(0) + 1, 1, { device: y.device }).neg(), y);
  });
}
