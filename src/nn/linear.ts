/** `Linear`, `Identity`, `Flatten`, `Unflatten`. */
import type { Tensor } from '../torch/tensor.js';
import * as F from '../torch/functional.js';
import { Module } from './module.js';
import { Parameter, emptyParameter, type FactoryOptions } from './parameter.js';
import * as init from './init.js';

/**
 * y = x Wᵀ + b. Input [..., inFeatures], output [..., outFeatures].
 * `weight` [outFeatures, inFeatures] and `bias` [outFeatures] start as PyTorch's: kaiming
 * uniform with a = √5, i.e. U(-1/√inFeatures, 1/√inFeatures), for both.
 */
export class Linear extends Module {
  readonly inFeatures: number;
  readonly outFeatures: number;
  declare weight: Parameter;
  declare bias: Parameter | null;

  constructor(inFeatures: number, outFeatures: number, o: { bias?: boolean } & FactoryOptions = {}) {
    super();
    this.inFeatures = inFeatures;
    this.outFeatures = outFeatures;
    this.registerParameter('weight', emptyParameter([outFeatures, inFeatures], o));
    this.registerParameter('bias', (o.bias ?? true) ? emptyParameter([outFeatures], o) : null);
    this.resetParameters();
  }

  resetParameters(): void {
    init.kaimingUniform_(this.weight, { a: Math.sqrt(5) });
    if (this.bias !== null) {
      const [fanIn] = init.calculateFanInAndFanOut(this.weight);
      const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
      init.uniform_(this.bias, { a: -bound, b: bound });
    }
  }

  forward(x: Tensor): Tensor {
    return F.linear(x, this.weight, this.bias);
  }
  override extraRepr(): string {
    return `in_features=${this.inFeatures}, out_features=${this.outFeatures}, bias=${this.bias !== null ? 'True' : 'False'}`;
  }
}

/** Returns its input unchanged (a placeholder, e.g. a removed classifier head). */
export class Identity extends Module {
  forward(x: Tensor): Tensor {
    return x;
  }
}

/** Flattens dimensions `startDim..endDim` (default 1..-1): [N, C, H, W] -> [N, C·H·W]. */
export class Flatten extends Module {
  constructor(readonly startDim = 1, readonly endDim = -1) {
    super();
  }
  forward(x: Tensor): Tensor {
    return x.flatten(this.startDim, this.endDim);
  }
  override extraRepr(): string {
    return `start_dim=${this.startDim}, end_dim=${this.endDim}`;
  }
}

/** Expands dimension `dim` into `sizes`: Unflatten(1, [C, H, W]) maps [N, C·H·W] -> [N, C, H, W]. */
export class Unflatten extends Module {
  constructor(readonly dim: number, readonly unflattenedSize: number[]) {
    super();
  }
  forward(x: Tensor): Tensor {
    return x.unflatten(this.dim, this.unflattenedSize);
  }
  override extraRepr(): string {
    return `dim=${this.dim}, unflattened_size=(${this.unflattenedSize.join(', ')})`;
  }
}
