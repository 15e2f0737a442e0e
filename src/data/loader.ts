/**
 * `DataLoader`: batches of a dataset as tensors, shuffled with a seeded generator, decoded
 * ahead of the consumer.
 *
 * ```ts
 * const ds = await ImageFolder.open('photos/', { size: [96, 96] });   // resize while decoding
 * const loader = new DataLoader(ds, { batchSize: 256, shuffle: true, seed: 0 });
 * for (let epoch = 0; epoch < 10; epoch++) {
 *   loader.setEpoch(epoch);                  // optional: iterations count epochs by themselves
 *   for await (const { images, labels } of loader) {   // uint8 [N, C, H, W], int64 [N]
 *     torch.scope(() => step(images, labels));          // batch tensors survive the scope
 *   }                                                   // ...and are freed by the loader
 * }
 * ```
 *
 * **Batch lifetime (the contract).** A batch's tensors are created with `keep()`, so no
 * `torch.scope` frees them, and they belong to the loader: it disposes batch `i` when batch
 * `i + 1` is requested (the next turn of the `for await` loop), and it disposes the last
 * batch, and every batch decoded ahead but never handed out, when the loop ends, `break`s or
 * throws. A training loop therefore never leaks and never has to dispose anything. To keep a
 * batch beyond its loop turn, copy it (`images.clone().keep()`) or pass `autoDispose: false`,
 * which hands ownership to the consumer: then call `batch.dispose()` yourself.
 *
 * **Order.** Without `shuffle`, batches follow the dataset's order. With it, the order of
 * epoch `e` is a permutation that depends only on `(seed, e)` (`order(e)` returns it). Each
 * iteration over the loader (each `for await`) uses the loader's `epoch` and then advances it,
 * so successive epochs differ; `setEpoch(k)` before a loop reproduces epoch `k` exactly, e.g.
 * when resuming a run at epoch `k`. `dropLast` drops the final batch when it is short. A
 * `sampler` (a rank's `DistributedSampler` shard) chooses the indices of each epoch instead.
 *
 * **Same size in a batch.** A batch is one `[N, C, H, W]` tensor, so its images must agree.
 * With `imageSize` (and/or `channels`) the loader brings every image to that size: fastest
 * is a dataset that already decodes at that size (`ImageFolder.open(root, { size })` resizes
 * inside the JPEG decoder); other images are resized here with sharp (same kernel and `fit`
 * as decoding), off the main thread. Without `imageSize`, images of different sizes in one
 * batch are an error that names two of them.
 *
 * **Prefetch.** While the consumer works on batch `i`, batches `i+1 .. i+prefetch` decode
 * (sharp decodes on libuv's thread pool). A training step is synchronous and blocks the main
 * thread, so everything a batch needs from JavaScript has to happen elsewhere or it waits:
 * - File-backed datasets (`ImageFolder`, `ImageTextPairs`, `Subset`s of them) decode in a
 *   worker thread (`workers`, default 1), which builds the sharp pipelines (about 0.2 ms of
 *   JavaScript an image), resizes, and packs the NCHW buffer; the main thread only copies
 *   that buffer into a tensor. Files the worker cannot decode go to `dataset.getBatch`, so the
 *   dataset's bad-file policy applies unchanged.
 * - Other datasets (or `workers: 0`) decode through `dataset.getBatch` on the main thread, in
 *   chunks of `fetchChunk` started together, so a whole batch is queued on the thread pool at
 *   once; the per-image JavaScript then runs between training steps.
 * `loader.stats` reports how long the consumer waited (`bench/loader.ts` measures it).
 *
 * **Bad files.** The dataset's own policy applies (`onError` of `ImageFolder` and friends):
 * under `'fail'` the loop throws the `DecodeError` of the first bad file of the batch; under
 * `'skip'` bad files are left out, so that batch is smaller (`indices` says which samples are
 * in it) and a batch whose files are all bad is skipped. `length` counts batches before skips.
 *
 * **In memory.** With an `InMemoryDataset` (one uint8 tensor for the whole dataset) batches
 * are `indexSelect`s of it: no decoding, no prefetch needed.
 */
import 'sharp'; // loaded by the main thread before any decode worker starts (sharp's rule for worker_threads)
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { checkChannels, commonShape, normalizeSize, prepareImage, type ImageTarget } from './batch_images.js';
import type { DecodeOptions, Fit, Kernel } from './decode.js';
import type { DecodeReply, DecodeRequest } from './decode_worker.js';
import { FileImageDataset } from './file_dataset.js';
import { ImageFolder } from './image_folder.js';
import { ImageTextPairs } from './pairs.js';
import { Rng } from './random.js';
import { Subset } from './subset.js';
import type { Dataset, RawImage, Sample } from './types.js';

export { commonShape, normalizeSize, packNCHW, prepareImage, resizeRaw, type ImageTarget } from './batch_images.js';

/** One batch from a `DataLoader`. */
export interface Batch {
  /** uint8 `[N, C, H, W]`. */
  images: Tensor;
  /** int64 `[N]`: class indices, `-1` for unlabeled samples. */
  labels: Tensor;
  /** Dataset indices of the `N` samples, in batch order. */
  indices: number[];
  /** Source files, when the dataset is file-backed. */
  paths?: string[];
  /** Frees `images` and `labels` (safe to call twice). The loader calls it unless `autoDispose: false`. */
  dispose(): void;
}

/** Options of `DataLoader`. */
export interface DataLoaderOptions {
  /** Samples per batch, default 1 (as PyTorch). */
  batchSize?: number;
  /** A new random order every epoch; default false (dataset order). */
  shuffle?: boolean;
  /** Seed of the shuffle; default 0. See the module comment for how epochs derive from it. */
  seed?: number;
  /** Drop the last batch when it has fewer than `batchSize` samples; default false. */
  dropLast?: boolean;
  /** Batches decoded ahead of the consumer; default 2, 0 for none. */
  prefetch?: number;
  /** Bring every image to `[h, w]` (a number: a square), see the module comment. */
  imageSize?: number | [number, number];
  /** Bring every image to 1 (BT.601 luma) or 3 (grey replicated) channels. */
  channels?: 1 | 3;
  /** How `imageSize` fits an image of another aspect ratio: 'fill' (default, stretch), 'cover' (crop), 'contain' (pad). */
  fit?: Fit;
  /** Resampling kernel for resizing here, default 'lanczos3' (as decoding). */
  kernel?: Kernel;
  /** Loader disposes each batch when the next is requested (default true); false: the consumer disposes. */
  autoDispose?: boolean;
  /**
   * Decode worker threads for file-backed datasets (`ImageFolder`, `ImageTextPairs`, and
   * `Subset`s of them); default 1, 0 decodes through `dataset.getBatch` on the main thread.
   * See Prefetch in the module comment.
   */
  workers?: number;
  /** Samples per `dataset.getBatch` call when decoding on the main thread; default 8 (see Prefetch). */
  fetchChunk?: number;
  /** Chooses each epoch's indices instead of `shuffle` (PyTorch's `sampler`), e.g. a rank's `DistributedSampler` shard. */
  sampler?: Sampler;
}

/** The indices a loader draws in an epoch (PyTorch's `Sampler`); `length` is the count of the epoch set last. */
export interface Sampler {
  readonly length: number;
  indices(epoch: number): ArrayLike<number>;
}

/** What the consumer waited for, per iteration (see `DataLoader.stats`). */
export interface LoaderStats {
  /** Batches handed out. */
  batches: number;
  /** Images handed out. */
  images: number;
  /** Time the first `next()` waited (nothing can be ahead of it). */
  firstWaitMs: number;
  /** Total time later `next()` calls waited for their batch. */
  waitMs: number;
  /** Longest single wait after the first. */
  maxWaitMs: number;
  /** Time from the first `next()` call to the last batch handed out. */
  elapsedMs: number;
}

/**
 * A dataset that produces whole batches as tensors (`InMemoryDataset`); the loader uses
 * `tensorBatch` instead of decoding. The caller owns the returned tensors.
 */
export interface TensorDataset extends Dataset<Sample> {
  readonly height: number;
  readonly width: number;
  readonly channels: number;
  tensorBatch(indices: number[]): { images: Tensor; labels: Tensor; paths?: string[] };
}

export function isTensorDataset(d: Dataset<Sample>): d is TensorDataset {
  return typeof (d as Partial<TensorDataset>).tensorBatch === 'function';
}

/**
 * Stacks same-size HWC images into one uint8 `[N, C, H, W]` tensor (not kept). Copies the
 * images into one HWC buffer and lets libtorch transpose it (`permute` + `contiguous`), which
 * measured faster than transposing in JS.
 */
export function stackImages(images: RawImage[], [h, w, c]: [number, number, number]): Tensor {
  const size = h * w * c;
  const buf = new Uint8Array(images.length * size);
  for (let i = 0; i < images.length; i++) buf.set(images[i]!.data, i * size);
  if (c === 1) return torch.fromBytes(buf, 'uint8', [images.length, 1, h, w]);
  return torch.scope(() => torch.fromBytes(buf, 'uint8', [images.length, h, w, c]).permute(0, 3, 1, 2).contiguous());
}

/** int64 `[N]` labels tensor (not kept). */
export function labelTensor(labels: ArrayLike<number>): Tensor {
  const a = new BigInt64Array(labels.length);
  for (let i = 0; i < labels.length; i++) a[i] = BigInt(labels[i]!);
  return torch.tensor(a);
}

function makeBatch(images: Tensor, labels: Tensor, indices: number[], paths?: string[]): Batch {
  images.keep();
  labels.keep();
  const b: Batch = {
    images,
    labels,
    indices,
    dispose() {
      images.dispose();
      labels.dispose();
    },
  };
  if (paths !== undefined) b.paths = paths;
  return b;
}

/** Samples with their images brought to `target` (size, channels). */
async function prepareSamples(samples: Sample[], target: ImageTarget): Promise<Sample[]> {
  if (target.size === undefined && target.channels === undefined) return samples;
  const imgs = await Promise.all(samples.map((s) => prepareImage(s.image, target)));
  return samples.map((s, i) => ({ ...s, image: imgs[i]! }));
}

/**
 * Turns decoded samples into a batch (tensors kept): converts channels and size to `target`
 * where given, then checks that all agree and stacks them.
 */
export async function collate(samples: Sample[], target: ImageTarget = {}, who = 'DataLoader'): Promise<Batch> {
  if (samples.length === 0) throw new RangeError(`${who}: cannot collate an empty list of samples`);
  const prepared = await prepareSamples(samples, target);
  const shape = commonShape(prepared, who);
  const images = stackImages(prepared.map((s) => s.image), shape);
  const labels = labelTensor(prepared.map((s) => s.label));
  const paths = prepared.every((s) => s.path !== undefined) ? prepared.map((s) => s.path!) : undefined;
  return makeBatch(images, labels, prepared.map((s) => s.index), paths);
}

// ---------------------------------------------------------------- decode workers

/** A file-backed dataset behind `dataset` (itself, or under `Subset`s), with the index mapping. */
interface FileSource {
  file: FileImageDataset<Sample>;
  /** Index in `file` of the loader's dataset index `i`. */
  map: (i: number) => number;
  decode: DecodeOptions;
}

/**
 * Finds the `ImageFolder` / `ImageTextPairs` under `d` and its decode options. Those are a protected member
 * of `FileImageDataset`, read here at run time; when they cannot be read the loader decodes on
 * the main thread through `getBatch`, which is always correct, only slower.
 */
function fileSource(d: Dataset<Sample>): FileSource | null {
  // Only the known classes: a subclass may change what get/getBatch return, which a worker would bypass.
  const ctor: unknown = (d as object).constructor;
  if (d instanceof FileImageDataset && (ctor === ImageFolder || ctor === ImageTextPairs)) {
    const decode = (d as unknown as { decodeOptions?: unknown }).decodeOptions;
    if (decode === null || typeof decode !== 'object' || !Array.isArray(d.paths) || !(d.badFiles instanceof Map)) return null;
    return { file: d, map: (i) => i, decode: decode as DecodeOptions };
  }
  if (d instanceof Subset) {
    const inner = fileSource(d.dataset as Dataset<Sample>);
    if (inner === null) return null;
    const idx = d.indices;
    return { ...inner, map: (i) => inner.map(idx[i]!) };
  }
  return null;
}

/**
 * Decode worker threads, created on first use. A worker is `ref`'d only while it has work,
 * so an idle pool never keeps the process alive; `close()` lets them finish and exit.
 */
const WORKER_URL = new URL('./decode_worker.js', import.meta.url);
/** Whether the compiled worker script is there (it is not when running .ts sources directly). */
const workerAvailable = (() => {
  let known: boolean | undefined;
  return () => (known ??= existsSync(fileURLToPath(WORKER_URL)));
})();

class DecodePool {
  private readonly workers: { worker: Worker; busy: number }[] = [];
  private readonly pending = new Map<number, { resolve: (r: DecodeReply) => void; reject: (e: Error) => void; slot: { worker: Worker; busy: number } }>();
  private nextId = 0;

  constructor(private readonly size: number) {}

  private spawn(): { worker: Worker; busy: number } {
    const worker = new Worker(WORKER_URL);
    const slot = { worker, busy: 0 };
    worker.unref();
    worker.on('message', (r: DecodeReply) => {
      const p = this.pending.get(r.id);
      if (!p) return;
      this.pending.delete(r.id);
      if (--slot.busy === 0) worker.unref();
      p.resolve(r);
    });
    const fail = (e: Error) => {
      const i = this.workers.indexOf(slot);
      if (i >= 0) this.workers.splice(i, 1);
      for (const [id, p] of this.pending) {
        if (p.slot !== slot) continue;
        this.pending.delete(id);
        p.reject(new Error(`DataLoader: a decode worker stopped (${e.message}). Pass workers: 0 to decode on the main thread.`, { cause: e }));
      }
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`exit code ${code}`)));
    this.workers.push(slot);
    return slot;
  }

  run(req: Omit<DecodeRequest, 'type' | 'id'>): Promise<DecodeReply> {
    const idlest = this.workers.reduce<{ worker: Worker; busy: number } | null>((a, b) => (a === null || b.busy < a.busy ? b : a), null);
    const slot = idlest !== null && (idlest.busy === 0 || this.workers.length >= this.size) ? idlest : this.spawn();
    const id = this.nextId++;
    return new Promise<DecodeReply>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, slot });
      if (slot.busy++ === 0) slot.worker.ref();
      slot.worker.postMessage({ ...req, type: 'decode', id } satisfies DecodeRequest);
    });
  }

  /** Asks every worker to exit once its current work is done. */
  close(): void {
    for (const { worker } of this.workers.splice(0)) {
      worker.removeAllListeners('exit');
      worker.postMessage({ type: 'close' });
    }
  }
}

// ---------------------------------------------------------------- the loader

/** The shuffle seed of epoch `epoch`: unrelated streams for nearby seeds and epochs. */
function epochSeed(seed: number, epoch: number): number {
  const base = Math.floor(new Rng(seed).next() * 2 ** 52);
  return base + epoch;
}

/** The order of `n` samples in `epoch`: `0 .. n-1`, or with `shuffle` the permutation of `(seed, epoch)` (what `DataLoader.order` and `DistributedSampler` use). */
export function epochOrder(n: number, shuffle: boolean, seed: number, epoch: number): Int32Array {
  if (!shuffle) return Int32Array.from({ length: n }, (_, i) => i);
  return new Rng(epochSeed(seed, epoch)).permutation(n);
}

/** Batches of a dataset as uint8 NCHW tensors; see the module comment. */
export class DataLoader<S extends Sample = Sample> implements AsyncIterable<Batch> {
  readonly dataset: Dataset<S>;
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly dropLast: boolean;
  readonly prefetch: number;
  readonly autoDispose: boolean;
  readonly sampler: Sampler | null;
  /** Decode worker threads for file-backed datasets (0: decode on the main thread). */
  readonly workers: number;
  /** Size and channel conversion applied to every image. */
  readonly target: Readonly<ImageTarget>;
  private readonly fetchChunk: number;
  private pool: DecodePool | null = null;
  private _epoch = 0;
  /** Wait statistics of the most recent iteration. */
  stats: LoaderStats = { batches: 0, images: 0, firstWaitMs: 0, waitMs: 0, maxWaitMs: 0, elapsedMs: 0 };

  /**
   * @throws RangeError for an empty dataset or bad options, or when `dropLast` leaves no
   *   batch; Error when an in-memory dataset does not match `imageSize`/`channels`.
   */
  constructor(dataset: Dataset<S>, opts: DataLoaderOptions = {}) {
    if (dataset === null || typeof dataset !== 'object' || typeof dataset.getBatch !== 'function') {
      throw new TypeError('DataLoader: dataset must implement the Dataset interface (length, get, getBatch)');
    }
    const int = (name: string, v: unknown, min: number): number => {
      if (!Number.isInteger(v) || (v as number) < min) throw new RangeError(`DataLoader: ${name} must be an integer >= ${min}, got ${String(v)}`);
      return v as number;
    };
    this.batchSize = int('batchSize', opts.batchSize ?? 1, 1);
    this.prefetch = int('prefetch', opts.prefetch ?? 2, 0);
    this.workers = int('workers', opts.workers ?? 1, 0);
    this.fetchChunk = int('fetchChunk', opts.fetchChunk ?? 8, 1);
    const seed = opts.seed ?? 0;
    if (!Number.isSafeInteger(seed)) throw new RangeError(`DataLoader: seed must be a safe integer, got ${String(seed)}`);
    if (opts.fit !== undefined && !['fill', 'cover', 'contain'].includes(opts.fit)) {
      throw new RangeError(`DataLoader: fit must be 'fill', 'cover' or 'contain', got '${String(opts.fit)}'`);
    }
    this.dataset = dataset;
    this.shuffle = opts.shuffle ?? false;
    this.seed = seed;
    this.dropLast = opts.dropLast ?? false;
    this.autoDispose = opts.autoDispose ?? true;
    this.sampler = opts.sampler ?? null;
    if (this.sampler && this.shuffle) throw new RangeError('DataLoader: sampler and shuffle are mutually exclusive (as in PyTorch): the sampler decides the order; pass shuffle to the sampler');
    const target: ImageTarget = {};
    const size = normalizeSize(opts.imageSize, 'DataLoader');
    const channels = checkChannels(opts.channels, 'DataLoader');
    if (size !== undefined) target.size = size;
    if (channels !== undefined) target.channels = channels;
    if (opts.fit !== undefined) target.fit = opts.fit;
    if (opts.kernel !== undefined) target.kernel = opts.kernel;
    this.target = target;
    this.checkNotEmpty();
    if (isTensorDataset(dataset)) {
      const d = dataset;
      if ((size && (size[0] !== d.height || size[1] !== d.width)) || (channels !== undefined && channels !== d.channels)) {
        throw new Error(`DataLoader: the in-memory dataset holds ${d.channels}×${d.height}×${d.width} images, but imageSize/channels ask for ` +
          `${channels ?? d.channels}×${(size ?? [d.height, d.width]).join('×')}. Build the InMemoryDataset with those imageSize/channels instead.`);
      }
    }
  }

  private checkNotEmpty(): void {
    const n = this.sampler?.length ?? this.dataset.length;
    if (this.sampler && !(n > 0)) throw new RangeError(`DataLoader: the sampler gives this process none of the dataset's ${this.dataset.length} samples (fewer samples than processes?)`);
    if (!(n > 0)) throw new RangeError('DataLoader: the dataset is empty (0 samples); there is nothing to load. Check the dataset folder or the subset indices.');
    if (this.dropLast && n < this.batchSize) {
      throw new RangeError(`DataLoader: dropLast with batchSize ${this.batchSize} and only ${n} samples leaves no batch. Use a smaller batchSize or dropLast: false.`);
    }
  }

  /** Number of batches per epoch (before batches emptied by skipped bad files). */
  get length(): number {
    const n = this.sampler?.length ?? this.dataset.length;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /** The epoch the next iteration uses. */
  get epoch(): number {
    return this._epoch;
  }

  /** Sets the epoch of the next iteration (later iterations count on from it). */
  setEpoch(epoch: number): void {
    if (!Number.isSafeInteger(epoch) || epoch < 0) throw new RangeError(`DataLoader.setEpoch: epoch must be a non-negative integer, got ${epoch}`);
    this._epoch = epoch;
  }

  /** Sample order of `epoch` (dataset order when not shuffling). */
  order(epoch = this._epoch): Int32Array {
    if (this.sampler) return Int32Array.from(this.sampler.indices(epoch));
    return epochOrder(this.dataset.length, this.shuffle, this.seed, epoch);
  }

  /** The index lists of the batches of `epoch`. */
  batches(epoch = this._epoch): number[][] {
    const order = this.order(epoch);
    const out: number[][] = [];
    const count = this.dropLast ? Math.floor(order.length / this.batchSize) : Math.ceil(order.length / this.batchSize);
    for (let b = 0; b < count; b++) out.push(Array.from(order.subarray(b * this.batchSize, (b + 1) * this.batchSize)));
    return out;
  }

  /** Starts an iteration over the current epoch and advances `epoch`. */
  [Symbol.asyncIterator](): LoaderIterator {
    this.checkNotEmpty();
    const epoch = this._epoch;
    this._epoch = epoch + 1;
    const it = new LoaderIterator(this.batches(epoch), (idx) => this.load(idx), isTensorDataset(this.dataset) ? 0 : this.prefetch, this.autoDispose);
    this.stats = it.stats;
    return it;
  }

  /** Lets the decode workers exit (they also never keep the process alive while idle). The loader stays usable. */
  close(): void {
    this.pool?.close();
    this.pool = null;
  }

  /** Loads one batch; null when every sample of it was skipped. */
  private async load(indices: number[]): Promise<Batch | null> {
    const d = this.dataset as Dataset<Sample>;
    if (isTensorDataset(d)) {
      const { images, labels, paths } = d.tensorBatch(indices);
      return makeBatch(images, labels, indices, paths);
    }
    const src = this.workers > 0 && workerAvailable() ? fileSource(d) : null;
    if (src !== null) return this.loadInWorker(indices, src);
    const samples = await this.fetch(indices);
    if (samples.length === 0) return null;
    return collate(samples, this.target);
  }

  /**
   * Decodes the samples of a batch through `dataset.getBatch` in chunks started together,
   * so the whole batch is queued on the thread pool at once, keeping the dataset's bad-file policy.
   */
  private async fetch(indices: number[]): Promise<Sample[]> {
    if (indices.length === 0) return [];
    const chunks: number[][] = [];
    for (let i = 0; i < indices.length; i += this.fetchChunk) chunks.push(indices.slice(i, i + this.fetchChunk));
    const settled = await Promise.allSettled(chunks.map((c) => this.dataset.getBatch(c)));
    const out: Sample[] = [];
    for (const r of settled) {
      if (r.status === 'rejected') throw r.reason; // the first failing chunk in batch order
      for (const s of r.value) out.push(s);
    }
    return out;
  }

  /**
   * Decodes a batch of a file-backed dataset in a worker. Files the worker cannot decode, and
   * files the dataset already knows as bad, go through `dataset.getBatch` on this thread, so
   * the dataset's bad-file policy decides (throw, or skip with its warning).
   */
  private async loadInWorker(indices: number[], src: FileSource): Promise<Batch | null> {
    const { file } = src;
    const fileIdx = indices.map(src.map);
    const paths = fileIdx.map((j) => file.paths[j]!);
    const send: number[] = [];
    const retry: number[] = [];
    paths.forEach((p, k) => (file.badFiles.has(p) ? retry : send).push(k));
    this.pool ??= new DecodePool(this.workers);
    const reply: DecodeReply = send.length > 0
      ? await this.pool.run({ paths: send.map((k) => paths[k]!), indices: send.map((k) => indices[k]!), decode: src.decode, target: this.target })
      : { id: -1, ok: [], failed: [] };
    if (reply.error !== undefined) throw new Error(reply.error);
    for (const f of reply.failed) retry.push(send[f]!);
    retry.sort((a, b) => a - b);
    const extra = retry.length > 0 ? await prepareSamples(await this.fetch(retry.map((k) => indices[k]!)), this.target) : [];
    const okPos = reply.ok.map((p) => send[p]!);
    if (okPos.length === 0 && extra.length === 0) return null;
    const outIdx = [...okPos.map((k) => indices[k]!), ...extra.map((s) => s.index)];
    const outLabels = [...okPos.map((k) => file.labels[fileIdx[k]!]!), ...extra.map((s) => s.label)];
    const outPaths = [...okPos.map((k) => paths[k]!), ...extra.map((s) => s.path ?? file.paths[src.map(s.index)]!)];
    const images = torch.scope(() => {
      const parts: Tensor[] = [];
      if (reply.data !== undefined) parts.push(torch.fromBytes(new Uint8Array(reply.data), 'uint8', reply.shape!));
      if (extra.length > 0) parts.push(stackImages(extra.map((s) => s.image), commonShape(extra)));
      if (parts.length === 2 && (parts[0]!.size(1) !== parts[1]!.size(1) || parts[0]!.size(2) !== parts[1]!.size(2) || parts[0]!.size(3) !== parts[1]!.size(3))) {
        throw new Error(`DataLoader: images in a batch must have the same size, but the batch holds ${parts[0]!.shape.slice(1).join('×')} and ` +
          `${parts[1]!.shape.slice(1).join('×')} images (C×H×W). Pass imageSize: [height, width] to resize them.`);
      }
      return parts.length === 1 ? parts[0]! : torch.cat(parts, 0);
    });
    return makeBatch(images, labelTensor(outLabels), outIdx, outPaths);
  }
}

/**
 * The async iterator behind `for await (const batch of loader)`. Keeps `prefetch` batches
 * loading beyond the one handed out; `return()` (called by `break`, `throw`) disposes the
 * current batch and waits for every batch still loading, then disposes them too.
 */
export class LoaderIterator implements AsyncIterableIterator<Batch> {
  readonly stats: LoaderStats = { batches: 0, images: 0, firstWaitMs: 0, waitMs: 0, maxWaitMs: 0, elapsedMs: 0 };
  private readonly queue: Promise<Batch | null>[] = [];
  private nextBatch = 0;
  private current: Batch | null = null;
  private done = false;
  private started = -1;

  constructor(
    private readonly plan: number[][],
    private readonly loadFn: (indices: number[]) => Promise<Batch | null>,
    private readonly prefetch: number,
    private readonly autoDispose: boolean,
  ) {}

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** Starts loading batches until `want` are in flight. */
  private fill(want: number): void {
    while (this.queue.length < want && this.nextBatch < this.plan.length) {
      const p = this.loadFn(this.plan[this.nextBatch++]!);
      p.catch(() => {}); // rejections surface when this batch is awaited; never unhandled
      this.queue.push(p);
    }
  }

  async next(): Promise<IteratorResult<Batch>> {
    if (this.autoDispose) this.current?.dispose();
    this.current = null;
    if (this.done) return { done: true, value: undefined };
    const t0 = performance.now(); // waiting counts from here: synchronous loading (in-memory) included
    if (this.started < 0) this.started = t0;
    for (;;) {
      this.fill(this.prefetch + 1);
      const head = this.queue.shift();
      if (head === undefined) {
        this.done = true;
        return { done: true, value: undefined };
      }
      let batch: Batch | null;
      try {
        batch = await head;
      } catch (e) {
        await this.return();
        throw e;
      }
      const t1 = performance.now();
      const waited = t1 - t0;
      if (this.done) {
        // return() ran while we waited (concurrent use); nothing more to hand out
        batch?.dispose();
        return { done: true, value: undefined };
      }
      if (batch === null) continue; // every file of this batch was skipped
      if (this.stats.batches === 0) this.stats.firstWaitMs += waited;
      else {
        this.stats.waitMs += waited;
        this.stats.maxWaitMs = Math.max(this.stats.maxWaitMs, waited);
      }
      this.stats.batches++;
      this.stats.images += batch.indices.length;
      this.stats.elapsedMs = t1 - this.started;
      this.fill(this.prefetch); // keep `prefetch` loading while the consumer works
      this.current = batch;
      return { done: false, value: batch };
    }
  }

  /** Ends the iteration: disposes the current batch (when auto-disposing) and every batch loaded ahead. */
  async return(): Promise<IteratorResult<Batch>> {
    this.done = true;
    if (this.autoDispose) this.current?.dispose();
    this.current = null;
    const pending = this.queue.splice(0);
    const settled = await Promise.allSettled(pending);
    for (const r of settled) if (r.status === 'fulfilled') r.value?.dispose();
    return { done: true, value: undefined };
  }
}
