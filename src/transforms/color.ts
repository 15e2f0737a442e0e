/**
 * Colour augmentations on batches `[N, C, H, W]` in [0, 1], C = 1 or 3: colour jitter
 * (brightness, contrast, saturation, hue), random grayscale, solarization, and the batched
 * RGB ↔ HSV conversions they need (normalisation is in `normalize.ts`). Each op follows torchvision's tensor
 * functional (`adjust_brightness`, ...) including the clamp to [0, 1] after each step.
 */
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { RandomAugmentation, selectRows, type Selection } from './augmentation.js';
import { perSample, range } from './core.js';

/** ITU-R BT.601-2 luma weights (as PIL's `convert('L')`; torchvision's tensor path uses 0.2989). */
export const LUMA_WEIGHTS = [0.299, 0.587, 0.114] as const;

/**
 * ITU-R 601-2 luma `L = 0.299 R + 0.587 G + 0.114 B`: `[N, 3, H, W]` → `[N, 1, H, W]`
 * (`[N, 1, H, W]` input is returned as an alias).
 */
export function rgbToGrayscale(x: Tensor): Tensor {
  if (x.size(1) === 1) return x.alias();
  if (x.size(1) !== 3) throw new TypeError(`rgbToGrayscale: expected 1 or 3 channels, got ${x.size(1)}`);
  return torch.scope(() =>
    x.narrow(1, 0, 1).mul(LUMA_WEIGHTS[0]).add_(x.narrow(1, 1, 1), { alpha: LUMA_WEIGHTS[1] }).add_(x.narrow(1, 2, 1), { alpha: LUMA_WEIGHTS[2] }));
}

/** Per-image mean luma, `[N, C, H, W]` → `[N, 1, 1, 1]` (the contrast anchor), without building the gray image. */
function meanLuma(x: Tensor): Tensor {
  const n = x.size(0);
  if (x.size(1) === 1) return x.mean([1, 2, 3], { keepdim: true });
  const means = x.mean([2, 3]); // [N, 3]
  const w = torch.tensor([...LUMA_WEIGHTS], { shape: [3, 1] }).to({ dtype: x.dtype, device: x.device });
  return means.matmul(w).view([n, 1, 1, 1]);
}

/**
 * RGB → HSV, batched: `[N, 3, H, W]` → `[N, 3, H, W]` with channels (hue in [0, 1), saturation,
 * value), as torchvision's `_rgb2hsv` (hue 0 for gray pixels).
 */
export function rgbToHsv(x: Tensor): Tensor {
  return torch.scope(() => {
    const { v, c, h6 } = hueParts(x);
    const s = c.div(torch.where(v.eq(0), 1, v));
    return torch.cat([h6.remainder(6).div_(6), s, v], 1);
  });
}

/** HSV → RGB, batched: `[N, 3, H, W]` (hue in [0, 1)) → `[N, 3, H, W]`, inverse of `rgbToHsv`. */
export function hsvToRgb(hsv: Tensor): Tensor {
  return torch.scope(() => {
    const v = hsv.narrow(1, 2, 1);
    const c = hsv.narrow(1, 1, 1).mul(v);
    const h6 = hsv.narrow(1, 0, 1).remainder(1).mul_(6);
    return fromHue(h6, v, c, hueAnchors(new Float32Array(1), hsv));
  });
}

/**
 * Value (max channel), min channel, chroma c = max − min and hue×6 `h6` ∈ [0, 6] of an RGB
 * batch `[N, 3, H, W]`; each result `[N, 1, H, W]`.
 *
 * Branch-free (`torch.where` measured ~10× slower than arithmetic on the CPU): the hexagonal
 * hue is picked by the MIN channel, h·c = c + g − r if B is the min, 3c + b − g if R is,
 * 5c + r − b if G is (torchvision's max-channel formulas mod 6, ties included), with 0/1
 * selectors from `sign(channel − min)`. Gray pixels (c = 0) get h = 0.
 */
function hueParts(x: Tensor): { v: Tensor; m: Tensor; c: Tensor; h6: Tensor } {
  // Intermediates are disposed as soon as they are used: fewer live buffers, hotter memory.
  const v = x.amax(1, { keepdim: true });
  const m = x.amin(1, { keepdim: true });
  const c = v.sub(m);
  const [r, g, b] = [x.narrow(1, 0, 1), x.narrow(1, 1, 1), x.narrow(1, 2, 1)];
  const dB = b.sub(m);
  const sB = dB.sign(); // 0 where B is the min, else 1
  dB.dispose();
  const dR = r.sub(m);
  const zG = dR.sign().mul_(sB); // 1 where neither B nor R is the min
  dR.dispose();
  // h·c = A + sB·(Bv − A) + zG·(Cv − Bv), A = c + g − r, Bv − A = 2c + S − 3g, Cv − Bv = 2c + S − 3b (S = r + g + b).
  const base = r.add(g).add_(b).add_(c, { alpha: 2 });
  const d1 = base.sub(g, { alpha: 3 });
  const hc = c.add(g).sub_(r).addcmul_(sB, d1).addcmul_(zG, base.sub_(b, { alpha: 3 }));
  for (const t of [sB, zG, base, d1]) t.dispose();
  const cs = c.clampMin(1e-12);
  const h6 = hc.div_(cs);
  cs.dispose();
  return { v, m, c, h6 };
}

/**
 * Per-sample anchors `[N, 3, 1, 1]` for `fromHue`: channel k of the hue-rotated image is
 * v − c·clamp(d_k − 1, 0, 1) where d_k is the circular distance (period 6) from h6 + 6·shift
 * to a_k = 3, 5, 1 for R, G, B (torchvision's `_hsv2rgb` sectors, in closed form). Moving the
 * anchors by −6·shift instead of the hue needs no per-pixel modulo: b_k = (a_k − 6·shift) mod 6.
 */
function hueAnchors(shift: Float32Array, like: Tensor): Tensor {
  const n = shift.length;
  const b = new Float32Array(n * 3);
  for (let i = 0; i < n; i++) {
    [3, 5, 1].forEach((a, k) => {
      const t = (a - 6 * shift[i]!) % 6;
      b[i * 3 + k] = t < 0 ? t + 6 : t;
    });
  }
  return torch.tensor(b, { shape: [n, 3, 1, 1] }).to({ dtype: like.dtype, device: like.device });
}

/**
 * RGB from hue×6 `h6` ∈ [0, 6] `[N, 1, H, W]`, value `v`, chroma `c` and anchors `b` (see
 * `hueAnchors`). With h6, b ∈ [0, 6] the circular distance from h6 to b is 3 − T with
 * T = ||h6 − b| − 3|, so channel = v − c·clamp(T − 1, 0, 1) = (v + c) − c·clamp(T, 1, 2):
 * 7 passes over the 3-channel batch, no per-pixel modulo.
 */
function fromHue(h6: Tensor, v: Tensor, c: Tensor, b: Tensor): Tensor {
  const w = h6.sub(b);
  const e = w.abs();
  w.dispose();
  const t = e.sub_(3).abs();
  e.dispose();
  const negC = c.neg();
  const top = v.add(c);
  const out = t.clamp_({ min: 1, max: 2 }).mul_(negC).add_(top);
  negC.dispose();
  top.dispose();
  return out;
}

/**
 * Rotates hue by `shift` turns (a number, or one per sample as a Float32Array) in HSV space,
 * as torchvision's `adjust_hue`: RGB → HSV, h ← (h + shift) mod 1, HSV → RGB.
 * `[N, 3, H, W]` → same; an identity on 1 channel.
 */
export function adjustHue(x: Tensor, shift: Float32Array | number): Tensor {
  if (x.size(1) === 1) return x.alias();
  const n = x.size(0);
  const per = typeof shift === 'number' ? new Float32Array(n).fill(shift) : shift;
  if (per.length !== n) throw new RangeError(`adjustHue: ${per.length} shifts for a batch of ${n}`);
  return torch.scope(() => {
    const { v, c, h6, m } = hueParts(x);
    m.dispose();
    return fromHue(h6, v, c, hueAnchors(per, x));
  });
}

/** x·f, clamped to [0, 1] (torchvision `adjust_brightness`). `f`: number or `[N, 1, 1, 1]`. */
export function adjustBrightness(x: Tensor, f: Tensor | number): Tensor {
  return torch.scope(() => brightness(x, f, false));
}

/** Blend with the per-image mean luma: f·x + (1 − f)·mean, clamped (torchvision `adjust_contrast`). */
export function adjustContrast(x: Tensor, f: Tensor | number): Tensor {
  return torch.scope(() => contrast(x, f, false));
}

/** Blend with the grayscale image: f·x + (1 − f)·gray, clamped (torchvision `adjust_saturation`). Identity on 1 channel. */
export function adjustSaturation(x: Tensor, f: Tensor | number): Tensor {
  if (x.size(1) === 1) return x.alias();
  return torch.scope(() => saturation(x, f, false));
}

// The jitter ops, written as f·x + b with x·f done in place when `inPlace` (the caller owns x).
const oneMinus = (f: Tensor | number): Tensor | number => (typeof f === 'number' ? 1 - f : f.neg().add_(1));
function brightness(x: Tensor, f: Tensor | number, inPlace: boolean): Tensor {
  return (inPlace ? x.mul_(f) : x.mul(f)).clamp_({ min: 0, max: 1 });
}
function contrast(x: Tensor, f: Tensor | number, inPlace: boolean): Tensor {
  const b = meanLuma(x).mul_(oneMinus(f));
  const y = (inPlace ? x.mul_(f) : x.mul(f)).add_(b).clamp_({ min: 0, max: 1 });
  b.dispose();
  return y;
}
function saturation(x: Tensor, f: Tensor | number, inPlace: boolean): Tensor {
  const b = rgbToGrayscale(x).mul_(oneMinus(f));
  const y = (inPlace ? x.mul_(f) : x.mul(f)).add_(b).clamp_({ min: 0, max: 1 });
  b.dispose();
  return y;
}

// ---- ColorJitter ------------------------------------------------------------------------------

export interface ColorJitterOptions {
  /** b: factor uniform in [max(0, 1 − b), 1 + b], or an explicit [min, max]. 0 = off. */
  brightness?: number | [number, number];
  contrast?: number | [number, number];
  saturation?: number | [number, number];
  /** h ≤ 0.5: shift uniform in [−h, h] turns, or an explicit [min, max] within [−0.5, 0.5]. */
  hue?: number | [number, number];
  /** Probability of jittering each sample at all (torchvision's `RandomApply(..., p)`). Default 1. */
  p?: number;
}

/** Per-sample jitter factors (1, 1, 1, 0 where a sample is not jittered) and the batch's op order. */
export interface ColorJitterParams {
  applied: Uint8Array;
  brightness: Float32Array;
  contrast: Float32Array;
  saturation: Float32Array;
  hue: Float32Array;
  /** Permutation of [0 brightness, 1 contrast, 2 saturation, 3 hue]. */
  order: number[];
}

/**
 * Random brightness, contrast, saturation and hue, as torchvision's `ColorJitter` (used by
 * SimCLR, Chen et al. 2020 Appendix A, with strength s: (0.8s, 0.8s, 0.8s, 0.2s), p = 0.8).
 * Input `[N, C, H, W]` in [0, 1], output the same shape.
 *
 * Factors are drawn per sample. The ORDER of the four ops is one random permutation per
 * batch (`torch.randperm(4)`, as Kornia's `ColorJiggle`), where torchvision permutes per
 * image: applying a different order per sample would cost one pass per op per order.
 * Over many batches every order occurs equally often. Each op clamps to [0, 1].
 * On 1-channel input saturation and hue are identities (as torchvision), not errors.
 * Only the jittered samples are computed (see `RandomAugmentation`), in place on their copy.
 */
export class ColorJitter extends RandomAugmentation<ColorJitterParams> {
  readonly brightness: [number, number];
  readonly contrast: [number, number];
  readonly saturation: [number, number];
  readonly hue: [number, number];

  constructor(o: ColorJitterOptions = {}) {
    super('ColorJitter', { p: o.p ?? 1 });
    this.brightness = range('ColorJitter.brightness', o.brightness ?? 0, 1, 0);
    this.contrast = range('ColorJitter.contrast', o.contrast ?? 0, 1, 0);
    this.saturation = range('ColorJitter.saturation', o.saturation ?? 0, 1, 0);
    this.hue = range('ColorJitter.hue', o.hue ?? 0, 0);
    if (this.hue[0] < -0.5 || this.hue[1] > 0.5) throw new RangeError(`ColorJitter.hue: must lie within [-0.5, 0.5], got [${this.hue.join(', ')}]`);
  }

  protected generateParams(n: number, flags: Uint8Array | null): ColorJitterParams {
    const applied = flags!;
    const u = torch.scope(() => torch.rand([4, n]).toFloat32Array());
    const pick = (k: number, [lo, hi]: [number, number], off: number): Float32Array =>
      Float32Array.from({ length: n }, (_, i) => (applied[i] ? lo + (hi - lo) * u[k * n + i]! : off));
    const order = torch.scope(() => torch.randperm(4).toArray());
    return {
      applied,
      brightness: pick(0, this.brightness, 1),
      contrast: pick(1, this.contrast, 1),
      saturation: pick(2, this.saturation, 1),
      hue: pick(3, this.hue, 0),
      order,
    };
  }

  protected paramsLength(p: ColorJitterParams): number {
    return p.applied.length;
  }

  protected override appliedTo(p: ColorJitterParams): Uint8Array {
    return p.applied;
  }

  /** The ops of `p.order` that change a `c`-channel image (ranges other than the identity). */
  private ops(p: ColorJitterParams, c: number): number[] {
    const on = (r: [number, number], identity: number): boolean => !(r[0] === identity && r[1] === identity);
    return p.order.filter((op) =>
      (op === 0 && on(this.brightness, 1)) || (op === 1 && on(this.contrast, 1)) || (c === 3 && op === 2 && on(this.saturation, 1)) || (c === 3 && op === 3 && on(this.hue, 0)));
  }

  protected override isIdentity(p: ColorJitterParams, shape: number[]): boolean {
    return this.ops(p, shape[1]!).length === 0;
  }

  protected applyTo(x: Tensor, p: ColorJitterParams, sel: Selection): Tensor {
    const pick = (a: Float32Array): Float32Array => selectRows(a, sel.on);
    let y = x;
    for (const op of this.ops(p, x.size(1))) {
      const own = y !== x || sel.owned;
      let z: Tensor;
      if (op === 0) z = brightness(y, perSample(pick(p.brightness), y), own);
      else if (op === 1) z = contrast(y, perSample(pick(p.contrast), y), own);
      else if (op === 2) z = saturation(y, perSample(pick(p.saturation), y), own);
      else {
        const { m, c: chroma, h6, v } = hueParts(y);
        m.dispose();
        if (own) y.dispose();
        z = fromHue(h6, v, chroma, hueAnchors(pick(p.hue), h6));
      }
      y = z;
    }
    return y;
  }
}

// ---- grayscale, solarization ------------------------------------------------------------------

/** Per-sample flags: 1 where the op applies. */
export interface ApplyParams {
  applied: Uint8Array;
}

/** A random augmentation whose only parameters are the per-sample flags. */
abstract class FlagAugmentation extends RandomAugmentation<ApplyParams> {
  protected generateParams(_n: number, applied: Uint8Array | null): ApplyParams {
    return { applied: applied! };
  }
  protected paramsLength(p: ApplyParams): number {
    return p.applied.length;
  }
  protected override appliedTo(p: ApplyParams): Uint8Array {
    return p.applied;
  }
}

/**
 * Converts each image to grayscale with probability `p` (default 0.1 as torchvision;
 * SimCLR uses 0.2), ITU-R 601-2 luma (0.299, 0.587, 0.114), keeping 3 channels.
 * `[N, C, H, W]` → same; an identity on 1-channel input.
 */
export class RandomGrayscale extends FlagAugmentation {
  constructor(p = 0.1) {
    super('RandomGrayscale', { p });
  }
  protected override isIdentity(_p: ApplyParams, shape: number[]): boolean {
    return shape[1] === 1;
  }
  protected applyTo(x: Tensor, _p: ApplyParams, sel: Selection): Tensor {
    const [n, , h, w] = x.shape as [number, number, number, number];
    const g = rgbToGrayscale(x).expand([n, 3, h, w]);
    return sel.on === null ? g.contiguous() : g; // a sub-batch is copied into the output as it is
  }
}

/**
 * Solarization (inverts pixels ≥ `threshold`: x ← 1 − x) with probability `p` per sample, as
 * torchvision's `RandomSolarize`; used by BYOL (Grill et al. 2020) and DINO (Caron et al.
 * 2021) on the second global view. `[N, C, H, W]` → same.
 */
export class RandomSolarization extends FlagAugmentation {
  readonly threshold: number;
  constructor(o: { threshold?: number; p?: number } = {}) {
    super('RandomSolarization', { p: o.p ?? 0.5 });
    this.threshold = o.threshold ?? 0.5;
  }
  protected applyTo(x: Tensor): Tensor {
    // At the usual threshold 0.5 this is min(x, 1 − x), two cheap passes instead of a where.
    return this.threshold === 0.5 ? x.neg().add_(1).minimum(x) : torch.where(x.ge(this.threshold), x.neg().add_(1), x);
  }
}
