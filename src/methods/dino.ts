/**
 * DINO (Caron et al. 2021, "Emerging Properties in Self-Supervised Vision Transformers",
 * Algorithm 1): self-distillation without labels. A student (backbone + `DINOProjectionHead`)
 * sees every view, global and local (multi-crop); a teacher, the student's EMA, sees the two
 * global views only; `DINOLoss` is the cross-entropy between the teacher's centred, sharpened
 * output and the student's, over pairs of different views.
 *
 * - Views: two global views [N, C, H, W], then any local views [N, C, h, w] (all of one size).
 * - Teacher momentum: cosine from `momentum` (0.996 in the paper; 0.99 here, lightly's examples)
 *   to 1 over the run; the centre (momentum 0.9) and the teacher-temperature warm-up live in the loss.
 * - Backbones: ResNets (the head then uses batch norm, as lightly's ResNet benchmark) or ViTs
 *   (the paper's; no batch norm in the head). Head sizes default to lightly's CIFAR-10
 *   benchmark: 2 layers in → 2048 → 256, then 2048 outputs (the paper: 3 layers, 65536 outputs).
 * - The paper's stabilisers (its `main_dino.py` defaults): the head's last layer is frozen during
 *   the first `freezeLastLayer` (1) epochs (`DINOProjectionHead.cancelLastLayerGradients`), and each
 *   student parameter's gradient is clipped to norm `clipGrad` (3.0) on its own — DINO's
 *   `utils.clip_gradients`, i.e. `clipGradNorm_` per parameter, not over all of them jointly.
 * - The representation (`embed`) is the student backbone's features.
 */
import type { Tensor } from '../torch/index.js';
import * as torch from '../torch/index.js';
import * as nn from '../nn/index.js';
import { DINOLoss, type DINOLossOptions } from '../losses/dino.js';
import { DINOProjectionHead } from '../models/ssl_heads.js';
import { cosineSchedule } from '../optim/lr_scheduler.js';
import { clipGradNorm_ } from '../optim/clip.js';
import { SelfSupervisedMethod, type Backbone, type StepContext } from './method.js';
import { initMomentumCopy, updateMomentum } from './momentum.js';

export interface DINOOptions extends Omit<DINOLossOptions, 'outputDim'> {
  momentum?: number;
  hiddenDim?: number;
  bottleneckDim?: number;
  outputDim?: number;
  /** Batch norm in the head's MLP (default: true for a backbone with batch norm, i.e. ResNets). */
  batchNorm?: boolean;
  numLayers?: 2 | 3;
  /** Epochs during which the head's last layer is frozen. Default 1 (the paper's); 0 = never. */
  freezeLastLayer?: number;
  /** Per-parameter gradient-norm clip. Default 3.0 (the paper's `clip_grad`); 0 = no clipping. */
  clipGrad?: number;
}

export class DINO extends SelfSupervisedMethod {
  readonly methodName = 'dino';
  override readonly numViews: number;
  backbone: Backbone;
  projection_head: DINOProjectionHead;
  backbone_momentum: Backbone;
  projection_head_momentum: DINOProjectionHead;
  criterion: DINOLoss;
  readonly baseMomentum: number;
  readonly clipGrad: number;
  currentMomentum: number;

  /** `makeBackbone` builds the student backbone and the teacher's copy; `localViews` is the number of local views per image. */
  constructor(makeBackbone: () => Backbone, opts: DINOOptions & { localViews?: number } = {}) {
    super();
    this.backbone = makeBackbone();
    this.backbone_momentum = makeBackbone();
    const hasBn = this.backbone.modules().some((m) => m instanceof nn.BatchNorm2d);
    const head = { inputDim: this.backbone.featureDim, hiddenDim: opts.hiddenDim ?? 2048, bottleneckDim: opts.bottleneckDim ?? 256,
      outputDim: opts.outputDim ?? 2048, batchNorm: opts.batchNorm ?? hasBn, numLayers: opts.numLayers ?? 2 };
    this.projection_head = new DINOProjectionHead({ ...head, freezeLastLayer: opts.freezeLastLayer ?? 1 });
    this.projection_head_momentum = new DINOProjectionHead(head);
    initMomentumCopy(this.backbone, this.backbone_momentum);
    initMomentumCopy(this.projection_head, this.projection_head_momentum);
    this.criterion = new DINOLoss({ ...opts, outputDim: head.outputDim });
    this.baseMomentum = opts.momentum ?? 0.99;
    this.currentMomentum = this.baseMomentum;
    this.numViews = 2 + (opts.localViews ?? 0);
    this.clipGrad = opts.clipGrad ?? 3.0;
    if (!(this.clipGrad >= 0)) throw new RangeError(`DINO: clipGrad must be ≥ 0 (0 = off), got ${this.clipGrad}`);
    if (!(this.baseMomentum >= 0 && this.baseMomentum <= 1)) throw new RangeError(`DINO: momentum must be in [0, 1], got ${this.baseMomentum}`);
  }

  student(x: Tensor): Tensor {
    return this.projection_head.forward(this.backbone.forward(x));
  }

  teacher(x: Tensor): Tensor {
    return torch.noGrad(() => this.projection_head_momentum.forward(this.backbone_momentum.forward(x)));
  }

  trainingStep(views: Tensor[], ctx: StepContext): Tensor {
    if (views.length < 2) throw new RangeError(`DINO: expected 2 global views (then any local ones), got ${views.length}`);
    const globals = torch.cat(views.slice(0, 2), 0);
    const locals = views.slice(2);
    const teacherOut = this.teacher(globals).chunk(2, 0);
    const studentOut = this.student(globals).chunk(2, 0);
    if (locals.length > 0) studentOut.push(...this.student(torch.cat(locals, 0)).chunk(locals.length, 0));
    return this.criterion.forward(teacherOut, studentOut, ctx.epoch);
  }

  /** Clips each student gradient to norm `clipGrad`, then cancels the last layer's in its frozen epochs. */
  override beforeOptimizerStep(ctx: StepContext): void {
    if (this.clipGrad > 0) for (const [, p] of this.trainableParameters()) clipGradNorm_(p, this.clipGrad);
    this.projection_head.cancelLastLayerGradients(ctx.epoch);
  }

  override afterStep(ctx: StepContext): void {
    this.currentMomentum = cosineSchedule(ctx.step + 1, ctx.totalSteps, this.baseMomentum, 1);
    updateMomentum(this.backbone, this.backbone_momentum, this.currentMomentum);
    updateMomentum(this.projection_head, this.projection_head_momentum, this.currentMomentum);
  }
}
