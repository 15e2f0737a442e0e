/**
 * The shape of a self-supervised method: a module holding a backbone (and heads, losses,
 * momentum copies), one training step from a list of augmented views to a scalar loss, and a
 * hook after the optimizer step (EMA updates). The trainer knows nothing else about methods.
 */
import * as nn from '../nn/index.js';
import type { Tensor } from '../torch/index.js';

/** A backbone: a module mapping images [N, C, H, W] to features [N, featureDim]. */
export interface Backbone extends nn.Module {
  readonly featureDim: number;
  forward(x: Tensor): Tensor;
}

export interface StepContext {
  /** Global step (0-based) and the run's total number of steps. */
  step: number;
  totalSteps: number;
  epoch: number;
}

export abstract class Method extends nn.Module {
  abstract readonly methodName: string;
  /** Views per image the method trains on (2 for SimCLR and MoCo). */
  readonly numViews: number = 2;
  abstract backbone: Backbone;

  /** The loss for one batch of views (each [N, C, H, W], normalised floats). */
  abstract trainingStep(views: Tensor[], ctx: StepContext): Tensor;

  /** Called after each optimizer step (momentum encoders update here). */
  afterStep(_ctx: StepContext): void {}

  /** Representation used downstream (kNN, linear probe, search): backbone features [N, featureDim]. */
  embed(x: Tensor): Tensor {
    return this.backbone.forward(x);
  }

  forward(x: Tensor): Tensor {
    return this.embed(x);
  }

  /** Parameters the optimizer trains (momentum copies are excluded). */
  trainableParameters(): [string, nn.Parameter][] {
    return this.namedParameters().filter(([, p]) => p.requiresGrad);
  }
}
