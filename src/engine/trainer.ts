/**
 * The self-supervised trainer: data → batched multi-view augmentation → method step →
 * optimizer and schedule → EMA hook, with the kNN monitor, metrics, atomic checkpoints and
 * exact resume. `dyad train` and `Model.train` call `train(config)`.
 *
 * Run folder (`out`): config.json, metrics.jsonl (one JSON object per epoch: epoch, loss, lr,
 * img_per_s, knn_top1 when evaluated), results.csv, last.safetensors, best.safetensors.
 * Data: one `DataLoader` over the training set, shuffled by (seed, epoch), last partial batch
 * dropped; batches are `indexSelect`s of the in-memory images, or, for a folder too large to cache
 * (`cache`, see `data.ts`), decoded from the files by the loader's worker while the step runs.
 * Resume: the data order of epoch e depends only on (seed, e), and the checkpoint holds the
 * libtorch RNG state, optimizer, schedule, EMA weights and queue, so a resumed run ends with the
 * same weights as an uninterrupted one.
 */
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import * as torch from '../torch/index.js';
import { writeFileAtomic } from '../torch/io.js';
import { readRunMetrics, writeRunResults } from './run_files.js';
import { DataLoader } from '../data/index.js';
import { createMethod, type Method } from '../methods/index.js';
import { AdamW, LARS, SGD, paramGroupsForWeightDecay, type Optimizer } from '../optim/index.js';
import { LinearWarmupCosine } from '../optim/lr_scheduler.js';
import { SimCLRTransform, MoCoV2Transform, type MultiViewTransform } from '../transforms/index.js';
import { resolveConfig, savedTrainConfig, type TrainConfig } from './config.js';
import { disposeTrainData, loadTrainData, type TrainData } from './data.js';
import { knnMonitor } from './evaluate.js';
import { disposeCheckpoint, loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import { Progress } from './progress.js';
import { optimizerStep } from './step.js';
import { DyadError } from '../errors.js';

export interface EpochMetrics {
  epoch: number;
  loss: number;
  lr: number;
  img_per_s: number;
  knn_top1?: number;
  time_s: number;
}

export interface TrainResult {
  config: TrainConfig;
  metrics: EpochMetrics[];
  best: number | null;
  lastPath: string;
  bestPath: string;
  method: Method;
}

export interface TrainHooks {
  /** Resume from `out/last.safetensors` (true) or from the given checkpoint. */
  resume?: boolean | string;
  silent?: boolean;
  onEpoch?: (m: EpochMetrics) => void;
  /** Pre-loaded data (tests, benchmarks). */
  data?: TrainData;
  /** Called with the freshly built method before training starts (e.g. to start from other weights); not on resume. */
  init?: (method: Method) => void;
}

export class TrainingDivergedError extends DyadError<'TRAINING_DIVERGED'> {
  constructor(message: string) {
    super('TRAINING_DIVERGED', message);
    this.name = 'TrainingDivergedError';
  }
}

/** The method's checkpoint config: what `Model.load` needs to rebuild it. */
export function modelConfig(c: TrainConfig, d: { channels: number; imageSize: number; mean: number[]; std: number[]; names: string[] }): Record<string, unknown> {
  return { ...c, channels: d.channels, imageSize: d.imageSize, mean: d.mean, std: d.std };
}

export function buildMethod(c: TrainConfig): Method {
  return createMethod({
    method: c.method, temperature: c.temperature, memoryBankSize: c.memoryBankSize, emaMomentum: c.emaMomentum, concatViews: c.concatViews, headLayers: c.headLayers, loss: c.loss,
    backbone: { name: c.backbone, inChannels: c.channels, imageSize: c.imageSize, width: c.width, stem: c.stem === 'auto' ? undefined : c.stem,
      featureStages: c.featureStages, featureGrid: c.featureGrid },
  });
}

/** The method's default views for this config (paper recipes, adapted to 1-channel and small images). */
export function buildTransform(c: TrainConfig, d: { mean: number[]; std: number[] }): MultiViewTransform {
  const o = {
    inputSize: c.imageSize, minScale: c.minScale, cjStrength: c.cjStrength, gaussianBlur: c.blur,
    randomGrayScale: c.channels === 3 ? 0.2 : 0, normalize: { mean: d.mean, std: d.std },
  };
  if (c.localViews > 0) {
    return new SimCLRTransform({ ...o, nLocalViews: c.localViews, localCropSize: c.localSize || Math.max(8, Math.round(c.imageSize / 2)), localCropScale: [c.localMinScale, c.localMaxScale] });
  }
  return c.method === 'moco' ? new MoCoV2Transform(o) : new SimCLRTransform(o);
}

function buildOptimizer(c: TrainConfig, method: Method): Optimizer<any> {
  const groups = paramGroupsForWeightDecay(method.trainableParameters(), { weightDecay: c.weightDecay });
  const lr = (c.lr * c.batch) / 256;
  switch (c.optimizer) {
    case 'sgd': return new SGD(groups, { lr, momentum: c.momentum, weightDecay: c.weightDecay });
    case 'lars': return new LARS(groups, { lr, momentum: c.momentum, weightDecay: c.weightDecay });
    case 'adamw': return new AdamW(groups, { lr, weightDecay: c.weightDecay });
  }
}

const CSV_COLUMNS: (keyof EpochMetrics)[] = ['epoch', 'loss', 'lr', 'img_per_s', 'knn_top1', 'time_s'];

const writeResults = (dir: string, rows: EpochMetrics[]): void => writeRunResults(dir, rows, CSV_COLUMNS);
const readMetrics = (dir: string): EpochMetrics[] => readRunMetrics<EpochMetrics>(dir);

export async function train(options: Partial<TrainConfig> = {}, hooks: TrainHooks = {}): Promise<TrainResult> {
  let resumeFrom: ReturnType<typeof loadCheckpoint> | null = null;
  let config: TrainConfig;
  if (hooks.resume) {
    const out = options.out ?? resolveConfig().out;
    const file = typeof hooks.resume === 'string' ? hooks.resume : path.join(out, 'last.safetensors');
    resumeFrom = loadCheckpoint(file);
    const saved = savedTrainConfig(resumeFrom.meta.config);
    const { mean: _m, std: _s, ...savedConfig } = saved;
    config = resolveConfig(savedConfig as Partial<TrainConfig>, { epochs: options.epochs, out: options.out ?? saved.out as string });
  } else {
    config = resolveConfig(options);
  }
  if (config.threads > 0) torch.setNumThreads(config.threads);
  torch.manualSeed(config.seed);
  const progress = new Progress(process.stdout, { silent: hooks.silent });

  const data = hooks.data ?? (await loadTrainData({ data: config.data, dataRoot: config.dataRoot, imageSize: config.imageSize, channels: config.channels,
    seed: config.seed, knnBankSize: config.knnBankSize, cache: config.cache }));
  config.imageSize = data.imageSize;
  config.channels = data.channels;
  const method = buildMethod(config);
  if (!resumeFrom) hooks.init?.(method);
  if (config.channelsLast) method.to({ memoryFormat: 'channelsLast' });
  const transform = buildTransform(config, data);
  const optimizer = buildOptimizer(config, method);
  const n = data.train.length;
  if (n < config.batch) throw new RangeError(`the training set has ${n} images, fewer than one batch of ${config.batch}: lower --batch`);
  const fullSteps = Math.floor(n / config.batch);
  const stepsPerEpoch = config.maxStepsPerEpoch > 0 ? Math.min(fullSteps, config.maxStepsPerEpoch) : fullSteps;
  const totalSteps = stepsPerEpoch * config.epochs;
  const scheduler = new LinearWarmupCosine(optimizer, { warmupSteps: config.warmupEpochs * stepsPerEpoch, totalSteps });
  // drop the last partial batch: batch norm and in-batch negatives need full batches
  const loader = new DataLoader(data.train, { batchSize: config.batch, shuffle: true, seed: config.seed, dropLast: true,
    imageSize: data.imageSize, channels: data.channels, fit: 'cover' });

  const dir = config.out;
  mkdirSync(dir, { recursive: true });
  const lastPath = path.join(dir, 'last.safetensors');
  const bestPath = path.join(dir, 'best.safetensors');
  const mcfg = modelConfig(config, data);
  let startEpoch = 0;
  let best: number | null = null;
  let metrics: EpochMetrics[] = [];
  if (resumeFrom) {
    method.loadStateDict(resumeFrom.model);
    optimizer.loadStateDict({ state: resumeFrom.optimizer, meta: resumeFrom.meta.optimizer! });
    if (resumeFrom.meta.scheduler) scheduler.loadStateDict(resumeFrom.meta.scheduler);
    if (resumeFrom.rng) torch.setRngState(resumeFrom.rng);
    startEpoch = resumeFrom.meta.epoch + 1;
    best = resumeFrom.meta.bestMetric ?? null;
    metrics = readMetrics(dir).filter((m) => m.epoch < startEpoch);
    disposeCheckpoint(resumeFrom);
    progress.log(`resuming ${dir} at epoch ${startEpoch + 1}/${config.epochs}`);
  }
  writeFileAtomic(path.join(dir, 'config.json'), JSON.stringify(mcfg, null, 2) + '\n');

  const useKnn = data.knn !== null && config.knnEvery > 0;
  try {
    for (let epoch = startEpoch; epoch < config.epochs; epoch++) {
      method.train();
      loader.setEpoch(epoch);
      const t0 = performance.now();
      let lossSum = 0;
      let s = 0;
      let images = 0;
      for await (const { images: batch } of loader) {
        if (batch.size(0) < 2) continue; // a streamed batch whose files were nearly all skipped as unreadable: batch norm needs 2
        const step = epoch * stepsPerEpoch + s;
        const ctx = { step, totalSteps, epoch };
        const loss = torch.scope(() => {
          let views = transform.forward(batch);
          if (config.channelsLast) views = views.map((v) => v.contiguous('channelsLast'));
          const l = method.trainingStep(views, ctx);
          return optimizerStep(l, optimizer);
        });
        if (!Number.isFinite(loss)) {
          throw new TrainingDivergedError(`the loss became ${loss} at epoch ${epoch + 1}, step ${s + 1}: training stopped. ` +
            `The last good checkpoint is kept in ${existsSync(lastPath) ? lastPath : '(none yet)'}. Lower --lr, raise --temperature or add --warmup-epochs.`);
        }
        method.afterStep(ctx);
        scheduler.step();
        lossSum += loss;
        s++;
        images += batch.size(0);
        const elapsed = (performance.now() - t0) / 1000;
        progress.update({ epoch, epochs: config.epochs, step: s, steps: stepsPerEpoch, loss, lr: scheduler.getLastLr()[0]!, imgPerS: images / elapsed },
          (elapsed / s) * (totalSteps - step - 1));
        if (s === stepsPerEpoch) break;
      }
      const time = (performance.now() - t0) / 1000;
      const row: EpochMetrics = { epoch, loss: lossSum / s, lr: optimizer.paramGroups[0]!.lr, img_per_s: images / time, time_s: time };
      const last = epoch === config.epochs - 1;
      if (useKnn && ((epoch + 1) % config.knnEvery === 0 || last)) {
        method.eval();
        row.knn_top1 = knnMonitor((x) => method.embed(x), data.knn!, { mean: data.mean, std: data.std, k: config.knnK, temperature: config.knnTemperature });
        method.train();
      }
      metrics.push(row);
      const score = row.knn_top1 ?? (useKnn ? null : -row.loss);
      const improved = score !== null && (best === null || score > best);
      if (improved) best = score;
      const meta = { task: 'embedder' as const, config: mcfg, epoch, step: (epoch + 1) * stepsPerEpoch, names: data.names, bestMetric: best, metrics: { ...row } };
      saveCheckpoint(lastPath, { model: method, optimizer, scheduler, meta });
      if (improved) saveCheckpoint(bestPath, { model: method, optimizer, scheduler, meta });
      writeResults(dir, metrics);
      progress.log(`epoch ${epoch + 1}/${config.epochs}  loss ${row.loss.toFixed(4)}  ${row.img_per_s.toFixed(0)} img/s` +
        (row.knn_top1 !== undefined ? `  knn_top1 ${(row.knn_top1 * 100).toFixed(2)}%` : ''));
      hooks.onEpoch?.(row);
    }
  } finally {
    loader.close();
    if (!hooks.data) disposeTrainData(data);
  }
  return { config, metrics, best, lastPath, bestPath, method };
}


/** A trained method rebuilt from a checkpoint (`dyad train`'s last/best.safetensors), in eval mode. */
export function loadMethod(file: string): { method: Method; config: TrainConfig & { mean: number[]; std: number[] }; names: string[]; meta: ReturnType<typeof loadCheckpoint>['meta'] } {
  const ck = loadCheckpoint(file);
  try {
    if (ck.meta.task !== 'embedder') throw new Error(`${file} holds a ${ck.meta.task}, not a self-supervised embedder`);
    const saved = savedTrainConfig(ck.meta.config) as Partial<TrainConfig> & { mean: number[]; std: number[] };
    const { mean, std, ...rest } = saved;
    const config = { ...resolveConfig(rest as Partial<TrainConfig>), mean, std };
    const method = buildMethod(config);
    try {
      method.loadStateDict(ck.model);
    } catch (e) {
      throw new Error(`${file}: the weights do not match the model described by its config (${(e as Error).message})`);
    }
    method.eval();
    return { method, config, names: ck.meta.names ?? [], meta: ck.meta };
  } finally {
    disposeCheckpoint(ck);
  }
}
