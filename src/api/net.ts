/**
 * A network loaded from a dyad checkpoint, whatever its task: the module, its config (with the
 * input's channels, size, mean and std) and class names. The task decides the rest (`tasks.ts`).
 */
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import type * as nn from '../nn/index.js';
import type { Method } from '../methods/index.js';
import { Classifier, type ClassifierBackbone } from '../models/classifier.js';
import { CLIPModel } from '../models/clip/model.js';
import { loadMethod } from '../engine/trainer.js';
import { CheckpointError, disposeCheckpoint, loadCheckpoint, saveCheckpoint, type CheckpointMeta } from '../engine/checkpoint.js';
import { buildBackbone, saveClassifier, type ClassifierProvenance, type ModelInputConfig } from '../engine/classify.js';

export type Task = 'embedder' | 'classifier';

/** A checkpoint config: training options plus the input's statistics. */
export type NetConfig = ModelInputConfig & Record<string, unknown>;

export class Net {
  constructor(
    readonly task: Task,
    /** Method (embedder) or Classifier. */
    readonly module: Method | Classifier,
    readonly config: NetConfig,
    readonly names: string[],
    /** The checkpoint file, when loaded from / saved to one. */
    public weights: string | null,
    readonly meta: Partial<CheckpointMeta> = {},
  ) {
    module.eval();
  }

  get backbone(): ClassifierBackbone {
    return this.module.backbone;
  }

  get classifier(): Classifier | null {
    return this.module instanceof Classifier ? this.module : null;
  }

  get featureDim(): number {
    return this.module.backbone.featureDim;
  }

  /** Backbone features [N, D] of normalised images. */
  features(x: Tensor): Tensor {
    return this.module.backbone.forward(x);
  }

  /**
   * A fresh copy of the backbone with the same weights (for probes and fine-tuning, which train
   * their own); `pooling` changes what a ResNet's forward pools (`ResNetOptions.featureStages` /
   * `featureGrid`), which the weights do not depend on.
   */
  copyBackbone(pooling: Pick<ModelInputConfig, 'featureStages' | 'featureGrid'> = {}): ClassifierBackbone {
    const c = this.config;
    const bb = buildBackbone({ ...c, featureStages: pooling.featureStages ?? c.featureStages, featureGrid: pooling.featureGrid ?? c.featureGrid });
    torch.scope(() => bb.loadStateDict(this.module.backbone.stateDict()));
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

  /** Writes a checkpoint of this network (its task, config and names) atomically. */
  save(file: string): void {
    const c = this.classifier;
    if (c) {
      const provenance = (this.meta.extra?.classifier ?? { mode: 'supervised', labelFraction: 1, labels: 0, data: String(this.config.data ?? '') }) as ClassifierProvenance;
      saveClassifier(file, c, { config: this.config, names: this.names, provenance, metrics: this.meta.metrics });
    } else {
      saveCheckpoint(file, { model: this.module as nn.Module, meta: { task: 'embedder', config: this.config, epoch: this.meta.epoch ?? 0, step: this.meta.step ?? 0, names: this.names } });
    }
    this.weights = file;
  }

  dispose(): void {
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
  if (CLIPModel.isCLIPPath(file)) {
    throw new CheckpointError(
      `${file} is a CLIP model (image and text towers), which Model does not load: use CLIPModel.fromPretrained('${file}') ` +
        `for zeroShot / getImageFeatures / getTextFeatures, CLIPEmbedder.fromPretrained('${file}') to build a text-searchable index, ` +
        `or the CLI's 'dyad zero-shot --model ${file}' and 'dyad index --weights ${file}' (then 'dyad search --text ...')`,
    );
  }
  const ck = loadCheckpoint(file);
  const task = ck.meta.task;
  if (task === 'embedder') {
    disposeCheckpoint(ck);
    let loaded: ReturnType<typeof loadMethod>;
    try {
      loaded = loadMethod(file);
    } catch (e) {
      throw new CheckpointError((e as Error).message);
    }
    return new Net('embedder', loaded.method, loaded.config as unknown as NetConfig, loaded.names, file, loaded.meta);
  }
  try {
    if (task !== 'classifier') throw new CheckpointError(`${file}: unknown task '${String(task)}' (this dyad reads 'embedder' and 'classifier' checkpoints)`);
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
