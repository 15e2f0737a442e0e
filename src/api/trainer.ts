/**
 * Trainers, one per task (`tasks.ts` picks):
 * - Embedder: self-supervised training (`engine/trainer.ts`: SimCLR or MoCo) on `data`; a loaded
 *   embedder starts from its own weights when the architecture is unchanged.
 * - Classifier: fine-tunes the whole classifier (backbone and head) on labelled `data` whose
 *   classes are the model's.
 * - Both, with `supervised: true`: the supervised baseline, the same backbone from random
 *   initialisation plus a linear head (`engine/supervised.ts`).
 * Results go to a run folder (`out`; by default a fresh `runs/train`, `runs/train2`, ... so
 * that no earlier run is overwritten); the model then holds `<out>/best.safetensors`.
 */
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import * as torch from '../torch/index.js';
import { train as trainSelfSupervised, type EpochMetrics } from '../engine/trainer.js';
import { resolveConfig, type TrainConfig } from '../engine/config.js';
import { DataError } from '../data/errors.js';
import { evaluateClassifier, labelSubset, loadLabelledData, saveClassifier, type ClassifyMetrics } from '../engine/classify.js';
import { FIT_DEFAULTS, fitClassifier, pickFit, trainSupervised } from '../engine/supervised.js';
import type { Method } from '../methods/index.js';
import { loadNet, type Net } from './net.js';
import type { TrainArgs, TrainExtras } from './args.js';

export interface TrainOutcome {
  /** The checkpoint the model now holds. */
  weights: string;
  /** Self-supervised: per-epoch metrics (loss, kNN top-1). */
  epochs?: EpochMetrics[];
  /** Supervised / fine-tuned: metrics on the evaluation split. */
  metrics?: ClassifyMetrics & { split: string; labels: number; steps: number; trainLoss: number };
}

/** The first of `runs/train`, `runs/train2`, ... that does not exist. */
export function freshRunDir(base = 'runs/train'): string {
  if (!existsSync(base)) return base;
  for (let i = 2; ; i++) if (!existsSync(`${base}${i}`)) return `${base}${i}`;
}

const ARCH_KEYS = ['method', 'backbone', 'width', 'stem', 'channels', 'imageSize'] as const;

export abstract class Trainer {
  constructor(protected readonly net: Net | null, protected readonly config: Partial<TrainConfig>, protected readonly extras: TrainExtras) {}
  abstract run(): Promise<{ net: Net; outcome: TrainOutcome }>;

  protected async supervised(): Promise<{ net: Net; outcome: TrainOutcome }> {
    const r = await trainSupervised(this.config, { ...pickFit(this.extras), labelFraction: this.extras.labelFraction, silent: this.extras.silent });
    r.model.dispose();
    return { net: loadNet(r.weights!), outcome: { weights: r.weights!, metrics: r.metrics } };
  }
}

export class EmbedderTrainer extends Trainer {
  async run(): Promise<{ net: Net; outcome: TrainOutcome }> {
    if (this.extras.supervised) return this.supervised();
    const net = this.net;
    const c = resolveConfig(this.config);
    const sameArch = net !== null && ARCH_KEYS.every((k) => k === 'imageSize' ? (c.imageSize || net.config.imageSize) === net.config.imageSize : c[k] === net.config[k]);
    const init = sameArch ? (m: Method): void => {
      torch.scope(() => m.loadStateDict(net!.module.stateDict()));
    } : undefined;
    const r = await trainSelfSupervised(this.config, { silent: this.extras.silent, init });
    r.method.dispose();
    const weights = existsSync(r.bestPath) ? r.bestPath : r.lastPath;
    return { net: loadNet(weights), outcome: { weights, epochs: r.metrics } };
  }
}

export class ClassifierTrainer extends Trainer {
  async run(): Promise<{ net: Net; outcome: TrainOutcome }> {
    if (this.extras.supervised) return this.supervised();
    const net = this.net!;
    const c = resolveConfig(this.config);
    const { imageSize, channels, mean, std } = net.config;
    const data = await loadLabelledData({ data: c.data, dataRoot: c.dataRoot, imageSize, channels, seed: c.seed });
    try {
      if (data.names.join('\n') !== net.names.join('\n')) {
        throw new DataError(`${c.data} has classes [${data.names.join(', ')}] but this classifier has [${net.names.join(', ')}]. ` +
          'To train on other classes, probe or fine-tune an embedder (model.linearProbe / model.finetune), or pass supervised: true to start from scratch.');
      }
      if (c.threads > 0) torch.setNumThreads(c.threads);
      torch.manualSeed(c.seed);
      const fraction = this.extras.labelFraction ?? 1;
      const labelled = labelSubset(data.train.labels, data.trainIndices, fraction, c.seed);
      const model = net.copyClassifier();
      const fit = fitClassifier(model, data.train, labelled, {
        ...FIT_DEFAULTS, epochs: c.epochs, batch: c.batch, lr: c.lr, weightDecay: c.weightDecay, seed: c.seed, channelsLast: c.channelsLast,
        ...pickFit(this.extras), mean, std,
      });
      const m = evaluateClassifier(model, data.test, data.testIndices, { mean, std, names: net.names });
      const metrics = { ...m, split: data.split, labels: labelled.length, steps: fit.steps, trainLoss: fit.loss };
      mkdirSync(c.out, { recursive: true });
      const weights = path.join(c.out, 'best.safetensors');
      const provenance = { mode: 'finetune' as const, from: net.weights ?? undefined, labelFraction: fraction, labels: labelled.length, data: c.data, steps: fit.steps };
      for (const f of [weights, path.join(c.out, 'last.safetensors')]) {
        saveClassifier(f, model, { config: net.config, names: net.names, provenance, metrics: { top1: m.top1, top5: m.top5, split: data.split, n: m.n } });
      }
      model.dispose();
      return { net: loadNet(weights), outcome: { weights, metrics } };
    } finally {
      data.dispose();
    }
  }
}
