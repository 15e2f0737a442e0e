/**
 * CLIP as a task of `Model` (task 'clip', one row of `TASKS`): a CLIP model (an HF folder or a
 * dyad CLIP checkpoint) embeds images with its image tower, and `model.setClasses(labels)` makes
 * it a zero-shot classifier (Radford et al. 2021, §3.1) whose `predict` gives the same
 * `Results`/`Probs` as a trained classifier's.
 *
 * ```ts
 * const model = await Model.load('models/clip-vit-base-patch32');
 * const vectors = await model.embed(['a.jpg', 'b.png']);               // CLIP image embeddings
 * model.setClasses(['cat', 'dog'], { templates: IMAGENET_TEMPLATES });  // prompt ensembling (§3.1.4)
 * const [r] = await model.predict('cat.jpg');                            // r.names[r.probs.top1]
 * const m = await model.val({ data: 'labelled/' });                      // zero-shot top-1 over its class folders
 * ```
 *
 * The tensor side (class embeddings of prompts, logits = exp(t)·img·txtᵀ) is `models/clip/zero_shot.ts`;
 * this file is the task's predictor, validator and trainer, and the `zeroShot` shortcut.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import type { CLIPModel } from '../models/clip/model.js';
import { DEFAULT_TEMPLATES, zeroShotClassifier, zeroShotLogits } from '../models/clip/zero_shot.js';
import { trainClip, defaultClipConfig, type ClipTrainConfig } from '../engine/clip_trainer.js';
import { classifyMetrics, labelMap, loadEvalData } from '../engine/classify.js';
import type { Source, LoadedImage, InputSpec, FetchOptions } from '../data/sources.js';
import { clipNet, loadNet, type Net } from './net.js';
import { Predictor } from './predictor.js';
import { Validator, type ValMetrics } from './validator.js';
import { Trainer, type TrainOutcome } from './trainer.js';
import { PREDICT_DEFAULTS } from './args.js';
import type { Results } from './results.js';

function clipOf(net: Net): CLIPModel {
  const clip = net.clip;
  if (!clip) throw new TypeError(`a '${net.task}' network is not a CLIP model`);
  return clip;
}

/** The message a CLIP model without classes gives when asked for class probabilities. */
export function clipHint(weights: string | null): string {
  const w = weights ?? 'this model';
  return `${w} is a CLIP model without classes: it gives embeddings (results[i].embedding). For class probabilities, name the classes: ` +
    "model.setClasses(['cat', 'dog']) (optionally { templates: IMAGENET_TEMPLATES }), " +
    `or on the command line \`dyad predict --weights ${w} --labels "cat,dog" --source <images>\` (or \`dyad zero-shot --model ${w} ...\`)`;
}

/**
 * CLIP's predictor: images decoded at full resolution and preprocessed by the model's own
 * processor (shortest side resized, centre crop, CLIP mean/std), embedded by the image tower;
 * with classes (`setClasses`), probabilities softmax(exp(t) · cos(image, class)) over them.
 * Embeddings are given without classes, or when asked (`embed: true`).
 */
export class ZeroShotPredictor extends Predictor {
  protected override inputSpec(): InputSpec {
    return { channels: clipOf(this.net).processor.config.channels, imageSize: null };
  }

  override batchTensor(images: LoadedImage[]): Tensor {
    return clipOf(this.net).processor.preprocess(images.map((l) => l.image));
  }

  protected infer(x: Tensor): { logits: Tensor | null; features: Tensor | null } {
    const clip = clipOf(this.net);
    const w = this.net.classEmbeds;
    return torch.scope(() => {
      const f = clip.getImageFeatures(x);
      return { logits: w ? zeroShotLogits(clip, f, w) : null, features: w === null || this.args.embed ? f : null };
    });
  }

  protected noProbs(): string | undefined {
    return this.net.classEmbeds ? undefined : clipHint(this.net.weights);
  }
}

/**
 * Zero-shot top-1/top-5 on labelled data (`loadEvalData`'s split), the class folder names as the
 * labels (or the model's classes, when `setClasses` gave them: each data class must be one).
 * Images are brought to the crop size as the CLIP trainer does (shortest side, centre crop),
 * then rescaled and normalised by the processor.
 */
export class ZeroShotValidator extends Validator {
  async run(): Promise<ValMetrics> {
    const clip = clipOf(this.net);
    const p = clip.processor.config;
    const ev = await loadEvalData({ data: this.args.data, dataRoot: this.args.dataRoot, imageSize: p.cropSize, channels: p.channels });
    const own = this.net.classEmbeds === null;
    const names = own ? ev.names : this.net.names;
    const classes = own ? zeroShotClassifier(clip, names, DEFAULT_TEMPLATES).keep() : this.net.classEmbeds!;
    try {
      const map = labelMap(ev.names, names);
      const bs = this.args.batch;
      const m = torch.scope(() => {
        const parts: Tensor[] = [];
        for (let i = 0; i < ev.indices.length; i += bs) {
          parts.push(torch.scope(() => {
            const b = ev.ds.tensorBatch(ev.indices.slice(i, i + bs));
            return torch.noGrad(() => zeroShotLogits(clip, clip.getImageFeatures(clip.processor.normalizeBatch(b.images)), classes));
          }));
        }
        const labels = Int32Array.from(ev.indices, (i) => map[ev.ds.labels[i]!]!);
        return classifyMetrics(torch.cat(parts, 0), labels, names);
      });
      return { ...m, data: this.args.data, split: ev.split, method: 'zero-shot' };
    } finally {
      if (own) classes.dispose();
      ev.ds.dispose();
    }
  }
}

/**
 * Trains a CLIP on image–caption pairs (`data`: a CSV/JSONL pair list) with the CLIP trainer
 * (`engine/clip_trainer.ts`), fine-tuning the loaded model; the options of `Model.train` that
 * the CLIP trainer knows (epochs, batch, lr, out, ...) pass through. Its zero-shot classes carry over.
 */
export class CLIPTrainer extends Trainer {
  async run(): Promise<{ net: Net; outcome: TrainOutcome }> {
    if (this.extras.supervised) {
      throw new TypeError('supervised: true trains a dyad classifier from labelled images; a CLIP model trains on image–caption pairs (train({ data: "pairs.jsonl" }))');
    }
    const known = new Set(Object.keys(defaultClipConfig()));
    const cfg: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(this.config)) if (known.has(k) && k !== 'method' && v !== undefined) cfg[k] = v;
    let tmp: string | null = null;
    const clip = this.net?.clip ?? null;
    try {
      if (clip) {
        let from = clip.source;
        if (from === null) {
          tmp = mkdtempSync(path.join(tmpdir(), 'dyad-clip-'));
          clip.savePretrained(tmp);
          from = tmp;
        }
        cfg.model = from;
      }
      const r = await trainClip(cfg as Partial<ClipTrainConfig>, { silent: this.extras.silent });
      r.model.dispose();
      const weights = existsSync(r.bestPath) ? r.bestPath : r.lastPath;
      const net = loadNet(weights);
      if (this.net && this.net.names.length > 0 && net.classEmbeds === null) net.setClasses(this.net.names, this.net.templates);
      const outcome: TrainOutcome & { clipEpochs: typeof r.metrics } = { weights, clipEpochs: r.metrics };
      return { net, outcome };
    } finally {
      if (tmp) rmSync(tmp, { recursive: true, force: true });
    }
  }
}

export interface ZeroShotOptions {
  /** Prompt templates with `{}` for the label (default ['a photo of a {}.']; `IMAGENET_TEMPLATES` for the paper's ensemble). */
  templates?: readonly string[];
  /** Images per forward pass (default 32). */
  batchSize?: number;
  /** For URL sources. */
  fetch?: FetchOptions;
}

/**
 * Classifies `images` (paths, folders, globs, URLs, buffers, tensors: as `Model.predict`) into
 * `labels` with `model`, which stays the caller's: one `Results` per image, `names` = labels,
 * `probs` over them, `embedding` the image's CLIP embedding. The shortcut for
 * `Model` + `setClasses` + `predict` on a `CLIPModel` already in memory.
 */
export async function zeroShot(model: CLIPModel, images: Source, labels: readonly string[], o: ZeroShotOptions = {}): Promise<Results[]> {
  const net = clipNet(model);
  net.setClasses(labels, o.templates ?? DEFAULT_TEMPLATES);
  try {
    const args = { ...PREDICT_DEFAULTS, embed: true, batch: o.batchSize ?? PREDICT_DEFAULTS.batch, ...o.fetch };
    const out: Results[] = [];
    for await (const r of new ZeroShotPredictor(net, args).stream(images)) out.push(r);
    if (out.length === 0) throw new RangeError('zeroShot: the source holds no images');
    return out;
  } finally {
    net.clearClasses(); // the model itself is the caller's
  }
}
