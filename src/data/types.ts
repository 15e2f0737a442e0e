/**
 * Shared data types of the data layer: raw decoded images, samples and the
 * `Dataset` contract that every dataset (folders, IDX files, image-text pairs,
 * subsets) implements. Pixels stay in plain `Uint8Array`s here; the loader
 * turns batches of them into tensors.
 */

/** Channel counts a decoded image can have (grey, RGB, RGBA). */
export type Channels = 1 | 3 | 4;

/**
 * A decoded image: `height × width × channels` bytes, HWC, row-major, uint8
 * (the layout of PIL / `np.asarray(img)`), so pixel (y, x), channel c lives
 * at `data[(y * width + x) * channels + c]`.
 */
export interface RawImage {
  data: Uint8Array;
  height: number;
  width: number;
  channels: Channels;
}

/** One item of a dataset. */
export interface Sample {
  /** The decoded image. */
  image: RawImage;
  /** Class index into `Dataset.names`; `-1` when the dataset is unlabeled. */
  label: number;
  /** Source file, for file-backed datasets. */
  path?: string;
  /** Index of this sample in the dataset `get` was called on. */
  index: number;
}

/** A sample with a caption (image-text pairs, for CLIP-style training). */
export interface CaptionedSample extends Sample {
  caption: string;
}

/**
 * Random-access collection of samples. `get` and `getBatch` are async because
 * file-backed datasets decode on demand (in libuv's thread pool, via sharp).
 */
export interface Dataset<S extends Sample = Sample> {
  /** Number of samples. */
  readonly length: number;
  /** Class names, `names[label]`; empty for unlabeled datasets. */
  readonly names: string[];
  /**
   * Per-sample labels when known without decoding (folders, IDX files);
   * feed this to `balancedSubset`. Absent or all `-1` when unlabeled.
   */
  readonly labels?: ArrayLike<number>;
  /** Sample `i`, `0 <= i < length`; throws `RangeError` otherwise. */
  get(i: number): Promise<S>;
  /**
   * Samples for several indices, in the given order. File-backed datasets
   * with `onError: 'skip'` drop undecodable files here, so the result may be
   * shorter than `indices`; use `Sample.index` to tell which ones came back.
   */
  getBatch(indices: number[]): Promise<S[]>;
}

/** What to do with a file that cannot be decoded. */
export type OnError = 'fail' | 'skip';

/** Receives the data layer's warnings; default is `process.emitWarning`. */
export type WarningHandler = (message: string) => void;

/** Checks that `i` is a valid index of a collection of `length` items. */
export function checkIndex(i: number, length: number, what = 'dataset'): void {
  if (!Number.isInteger(i) || i < 0 || i >= length) {
    throw new RangeError(`index ${i} is out of range for a ${what} of length ${length} (valid: 0..${length - 1})`);
  }
}

/** Emits a warning through `handler`, or `process.emitWarning` with code `DYAD_DATA`. */
export function warn(message: string, handler?: WarningHandler): void {
  if (handler) handler(message);
  else process.emitWarning(message, { code: 'DYAD_DATA' });
}
