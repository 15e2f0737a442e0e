/**
 * Subsets and splits: `balancedSubset` (seeded, class-balanced index
 * selection, e.g. "1% of the labels" for a linear probe), the `Subset`
 * dataset wrapper, and `randomSplit` (seeded train/val split, like
 * `torch.utils.data.random_split`). All indices come back sorted, which keeps
 * file access local; the loader shuffles.
 */
import { Rng } from './random.js';
import { checkIndex, type Dataset, type Sample } from './types.js';

/**
 * Picks a class-balanced subset of `labels`, deterministically for a `seed`.
 * - `fraction` in (0, 1]: from every class, `max(1, round(fraction × count))`
 *   samples (stratified: class proportions are kept).
 * - `{ perClass: k }`: `k` samples from every class (all of a class with fewer).
 * Every class present keeps at least one sample. Returns sorted indices.
 *
 * @throws RangeError for a bad fraction/perClass, or negative labels (unlabeled data).
 */
export function balancedSubset(labels: ArrayLike<number>, spec: number | { perClass: number }, seed = 0): number[] {
  let take: (count: number) => number;
  if (typeof spec === 'number') {
    if (!(spec > 0 && spec <= 1)) throw new RangeError(`balancedSubset: fraction must be in (0, 1], got ${spec}. Use { perClass: k } for a count.`);
    take = (count) => Math.min(count, Math.max(1, Math.round(spec * count)));
  } else {
    const k = spec?.perClass;
    if (!Number.isInteger(k) || k < 1) throw new RangeError(`balancedSubset: perClass must be a positive integer, got ${String(k)}`);
    take = (count) => Math.min(count, k);
  }
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i]!;
    if (!Number.isInteger(l) || l < 0) {
      throw new RangeError(`balancedSubset: sample ${i} has label ${l}; a balanced subset needs labels >= 0. For unlabeled data use randomSplit or Rng.permutation.`);
    }
    let list = byClass.get(l);
    if (!list) byClass.set(l, (list = []));
    list.push(i);
  }
  const rng = new Rng(seed);
  const out: number[] = [];
  for (const label of [...byClass.keys()].sort((a, b) => a - b)) {
    const idx = byClass.get(label)!;
    const k = take(idx.length);
    // partial Fisher-Yates: the first k slots become a uniform sample
    for (let i = 0; i < k; i++) {
      const j = i + rng.int(idx.length - i);
      const t = idx[i]!;
      idx[i] = idx[j]!;
      idx[j] = t;
      out.push(idx[i]!);
    }
  }
  return out.sort((a, b) => a - b);
}

/**
 * The samples of `dataset` at `indices`, as a dataset. `Sample.index` is the
 * position in the subset; `path` still identifies the file.
 */
export class Subset<S extends Sample = Sample> implements Dataset<S> {
  readonly indices: Int32Array;
  /** Labels of the subset's samples, when the parent has `labels`. */
  readonly labels?: Int32Array;

  constructor(readonly dataset: Dataset<S>, indices: ArrayLike<number>) {
    this.indices = Int32Array.from(indices as ArrayLike<number>);
    for (let k = 0; k < indices.length; k++) {
      const i = indices[k]!;
      if (!Number.isInteger(i) || i < 0 || i >= dataset.length) {
        throw new RangeError(`Subset: index ${i} (position ${k}) is out of range for a dataset of length ${dataset.length}`);
      }
    }
    const parent = dataset.labels;
    if (parent) this.labels = Int32Array.from(this.indices, (i) => parent[i]!);
  }

  get length(): number {
    return this.indices.length;
  }

  get names(): string[] {
    return this.dataset.names;
  }

  async get(i: number): Promise<S> {
    checkIndex(i, this.length, 'subset');
    const s = await this.dataset.get(this.indices[i]!);
    return { ...s, index: i };
  }

  /** Delegates to the parent's `getBatch` (so its bad-file policy applies), renumbering `index`. */
  async getBatch(indices: number[]): Promise<S[]> {
    for (const i of indices) checkIndex(i, this.length, 'subset');
    const parentIdx = indices.map((i) => this.indices[i]!);
    const got = await this.dataset.getBatch(parentIdx);
    // The parent keeps request order and may drop samples; match them back in order.
    const out: S[] = [];
    let k = 0;
    for (const s of got) {
      while (k < parentIdx.length && parentIdx[k] !== s.index) k++;
      if (k === parentIdx.length) throw new Error('Subset.getBatch: the parent returned samples out of request order');
      out.push({ ...s, index: indices[k]! });
      k++;
    }
    return out;
  }
}

/**
 * Splits `0..n-1` at random into parts of the given sizes: integers summing
 * to `n`, or fractions summing to 1 (each part gets `floor(n × f)`, the
 * remainder goes one by one to the first parts, as in PyTorch). Each part is sorted.
 */
export function randomSplitIndices(n: number, lengths: number[], seed = 0): number[][] {
  if (lengths.length === 0) throw new RangeError('randomSplit: lengths must not be empty');
  let sizes: number[];
  const sum = lengths.reduce((a, b) => a + b, 0);
  if (lengths.every((l) => l >= 0 && l <= 1) && Math.abs(sum - 1) < 1e-6 && !(lengths.every(Number.isInteger) && sum === n)) {
    sizes = lengths.map((f) => Math.floor(n * f));
    let rest = n - sizes.reduce((a, b) => a + b, 0);
    for (let i = 0; rest > 0; i = (i + 1) % sizes.length, rest--) sizes[i]!++;
  } else {
    if (!lengths.every((l) => Number.isInteger(l) && l >= 0)) {
      throw new RangeError(`randomSplit: lengths must be non-negative integers summing to ${n}, or fractions summing to 1; got [${lengths.join(', ')}]`);
    }
    if (sum !== n) throw new RangeError(`randomSplit: lengths [${lengths.join(', ')}] sum to ${sum}, but the dataset has ${n} samples`);
    sizes = lengths;
  }
  const perm = new Rng(seed).permutation(n);
  const parts: number[][] = [];
  let at = 0;
  for (const size of sizes) {
    parts.push(Array.from(perm.subarray(at, at + size)).sort((a, b) => a - b));
    at += size;
  }
  return parts;
}

/** Splits a dataset at random into `Subset`s (e.g. `randomSplit(ds, [0.9, 0.1], 42)`); see `randomSplitIndices`. */
export function randomSplit<S extends Sample>(dataset: Dataset<S>, lengths: number[], seed = 0): Subset<S>[] {
  return randomSplitIndices(dataset.length, lengths, seed).map((idx) => new Subset(dataset, idx));
}
