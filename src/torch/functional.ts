/**
 * `torch.nn.functional`, with PyTorch's names in camelCase. Tensors are positional; what
 * Python passes by keyword goes in one trailing options object, with PyTorch's defaults:
 * `F.conv2d(x, w, b, { stride: 2, padding: 1 })`, `F.crossEntropy(x, t, { labelSmoothing: 0.1 })`.
 */
import { N } from './native.js';
import { Tensor, wrap, opt, type Shape } from './tensor.js';
import type { DType } from './dtype.js';
import { scope } from './scope.js';

type IntOr2 = number | [number, number];
export type Reduction = 'none' | 'mean' | 'sum';
const REDUCTION: Record<Reduction, number> = { none: 0, mean: 1, sum: 2 };
function reduction(r: Reduction | undefined): number {
  const v = REDUCTION[r ?? 'mean'];
  if (v === undefined) throw new TypeError(`reduction must be 'none', 'mean' or 'sum', got '${String(r)}'`);
  return v;
}
const pair = (v: IntOr2): number[] => (Array.isArray(v) ? v : [v, v]);

// ---- convolution and linear -------------------------------------------------------------------
export interface ConvOptions { stride?: IntOr2; padding?: IntOr2 | 'same' | 'valid'; dilation?: IntOr2; groups?: number }
/** 2-d convolution. x: [N, Cin, H, W], weight: [Cout, Cin/groups, kH, kW], bias: [Cout]. */
export function conv2d(x: Tensor, weight: Tensor, bias: Tensor | null = null, o: ConvOptions = {}): Tensor {
  const p = o.padding ?? 0;
  if (typeof p === 'string') return wrap(N.conv2dPad(x.handle, weight.handle, opt(bias), pair(o.stride ?? 1), p, pair(o.dilation ?? 1), o.groups ?? 1));
  return wrap(N.conv2d(x.handle, weight.handle, opt(bias), pair(o.stride ?? 1), pair(p), pair(o.dilation ?? 1), o.groups ?? 1));
}
/** 1-d convolution. x: [N, Cin, L], weight: [Cout, Cin/groups, k]. */
export function conv1d(x: Tensor, weight: Tensor, bias: Tensor | null = null, o: { stride?: number; padding?: number; dilation?: number; groups?: number } = {}): Tensor {
  return wrap(N.conv1d(x.handle, weight.handle, opt(bias), [o.stride ?? 1], [o.padding ?? 0], [o.dilation ?? 1], o.groups ?? 1));
}
/** Transposed 2-d convolution. weight: [Cin, Cout/groups, kH, kW]. */
export function convTranspose2d(x: Tensor, weight: Tensor, bias: Tensor | null = null,
  o: { stride?: IntOr2; padding?: IntOr2; outputPadding?: IntOr2; groups?: number; dilation?: IntOr2 } = {}): Tensor {
  return wrap(N.convTranspose2d(x.handle, weight.handle, opt(bias), pair(o.stride ?? 1), pair(o.padding ?? 0),
    pair(o.outputPadding ?? 0), o.groups ?? 1, pair(o.dilation ?? 1)));
}
/** y = x Wᵀ + b. x: [..., in], weight: [out, in], bias: [out]. */
export const linear = (x: Tensor, weight: Tensor, bias: Tensor | null = null): Tensor => wrap(N.linear(x.handle, weight.handle, opt(bias)));

// ---- normalisation -----------------------------------------------------------------------------
/** Batch norm (Ioffe & Szegedy 2015). Updates running stats in place when training. */
export function batchNorm(x: Tensor, runningMean: Tensor | null, runningVar: Tensor | null,
  o: { weight?: Tensor | null; bias?: Tensor | null; training?: boolean; momentum?: number; eps?: number } = {}): Tensor {
  return wrap(N.batchNorm(x.handle, opt(o.weight), opt(o.bias), opt(runningMean), opt(runningVar), o.training ?? false, o.momentum ?? 0.1, o.eps ?? 1e-5));
}
/** Layer norm (Ba et al. 2016) over the trailing `normalizedShape` dimensions. */
export function layerNorm(x: Tensor, normalizedShape: Shape, o: { weight?: Tensor | null; bias?: Tensor | null; eps?: number } = {}): Tensor {
  return wrap(N.layerNorm(x.handle, normalizedShape, opt(o.weight), opt(o.bias), o.eps ?? 1e-5));
}
/** Group norm (Wu & He 2018). x: [N, C, ...]. */
export function groupNorm(x: Tensor, numGroups: number, o: { weight?: Tensor | null; bias?: Tensor | null; eps?: number } = {}): Tensor {
  return wrap(N.groupNorm(x.handle, numGroups, opt(o.weight), opt(o.bias), o.eps ?? 1e-5));
}
/** x / max(‖x‖_p, eps) along `dim` (default 1), as F.normalize. */
export function normalize(x: Tensor, o: { p?: number; dim?: number; eps?: number } = {}): Tensor {
  const n = x.norm(o.p ?? 2, o.dim ?? 1, { keepdim: true });
  const d = n.clampMin(o.eps ?? 1e-12);
  const out = x.div(d);
  n.dispose();
  d.dispose();
  return out;
}

// ---- activations -------------------------------------------------------------------------------
export const relu = (x: Tensor): Tensor => x.relu();
/** GELU (Hendrycks & Gimpel 2016); `approximate: 'tanh'` for the tanh form. */
export const gelu = (x: Tensor, o: { approximate?: 'none' | 'tanh' } = {}): Tensor => wrap(N.gelu(x.handle, o.approximate ?? 'none'));
/** CLIP's QuickGELU: x·σ(1.702x). */
export function quickGelu(x: Tensor): Tensor {
  const s = x.mul(1.702);
  const g = s.sigmoid();
  const out = x.mul(g);
  s.dispose();
  g.dispose();
  return out;
}
export const silu = (x: Tensor): Tensor => wrap(N.silu(x.handle));
export const mish = (x: Tensor): Tensor => wrap(N.mish(x.handle));
export const sigmoid = (x: Tensor): Tensor => x.sigmoid();
export const tanh = (x: Tensor): Tensor => x.tanh();
export const leakyRelu = (x: Tensor, o: { negativeSlope?: number } = {}): Tensor => wrap(N.leakyRelu(x.handle, o.negativeSlope ?? 0.01));
export const elu = (x: Tensor, o: { alpha?: number } = {}): Tensor => wrap(N.elu(x.handle, o.alpha ?? 1));
export const softplus = (x: Tensor, o: { beta?: number; threshold?: number } = {}): Tensor => wrap(N.softplus(x.handle, o.beta ?? 1, o.threshold ?? 20));
export const hardtanh = (x: Tensor, o: { minVal?: number; maxVal?: number } = {}): Tensor => wrap(N.hardtanh(x.handle, o.minVal ?? -1, o.maxVal ?? 1));
export const softmax = (x: Tensor, dim: number, o: { dtype?: DType } = {}): Tensor => wrap(N.softmax(x.handle, dim, o.dtype ?? null));
export const logSoftmax = (x: Tensor, dim: number, o: { dtype?: DType } = {}): Tensor => wrap(N.logSoftmax(x.handle, dim, o.dtype ?? null));

// ---- losses --------------------------------------------------------------------------------------
/**
 * Cross-entropy between logits [N, C] (or [N, C, ...]) and class indices [N] (int64) or class
 * probabilities [N, C]. `labelSmoothing` as in Szegedy et al. 2016.
 */
export function crossEntropy(input: Tensor, target: Tensor,
  o: { weight?: Tensor | null; ignoreIndex?: number; reduction?: Reduction; labelSmoothing?: number } = {}): Tensor {
  return wrap(N.crossEntropy(input.handle, target.handle, opt(o.weight), reduction(o.reduction), o.ignoreIndex ?? -100, o.labelSmoothing ?? 0));
}
export function nllLoss(input: Tensor, target: Tensor, o: { weight?: Tensor | null; ignoreIndex?: number; reduction?: Reduction } = {}): Tensor {
  return wrap(N.nllLoss(input.handle, target.handle, opt(o.weight), reduction(o.reduction), o.ignoreIndex ?? -100));
}
export const mseLoss = (input: Tensor, target: Tensor, o: { reduction?: Reduction } = {}): Tensor =>
  wrap(N.mseLoss(input.handle, target.handle, reduction(o.reduction)));
export const l1Loss = (input: Tensor, target: Tensor, o: { reduction?: Reduction } = {}): Tensor =>
  wrap(N.l1Loss(input.handle, target.handle, reduction(o.reduction)));
export const smoothL1Loss = (input: Tensor, target: Tensor, o: { reduction?: Reduction; beta?: number } = {}): Tensor =>
  wrap(N.smoothL1Loss(input.handle, target.handle, reduction(o.reduction), o.beta ?? 1));
export const binaryCrossEntropyWithLogits = (input: Tensor, target: Tensor,
  o: { weight?: Tensor | null; posWeight?: Tensor | null; reduction?: Reduction } = {}): Tensor =>
  wrap(N.binaryCrossEntropyWithLogits(input.handle, target.handle, opt(o.weight), opt(o.posWeight), reduction(o.reduction)));
export const klDiv = (input: Tensor, target: Tensor, o: { reduction?: Reduction | 'batchmean'; logTarget?: boolean } = {}): Tensor => {
  if (o.reduction === 'batchmean') {
    const s = wrap(N.klDiv(input.handle, target.handle, REDUCTION.sum, o.logTarget ?? false));
    const r = s.div(input.size(0));
    s.dispose();
    return r;
  }
  return wrap(N.klDiv(input.handle, target.handle, reduction(o.reduction), o.logTarget ?? false));
};

// ---- regularisation, pooling, resampling ----------------------------------------------------------
export const dropout = (x: Tensor, o: { p?: number; training?: boolean } = {}): Tensor => wrap(N.dropout(x.handle, o.p ?? 0.5, o.training ?? true));
export function maxPool2d(x: Tensor, kernelSize: IntOr2, o: { stride?: IntOr2 | null; padding?: IntOr2; dilation?: IntOr2; ceilMode?: boolean } = {}): Tensor {
  return wrap(N.maxPool2d(x.handle, pair(kernelSize), pair(o.stride ?? kernelSize), pair(o.padding ?? 0), pair(o.dilation ?? 1), o.ceilMode ?? false));
}
export function avgPool2d(x: Tensor, kernelSize: IntOr2,
  o: { stride?: IntOr2 | null; padding?: IntOr2; ceilMode?: boolean; countIncludePad?: boolean; divisorOverride?: number | null } = {}): Tensor {
  return wrap(N.avgPool2d(x.handle, pair(kernelSize), pair(o.stride ?? kernelSize), pair(o.padding ?? 0), o.ceilMode ?? false,
    o.countIncludePad ?? true, o.divisorOverride ?? null));
}
export const adaptiveAvgPool1d = (x: Tensor, outputSize: number): Tensor => wrap(N.adaptiveAvgPool1d(x.handle, [outputSize]));
export const adaptiveAvgPool2d = (x: Tensor, outputSize: IntOr2): Tensor => wrap(N.adaptiveAvgPool2d(x.handle, pair(outputSize)));
export function adaptiveMaxPool2d(x: Tensor, outputSize: IntOr2): Tensor {
  const [v, i] = N.adaptiveMaxPool2d(x.handle, pair(outputSize));
  wrap(i).dispose();
  return wrap(v);
}

/**
 * Resizes [N, C, H, W] images, as F.interpolate: `size` or `scaleFactor`; modes 'nearest',
 * 'bilinear', 'bicubic'; `antialias` for downsampling with the bilinear/bicubic filters.
 */
export function interpolate(x: Tensor, o: { size?: IntOr2; scaleFactor?: number | [number, number]; mode?: 'nearest' | 'bilinear' | 'bicubic';
  alignCorners?: boolean; antialias?: boolean }): Tensor {
  const mode = o.mode ?? 'nearest';
  const [h, w] = [x.size(-2), x.size(-1)];
  let size: number[];
  let scales: [number | null, number | null] = [null, null];
  if (o.size !== undefined) size = pair(o.size);
  else if (o.scaleFactor !== undefined) {
    const s = Array.isArray(o.scaleFactor) ? o.scaleFactor : [o.scaleFactor, o.scaleFactor];
    size = [Math.floor(h * s[0]!), Math.floor(w * s[1]!)];
    scales = [s[0]!, s[1]!];
  } else throw new TypeError('interpolate: pass size or scaleFactor');
  if (mode === 'nearest') {
    if (o.alignCorners !== undefined) throw new TypeError("interpolate: alignCorners only applies to 'bilinear' and 'bicubic'");
    return wrap(N.upsampleNearest2d(x.handle, size, scales[0], scales[1]));
  }
  const ac = o.alignCorners ?? false;
  const op = mode === 'bilinear' ? (o.antialias ? 'upsampleBilinear2dAA' : 'upsampleBilinear2d') : mode === 'bicubic' ? (o.antialias ? 'upsampleBicubic2dAA' : 'upsampleBicubic2d') : null;
  if (op === null) throw new TypeError(`interpolate: unknown mode '${String(mode)}'; use 'nearest', 'bilinear' or 'bicubic'`);
  return wrap(N[op](x.handle, size, ac, scales[0], scales[1]));
}

const GRID_MODE = { bilinear: 0, nearest: 1, bicubic: 2 } as const;
const GRID_PAD = { zeros: 0, border: 1, reflection: 2 } as const;
/** Samples `input` [N, C, H, W] at `grid` [N, Ho, Wo, 2] (x, y in [-1, 1]), as F.grid_sample. */
export function gridSample(input: Tensor, grid: Tensor,
  o: { mode?: keyof typeof GRID_MODE; paddingMode?: keyof typeof GRID_PAD; alignCorners?: boolean } = {}): Tensor {
  return wrap(N.gridSampler(input.handle, grid.handle, GRID_MODE[o.mode ?? 'bilinear'], GRID_PAD[o.paddingMode ?? 'zeros'], o.alignCorners ?? false));
}
/** Sampling grid [N, H, W, 2] for affine matrices `theta` [N, 2, 3], as F.affine_grid. */
export const affineGrid = (theta: Tensor, size: Shape, o: { alignCorners?: boolean } = {}): Tensor =>
  wrap(N.affineGrid(theta.handle, size, o.alignCorners ?? false));

// ---- embeddings and similarity ----------------------------------------------------------------------
export const embedding = (input: Tensor, weight: Tensor, o: { paddingIdx?: number | null } = {}): Tensor =>
  wrap(N.embedding(weight.handle, input.handle, o.paddingIdx ?? -1, false, false));
export const cosineSimilarity = (x1: Tensor, x2: Tensor, o: { dim?: number; eps?: number } = {}): Tensor =>
  wrap(N.cosineSimilarity(x1.handle, x2.handle, o.dim ?? 1, o.eps ?? 1e-8));
export const oneHot = (x: Tensor, numClasses = -1): Tensor => wrap(N.oneHot(x.handle, numClasses));
/** Pads the last dimensions: `pad` = [left, right, top, bottom, ...] as F.pad. */
export function pad(x: Tensor, padding: number[], o: { mode?: 'constant' | 'reflect' | 'replicate'; value?: number } = {}): Tensor {
  const mode = o.mode ?? 'constant';
  if (mode === 'constant') return wrap(N.constantPad(x.handle, padding, o.value ?? 0));
  const dims = padding.length / 2;
  if (dims !== 1 && dims !== 2) throw new TypeError(`pad: mode '${mode}' supports 1-d and 2-d padding (2 or 4 values), got ${padding.length}`);
  const name = `${mode === 'reflect' ? 'reflectionPad' : 'replicationPad'}${dims}d` as const;
  return wrap(N[name](x.handle, padding));
}
export const pixelShuffle = (x: Tensor, upscaleFactor: number): Tensor => wrap(N.pixelShuffle(x.handle, upscaleFactor));

/**
 * softmax(q kᵀ / √d + mask) v, as F.scaled_dot_product_attention (Vaswani et al. 2017, eq. 1).
 * q: [..., L, d], k: [..., S, d], v: [..., S, dv]; `attnMask` [L, S] (or broadcastable) is
 * additive (float) or a bool mask where true means "may attend"; `isCausal` masks j > i.
 */
export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor,
  o: { attnMask?: Tensor | null; dropoutP?: number; isCausal?: boolean; scale?: number; training?: boolean } = {}): Tensor {
  return scope(() => {
    const scale = o.scale ?? 1 / Math.sqrt(q.size(-1));
    let scores = q.mul(scale).matmul(k.transpose(-2, -1));
    const apply = (m: Tensor): Tensor => (m.dtype === 'bool' ? scores.maskedFill(m.logicalNot(), -Infinity) : scores.add(m));
    if (o.isCausal) scores = apply(wrap(N.ones([q.size(-2), k.size(-2)], 'bool')).tril());
    if (o.attnMask) scores = apply(o.attnMask);
    let attn = softmax(scores, -1);
    if ((o.dropoutP ?? 0) > 0 && (o.training ?? true)) attn = dropout(attn, { p: o.dropoutP, training: true });
    return attn.matmul(v);
  });
}
