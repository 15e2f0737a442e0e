/**
 * A network loaded from a dyad checkpoint, whatever its task: the module, its config (with the
 * input's channels, size, mean and std) and class names. The task decides the rest (`tasks.ts`).
 * Task 'clip' holds a `CLIPModel` (an HF CLIP folder or a dyad CLIP checkpoint): its features are
 * the image tower's projections, and `setClasses` gives it a zero-shot classifier.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { writeFileAtomic } from '../torch/io.js';
import { readHeader } from '../torch/safetensors.js';
import type * as nn from '../nn/index.js';
import { TorchScriptError } from '../nn/index.js';
import type { SelfSupervisedMethod } from '../methods/index.js';
import { Classifier, type ClassifierBackbone } from '../models/classifier.js';
import { CLIPModel } from '../models/clip/model.js';
import { CLIP_BPE_FILE } from '../models/clip/tokenizer.js';
import { toHFProcessorConfig } from '../models/clip/config.js';
import { DEFAULT_TEMPLATES, checkLabels, zeroShotClassifier } from '../models/clip/zero_shot.js';
import { loadMethod } from '../engine/trainer.js';
import { CheckpointError, disposeCheckpoint, loadCheckpoint, saveCheckpoint, type CheckpointMeta } from '../engine/checkpoint.js';
import { buildBackbone, saveClassifier, type ClassifierProvenance, type ModelInputConfig } from '../engine/classify.js';
import { BackboneEmbedder } from './torchscript.js';

export type Task = 'embedder' | 'classifier' | 'clip';

/** A checkpoint config: training options plus the input's statistics. */
export type NetConfig = ModelInputConfig & Record<string, unknown>;

export class Net {
  constructor(
    readonly task: Task,
    /** Method (embedder), Classifier, or CLIPModel (clip). */
    readonly module: SelfSupervisedMethod | Classifier | CLIPModel,
    readonly config: NetConfig,
    /** Class names; for 'clip', the zero-shot labels `setClasses` gave (empty until then). */
    public names: string[],
    /** The checkpoint file, when loaded from / saved to one. */
    public weights: string | null,
    readonly meta: Partial<CheckpointMeta> = {},
  ) {
    module.eval();
  }

  /** CLIP: the zero-shot classifier (class embeddings [C, projection_dim] of `names`), once `setClasses` made it. */
  classEmbeds: Tensor | null = null;
  /** CLIP: the prompt templates of `classEmbeds`. */
  templates: readonly string[] = DEFAULT_TEMPLATES;

  get backbone(): ClassifierBackbone {
    if (this.module instanceof CLIPModel) {
      throw new TypeError(`${this.weights ?? 'this model'} is a CLIP model: it has no dyad backbone to probe or fine-tune. ` +
        "Use its zero-shot classifier (model.setClasses(['cat', 'dog'])), or fine-tune it on image–caption pairs (dyad train --method clip --model ...)");
    }
    return this.module.backbone;
  }

  get classifier(): Classifier | null {
    return this.module instanceof Classifier ? this.module : null;
  }

  /** The CLIP model of a 'clip' network, else null. */
  get clip(): CLIPModel | null {
    return this.module instanceof CLIPModel ? this.module : null;
  }

  /** Length of `features`: the backbone's feature size, or CLIP's projection size. */
  get featureDim(): number {
    return this.module instanceof CLIPModel ? this.module.projectionDim : this.module.backbone.featureDim;
  }

  /** Features [N, D] of normalised images: the backbone's, or CLIP's image embeddings (not normalised). */
  features(x: Tensor): Tensor {
    return this.module instanceof CLIPModel ? this.module.getImageFeatures(x) : this.module.backbone.forward(x);
  }

  /**
   * CLIP: makes this network a zero-shot classifier over `labels` (class embeddings of the
   * labels' prompts, ensembled over `templates`: `zeroShotClassifier`). Replaces earlier classes.
   */
  setClasses(labels: readonly string[], templates: readonly string[] = DEFAULT_TEMPLATES): void {
    const clip = this.clip;
    if (!clip) throw new TypeError(`setClasses: only a CLIP model takes classes by name; this is a ${this.task}`);
    const names = checkLabels(labels, 'setClasses');
    if (templates.length === 0) throw new RangeError('setClasses: pass at least one prompt template, e.g. ["a photo of a {}."]');
    const w = zeroShotClassifier(clip, names, templates).keep();
    this.clearClasses();
    this.classEmbeds = w;
    this.names = names;
    this.templates = [...templates];
  }

  /** CLIP: drops the zero-shot classes (back to embeddings only). */
  clearClasses(): void {
    this.classEmbeds?.dispose();
    this.classEmbeds = null;
    if (this.clip) this.names = [];
  }

  /**
   * A fresh copy of the backbone with the same weights (for probes and fine-tuning, which train
   * their own); `pooling` changes what a ResNet's forward pools (`ResNetOptions.featureStages` /
   * `featureGrid`), which the weights do not depend on.
   */
  copyBackbone(pooling: Pick<ModelInputConfig, 'featureStages' | 'featureGrid'> = {}): ClassifierBackbone {
    const c = this.config;
    const bb = buildBackbone({ ...c, featureStages: pooling.featureStages ?? c.featureStages, featureGrid: pooling.featureGrid ?? c.featureGrid });
    torch.scope(() => bb.loadStateDict(this.backbone.stateDict()));
    return bb;
  }

  /** A copy of the classifier (same weights), to train without touching this one. */
  copyClassifier(): Classifier {
    const c = this.classifier;
    if (!c) throw new Error('copyClassifier: this network is not a classifier');
    const copy = new Classifier(buildBackbone(this.config), c.numClasses);
    torch.scope(() => copy.loadStateDict(c.stateDict()));
    return copy;
  }

  /**
   * Writes a checkpoint of this network (its task, config and names) atomically. A CLIP goes to
   * a dyad checkpoint (`.safetensors`, OpenAI's tokenizer) or, for any other path, an HF folder
   * (`savePretrained`, with its tokenizer); both keep the zero-shot classes.
   */
  save(file: string): void {
    const c = this.classifier;
    const clip = this.clip;
    if (clip && !file.endsWith('.safetensors')) {
      clip.savePretrained(file);
      const zs = path.join(file, ZERO_SHOT_FILE);
      if (this.names.length > 0) writeFileAtomic(zs, JSON.stringify({ labels: this.names, templates: this.templates }, null, 2) + '\n');
      else if (existsSync(zs)) writeFileAtomic(zs, JSON.stringify({ labels: [], templates: [] }) + '\n');
      clip.weightsFiles = [path.join(file, 'model.safetensors')];
      clip.source = path.resolve(file);
      clip.resetIdentity();
    } else if (clip) {
      if (clip.tokenizerFiles.some((f) => path.basename(f) !== CLIP_BPE_FILE)) {
        throw new TypeError(`${file}: this CLIP has its own tokenizer (${clip.tokenizerFiles.map((f) => path.basename(f)).join(', ')}), which a .safetensors checkpoint does not hold. ` +
          'Save it to a folder instead (model.save(\'my-clip\'): the Hugging Face layout, tokenizer included)');
      }
      // the layout of `dyad train --method clip` (CLIPModel.fromCheckpoint), plus the zero-shot classes
      const config = { ...this.config, method: 'clip', clip: clip.config, processor: toHFProcessorConfig(clip.processor.config) };
      saveCheckpoint(file, { model: clip, meta: { task: 'clip', config, epoch: this.meta.epoch ?? 0, step: this.meta.step ?? 0, names: this.names,
        metrics: this.meta.metrics, extra: this.names.length > 0 ? { zeroShot: { templates: this.templates } } : undefined } });
      clip.weightsFiles = [file];
      clip.source = file;
      clip.resetIdentity();
    } else if (c) {
      const provenance = (this.meta.extra?.classifier ?? { mode: 'supervised', labelFraction: 1, labels: 0, data: String(this.config.data ?? '') }) as ClassifierProvenance;
      saveClassifier(file, c, { config: this.config, names: this.names, provenance, metrics: this.meta.metrics });
    } else {
      saveCheckpoint(file, { model: this.module as nn.Module, meta: { task: 'embedder', config: this.config, epoch: this.meta.epoch ?? 0, step: this.meta.step ?? 0, names: this.names } });
    }
    this.weights = file;
  }

  dispose(): void {
    this.clearClasses();
    this.module.dispose();
  }
}

function num(c: Record<string, unknown>, k: string, file: string): number {
  const v = c[k];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new CheckpointError(`${file}: the checkpoint config has no valid '${k}' (got ${JSON.stringify(v)}); it was not written by dyad or is damaged`);
  return v;
}

/** The input/backbone part of a classifier checkpoint's config, validated. */
function classifierConfig(raw: Record<string, unknown>, file: string): NetConfig {
  const channels = num(raw, 'channels', file);
  if (channels !== 1 && channels !== 3) throw new CheckpointError(`${file}: the checkpoint config has channels ${channels}; expected 1 or 3`);
  const arr = (k: string): number[] => {
    const v = raw[k];
    if (!Array.isArray(v) || v.length === 0 || !v.every((x) => typeof x === 'number')) throw new CheckpointError(`${file}: the checkpoint config has no valid '${k}' list`);
    return v as number[];
  };
  num(raw, 'imageSize', file);
  num(raw, 'width', file);
  if (typeof raw.backbone !== 'string') throw new CheckpointError(`${file}: the checkpoint config names no backbone`);
  return { ...raw, stem: (raw.stem as NetConfig['stem']) ?? 'auto', mean: arr('mean'), std: arr('std') } as NetConfig;
}

/**
 * Loads a checkpoint as an embedder (task 'embedder', a self-supervised run) or a classifier.
 * @throws CheckpointError for a missing/damaged file or weights that do not fit the config.
 */
export function loadNet(file: string): Net {
  if (CLIPModel.isCLIPPath(file)) return loadCLIPNet(file);
  const ck = loadCheckpoint(file);
  const task = ck.meta.task;
  if (task === 'embedder' && ck.meta.config.backbone === 'torchscript' && ck.meta.config.method === undefined) return loadBackboneNet(file, ck);
  if (task === 'embedder') {
    disposeCheckpoint(ck);
    let loaded: ReturnType<typeof loadMethod>;
    try {
      loaded = loadMethod(file);
    } catch (e) {
      const msg = (e as Error).message;
      throw new CheckpointError(e instanceof TorchScriptError && !msg.includes(file) ? `${file}: ${msg}` : msg, { cause: e });
    }
    return new Net('embedder', loaded.method, loaded.config as unknown as NetConfig, loaded.names, file, loaded.meta);
  }
  try {
    if (task !== 'classifier') throw new CheckpointError(`${file}: unknown task '${String(task)}' (this dyad reads 'embedder', 'classifier' and 'clip' checkpoints)`);
    const config = classifierConfig(ck.meta.config, file);
    const names = ck.meta.names ?? [];
    const head = ck.model.get('head.weight');
    if (!head || head.ndim !== 2) throw new CheckpointError(`${file}: a classifier checkpoint without a head.weight matrix`);
    if (names.length !== head.size(0)) throw new CheckpointError(`${file}: ${names.length} class names for a head with ${head.size(0)} outputs`);
    let model: Classifier;
    try {
      model = new Classifier(buildBackbone(config), names.length);
    } catch (e) {
      throw new CheckpointError(`${file}: cannot build the model its config describes (${(e as Error).message})`);
    }
    try {
      model.loadStateDict(ck.model);
    } catch (e) {
      model.dispose();
      throw new CheckpointError(`${file}: the weights do not match the model described by its config (${(e as Error).message})`);
    }
    return new Net('classifier', model, config, names, file, ck.meta);
  } finally {
    disposeCheckpoint(ck);
  }
}

/** A saved `Model.load('model.pt')` embedder (a TorchScript backbone, no method): the .pt again, then the checkpoint's weights. */
function loadBackboneNet(file: string, ck: ReturnType<typeof loadCheckpoint>): Net {
  try {
    const config = classifierConfig(ck.meta.config, file);
    let bb: ReturnType<typeof buildBackbone>;
    try {
      bb = buildBackbone(config);
    } catch (e) {
      throw new CheckpointError(`${file}: cannot build the model its config describes (${(e as Error).message})`, { cause: e });
    }
    const model = new BackboneEmbedder(bb);
    try {
      model.loadStateDict(ck.model);
    } catch (e) {
      model.dispose();
      throw new CheckpointError(`${file}: the weights do not match the model described by its config (${(e as Error).message})`);
    }
    return new Net('embedder', model, config, ck.meta.names ?? [], file, ck.meta);
  } finally {
    disposeCheckpoint(ck);
  }
}

/** The input part of a CLIP's config: its processor's crop size, channels, mean and std. */
function clipInputConfig(clip: CLIPModel, extra: Record<string, unknown> = {}): NetConfig {
  const p = clip.processor.config;
  return { ...extra, imageSize: p.cropSize, channels: p.channels, mean: [...p.mean], std: [...p.std] } as unknown as NetConfig;
}

/** A CLIP model as a network of task 'clip' (not owned twice: disposing the network disposes the model). */
export function clipNet(clip: CLIPModel, meta: Partial<CheckpointMeta> = {}): Net {
  return new Net('clip', clip, clipInputConfig(clip, meta.config), [], clip.source, meta);
}

/** The zero-shot classes of a CLIP saved as an HF folder by `Net.save` ({ labels, templates }). */
const ZERO_SHOT_FILE = 'dyad_zero_shot.json';

/**
 * Loads a CLIP: an HF folder (or a file in one) or a dyad CLIP checkpoint (task 'clip', from
 * `dyad train --method clip` or `Model.save`); a model saved with classes gets them back.
 */
function loadCLIPNet(file: string): Net {
  let meta: Partial<CheckpointMeta> = {};
  if (file.endsWith('.safetensors')) {
    const raw = readHeader(file).metadata?.dyad;
    if (raw !== undefined) {
      try {
        meta = JSON.parse(raw) as Partial<CheckpointMeta>;
      } catch {
        throw new CheckpointError(`${file}: the checkpoint metadata is not valid JSON (the file is damaged)`);
      }
    }
  }
  const clip = CLIPModel.fromPretrained(file);
  const { config, ...rest } = meta;
  const keep = Object.fromEntries(Object.entries(config ?? {}).filter(([k]) => !['clip', 'processor', 'run', 'freezeVision'].includes(k)));
  const net = new Net('clip', clip, clipInputConfig(clip, keep), [], file, rest);
  let names = meta.names ?? [];
  let templates = (meta.extra?.zeroShot as { templates?: string[] } | undefined)?.templates ?? DEFAULT_TEMPLATES;
  const zs = path.join(statSync(file).isDirectory() ? file : path.dirname(file), ZERO_SHOT_FILE);
  if (meta.task === undefined && existsSync(zs)) { // an HF folder saved by `save` with classes
    try {
      ({ labels: names, templates } = JSON.parse(readFileSync(zs, 'utf8')) as { labels: string[]; templates: string[] });
    } catch (e) {
      net.dispose();
      throw new CheckpointError(`${zs} is not valid JSON ({ labels, templates }): ${(e as Error).message}`);
    }
  }
  try {
    if (names.length > 0) net.setClasses(names, templates);
  } catch (e) {
    net.dispose();
    throw e;
  }
  return net;
}
