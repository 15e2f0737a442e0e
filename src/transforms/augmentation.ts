/**
 * The base class of the random augmentations, after Kornia's `_AugmentationBase` (Riba et al.
 * 2020, "Kornia: an Open Source Differentiable Computer Vision Library for PyTorch"): it owns
 * the per-sample probability `p`, the batch check, the parameter draw, `lastParams`, and the
 * application to the subset of samples the draw selected. A transform only says how to draw
 * its parameters (`generateParams`) and how to apply them to a (sub)batch (`applyTo`).
 *
 * `forward(x)`, for `x` `[N, C, H, W]`:
 *  1. checks the batch (`checkBatch`: 4-d float, C = 1 or 3 unless the transform takes any C);
 *  2. `sampleParams(N, x.shape)`: draws the flags `torch.rand([N]) < p` (unless the transform
 *     applies to every sample and draws none), then `generateParams(N, flags, shape)`;
 *  3. stores the draw in `lastParams` (replaying it with `apply(x, lastParams)` gives the
 *     same output, bit for bit: exact resume and tests rely on it);
 *  4. `apply(x, params)`: returns an alias of `x` when no sample is selected or the params
 *     are an identity for this batch; runs `applyTo` on the whole batch when every sample is
 *     selected; else gathers the selected samples (`indexSelect`), runs `applyTo` on them
 *     and scatters the result into a copy of `x` (`indexCopy_`), so the other samples stay
 *     bit-exact, as torchvision's `RandomApply` leaves them.
 */
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { bernoulli, checkBatch, checkProb, countOnes, indicesOf, type RandomTransform } from './core.js';

/** Which samples of the parameters' batch the tensor given to `applyTo` holds. */
export interface Selection {
  /** Per-sample flags of the full batch (1 = in the sub-batch, in order), or null for the whole batch. */
  on: Uint8Array | null;
  /** True when the sub-batch is a gathered copy that `applyTo` may modify in place or free. */
  owned: boolean;
}

/** The entries of a per-sample array for the samples in `on` (the array itself when `on` is null). */
export function selectRows<T extends Float32Array | Int32Array | Uint8Array>(a: T, on: Uint8Array | null): T {
  return on === null ? a : (a.filter((_, i) => on[i] === 1) as T);
}

export interface RandomAugmentationOptions {
  /**
   * Probability of applying the transform to each sample, or null for a transform that
   * applies to every sample and draws no flags (a crop). Validated to lie in [0, 1].
   */
  p: number | null;
  /** Accept any channel count (default: 1 or 3). */
  anyC?: boolean;
}

/**
 * A batched random augmentation with per-sample parameters `P` (plain typed arrays, one entry
 * per sample). See the module comment for what the base class does; subclasses implement
 * `generateParams`, `paramsLength`, `applyTo` and, when they draw flags, `appliedTo`.
 */
export abstract class RandomAugmentation<P extends object> implements RandomTransform<P> {
  /** Probability of applying to each sample (1 for transforms that draw no flags). */
  readonly p: number;
  /** The parameters of the last `forward` (for tests, logging and replaying a view). */
  lastParams: P | null = null;
  /** The transform's name in errors. */
  protected readonly name: string;
  private readonly drawsFlags: boolean;
  private readonly anyC: boolean;

  constructor(name: string, o: RandomAugmentationOptions) {
    this.name = name;
    this.drawsFlags = o.p !== null;
    this.p = o.p === null ? 1 : checkProb(`${name}.p`, o.p);
    this.anyC = o.anyC ?? false;
  }

  /**
   * The parameters for `n` samples of shape `shape` (`[N, C, H, W]`; only crops read it):
   * the Bernoulli(p) flags first (`torch.rand([n]) < p`, also drawn when p = 0 so the
   * generator's stream does not depend on p), then the transform's own draws.
   */
  sampleParams(n: number, shape: number[] = []): P {
    return this.generateParams(n, this.drawsFlags ? bernoulli(n, this.p) : null, shape);
  }

  forward(x: Tensor): Tensor {
    const [n] = checkBatch(x, this.name, { anyC: this.anyC });
    this.lastParams = this.sampleParams(n, x.shape);
    return this.apply(x, this.lastParams);
  }

  apply(x: Tensor, params: P): Tensor {
    const [n] = checkBatch(x, this.name, { anyC: this.anyC });
    const len = this.paramsLength(params);
    if (len !== n) throw new RangeError(`${this.name}.apply: params are for ${len} samples, the batch has ${n}`);
    const flags = this.appliedTo(params);
    const k = flags === null ? n : countOnes(flags);
    if (k === 0 || this.isIdentity(params, x.shape)) return x.alias();
    return torch.scope(() => {
      if (k === n) return this.applyTo(x, params, { on: null, owned: false });
      const idx = indicesOf(flags!, x);
      const y = this.applyTo(x.indexSelect(0, idx), params, { on: flags, owned: true });
      return x.clone().indexCopy_(0, idx, y);
    });
  }

  /** Draws the transform's parameters for `n` samples; `applied` are the drawn flags (null when none are drawn). */
  protected abstract generateParams(n: number, applied: Uint8Array | null, shape: number[]): P;
  /** The number of samples `params` are for. */
  protected abstract paramsLength(params: P): number;
  /** Per-sample flags (1 = transform the sample) in `params`, or null when every sample is transformed as one batch. */
  protected appliedTo(_params: P): Uint8Array | null {
    return null;
  }
  /** True when `params` leave a batch of shape `shape` unchanged (checked before any work; default false). */
  protected isIdentity(_params: P, _shape: number[]): boolean {
    return false;
  }
  /**
   * Applies `params` to `x`: the whole batch, or the selected samples in order (`sel.on`;
   * pick their per-sample values with `selectRows(values, sel.on)`). Runs inside a scope;
   * returns a new tensor of the output shape for the samples in `x`.
   */
  protected abstract applyTo(x: Tensor, params: P, sel: Selection): Tensor;
}
