/**
 * The engine's one training loop (Ultralytics' `BaseTrainer`, Lightning's fit loop): every
 * trainer — self-supervised (`trainer.ts`), CLIP (`clip_trainer.ts`), supervised and
 * fine-tuning (`supervised.ts`), the linear probe's layer (`probe.ts`) — is setup code that
 * builds a `Method<B>`, an optimizer, a schedule and a batch source, then calls `fit`.
 *
 * One step: inside a memory scope, the batch is built (augmentation, normalisation), the
 * method's `trainingStep` gives the loss, backward and the optimizer step run; a non-finite loss
 * stops the run (`TrainingDivergedError`) before any weight changes, keeping the last good
 * checkpoint. Then `method.afterStep` (EMA updates) and the schedule step.
 *
 * One epoch: at most `stepsPerEpoch` batches (and never past `totalSteps`), then the epoch's
 * row (mean loss, lr, images/s, time, plus what `evaluate` adds: the kNN monitor, CLIP's
 * recall), and, with a run folder (`run`): `last.safetensors` every epoch, `best.safetensors`
 * when `score` improves, `metrics.jsonl` and `results.csv` (all atomic, so a kill at any moment
 * leaves whole files). With `resume`, the loop restores the weights, optimizer, schedule, RNG,
 * best score and earlier rows from the checkpoint and starts at the next epoch: as long as the
 * batches of epoch e depend only on (seed, e), the resumed run ends with the same weights.
 *
 * Callbacks (`onStepEnd`, `onEpochEnd`, `onCheckpoint`) let the studio, distributed training
 * and tests hook in without copying the loop.
 *
 * Distributed (`distributed`, a `DistributedContext` with worldSize > 1): every rank runs this
 * loop on its own shard; `setup` (DDP's broadcast from rank 0) runs after the resume, gradients
 * are averaged by `syncGradients` between backward and the optimizer step, the row's loss is
 * the mean over the ranks and img/s the throughput of all ranks. Only rank 0 evaluates, prints
 * and writes the run folder; the others wait at a barrier after each epoch. Checkpoints record
 * the world size and the samples seen, and a resume with another world size puts the schedule
 * at the same epoch boundary in the new world's steps.
 */
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import type * as nn from '../nn/index.js';
import { writeFileAtomic } from '../torch/io.js';
import type { Method, StepContext } from '../methods/method.js';
import type { Optimizer } from '../optim/index.js';
import type { LRScheduler } from '../optim/lr_scheduler.js';
import { disposeCheckpoint, saveCheckpoint, type Checkpoint, type CheckpointMeta } from './checkpoint.js';
import type { GradScaler, GradScalerState } from '../optim/grad_scaler.js';
import { Progress } from './progress.js';
import { readRunMetrics, writeRunResults } from './run_files.js';
import { optimizerStep } from './step.js';
import { DyadError } from '../errors.js';
import { activeContext, type DistributedContext } from '../distributed/context.js';

export class TrainingDivergedError extends DyadError<'TRAINING_DIVERGED'> {
  constructor(message: string) {
    super('TRAINING_DIVERGED', message);
    this.name = 'TrainingDivergedError';
  }
}

/** The fields every epoch row has; trainers add their own (`knn_top1`, `logit_scale`, ...). */
export interface EpochRow {
  epoch: number;
  loss: number;
  lr: number;
  img_per_s: number;
  time_s: number;
}

/** One step's input: its number of images and a builder called inside the step's memory scope. */
export interface StepInput<B> {
  size: number;
  batch(ctx: StepContext): B;
}

export interface StepEnd extends StepContext {
  /** Steps done in this epoch (1-based) and the epoch's length. */
  stepInEpoch: number;
  stepsPerEpoch: number;
  loss: number;
  lr: number;
  imgPerS: number;
}

export interface LoopCallbacks<R extends EpochRow = EpochRow> {
  onStepEnd?(s: StepEnd): void;
  onEpochEnd?(row: R): void;
  onCheckpoint?(c: { kind: 'last' | 'best'; path: string; epoch: number; step: number }): void;
}

/** The run folder: where rows and checkpoints go, and what the checkpoints record. */
export interface RunFolder<R extends EpochRow> {
  dir: string;
  /** Checkpoint metadata: the task, the config that rebuilds the model, class names. */
  task: CheckpointMeta['task'];
  config: Record<string, unknown>;
  names?: string[];
  /** The columns of results.csv. */
  columns: (keyof R & string)[];
  /** The module checkpointed under `model.` (default: the method). */
  model?: nn.Module;
  /** Higher is better; null: this epoch has no comparable score (no best written). */
  score(row: R): number | null;
}

export interface FitSpec<B, R extends EpochRow> {
  method: Method<B>;
  optimizer: Optimizer<any>;
  scheduler?: LRScheduler | null;
  epochs: number;
  stepsPerEpoch: number;
  /** Stop after this many steps in all (default epochs × stepsPerEpoch). */
  totalSteps?: number;
  /** Epoch `e`'s batches; the loop takes at most `stepsPerEpoch` of them. */
  batches(epoch: number): AsyncIterable<StepInput<B>> | Iterable<StepInput<B>>;
  /** A batch smaller than this is skipped (batch norm needs 2; a streamed batch can lose unreadable files). Default 1. */
  minBatch?: number;
  /** After each epoch, in eval mode: the fields it adds to the row (the monitor), or nothing. */
  evaluate?(epoch: number, last: boolean): Partial<R> | undefined | Promise<Partial<R> | undefined>;
  run?: RunFolder<R> | null;
  /** A checkpoint of this run to continue from (the loop restores it and disposes it). */
  resume?: Checkpoint | null;
  /** Progress output (default: none). */
  progress?: Progress | null;
  /** The end of each epoch's log line (after loss and img/s). */
  describe?(row: R): string;
  /** Log a line per epoch (default true; off for loops whose "epochs" are many short passes). */
  epochLog?: boolean;
  /** What to try when the loss diverges, appended to the error. */
  divergenceHint?: string;
  callbacks?: (LoopCallbacks<R> | undefined)[];
  /** This process's part of a distributed run (see the module comment); null or worldSize 1: one process. */
  distributed?: DistributedContext | null;
  /**
   * fp16's loss scaler (wired around the method by `withGradScaler`): its scale and growth count
   * are saved in every checkpoint (`meta.extra.gradScaler`) and restored on resume, so a resumed run
   * scales as the uninterrupted one would.
   */
  gradScaler?: GradScaler | null;
}

/** What a distributed run's checkpoints record in `meta.extra.distributed`. */
export interface DistributedProgress {
  worldSize: number;
  /** Images trained on by all ranks together since the start of the run. */
  samplesSeen: number;
}

export interface FitResult<R extends EpochRow> {
  /** All rows of the run (with a resume: the earlier ones too). */
  metrics: R[];
  best: number | null;
  /** Steps taken by this call. */
  steps: number;
  lastPath: string | null;
  bestPath: string | null;
}

/** Trains `spec.method` (see the module comment). */
export async function fit<B, R extends EpochRow>(spec: FitSpec<B, R>): Promise<FitResult<R>> {
  const { method, optimizer, scheduler, epochs, stepsPerEpoch } = spec;
  const dist = activeContext(spec.distributed);
  const worldSize = dist?.worldSize ?? 1;
  const main = dist === null || dist.isMain;
  const run = main ? spec.run : null; // the reads and writes of the run folder (only rank 0's)
  const totalSteps = spec.totalSteps ?? epochs * stepsPerEpoch;
  const progress = main ? spec.progress ?? null : null;
  const callbacks = (spec.callbacks ?? []).filter((c): c is LoopCallbacks<R> => c !== undefined);
  const minBatch = spec.minBatch ?? 1;
  const lastPath = spec.run ? path.join(spec.run.dir, 'last.safetensors') : null;
  const bestPath = spec.run ? path.join(spec.run.dir, 'best.safetensors') : null;
  const saved = spec.run?.model ?? method;

  let startEpoch = 0;
  let best: number | null = null;
  let metrics: R[] = [];
  let samplesSeen = 0;
  let wasDistributed = false; // a single-process run resumed from a distributed one keeps counting samples
  if (run) mkdirSync(run.dir, { recursive: true });
  if (spec.resume) {
    const ck = spec.resume;
    const before = ck.meta.extra?.distributed as DistributedProgress | undefined;
    samplesSeen = before?.samplesSeen ?? 0;
    wasDistributed = before !== undefined;
    const baseLrs = optimizer.paramGroups.map((g) => g.initialLr ?? g.lr);
    try {
      saved.loadStateDict(ck.model);
      optimizer.loadStateDict({ state: ck.optimizer, meta: ck.meta.optimizer! });
      // another world size: other steps per epoch and another lr (global batch); same epoch boundary
      const sched = ck.meta.scheduler && (before?.worldSize ?? 1) !== worldSize ? { ...ck.meta.scheduler, lastStep: (ck.meta.epoch + 1) * stepsPerEpoch, baseLrs } : ck.meta.scheduler;
      if (sched) scheduler?.loadStateDict(sched);
      if (ck.rng) torch.setRngState(ck.rng);
      const scalerState = ck.meta.extra?.gradScaler as GradScalerState | undefined;
      if (scalerState && spec.gradScaler) spec.gradScaler.loadStateDict(scalerState);
    } finally {
      disposeCheckpoint(ck);
    }
    startEpoch = ck.meta.epoch + 1;
    best = ck.meta.bestMetric ?? null;
    if (run) metrics = readRunMetrics<R>(run.dir).filter((m) => m.epoch < startEpoch);
    progress?.log(`resuming ${run?.dir ?? 'the run'} at epoch ${startEpoch + 1}/${epochs}`);
  }
  if (run) writeFileAtomic(path.join(run.dir, 'config.json'), JSON.stringify(run.config, null, 2) + '\n');
  await dist?.setup?.(method);

  let taken = 0;
  for (let epoch = startEpoch; epoch < epochs && epoch * stepsPerEpoch < totalSteps; epoch++) {
    method.train();
    const t0 = performance.now();
    const inEpoch = Math.min(stepsPerEpoch, totalSteps - epoch * stepsPerEpoch);
    let lossSum = 0;
    let s = 0;
    let images = 0;
    for await (const input of spec.batches(epoch)) {
      if (input.size < minBatch) continue;
      const ctx: StepContext = { step: epoch * stepsPerEpoch + s, totalSteps, epoch };
      const loss = dist?.syncGradients ? await distributedStep(method, input, ctx, optimizer, dist.syncGradients.bind(dist))
        : torch.scope(() => optimizerStep(method.trainingStep(input.batch(ctx), ctx) as Tensor, optimizer, () => method.beforeOptimizerStep(ctx)));
      if (!Number.isFinite(loss)) {
        throw new TrainingDivergedError(`the loss became ${loss} at epoch ${epoch + 1}, step ${s + 1}: training stopped. ` +
          (run ? `The last good checkpoint is kept in ${existsSync(lastPath!) ? lastPath : '(none yet)'}. ` : '') + (spec.divergenceHint ?? 'Lower the lr.'));
      }
      method.afterStep(ctx);
      scheduler?.step();
      lossSum += loss;
      s++;
      taken++;
      images += input.size;
      const elapsed = (performance.now() - t0) / 1000;
      const lr = optimizer.paramGroups.at(-1)!.lr;
      progress?.update({ epoch, epochs, step: s, steps: inEpoch, loss, lr, imgPerS: images / elapsed }, (elapsed / s) * (totalSteps - ctx.step - 1));
      if (callbacks.length) {
        const end: StepEnd = { ...ctx, stepInEpoch: s, stepsPerEpoch: inEpoch, loss, lr, imgPerS: images / elapsed };
        for (const c of callbacks) c.onStepEnd?.(end);
      }
      if (s === inEpoch) break;
    }
    if (s === 0) throw new RangeError(`epoch ${epoch + 1} had no batch to train on: the data yielded no batch of at least ${minBatch} images`);
    const time = (performance.now() - t0) / 1000;
    const loss = dist?.allReduceMean ? await dist.allReduceMean(lossSum / s) : lossSum / s;
    const row = { epoch, loss, lr: optimizer.paramGroups[0]!.lr, img_per_s: (images * worldSize) / time, time_s: time } as R;
    samplesSeen += images * worldSize;
    if (spec.evaluate && main) {
      method.eval();
      Object.assign(row, await spec.evaluate(epoch, epoch === epochs - 1 || (epoch + 1) * stepsPerEpoch >= totalSteps));
      method.train();
    }
    metrics.push(row);
    if (run) {
      const score = run.score(row);
      const improved = score !== null && (best === null || score > best);
      if (improved) best = score;
      const extra = {
        ...(dist || wasDistributed ? { distributed: { worldSize, samplesSeen } satisfies DistributedProgress } : {}),
        ...(spec.gradScaler ? { gradScaler: spec.gradScaler.stateDict() } : {}),
      };
      const meta = { task: run.task, config: run.config, epoch, step: (epoch + 1) * stepsPerEpoch, names: run.names ?? [], bestMetric: best, metrics: { ...row } as Record<string, unknown>,
        ...(Object.keys(extra).length > 0 ? { extra } : {}) };
      saveCheckpoint(lastPath!, { model: saved, optimizer, scheduler, meta });
      for (const c of callbacks) c.onCheckpoint?.({ kind: 'last', path: lastPath!, epoch, step: meta.step });
      if (improved) {
        saveCheckpoint(bestPath!, { model: saved, optimizer, scheduler, meta });
        for (const c of callbacks) c.onCheckpoint?.({ kind: 'best', path: bestPath!, epoch, step: meta.step });
      }
      writeRunResults(run.dir, metrics, run.columns);
    }
    await dist?.barrier?.(); // the other ranks wait for rank 0's evaluation and checkpoint
    if (spec.epochLog !== false) progress?.log(`epoch ${epoch + 1}/${epochs}  loss ${row.loss.toFixed(4)}  ${row.img_per_s.toFixed(0)} img/s${spec.describe?.(row) ?? ''}`);
    for (const c of callbacks) c.onEpochEnd?.(row);
  }
  return { metrics, best, steps: taken, lastPath, bestPath };
}

/**
 * A step of a distributed run: loss and backward in one memory scope, the gradient all-reduce
 * (awaited: it runs off the JS thread), then the optimizer step. A non-finite loss returns
 * before the all-reduce; the caller stops, and the other ranks fail at their next collective.
 */
async function distributedStep<B>(method: Method<B>, input: StepInput<B>, ctx: StepContext, optimizer: Optimizer<any>, syncGradients: () => Promise<void>): Promise<number> {
  const loss = torch.scope(() => {
    const l = method.trainingStep(input.batch(ctx), ctx) as Tensor;
    const value = l.item();
    if (Number.isFinite(value)) l.backward();
    return value;
  });
  if (!Number.isFinite(loss)) return loss;
  await syncGradients();
  torch.scope(() => {
    method.beforeOptimizerStep(ctx); // on the averaged gradients, as clipping after DDP's all-reduce in PyTorch
    optimizer.step();
    optimizer.zeroGrad();
  });
  return loss;
}
