/**
 * Supervised training of a `Classifier` with cross-entropy (the `Supervised` method on the
 * engine's loop): what fine-tuning uses, and the supervised baseline (`Model.train({ supervised: true })`: the same network from random
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
import { Supervised, type LabelledBatch } from '../methods/supervised.js';
import { Progress } from './progress.js';
import { defaultStats, isBuiltinData } from './data.js';
import { fit, type StepEnd } from './loop.js';
import { pickDefined } from './options.js';
import {
  buildBackbone, evaluateClassifier, labelSubset, loadLabelledData, saveClassifier, type ClassifierProvenance, type ClassifyMetrics, type LabelledData, type ModelInputConfig,
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

/**
 * Trains `model` on `ds[indices]` (labels: `ds.labels`, which must be the model's classes) with
 * the engine's loop (a `Supervised` method; "epochs" of the loop are passes over the labelled
 * images). Returns the mean loss of the last 10% of steps.
 */
export async function fitClassifier(model: Classifier, ds: InMemoryDataset, indices: number[], opts: FitOptions): Promise<{ loss: number; steps: number }> {
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
  const method = new Supervised(model, { labelSmoothing: opts.labelSmoothing });
  const stepsPerEpoch = Math.max(1, Math.ceil(n / batch));

  // the index stream: seeded permutations of the labelled images, one after another
  let perm = new Int32Array(0);
  let pos = 0;
  let pass = 0;
  const next = (): number[] => {
    const out: number[] = [];
    while (out.length < batch) {
      if (pos >= perm.length) {
        perm = Int32Array.from(new Rng(opts.seed * 1_000_003 + pass++).permutation(n));
        pos = 0;
      }
      out.push(indices[perm[pos++]!]!);
    }
    return out;
  };
  const labelledBatch = (idx: number[]): LabelledBatch => {
    const b = ds.tensorBatch(idx);
    const x = augment.forward(b.images);
    return { inputs: opts.channelsLast ? x.contiguous('channelsLast') : x, labels: b.labels };
  };

  // the mean loss of the last 10% of steps, and `onLog` every 5% of them with the mean since the last call
  const tail: number[] = [];
  const tailFrom = steps - Math.max(1, Math.round(steps / 10));
  const logEvery = Math.max(1, Math.round(steps / 20));
  let acc = 0;
  let accN = 0;
  let t0 = performance.now();
  const onStepEnd = (s: StepEnd): void => {
    if (s.step >= tailFrom) tail.push(s.loss);
    acc += s.loss;
    accN++;
    if ((s.step + 1) % logEvery === 0 || s.step === steps - 1) {
      const el = (performance.now() - t0) / 1000;
      opts.onLog?.({ step: s.step + 1, steps, loss: acc / accN, lr: s.lr, imgPerS: (accN * batch) / el });
      acc = 0;
      accN = 0;
      t0 = performance.now();
    }
  };
  await fit({
    method, optimizer, scheduler, epochs: Math.ceil(steps / stepsPerEpoch), stepsPerEpoch, totalSteps: steps,
    *batches() {
      for (;;) {
        const idx = next();
        yield { size: idx.length, batch: () => labelledBatch(idx) };
      }
    },
    progress: new Progress(process.stdout, { silent: opts.silent }), epochLog: false,
    callbacks: [{ onStepEnd }],
  });
  model.eval();
  return { loss: tail.reduce((a, b) => a + b, 0) / tail.length, steps };
}

/**
 * Trains `model` (fit), evaluates it on the data's evaluation split, and, when `save` is given,
 * writes it as a classifier checkpoint to `<out>/best.safetensors` and `last.safetensors`: the
 * sequence of the supervised baseline and of `Model.train` on a classifier.
 */
export async function trainClassifier(model: Classifier, data: LabelledData, o: {
  fit: FitOptions; labelFraction: number; seed: number;
  save?: { out: string; config: ModelInputConfig & Record<string, unknown>; provenance: { mode: ClassifierProvenance['mode']; from?: string; data: string } };
}): Promise<ClassifierRunResult> {
  const labelled = labelSubset(data.train.labels, data.trainIndices, o.labelFraction, o.seed);
  const fitted = await fitClassifier(model, data.train, labelled, o.fit);
  const m = evaluateClassifier(model, data.test, data.testIndices, { mean: o.fit.mean, std: o.fit.std, names: data.names });
  const metrics = { ...m, split: data.split, labels: labelled.length, steps: fitted.steps, trainLoss: fitted.loss };
  let weights: string | undefined;
  if (o.save) {
    mkdirSync(o.save.out, { recursive: true });
    const provenance: ClassifierProvenance = { ...o.save.provenance, labelFraction: o.labelFraction, labels: labelled.length, steps: fitted.steps };
    const summary = { top1: m.top1, top5: m.top5, split: data.split, n: m.n };
    for (const f of ['last.safetensors', 'best.safetensors']) saveClassifier(path.join(o.save.out, f), model, { config: o.save.config, names: data.names, provenance, metrics: summary });
    weights = path.join(o.save.out, 'best.safetensors');
  }
  return { model, names: data.names, metrics, weights };
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
  const imageSize = c.imageSize || (isBuiltinData(c.data) ? 28 : 96);
  const mc: ModelInputConfig & TrainConfig = { ...c, imageSize, ...defaultStats(c.data, c.channels) };
  const data = o.data ?? await loadLabelledData({ data: c.data, dataRoot: c.dataRoot, imageSize, channels: c.channels, seed: c.seed });
  try {
    const fraction = o.labelFraction ?? 1;
    const model = new Classifier(buildBackbone(mc), data.names.length);
    const { mean, std, ...rest } = mc;
    const ckConfig = { ...rest, mean, std };
    const r = await trainClassifier(model, data, {
      labelFraction: fraction, seed: c.seed,
      fit: {
        ...FIT_DEFAULTS, epochs: c.epochs, batch: c.batch, seed: c.seed, channelsLast: c.channelsLast,
        ...pickFit({ lr: config.lr, weightDecay: config.weightDecay, momentum: config.momentum, minScale: config.minScale }), ...pickFit(o),
        mean: mc.mean, std: mc.std, onLog: o.onLog,
      },
      save: config.out === undefined ? undefined : { out: c.out, config: ckConfig, provenance: { mode: 'supervised', data: c.data } },
    });
    if (config.out !== undefined) {
      writeFileAtomic(path.join(c.out, 'config.json'), JSON.stringify({ ...ckConfig, supervised: true, labelFraction: fraction }, null, 2) + '\n');
      writeFileAtomic(path.join(c.out, 'metrics.json'), JSON.stringify(r.metrics, null, 2) + '\n');
    }
    return r;
  } finally {
    if (!o.data) data.dispose();
  }
}

/** The fit options set in `o` (undefined ones left out, so they do not override defaults in a spread). */
export function pickFit(o: object): Partial<FitOptions> {
  return pickDefined<FitOptions>(o, [...Object.keys(FIT_DEFAULTS), 'silent', 'onLog']);
}
