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
 * space: cosine similarity between them is what CLIP was trained on.
 */
import * as torch from '../torch/index.js';
import type { Embedder } from '../index/embedder.js';
import { decodeImage } from '../data/decode.js';
import { CLIPModel, type FromPretrainedOptions } from '../models/clip/model.js';

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

  constructor(model: CLIPModel, o: CLIPEmbedderOptions = {}) {
    this.model = model;
    this.batchSize = o.batchSize ?? 32;
    model.eval();
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

  async embedImages(paths: string[]): Promise<Float32Array[]> {
    const out: Float32Array[] = [];
    const channels = this.model.processor.config.channels;
    for (let i = 0; i < paths.length; i += this.batchSize) {
      const imgs = await Promise.all(paths.slice(i, i + this.batchSize).map((p) => decodeImage(p, { channels })));
      out.push(...torch.scope(() => rows(this.model.encodeImages(this.model.processor.preprocess(imgs)))));
    }
    return out;
  }

  async embedText(texts: string[]): Promise<Float32Array[]> {
    if (texts.length === 0) return [];
    return torch.scope(() => rows(this.model.encodeText(texts)));
  }
}
