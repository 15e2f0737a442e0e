/**
 * Multi-view transforms for self-supervised learning, with lightly's names and the papers'
 * defaults: a batch of images in, a list of K augmented batches ("views") out.
 *
 * Input: `[N, C, H, W]`, uint8 (as the loader hands it out; converted with `toFloat` once for
 * all views) or float in [0, 1]; C = 1 or 3. Output: K tensors `[N, C, size, size]` float32,
 * normalised. Each view draws its own random parameters per sample.
 */
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { Compose, DEFAULT_MAX_CHUNK_BYTES, checkBatch, mapChunks, samplesPerChunk, toFloat, type Transform } from './core.js';
import { ColorJitter, RandomGrayscale, RandomSolarization } from './color.js';
import { IMAGENET_STATS, Normalize, type NormalizeStats } from './normalize.js';
import { GaussianBlur } from './filter.js';
import { CenterCrop, RandomResizedCrop, RandomRotation, RandomVerticalFlip, Resize, type Interpolation } from './geometric.js';

/** Something that turns one batch into K views. */
export interface MultiView {
  forward(x: Tensor): Tensor[];
}

/**
 * Applies each of its transforms to the same batch and returns the list of views
 * (lightly's `MultiViewTransform`). uint8 input is converted to float once.
 */
export class MultiViewTransform implements MultiView {
  readonly transforms: Transform[];
  readonly maxChunkBytes: number;
  /** `maxChunkBytes`: batches are processed in slices of at most this much float32 input (see `DEFAULT_MAX_CHUNK_BYTES`). */
  constructor(transforms: Transform[], o: { maxChunkBytes?: number } = {}) {
    if (transforms.length === 0) throw new RangeError('MultiViewTransform: pass at least one transform');
    this.transforms = transforms;
    this.maxChunkBytes = o.maxChunkBytes ?? DEFAULT_MAX_CHUNK_BYTES;
  }
  get numViews(): number {
    return this.transforms.length;
  }
  forward(x: Tensor): Tensor[] {
    checkBatch(x, 'MultiViewTransform', { anyC: true, anyDtype: true });
    return mapChunks(x, samplesPerChunk(x, this.maxChunkBytes), (slice) => torch.scope(() => {
      const xf = toFloat(slice);
      return this.transforms.map((t) => t.forward(xf));
    }));
  }
}

/** SimCLR's blur kernel: 10% of the image side, odd, at least 3 (Chen et al. 2020 Appendix A). */
export const simclrKernelSize = (size: number): number => Math.max(3, Math.floor((0.1 * size) / 2) * 2 + 1);

export interface SimCLRViewOptions {
  /** Output side. Default 224. */
  inputSize?: number;
  /** Probability of colour jitter per view. Default 0.8. */
  cjProb?: number;
  /** Colour-distortion strength s (SimCLR Appendix A): jitter = s·(cjBright, cjContrast, cjSat, cjHue). Default 1.0. */
  cjStrength?: number;
  cjBright?: number;
  cjContrast?: number;
  cjSat?: number;
  cjHue?: number;
  /** Smallest crop area fraction. Default 0.08. */
  minScale?: number;
  /** Largest crop area fraction. Default 1. */
  maxScale?: number;
  /** Probability of grayscale. Default 0.2. */
  randomGrayScale?: number;
  /** Probability of Gaussian blur. Default 0.5. */
  gaussianBlur?: number;
  /** Blur kernel side; default 10% of `inputSize`, odd. */
  kernelSize?: number;
  sigmas?: [number, number];
  /** Horizontal / vertical flip probabilities. Defaults 0.5 / 0. */
  hfProb?: number;
  vfProb?: number;
  /** Probability of a random rotation by up to `rrDegrees` (default 0 / 90). */
  rrProb?: number;
  rrDegrees?: number | [number, number];
  interpolation?: Interpolation;
  /** Channel statistics, or null for none. Default ImageNet's. */
  normalize?: NormalizeStats | null;
}

/**
 * One SimCLR view: random resized crop (+ horizontal flip, fused), [vertical flip],
 * [rotation], colour jitter with probability `cjProb`, random grayscale, Gaussian blur with
 * probability `gaussianBlur`, normalisation. Float `[N, C, H, W]` → `[N, C, s, s]`.
 */
export function simclrView(o: SimCLRViewOptions = {}): Compose {
  const size = o.inputSize ?? 224;
  const s = o.cjStrength ?? 1.0;
  const steps: Transform[] = [
    new RandomResizedCrop({ size, scale: [o.minScale ?? 0.08, o.maxScale ?? 1], interpolation: o.interpolation ?? 'bilinear', hflip: o.hfProb ?? 0.5 }),
  ];
  if ((o.vfProb ?? 0) > 0) steps.push(new RandomVerticalFlip(o.vfProb));
  if ((o.rrProb ?? 0) > 0) steps.push(new RandomRotation(o.rrDegrees ?? 90, { p: o.rrProb }));
  const cjProb = o.cjProb ?? 0.8;
  if (cjProb > 0 && s > 0) {
    steps.push(new ColorJitter({
      brightness: s * (o.cjBright ?? 0.8), contrast: s * (o.cjContrast ?? 0.8), saturation: s * (o.cjSat ?? 0.8), hue: s * (o.cjHue ?? 0.2), p: cjProb,
    }));
  }
  if ((o.randomGrayScale ?? 0.2) > 0) steps.push(new RandomGrayscale(o.randomGrayScale ?? 0.2));
  if ((o.gaussianBlur ?? 0.5) > 0) {
    steps.push(new GaussianBlur({ kernelSize: o.kernelSize ?? simclrKernelSize(size), sigma: o.sigmas ?? [0.1, 2], p: o.gaussianBlur ?? 0.5 }));
  }
  const norm = o.normalize === undefined ? IMAGENET_STATS : o.normalize;
  if (norm !== null) steps.push(new Normalize(norm));
  return new Compose(steps);
}

export interface SimCLRTransformOptions extends SimCLRViewOptions {
  /** Global views (default 2). */
  views?: number;
  /** Multi-crop: small views after the global ones (default 0). */
  nLocalViews?: number;
  /** Side of the small views; default `round(inputSize × 96 / 224)`, at least 8. */
  localCropSize?: number;
  /** Crop-area range of the small views; default [0.05, minScale]. */
  localCropScale?: [number, number];
  /** See `DEFAULT_MAX_CHUNK_BYTES`. */
  maxChunkBytes?: number;
}

/**
 * SimCLR's augmentation (Chen et al. 2020, "A Simple Framework for Contrastive Learning of
 * Visual Representations", §3 and Appendix A; lightly's `SimCLRTransform`): two views per
 * image, each a random resized crop (scale [0.08, 1]) with horizontal flip, colour jitter
 * (0.8s, 0.8s, 0.8s, 0.2s) with p = 0.8, grayscale with p = 0.2, Gaussian blur (kernel 10% of
 * the side, σ ∈ [0.1, 2]) with p = 0.5, then ImageNet normalisation.
 *
 * Small images: the paper's CIFAR-10 setting (Appendix B.9) uses strength s = 0.5 and no blur;
 * for 28×28 (MNIST-like) or 32×32 inputs pass `{ cjStrength: 0.5, gaussianBlur: 0 }` (a 3-tap
 * blur at 28 px mostly destroys the strokes the model must see).
 *
 * Multi-crop (Caron et al. 2020, "Unsupervised Learning of Visual Features by Contrasting Cluster
 * Assignments" (SwAV), §3.2; lightly's `SwaVTransform` / `MultiCropTranform`): `nLocalViews`
 * extra small views at `localCropSize` (default 96/224 of `inputSize`) with crop scale
 * `localCropScale` (default [0.05, minScale]), after the `views` global ones. Small views cost
 * little (a 14×14 view a quarter of a 28×28 one) and add positives that match a part to the whole.
 *
 * `[N, C, H, W]` (uint8 or float) → `[views + nLocalViews]` of `[N, C, inputSize, inputSize]`
 * (then `[N, C, localCropSize, localCropSize]`) float32.
 */
export class SimCLRTransform extends MultiViewTransform {
  constructor(o: SimCLRTransformOptions = {}) {
    const k = o.views ?? 2;
    const nLocal = o.nLocalViews ?? 0;
    if (!Number.isInteger(nLocal) || nLocal < 0) throw new RangeError(`SimCLRTransform: nLocalViews must be a non-negative integer, got ${nLocal}`);
    const localSize = o.localCropSize ?? Math.max(8, Math.round((o.inputSize ?? 224) * 96 / 224));
    const [lo, hi] = o.localCropScale ?? [0.05, o.minScale ?? 0.08];
    if (nLocal > 0 && !(lo > 0 && lo <= hi && hi <= 1)) throw new RangeError(`SimCLRTransform: localCropScale must be [lo, hi] with 0 < lo ≤ hi ≤ 1, got [${lo}, ${hi}]`);
    super([
      ...Array.from({ length: k }, () => simclrView(o)),
      ...Array.from({ length: nLocal }, () => simclrView({ ...o, inputSize: localSize, minScale: lo, maxScale: hi, kernelSize: o.kernelSize ?? simclrKernelSize(localSize) })),
    ], { maxChunkBytes: o.maxChunkBytes });
  }
}

/**
 * MoCo v2's augmentation (Chen, Fan, Girshick & He 2020, "Improved Baselines with Momentum
 * Contrastive Learning"; lightly's `MoCoV2Transform`): SimCLR's recipe with crop scale
 * [0.2, 1] and a milder jitter (0.4, 0.4, 0.4, 0.1) with p = 0.8, grayscale p = 0.2, blur
 * p = 0.5, horizontal flip. Two views. Shapes as `SimCLRTransform`.
 */
export class MoCoV2Transform extends SimCLRTransform {
  constructor(o: SimCLRTransformOptions = {}) {
    super({ cjStrength: 0.5, minScale: 0.2, ...o });
  }
}

export interface DINOTransformOptions {
  globalCropSize?: number;
  globalCropScale?: [number, number];
  localCropSize?: number;
  localCropScale?: [number, number];
  /** Number of local (small) views. Default 6. */
  nLocalViews?: number;
  hfProb?: number;
  vfProb?: number;
  rrProb?: number;
  rrDegrees?: number | [number, number];
  cjProb?: number;
  cjStrength?: number;
  cjBright?: number;
  cjContrast?: number;
  cjSat?: number;
  cjHue?: number;
  randomGrayScale?: number;
  /** Blur probability for [global view 1, global view 2, local views]. Default [1.0, 0.1, 0.5]. */
  gaussianBlur?: [number, number, number];
  kernelSize?: number;
  sigmas?: [number, number];
  /** Solarization probability of the second global view. Default 0.2. */
  solarizationProb?: number;
  interpolation?: Interpolation;
  normalize?: NormalizeStats | null;
  /** See `DEFAULT_MAX_CHUNK_BYTES`. */
  maxChunkBytes?: number;
}

/**
 * DINO's multi-crop augmentation (Caron et al. 2021, "Emerging Properties in Self-Supervised
 * Vision Transformers", §3.1 and Appendix; lightly's `DINOTransform`): 2 global views at 224
 * (crop scale [0.4, 1]) and `nLocalViews` local views at 96 (scale [0.05, 0.4]), each with
 * horizontal flip, colour jitter (0.4, 0.4, 0.2, 0.1) with p = 0.8 and grayscale p = 0.2
 * (BYOL's recipe); blur with p = 1.0 on the first global view, 0.1 on the second and 0.5 on
 * local views; solarization with p = 0.2 on the second global view only. Bicubic resampling.
 *
 * `[N, C, H, W]` → `[2 + nLocalViews]` views: two `[N, C, 224, 224]` then `[N, C, 96, 96]` each.
 */
export class DINOTransform extends MultiViewTransform {
  constructor(o: DINOTransformOptions = {}) {
    const s = o.cjStrength ?? 0.5;
    const [b1, b2, bl] = o.gaussianBlur ?? [1.0, 0.1, 0.5];
    const interpolation = o.interpolation ?? 'bicubic';
    const sigma = o.sigmas ?? [0.1, 2];
    const norm = o.normalize === undefined ? IMAGENET_STATS : o.normalize;
    const view = (size: number, scale: [number, number], blurP: number, solarizeP: number): Compose => {
      const steps: Transform[] = [new RandomResizedCrop({ size, scale, interpolation, hflip: o.hfProb ?? 0.5 })];
      if ((o.vfProb ?? 0) > 0) steps.push(new RandomVerticalFlip(o.vfProb));
      if ((o.rrProb ?? 0) > 0) steps.push(new RandomRotation(o.rrDegrees ?? 90, { p: o.rrProb }));
      const cjProb = o.cjProb ?? 0.8;
      if (cjProb > 0 && s > 0) {
        steps.push(new ColorJitter({
          brightness: s * (o.cjBright ?? 0.8), contrast: s * (o.cjContrast ?? 0.8), saturation: s * (o.cjSat ?? 0.4), hue: s * (o.cjHue ?? 0.2), p: cjProb,
        }));
      }
      if ((o.randomGrayScale ?? 0.2) > 0) steps.push(new RandomGrayscale(o.randomGrayScale ?? 0.2));
      if (blurP > 0) {
        // DINO blurs with PIL's radius = σ; a kernel of 2⌈3σ_max⌉+1 taps, kept below the view size.
        const kDefault = Math.min(2 * Math.ceil(3 * sigma[1]) + 1, Math.max(1, Math.floor((size - 1) / 2) * 2 - 1));
        steps.push(new GaussianBlur({ kernelSize: o.kernelSize ?? kDefault, sigma, p: blurP }));
      }
      if (solarizeP > 0) steps.push(new RandomSolarization({ threshold: 0.5, p: solarizeP }));
      if (norm !== null) steps.push(new Normalize(norm));
      return new Compose(steps);
    };
    const g = o.globalCropSize ?? 224;
    const gs = o.globalCropScale ?? [0.4, 1];
    const l = o.localCropSize ?? 96;
    const ls = o.localCropScale ?? [0.05, 0.4];
    super([
      view(g, gs, b1, 0),
      view(g, gs, b2, o.solarizationProb ?? 0.2),
      ...Array.from({ length: o.nLocalViews ?? 6 }, () => view(l, ls, bl, 0)),
    ], { maxChunkBytes: o.maxChunkBytes });
  }
}

/**
 * The deterministic transform for evaluation, embedding and kNN: uint8 → float, resize the
 * shorter side to `resize` (default `size`; ImageNet practice is 256 for 224), centre crop
 * `size`, normalise. `[N, C, H, W]` → `[N, C, size, size]` float32.
 */
export class EvalTransform implements Transform {
  readonly pipeline: Compose;
  constructor(o: { size: number; resize?: number; interpolation?: Interpolation; normalize?: NormalizeStats | null }) {
    const norm = o.normalize === undefined ? IMAGENET_STATS : o.normalize;
    const steps: Transform[] = [new Resize(o.resize ?? o.size, { interpolation: o.interpolation ?? 'bilinear' }), new CenterCrop(o.size)];
    if (norm !== null) steps.push(new Normalize(norm));
    this.pipeline = new Compose(steps);
  }
  forward(x: Tensor): Tensor {
    return torch.scope(() => this.pipeline.forward(toFloat(x)));
  }
}
