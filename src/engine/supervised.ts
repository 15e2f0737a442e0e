/**
 * Supervised training of a `Classifier` with cross-entropy: the loop fine-tuning uses, and the
 * supervised baseline (`Model.train({ supervised: true })`: the same network from random
 * initialisation, for the label-efficiency comparison).
 *
 * Recipe: SGD with Nesterov momentum 0.9, lr × batch/256, a short linear warmup (5% of the
 * steps) then cosine decay to 0, weight decay on weights only (not biases and norms). Per-batch
 * augmentation: random resized crop (scale [minScale, 1]) with a horizontal flip, then the
 * checkpoint's normalisation. The backbone's parameter groups get `lr × backboneLrScale` (a
 * lower lr keeps pretrained features from being wrecked by a randomly started head).
 *
 * Length: `epochs` passes over the labelled images, but at least `minSteps` steps (1% of the
 * labels is only a few batches an epoch) and at most `maxSteps` when set. Batches are drawn from
 * seeded permutations (epoch e's order depends only on seed and e).
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import * as torch from '../torch/index.js';
import { Rng, type InMemoryDataset } from '../data/index.js';
import { SGD, paramGroupsForWeightDecay } from '../optim/index.js';
import { LinearWarmupCosine } from '../optim/lr_scheduler.js';
import { Compose, Normalize, RandomResizedCrop, ToFloat } from '../transforms/index.js';
import { writeFileAtomic } from '../torch/io.js';
import { Classifier } from '../models/classifier.js';
import { resolveConfig, type TrainConfig } from './config.js';
import { TrainingDivergedError } from './trainer.js';
import { Progress } from './progress.js';
import { FMNIST_STATS, IMAGENET_STATS, MNIST_STATS } from '../transforms/index.js';
import { optimizerStep } from './step.js';
import {
  buildBackbone, evaluateClassifier, labelSubset, loadLabelledData, saveClassifier, type ClassifyMetrics, type LabelledData, type ModelInputConfig,
} from './classify.js';

export interface FitOptions {
  epochs: number;
  batch: number;
  /** lr at batch 256 (scaled by batch/256). */
  lr: number;
  momentum: number;
  weightDecay: number;
  /** Multiplier of the backbone's lr (1 from scratch, lower when fine-tuning). */
  backboneLrScale: number;
  minSteps: number;
  /** 0 = no cap. */
  maxSteps: number;
  /** Smallest crop area of the augmentation (1 with hflip 0 turns augmentation off). */
  minScale: number;
  hflip: number;
  labelSmoothing: number;
  seed: number;
  mean: number[];
  std: number[];
  channelsLast: boolean;
  silent?: boolean;
  /** Called every `logEvery` steps and at the end with the mean loss since the last call. */
  onLog?: (s: { step: number; steps: number; loss: number; lr: number; imgPerS: number }) => void;
}

export const FIT_DEFAULTS: Omit<FitOptions, 'mean' | 'std'> = {
  epochs: 30, batch: 256, lr: 0.1, momentum: 0.9, weightDecay: 5e-4, backboneLrScale: 1, minSteps: 200, maxSteps: 0,
  minScale: 0.5, hflip: 0.5, labelSmoothing: 0, seed: 0, channelsLast: true,
};

/** Number of steps and the batch size `fitClassifier` uses for `n` labelled images. */
export function fitSchedule(n: number, o: Pick<FitOptions, 'epochs' | 'batch' | 'minSteps' | 'maxSteps'>): { steps: number; batch: number } {
  const batch = Math.max(2, Math.min(o.batch, n));
  let steps = Math.max(o.minSteps, Math.ceil((o.epochs * n) / batch));
  if (o.maxSteps > 0) steps = Math.min(steps, o.maxSteps);
  return { steps, batch };
}

/** Trains `model` on `ds[indices]` (labels: `ds.labels`, which must be the model's classes). Returns the mean loss of the last 10% of steps. */
export function fitClassifier(model: Classifier, ds: InMemoryDataset, indices: number[], opts: FitOptions): { loss: number; steps: number } {
  const n = indices.length;
  if (n < 2) throw new RangeError(`supervised training needs at least 2 labelled images, got ${n}`);
  const { steps, batch } = fitSchedule(n, opts);
  const size = [ds.height, ds.width] as [number, number];
  const augment = new Compose([
    new ToFloat(),
    ...(opts.minScale < 1 || opts.hflip > 0 ? [new RandomResizedCrop({ size, scale: [opts.minScale, 1], hflip: opts.hflip })] : []),
    new Normalize({ mean: opts.mean, std: opts.std }),
  ]);
  if (opts.channelsLast) model.to({ memoryFormat: 'channelsLast' });
  const lr = (opts.lr * batch) / 256;
  const groups = [
    ...paramGroupsForWeightDecay(model.backbone.namedParameters(), { weightDecay: opts.weightDecay }).map((g) => ({ ...g, lrScale: opts.backboneLrScale })),
    ...paramGroupsForWeightDecay(model.head.namedParameters({ prefix: 'head' }), { weightDecay: opts.weightDecay }),
  ];
  const optimizer = new SGD(groups, { lr, momentum: opts.momentum, weightDecay: opts.weightDecay, nesterov: true });
  const scheduler = new LinearWarmupCosine(optimizer, { warmupSteps: Math.round(steps * 0.05), totalSteps: steps });
  const progress = new Progress(process.stdout, { silent: opts.silent });
  const smoothing = opts.labelSmoothing;
  const passes = Math.max(1, Math.ceil((steps * batch) / n));

  // the index stream: seeded permutations of the labelled images, one after another
  let perm = new Int32Array(0);
  let pos = 0;
  let epoch = 0;
  const next = (): number[] => {
    const out: number[] = [];
    while (out.length < batch) {
      if (pos >= perm.length) {
        perm = Int32Array.from(new Rng(opts.seed * 1_000_003 + epoch++).permutation(n));
        pos = 0;
      }
      out.push(indices[perm[pos++]!]!);
    }
    return out;
  };

  model.train();
  const tail: number[] = [];
  const logEvery = Math.max(1, Math.round(steps / 20));
  let acc = 0;
  let accN = 0;
  let t0 = performance.now();
  for (let s = 0; s < steps; s++) {
    const idx = next();
    const loss = torch.scope(() => {
      const b = ds.tensorBatch(idx);
      let x = augment.forward(b.images);
      if (opts.channelsLast) x = x.contiguous('channelsLast');
      const l = torch.functional.crossEntropy(model.forward(x), b.labels, { labelSmoothing: smoothing });
      return optimizerStep(l, optimizer);
    });
    if (!Number.isFinite(loss)) throw new TrainingDivergedError(`the loss became ${loss} at step ${s + 1}/${steps}: training stopped. Lower the lr.`);
    scheduler.step();
    if (s >= steps - Math.max(1, Math.round(steps / 10))) tail.push(loss);
    acc += loss;
    accN++;
    if ((s + 1) % logEvery === 0 || s === steps - 1) {
      const el = (performance.now() - t0) / 1000;
      const st = { step: s + 1, steps, loss: acc / accN, lr: optimizer.paramGroups.at(-1)!.lr, imgPerS: (accN * batch) / el };
      progress.update({ epoch: Math.min(Math.floor((s * batch) / n), passes - 1), epochs: passes, ...st }, (el / accN) * (steps - s - 1));
      opts.onLog?.(st);
      acc = 0;
      accN = 0;
      t0 = performance.now();
    }
  }
  model.eval();
  return { loss: tail.reduce((a, b) => a + b, 0) / tail.length, steps };
}

export interface SupervisedOptions extends Partial<Omit<FitOptions, 'mean' | 'std' | 'onLog'>> {
  /** Fraction of the training labels to use (class-balanced, seeded); default 1. */
  labelFraction?: number;
}

export interface ClassifierRunResult {
  model: Classifier;
  names: string[];
  /** Metrics on the evaluation split (test / val / hold-out). */
  metrics: ClassifyMetrics & { split: LabelledData['split']; labels: number; steps: number; trainLoss: number };
  /** The checkpoint written, when `out` was given. */
  weights?: string;
}

/**
 * The supervised baseline: the configured backbone from random initialisation plus a linear
 * head, trained on (a fraction of) the labels of `config.data`, evaluated on its test/val
 * split. Writes `<out>/best.safetensors` and `last.safetensors` (the final weights, a
 * classifier checkpoint), `metrics.json` and `config.json` when `config.out` is set.
 */
export async function trainSupervised(config: Partial<TrainConfig>, o: SupervisedOptions & { data?: LabelledData; onLog?: FitOptions['onLog'] } = {}): Promise<ClassifierRunResult> {
  const c = resolveConfig(config);
  if (c.threads > 0) torch.setNumThreads(c.threads);
  torch.manualSeed(c.seed);
  const isBuiltin = ['fashion-mnist', 'fashionmnist', 'mnist'].includes(c.data.toLowerCase());
  const imageSize = c.imageSize || (isBuiltin ? 28 : 96);
  const stats = isBuiltin ? (c.data.toLowerCase() === 'mnist' ? MNIST_STATS : FMNIST_STATS)
    : c.channels === 3 ? IMAGENET_STATS : { mean: [0.5], std: [0.25] };
  const rep = (v: number[]): number[] => (c.channels === 3 && v.length === 1 ? [v[0]!, v[0]!, v[0]!] : v);
  const mc: ModelInputConfig & TrainConfig = { ...c, imageSize, mean: rep(stats.mean), std: rep(stats.std) };
  const data = o.data ?? await loadLabelledData({ data: c.data, dataRoot: c.dataRoot, imageSize, channels: c.channels, seed: c.seed });
  try {
    const fraction = o.labelFraction ?? 1;
    const labelled = labelSubset(data.train.labels, data.trainIndices, fraction, c.seed);
    const model = new Classifier(buildBackbone(mc), data.names.length);
    const fit = fitClassifier(model, data.train, labelled, {
      ...FIT_DEFAULTS, epochs: c.epochs, batch: c.batch, seed: c.seed, channelsLast: c.channelsLast,
      ...pickFit({ lr: config.lr, weightDecay: config.weightDecay, momentum: config.momentum, minScale: config.minScale }), ...pickFit(o),
      mean: mc.mean, std: mc.std, onLog: o.onLog,
    });
    const m = evaluateClassifier(model, data.test, data.testIndices, { mean: mc.mean, std: mc.std, names: data.names });
    const metrics = { ...m, split: data.split, labels: labelled.length, steps: fit.steps, trainLoss: fit.loss };
    let weights: string | undefined;
    if (config.out !== undefined) {
      mkdirSync(c.out, { recursive: true });
      const { mean, std, ...rest } = mc;
      const ckConfig = { ...rest, mean, std };
      const provenance = { mode: 'supervised' as const, labelFraction: fraction, labels: labelled.length, data: c.data, steps: fit.steps };
      const summary = { top1: m.top1, top5: m.top5, split: data.split, n: m.n };
      for (const f of ['last.safetensors', 'best.safetensors']) saveClassifier(path.join(c.out, f), model, { config: ckConfig, names: data.names, provenance, metrics: summary });
      writeFileAtomic(path.join(c.out, 'config.json'), JSON.stringify({ ...ckConfig, supervised: true, labelFraction: fraction }, null, 2) + '\n');
      writeFileAtomic(path.join(c.out, 'metrics.json'), JSON.stringify(metrics, null, 2) + '\n');
      weights = path.join(c.out, 'best.safetensors');
    }
    return { model, names: data.names, metrics, weights };
  } finally {
    if (!o.data) data.dispose();
  }
}

/** The fit options set in `o` (undefined ones left out, so they do not override defaults in a spread). */
export function pickFit(o: object): Partial<FitOptions> {
  const keys = new Set([...Object.keys(FIT_DEFAULTS), 'silent', 'onLog']);
  return Object.fromEntries(Object.entries(o).filter(([k, v]) => keys.has(k) && v !== undefined)) as Partial<FitOptions>;
}
