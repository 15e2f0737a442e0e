/**
 * `DistributedSampler`: each rank's shard of a dataset, as PyTorch's
 * `torch.utils.data.distributed.DistributedSampler` (same options and arithmetic).
 *
 * Every rank computes the same order of epoch `e` — the permutation `DataLoader` would use with
 * the same `seed` (so one replica reproduces a single-process run's order exactly) — and takes
 * every `numReplicas`-th index starting at its `rank`:
 *
 *     order (n = 10, 3 replicas, dropLast false): o0 o1 o2 o3 o4 o5 o6 o7 o8 o9 | o0 o1   (padded to 12 by wrapping)
 *     rank 0: o0 o3 o6 o9    rank 1: o1 o4 o7 o0    rank 2: o2 o5 o8 o1
 *
 * - `dropLast` false (default): the order is padded by wrapping around to `numSamples ×
 *   numReplicas`, so every rank gets `ceil(n / numReplicas)` indices and a few repeat.
 * - `dropLast` true: the tail is dropped instead; every rank gets `floor(n / numReplicas)`.
 * Shards are disjoint (up to the padding) and together cover the order.
 *
 * With a per-rank batch `b` the k-th batches of all ranks hold exactly the samples of the k-th
 * global batch of `b × numReplicas` in the single-process order, so training on R ranks sees
 * the same global batches as one process with an R times larger batch.
 *
 * **Epochs and resume.** `setEpoch(e)` before each epoch (as PyTorch; `DataLoader` passes its
 * epoch to `indices` itself). `setEpoch(e, skip)` resumes inside an epoch: the first `skip`
 * samples of the order (consumed by all ranks together, e.g. `steps × batch × oldWorldSize`)
 * are left out and the rest is sharded, so a run resumed with another world size still sees
 * every remaining sample once.
 */
import { LaunchError } from './env.js';
import { epochOrder, type Sampler } from '../data/loader.js';

export interface DistributedSamplerOptions {
  /** Processes taking part (default: 1). PyTorch: `num_replicas`. */
  numReplicas?: number;
  /** This process's rank, 0 .. numReplicas − 1 (default 0). */
  rank?: number;
  /** Shuffle every epoch (default true, as PyTorch). */
  shuffle?: boolean;
  /** Seed of the shuffle, identical on every rank (default 0). */
  seed?: number;
  /** Drop the tail that does not divide evenly instead of padding by wrapping (default false). */
  dropLast?: boolean;
}

export class DistributedSampler implements Sampler {
  readonly datasetLength: number;
  readonly numReplicas: number;
  readonly rank: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly dropLast: boolean;
  private _epoch = 0;
  private _skip = 0;

  /** @param dataset a dataset (its `length`) or a number of samples. */
  constructor(dataset: number | { length: number }, o: DistributedSamplerOptions = {}) {
    const n = typeof dataset === 'number' ? dataset : dataset?.length;
    const check = (name: string, v: unknown, min: number): number => {
      if (!Number.isSafeInteger(v) || (v as number) < min) throw new LaunchError(`DistributedSampler: ${name} must be an integer >= ${min}, got ${String(v)}`);
      return v as number;
    };
    this.datasetLength = check('the dataset length', n, 0);
    this.numReplicas = check('numReplicas', o.numReplicas ?? 1, 1);
    this.rank = check('rank', o.rank ?? 0, 0);
    if (this.rank >= this.numReplicas) throw new LaunchError(`DistributedSampler: rank ${this.rank} is out of range for numReplicas ${this.numReplicas} (ranks run 0 .. ${this.numReplicas - 1})`);
    this.seed = o.seed ?? 0;
    if (!Number.isSafeInteger(this.seed)) throw new LaunchError(`DistributedSampler: seed must be a safe integer, got ${String(o.seed)}`);
    this.shuffle = o.shuffle ?? true;
    this.dropLast = o.dropLast ?? false;
  }

  get epoch(): number {
    return this._epoch;
  }

  /** Samples of the current epoch's order skipped before sharding (see the module comment). */
  get skip(): number {
    return this._skip;
  }

  /** Sets the epoch (the same on every rank) and, to resume inside it, the samples already consumed by all ranks. */
  setEpoch(epoch: number, skip = 0): void {
    if (!Number.isSafeInteger(epoch) || epoch < 0) throw new LaunchError(`DistributedSampler.setEpoch: epoch must be a non-negative integer, got ${epoch}`);
    if (!Number.isSafeInteger(skip) || skip < 0 || skip > this.datasetLength) {
      throw new LaunchError(`DistributedSampler.setEpoch: skip must be an integer in 0 .. ${this.datasetLength} (the dataset length), got ${skip}`);
    }
    this._epoch = epoch;
    this._skip = skip;
  }

  /** Indices per rank of an epoch whose first `skip` samples are skipped. PyTorch: `num_samples`. */
  numSamplesFor(skip = this._skip): number {
    const m = this.datasetLength - skip;
    return this.dropLast ? Math.floor(m / this.numReplicas) : Math.ceil(m / this.numReplicas);
  }

  /** This rank's indices per epoch (current epoch and skip). */
  get length(): number {
    return this.numSamplesFor();
  }

  /** All ranks' indices together: `numSamples × numReplicas`. PyTorch: `total_size`. */
  get totalSize(): number {
    return this.length * this.numReplicas;
  }

  /**
   * This rank's indices of `epoch`, in order. The `skip` set by `setEpoch` applies to its epoch
   * only; another epoch is taken from its start.
   */
  indices(epoch = this._epoch): number[] {
    const skip = epoch === this._epoch ? this._skip : 0;
    const order = Array.from(epochOrder(this.datasetLength, this.shuffle, this.seed, epoch).subarray(skip));
    const per = this.numSamplesFor(skip);
    const total = per * this.numReplicas;
    if (order.length === 0 || per === 0) return [];
    // pad by wrapping around (possibly several times, as PyTorch), or drop the tail
    for (let i = 0; order.length < total; i++) order.push(order[i]!);
    order.length = total;
    const out = new Array<number>(per);
    for (let k = 0; k < per; k++) out[k] = order[this.rank + k * this.numReplicas]!;
    return out;
  }

  [Symbol.iterator](): Iterator<number> {
    return this.indices()[Symbol.iterator]();
  }
}
