/** `BatchNorm1d`, `BatchNorm2d`, `LayerNorm`, `GroupNorm`. */
import type { Tensor } from '../torch/tensor.js';
import { zeros, ones } from '../torch/creation.js';
import { noGrad } from '../torch/autograd.js';
import * as F from '../torch/functional.js';
import { Module } from './module.js';
import { Parameter, emptyParameter, type FactoryOptions } from './parameter.js';
import * as init from './init.js';

const pyBool = (b: boolean): string => (b ? 'True' : 'False');
/** Numbers as Python prints them in reprs (1e-05, not 0.00001). */
const pyNum = (x: number): string => (x !== 0 && Math.abs(x) < 1e-4 ? x.toExponential().replace(/e([+-])(\d)$/, (_, sign: string, d: string) => `e${sign}0${d}`) : String(x));

export interface BatchNormOptions extends FactoryOptions {
  /** Added to the variance for stability. Default 1e-5. */
  eps?: number;
  /**
   * Weight of the new batch statistic in the running average, default 0.1:
   * running = (1 − momentum)·running + momentum·batch. `null` gives a cumulative average
   * (momentum 1/num_batches_tracked).
   */
  momentum?: number | null;
  /** Learnable per-channel scale `weight` (init 1) and shift `bias` (init 0). Default true. */
  affine?: boolean;
  /** Keep running mean/variance for eval mode. Default true; when false, batch statistics are used in eval too. */
  trackRunningStats?: boolean;
}

/**
 * Batch normalization (Ioffe & Szegedy 2015) over the channel dimension 1: in training mode
 * normalizes with the batch's mean and biased variance and updates `running_mean` and
 * `running_var` (with the unbiased variance) and `num_batches_tracked`; in eval mode uses the
 * running statistics. Buffers carry PyTorch's names, so checkpoints load both ways.
 */
export abstract class BatchNormBase extends Module {
  readonly numFeatures: number;
  readonly eps: number;
  readonly momentum: number | null;
  readonly affine: boolean;
  readonly trackRunningStats: boolean;
  declare weight: Parameter | null;
  declare bias: Parameter | null;
  /** [C] running mean (a buffer; null without trackRunningStats). */
  declare running_mean: Tensor | null;
  /** [C] running (unbiased) variance. */
  declare running_var: Tensor | null;
  /** int64 scalar: training batches seen. */
  declare num_batches_tracked: Tensor | null;

  constructor(numFeatures: number, o: BatchNormOptions = {}) {
    super();
    this.numFeatures = numFeatures;
    this.eps = o.eps ?? 1e-5;
    this.momentum = o.momentum === undefined ? 0.1 : o.momentum;
    this.affine = o.affine ?? true;
    this.trackRunningStats = o.trackRunningStats ?? true;
    this.registerParameter('weight', this.affine ? emptyParameter([numFeatures], o) : null);
    this.registerParameter('bias', this.affine ? emptyParameter([numFeatures], o) : null);
    const f = { dtype: o.dtype, device: o.device };
    if (this.trackRunningStats) {
      this.registerBuffer('running_mean', zeros([numFeatures], f));
      this.registerBuffer('running_var', ones([numFeatures], f));
      this.registerBuffer('num_batches_tracked', zeros([], { dtype: 'int64', device: o.device }));
    } else {
      this.registerBuffer('running_mean', null);
      this.registerBuffer('running_var', null);
      this.registerBuffer('num_batches_tracked', null);
    }
    this.resetParameters();
  }

  /** Running mean 0, variance 1, count 0. */
  resetRunningStats(): void {
    if (!this.trackRunningStats) return;
    noGrad(() => {
      this.running_mean!.zero_();
      this.running_var!.fill_(1);
      this.num_batches_tracked!.zero_();
    });
  }
  resetParameters(): void {
    this.resetRunningStats();
    if (this.affine) {
      init.ones_(this.weight!);
      init.zeros_(this.bias!);
    }
  }

  /** camelCase aliases of the buffers. */
  get runningMean(): Tensor | null { return this.running_mean; }
  get runningVar(): Tensor | null { return this.running_var; }
  get numBatchesTracked(): Tensor | null { return this.num_batches_tracked; }

  protected abstract checkInputDim(x: Tensor): void;

  protected override optionalStateKeys(): string[] {
    return ['num_batches_tracked'];
  }

  forward(x: Tensor): Tensor {
    this.checkInputDim(x);
    let factor = this.momentum ?? 0;
    if (this.training && this.trackRunningStats && this.num_batches_tracked !== null) {
      noGrad(() => this.num_batches_tracked!.add_(1));
      factor = this.momentum === null ? 1 / this.num_batches_tracked.item() : this.momentum;
    }
    const bnTraining = this.training || (this.running_mean === null && this.running_var === null);
    const useRunning = !this.training || this.trackRunningStats;
    return F.batchNorm(x, useRunning ? this.running_mean : null, useRunning ? this.running_var : null, {
      weight: this.weight, bias: this.bias, training: bnTraining, momentum: factor, eps: this.eps,
    });
  }

  override extraRepr(): string {
    return `${this.numFeatures}, eps=${pyNum(this.eps)}, momentum=${this.momentum === null ? 'None' : this.momentum}, affine=${pyBool(this.affine)}, track_running_stats=${pyBool(this.trackRunningStats)}`;
  }
}

/** BatchNorm over [N, C] or [N, C, L] (channel = dimension 1). */
export class BatchNorm1d extends BatchNormBase {
  protected checkInputDim(x: Tensor): void {
    if (x.ndim !== 2 && x.ndim !== 3) throw new RangeError(`BatchNorm1d: expected 2D or 3D input ([N, C] or [N, C, L]), got shape [${x.shape.join(', ')}]`);
  }
}
/** BatchNorm over [N, C, H, W]. */
export class BatchNorm2d extends BatchNormBase {
  protected checkInputDim(x: Tensor): void {
    if (x.ndim !== 4) throw new RangeError(`BatchNorm2d: expected 4D input [N, C, H, W], got shape [${x.shape.join(', ')}]`);
  }
}

/**
 * Layer normalization (Ba et al. 2016) over the trailing `normalizedShape` dimensions, with
 * the biased variance: y = (x − E[x]) / √(Var[x] + eps) · weight + bias.
 * `weight` (init 1) and `bias` (init 0) have shape `normalizedShape`.
 */
export class LayerNorm extends Module {
  readonly normalizedShape: number[];
  readonly eps: number;
  readonly elementwiseAffine: boolean;
  declare weight: Parameter | null;
  declare bias: Parameter | null;

  constructor(normalizedShape: number | number[], o: { eps?: number; elementwiseAffine?: boolean; bias?: boolean } & FactoryOptions = {}) {
    super();
    this.normalizedShape = typeof normalizedShape === 'number' ? [normalizedShape] : normalizedShape.slice();
    this.eps = o.eps ?? 1e-5;
    this.elementwiseAffine = o.elementwiseAffine ?? true;
    this.registerParameter('weight', this.elementwiseAffine ? emptyParameter(this.normalizedShape, o) : null);
    this.registerParameter('bias', this.elementwiseAffine && (o.bias ?? true) ? emptyParameter(this.normalizedShape, o) : null);
    this.resetParameters();
  }
  resetParameters(): void {
    if (this.weight !== null) init.ones_(this.weight);
    if (this.bias !== null) init.zeros_(this.bias);
  }
  forward(x: Tensor): Tensor {
    return F.layerNorm(x, this.normalizedShape, { weight: this.weight, bias: this.bias, eps: this.eps });
  }
  override extraRepr(): string {
    return `(${this.normalizedShape.join(', ')}${this.normalizedShape.length === 1 ? ',' : ''}), eps=${pyNum(this.eps)}, elementwise_affine=${pyBool(this.elementwiseAffine)}`;
  }
}

/**
 * Group normalization (Wu & He 2018): channels of [N, C, ...] split into `numGroups` groups,
 * each normalized over its channels and spatial positions. `weight`/`bias` are [C].
 */
export class GroupNorm extends Module {
  readonly numGroups: number;
  readonly numChannels: number;
  readonly eps: number;
  readonly affine: boolean;
  declare weight: Parameter | null;
  declare bias: Parameter | null;

  constructor(numGroups: number, numChannels: number, o: { eps?: number; affine?: boolean } & FactoryOptions = {}) {
    super();
    if (!(numGroups >= 1) || numChannels % numGroups !== 0) throw new RangeError(`GroupNorm: numChannels (${numChannels}) must be divisible by numGroups (${numGroups})`);
    this.numGroups = numGroups;
    this.numChannels = numChannels;
    this.eps = o.eps ?? 1e-5;
    this.affine = o.affine ?? true;
    this.registerParameter('weight', this.affine ? emptyParameter([numChannels], o) : null);
    this.registerParameter('bias', this.affine ? emptyParameter([numChannels], o) : null);
    this.resetParameters();
  }
  resetParameters(): void {
    if (this.weight !== null) init.ones_(this.weight);
    if (this.bias !== null) init.zeros_(this.bias);
  }
  forward(x: Tensor): Tensor {
    return F.groupNorm(x, this.numGroups, { weight: this.weight, bias: this.bias, eps: this.eps });
  }
  override extraRepr(): string {
    return `${this.numGroups}, ${this.numChannels}, eps=${pyNum(this.eps)}, affine=${pyBool(this.affine)}`;
  }
}
