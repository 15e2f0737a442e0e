import sharp from 'sharp';

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
