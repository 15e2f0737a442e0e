/**
 * `CLIPEmbedder`: a CLIP model as the search index's `Embedder`, with a text tower, so that
 * `index.searchText("a red shoe")` ranks images by their CLIP similarity to the text.
 *
 * ```ts
 * const clip = CLIPModel.fromPretrained('models/clip-vit-base-patch32');
 * const index = await Index.open({ db: 'runs/db', dataset: 'photos', embedder: new CLIPEmbedder(clip) });
 * await index.update('photos/');
 * const hits = await index.searchText('a red shoe', { k: 5 });
 * ```
 *
 * Image and text vectors are the L2-normalised projections (`projection_dim` long), in the same
 * space: cosine similarity between them is what CLIP was trained on. The image vectors are
 * `Model.embed`'s for the same CLIP (`Model.load(dir)`, task 'clip'); this class adds the text
 * tower, which the index's text search needs.
 */
import * as torch from '../torch/index.js';
import type { Embedder } from '../search/embedder.js';
import { CLIPModel, type FromPretrainedOptions } from '../models/clip/model.js';
import { PREDICT_DEFAULTS } from './args.js';
import { clipNet, type Net } from './net.js';
import { ZeroShotPredictor } from './clip.js';

export interface CLIPEmbedderOptions {
  /** Images per forward pass (default 32). */
  batchSize?: number;
}

function rows(t: torch.Tensor): Float32Array[] {
  const [n, d] = t.shape as [number, number];
  const all = t.toFloat32Array();
  return Array.from({ length: n }, (_, i) => all.slice(i * d, (i + 1) * d));
}

export class CLIPEmbedder implements Embedder {
  readonly model: CLIPModel;
  readonly batchSize: number;
  /** The model as a 'clip' network (not owning it twice: `dispose` frees the model once). */
  readonly #net: Net;

  constructor(model: CLIPModel, o: CLIPEmbedderOptions = {}) {
    this.model = model;
    this.batchSize = o.batchSize ?? 32;
    this.#net = clipNet(model);
  }

  static fromPretrained(pathOrDir: string, o: FromPretrainedOptions & CLIPEmbedderOptions = {}): CLIPEmbedder {
    return new CLIPEmbedder(CLIPModel.fromPretrained(pathOrDir, o), o);
  }

  /** Where the model was loaded from (recorded by `Index.open` so `dyad search` can reload it), or null. */
  get weights(): string | null {
    return this.model.source;
  }

  /** Frees the model's tensors. */
  dispose(): void {
    this.model.dispose();
  }

  /** `clip:` + sha256 of the weights (see `CLIPModel.identity`). */
  get identity(): string {
    return this.model.identity;
  }

  get dim(): number {
    return this.model.projectionDim;
  }

  /** L2-normalised image embeddings, one per path, in order: `Model.embed`'s pipeline (the 'clip' task's predictor). */
  async embedImages(paths: string[]): Promise<Float32Array[]> {
    if (paths.length === 0) return [];
    const out: Float32Array[] = [];
    for await (const r of new ZeroShotPredictor(this.#net, { ...PREDICT_DEFAULTS, batch: this.batchSize, embed: true }).stream(paths)) out.push(r.embedding!);
    return out;
  }

  async embedText(texts: string[]): Promise<Float32Array[]> {
    if (texts.length === 0) return [];
    return torch.scope(() => rows(this.model.encodeText(texts)));
  }
}
