import sharp from 'sharp';
import { IndexError, shortIdentity } from './errors.js';

/**
 * What the index needs from a model: a stable identity, a dimension, and a way to turn image
 * files into vectors. `Model` (src/api) implements it; so does {@link ThumbnailEmbedder}.
 *
 * `embedImages` returns one row per path, in order, each `dim` long. Rows should be
 * L2-normalised; the index searches by cosine distance, so unnormalised rows still rank right.
 */
export interface Embedder {
  /** Names the exact model, e.g. the sha256 of its weights and config. Recorded in the table. */
  readonly identity: string;
  /** Length of every vector. */
  readonly dim: number;
  embedImages(paths: string[]): Promise<Float32Array[]>;
  /** Present on models with a text tower (CLIP). */
  embedText?(texts: string[]): Promise<Float32Array[]>;
}

export interface ThumbnailEmbedderOptions {
  /** Side of the square grayscale thumbnail; the vector has side² entries. Default 8. */
  side?: number;
}

/**
 * A model-free embedder: the image shrunk to a side×side grayscale thumbnail, mean-centred and
 * L2-normalised (cosine similarity is then the Pearson correlation of the thumbnails). Like a
 * perceptual hash, it finds exact and near copies (resized, re-encoded) without a trained model;
 * it knows nothing of semantics. The tests use it as their real, deterministic embedder.
 */
export class ThumbnailEmbedder implements Embedder {
  readonly side: number;
  readonly dim: number;
  readonly identity: string;

  constructor(options: ThumbnailEmbedderOptions = {}) {
    const side = options.side ?? 8;
    if (!Number.isInteger(side) || side < 2 || side > 64) {
      throw new RangeError(`ThumbnailEmbedder: side must be an integer in [2, 64], got ${side}`);
    }
    this.side = side;
    this.dim = side * side;
    this.identity = `thumbnail-gray-${side}x${side}-centred-v1`;
  }

  async embedImages(paths: string[]): Promise<Float32Array[]> {
    return Promise.all(paths.map((p) => this.#embedOne(p)));
  }

  async #embedOne(path: string): Promise<Float32Array> {
    let data: Buffer;
    let channels: number;
    try {
      const out = await sharp(path)
        .flatten({ background: '#000000' })
        .grayscale()
        .resize(this.side, this.side, { fit: 'fill' })
        .raw()
        .toBuffer({ resolveWithObject: true });
      data = out.data;
      channels = out.info.channels;
    } catch (err) {
      throw new Error(`cannot decode image ${path}: ${(err as Error).message}`, { cause: err });
    }
    const v = new Float32Array(this.dim);
    let mean = 0;
    for (let i = 0; i < this.dim; i++) {
      v[i] = data[i * channels]!;
      mean += v[i]!;
    }
    mean /= this.dim;
    let norm = 0;
    for (let i = 0; i < this.dim; i++) {
      v[i] = v[i]! - mean;
      norm += v[i]! * v[i]!;
    }
    norm = Math.sqrt(norm);
    // A flat image has no direction; give it a fixed unit vector so cosine stays defined.
    if (norm < 1e-6) {
      v.fill(0);
      v[0] = 1;
    } else {
      for (let i = 0; i < this.dim; i++) v[i] = v[i]! / norm;
    }
    return v;
  }
}

export interface LazyEmbedderOptions {
  /** The identity the loaded embedder must have (the one recorded in the table). */
  identity: string;
  dim: number;
  /** Loads the real embedder (a `Model`, CLIP, ...) the first time a vector is needed. */
  load: () => Promise<Embedder>;
}

/**
 * An embedder that stands for a table's recorded model and loads it only when a query needs a
 * vector: `sql`, `duplicates`, and `similar` on an indexed path or id use stored vectors and
 * never load it. The loaded embedder must have the recorded identity and dim (else
 * `MODEL_MISMATCH` / `DIM_MISMATCH`). `embedText` exists so `Index.searchText` reaches the
 * loaded model; it fails with `NO_TEXT_TOWER` when that model embeds images only.
 */
export class LazyEmbedder implements Embedder {
  readonly identity: string;
  readonly dim: number;
  #load: () => Promise<Embedder>;
  #loading: Promise<Embedder> | null = null;
  #loaded: Embedder | null = null;

  constructor(o: LazyEmbedderOptions) {
    this.identity = o.identity;
    this.dim = o.dim;
    this.#load = o.load;
  }

  /** The real embedder, once loaded (null before). */
  get loaded(): Embedder | null {
    return this.#loaded;
  }

  /** Loads (once) and checks the real embedder. A failed load is retried on the next call. */
  async embedder(): Promise<Embedder> {
    this.#loading ??= this.#load().then(
      (e) => {
        if (e.identity !== this.identity) {
          throw new IndexError('MODEL_MISMATCH', `The loaded model is ${shortIdentity(e.identity)}, but the index was built with ${shortIdentity(this.identity)}. Load the model the index was built with, or re-index.`);
        }
        if (e.dim !== this.dim) throw new IndexError('DIM_MISMATCH', `The loaded model makes ${e.dim}-d vectors; the index holds ${this.dim}-d vectors.`);
        return (this.#loaded = e);
      },
      (err: unknown) => {
        this.#loading = null;
        throw err;
      },
    );
    return this.#loading;
  }

  async embedImages(paths: string[]): Promise<Float32Array[]> {
    return (await this.embedder()).embedImages(paths);
  }

  async embedText(texts: string[]): Promise<Float32Array[]> {
    const e = await this.embedder();
    if (typeof e.embedText !== 'function') {
      throw new IndexError(
        'NO_TEXT_TOWER',
        `Text search needs a CLIP model (an embedder with a text tower); model ${shortIdentity(this.identity)} embeds images only. Index with CLIP weights, or search by image.`,
      );
    }
    return e.embedText(texts);
  }
}
