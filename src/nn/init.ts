/**
 * `torch.nn.init`: in-place initialisers with PyTorch's names (camelCase) and defaults.
 * Each fills its tensor without recording gradients and returns it. Optional arguments go in
 * a trailing options object: `normal_(w, { std: 0.02 })`, `kaimingNormal_(w, { mode: 'fan_out', nonlinearity: 'relu' })`.
 * Random draws use libtorch's generator, so `torch.manualSeed` makes them reproducible.
 */
import type { Tensor } from '../torch/tensor.js';
import { noGrad } from '../torch/autograd.js';
import { scope } from '../torch/scope.js';
import { empty, scalarTensor, where } from '../torch/creation.js';

export type Nonlinearity =
  | 'linear' | 'conv1d' | 'conv2d' | 'conv3d' | 'conv_transpose1d' | 'conv_transpose2d' | 'conv_transpose3d'
  | 'sigmoid' | 'tanh' | 'relu' | 'leaky_relu' | 'selu';
export type FanMode = 'fan_in' | 'fan_out';

/**
 * The recommended gain for a nonlinearity (PyTorch's table): 1 for linear, conv and sigmoid,
 * 5/3 for tanh, √2 for ReLU, √(2 / (1 + slope²)) for leaky ReLU (slope `param`, default 0.01),
 * 3/4 for SELU.
 */
export function calculateGain(nonlinearity: Nonlinearity, param?: number): number {
  switch (nonlinearity) {
    case 'linear': case 'conv1d': case 'conv2d': case 'conv3d':
    case 'conv_transpose1d': case 'conv_transpose2d': case 'conv_transpose3d': case 'sigmoid':
      return 1;
    case 'tanh':
      return 5 / 3;
    case 'relu':
      return Math.SQRT2;
    case 'leaky_relu': {
      const slope = param ?? 0.01;
      if (typeof slope !== 'number' || !Number.isFinite(slope)) throw new TypeError(`calculateGain: negative slope ${String(param)} is not a valid number`);
      return Math.sqrt(2 / (1 + slope * slope));
    }
    case 'selu':
      return 3 / 4;
    default:
      throw new TypeError(`calculateGain: unsupported nonlinearity '${String(nonlinearity)}'`);
  }
}

/**
 * Fan-in and fan-out of a weight, as PyTorch computes them: for a [out, in, ...kernel] tensor,
 * fan_in = in · ∏kernel and fan_out = out · ∏kernel. Needs at least 2 dimensions.
 */
export function calculateFanInAndFanOut(t: Tensor): [number, number] {
  const s = t.shape;
  if (s.length < 2) throw new RangeError(`fan in and fan out can not be computed for a tensor with fewer than 2 dimensions (shape [${s.join(', ')}])`);
  const receptive = s.slice(2).reduce((a, b) => a * b, 1);
  return [s[1]! * receptive, s[0]! * receptive];
}

function fan(t: Tensor, mode: FanMode): number {
  if (mode !== 'fan_in' && mode !== 'fan_out') throw new TypeError(`mode '${String(mode)}' not supported, use 'fan_in' or 'fan_out'`);
  const [fanIn, fanOut] = calculateFanInAndFanOut(t);
  return mode === 'fan_in' ? fanIn : fanOut;
}

const empty0 = (t: Tensor): boolean => t.numel() === 0;

/** Fills with U(a, b). */
export function uniform_(t: Tensor, o: { a?: number; b?: number } = {}): Tensor {
  noGrad(() => t.uniform_(o.a ?? 0, o.b ?? 1));
  return t;
}
/** Fills with N(mean, std²). */
export function normal_(t: Tensor, o: { mean?: number; std?: number } = {}): Tensor {
  noGrad(() => t.normal_(o.mean ?? 0, o.std ?? 1));
  return t;
}
export function constant_(t: Tensor, value: number): Tensor {
  noGrad(() => t.fill_(value));
  return t;
}
export const zeros_ = (t: Tensor): Tensor => constant_(t, 0);
export const ones_ = (t: Tensor): Tensor => constant_(t, 1);

/**
 * erf⁻¹ on a float64 tensor of values in (-1, 1): Giles' single-precision approximation
 * ("Approximating the erfinv function", 2010), refined by two Newton steps on erf.
 */
function erfinv(x: Tensor): Tensor {
  const w = x.neg().add(1).mul(x.add(1)).log().neg();
  const poly = (z: Tensor, cs: number[]): Tensor => {
    let p: Tensor = z.mul(0).add(cs[0]!);
    for (const c of cs.slice(1)) p = p.mul(z).add(c);
    return p;
  };
  const small = poly(w.sub(2.5), [2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087,
    -0.00125372503, -0.00417768164, 0.246640727, 1.50140941]);
  const large = poly(w.clampMin(5).sqrt().sub(3), [-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844,
    0.00573950773, -0.0076224613, 0.00943887047, 1.00167406, 2.83297682]);
  let y = where(w.lt(5), small, large).mul(x);
  const k = 2 / Math.sqrt(Math.PI);
  for (let i = 0; i < 2; i++) y = y.sub(y.erf().sub(x).div(y.square().neg().exp().mul(k)));
  return y;
}

/**
 * Fills with a normal N(mean, std²) truncated to [a, b] (absolute bounds, as PyTorch: the
 * default [-2, 2] is in value units, not standard deviations). Inverse-CDF sampling as
 * PyTorch's `trunc_normal_` (used by ViT/DeiT with std 0.02).
 */
export function truncNormal_(t: Tensor, o: { mean?: number; std?: number; a?: number; b?: number } = {}): Tensor {
  const mean = o.mean ?? 0, std = o.std ?? 1, a = o.a ?? -2, b = o.b ?? 2;
  if (!(a < b)) throw new RangeError(`truncNormal_: need a < b, got a=${a}, b=${b}`);
  if (empty0(t)) return t;
  noGrad(() => scope(() => {
    const cdf = (v: number): number => (1 + scalarTensor((v - mean) / std / Math.SQRT2, { dtype: 'float64' }).erf().item()) / 2;
    const [l, u] = [cdf(a), cdf(b)];
    const eps = 1e-15;
    const x = empty(t.shape, { dtype: 'float64', device: t.device }).uniform_(2 * l - 1, 2 * u - 1).clamp_({ min: -1 + eps, max: 1 - eps });
    const y = erfinv(x).mul(std * Math.SQRT2).add(mean).clamp({ min: a, max: b });
    t.copy_(y);
  }));
  return t;
}

/**
 * Xavier/Glorot uniform (Glorot & Bengio 2010): U(-r, r) with
 * r = gain · √(6 / (fan_in + fan_out)).
 */
export function xavierUniform_(t: Tensor, o: { gain?: number } = {}): Tensor {
  const [fanIn, fanOut] = calculateFanInAndFanOut(t);
  const std = (o.gain ?? 1) * Math.sqrt(2 / (fanIn + fanOut));
  const r = Math.sqrt(3) * std;
  return uniform_(t, { a: -r, b: r });
}
/** Xavier/Glorot normal: N(0, std²) with std = gain · √(2 / (fan_in + fan_out)). */
export function xavierNormal_(t: Tensor, o: { gain?: number } = {}): Tensor {
  const [fanIn, fanOut] = calculateFanInAndFanOut(t);
  return normal_(t, { mean: 0, std: (o.gain ?? 1) * Math.sqrt(2 / (fanIn + fanOut)) });
}

export interface KaimingOptions {
  /** Negative slope of the rectifier after this layer (leaky_relu only). Default 0. */
  a?: number;
  /** 'fan_in' (default) preserves the forward pass's variance, 'fan_out' the backward pass's. */
  mode?: FanMode;
  /** Default 'leaky_relu' (with a = 0 that is ReLU's gain, √2). */
  nonlinearity?: Nonlinearity;
}
/**
 * Kaiming/He uniform (He et al. 2015, "Delving deep into rectifiers"): U(-r, r) with
 * r = gain · √(3 / fan), gain = calculateGain(nonlinearity, a).
 */
export function kaimingUniform_(t: Tensor, o: KaimingOptions = {}): Tensor {
  if (empty0(t)) return t;
  const std = calculateGain(o.nonlinearity ?? 'leaky_relu', o.a ?? 0) / Math.sqrt(fan(t, o.mode ?? 'fan_in'));
  const r = Math.sqrt(3) * std;
  return uniform_(t, { a: -r, b: r });
}
/** Kaiming/He normal: N(0, std²) with std = gain / √fan. */
export function kaimingNormal_(t: Tensor, o: KaimingOptions = {}): Tensor {
  if (empty0(t)) return t;
  const std = calculateGain(o.nonlinearity ?? 'leaky_relu', o.a ?? 0) / Math.sqrt(fan(t, o.mode ?? 'fan_in'));
  return normal_(t, { mean: 0, std });
}
