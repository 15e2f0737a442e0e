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
import { existsSync } from 'node:fs';
import * as torch from '../torch/index.js';
import { train as trainSelfSupervised, type EpochMetrics } from '../engine/trainer.js';
import { resolveConfig, type TrainConfig } from '../engine/config.js';
import { DataError } from '../data/errors.js';
import { loadLabelledData, type ClassifyMetrics } from '../engine/classify.js';
import { FIT_DEFAULTS, pickFit, trainClassifier, trainSupervised } from '../engine/supervised.js';
import type { Method } from '../methods/index.js';
import { loadNet, type Net } from './net.js';
import type { TrainExtras } from './args.js';

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
      const r = await trainClassifier(net.copyClassifier(), data, {
        labelFraction: this.extras.labelFraction ?? 1, seed: c.seed,
        fit: {
          ...FIT_DEFAULTS, epochs: c.epochs, batch: c.batch, lr: c.lr, weightDecay: c.weightDecay, seed: c.seed, channelsLast: c.channelsLast,
          ...pickFit(this.extras), mean, std,
        },
        save: { out: c.out, config: net.config, provenance: { mode: 'finetune', from: net.weights ?? undefined, data: c.data } },
      });
      r.model.dispose();
      const weights = r.weights!;
      return { net: loadNet(weights), outcome: { weights, metrics: r.metrics } };
    } finally {
      data.dispose();
    }
  }
}
