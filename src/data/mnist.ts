/**
 * MNIST-style datasets from IDX files (LeCun's format), gzipped or not:
 * `FashionMNIST` (Debian package `dataset-fashion-mnist`, default root
 * `/usr/share/datasets/fashion-mnist`) and `MNIST` (no Debian package: pass
 * the folder holding the four files).
 *
 * The whole split is held in memory as one `Uint8Array` of `N × 28 × 28`
 * pixels (`images`) plus `labels: Uint8Array`, for fast in-memory pipelines;
 * the `Dataset` interface on top gives 1-channel `RawImage`s.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import * as zlib from 'node:zlib';
import { grayToRgb } from './decode.js';
import { checkIndex, type Dataset, type RawImage, type Sample } from './types.js';

const gunzip = promisify(zlib.gunzip);

/** An n-dimensional uint8 array read from an IDX file. */
export interface IdxArray {
  /** Dimensions, outermost first (e.g. `[60000, 28, 28]`). */
  dims: number[];
  /** Row-major values, `dims` product long. */
  data: Uint8Array;
}

const IDX_TYPES: Record<number, string> = { 0x08: 'uint8', 0x09: 'int8', 0x0b: 'int16', 0x0c: 'int32', 0x0d: 'float32', 0x0e: 'float64' };

/**
 * Parses IDX bytes (already gunzipped). Only uint8 data (type 0x08) is read.
 * `name` is used in errors. The returned data is a view into `bytes`.
 *
 * @throws Error on a bad magic number, unsupported type, or a size mismatch (truncated file).
 */
export function parseIdx(bytes: Uint8Array, name: string, expectDims?: number): IdxArray {
  const fix = 'Re-download the file (or check that it is an IDX file such as train-images-idx3-ubyte).';
  if (bytes.length < 4) throw new Error(`cannot read IDX file ${name}: ${bytes.length === 0 ? 'empty file' : `only ${bytes.length} bytes, truncated header`}. ${fix}`);
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    const magic = Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join('');
    throw new Error(`cannot read IDX file ${name}: bad magic number 0x${magic} (IDX files start with 0x0000, then type and rank bytes, e.g. 0x00000803). ${fix}`);
  }
  const type = bytes[2]!;
  const ndims = bytes[3]!;
  if (type !== 0x08) {
    throw new Error(`cannot read IDX file ${name}: element type 0x${type.toString(16).padStart(2, '0')} (${IDX_TYPES[type] ?? 'unknown'}) is not supported; only uint8 (0x08) IDX files are read.`);
  }
  if (ndims === 0) throw new Error(`cannot read IDX file ${name}: rank 0 in the magic number 0x00000800. ${fix}`);
  if (expectDims !== undefined && ndims !== expectDims) {
    throw new Error(`cannot read IDX file ${name}: expected a ${expectDims}-dimensional array (magic 0x000008${expectDims.toString(16).padStart(2, '0')}), found ${ndims} dimensions. Are the image and label files swapped?`);
  }
  const header = 4 + 4 * ndims;
  if (bytes.length < header) throw new Error(`cannot read IDX file ${name}: truncated header (${bytes.length} of ${header} bytes). ${fix}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  for (let d = 0; d < ndims; d++) dims.push(view.getUint32(4 + 4 * d, false));
  const count = dims.reduce((a, b) => a * b, 1);
  const have = bytes.length - header;
  if (have < count) {
    throw new Error(`cannot read IDX file ${name}: truncated file, the header says ${dims.join('×')} = ${count} values but only ${have} bytes follow. ${fix}`);
  }
  if (have > count) throw new Error(`cannot read IDX file ${name}: ${have - count} unexpected bytes after the ${dims.join('×')} values. ${fix}`);
  // a plain Uint8Array view, not a Buffer: Buffer#slice would share memory instead of copying
  return { dims, data: new Uint8Array(bytes.buffer, bytes.byteOffset + header, count) };
}

/** Reads an IDX file, gunzipping it if it starts with the gzip magic (whatever its extension). */
export async function readIdx(file: string, expectDims?: number): Promise<IdxArray> {
  let bytes: Uint8Array;
  try {
    bytes = await fsp.readFile(file);
  } catch (e) {
    throw new Error(`cannot read IDX file ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (e as Error).message}`, { cause: e });
  }
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = await gunzip(bytes);
    } catch (e) {
      throw new Error(`cannot read IDX file ${file}: truncated or corrupt gzip data (${(e as Error).message}). Re-download the file.`, { cause: e });
    }
  }
  return parseIdx(bytes, file, expectDims);
}

/** Finds `<prefix>-<kind>-idx<n>-ubyte[.gz]` (or the `.idx` spelling) in `root`. */
async function findIdx(root: string, prefix: string, kind: 'images' | 'labels', rank: number): Promise<string> {
  const bases = [`${prefix}-${kind}-idx${rank}-ubyte`, `${prefix}-${kind}.idx${rank}-ubyte`];
  const candidates = bases.flatMap((b) => [b, `${b}.gz`]);
  for (const c of candidates) {
    const p = path.join(root, c);
    try {
      if ((await fsp.stat(p)).isFile()) return p;
    } catch {
      /* try the next */
    }
  }
  throw new Error(`no ${prefix === 'train' ? 'training' : 'test'} ${kind} file in ${root}: looked for ${bases[0]}[.gz] and ${bases[1]}[.gz].`);
}

interface Split { images: Uint8Array; labels: Uint8Array; height: number; width: number }

/** Reads and cross-checks an image IDX file and a label IDX file. */
async function readPair(imagesFile: string, labelsFile: string, numClasses: number): Promise<Split> {
  const [img, lab] = await Promise.all([readIdx(imagesFile, 3), readIdx(labelsFile, 1)]);
  const [n, h, w] = img.dims as [number, number, number];
  if (lab.dims[0] !== n) {
    throw new Error(`IDX files disagree: ${imagesFile} has ${n} images but ${labelsFile} has ${lab.dims[0]} labels. Use files of the same split (train-* with train-*, t10k-* with t10k-*).`);
  }
  const labels = lab.data;
  for (let i = 0; i < labels.length; i++) {
    if (labels[i]! >= numClasses) {
      throw new Error(`${labelsFile}: label ${labels[i]} at index ${i} is out of range for ${numClasses} classes (0..${numClasses - 1}).`);
    }
  }
  return { images: img.data, labels, height: h, width: w };
}

/** Finds and reads the `train` or `t10k` split in `root`. */
async function readSplit(root: string, train: boolean, numClasses: number): Promise<Split> {
  let st;
  try {
    st = await fsp.stat(root);
  } catch {
    throw new Error(`dataset folder ${root} does not exist. Pass root: the folder holding the IDX files (train-images-idx3-ubyte[.gz], ...).`);
  }
  if (!st.isDirectory()) throw new Error(`dataset root ${root} is not a folder. Pass the folder holding the IDX files.`);
  const prefix = train ? 'train' : 't10k';
  // one after the other: with both missing, the error names the images file every time
  const imagesFile = await findIdx(root, prefix, 'images', 3);
  const labelsFile = await findIdx(root, prefix, 'labels', 1);
  return readPair(imagesFile, labelsFile, numClasses);
}

/** Options of `FashionMNIST.open` / `MNIST.open`. */
export interface MnistOptions {
  /** Folder with the four IDX files. FashionMNIST defaults to `/usr/share/datasets/fashion-mnist`; MNIST requires it. */
  root?: string;
  /** Training split (60,000) when true (default), test split (10,000) when false. */
  train?: boolean;
  /** Channels of the `RawImage`s from `get`: 1 (default), or 3 (grey replicated, for RGB backbones). */
  channels?: 1 | 3;
}

/** A split of 8-bit greyscale images and their labels, all in memory. */
export class IdxImageDataset implements Dataset<Sample> {
  /** All pixels, `length × height × width`, row-major. */
  readonly images: Uint8Array;
  /** Labels, one per image, each `< names.length`. */
  readonly labels: Uint8Array;
  readonly height: number;
  readonly width: number;
  readonly names: string[];
  /** Channels of the images `get` returns. */
  readonly channels: 1 | 3;

  constructor(images: Uint8Array, labels: Uint8Array, height: number, width: number, names: string[], channels: 1 | 3 = 1) {
    if (images.length !== labels.length * height * width) {
      throw new RangeError(`IdxImageDataset: ${images.length} pixels do not make ${labels.length} images of ${height}×${width}`);
    }
    if (channels !== 1 && channels !== 3) throw new RangeError(`channels must be 1 or 3, got ${String(channels)}`);
    this.images = images;
    this.labels = labels;
    this.height = height;
    this.width = width;
    this.names = names;
    this.channels = channels;
  }

  /**
   * Loads an image file and a label file (IDX, gzipped or not), checking that
   * counts agree and labels are below `names.length`.
   */
  static async fromFiles(imagesFile: string, labelsFile: string, names: string[], channels: 1 | 3 = 1): Promise<IdxImageDataset> {
    const s = await readPair(imagesFile, labelsFile, names.length);
    return new IdxImageDataset(s.images, s.labels, s.height, s.width, names, channels);
  }

  get length(): number {
    return this.labels.length;
  }

  /** Image `i` as a fresh copy (mutating it does not touch the dataset). */
  image(i: number): RawImage {
    checkIndex(i, this.length);
    const size = this.height * this.width;
    const img: RawImage = { data: this.images.slice(i * size, (i + 1) * size), height: this.height, width: this.width, channels: 1 };
    return this.channels === 3 ? grayToRgb(img) : img;
  }

  async get(i: number): Promise<Sample> {
    return { image: this.image(i), label: this.labels[i]!, index: i };
  }

  async getBatch(indices: number[]): Promise<Sample[]> {
    return indices.map((i) => ({ image: this.image(i), label: this.labels[i]!, index: i }));
  }
}

/** Zalando's Fashion-MNIST: 28×28 grey clothing images in 10 classes. */
export class FashionMNIST extends IdxImageDataset {
  /** Where Debian's `dataset-fashion-mnist` installs the files. */
  static readonly DEFAULT_ROOT = '/usr/share/datasets/fashion-mnist';
  /** Class names, `CLASSES[label]`. */
  static readonly CLASSES: readonly string[] = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];

  /** Loads a split; `root` defaults to `FashionMNIST.DEFAULT_ROOT`. */
  static async open(opts: MnistOptions = {}): Promise<FashionMNIST> {
    const root = opts.root ?? FashionMNIST.DEFAULT_ROOT;
    try {
      const s = await readSplit(root, opts.train ?? true, FashionMNIST.CLASSES.length);
      return new FashionMNIST(s.images, s.labels, s.height, s.width, [...FashionMNIST.CLASSES], opts.channels ?? 1);
    } catch (e) {
      if (opts.root === undefined && /does not exist/.test((e as Error).message)) {
        throw new Error(`FashionMNIST: ${root} does not exist. Install it with 'apt-get install dataset-fashion-mnist', or pass root: a folder holding the IDX files.`, { cause: e });
      }
      throw e;
    }
  }
}

/** LeCun's MNIST digits: 28×28 grey images, classes '0'..'9'. */
export class MNIST extends IdxImageDataset {
  /** Class names, `CLASSES[label]`. */
  static readonly CLASSES: readonly string[] = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

  /** Loads a split from `root` (required: Debian has no MNIST package). */
  static async open(opts: MnistOptions = {}): Promise<MNIST> {
    if (opts.root === undefined) {
      throw new Error('MNIST: pass root, the folder holding train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], ' +
        't10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz] (Debian ships no MNIST package; FashionMNIST is in dataset-fashion-mnist).');
    }
    const s = await readSplit(opts.root, opts.train ?? true, MNIST.CLASSES.length);
    return new MNIST(s.images, s.labels, s.height, s.width, [...MNIST.CLASSES], opts.channels ?? 1);
  }
}
