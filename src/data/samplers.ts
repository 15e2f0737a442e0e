/**
 * `PKBatchSampler`: batches of P classes × K images each (Hermans, Beyer & Leibe 2017, "In
 * Defense of the Triplet Loss for Person Re-Identification", §3), so that every image in a batch
 * has K − 1 positives and (P − 1)·K negatives for the triplets mined in it (`TripletLoss`).
 *
 * Epoch `e`'s batches depend only on `(seed, e)` (as `DataLoader`'s order), so a resumed run draws
 * the same batches. Within an epoch each class's images are visited in a shuffled order, cycling
 * (reshuffled) when a class runs out, and each batch draws P distinct classes at random; a class
 * with fewer than K images repeats some. An epoch has ⌊N / (P·K)⌋ batches, as many images as one
 * pass. Labels < 0 (unlabeled) are never drawn.
 */
import { DataError } from './errors.js';
import { Rng } from './random.js';

export class PKBatchSampler {
  readonly p: number;
  readonly k: number;
  readonly seed: number;
  /** Dataset indices of each class that has images. */
  readonly classes: number[][];
  readonly numSamples: number;

  constructor(labels: ArrayLike<number>, o: { p: number; k: number; seed?: number }) {
    if (!Number.isInteger(o.p) || o.p < 2) throw new RangeError(`PKBatchSampler: p (classes per batch) must be an integer ≥ 2, got ${o.p}`);
    if (!Number.isInteger(o.k) || o.k < 2) throw new RangeError(`PKBatchSampler: k (images per class) must be an integer ≥ 2, got ${o.k}`);
    this.p = o.p;
    this.k = o.k;
    this.seed = o.seed ?? 0;
    const byClass = new Map<number, number[]>();
    for (let i = 0; i < labels.length; i++) {
      const y = labels[i]!;
      if (y < 0) continue;
      if (!byClass.has(y)) byClass.set(y, []);
      byClass.get(y)!.push(i);
    }
    this.classes = [...byClass.keys()].sort((a, b) => a - b).map((y) => byClass.get(y)!);
    this.numSamples = this.classes.reduce((s, c) => s + c.length, 0);
    if (this.classes.length < this.p) {
      throw new DataError(`PKBatchSampler: a batch needs ${this.p} classes (batch / samples per class) but the data has ${this.classes.length} labelled classes: lower the batch or raise the samples per class`);
    }
  }

  get batchSize(): number {
    return this.p * this.k;
  }

  /** Batches per epoch. */
  get length(): number {
    return Math.floor(this.numSamples / this.batchSize);
  }

  /** The index lists of epoch `epoch`'s batches (each P·K indices, class by class). */
  batches(epoch: number): number[][] {
    const rng = new Rng(this.seed * 7919 + epoch * 104729 + 1);
    const orders = this.classes.map((c) => Array.from(rng.permutation(c.length), (j) => c[j]!));
    const next = this.classes.map(() => 0);
    const out: number[][] = [];
    for (let b = 0; b < this.length; b++) {
      const chosen = Array.from(rng.permutation(this.classes.length).subarray(0, this.p));
      const batch: number[] = [];
      for (const c of chosen) {
        for (let j = 0; j < this.k; j++) {
          if (next[c]! >= orders[c]!.length) {
            const cls = this.classes[c]!;
            orders[c] = Array.from(rng.permutation(cls.length), (i) => cls[i]!);
            next[c] = 0;
          }
          batch.push(orders[c]![next[c]!++]!);
        }
      }
      out.push(batch);
    }
    return out;
  }
}
