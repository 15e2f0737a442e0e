/**
 * The transform contract and shared helpers. Every transform runs on a whole batch at once
 * (Kornia's approach: Riba et al. 2020, "Kornia: an Open Source Differentiable Computer Vision
 * Library for PyTorch"): input `[N, C, H, W]` float in [0, 1], C = 1 or 3, on any device;
 * random parameters are drawn per sample with libtorch's generator (`torch.rand([N])`, ...),
 * so `torch.manualSeed(s)` makes every view reproducible. Parameters are drawn on the CPU
 * (the same seed gives the same views on every device) and moved to the batch's device.
 *
 * Ownership: `forward` never modifies its input and always returns a new `Tensor` object
 * (an alias of the input when the transform is an identity), which belongs to the caller's
 * enclosing `torch.scope`; everything made in between is freed before `forward` returns.
 */
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';

/** A batched augmentation: `[N, C, H, W]` in, `[N, C', H', W']` out. */
export interface Transform {
  forward(x: Tensor): Tensor;
}

/**
 * A transform with per-sample random parameters `P` (plain typed arrays, one entry per
 * sample). `sampleParams(n, shape)` draws them with libtorch's generator, `apply(x, params)`
 * applies given ones, and `forward(x)` is `apply(x, sampleParams(N, x.shape))`, recording
 * the draw in `lastParams` (for tests, logging and replaying a view). Every random
 * augmentation implements it by extending `RandomAugmentation` (augmentation.ts).
 */
export interface RandomTransform<P> extends Transform {
  sampleParams(n: number, shape: number[]): P;
  apply(x: Tensor, params: P): Tensor;
  readonly lastParams: P | null;
}

/**
 * Checks that `x` is a float batch `[N, C, H, W]` with C = 1 or 3 (or any C when `anyC`).
 * `who` names the transform in the error.
 */
export function checkBatch(x: Tensor, who: string, o: { anyC?: boolean; anyDtype?: boolean } = {}): [number, number, number, number] {
  const s = x.shape;
  if (s.length !== 4) {
    throw new TypeError(`${who}: expected a batch [N, C, H, W], got shape [${s.join(', ')}]; add a batch dimension with x.unsqueeze(0)`);
  }
  if (!o.anyDtype && !torch.isFloatingPoint(x.dtype)) {
    throw new TypeError(`${who}: expected a float batch in [0, 1], got ${x.dtype}; convert uint8 images with toFloat(x) first`);
  }
  if (!o.anyC && s[1] !== 1 && s[1] !== 3) {
    throw new TypeError(`${who}: expected 1 or 3 channels, got ${s[1]} (shape [${s.join(', ')}])`);
  }
  return s as [number, number, number, number];
}

/**
 * uint8 images `[N, C, H, W]` (as the loader hands them out) to float32 in [0, 1] (x / 255).
 * Float input is returned as an alias (assumed to be in [0, 1] already).
 */
export function toFloat(x: Tensor): Tensor {
  if (torch.isFloatingPoint(x.dtype)) return x.alias();
  return torch.scope(() => x.to('float32').div_(255));
}

/** `toFloat` as a transform, for the head of a `Compose`. */
export class ToFloat implements Transform {
  forward(x: Tensor): Tensor {
    return toFloat(x);
  }
}

/**
 * Largest batch slice, in bytes of float32 input, that a pipeline processes at once (default
 * 16 MiB: 27 images at 224×224×3, 5,000 at 28×28×1). Bigger batches are split along N, run
 * slice by slice and concatenated. The reason is the allocator, not the cache: glibc serves
 * blocks over 32 MiB with fresh mmap'd pages every time, and the page faults cost ~10× the
 * arithmetic of a pass (a 38 MiB clone took 25 ms, four 9.6 MiB ones 2.7 ms).
 */
export const DEFAULT_MAX_CHUNK_BYTES = 16 * 1024 * 1024;

/** Samples per slice so that one float32 slice of `x` stays under `maxBytes`. */
export function samplesPerChunk(x: Tensor, maxBytes = DEFAULT_MAX_CHUNK_BYTES): number {
  const per = x.shape.slice(1).reduce((a, b) => a * b, 1) * 4;
  return Math.max(1, Math.floor(maxBytes / per));
}

/**
 * Runs `fn` on slices of `x` along the batch (each at most `per` samples) and concatenates
 * the K outputs of each slice along the batch: `fn(slice) → K tensors`, result K tensors.
 * Random parameters are drawn slice by slice, so results are deterministic for a given seed
 * and slice size.
 */
export function mapChunks(x: Tensor, per: number, fn: (slice: Tensor) => Tensor[]): Tensor[] {
  const n = x.size(0);
  if (n <= per) return fn(x);
  return torch.scope(() => {
    const parts: Tensor[][] = [];
    for (let s = 0; s < n; s += per) parts.push(fn(x.narrow(0, s, Math.min(per, n - s))));
    return parts[0]!.map((_, k) => {
      const col = parts.map((p) => p[k]!);
      const out = torch.cat(col);
      for (const t of col) t.dispose();
      return out;
    });
  });
}

/**
 * Runs transforms in sequence. Intermediate batches are freed as soon as the next step has
 * consumed them, and batches over `maxChunkBytes` are processed in slices (see
 * `DEFAULT_MAX_CHUNK_BYTES`), so the peak memory is about two slices plus the output.
 */
export class Compose implements Transform {
  readonly transforms: Transform[];
  readonly maxChunkBytes: number;
  constructor(transforms: Transform[], o: { maxChunkBytes?: number } = {}) {
    this.transforms = transforms;
    this.maxChunkBytes = o.maxChunkBytes ?? DEFAULT_MAX_CHUNK_BYTES;
  }
  forward(x: Tensor): Tensor {
    if (x.ndim === 4) return mapChunks(x, samplesPerChunk(x, this.maxChunkBytes), (s) => [this.run(s)])[0]!;
    return this.run(x);
  }
  private run(x: Tensor): Tensor {
    let cur = x;
    for (const t of this.transforms) {
      const next = t.forward(cur);
      if (cur !== x && next !== cur) cur.dispose();
      cur = next;
    }
    return cur === x ? x.alias() : cur;
  }
}

// ---- parameter helpers (internal) -----------------------------------------------------------

/** `n` uniform draws on [lo, hi) from libtorch's generator, as a Float32Array. */
export function uniform(n: number, lo: number, hi: number): Float32Array {
  const u = randArray(n);
  for (let i = 0; i < n; i++) u[i] = lo + (hi - lo) * u[i]!;
  return u;
}

/** `n` draws of U[0, 1) from libtorch's generator. */
export function randArray(n: number): Float32Array {
  if (n === 0) return new Float32Array(0);
  return torch.scope(() => torch.rand([n]).toFloat32Array());
}

/** Per-sample Bernoulli(p) flags (1 = apply), drawn as `torch.rand([n]) < p`. */
export function bernoulli(n: number, p: number): Uint8Array {
  const out = new Uint8Array(n);
  if (p <= 0) {
    randArray(n); // keep the generator's stream independent of p
    return out;
  }
  const u = randArray(n);
  for (let i = 0; i < n; i++) out[i] = u[i]! < p ? 1 : 0;
  return out;
}

export const countOnes = (m: Uint8Array): number => m.reduce((a, b) => a + b, 0);

/** A per-sample value as a `[N, 1, 1, 1]` tensor with `like`'s dtype and device. */
export function perSample(values: Float32Array | Uint8Array, like: Tensor, dtype?: torch.DType): Tensor {
  const n = values.length;
  const arr = values instanceof Float32Array ? values : Float32Array.from(values);
  let t = torch.tensor(arr, { shape: [n, 1, 1, 1] });
  const want = dtype ?? like.dtype;
  if (want !== 'float32') t = t.to(want);
  if (like.device !== 'cpu') t = t.to(like.device);
  return t;
}

/** A per-sample boolean mask `[N, 1, 1, 1]` on `like`'s device. */
export function perSampleMask(flags: Uint8Array, like: Tensor): Tensor {
  let t = torch.tensor(flags, { shape: [flags.length, 1, 1, 1] }).to('bool');
  if (like.device !== 'cpu') t = t.to(like.device);
  return t;
}

/** Indices (int64, on `like`'s device) of the samples whose flag is set. */
export function indicesOf(flags: Uint8Array, like: Tensor): Tensor {
  const idx: bigint[] = [];
  for (let i = 0; i < flags.length; i++) if (flags[i]) idx.push(BigInt(i));
  let t = torch.tensor(BigInt64Array.from(idx));
  if (like.device !== 'cpu') t = t.to(like.device);
  return t;
}

/** `[lo, hi]` from a number `v` as `[center − v, center + v]` (clamped at `min`) or a pair. */
export function range(name: string, v: number | [number, number], center: number, min = -Infinity): [number, number] {
  if (Array.isArray(v)) {
    if (v.length !== 2 || !(v[0] <= v[1])) throw new RangeError(`${name}: expected [min, max] with min <= max, got [${v.join(', ')}]`);
    return [v[0], v[1]];
  }
  if (!(v >= 0)) throw new RangeError(`${name}: expected a non-negative number, got ${v}`);
  return [Math.max(min, center - v), center + v];
}

export function checkProb(name: string, p: number): number {
  if (!(p >= 0 && p <= 1)) throw new RangeError(`${name}: probability must be in [0, 1], got ${p}`);
  return p;
}
