/**
 * SimCLR (Chen et al. 2020, "A Simple Framework for Contrastive Learning of Visual
 * Representations"): backbone f(·), projection head g(·), NT-Xent between the projections of
 * two augmented views of each image.
 *
 * The two views go through the network as ONE batch of 2N images, as the paper's implementation
 * concatenates them: batch norm then sees both views (the paper's "global BN" on one device),
 * and the larger batch uses the CPU/GPU better. `concatViews: false` runs them separately.
 * Multi-crop local views (`SimCLRTransform`'s `nLocalViews`) are optional extra positives.
 */
import type { Tensor } from '../torch/index.js';
import * as torch from '../torch/index.js';
import { NTXentLoss } from '../losses/ntxent.js';
import { DCLLoss, DCLWLoss } from '../losses/dcl.js';
import { SimCLRProjectionHead } from '../models/heads.js';
import { SelfSupervisedMethod, type Backbone, type StepContext } from './method.js';

export interface SimCLROptions {
  /** τ of NT-Xent; 0.5 in the paper's CIFAR-10 recipe (Appendix B.9). */
  temperature?: number;
  hiddenDim?: number;
  outputDim?: number;
  numLayers?: 2 | 3;
  concatViews?: boolean;
  /**
   * The contrastive loss: 'ntxent' (the paper's, default), or 'dcl' / 'dclw' (decoupled:
   * the positive left out of the denominator, Yeh et al. 2022; see `DCLLoss`).
   */
  loss?: SimCLRLossName;
  /** NT-Xent with the negatives of every rank of the process group (`gatherDistributed`). Default false. */
  gatherDistributed?: boolean;
}

export type SimCLRLossName = 'ntxent' | 'dcl' | 'dclw';
export const SIMCLR_LOSSES: readonly SimCLRLossName[] = ['ntxent', 'dcl', 'dclw'];

export class SimCLR extends SelfSupervisedMethod {
  readonly methodName = 'simclr';
  backbone: Backbone;
  projection_head: SimCLRProjectionHead;
  criterion: NTXentLoss | DCLLoss;
  readonly concatViews: boolean;

  constructor(backbone: Backbone, opts: SimCLROptions = {}) {
    super();
    this.backbone = backbone;
    this.projection_head = new SimCLRProjectionHead({
      inputDim: backbone.featureDim, hiddenDim: opts.hiddenDim ?? 512, outputDim: opts.outputDim ?? 128, numLayers: opts.numLayers ?? 2,
    });
    const temperature = opts.temperature ?? 0.5;
    const loss = opts.loss ?? 'ntxent';
    if (!SIMCLR_LOSSES.includes(loss)) throw new RangeError(`SimCLR: loss must be one of ${SIMCLR_LOSSES.join(', ')}, got '${String(loss)}'`);
    this.criterion = loss === 'dcl' ? new DCLLoss({ temperature }) : loss === 'dclw' ? new DCLWLoss({ temperature }) : new NTXentLoss({ temperature, gatherDistributed: opts.gatherDistributed });
    this.concatViews = opts.concatViews ?? true;
  }

  /** z = g(f(x)): [N, outputDim]. */
  project(x: Tensor): Tensor {
    return this.projection_head.forward(this.backbone.forward(x));
  }

  /**
   * views: the two global views [N, C, H, W] each, then any multi-crop local views (all of one
   * size, [N, C, h, w]). Two views: NT-Xent(z0, z1). With K local views the loss is the mean
   * NT-Xent over the 1 + 2K pairs that hold a global view, {g0, g1} and {gi, lk}, as SwAV
   * (Caron et al. 2020, §3.2) compares each global view with every other view; the local views
   * go through the network as one batch of K·N.
   */
  trainingStep(views: Tensor[], _ctx: StepContext): Tensor {
    if (views.length < 2) throw new RangeError(`SimCLR: expected 2 global views (then any local ones), got ${views.length}`);
    const [x0, x1, ...locals] = views as [Tensor, Tensor, ...Tensor[]];
    let z0: Tensor;
    let z1: Tensor;
    if (this.concatViews) [z0, z1] = this.project(torch.cat([x0, x1], 0)).chunk(2, 0) as [Tensor, Tensor];
    else [z0, z1] = [this.project(x0), this.project(x1)];
    let loss = this.criterion.forward(z0, z1);
    if (locals.length === 0) return loss;
    const zl = this.concatViews ? this.project(torch.cat(locals, 0)).chunk(locals.length, 0) : locals.map((x) => this.project(x));
    for (const z of zl) loss = loss.add(this.criterion.forward(z0, z)).add(this.criterion.forward(z1, z));
    return loss.div(1 + 2 * zl.length);
  }
}
