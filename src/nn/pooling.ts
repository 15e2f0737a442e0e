/** `MaxPool2d`, `AvgPool2d`, `AdaptiveAvgPool2d` over [N, C, H, W] (or unbatched [C, H, W]). */
import type { Tensor } from '../torch/tensor.js';
import * as F from '../torch/functional.js';
import { Module } from './module.js';

type IntOr2 = number | [number, number];
const show = (v: IntOr2): string => (Array.isArray(v) ? `(${v.join(', ')})` : String(v));

/** Maximum over kH×kW windows; `stride` defaults to the kernel size. */
export class MaxPool2d extends Module {
  readonly kernelSize: IntOr2;
  readonly stride: IntOr2;
  readonly padding: IntOr2;
  readonly dilation: IntOr2;
  readonly ceilMode: boolean;
  constructor(kernelSize: IntOr2, o: { stride?: IntOr2 | null; padding?: IntOr2; dilation?: IntOr2; ceilMode?: boolean } = {}) {
    super();
    this.kernelSize = kernelSize;
    this.stride = o.stride ?? kernelSize;
    this.padding = o.padding ?? 0;
    this.dilation = o.dilation ?? 1;
    this.ceilMode = o.ceilMode ?? false;
  }
  forward(x: Tensor): Tensor {
    return F.maxPool2d(x, this.kernelSize, { stride: this.stride, padding: this.padding, dilation: this.dilation, ceilMode: this.ceilMode });
  }
  override extraRepr(): string {
    return `kernel_size=${show(this.kernelSize)}, stride=${show(this.stride)}, padding=${show(this.padding)}, dilation=${show(this.dilation)}, ceil_mode=${this.ceilMode ? 'True' : 'False'}`;
  }
}

/** Mean over kH×kW windows; `stride` defaults to the kernel size; zero padding counts in the mean unless `countIncludePad: false`. */
export class AvgPool2d extends Module {
  readonly kernelSize: IntOr2;
  readonly stride: IntOr2;
  readonly padding: IntOr2;
  readonly ceilMode: boolean;
  readonly countIncludePad: boolean;
  readonly divisorOverride: number | null;
  constructor(kernelSize: IntOr2, o: { stride?: IntOr2 | null; padding?: IntOr2; ceilMode?: boolean; countIncludePad?: boolean; divisorOverride?: number | null } = {}) {
    super();
    this.kernelSize = kernelSize;
    this.stride = o.stride ?? kernelSize;
    this.padding = o.padding ?? 0;
    this.ceilMode = o.ceilMode ?? false;
    this.countIncludePad = o.countIncludePad ?? true;
    this.divisorOverride = o.divisorOverride ?? null;
  }
  forward(x: Tensor): Tensor {
    return F.avgPool2d(x, this.kernelSize, { stride: this.stride, padding: this.padding, ceilMode: this.ceilMode,
      countIncludePad: this.countIncludePad, divisorOverride: this.divisorOverride });
  }
  override extraRepr(): string {
    return `kernel_size=${show(this.kernelSize)}, stride=${show(this.stride)}, padding=${show(this.padding)}`;
  }
}

/**
 * Averages to a fixed [Ho, Wo] output whatever the input size (`AdaptiveAvgPool2d(1)` is
 * global average pooling). A null entry keeps that input dimension.
 */
export class AdaptiveAvgPool2d extends Module {
  readonly outputSize: number | [number | null, number | null];
  constructor(outputSize: number | [number | null, number | null]) {
    super();
    this.outputSize = outputSize;
  }
  forward(x: Tensor): Tensor {
    const o = this.outputSize;
    const size: [number, number] = typeof o === 'number' ? [o, o] : [o[0] ?? x.size(-2), o[1] ?? x.size(-1)];
    return F.adaptiveAvgPool2d(x, size);
  }
  override extraRepr(): string {
    const o = this.outputSize;
    return `output_size=${typeof o === 'number' ? o : `(${o.map((v) => (v === null ? 'None' : v)).join(', ')})`}`;
  }
}
