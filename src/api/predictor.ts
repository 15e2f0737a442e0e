/**
 * Predictors: sources → batches of model-sized images → the network → `Results`. One class per
 * task (`tasks.ts` picks), sharing the batching and preprocessing of `Predictor`.
 *
 * Per batch: load every image (fetch/decode/resize as in training, concurrently), pack uint8
 * NCHW and normalise with the checkpoint's mean/std (`preprocess`); run the backbone (and head)
 * in eval mode without gradients (`inference`); softmax, L2-normalise, copy out (`postprocess`).
 * `speed` reports each stage's batch time divided by the batch size.
 */
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { packNCHW } from '../data/index.js';
import { normalize } from '../transforms/index.js';
import type { Net } from './net.js';
import { Probs, Results } from './results.js';
import { expandSources, loadItem, type FetchOptions, type InputSpec, type LoadedImage, type Source, type SourceItem } from '../data/sources.js';
import type { PredictArgs } from './args.js';

interface BatchOut {
  probs: Float32Array[] | null;
  embeddings: Float32Array[] | null;
}

function rows(t: Tensor): Float32Array[] {
  const [n, d] = t.shape as [number, number];
  const all = t.contiguous().toFloat32Array();
  return Array.from({ length: n }, (_, i) => all.slice(i * d, (i + 1) * d));
}

export abstract class Predictor {
  constructor(protected readonly net: Net, protected readonly args: PredictArgs) {}

  /** What this task computes for a normalised batch. */
  protected abstract infer(x: Tensor): { logits: Tensor | null; features: Tensor | null };
  /** Message of the error an absent `probs` throws. */
  protected abstract noProbs(): string | undefined;

  /** What `loadItem` brings each image to: the checkpoint's channels and size. */
  protected inputSpec(): InputSpec {
    return { channels: this.net.config.channels, imageSize: this.net.config.imageSize };
  }

  /** Preprocessing of a list of images into one normalised float batch (what training feeds the network). */
  batchTensor(images: LoadedImage[]): Tensor {
    const { channels, imageSize, mean, std } = this.net.config;
    const data = packNCHW(images.map((l) => l.image), [imageSize, imageSize, channels]);
    return torch.scope(() => normalize(torch.fromBytes(data, 'uint8', [images.length, channels, imageSize, imageSize]), { mean, std }));
  }

  private async load(items: SourceItem[]): Promise<LoadedImage[]> {
    const fetchOpts: FetchOptions = { timeoutMs: this.args.timeoutMs, maxBytes: this.args.maxBytes };
    const spec = this.inputSpec();
    return Promise.all(items.map((it) => loadItem(it, spec, fetchOpts)));
  }

  private async *batches(source: Source): AsyncGenerator<SourceItem[]> {
    let chunk: SourceItem[] = [];
    for await (const item of expandSources(source)) {
      chunk.push(item);
      if (chunk.length >= this.args.batch) {
        yield chunk;
        chunk = [];
      }
    }
    if (chunk.length > 0) yield chunk;
  }

  /** Results one by one, a batch at a time. */
  async *stream(source: Source): AsyncGenerator<Results> {
    for await (const items of this.batches(source)) {
      const t0 = performance.now();
      const images = await this.load(items);
      const x = this.batchTensor(images);
      const t1 = performance.now();
      let out: BatchOut;
      let t2: number;
      try {
        const { logits, features } = torch.noGrad(() => this.infer(x));
        t2 = performance.now();
        out = torch.scope(() => ({
          probs: logits ? rows(logits.softmax(1)) : null,
          embeddings: features ? rows(torch.functional.normalize(features, { dim: 1 })) : null,
        }));
        logits?.dispose();
        features?.dispose();
      } finally {
        x.dispose();
      }
      const t3 = performance.now();
      const n = items.length;
      const speed = { preprocess: (t1 - t0) / n, inference: (t2 - t1) / n, postprocess: (t3 - t2) / n };
      for (let i = 0; i < n; i++) {
        yield new Results({
          path: images[i]!.path, origShape: images[i]!.origShape, names: this.net.names,
          probs: out.probs ? new Probs(out.probs[i]!) : null, embedding: out.embeddings ? out.embeddings[i]! : null, speed: { ...speed },
          noProbs: this.noProbs(),
        });
      }
    }
  }
}

/** Embedders give embeddings only. */
export class EmbedderPredictor extends Predictor {
  protected infer(x: Tensor): { logits: Tensor | null; features: Tensor | null } {
    return { logits: null, features: this.net.features(x) };
  }
  protected noProbs(): string {
    return embedderHint(this.net.weights);
  }
}

/** Classifiers give class probabilities, and embeddings when asked (`embed: true`). */
export class ClassifierPredictor extends Predictor {
  protected infer(x: Tensor): { logits: Tensor | null; features: Tensor | null } {
    return torch.scope(() => {
      const f = this.net.features(x);
      const logits = this.net.classifier!.head.forward(f);
      return { logits, features: this.args.embed ? f : null };
    });
  }
  protected noProbs(): undefined {
    return undefined;
  }
}

/** The message an embedder gives when asked for class probabilities: what it is, and how to make a classifier. */
export function embedderHint(weights: string | null): string {
  const w = weights ?? 'this model';
  return `${w} is an embedder (a self-supervised checkpoint): it gives embeddings (results[i].embedding), not class probabilities. ` +
    'To classify, train a linear classifier on its features with a few labelled images (one subfolder per class): ' +
    `\`dyad probe --weights ${w} --data <labelled folder|fashion-mnist> --label-fraction 0.1 --out classifier.safetensors\` ` +
    "or `await model.linearProbe({ data, labelFraction: 0.1, out: 'classifier.safetensors' })` (or `finetune` the same way), then load that classifier.";
}
