/**
 * Shared machinery of datasets backed by one image file per sample
 * (`ImageFolder`, `ImageTextPairs`): decoding with fixed options, the
 * bad-file policy, and an optional validation pre-pass.
 *
 * Bad files are discovered when they are decoded:
 * - `onError: 'fail'` (default): `get` and `getBatch` throw the `DecodeError`
 *   of the first bad file.
 * - `onError: 'skip'`: `getBatch` drops bad files (the batch comes back
 *   shorter; `Sample.index` says which ones are there) and emits one warning
 *   per batch that met new bad files, with their count and first names.
 *   Known bad files are skipped silently afterwards, and listed in `badFiles`.
 *   `get(i)` has nothing to return for a bad file, so it still throws.
 * - `validate()` decodes everything once up front: under `'skip'` it removes
 *   bad files from the dataset (indices shift, so call it before taking
 *   subsets) and emits a single warning; under `'fail'` it throws on the first.
 */
import { DecodeError, decodeImage, type DecodeOptions } from './decode.js';
import { checkIndex, warn, type Dataset, type OnError, type RawImage, type Sample, type WarningHandler } from './types.js';

/** Options shared by file-backed datasets. */
export interface FileDatasetOptions extends Omit<DecodeOptions, 'name'> {
  /** Bad-file policy, default `'fail'`; see the module comment. */
  onError?: OnError;
  /** Receives warnings (skipped files, ignored files); default `process.emitWarning`. */
  onWarning?: WarningHandler;
  /** Most images decoding at once in `getBatch`/`validate`, default 8. */
  concurrency?: number;
}

/** Result of `validate()`. */
export interface ValidateResult {
  /** Files decoded. */
  checked: number;
  /** Bad files removed from the dataset (only under `onError: 'skip'`). */
  removed: DecodeError[];
}

const MAX_NAMES = 5;
const CANCELLED = Symbol('cancelled');

/** Formats up to five bad files as `a.jpg (truncated JPEG), b.png (empty file), ... and 3 more`. */
export function listBadFiles(errors: DecodeError[]): string {
  const shown = errors.slice(0, MAX_NAMES).map((e) => `${e.file} (${e.what})`).join(', ');
  return errors.length > MAX_NAMES ? `${shown}, and ${errors.length - MAX_NAMES} more` : shown;
}

/**
 * Runs `fn` over `items` with at most `limit` calls in flight and returns
 * every outcome, in input order.
 */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<PromiseSettledResult<R>[]> {
  const results: PromiseSettledResult<R>[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      try {
        results[i] = { status: 'fulfilled', value: await fn(items[i]!, i) };
      } catch (reason) {
        results[i] = { status: 'rejected', reason };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}

/** Base class of datasets with one image file per sample. */
export abstract class FileImageDataset<S extends Sample = Sample> implements Dataset<S> {
  /** Absolute image paths, one per sample. */
  paths: string[];
  /** Labels, one per sample (`-1` when unlabeled). */
  labels: Int32Array;
  readonly names: string[];
  /** Bad files met so far, by path. */
  readonly badFiles = new Map<string, DecodeError>();
  protected readonly decodeOptions: DecodeOptions;
  protected readonly onError: OnError;
  protected readonly onWarning: WarningHandler | undefined;
  protected readonly concurrency: number;

  protected constructor(paths: string[], labels: Int32Array, names: string[], opts: FileDatasetOptions) {
    if (opts.onError !== undefined && opts.onError !== 'fail' && opts.onError !== 'skip') {
      throw new RangeError(`onError must be 'fail' or 'skip', got '${String(opts.onError)}'`);
    }
    this.paths = paths;
    this.labels = labels;
    this.names = names;
    this.onError = opts.onError ?? 'fail';
    this.onWarning = opts.onWarning;
    this.concurrency = opts.concurrency ?? 8;
    const d: DecodeOptions = {};
    if (opts.channels !== undefined) d.channels = opts.channels;
    if (opts.size !== undefined) d.size = opts.size;
    if (opts.fit !== undefined) d.fit = opts.fit;
    if (opts.kernel !== undefined) d.kernel = opts.kernel;
    if (opts.limitInputPixels !== undefined) d.limitInputPixels = opts.limitInputPixels;
    this.decodeOptions = d;
  }

  get length(): number {
    return this.paths.length;
  }

  /** Builds the sample for index `i` from its decoded image. */
  protected abstract makeSample(i: number, image: RawImage): S;

  /** Keeps only the samples at `keep` (sorted indices); subclasses filter their own per-sample arrays too. */
  protected keepOnly(keep: number[]): void {
    this.paths = keep.map((i) => this.paths[i]!);
    this.labels = Int32Array.from(keep, (i) => this.labels[i]!);
  }

  /** Decodes sample `i`; throws its `DecodeError` if the file is bad (under either policy). */
  async get(i: number): Promise<S> {
    checkIndex(i, this.length);
    const path = this.paths[i]!;
    const known = this.badFiles.get(path);
    if (known) throw known;
    try {
      return this.makeSample(i, await decodeImage(path, this.decodeOptions));
    } catch (e) {
      if (e instanceof DecodeError) this.badFiles.set(path, e);
      throw e;
    }
  }

  /** Decodes several samples; see the module comment for how bad files are handled. */
  async getBatch(indices: number[]): Promise<S[]> {
    for (const i of indices) checkIndex(i, this.length);
    const skip = this.onError === 'skip';
    let failed = false;
    const settled = await mapLimit(indices, this.concurrency, async (i) => {
      if (failed) throw CANCELLED;
      try {
        return await this.get(i);
      } catch (e) {
        if (!skip || !(e instanceof DecodeError)) failed = true;
        throw e;
      }
    });
    const out: S[] = [];
    const bad: DecodeError[] = [];
    for (const r of settled) {
      if (r.status === 'fulfilled') out.push(r.value);
      else if (r.reason === CANCELLED) continue;
      else if (skip && r.reason instanceof DecodeError) bad.push(r.reason);
      else throw r.reason; // first failure in index order
    }
    if (bad.length > 0) this.reportFresh(bad);
    return out;
  }

  private readonly reported = new Set<string>();

  private reportFresh(errors: DecodeError[]): void {
    const news = [...new Map(errors.map((e) => [e.file, e])).values()].filter((e) => !this.reported.has(e.file));
    if (news.length === 0) return;
    for (const e of news) this.reported.add(e.file);
    warn(`skipped ${news.length} undecodable image(s) (${this.reported.size} so far): ${listBadFiles(news)}. ` +
      'Call validate() first to drop bad files once, up front.', this.onWarning);
  }

  /**
   * Decodes every file once (with the dataset's decode options). Under
   * `'fail'` throws the first `DecodeError`; under `'skip'` removes bad files
   * from the dataset and emits one warning listing them.
   */
  async validate(): Promise<ValidateResult> {
    const skip = this.onError === 'skip';
    const bad: DecodeError[] = [];
    const badIdx = new Set<number>();
    let stop = false;
    const indices = Array.from({ length: this.length }, (_, i) => i);
    const settled = await mapLimit(indices, this.concurrency, async (i) => {
      if (stop) return;
      try {
        await decodeImage(this.paths[i]!, this.decodeOptions);
      } catch (e) {
        if (!(e instanceof DecodeError)) throw e;
        this.badFiles.set(this.paths[i]!, e);
        if (!skip) stop = true;
        bad.push(e);
        badIdx.add(i);
      }
    });
    for (const r of settled) if (r.status === 'rejected') throw r.reason;
    if (bad.length === 0) return { checked: indices.length, removed: [] };
    // Report in dataset order, not completion order.
    const ordered = [...badIdx].sort((a, b) => a - b).map((i) => this.badFiles.get(this.paths[i]!)!);
    if (!skip) throw ordered[0]!;
    this.keepOnly(indices.filter((i) => !badIdx.has(i)));
    for (const e of ordered) this.reported.add(e.file);
    warn(`removed ${ordered.length} of ${indices.length} images that cannot be decoded: ${listBadFiles(ordered)}`, this.onWarning);
    return { checked: indices.length, removed: ordered };
  }
}
