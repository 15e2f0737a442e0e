/** `Dropout`. */
import type { Tensor } from '../torch/tensor.js';
import * as F from '../torch/functional.js';
import { Module } from './module.js';

/**
 * Dropout (Srivastava et al. 2014): in training mode zeroes each element with probability `p`
 * and scales the rest by 1/(1 − p); in eval mode the identity. Any shape.
 */
export class Dropout extends Module {
  readonly p: number;
  constructor(p = 0.5) {
    super();
    if (!(p >= 0 && p <= 1)) throw new RangeError(`Dropout: probability has to be between 0 and 1, but got ${p}`);
    this.p = p;
  }
  forward(x: Tensor): Tensor {
    return F.dropout(x, { p: this.p, training: this.training });
  }
  override extraRepr(): string {
    return `p=${this.p}, inplace=False`;
  }
}
