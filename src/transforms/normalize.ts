/**
 * Per-channel normalisation, `(x − mean) / std`, and the channel statistics of the datasets
 * dyad knows: the one home of both. The `Normalize` transform (training views),
 * evaluation / embedding / prediction batches and CLIP's image processor all call `normalize`.
 *
 * The arithmetic is torchvision's `Normalize` (`x.sub_(mean).div_(std)`) and Hugging Face's
 * `normalize` (`(x − mean) / std`), so normalised batches match PyTorch's bit for bit; uint8
 * input is first brought to [0, 1] as `toFloat` does (`x / 255`), so
 * `normalize(u8, s)` equals `normalize(toFloat(u8), s)` exactly.
 */
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { LUMA_WEIGHTS } from './color.js';
import { checkBatch, type Transform } from './core.js';

/** Per-channel mean and standard deviation: 1 value (every channel) or one per channel. */
export type NormalizeStats = { mean: readonly number[]; std: readonly number[] };

/** ImageNet's channel statistics (RGB; torchvision's and lightly's default). */
export const IMAGENET_STATS = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
/** Fashion-MNIST's pixel statistics (1 channel, on [0, 1]). */
export const FMNIST_STATS = { mean: [0.286], std: [0.353] };
/** MNIST's pixel statistics (1 channel, on [0, 1]; the usual 0.1307 / 0.3081). */
export const MNIST_STATS = { mean: [0.1307], std: [0.3081] };

/** Checks that `stats` has the same, non-zero number of means and stds and positive stds. */
export function checkStats(stats: NormalizeStats, who = 'normalize'): void {
  const { mean, std } = stats;
  if (mean.length !== std.length || mean.length === 0) {
    throw new RangeError(`${who}: mean and std need the same number of values (1 or C), got ${mean.length} and ${std.length}`);
  }
  if (std.some((s) => !(s > 0))) throw new RangeError(`${who}: std must be positive, got [${std.join(', ')}]`);
}

/**
 * The per-channel (mean, std) for a `c`-channel batch: `c` values as they are, 1 value
 * repeated, and 3-value statistics on a 1-channel batch reduced to their luma-weighted average
 * (the statistics of a gray image seen as RGB), so ImageNet defaults work on MNIST-like data.
 */
export function channelStats(stats: NormalizeStats, c: number, who = 'normalize'): { mean: number[]; std: number[] } {
  const { mean, std } = stats;
  if (mean.length === c && std.length === c) return { mean: [...mean], std: [...std] };
  if (mean.length === 1 && std.length === 1) return { mean: Array(c).fill(mean[0]), std: Array(c).fill(std[0]) };
  if (mean.length === 3 && std.length === 3 && c === 1) {
    const dot = (v: readonly number[]): number => v.reduce((a, b, i) => a + b * LUMA_WEIGHTS[i]!, 0);
    return { mean: [dot(mean)], std: [dot(std)] };
  }
  throw new RangeError(`${who}: ${mean.length} mean/std values for a ${c}-channel batch; pass 1 or ${c} values`);
}

/**
 * `(x − mean) / std` per channel. `x`: `[N, C, H, W]`, uint8 (divided by 255 first) or float
 * (taken as it is, in [0, 1]). `rescale`: multiply by this instead of dividing uint8 by 255
 * (Hugging Face's `rescale_factor`, applied to any dtype). `stats`: 1 or C values (see
 * `channelStats`), or null to only convert. Returns float32 for integer input, else `x`'s
 * dtype, on `x`'s device; always a new tensor.
 */
export function normalize(x: Tensor, stats: NormalizeStats | null, o: { rescale?: number; who?: string } = {}): Tensor {
  const who = o.who ?? 'normalize';
  const [, c] = checkBatch(x, who, { anyC: true, anyDtype: true });
  if (stats !== null) checkStats(stats, who);
  const cs = stats === null ? null : channelStats(stats, c, who);
  return torch.scope(() => {
    // y is a fresh tensor from here on, so the remaining steps run in place.
    let y: Tensor;
    if (!torch.isFloatingPoint(x.dtype)) {
      y = x.to('float32');
      if (o.rescale !== undefined) y.mul_(o.rescale);
      else y.div_(255);
    } else if (o.rescale !== undefined) {
      y = x.mul(o.rescale);
    } else {
      if (cs === null) return x.clone();
      y = x.sub(perChannel(cs.mean, x));
      return y.div_(perChannel(cs.std, x));
    }
    if (cs === null) return y;
    return y.sub_(perChannel(cs.mean, y)).div_(perChannel(cs.std, y));
  });
}

/** `[1, C, 1, 1]` with `like`'s dtype and device (the values rounded to float32 first). */
function perChannel(v: number[], like: Tensor): Tensor {
  return torch.tensor(v, { shape: [1, v.length, 1, 1] }).to({ dtype: like.dtype, device: like.device });
}

/**
 * `normalize` as a transform: (x − mean) / std per channel on a float batch `[N, C, H, W]`
 * (see `channelStats` for 1-value and 3-on-1-channel statistics). `[N, C, H, W]` → same.
 */
export class Normalize implements Transform {
  readonly mean: number[];
  readonly std: number[];
  constructor(o: NormalizeStats) {
    checkStats(o, 'Normalize');
    this.mean = [...o.mean];
    this.std = [...o.std];
  }
  /** The per-channel (mean, std) used for a `c`-channel batch. */
  statsFor(c: number): { mean: number[]; std: number[] } {
    return channelStats(this, c, 'Normalize');
  }
  forward(x: Tensor): Tensor {
    checkBatch(x, 'Normalize', { anyC: true });
    return normalize(x, this, { who: 'Normalize' });
  }
}
