/**
 * Supervised classification as a `Method`: cross-entropy (optionally label-smoothed, Szegedy et
 * al. 2016) between a network's logits and the labels. The engine's loop trains the supervised
 * baseline, fine-tuning (`engine/supervised.ts`, `engine/finetune.ts`) and the linear probe's
 * layer (`engine/probe.ts`) through it, so they share the loop of every other method.
 */
import * as nn from '../nn/index.js';
import type { Tensor } from '../torch/index.js';
import * as torch from '../torch/index.js';
import { Method, type StepContext } from './method.js';

export interface LabelledBatch {
  /** Inputs the network takes: images [N, C, H, W] or features [N, D]. */
  inputs: Tensor;
  /** Class indices [N] (int64). */
  labels: Tensor;
}

export interface SupervisedMethodOptions {
  /** Label smoothing of the cross-entropy (PyTorch's `label_smoothing`); default 0. */
  labelSmoothing?: number;
}

/** A network (inputs → logits [N, numClasses]) trained with cross-entropy. */
export class Supervised extends Method<LabelledBatch> {
  readonly methodName = 'supervised';
  network: nn.Module;
  readonly labelSmoothing: number;

  constructor(network: nn.Module, opts: SupervisedMethodOptions = {}) {
    super();
    this.network = network;
    this.labelSmoothing = opts.labelSmoothing ?? 0;
    if (!(this.labelSmoothing >= 0 && this.labelSmoothing < 1)) throw new RangeError(`Supervised: labelSmoothing must be in [0, 1), got ${this.labelSmoothing}`);
  }

  trainingStep(batch: LabelledBatch, _ctx: StepContext): Tensor {
    return torch.functional.crossEntropy(this.network.forward(batch.inputs), batch.labels, { labelSmoothing: this.labelSmoothing });
  }

  forward(x: Tensor): Tensor {
    return this.network.forward(x);
  }
}
