/**
 * `DistributedDataParallel` (PyTorch's DDP; Li et al. 2020, "PyTorch Distributed: Experiences on
 * Accelerating Data Parallel Training"): every rank holds a replica of the model, trains on its own
 * shard of each batch, and averages the gradients before the optimizer step, so the replicas stay
 * equal and a step over W ranks × batch B equals one step over batch W·B (for a loss that is a mean
 * over the batch).
 *
 * - At creation the parameters and buffers of rank 0 are broadcast to every rank.
 * - Gradients are averaged with bucketed all-reduce: the parameters, in reverse order (the order
 *   backward produces their gradients), are grouped into buckets of about `bucketCapMB` (25 MB, as
 *   PyTorch), each flattened into one tensor and all-reduced as one message.
 * - `overlap: true` (default): a post hook on each parameter's gradient accumulator (the addon's
 *   reducer, native/src/distributed.cc, as c10d's Reducer) starts a bucket's all-reduce on Gloo's
 *   threads as soon as its last gradient is ready, while backward goes on with the earlier layers.
 *   `overlap: false` starts every bucket after backward. Either way `await ddp.syncGradients()`
 *   after `loss.backward()` and before `optimizer.step()` waits for them and writes the mean.
 *
 * Usage:
 *   const ddp = await DistributedDataParallel.create(model);
 *   const loss = lossFn(ddp.forward(x)); loss.backward(); await ddp.syncGradients(); opt.step();
 *
 * Every rank must give every parameter a gradient in every step (PyTorch's default
 * find_unused_parameters=False): a parameter without one gets zeros. `noSync(fn)` runs backward
 * passes that only accumulate locally (gradient accumulation), as PyTorch's `no_sync()`.
 * State dict keys are the wrapped module's under `module.`, as PyTorch's.
 */
import { N } from '../torch/native.js';
import type { ReducerHandle } from '../torch/native_ops.js';
import { Module } from '../nn/module.js';
import { tensor } from '../torch/creation.js';
import { DistributedError, allGather, broadcast, distError, getRank, getWorldSize } from './process_group.js';

/**
 * Checks that every rank wraps the same architecture (PyTorch's
 * `_verify_param_shape_across_processes`): the count, sizes and shapes of the parameters and
 * buffers. A mismatch would otherwise make Gloo abort a process on the first broadcast.
 */
async function verifySameModel(module: Module): Promise<void> {
  const describe = (ts: { shape: number[] }[]): number[] => {
    let hash = 17;
    for (const t of ts) for (const d of [t.shape.length, ...t.shape]) hash = (hash * 31 + d) % 2147483647;
    return [ts.length, ts.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0), hash];
  };
  const mine = [...describe(module.parameters()), ...describe(module.buffers())];
  const all = (await allGather(tensor(mine, { dtype: 'int64' }))).map((t) => t.toArray() as number[]);
  if (all.every((sig) => sig.every((v, i) => v === mine[i]))) return;
  const text = all.map((s, r) => `rank ${r}: ${s[0]} parameters of ${s[1]} elements, ${s[3]} buffers of ${s[4]}${s[2] !== all[0]![2] || s[5] !== all[0]![5] ? ' (other shapes)' : ''}`);
  throw new DistributedError('DIST_FAILED', 'DistributedDataParallel', getRank(),
    `DistributedDataParallel: the ranks hold different models (${text.join('; ')}); build the same architecture on every rank`);
}

export interface DistributedDataParallelOptions {
  /** Bucket size for the gradient all-reduce, in MiB. Default 25 (PyTorch's bucket_cap_mb). */
  bucketCapMB?: number;
  /** Start each bucket's all-reduce during backward (autograd hooks). Default true. */
  overlap?: boolean;
  /** Broadcast rank 0's buffers (BatchNorm's running statistics) at creation. Default true. */
  broadcastBuffers?: boolean;
}

export class DistributedDataParallel<M extends Module = Module> extends Module {
  /** The wrapped model (PyTorch's `ddp.module`). */
  readonly module: M;
  readonly bucketCapMB: number;
  readonly overlap: boolean;
  declare private reducer: ReducerHandle | null;

  private constructor(module: M, o: DistributedDataParallelOptions) {
    super();
    this.module = module;
    this.registerModule('module', module);
    this.bucketCapMB = o.bucketCapMB ?? 25;
    this.overlap = o.overlap ?? true;
    if (!(this.bucketCapMB > 0)) throw new RangeError(`DistributedDataParallel: bucketCapMB must be positive, got ${this.bucketCapMB}`);
    Object.defineProperty(this, 'reducer', { value: null, writable: true, enumerable: false });
  }

  /**
   * Wraps `module`: broadcasts rank 0's parameters (and buffers) to every rank, then sets up the
   * gradient buckets. Every rank must call it, with the same architecture.
   */
  static async create<M extends Module>(module: M, opts: DistributedDataParallelOptions = {}): Promise<DistributedDataParallel<M>> {
    const ddp = new DistributedDataParallel(module, opts);
    await verifySameModel(module);
    const params = module.parameters().filter((p) => p.requiresGrad);
    for (const p of module.parameters()) await broadcast(p, 0);
    if (opts.broadcastBuffers ?? true) for (const b of module.buffers()) await broadcast(b, 0);
    try {
      ddp.reducer = N.distReducerNew(params.map((p) => p.handle), Math.round(ddp.bucketCapMB * 1024 * 1024), ddp.overlap);
    } catch (e) {
      throw distError('DistributedDataParallel', getRank(), e);
    }
    return ddp;
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  forward(...args: any[]): any {
    return this.module.forward(...args);
  }

  /**
   * The gradient buckets: how many, the bytes of the largest, how many bucket all-reduces the
   * autograd hooks started during backward (overlap), and how many steps were synced, since creation.
   */
  get buckets(): { count: number; largestBytes: number; hookLaunches: number; steps: number } {
    const [count, largestBytes, hookLaunches, steps] = N.distReducerInfo(this.live());
    return { count, largestBytes, hookLaunches, steps };
  }

  /**
   * Waits for the gradient all-reduces of the last backward (starting those not started yet) and
   * sets every parameter's `.grad` to the mean over ranks. Call after `backward()`, before `step()`.
   */
  async syncGradients(): Promise<void> {
    const r = this.live();
    try {
      await N.distReducerFinish(r);
    } catch (e) {
      throw distError('syncGradients', getRank(), e);
    }
  }

  /**
   * Runs `fn` (forward and backward) without starting gradient all-reduces: the gradients only
   * accumulate locally, and the next synced step averages the sum (PyTorch's `no_sync()`).
   */
  async noSync<T>(fn: () => T | Promise<T>): Promise<T> {
    const r = this.live();
    N.distReducerEnable(r, false);
    try {
      return await fn();
    } finally {
      N.distReducerEnable(r, true);
    }
  }

  /** Copies rank 0's buffers to every rank (BatchNorm statistics without SyncBatchNorm). */
  async syncBuffers(): Promise<void> {
    for (const b of this.module.buffers()) await broadcast(b, 0);
  }

  private live(): ReducerHandle {
    if (this.reducer === null) throw new Error('DistributedDataParallel: disposed');
    return this.reducer;
  }

  /** Frees the reducer (its hooks become inert) and leaves the wrapped module as it is. */
  close(): void {
    if (this.reducer !== null) N.distReducerFree(this.reducer);
    this.reducer = null;
  }

  /** Frees the reducer and disposes the wrapped module's tensors. */
  override dispose(): void {
    this.close();
    super.dispose();
  }

  override extraRepr(): string {
    return `world_size=${getWorldSize()}, bucket_cap_mb=${this.bucketCapMB}, overlap=${this.overlap}`;
  }
}
