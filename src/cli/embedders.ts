/**
 * Which code turns a weights file into an index `Embedder`: registered loaders first (CLIP plugs
 * in here), then dyad's `Model.load`. Its own module, so commands can register loaders without
 * importing each other.
 */
import type { Embedder } from '../search/embedder.js';
import { localOrHub } from '../hub/index.js';

/** A loaded model as the index uses it; `dispose` frees its tensors. */
export type LoadedEmbedder = Embedder & { dispose?(): void };

/**
 * Turns a weights file into an embedder, or returns null to let the next loader try. Loaders
 * registered later are tried first; dyad's `Model.load` is the fallback. This is where a model
 * family with its own checkpoint format (CLIP, with `embedText`) plugs into `dyad index/search`.
 */
export type EmbedderLoader = (weights: string, options: { batch?: number; threads?: number }) => Promise<LoadedEmbedder | null>;

const loaders: EmbedderLoader[] = [];

export function registerEmbedderLoader(loader: EmbedderLoader): void {
  loaders.unshift(loader);
}

/** Loads `weights` with the first registered loader that takes it, else as a dyad `Model`. */
export async function loadEmbedder(weights: string, options: { batch?: number; threads?: number } = {}): Promise<LoadedEmbedder> {
  weights = await localOrHub(weights); // a Hub id is fetched once into the HF cache
  for (const l of loaders) {
    const e = await l(weights, options);
    if (e) return e;
  }
  const { Model } = await import('../api/model.js');
  return Model.load(weights, {
    ...(options.batch !== undefined && { batch: options.batch }),
    ...(options.threads !== undefined && { threads: options.threads }),
  });
}
