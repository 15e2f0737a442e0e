/**
 * The CLIP trainer: setup code around the engine's loop (`loop.ts`) for image–caption pairs →
 * symmetric InfoNCE (`methods/clip.ts`, a `Method<CLIPBatch>`) → AdamW with warmup + cosine,
 * with the run folder, atomic checkpoints and exact resume that the loop gives every trainer.
 *
 * Three starts:
 * - from scratch: a CLIP of the configured size (ViT image tower, causal text transformer,
 *   OpenAI's BPE vocabulary);
 * - fine-tuning: `model` = an HF CLIP folder or a dyad CLIP checkpoint;
 * - LiT-style (Zhai et al. 2022): `imageEncoder` = a dyad self-supervised checkpoint
 *   (`dyad train --method simclr|moco`), locked; the text tower learns to match it.
 *
 * Data: a CSV/JSONL pair list (`ImageTextPairs`) at the model's input size (shortest side
 * resized, centre crop: CLIP's "random square crop from resized images" without the
 * randomness), read by a `DataLoader` shuffled by (seed, epoch): decoded once into memory, or
 * decoded batch by batch from the files while the step runs when `cache` says so (`'auto'`:
 * in memory when the images take at most a quarter of the RAM, as `engine/data.ts`); captions
 * are tokenized once. Optional `val` pairs give image→text and
 * text→image recall@1 each epoch (the best checkpoint follows their mean, else the loss).
 *
 * Checkpoints (`last.safetensors`, `best.safetensors`) hold the CLIPModel under HF names
 * (`model.text_model...`), the optimizer, schedule and RNG; `CLIPModel.fromPretrained` and
 * `dyad zero-shot --model` read them directly.
 */
import path from 'node:path';
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { DataLoader, ImageTextPairs, InMemoryDataset } from '../data/index.js';
import { CLIPModel } from '../models/clip/model.js';
import { parseProcessorConfig, toHFProcessorConfig, type CLIPConfig } from '../models/clip/config.js';
import { createBackbone, type BackboneSpec } from '../models/index.js';
import { CLIP, type CLIPBatch } from '../methods/clip.js';
import { AdamW, SGD, paramGroupsForWeightDecay, type Optimizer } from '../optim/index.js';
import { LinearWarmupCosine } from '../optim/lr_scheduler.js';
import { disposeCheckpoint, loadCheckpoint } from './checkpoint.js';
import { Progress } from './progress.js';
import { loadMethod, runSteps } from './trainer.js';
import { cacheFits, type CacheMode } from './data.js';
import { backboneSpec } from './config.js';
import { check, definedOnly, mergeOptions } from './options.js';
import { fit, type EpochRow, type LoopCallbacks } from './loop.js';
import { localOrHub } from '../hub/index.js';

export interface ClipTrainConfig {
  method: 'clip';
  /** CSV or JSONL list of image paths and captions. */
  data: string;
  /** Held-out pairs for the recall@1 monitor (optional). */
  val: string | null;
  /** Fine-tune this model: an HF CLIP folder or a dyad CLIP checkpoint. */
  model: string | null;
  /** LiT: lock this dyad self-supervised encoder (last/best.safetensors of dyad train) as the image tower. */
  imageEncoder: string | null;
  // from-scratch sizes
  imageSize: number;
  patchSize: number;
  visionWidth: number;
  visionLayers: number;
  visionHeads: number;
  textWidth: number;
  textLayers: number;
  textHeads: number;
  contextLength: number;
  projectionDim: number;
  // optimisation
  epochs: number;
  batch: number;
  optimizer: 'adamw' | 'sgd';
  /** Learning rate (not scaled by batch). Default 5e-4 from scratch, 1e-5 when fine-tuning. */
  lr: number;
  weightDecay: number;
  warmupEpochs: number;
  /** Initial temperature τ (logit_scale = ln 1/τ) of a new model; 0.07 as the paper. */
  temperature: number;
  /** Largest exp(logit_scale): 100 as the paper. */
  maxLogitScale: number;
  seed: number;
  out: string;
  threads: number;
  maxStepsPerEpoch: number;
  /** Training images in memory (true), decoded per batch from the files (false), or in memory when they fit in a quarter of the RAM ('auto'). */
  cache: CacheMode;
}

export function defaultClipConfig(): ClipTrainConfig {
  return {
    method: 'clip', data: '', val: null, model: null, imageEncoder: null,
    imageSize: 64, patchSize: 8, visionWidth: 192, visionLayers: 6, visionHeads: 3, textWidth: 192, textLayers: 6, textHeads: 3,
    contextLength: 32, projectionDim: 128,
    epochs: 10, batch: 128, optimizer: 'adamw', lr: 0, weightDecay: 0.2, warmupEpochs: 0, temperature: 0.07, maxLogitScale: 100,
    seed: 0, out: 'runs/clip', threads: 0, maxStepsPerEpoch: 0, cache: 'auto',
  };
}

/** Merges option objects (right-most wins; see `mergeOptions`), rejecting unknown keys and bad values. */
export function resolveClipConfig(...parts: Partial<ClipTrainConfig>[]): ClipTrainConfig {
  return validateClipConfig(mergeOptions('CLIP training', defaultClipConfig(), parts));
}

/** Checks a merged CLIP training config and fills the lr default (5e-4 from scratch, 1e-5 fine-tuning). */
export function validateClipConfig(c: ClipTrainConfig): ClipTrainConfig {
  if (c.method !== 'clip') throw new TypeError(`resolveClipConfig: method must be 'clip', got '${String(c.method)}'`);
  if (!c.data) throw new TypeError('CLIP training needs data: a CSV or JSONL list of image paths and captions (--data pairs.jsonl)');
  if (c.model && c.imageEncoder) throw new TypeError('pass either model (fine-tune a CLIP) or imageEncoder (LiT on a dyad encoder), not both');
  if (c.cache !== true && c.cache !== false && c.cache !== 'auto') throw new TypeError(`cache must be true, false or 'auto', got ${JSON.stringify(c.cache)}`);
  if (!['adamw', 'sgd'].includes(c.optimizer)) throw new TypeError(`unknown optimizer '${c.optimizer}' for CLIP: use adamw or sgd`);
  for (const k of ['epochs', 'imageSize', 'patchSize', 'visionWidth', 'visionLayers', 'visionHeads', 'textWidth', 'textLayers', 'textHeads', 'projectionDim'] as const) check.int(k, c[k], 1);
  check.int('batch', c.batch, 2);
  check.int('contextLength', c.contextLength, 3);
  check.int('warmupEpochs', c.warmupEpochs, 0);
  check.int('maxStepsPerEpoch', c.maxStepsPerEpoch, 0);
  if (c.lr === 0) c.lr = c.model ? 1e-5 : 5e-4;
  check.positive('lr', c.lr);
  check.positive('temperature', c.temperature);
  if (!(c.maxLogitScale >= 1)) throw new RangeError(`maxLogitScale must be ≥ 1, got ${c.maxLogitScale}`);
  return c;
}

export interface ClipEpochMetrics extends EpochRow {
  /** exp(logit_scale) after the epoch, and the held-out recall@1 when `val` pairs are given. */
  logit_scale: number;
  val_i2t_r1?: number;
  val_t2i_r1?: number;
}

/** Pairs in memory: uint8 images [N, C, S, S] at the model's input size and their captions. */
export interface ClipPairs {
  images: Tensor;
  captions: string[];
}

export interface ClipTrainHooks extends LoopCallbacks<ClipEpochMetrics> {
  /** Resume from `out/last.safetensors` (true) or the given checkpoint. */
  resume?: boolean | string;
  silent?: boolean;
  onEpoch?: (m: ClipEpochMetrics) => void;
  /** Pre-loaded pairs (tests, benchmarks), at the model's input size, instead of reading `data`. */
  data?: ClipPairs;
  val?: ClipPairs;
}

export interface ClipTrainResult {
  config: ClipTrainConfig;
  metrics: ClipEpochMetrics[];
  best: number | null;
  lastPath: string;
  bestPath: string;
  model: CLIPModel;
}

/** A new CLIP of the configured from-scratch size, or one with a locked dyad encoder (LiT). */
export function buildClipModel(c: ClipTrainConfig): { model: CLIPModel; freezeVision: boolean } {
  const text = {
    hidden_size: c.textWidth, intermediate_size: 4 * c.textWidth, num_hidden_layers: c.textLayers, num_attention_heads: c.textHeads,
    max_position_embeddings: c.contextLength, eos_token_id: 49407, bos_token_id: 49406, pad_token_id: 0, hidden_act: 'quick_gelu' as const,
  };
  const logitScale = Math.log(1 / c.temperature);
  if (c.imageEncoder) {
    const ssl = loadMethod(c.imageEncoder);
    try {
      const sc = ssl.config;
      // the encoder as trained, its feature pooling included (the recorded featureDim depends on it)
      const spec: BackboneSpec & { featureDim: number } = { ...(definedOnly(backboneSpec(sc)) as BackboneSpec), featureDim: ssl.method.backbone.featureDim };
      const backbone = createBackbone(spec);
      torch.scope(() => backbone.loadStateDict(ssl.method.backbone.stateDict()));
      const config = { text_config: text, vision_config: { dyad_backbone: spec }, projection_dim: c.projectionDim, logit_scale_init_value: logitScale };
      const model = new CLIPModel(config, {
        visionModel: backbone,
        processor: { size: sc.imageSize, cropSize: sc.imageSize, mean: sc.mean, std: sc.std, channels: sc.channels as 1 | 3 },
      });
      model.initWeights();
      return { model, freezeVision: true };
    } finally {
      ssl.method.dispose();
    }
  }
  const config = {
    text_config: text,
    vision_config: {
      hidden_size: c.visionWidth, intermediate_size: 4 * c.visionWidth, num_hidden_layers: c.visionLayers, num_attention_heads: c.visionHeads,
      image_size: c.imageSize, patch_size: c.patchSize, num_channels: 3, hidden_act: 'quick_gelu' as const,
    },
    projection_dim: c.projectionDim, logit_scale_init_value: logitScale,
  };
  return { model: new CLIPModel(config, { processor: { size: c.imageSize, cropSize: c.imageSize } }), freezeVision: false };
}

/** What the checkpoint's config records: the CLIP config (HF fields), preprocessing, and the run. */
function checkpointConfig(model: CLIPModel, run: ClipTrainConfig, freezeVision: boolean): Record<string, unknown> {
  const clip: CLIPConfig = model.config;
  return { method: 'clip', clip, processor: toHFProcessorConfig(model.processor.config), freezeVision, run };
}

/** Reads and decodes a pair list at the model's input size (shortest side, centre crop). */
export async function loadClipPairs(file: string, model: CLIPModel): Promise<ClipPairs> {
  const pairs = await ImageTextPairs.open(file, { onError: 'skip' });
  const p = model.processor.config;
  const mem = await InMemoryDataset.from(pairs, { imageSize: p.cropSize, channels: p.channels, fit: 'cover', kernel: 'cubic' });
  const captions = Array.from(mem.sourceIndices, (i) => pairs.captions[i]!);
  const images = mem.images;
  return { images, captions };
}

/** Caption ids [N, ctx] (int64, padded to the context length) and each caption's length. */
function tokenizeAll(model: CLIPModel, captions: string[]): { ids: Tensor; lengths: Int32Array } {
  const b = model.tokenizer.encodeBatch(captions, { contextLength: model.contextLength, pad: true, truncate: true });
  const lengths = new Int32Array(b.shape[0]);
  for (let i = 0; i < b.shape[0]; i++) {
    let n = 0;
    for (let j = 0; j < b.shape[1]; j++) n += Number(b.attentionMask[i * b.shape[1] + j]);
    lengths[i] = n;
  }
  return { ids: torch.tensor(b.ids, { shape: b.shape }).keep(), lengths };
}

function buildOptimizer(c: ClipTrainConfig, method: CLIP): Optimizer<any> {
  const groups = paramGroupsForWeightDecay(method.trainableParameters(), { weightDecay: c.weightDecay });
  if (c.optimizer === 'sgd') return new SGD(groups, { lr: c.lr, momentum: 0.9, weightDecay: c.weightDecay });
  // the paper's Adam settings for ViT CLIPs: β2 0.98, eps 1e-6, decoupled weight decay
  return new AdamW(groups, { lr: c.lr, betas: [0.9, 0.98], eps: 1e-6, weightDecay: c.weightDecay });
}

/** Image→text and text→image recall@1 over held-out pairs (a caption counts when it is the pair's own, or the same text). */
export function retrievalRecall(model: CLIPModel, pairs: ClipPairs, batch = 64): { i2t: number; t2i: number } {
  return torch.noGrad(() => torch.scope(() => {
    const px = model.processor.normalizeBatch(pairs.images);
    const img = model.encodeImages(px, { batchSize: batch });
    const txt = model.encodeText(pairs.captions, { batchSize: 256 });
    const sim = img.matmul(txt.t());
    const i2t = sim.argmax(1).toArray();
    const t2i = sim.argmax(0).toArray();
    const same = (a: number, b: number): boolean => a === b || pairs.captions[a] === pairs.captions[b];
    const n = pairs.captions.length;
    return { i2t: i2t.filter((j, i) => same(i, j)).length / n, t2i: t2i.filter((i, j) => same(i, j)).length / n };
  }));
}

const CSV_COLUMNS: (keyof ClipEpochMetrics)[] = ['epoch', 'loss', 'lr', 'img_per_s', 'logit_scale', 'val_i2t_r1', 'val_t2i_r1', 'time_s'];


/** Trains (or fine-tunes) a CLIP on image–caption pairs; see the module comment. */
export async function trainClip(options: Partial<ClipTrainConfig> = {}, hooks: ClipTrainHooks = {}): Promise<ClipTrainResult> {
  let resumeFrom: ReturnType<typeof loadCheckpoint> | null = null;
  let config: ClipTrainConfig;
  if (hooks.resume) {
    const out = options.out ?? defaultClipConfig().out;
    const file = typeof hooks.resume === 'string' ? hooks.resume : path.join(out, 'last.safetensors');
    resumeFrom = loadCheckpoint(file);
    const saved = resumeFrom.meta.config as { method?: string; run?: Partial<ClipTrainConfig> };
    if (resumeFrom.meta.task !== 'clip' || !saved.run) {
      disposeCheckpoint(resumeFrom);
      throw new Error(`${file} is not a CLIP training checkpoint (task '${resumeFrom.meta.task}'); resume it with its own method`);
    }
    config = resolveClipConfig(saved.run, { epochs: options.epochs, out: options.out ?? saved.run.out });
  } else {
    config = resolveClipConfig(options);
  }
  if (config.threads > 0) torch.setNumThreads(config.threads);
  torch.manualSeed(config.seed);
  const progress = new Progress(process.stdout, { silent: hooks.silent });

  // ---- the model -------------------------------------------------------------------------------------------
  let model: CLIPModel;
  let freezeVision: boolean;
  if (resumeFrom) {
    const saved = resumeFrom.meta.config as { clip: unknown; processor: unknown; freezeVision?: boolean };
    freezeVision = saved.freezeVision ?? false;
    const cfg = saved.clip as CLIPConfig;
    const v = cfg.vision_config;
    const size = v.dyad_backbone ? v.dyad_backbone.imageSize : v.image_size;
    const ch = (v.dyad_backbone ? v.dyad_backbone.inChannels : v.num_channels) === 1 ? 1 : 3;
    model = new CLIPModel(cfg as unknown as Record<string, unknown>, { processor: parseProcessorConfig(saved.processor, size, ch) });
  } else if (config.model) {
    model = CLIPModel.fromPretrained(await localOrHub(config.model));
    freezeVision = false;
  } else {
    ({ model, freezeVision } = buildClipModel(config));
  }
  const method = new CLIP(model, { freezeVision, maxLogitScale: config.maxLogitScale });

  // ---- data ------------------------------------------------------------------------------------------------------
  const own: { dispose(): void }[] = [];
  const crop = model.processor.config.cropSize;
  const ch = model.processor.config.channels;
  // the training set as the loader reads it, and the caption index of each of its samples
  let trainSet: InMemoryDataset | ImageTextPairs;
  let captionOf: (i: number) => number = (i) => i;
  let captions: string[];
  if (hooks.data) {
    const s = hooks.data.images.shape;
    if (s.length !== 4 || s[1] !== ch || s[2] !== crop || s[3] !== crop || hooks.data.images.dtype !== 'uint8') {
      throw new RangeError(`CLIP training data must be uint8 [N, ${ch}, ${crop}, ${crop}] images (the model's input), got ${hooks.data.images.dtype} [${s.join(', ')}]`);
    }
    if (hooks.data.captions.length !== s[0]) throw new RangeError(`CLIP training data: ${s[0]} images but ${hooks.data.captions.length} captions`);
    // the caller's tensor is used as it is and stays the caller's; a non-contiguous one is copied (and that copy freed here)
    const src = hooks.data.images;
    const mem = new InMemoryDataset(src.isContiguous() ? src : torch.scope(() => src.contiguous()), new Int32Array(s[0]!).fill(-1));
    if (!src.isContiguous()) own.push(mem);
    trainSet = mem;
    captions = hooks.data.captions;
  } else {
    const pairs = await ImageTextPairs.open(config.data, { onError: 'skip' });
    captions = pairs.captions;
    if (config.cache === true || (config.cache === 'auto' && cacheFits(pairs.length, ch, crop))) {
      const mem = await InMemoryDataset.from(pairs, { imageSize: crop, channels: ch, fit: 'cover', kernel: 'cubic' });
      own.push(mem);
      trainSet = mem;
      captionOf = (i) => mem.sourceIndices[i]!;
    } else {
      trainSet = pairs;
    }
  }
  const val = hooks.val ?? (config.val ? await loadClipPairs(config.val, model) : null);
  if (val && !hooks.val) own.push(val.images);
  const tokens = tokenizeAll(model, captions);
  own.push(tokens.ids);

  const { stepsPerEpoch, totalSteps } = runSteps(trainSet.length, config, 'pairs');
  const loader = new DataLoader(trainSet, { batchSize: config.batch, shuffle: true, seed: config.seed, dropLast: true,
    imageSize: crop, channels: ch, fit: 'cover', kernel: 'cubic' });
  own.push({ dispose: () => loader.close() });
  const optimizer = buildOptimizer(config, method);
  const scheduler = new LinearWarmupCosine(optimizer, { warmupSteps: Math.min(config.warmupEpochs * stepsPerEpoch, totalSteps), totalSteps });
  /** The batch of pairs: normalised images and caption ids cut to the batch's longest caption. */
  const pairBatch = (images: Tensor, rows: number[]): CLIPBatch => {
    let maxLen = 1;
    for (const i of rows) maxLen = Math.max(maxLen, tokens.lengths[i]!);
    const sel = torch.tensor(BigInt64Array.from(rows, (i) => BigInt(i)));
    return { pixelValues: model.processor.normalizeBatch(images), inputIds: tokens.ids.indexSelect(0, sel).narrow(1, 0, maxLen) };
  };

  let result: Awaited<ReturnType<typeof fit<CLIPBatch, ClipEpochMetrics>>>;
  try {
    result = await fit<CLIPBatch, ClipEpochMetrics>({
      method, optimizer, scheduler, epochs: config.epochs, stepsPerEpoch, totalSteps,
      async *batches(epoch) {
        loader.setEpoch(epoch);
        for await (const b of loader) {
          const rows = b.indices.map(captionOf);
          yield { size: rows.length, batch: () => pairBatch(b.images, rows) };
        }
      },
      evaluate: () => {
        const row: Partial<ClipEpochMetrics> = { logit_scale: Math.exp(model.logit_scale.item()) };
        if (val) {
          const r = retrievalRecall(model, val);
          row.val_i2t_r1 = r.i2t;
          row.val_t2i_r1 = r.t2i;
        }
        return row;
      },
      run: {
        dir: config.out, task: 'clip', config: checkpointConfig(model, config, freezeVision), model, columns: CSV_COLUMNS,
        score: (row) => (val ? (row.val_i2t_r1! + row.val_t2i_r1!) / 2 : -row.loss),
      },
      resume: resumeFrom,
      progress,
      describe: (row) => `  logit scale ${row.logit_scale.toFixed(1)}` +
        (val ? `  val R@1 i→t ${(row.val_i2t_r1! * 100).toFixed(1)}% t→i ${(row.val_t2i_r1! * 100).toFixed(1)}%` : ''),
      divergenceHint: 'Lower --lr or add --warmup-epochs.',
      callbacks: [hooks, hooks.onEpoch ? { onEpochEnd: hooks.onEpoch } : undefined],
    });
  } finally {
    for (const t of own) t.dispose();
    optimizer.dispose?.();
  }
  model.eval();
  model.resetIdentity();
  return { config, metrics: result.metrics, best: result.best, lastPath: result.lastPath!, bestPath: result.bestPath!, model };
}
