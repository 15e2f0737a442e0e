/** `Conv2d` and `ConvTranspose2d`. */
import type { Tensor } from '../torch/tensor.js';
import * as F from '../torch/functional.js';
import { Module } from './module.js';
import { Parameter, emptyParameter, type FactoryOptions } from './parameter.js';
import * as init from './init.js';

type IntOr2 = number | [number, number];
const pair = (v: IntOr2, what: string): [number, number] => {
  const p: [number, number] = Array.isArray(v) ? [v[0], v[1]] : [v, v];
  if (!p.every((n) => Number.isInteger(n) && n >= 0)) throw new TypeError(`${what} must be a non-negative integer or a pair of them, got ${JSON.stringify(v)}`);
  return p;
};
const tuple = (p: [number, number]): string => `(${p[0]}, ${p[1]})`;

/** PyTorch's `_ConvNd.reset_parameters`: kaiming uniform (a = √5) weight, bias U(±1/√fan_in). */
function resetConv(weight: Parameter, bias: Parameter | null): void {
  init.kaimingUniform_(weight, { a: Math.sqrt(5) });
  if (bias !== null) {
    const [fanIn] = init.calculateFanInAndFanOut(weight);
    if (fanIn !== 0) init.uniform_(bias, { a: -1 / Math.sqrt(fanIn), b: 1 / Math.sqrt(fanIn) });
  }
}

export type PaddingMode = 'zeros' | 'reflect' | 'replicate';

export interface Conv2dOptions extends FactoryOptions {
  stride?: IntOr2;
  /** Zero-padding on each side, or 'valid' (none) or 'same' (output size = input size; stride 1 only). */
  padding?: IntOr2 | 'same' | 'valid';
  dilation?: IntOr2;
  groups?: number;
  bias?: boolean;
  /** How padded pixels are filled: 'zeros' (default), 'reflect' or 'replicate'. */
  paddingMode?: PaddingMode;
}

/**
 * 2-d convolution (LeCun et al. 1998) over [N, Cin, H, W] (or unbatched [Cin, H, W]), giving
 * [N, Cout, Ho, Wo] with Ho = ⌊(H + 2·padding − dilation·(k − 1) − 1) / stride⌋ + 1.
 * `weight` [Cout, Cin/groups, kH, kW], `bias` [Cout].
 */
export class Conv2d extends Module {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number] | 'same' | 'valid';
  readonly dilation: [number, number];
  readonly groups: number;
  readonly paddingMode: PaddingMode;
  declare weight: Parameter;
  declare bias: Parameter | null;

  constructor(inChannels: number, outChannels: number, kernelSize: IntOr2, o: Conv2dOptions = {}) {
    super();
    this.inChannels = inChannels;
    this.outChannels = outChannels;
    this.kernelSize = pair(kernelSize, 'kernelSize');
    this.stride = pair(o.stride ?? 1, 'stride');
    const p = o.padding ?? 0;
    this.padding = typeof p === 'string' ? p : pair(p, 'padding');
    this.dilation = pair(o.dilation ?? 1, 'dilation');
    this.groups = o.groups ?? 1;
    this.paddingMode = o.paddingMode ?? 'zeros';
    if (!['zeros', 'reflect', 'replicate'].includes(this.paddingMode)) {
      throw new TypeError(`Conv2d: paddingMode must be 'zeros', 'reflect' or 'replicate', got '${String(this.paddingMode)}'`);
    }
    if (typeof p === 'string' && p !== 'same' && p !== 'valid') throw new TypeError(`Conv2d: padding must be a number, a pair, 'same' or 'valid', got '${p}'`);
    if (p === 'same' && this.stride.some((s) => s !== 1)) throw new TypeError("Conv2d: padding='same' is not supported for strided convolutions");
    if (!(this.groups >= 1) || inChannels % this.groups !== 0) throw new RangeError(`Conv2d: inChannels (${inChannels}) must be divisible by groups (${this.groups})`);
    if (outChannels % this.groups !== 0) throw new RangeError(`Conv2d: outChannels (${outChannels}) must be divisible by groups (${this.groups})`);
    this.registerParameter('weight', emptyParameter([outChannels, inChannels / this.groups, ...this.kernelSize], o));
    this.registerParameter('bias', (o.bias ?? true) ? emptyParameter([outChannels], o) : null);
    this.resetParameters();
  }

  resetParameters(): void {
    resetConv(this.weight, this.bias);
  }

  /** [left, right, top, bottom] padding for the non-zero padding modes. */
  private explicitPadding(): number[] {
    if (this.padding === 'valid') return [0, 0, 0, 0];
    if (this.padding === 'same') {
      const [th, tw] = [0, 1].map((i) => this.dilation[i]! * (this.kernelSize[i]! - 1));
      return [Math.floor(tw! / 2), tw! - Math.floor(tw! / 2), Math.floor(th! / 2), th! - Math.floor(th! / 2)];
    }
    const [ph, pw] = this.padding;
    return [pw, pw, ph, ph];
  }

  forward(x: Tensor): Tensor {
    const conv = { stride: this.stride, dilation: this.dilation, groups: this.groups };
    if (this.paddingMode === 'zeros') return F.conv2d(x, this.weight, this.bias, { ...conv, padding: this.padding });
    const padded = F.pad(x, this.explicitPadding(), { mode: this.paddingMode });
    const y = F.conv2d(padded, this.weight, this.bias, { ...conv, padding: 0 });
    padded.dispose();
    return y;
  }

  override extraRepr(): string {
    let s = `${this.inChannels}, ${this.outChannels}, kernel_size=${tuple(this.kernelSize)}, stride=${tuple(this.stride)}`;
    if (typeof this.padding === 'string') s += `, padding=${this.padding}`;
    else if (this.padding[0] !== 0 || this.padding[1] !== 0) s += `, padding=${tuple(this.padding)}`;
    if (this.dilation[0] !== 1 || this.dilation[1] !== 1) s += `, dilation=${tuple(this.dilation)}`;
    if (this.groups !== 1) s += `, groups=${this.groups}`;
    if (this.bias === null) s += ', bias=False';
    if (this.paddingMode !== 'zeros') s += `, padding_mode=${this.paddingMode}`;
    return s;
  }
}

export interface ConvTranspose2dOptions extends FactoryOptions {
  stride?: IntOr2;
  /** Removes dilation·(k − 1) − padding from each side of the full output. */
  padding?: IntOr2;
  /** Extra rows/columns on the bottom/right, to pick among output sizes a strided conv maps to the same input size. */
  outputPadding?: IntOr2;
  groups?: number;
  bias?: boolean;
  dilation?: IntOr2;
}

/**
 * Transposed 2-d convolution (the gradient of Conv2d with respect to its input; "deconvolution"),
 * [N, Cin, H, W] -> [N, Cout, Ho, Wo] with
 * Ho = (H − 1)·stride − 2·padding + dilation·(k − 1) + outputPadding + 1.
 * `weight` [Cin, Cout/groups, kH, kW], `bias` [Cout].
 */
export class ConvTranspose2d extends Module {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];
  readonly outputPadding: [number, number];
  readonly dilation: [number, number];
  readonly groups: number;
  declare weight: Parameter;
  declare bias: Parameter | null;

  constructor(inChannels: number, outChannels: number, kernelSize: IntOr2, o: ConvTranspose2dOptions = {}) {
    super();
    this.inChannels = inChannels;
    this.outChannels = outChannels;
    this.kernelSize = pair(kernelSize, 'kernelSize');
    this.stride = pair(o.stride ?? 1, 'stride');
    this.padding = pair(o.padding ?? 0, 'padding');
    this.outputPadding = pair(o.outputPadding ?? 0, 'outputPadding');
    this.dilation = pair(o.dilation ?? 1, 'dilation');
    this.groups = o.groups ?? 1;
    if (!(this.groups >= 1) || inChannels % this.groups !== 0) throw new RangeError(`ConvTranspose2d: inChannels (${inChannels}) must be divisible by groups (${this.groups})`);
    if (outChannels % this.groups !== 0) throw new RangeError(`ConvTranspose2d: outChannels (${outChannels}) must be divisible by groups (${this.groups})`);
    for (const i of [0, 1]) {
      if (this.outputPadding[i]! >= Math.max(this.stride[i]!, this.dilation[i]!)) {
        throw new RangeError(`ConvTranspose2d: outputPadding must be smaller than either stride or dilation, got outputPadding=${tuple(this.outputPadding)}`);
      }
    }
    this.registerParameter('weight', emptyParameter([inChannels, outChannels / this.groups, ...this.kernelSize], o));
    this.registerParameter('bias', (o.bias ?? true) ? emptyParameter([outChannels], o) : null);
    this.resetParameters();
  }

  resetParameters(): void {
    resetConv(this.weight, this.bias);
  }

  /** The output padding that gives `outputSize` ([Ho, Wo]), as PyTorch's `_output_padding`. */
  private outputPaddingFor(x: Tensor, outputSize: [number, number]): [number, number] {
    const res: number[] = [];
    for (const d of [0, 1]) {
      const inSize = x.size(x.ndim - 2 + d);
      const min = (inSize - 1) * this.stride[d]! - 2 * this.padding[d]! + this.dilation[d]! * (this.kernelSize[d]! - 1) + 1;
      const max = min + this.stride[d]! - 1;
      const want = outputSize[d]!;
      if (want < min || want > max) {
        throw new RangeError(`ConvTranspose2d: requested an output size of [${outputSize.join(', ')}], but valid sizes for dimension ${d} range from ${min} to ${max} (for an input of [${x.shape.slice(-2).join(', ')}])`);
      }
      res.push(want - min);
    }
    return [res[0]!, res[1]!];
  }

  /** `outputSize` ([Ho, Wo]) picks the output padding, as PyTorch's `forward(input, output_size)`. */
  forward(x: Tensor, outputSize?: [number, number]): Tensor {
    const outputPadding = outputSize === undefined ? this.outputPadding : this.outputPaddingFor(x, outputSize);
    return F.convTranspose2d(x, this.weight, this.bias, {
      stride: this.stride, padding: this.padding, outputPadding, groups: this.groups, dilation: this.dilation,
    });
  }

  override extraRepr(): string {
    let s = `${this.inChannels}, ${this.outChannels}, kernel_size=${tuple(this.kernelSize)}, stride=${tuple(this.stride)}`;
    if (this.padding[0] !== 0 || this.padding[1] !== 0) s += `, padding=${tuple(this.padding)}`;
    if (this.outputPadding[0] !== 0 || this.outputPadding[1] !== 0) s += `, output_padding=${tuple(this.outputPadding)}`;
    if (this.dilation[0] !== 1 || this.dilation[1] !== 1) s += `, dilation=${tuple(this.dilation)}`;
    if (this.groups !== 1) s += `, groups=${this.groups}`;
    if (this.bias === null) s += ', bias=False';
    return s;
  }
}
