/**
 * What the engine's one training loop (`engine/loop.ts`) trains: a `Method<B>`, a module with
 * one training step from a batch of type `B` to a scalar loss, a hook before each optimizer step
 * (gradient clipping) and one after it (EMA updates, temperature clipping). The loop knows nothing else about methods.
 *
 * - `SelfSupervisedMethod` (SimCLR, MoCo, BYOL, ...): `B` is the list of augmented views of a batch
 *   of images, and the method holds a backbone whose features are the representation. Methods
 *   that also learn from class labels (SupCon, Triplet) set `usesLabels` and take
 *   `LabelledViews`: the views plus the images' labels.
 * - `CLIP`: `B` is a batch of image–caption pairs.
 * - `Supervised`: `B` is inputs and class labels (supervised training, fine-tuning, the linear probe).
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

/** A trainable method over batches of type `B` (see the module comment). */
export abstract class Method<B = Tensor[]> extends nn.Module {
  abstract readonly methodName: string;

  /** The loss (a scalar tensor) for one batch. */
  abstract trainingStep(batch: B, ctx: StepContext): Tensor;

  /**
   * Called between backward and the optimizer step, gradients in place (Lightning's
   * `on_before_optimizer_step`): DINO clips them and cancels its head's last layer here.
   */
  beforeOptimizerStep(_ctx: StepContext): void {}

  /** Called after each optimizer step (momentum encoders update here). */
  afterStep(_ctx: StepContext): void {}

  /** Parameters the optimizer trains (momentum copies and locked towers are excluded). */
  trainableParameters(): [string, nn.Parameter][] {
    return this.namedParameters().filter(([, p]) => p.requiresGrad);
  }
}

/** Views of a batch of images with their class labels (int64 [N], −1 where unknown). */
export interface LabelledViews {
  views: Tensor[];
  labels: Tensor;
}

/**
 * A self-supervised image method: a backbone (and heads, losses, momentum copies) trained on
 * augmented views of unlabeled images; each view is [N, C, H, W] normalised floats. `B` is the
 * list of views, or `LabelledViews` for a method with `usesLabels`.
 */
export abstract class SelfSupervisedMethod<B extends Tensor[] | LabelledViews = Tensor[]> extends Method<B> {
  /** Views per image the method trains on (2 for SimCLR and MoCo). */
  readonly numViews: number = 2;
  /** Whether `trainingStep` takes `LabelledViews` (the trainer then passes the data's labels). */
  readonly usesLabels: boolean = false;
  /** How the trainer draws batches: 'random' (shuffled), or 'pk' (P classes × K images, `PKBatchSampler`). */
  readonly batchSampling: 'random' | 'pk' = 'random';
  abstract backbone: Backbone;

  /** Representation used downstream (kNN, linear probe, search): backbone features [N, featureDim]. */
  embed(x: Tensor): Tensor {
    return this.backbone.forward(x);
  }

  forward(x: Tensor): Tensor {
    return this.embed(x);
  }
}
