/**
 * Geometric augmentations on batches `[N, C, H, W]`: random resized crop, flips, rotation,
 * and the deterministic resize / centre crop used for evaluation.
 *
 * Batched resampling goes through `F.gridSample` with a per-sample sampling grid in the
 * normalised coordinates of `alignCorners=false`: rotations build it from per-sample affine
 * matrices `theta` `[N, 2, 3]` with `F.affineGrid`; crops build it directly, since their
 * `theta = [[w/W, 0, (2·left + w)/W − 1], [0, h/H, (2·top + h)/H − 1]]` is diagonal and the
 * grid separable. That grid hits exactly the pixel centres that crop + `F.interpolate(...,
 * alignCorners=false)` uses; clamping it to the crop's edge pixel centres reproduces
 * interpolate's edge clamping, so the two agree to float rounding. */
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { RandomAugmentation } from './augmentation.js';
import { bernoulli, checkBatch, checkProb, countOnes, indicesOf, randArray, range, type Transform } from './core.js';

const F = torch.functional;

export type Interpolation = 'bilinear' | 'nearest' | 'bicubic';
type Size = number | [number, number];
const pair = (s: Size): [number, number] => (Array.isArray(s) ? [s[0], s[1]] : [s, s]);

function checkInterpolation(who: string, m: string): Interpolation {
  if (m !== 'bilinear' && m !== 'nearest' && m !== 'bicubic') {
    throw new TypeError(`${who}: interpolation must be 'bilinear', 'nearest' or 'bicubic', got '${m}'`);
  }
  return m;
}

/** Crop boxes in input pixels, one per sample, plus the fused horizontal-flip flags. */
export interface CropParams {
  top: Int32Array;
  left: Int32Array;
  height: Int32Array;
  width: Int32Array;
  /** 1 where the view is also mirrored left-right (only with the `hflip` option). */
  flip: Uint8Array;
}

export interface RandomResizedCropOptions {
  /** Output size: `s` for s×s, or `[h, w]`. */
  size: Size;
  /** Range of the crop's area as a fraction of the image's. Default [0.08, 1] (Szegedy et al. 2015). */
  scale?: [number, number];
  /** Range of the crop's aspect ratio w/h, drawn log-uniform. Default [3/4, 4/3]. */
  ratio?: [number, number];
  interpolation?: Interpolation;
  /**
   * Pre-filter strong downscales (default true, as torchvision ≥ 0.17). See the class doc.
   * Only matters when a crop is at least 2× larger than the output along both axes.
   */
  antialias?: boolean;
  /**
   * How the crops are resampled: 'grid' (one batched `F.gridSample`), 'loop' (crop +
   * `F.interpolate` per sample) or 'auto' (default: 'loop' when C·h·w ≥ `LOOP_MIN_PIXELS`,
   * where it measured faster, else 'grid').
   */
  resample?: 'auto' | 'grid' | 'loop';
  /**
   * Probability of also mirroring each view left-right, fused into the same resample (free:
   * the x scale of `theta` is negated). Default 0. Equivalent to a following
   * `RandomHorizontalFlip(p)`, which costs two passes over the batch.
   */
  hflip?: number;
}

/** Candidate boxes drawn per sample at once; torchvision tries 10 times in a loop. */
const TRIES = 10;

/**
 * Output values per sample (C·h·w) from which 'auto' resampling loops over samples. Measured
 * (1 thread, libtorch 1.13, min of 8): crop + interpolate per sample vs one grid sample took
 * 4.2 vs 2.3 ms at 256×1×28×28, 5.9 vs 4.0 at 256×3×28×28, 7.2 vs 10.3 at 128×3×64×64,
 * 14.9 vs 24.1 at 128×3×96×96 and 4.6 vs 11.7 at 16×3×224×224: interpolate's separable
 * kernel with precomputed taps beats the grid sampler's 4-tap gathers once the per-call
 * overhead of N small ops is amortised.
 */
export const LOOP_MIN_PIXELS = 8192;

/**
 * Random crop of random area and aspect ratio, resized to `size` (Szegedy et al. 2015,
 * "Going deeper with convolutions"; the crop used by SimCLR, Chen et al. 2020 §3 and
 * Appendix A). Input `[N, C, H, W]`, output `[N, C, size_h, size_w]`.
 *
 * Boxes are drawn as torchvision's `RandomResizedCrop.get_params`, vectorised: 10 candidate
 * (area, log-ratio) pairs per sample in one `torch.rand([N, 10, 2])`, the first one that fits
 * wins, and when none fits the fallback is torchvision's (the largest centred crop with the
 * ratio clamped into range). Top/left offsets are uniform over the valid positions.
 *
 * Small outputs are resampled in one `F.gridSample` call over the whole batch. Bilinear grid
 * sampling reads 2×2 taps, so a crop more than 2× larger than the output aliases (moiré on
 * fine texture; torchvision's `antialias=True` widens the filter instead). With `antialias`,
 * samples whose crop is ≥ 2× the output along both axes sample from a 2^L-downscaled copy of
 * the batch (mip-mapping: 2×2 average pooling per level, L = ⌊log2(min(h/out_h, w/out_w))⌋),
 * leaving a residual downscale below 2× for the bilinear taps. Same-size pipelines (a 224
 * image cropped to 224) upsample and never take that path.
 *
 * Larger outputs (from about 64×64×3, see `LOOP_MIN_PIXELS`) are resampled by crop +
 * `F.interpolate` per sample, N small ops then one `cat`, which measured 1.5–2.5× faster than
 * the grid there and is exactly torchvision's `resized_crop`, antialiasing included. Both
 * paths give the same pixels when upsampling; `resample` forces one.
 */
export class RandomResizedCrop extends RandomAugmentation<CropParams> {
  readonly size: [number, number];
  readonly scale: [number, number];
  readonly ratio: [number, number];
  readonly interpolation: Interpolation;
  readonly antialias: boolean;
  readonly hflip: number;
  readonly resample: 'auto' | 'grid' | 'loop';

  constructor(o: RandomResizedCropOptions) {
    super('RandomResizedCrop', { p: null, anyC: true });
    this.resample = o.resample ?? 'auto';
    if (!['auto', 'grid', 'loop'].includes(this.resample)) throw new TypeError(`RandomResizedCrop: resample must be 'auto', 'grid' or 'loop', got '${this.resample}'`);
    this.size = pair(o.size);
    if (!this.size.every((s) => Number.isInteger(s) && s > 0)) throw new RangeError(`RandomResizedCrop: size must be positive integers, got ${String(o.size)}`);
    this.scale = o.scale ?? [0.08, 1];
    this.ratio = o.ratio ?? [3 / 4, 4 / 3];
    if (!(this.scale[0] > 0 && this.scale[0] <= this.scale[1])) throw new RangeError(`RandomResizedCrop: scale must satisfy 0 < min <= max, got [${this.scale.join(', ')}]`);
    if (!(this.ratio[0] > 0 && this.ratio[0] <= this.ratio[1])) throw new RangeError(`RandomResizedCrop: ratio must satisfy 0 < min <= max, got [${this.ratio.join(', ')}]`);
    this.interpolation = checkInterpolation('RandomResizedCrop', o.interpolation ?? 'bilinear');
    this.antialias = o.antialias ?? true;
    this.hflip = checkProb('RandomResizedCrop.hflip', o.hflip ?? 0);
  }

  /** Boxes for `n` images of shape `[*, *, H, W]` (only H and W are read), then the flip flags. */
  override sampleParams(n: number, shape: number[]): CropParams {
    return super.sampleParams(n, shape);
  }

  protected generateParams(n: number, _applied: null, shape: number[]): CropParams {
    const H = shape[shape.length - 2]!;
    const W = shape[shape.length - 1]!;
    const [s0, s1] = this.scale;
    const [lr0, lr1] = [Math.log(this.ratio[0]), Math.log(this.ratio[1])];
    // torchvision's fallback: the whole image, or the largest centred crop with an in-range ratio.
    const inRatio = W / H;
    let fw = W;
    let fh = H;
    if (inRatio < this.ratio[0]) fh = Math.round(fw / this.ratio[0]);
    else if (inRatio > this.ratio[1]) fw = Math.round(fh * this.ratio[1]);
    const [ft, fl] = [Math.floor((H - fh) / 2), Math.floor((W - fw) / 2)];

    const out = torch.scope(() => {
      const u = torch.rand([n, TRIES, 2], { dtype: 'float64' });
      const area = u.select(2, 0).mul(s1 - s0).add_(s0).mul_(H * W);
      const logr = u.select(2, 1).mul(lr1 - lr0).add_(lr0);
      const ar = logr.exp();
      // Python's round() and torch.round both round half to even.
      const w = area.mul(ar).sqrt_().round();
      const h = area.div(ar).sqrt_().round();
      const valid = w.gt(0).logicalAnd(w.le(W)).logicalAnd(h.gt(0)).logicalAnd(h.le(H)).to('float64');
      const first = valid.argmax(1, { keepdim: true }); // the first maximum: the first valid try
      const ok = valid.amax(1).gt(0);
      const hh = torch.where(ok, h.gather(1, first).squeeze(1), fh);
      const ww = torch.where(ok, w.gather(1, first).squeeze(1), fw);
      const uij = torch.rand([n, 2], { dtype: 'float64' });
      const top = torch.where(ok, uij.select(1, 0).mul(hh.neg().add_(H + 1)).floor(), ft);
      const left = torch.where(ok, uij.select(1, 1).mul(ww.neg().add_(W + 1)).floor(), fl);
      return torch.stack([top, left, hh, ww]).to('int32');
    });
    const a = out.toInt32Array();
    out.dispose();
    const flip = this.hflip > 0 ? bernoulli(n, this.hflip) : new Uint8Array(n);
    return { top: a.subarray(0, n), left: a.subarray(n, 2 * n), height: a.subarray(2 * n, 3 * n), width: a.subarray(3 * n, 4 * n), flip };
  }

  protected paramsLength(p: CropParams): number {
    return p.top.length;
  }

  protected applyTo(x: Tensor, p: CropParams): Tensor {
    const [n, c, H, W] = x.shape as [number, number, number, number];
    const [oh, ow] = this.size;
    if (this.resample === 'loop' || (this.resample === 'auto' && c * oh * ow >= LOOP_MIN_PIXELS)) return this.applyLoop(x, p);
    // The sampling grid is separable: x depends on (sample, column), y on (sample, row).
    // Coordinates are clamped to the centres of the crop's edge pixels, as interpolate clamps
    // its source index, so the result equals crop + resize exactly, borders included.
    const gx = new Float32Array(n * ow);
    const gy = new Float32Array(n * oh);
    const level = new Uint8Array(n);
    const maxLevel = Math.floor(Math.log2(Math.min(H, W)));
    const axis = (out: Float32Array, i: number, size: number, start: number, len: number, full: number, flip: boolean): void => {
      const lo = (2 * start + 1) / full - 1;
      const hi = (2 * (start + len) - 1) / full - 1;
      for (let j = 0; j < size; j++) {
        const u = (2 * (flip ? size - 1 - j : j) + 1) / size - 1; // output pixel centre, normalised
        const v = ((2 * start + len) + u * len) / full - 1;
        out[i * size + j] = v < lo ? lo : v > hi ? hi : v;
      }
    };
    for (let i = 0; i < n; i++) {
      const [t, l, h, w] = [p.top[i]!, p.left[i]!, p.height[i]!, p.width[i]!];
      axis(gx, i, ow, l, w, W, p.flip[i] === 1);
      axis(gy, i, oh, t, h, H, false);
      const down = Math.min(h / oh, w / ow);
      if (this.antialias && down >= 2 && this.interpolation !== 'nearest') level[i] = Math.min(maxLevel, Math.floor(Math.log2(down)));
    }
    const opts = { dtype: x.dtype, device: x.device };
    const xs = torch.tensor(gx, { shape: [n, 1, ow, 1] }).to(opts).expand([n, oh, ow, 1]);
    const ys = torch.tensor(gy, { shape: [n, oh, 1, 1] }).to(opts).expand([n, oh, ow, 1]);
    return resample(x, torch.cat([xs, ys], 3), this.interpolation, 'border', level);
  }

  /**
   * Crop + `F.interpolate` per sample (N small ops, then one `cat`): exactly torchvision's
   * `resized_crop`, with its antialiasing when a crop is larger than the output.
   */
  private applyLoop(x: Tensor, p: CropParams): Tensor {
    const [oh, ow] = this.size;
    const mode = this.interpolation;
    const views: Tensor[] = [];
    for (let i = 0; i < p.top.length; i++) {
      const [h, w] = [p.height[i]!, p.width[i]!];
      const crop = x.narrow(0, i, 1).narrow(2, p.top[i]!, h).narrow(3, p.left[i]!, w);
      let y = h === oh && w === ow ? crop : F.interpolate(crop, { size: [oh, ow], mode, antialias: this.antialias && mode !== 'nearest' && (h > oh || w > ow) });
      if (p.flip[i]) y = y.flip(3);
      views.push(y);
    }
    const out = torch.cat(views);
    for (const v of views) v.dispose();
    return mode === 'bicubic' ? out.clamp_({ min: 0, max: 1 }) : out;
  }
}

/** One level down the mip-map: 2×2 average pooling (exact in normalised coordinates when H, W are even). */
function halve(x: Tensor): Tensor {
  const [h, w] = [x.size(2), x.size(3)];
  if (h % 2 === 0 && w % 2 === 0) return F.avgPool2d(x, 2);
  return F.interpolate(x, { size: [Math.max(1, Math.ceil(h / 2)), Math.max(1, Math.ceil(w / 2))], mode: 'bilinear', antialias: true });
}

/**
 * Samples `x` at `grid` `[n, oh, ow, 2]` (normalised, `alignCorners=false`); samples with
 * `level[i] = L > 0` read from the batch downscaled 2^L times. Runs inside the caller's scope.
 */
function resample(x: Tensor, grid: Tensor, mode: Interpolation, paddingMode: 'border' | 'zeros', level?: Uint8Array): Tensor {
  const n = grid.size(0);
  const top = level === undefined ? 0 : level.reduce((a, b) => Math.max(a, b), 0);
  const sample = (src: Tensor, g: Tensor): Tensor => {
    const y = F.gridSample(src, g, { mode, paddingMode, alignCorners: false });
    return mode === 'bicubic' ? y.clamp_({ min: 0, max: 1 }) : y;
  };
  if (top === 0) return sample(x, grid);
  const levels: Tensor[] = [x];
  for (let L = 1; L <= top; L++) levels.push(halve(levels[L - 1]!));
  const out = torch.empty([n, x.size(1), grid.size(1), grid.size(2)], { dtype: x.dtype, device: x.device });
  for (let L = 0; L <= top; L++) {
    const flags = level!.map((v) => (v === L ? 1 : 0));
    const k = countOnes(flags);
    if (k === 0) continue;
    if (k === n) return sample(levels[L]!, grid);
    const idx = indicesOf(flags, x);
    out.indexCopy_(0, idx, sample(levels[L]!.indexSelect(0, idx), grid.indexSelect(0, idx)));
  }
  return out;
}

/** Per-sample flip flags. */
export interface FlipParams {
  flip: Uint8Array;
}

class RandomFlip extends RandomAugmentation<FlipParams> {
  constructor(p: number, private readonly dim: 2 | 3, who: string) {
    super(who, { p, anyC: true });
  }
  protected generateParams(_n: number, flip: Uint8Array | null): FlipParams {
    return { flip: flip! };
  }
  protected paramsLength(p: FlipParams): number {
    return p.flip.length;
  }
  protected override appliedTo(p: FlipParams): Uint8Array {
    return p.flip;
  }
  protected applyTo(x: Tensor): Tensor {
    return x.flip(this.dim);
  }
}

/** Mirrors each image left-right with probability `p` (default 0.5). `[N, C, H, W]` → same. */
export class RandomHorizontalFlip extends RandomFlip {
  constructor(p = 0.5) {
    super(p, 3, 'RandomHorizontalFlip');
  }
}

/** Mirrors each image top-bottom with probability `p` (default 0.5). `[N, C, H, W]` → same. */
export class RandomVerticalFlip extends RandomFlip {
  constructor(p = 0.5) {
    super(p, 2, 'RandomVerticalFlip');
  }
}

/** Per-sample rotation angles, in degrees (counter-clockwise). */
export interface RotationParams {
  angle: Float32Array;
}

/**
 * Rotates each image about its centre by an angle drawn uniform in `[-degrees, degrees]`
 * (or `[min, max]`), counter-clockwise as torchvision, keeping the size; corners outside
 * the source are filled with 0. One batched affine grid sample. `[N, C, H, W]` → same.
 * Samples not drawn (probability 1 − p) get angle 0 and go through the same grid sample
 * as the others (an identity up to rounding); a batch with no rotation is returned as is.
 */
export class RandomRotation extends RandomAugmentation<RotationParams> {
  readonly degrees: [number, number];
  readonly interpolation: Interpolation;
  constructor(degrees: number | [number, number], o: { interpolation?: Interpolation; p?: number } = {}) {
    super('RandomRotation', { p: o.p ?? 1, anyC: true });
    this.degrees = range('RandomRotation.degrees', degrees, 0);
    this.interpolation = checkInterpolation('RandomRotation', o.interpolation ?? 'bilinear');
  }
  protected generateParams(n: number, flags: Uint8Array | null): RotationParams {
    const applied = flags!;
    const u = randArray(n);
    const [a, b] = this.degrees;
    return { angle: u.map((v, i) => (applied[i] ? a + (b - a) * v : 0)) };
  }
  protected paramsLength(p: RotationParams): number {
    return p.angle.length;
  }
  protected override isIdentity(p: RotationParams): boolean {
    return p.angle.every((a) => a === 0);
  }
  protected applyTo(x: Tensor, p: RotationParams): Tensor {
    const [n, c, H, W] = x.shape as [number, number, number, number];
    const theta = new Float32Array(n * 6);
    for (let i = 0; i < n; i++) {
      // Output pixel → input pixel is a rotation by +angle in y-down pixel coordinates, which
      // turns the picture counter-clockwise; normalised coordinates rescale by W/H.
      const r = (p.angle[i]! * Math.PI) / 180;
      const [cs, sn] = [Math.cos(r), Math.sin(r)];
      theta.set([cs, (-sn * H) / W, 0, (sn * W) / H, cs, 0], i * 6);
    }
    const th = torch.tensor(theta, { shape: [n, 2, 3] }).to({ dtype: x.dtype, device: x.device });
    return resample(x, F.affineGrid(th, [n, c, H, W], { alignCorners: false }), this.interpolation, 'zeros');
  }
}

/**
 * Resizes a batch: a number resizes the shorter side to it keeping the aspect ratio (as
 * torchvision), `[h, w]` resizes to exactly that. Antialiased when downscaling (default).
 */
export class Resize implements Transform {
  readonly size: Size;
  readonly interpolation: Interpolation;
  readonly antialias: boolean;
  constructor(size: Size, o: { interpolation?: Interpolation; antialias?: boolean } = {}) {
    this.size = size;
    this.interpolation = checkInterpolation('Resize', o.interpolation ?? 'bilinear');
    this.antialias = o.antialias ?? true;
  }
  outputSize(H: number, W: number): [number, number] {
    if (Array.isArray(this.size)) return this.size;
    const s = this.size;
    return H <= W ? [s, Math.floor((s * W) / H)] : [Math.floor((s * H) / W), s];
  }
  forward(x: Tensor): Tensor {
    const [, , H, W] = checkBatch(x, 'Resize', { anyC: true });
    const [h, w] = this.outputSize(H, W);
    if (h === H && w === W) return x.alias();
    const mode = this.interpolation;
    return torch.scope(() => {
      const y = F.interpolate(x, { size: [h, w], mode, antialias: this.antialias && mode !== 'nearest' });
      return mode === 'bicubic' ? y.clamp_({ min: 0, max: 1 }) : y;
    });
  }
}

/** Python's round(): halves go to the even neighbour. */
function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  return d > 0.5 || (d === 0.5 && f % 2 !== 0) ? f + 1 : f;
}

/** Crops the centre `size` (`s` or `[h, w]`) of every image, as torchvision (offsets rounded). */
export class CenterCrop implements Transform {
  readonly size: [number, number];
  constructor(size: Size) {
    this.size = pair(size);
  }
  forward(x: Tensor): Tensor {
    const [, , H, W] = checkBatch(x, 'CenterCrop', { anyC: true });
    const [h, w] = this.size;
    if (h > H || w > W) throw new RangeError(`CenterCrop: crop ${h}×${w} is larger than the images (${H}×${W}); resize first`);
    if (h === H && w === W) return x.alias();
    const top = roundHalfEven((H - h) / 2);
    const left = roundHalfEven((W - w) / 2);
    return torch.scope(() => x.narrow(2, top, h).narrow(3, left, w).contiguous());
  }
}
