/**
 * Memory soak: many SimCLR training steps (Chen et al. 2020) on Fashion-MNIST at 28 px with the
 * CIFAR ResNet-18 and its stride-2 stem, the pieces `dyad train` uses (in-memory dataset →
 * DataLoader → SimCLRTransform's two views → SimCLR.trainingStep → SGD + warmup-cosine), sampling
 * the process's memory every `--every` steps: RSS (/proc/self/status VmRSS), the live tensor
 * count and bytes and the caching allocator's idle bytes (`torch.memory()`), V8's heapUsed and
 * external. One JSON line per sample, then a summary line: RSS growth after the warm-up
 * (`--warmup` steps; the target is < 25 MB) and the tensor count range after it (flat).
 * `--trainer` runs the steps through the engine's `train()` instead (`--progress` shows its line).
 * Flags: --steps 10000 --batch 32 --every 500 --warmup 1000 --width 16 --threads 2 --trainer --progress
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as torch from '../src/torch/index.js';
import { DataLoader, FashionMNIST, InMemoryDataset } from '../src/data/index.js';
import { createMethod } from '../src/methods/index.js';
import { SGD, paramGroupsForWeightDecay } from '../src/optim/index.js';
import { LinearWarmupCosine } from '../src/optim/lr_scheduler.js';
import { SimCLRTransform } from '../src/transforms/index.js';
import { train } from '../src/engine/trainer.js';
import { emit, machine, num } from './common.js';

/** Resident set size in MB (VmRSS), or process.memoryUsage's rss off Linux. */
function rssMB(): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) / 1024;
  } catch { /* not Linux */ }
  return process.memoryUsage().rss / 2 ** 20;
}

export interface SoakSample {
  step: number;
  rss_mb: number;
  tensors: number;
  tensor_mb: number;
  cached_mb: number;
  heap_used_mb: number;
  /** V8's committed heap: part of RSS that follows the garbage collector's sizing, not live data. */
  heap_total_mb: number;
  external_mb: number;
  loss: number;
}

function sample(step: number, loss: number): SoakSample {
  const mem = torch.memory();
  const v8 = process.memoryUsage();
  const mb = (b: number): number => Number((b / 2 ** 20).toFixed(1));
  return { step, rss_mb: Number(rssMB().toFixed(1)), tensors: mem.count, tensor_mb: mb(mem.bytes), cached_mb: mb(mem.cachedBytes),
    heap_used_mb: mb(v8.heapUsed), heap_total_mb: mb(v8.heapTotal), external_mb: mb(v8.external), loss: Number(loss.toFixed(4)) };
}

/** `steps` steps of the pieces `dyad train` uses, in a loop of its own; a sample every `every` steps. */
async function ownLoop(o: { steps: number; batch: number; every: number; width: number }, samples: SoakSample[]): Promise<void> {
  const train = await InMemoryDataset.from(await FashionMNIST.open({ train: true }), { channels: 1 });
  const method = createMethod({ method: 'simclr', temperature: 0.5, concatViews: true, headLayers: 3, loss: 'ntxent',
    backbone: { name: 'resnet18', inChannels: 1, imageSize: 28, width: o.width, stem: 'cifar-stride2' } });
  const transform = new SimCLRTransform({ inputSize: 28, minScale: 0.2, cjStrength: 0.5, gaussianBlur: 0, randomGrayScale: 0,
    normalize: { mean: [0.286], std: [0.353] } });
  const optimizer = new SGD(paramGroupsForWeightDecay(method.trainableParameters(), { weightDecay: 5e-4 }),
    { lr: (0.12 * o.batch) / 256, momentum: 0.9, weightDecay: 5e-4 });
  const scheduler = new LinearWarmupCosine(optimizer, { warmupSteps: 0, totalSteps: o.steps });
  const loader = new DataLoader(train, { batchSize: o.batch, shuffle: true, seed: 0, dropLast: true, imageSize: 28, channels: 1, fit: 'cover' });
  method.train();
  let step = 0;
  try {
    for (let epoch = 0; step < o.steps; epoch++) {
      loader.setEpoch(epoch);
      for await (const { images } of loader) {
        const ctx = { step, totalSteps: o.steps, epoch };
        const loss = torch.scope(() => {
          const l = method.trainingStep(transform.forward(images), ctx);
          const value = l.item();
          l.backward();
          optimizer.step();
          optimizer.zeroGrad();
          return value;
        });
        method.afterStep(ctx);
        scheduler.step();
        step++;
        if (step % o.every === 0 || step === o.steps) record(samples, step, loss);
        if (step === o.steps) break;
      }
    }
  } finally {
    loader.close();
    train.dispose();
    method.dispose();
    optimizer.dispose();
  }
}

/**
 * The same steps through the engine's public `train(config, hooks)`: full epochs (1,875 steps at
 * batch 32), checkpoints written to a temporary folder, a sample every `every` steps taken from
 * the engine loop's per-step callback (`onStepEnd`, with the step's loss).
 * Samples must fall inside epochs: what a step left for Node's event loop is released at an epoch
 * boundary, where the loop awaits more than promises.
 */
async function trainerLoop(o: { steps: number; batch: number; every: number; width: number; progress: boolean }, samples: SoakSample[]): Promise<void> {
  const out = mkdtempSync(path.join(tmpdir(), 'dyad-soak-'));
  const perEpoch = Math.floor(60_000 / o.batch);
  const epochs = Math.ceil(o.steps / perEpoch);
  try {
    await train({ method: 'simclr', data: 'fashion-mnist', batch: o.batch, width: o.width, stem: 'cifar-stride2', knnEvery: 0,
      epochs, maxStepsPerEpoch: Math.ceil(o.steps / epochs), out }, {
      silent: !o.progress,
      onStepEnd: (s) => {
        const done = s.step + 1;
        if (done % o.every === 0 && done <= o.steps) record(samples, done, s.loss);
      },
    });
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

function record(samples: SoakSample[], step: number, loss: number): void {
  const s = sample(step, loss);
  samples.push(s);
  emit({ bench: 'soak', ...s });
}

export async function main(args: Record<string, unknown>): Promise<void> {
  const o = { steps: num(args.steps, 10_000), batch: num(args.batch, 32), every: num(args.every, 500), width: num(args.width, 16),
    progress: Boolean(args.progress) };
  const warmup = num(args.warmup, 1000);
  const mode = args.trainer ? 'trainer' : 'loop';
  torch.setNumThreads(num(args.threads, 2));
  torch.manualSeed(0);
  const samples: SoakSample[] = [];
  record(samples, 0, NaN);
  const t0 = performance.now();
  if (mode === 'trainer') await trainerLoop(o, samples);
  else await ownLoop(o, samples);
  const seconds = (performance.now() - t0) / 1000;
  const base = samples.find((s) => s.step >= warmup) ?? samples[samples.length - 1]!;
  const last = samples[samples.length - 1]!;
  const tensors = samples.filter((s) => s.step >= base.step).map((s) => s.tensors);
  const rssGrowth = last.rss_mb - base.rss_mb;
  emit({ bench: 'soak', summary: true, mode, steps: last.step, batch: o.batch, width: o.width, seconds: Number(seconds.toFixed(1)), warmup_step: base.step,
    rss_at_warmup_mb: base.rss_mb, rss_end_mb: last.rss_mb, rss_growth_mb: Number(rssGrowth.toFixed(1)),
    // how much of it is V8 committing a larger JS heap (its GC sizing), and what is left for native memory
    v8_heap_total_growth_mb: Number((last.heap_total_mb - base.heap_total_mb).toFixed(1)),
    rss_growth_outside_v8_heap_mb: Number((rssGrowth - (last.heap_total_mb - base.heap_total_mb)).toFixed(1)),
    rss_kb_per_step: Number(((rssGrowth * 1024) / Math.max(1, last.step - base.step)).toFixed(2)),
    tensors_min: Math.min(...tensors), tensors_max: Math.max(...tensors),
    flat: rssGrowth < 25 && Math.min(...tensors) === Math.max(...tensors), ...machine() });
}
