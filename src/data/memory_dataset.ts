/**
 * `InMemoryDataset`: a whole dataset as ONE uint8 tensor `[N, C, H, W]` at the training size,
 * plus labels, so that a `DataLoader` batch is a single `indexSelect` (no decoding).
 *
 * ```ts
 * const mem = await InMemoryDataset.from(await ImageFolder.open('photos/'), { imageSize: 96 });
 * const loader = new DataLoader(mem, { batchSize: 256, shuffle: true });
 * ```
 *
 * `from` decodes the source once, in order, through a `DataLoader` (so `imageSize`,
 * `channels`, `fit` and `kernel` mean the same as there and the result equals what that
 * loader yields). Files the source skips (`onError: 'skip'`) are left out: `length` can be
 * smaller than the source's, and `sourceIndices[i]` is the source index of sample `i`.
 * Fashion-MNIST / MNIST (`IdxImageDataset`) at their own size are built straight from the
 * IDX block, with no per-image work.
 *
 * The tensors are kept (no `torch.scope` frees them); call `dispose()` when done.
 */
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { DataLoader, labelTensor, normalizeSize } from './loader.js';
import type { Fit, Kernel } from './decode.js';
import { IdxImageDataset } from './mnist.js';
import { checkIndex, type Channels, type Dataset, type RawImage, type Sample } from './types.js';

/** Options of `InMemoryDataset.from`. */
export interface InMemoryOptions {
  /** Size `[h, w]` (a number: a square) of the stored images; default: the source's (all must agree). */
  imageSize?: number | [number, number];
  /** Channels of the stored images, 1 or 3; default: the source's. */
  channels?: 1 | 3;
  /** How `imageSize` fits other aspect ratios (see `DataLoaderOptions.fit`); default 'fill'. */
  fit?: Fit;
  /** Resampling kernel, default 'lanczos3'. */
  kernel?: Kernel;
  /** Samples decoded per step of the first pass; default 256. */
  batchSize?: number;
  /** Called after each step of the first pass with (samples done, total). */
  onProgress?: (done: number, total: number) => void;
}

/** A dataset held as one uint8 `[N, C, H, W]` tensor; see the module comment. */
export class InMemoryDataset implements Dataset<Sample> {
  /** All images, uint8 `[N, C, H, W]`, kept. */
  readonly images: Tensor;
  /** Labels, one per image (`-1` when unlabeled). */
  readonly labels: Int32Array;
  readonly names: string[];
  /** Source files, when the source dataset is file-backed. */
  readonly paths: string[] | undefined;
  /** Index in the source dataset of each sample. */
  readonly sourceIndices: Int32Array;
  readonly height: number;
  readonly width: number;
  readonly channels: Channels;

  /**
   * Wraps an existing uint8 `[N, C, H, W]` tensor (kept; this dataset now owns it) and its labels.
   * @throws RangeError when shapes or dtypes do not fit.
   */
  constructor(images: Tensor, labels: ArrayLike<number>, opts: { names?: string[]; paths?: string[]; sourceIndices?: ArrayLike<number> } = {}) {
    const shape = images.shape;
    if (images.dtype !== 'uint8' || shape.length !== 4) {
      throw new RangeError(`InMemoryDataset: images must be a uint8 [N, C, H, W] tensor, got ${images.dtype} [${shape.join(', ')}]`);
    }
    const [n, c, h, w] = shape as [number, number, number, number];
    if (c !== 1 && c !== 3 && c !== 4) throw new RangeError(`InMemoryDataset: images must have 1, 3 or 4 channels, got ${c}`);
    if (labels.length !== n) throw new RangeError(`InMemoryDataset: ${labels.length} labels for ${n} images`);
    if (opts.paths !== undefined && opts.paths.length !== n) throw new RangeError(`InMemoryDataset: ${opts.paths.length} paths for ${n} images`);
    this.images = images.isContiguous() ? images.keep() : images.contiguous().keep();
    if (this.images !== images) images.dispose();
    this.labels = Int32Array.from(labels);
    this.names = opts.names ?? [];
    this.paths = opts.paths;
    this.sourceIndices = opts.sourceIndices ? Int32Array.from(opts.sourceIndices) : Int32Array.from({ length: n }, (_, i) => i);
    this.height = h;
    this.width = w;
    this.channels = c as Channels;
  }

  /**
   * Decodes `dataset` once into memory; see the module comment.
   * @throws Error when the source is empty, or when its images differ in size and no `imageSize` is given.
   */
  static async from(dataset: Dataset<Sample>, opts: InMemoryOptions = {}): Promise<InMemoryDataset> {
    const size = normalizeSize(opts.imageSize, 'InMemoryDataset.from');
    if (opts.channels !== undefined && opts.channels !== 1 && opts.channels !== 3) {
      throw new RangeError(`InMemoryDataset.from: channels must be 1 or 3, got ${String(opts.channels)}`);
    }
    if (dataset instanceof IdxImageDataset && (size === undefined || (size[0] === dataset.height && size[1] === dataset.width))) {
      return InMemoryDataset.fromIdx(dataset, opts.channels ?? dataset.channels);
    }
    if (dataset instanceof InMemoryDataset && size === undefined && (opts.channels ?? dataset.channels) === dataset.channels) {
      return new InMemoryDataset(dataset.images.clone(), dataset.labels, { names: [...dataset.names], ...(dataset.paths ? { paths: [...dataset.paths] } : {}), sourceIndices: dataset.sourceIndices });
    }
    const n = dataset.length;
    if (!(n > 0)) throw new RangeError('InMemoryDataset.from: the dataset is empty (0 samples)');
    const loader = new DataLoader(dataset, {
      batchSize: opts.batchSize ?? 256,
      ...(size !== undefined ? { imageSize: size } : {}),
      ...(opts.channels !== undefined ? { channels: opts.channels } : {}),
      ...(opts.fit !== undefined ? { fit: opts.fit } : {}),
      ...(opts.kernel !== undefined ? { kernel: opts.kernel } : {}),
    });
    let all: Tensor | null = null;
    let shape: number[] = [];
    let count = 0;
    const labels = new Int32Array(n);
    const sourceIndices = new Int32Array(n);
    const paths: string[] = [];
    let hasPaths = true;
    try {
      for await (const b of loader) {
        const s = b.images.shape;
        if (all === null) {
          shape = s.slice(1);
          all = torch.empty([n, ...shape], { dtype: 'uint8' }).keep();
        } else if (s[1] !== shape[0] || s[2] !== shape[1] || s[3] !== shape[2]) {
          throw new Error(`InMemoryDataset.from: images differ in size: the first batch holds ${shape.join('×')} images (C×H×W), sample ${b.indices[0]}'s batch ${s.slice(1).join('×')}. ` +
            'Pass imageSize: [height, width] to bring them to one size.');
        }
        const m = s[0]!;
        torch.scope(() => {
          all!.narrow(0, count, m).copy_(b.images);
        });
        const lab = b.labels.toBigInt64Array();
        for (let k = 0; k < m; k++) {
          labels[count + k] = Number(lab[k]!);
          sourceIndices[count + k] = b.indices[k]!;
          if (b.paths) paths.push(b.paths[k]!);
        }
        if (!b.paths) hasPaths = false;
        count += m;
        opts.onProgress?.(count, n);
      }
    } catch (e) {
      all?.dispose();
      throw e;
    } finally {
      loader.close();
    }
    if (all === null || count === 0) throw new Error('InMemoryDataset.from: no sample of the dataset could be decoded (all were skipped)');
    let images: Tensor = all;
    if (count < n) {
      images = torch.scope(() => all!.narrow(0, 0, count).clone());
      all.dispose();
    }
    return new InMemoryDataset(images, labels.subarray(0, count), {
      names: [...dataset.names],
      ...(hasPaths ? { paths } : {}),
      sourceIndices: sourceIndices.subarray(0, count),
    });
  }

  /** Fashion-MNIST/MNIST straight from the IDX block: `[N, 1, H, W]`, or grey replicated to 3 channels. */
  private static fromIdx(ds: IdxImageDataset, channels: 1 | 3): InMemoryDataset {
    const n = ds.length;
    const images = torch.scope(() => {
      const grey = torch.fromBytes(ds.images, 'uint8', [n, 1, ds.height, ds.width]);
      return channels === 1 ? grey : grey.expand(n, 3, ds.height, ds.width).contiguous();
    });
    return new InMemoryDataset(images, ds.labels, { names: [...ds.names] });
  }

  get length(): number {
    return this.labels.length;
  }

  /** Images and labels at `indices` as new tensors (uint8 `[n, C, H, W]`, int64 `[n]`, not kept), owned by the caller; paths when known. */
  tensorBatch(indices: number[]): { images: Tensor; labels: Tensor; paths?: string[] } {
    const n = this.length;
    const idx = new BigInt64Array(indices.length);
    const lab = new Int32Array(indices.length);
    for (let k = 0; k < indices.length; k++) {
      const i = indices[k]!;
      checkIndex(i, n);
      idx[k] = BigInt(i);
      lab[k] = this.labels[i]!;
    }
    const index = torch.tensor(idx);
    try {
      const out: { images: Tensor; labels: Tensor; paths?: string[] } = { images: this.images.indexSelect(0, index), labels: labelTensor(lab) };
      if (this.paths) out.paths = indices.map((i) => this.paths![i]!);
      return out;
    } finally {
      index.dispose();
    }
  }

  /** Image `i` as HWC bytes (a copy). */
  image(i: number): RawImage {
    checkIndex(i, this.length);
    const data = torch.scope(() => this.images.select(0, i).permute(1, 2, 0).contiguous().toUint8Array());
    return { data, height: this.height, width: this.width, channels: this.channels };
  }

  private sample(i: number): Sample {
    const s: Sample = { image: this.image(i), label: this.labels[i]!, index: i };
    if (this.paths) s.path = this.paths[i]!;
    return s;
  }

  async get(i: number): Promise<Sample> {
    return this.sample(i);
  }

  async getBatch(indices: number[]): Promise<Sample[]> {
    for (const i of indices) checkIndex(i, this.length);
    return indices.map((i) => this.sample(i));
  }

  /** Frees the images tensor. */
  dispose(): void {
    this.images.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
