/** Methods, each a small class: backbone + head + loss (see `method.ts` for what the loop needs). */
import { createBackbone, type BackboneSpec } from '../models/index.js';
import { MoCoV2 } from './moco.js';
import { SimCLR, type SimCLRLossName } from './simclr.js';
import type { SelfSupervisedMethod } from './method.js';

export * from './method.js';
export * from './simclr.js';
export * from './moco.js';
export * from './momentum.js';
export * from './supervised.js';

export interface MethodSpec {
  method: 'simclr' | 'moco';
  backbone: BackboneSpec;
  temperature?: number;
  memoryBankSize?: number;
  emaMomentum?: number;
  /** SimCLR: one forward over both views (see `SimCLROptions.concatViews`). */
  concatViews?: boolean;
  /** SimCLR: projection-head depth (see `SimCLRProjectionHead.numLayers`). */
  headLayers?: 2 | 3;
  /** SimCLR: the contrastive loss (see `SimCLROptions.loss`). */
  loss?: SimCLRLossName;
}

/** Builds a method by name (the lookup table the trainer and checkpoints use). */
export function createMethod(spec: MethodSpec): SelfSupervisedMethod {
  switch (spec.method) {
    case 'simclr':
      return new SimCLR(createBackbone(spec.backbone), { temperature: spec.temperature, concatViews: spec.concatViews, numLayers: spec.headLayers, loss: spec.loss });
    case 'moco':
      return new MoCoV2(() => createBackbone(spec.backbone), { temperature: spec.temperature, memoryBankSize: spec.memoryBankSize, momentum: spec.emaMomentum });
    default:
      throw new RangeError(`unknown method '${String(spec.method)}': use simclr or moco`);
  }
}
