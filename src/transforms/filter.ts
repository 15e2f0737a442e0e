/**
 * Gaussian blur with a per-sample sigma, batched: the blur SimCLR applies to half of the
 * views (Chen et al. 2020 Appendix A: kernel 10% of the image side, σ ∈ [0.1, 2.0]).
 */
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { RandomAugmentation, type Selection } from './augmentation.js';
import { randArray, range } from './core.js';

const F = torch.functional;

export interface GaussianBlurOptions {
  /** Odd kernel side (or `[kh, kw]`). Default: 2·⌈3σ_max⌉ + 1, which holds 99.7% of the mass. */
  kernelSize?: number | [number, number];
  /** σ uniform in [min, max] per sample (a number: fixed σ). Default [0.1, 2.0]. */
  sigma?: number | [number, number];
  /** Probability of blurring each sample. Default 1 (SimCLR: 0.5). */
  p?: number;
}

/** Per-sample flags (1 = blurred) and σ (0 where not blurred). */
export interface GaussianBlurParams {
  applied: Uint8Array;
  sigma: Float32Array;
}

/**
 * Normalised 1-d Gaussian taps at −r..r, as torchvision's `_get_gaussian_kernel1d`, except
 * that taps below 1e-12 are set to 0: in float32 they would otherwise become denormal numbers
 * (e.g. σ = 0.5 at 7 px gives e^−98), which make the convolution several times slower on x86.
 */
export function gaussianKernel1d(size: number, sigma: number): Float32Array {
  const r = (size - 1) / 2;
  const k = new Float64Array(size);
  let sum = 0;
  for (let i = 0; i < size; i++) {
    const t = (i - r) / sigma;
    k[i] = Math.exp(-0.5 * t * t);
    sum += k[i]!;
  }
  return Float32Array.from(k, (v) => (v / sum < 1e-12 ? 0 : v / sum));
}

/** Source indices of a reflect-padded axis of length n (torchvision's 'reflect': edge not repeated). */
function reflectIndex(n: number, pad: number, device: string): Tensor {
  const idx = new BigInt64Array(n + 2 * pad);
  for (let i = -pad; i < n + pad; i++) idx[i + pad] = BigInt(i < 0 ? -i : i >= n ? 2 * (n - 1) - i : i);
  const t = torch.tensor(idx);
  return device === 'cpu' ? t : t.to(device);
}

/**
 * Gaussian blur with σ drawn per sample, as torchvision's `GaussianBlur` on tensors (reflect
 * padding, kernel normalised to sum 1, so a constant image stays constant). Input and output
 * `[N, C, H, W]`.
 *
 * Batched as one separable depthwise convolution with a different kernel per image: the
 * selected samples are viewed as `[1, N·C, H, W]` and convolved with `groups = N·C`, first
 * with a `[N·C, 1, kh, 1]` column kernel, then a `[N·C, 1, 1, kw]` row kernel (the 2-d
 * Gaussian is the outer product, so this equals torchvision's 2-d kernel up to rounding).
 * Only the samples drawn for blurring are convolved.
 */
export class GaussianBlur extends RandomAugmentation<GaussianBlurParams> {
  readonly kernelSize: [number, number];
  readonly sigma: [number, number];

  constructor(o: GaussianBlurOptions = {}) {
    super('GaussianBlur', { p: o.p ?? 1, anyC: true });
    this.sigma = typeof o.sigma === 'number' ? [o.sigma, o.sigma] : range('GaussianBlur.sigma', o.sigma ?? [0.1, 2], 0);
    if (!(this.sigma[0] > 0)) throw new RangeError(`GaussianBlur.sigma: must be positive, got [${this.sigma.join(', ')}]`);
    const def = 2 * Math.ceil(3 * this.sigma[1]) + 1;
    const ks = o.kernelSize ?? def;
    this.kernelSize = Array.isArray(ks) ? [ks[0], ks[1]] : [ks, ks];
    if (!this.kernelSize.every((k) => Number.isInteger(k) && k > 0 && k % 2 === 1)) {
      throw new RangeError(`GaussianBlur.kernelSize: must be odd positive integers, got ${String(ks)}`);
    }
  }

  protected generateParams(n: number, flags: Uint8Array | null): GaussianBlurParams {
    const applied = flags!;
    const u = randArray(n);
    const [a, b] = this.sigma;
    return { applied, sigma: u.map((v, i) => (applied[i] ? a + (b - a) * v : 0)) };
  }

  protected paramsLength(p: GaussianBlurParams): number {
    return p.applied.length;
  }

  protected override appliedTo(p: GaussianBlurParams): Uint8Array {
    return p.applied;
  }

  protected applyTo(src: Tensor, p: GaussianBlurParams, sel: Selection): Tensor {
    const [m, c, H, W] = src.shape as [number, number, number, number];
    const [kh, kw] = this.kernelSize;
    const [ph, pw] = [(kh - 1) / 2, (kw - 1) / 2];
    if (ph >= H || pw >= W) {
      throw new RangeError(`GaussianBlur: kernel ${kh}×${kw} needs images larger than ${ph}×${pw} for reflect padding, got ${H}×${W}; use a smaller kernelSize`);
    }
    // Per-(sample, channel) taps, rows then columns.
    const colTaps = new Float32Array(m * c * kh);
    const rowTaps = new Float32Array(m * c * kw);
    let j = 0;
    for (let i = 0; i < p.applied.length; i++) {
      if (!p.applied[i]) continue;
      const kv = gaussianKernel1d(kh, p.sigma[i]!);
      const ku = kw === kh ? kv : gaussianKernel1d(kw, p.sigma[i]!);
      for (let ch = 0; ch < c; ch++, j++) {
        colTaps.set(kv, j * kh);
        rowTaps.set(ku, j * kw);
      }
    }
    const opts = { dtype: src.dtype, device: src.device };
    const wv = torch.tensor(colTaps, { shape: [m * c, 1, kh, 1] }).to(opts);
    const wu = torch.tensor(rowTaps, { shape: [m * c, 1, 1, kw] }).to(opts);
    const flat = src.reshape([1, m * c, H, W]);
    // Reflect padding, one axis at a time (F.pad's reflection kernel measured ~6× slower than
    // these copies): rows by an index gather, columns by concatenating mirrored strips.
    // Each intermediate is freed as soon as it is consumed (fewer live buffers, fewer page faults).
    const rows = ph === 0 ? flat : flat.indexSelect(2, reflectIndex(H, ph, src.device));
    if (rows !== flat) {
      flat.dispose();
      if (sel.owned) src.dispose();
    }
    const vert = F.conv2d(rows, wv, null, { groups: m * c });
    if (rows !== flat) rows.dispose();
    const cols = pw === 0 ? vert : torch.cat([vert.narrow(3, 1, pw).flip(3), vert, vert.narrow(3, W - pw - 1, pw).flip(3)], 3);
    if (cols !== vert) vert.dispose();
    const blurred = F.conv2d(cols, wu, null, { groups: m * c }).view([m, c, H, W]);
    cols.dispose();
    return blurred;
  }
}
