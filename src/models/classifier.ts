/**
 * `Classifier`: a backbone and a linear head, the model behind a classifier checkpoint
 * (`task: 'classifier'`): the linear probe, fine-tuning and the supervised baseline all produce
 * one. State-dict names are `backbone.*` (the same names a self-supervised method gives its
 * backbone, so pretrained weights load by name) and `head.weight` / `head.bias`.
 *
 * forward(x [N, C, H, W]) → logits [N, numClasses]; features(x) → [N, featureDim].
 */
import * as nn from '../nn/index.js';
import type { Tensor } from '../torch/index.js';
import { createBackbone, type BackboneSpec } from './index.js';

/** What a classifier's backbone must offer (ResNet, ViT). */
export interface ClassifierBackbone extends nn.Module {
  readonly featureDim: number;
  forward(x: Tensor): Tensor;
}

export class Classifier extends nn.Module {
  backbone: ClassifierBackbone;
  head: nn.Linear;

  /** `backbone`: a module or a spec to build one; `numClasses` outputs; `zeroHead` starts the head at zero (fine-tuning). */
  constructor(backbone: ClassifierBackbone | BackboneSpec, numClasses: number, o: { zeroHead?: boolean } = {}) {
    super();
    if (!Number.isInteger(numClasses) || numClasses < 1) throw new RangeError(`Classifier: numClasses must be a positive integer, got ${numClasses}`);
    this.backbone = backbone instanceof nn.Module ? backbone : createBackbone(backbone);
    this.head = new nn.Linear(this.backbone.featureDim, numClasses);
    if (o.zeroHead) {
      nn.init.constant_(this.head.weight, 0);
      if (this.head.bias) nn.init.constant_(this.head.bias, 0);
    }
  }

  get numClasses(): number {
    return this.head.outFeatures;
  }

  get featureDim(): number {
    return this.backbone.featureDim;
  }

  /** Backbone features [N, featureDim]. */
  features(x: Tensor): Tensor {
    return this.backbone.forward(x);
  }

  /** Logits [N, numClasses]. */
  forward(x: Tensor): Tensor {
    return this.head.forward(this.backbone.forward(x));
  }
}
