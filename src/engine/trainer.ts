/**
 * The self-supervised trainer: setup code around the engine's loop (`loop.ts`). It resolves
 * the config, loads the data, builds the method (SimCLR, MoCo), its views, the optimizer and
 * the warmup + cosine schedule, and hands them to `fit` with the kNN monitor as the epoch-end
 * evaluation. `dyad train` and `Model.train` call `train(config)`.
 *
 * Run folder (`out`): config.json, metrics.jsonl (one JSON object per epoch: epoch, loss, lr,
 * img_per_s, time_s, and knn_top1 / knn_bank when the monitor ran), results.csv,
 * last.safetensors and best.safetensors (best kNN top-1; without a monitor, lowest loss).
 * Data: one `DataLoader` over the training set, shuffled by (seed, epoch), last partial batch
 * dropped; batches are `indexSelect`s of the in-memory images, or, for a folder too large to cache
 * (`cache`, see `data.ts`), decoded from the files by the loader's worker while the step runs.
 * Resume: the data order of epoch e depends only on (seed, e), and the checkpoint holds the
 * libtorch RNG state, optimizer, schedule, EMA weights and queue, so a resumed run ends with the
 * same weights as an uninterrupted one.
 * Distributed (`hooks.distributed`, see `loop.ts`): `batch` is per process, the lr scales with
 * the global batch (batch × worldSize), each rank draws its `DistributedSampler` shard of the
 * same (seed, epoch) order, and every rank augments the global batch of the step (gathered in
 * the sampler's order) from rank 0's generator state and keeps its own rows, so that W processes ×
 * batch B take exactly the views, and end with the weights, of one process × batch W·B.
 * The kNN monitor's bank is every training image by default (`knnBankSize` 0), so the monitor
 * that picks `best.safetensors` reports what `dyad knn` reports on the same checkpoint.
 */
import path from 'node:path';
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { DataLoader, InMemoryDataset, PKBatchSampler } from '../data/index.js';
import { createMethod, Triplet, type LabelledViews, type SelfSupervisedMethod } from '../methods/index.js';
import { AdamW, LARS, SGD, paramGroupsForWeightDecay, type Optimizer } from '../optim/index.js';
import { LinearWarmupCosine } from '../optim/lr_scheduler.js';
import { SimCLRTransform, MoCoV2Transform, BYOLTransform, type MultiViewTransform } from '../transforms/index.js';
import { backboneSpec, checkDeviceName, resolveConfig, savedTrainConfig, type TrainConfig } from './config.js';
import { disposeTrainData, loadTrainData, type TrainData } from './data.js';
import { knnMonitor } from './evaluate.js';
import { disposeCheckpoint, loadCheckpoint, type Checkpoint } from './checkpoint.js';
import { Progress } from './progress.js';
import { fit, type EpochRow, type LoopCallbacks } from './loop.js';
import { activeContext, type DistributedContext } from '../distributed/context.js';
import { DistributedSampler } from '../distributed/sampler.js';
import { DyadError } from '../errors.js';
import { GradScaler } from '../optim/grad_scaler.js';

export interface EpochMetrics extends EpochRow {
  /** kNN top-1 of the monitor (0..1), when it ran this epoch, and the number of images in its bank. */
  knn_top1?: number;
  knn_bank?: number;
  /** Triplet: the fraction of active (loss > 0) triplets in the epoch's last batch. */
  active_fraction?: number;
}

export interface TrainResult {
  config: TrainConfig;
  metrics: EpochMetrics[];
  best: number | null;
  lastPath: string;
  bestPath: string;
  method: SelfSupervisedMethod;
}

export interface TrainHooks extends LoopCallbacks<EpochMetrics> {
  /** Resume from `out/last.safetensors` (true) or from the given checkpoint. */
  resume?: boolean | string;
  silent?: boolean;
  /** Called after each epoch with its row (the same as `onEpochEnd`). */
  onEpoch?: (m: EpochMetrics) => void;
  /** Pre-loaded data (tests, benchmarks). */
  data?: TrainData;
  /** Called with the freshly built method before training starts (e.g. to start from other weights); not on resume. */
  init?: (method: SelfSupervisedMethod) => void;
  /** This process's part of a distributed run (`dyad train` builds it from RANK/WORLD_SIZE); see the module comment. */
  distributed?: DistributedContext | null;
}

/** The method's checkpoint config: what `Model.load` needs to rebuild it. */
export function modelConfig(c: TrainConfig, d: { channels: number; imageSize: number; mean: number[]; std: number[]; names: string[] }): Record<string, unknown> {
  return { ...c, channels: d.channels, imageSize: d.imageSize, mean: d.mean, std: d.std };
}

export function buildMethod(c: TrainConfig): SelfSupervisedMethod {
  return createMethod({
    method: c.method, temperature: c.temperature, memoryBankSize: c.memoryBankSize, emaMomentum: c.emaMomentum, concatViews: c.concatViews, headLayers: c.headLayers, loss: c.loss,
    localViews: c.localViews, teacherTemperature: c.teacherTemperature, warmupTeacherEpochs: c.warmupTeacherEpochs, margin: c.margin, mining: c.mining,
    backbone: backboneSpec(c), gatherDistributed: true, // gathers only while a process group of > 1 rank runs
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
  if (c.method === 'triplet') return new SimCLRTransform({ ...o, views: 1 });
  // the autoencoder reconstructs what it sees: crops and flips, no colour changes
  if (c.method === 'autoencoder') return new SimCLRTransform({ ...o, views: 1, cjProb: 0, randomGrayScale: 0 });
  // BYOL's asymmetric views: blur p 1.0 / 0.1, solarization p 0 / 0.2 (the paper's, in place of --blur)
  if (c.method === 'byol') return new BYOLTransform({ ...o, gaussianBlur: undefined });
  return c.method === 'moco' ? new MoCoV2Transform(o) : new SimCLRTransform(o);
}

function buildOptimizer(c: TrainConfig, method: SelfSupervisedMethod, worldSize = 1): Optimizer<any> {
  const groups = paramGroupsForWeightDecay(method.trainableParameters(), { weightDecay: c.weightDecay });
  const lr = (c.lr * c.batch * worldSize) / 256;
  switch (c.optimizer) {
    case 'sgd': return new SGD(groups, { lr, momentum: c.momentum, weightDecay: c.weightDecay });
    case 'lars': return new LARS(groups, { lr, momentum: c.momentum, weightDecay: c.weightDecay });
    case 'adamw': return new AdamW(groups, { lr, weightDecay: c.weightDecay });
  }
}

/** Fails at once when `device` names CUDA and this libtorch has none (before any data is loaded). */
export function checkDevice(device: string): void {
  checkDeviceName(device);
  if (device !== 'cpu' && !torch.cudaIsAvailable()) {
    throw new DyadError('DIST_UNAVAILABLE', `--device ${device} (TrainConfig.device): this libtorch has no CUDA or sees no GPU (cuda.isAvailable() is false). ` +
      'Build the addon against a CUDA libtorch: install a CUDA torch (pip install torch), then LIBTORCH_USE_PYTORCH=1 npm run build:native; or train with --device cpu');
  }
}

/**
 * Mixed precision for the loop (`amp`): the method's `trainingStep` runs under `torch.autocast`,
 * and with 'fp16' through `withGradScaler`. Returns the undo.
 */
function useAmp(c: TrainConfig, method: SelfSupervisedMethod, optimizer: Optimizer<any>): { undo: () => void; scaler: GradScaler | null } {
  if (c.amp === 'none') return { undo: () => {}, scaler: null };
  const trainingStep = method.trainingStep.bind(method);
  const opts = { deviceType: c.device === 'cpu' ? 'cpu' as const : 'cuda' as const, dtype: c.amp === 'bf16' ? 'bfloat16' as const : 'float16' as const };
  method.trainingStep = (b, ctx) => torch.autocast(opts, () => trainingStep(b, ctx));
  const scaler = c.amp === 'fp16' ? new GradScaler() : null;
  const undoScaler = scaler ? withGradScaler(method, optimizer, scaler) : () => {};
  return {
    scaler,
    undo: () => {
      undoScaler();
      delete (method as { trainingStep?: unknown }).trainingStep;
    },
  };
}

/**
 * Loss scaling without touching the loop: `trainingStep`'s loss gets gradient `scale` with its
 * value unchanged (loss + s·(loss − loss.detach())); `beforeOptimizerStep` (gradient clipping)
 * sees unscaled gradients (PyTorch's `unscale_` before clipping), and the optimizer's `step`
 * skips on inf/NaN and updates the scaler. Returns the undo (the methods' own again).
 */
export function withGradScaler(method: { trainingStep(b: any, ctx: any): Tensor; beforeOptimizerStep?(ctx: any): void }, optimizer: Optimizer<any>, scaler: GradScaler): () => void {
  const own = { trainingStep: Object.hasOwn(method, 'trainingStep'), beforeOptimizerStep: Object.hasOwn(method, 'beforeOptimizerStep') };
  const trainingStep = method.trainingStep.bind(method);
  const beforeOptimizerStep = method.beforeOptimizerStep?.bind(method);
  const target = { paramGroups: optimizer.paramGroups, step: optimizer.step.bind(optimizer) };
  method.trainingStep = (b, ctx) => {
    const loss = trainingStep(b, ctx);
    // (loss − loss.detach()) is exactly 0 with gradient 1: × scale stays 0 (finite however large the loss)
    return loss.detach().add(scaler.scale(loss.sub(loss.detach())));
  };
  method.beforeOptimizerStep = (ctx) => {
    scaler.unscale_(target);
    beforeOptimizerStep?.(ctx);
  };
  optimizer.step = () => { scaler.step(target); scaler.update(); };
  return () => {
    for (const k of ['trainingStep', 'beforeOptimizerStep'] as const) {
      if (!own[k]) delete (method as Record<string, unknown>)[k];
    }
    if (own.trainingStep) method.trainingStep = trainingStep;
    if (own.beforeOptimizerStep) method.beforeOptimizerStep = beforeOptimizerStep;
    delete (optimizer as { step?: unknown }).step;
  };
}

const CSV_COLUMNS: (keyof EpochMetrics)[] = ['epoch', 'loss', 'lr', 'img_per_s', 'knn_top1', 'knn_bank', 'time_s'];

/** The steps of an epoch (whole batches, capped by `maxStepsPerEpoch`) and of the run. */
export function runSteps(n: number, c: { batch: number; epochs: number; maxStepsPerEpoch: number }, what = 'images'): { stepsPerEpoch: number; totalSteps: number } {
  if (n < c.batch) throw new RangeError(`the training set has ${n} ${what}, fewer than one batch of ${c.batch}: lower --batch`);
  const fullSteps = Math.floor(n / c.batch);
  const stepsPerEpoch = c.maxStepsPerEpoch > 0 ? Math.min(fullSteps, c.maxStepsPerEpoch) : fullSteps;
  return { stepsPerEpoch, totalSteps: stepsPerEpoch * c.epochs };
}

/** The P×K sampler of a triplet run (P = batch / samplesPerClass); its images must be in memory. */
function pkSampler(train: TrainData['train'], c: TrainConfig): PKBatchSampler {
  if (!(train instanceof InMemoryDataset)) throw new RangeError(`--method ${c.method} draws P×K batches from images held in memory: pass --cache true (or use a smaller folder)`);
  return new PKBatchSampler(train.labels, { p: c.batch / c.samplesPerClass, k: c.samplesPerClass, seed: c.seed });
}

/** The config to continue: the checkpoint's, with the caller's epochs and out (and device and amp, when given: another machine may resume). */
function resumeConfig(checkpoint: Checkpoint, options: Partial<TrainConfig>): TrainConfig {
  const saved = savedTrainConfig(checkpoint.meta.config);
  const { mean: _m, std: _s, ...savedConfig } = saved;
  return resolveConfig(savedConfig as Partial<TrainConfig>, { epochs: options.epochs, out: options.out ?? saved.out as string, device: options.device, amp: options.amp });
}

export async function train(options: Partial<TrainConfig> = {}, hooks: TrainHooks = {}): Promise<TrainResult> {
  const resumeFrom = hooks.resume
    ? loadCheckpoint(typeof hooks.resume === 'string' ? hooks.resume : path.join(options.out ?? resolveConfig().out, 'last.safetensors'))
    : null;
  let config: TrainConfig;
  try {
    config = resumeFrom ? resumeConfig(resumeFrom, options) : resolveConfig(options);
  } catch (e) {
    if (resumeFrom) disposeCheckpoint(resumeFrom);
    throw e;
  }
  checkDevice(config.device);
  if (config.threads > 0) torch.setNumThreads(config.threads);
  torch.manualSeed(config.seed);

  const data = hooks.data ?? (await loadTrainData({ data: config.data, dataRoot: config.dataRoot, imageSize: config.imageSize, channels: config.channels,
    seed: config.seed, knnBankSize: config.knnBankSize, cache: config.cache }));
  config.imageSize = data.imageSize;
  config.channels = data.channels;
  const method = buildMethod(config);
  const dist = activeContext(hooks.distributed);
  // 'cuda' in a distributed run: one GPU per process of a node, cuda:LOCAL_RANK (torchrun's convention)
  const device = config.device === 'cuda' && dist ? `cuda:${dist.localRank}` : config.device;
  if (device !== 'cpu') method.to(device);
  dist?.prepare?.(method);
  if (!resumeFrom) hooks.init?.(method);
  if (config.channelsLast) method.to({ memoryFormat: 'channelsLast' });
  const transform = buildTransform(config, data);
  const optimizer = buildOptimizer(config, method, dist?.worldSize);
  const pk = method.batchSampling === 'pk' ? pkSampler(data.train, config) : null;
  if (pk && dist) throw new RangeError(`--method ${config.method}: P×K batches are not sharded over processes yet; train it in one process`);
  const sampler = dist ? new DistributedSampler(data.train, { numReplicas: dist.worldSize, rank: dist.rank, seed: config.seed, dropLast: true }) : undefined;
  const { stepsPerEpoch, totalSteps } = runSteps(pk ? pk.numSamples : sampler?.length ?? data.train.length, config);
  const scheduler = new LinearWarmupCosine(optimizer, { warmupSteps: config.warmupEpochs * stepsPerEpoch, totalSteps });
  // drop the last partial batch: batch norm and in-batch negatives need full batches
  const loader = new DataLoader(data.train, { batchSize: config.batch, shuffle: !sampler, sampler, seed: config.seed, dropLast: true,
    imageSize: data.imageSize, channels: data.channels, fit: 'cover' });
  const useKnn = data.knn !== null && config.knnEvery > 0;
  const amp = useAmp(config, method, optimizer);
  // distributed: `images` is the global batch (gatherBatch) and `rows` this rank's rows of it
  const views = (images: Tensor, rows?: Tensor): Tensor[] => {
    let v = transform.forward(images);
    if (rows) v = v.map((x) => x.indexSelect(0, rows));
    if (device !== 'cpu') v = v.map((x) => x.pinMemory().to(device, { nonBlocking: true }));
    return config.channelsLast ? v.map((x) => x.contiguous('channelsLast')) : v;
  };
  try {
    // SupCon and Triplet take the views with the images' labels (LabelledViews); the others the views
    const build = (images: Tensor, labels: Tensor, rows?: Tensor): Tensor[] | LabelledViews => (method.usesLabels ? { views: views(images, rows), labels: labels.to(device) } : views(images, rows));
    const r = await fit<Tensor[] | LabelledViews, EpochMetrics>({
      method, optimizer, scheduler, epochs: config.epochs, stepsPerEpoch, totalSteps,
      // a streamed batch whose files were nearly all skipped as unreadable can be smaller: batch norm needs 2
      minBatch: 2,
      async *batches(epoch) {
        if (pk) {
          for (const idx of pk.batches(epoch)) {
            yield { size: idx.length, batch: () => { const b = (data.train as InMemoryDataset).tensorBatch(idx); return build(b.images, b.labels); } };
          }
          return;
        }
        loader.setEpoch(epoch);
        // every rank augments the global batch from rank 0's generator state and keeps its rows, so
        // W processes × batch B take the views, the steps and the weights of 1 × W·B (see context.ts)
        if (dist?.syncRng) await dist.syncRng();
        for await (const { images, labels } of loader) {
          if (!dist?.gatherBatch) {
            yield { size: images.size(0), batch: () => build(images, labels) };
            continue;
          }
          const global = await dist.gatherBatch(images);
          try {
            const n = images.size(0);
            yield { size: n, batch: () => build(global, labels, torch.arange(dist.rank, n * dist.worldSize, dist.worldSize)) };
          } finally {
            global.dispose();
          }
        }
      },
      evaluate: (epoch, last) => {
        const extra: Partial<EpochMetrics> = method instanceof Triplet ? { active_fraction: method.activeFraction } : {};
        if (!useKnn || !((epoch + 1) % config.knnEvery === 0 || last)) return extra;
        const knn = data.knn!;
        const knn_top1 = knnMonitor((x) => (device === 'cpu' ? method.embed(x) : method.embed(x.to(device)).to('cpu')), knn, { mean: data.mean, std: data.std, k: config.knnK, temperature: config.knnTemperature });
        return { ...extra, knn_top1, knn_bank: knn.bankIndices.length };
      },
      run: {
        dir: config.out, task: 'embedder', config: modelConfig(config, data), names: data.names, columns: method instanceof Triplet ? [...CSV_COLUMNS, 'active_fraction'] : CSV_COLUMNS,
        score: (row) => row.knn_top1 ?? (useKnn ? null : -row.loss),
      },
      resume: resumeFrom,
      progress: new Progress(process.stdout, { silent: hooks.silent }),
      describe: (row) => (row.knn_top1 !== undefined ? `  knn_top1 ${(row.knn_top1 * 100).toFixed(2)}%` : ''),
      divergenceHint: 'Lower --lr, raise --temperature or add --warmup-epochs.',
      callbacks: [hooks, hooks.onEpoch ? { onEpochEnd: hooks.onEpoch } : undefined],
      distributed: dist,
      gradScaler: amp.scaler,
    });
    return { config, metrics: r.metrics, best: r.best, lastPath: r.lastPath!, bestPath: r.bestPath!, method };
  } finally {
    amp.undo();
    loader.close();
    if (!hooks.data) disposeTrainData(data);
  }
}

/** A trained method rebuilt from a checkpoint (`dyad train`'s last/best.safetensors), in eval mode. */
export function loadMethod(file: string): { method: SelfSupervisedMethod; config: TrainConfig & { mean: number[]; std: number[] }; names: string[]; meta: ReturnType<typeof loadCheckpoint>['meta'] } {
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
