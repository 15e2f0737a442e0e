/**
 * Memory soak: many SimCLR training steps (Chen et al. 2020) on Fashion-MNIST at 28 px with the
 * CIFAR ResNet-18 and its stride-2 stem, the pieces `dyad train` uses (in-memory dataset →
 * DataLoader → SimCLRTransform's two views → SimCLR.trainingStep → SGD + warmup-cosine), sampling
 * the process's memory every `--every` steps: RSS (/proc/self/status VmRSS), the live tensor
 * count and bytes and the caching allocator's idle bytes (`torch.memory()`), V8's heapUsed and
 * external. One JSON line per sample, then a summary line: RSS growth after the warm-up
 * (`--warmup` steps; the target is < 25 MB) and the tensor count range after it (flat).
 * Flags: --steps 10000 --batch 32 --every 500 --warmup 1000 --width 16 --threads 2
 */
import { readFileSync } from 'node:fs';
import * as torch from '../src/torch/index.js';
import { DataLoader, FashionMNIST, InMemoryDataset } from '../src/data/index.js';
import { createMethod } from '../src/methods/index.js';
import { SGD, paramGroupsForWeightDecay } from '../src/optim/index.js';
import { LinearWarmupCosine } from '../src/optim/lr_scheduler.js';
import { SimCLRTransform } from '../src/transforms/index.js';
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
  external_mb: number;
  loss: number;
}

function sample(step: number, loss: number): SoakSample {
  const mem = torch.memory();
  const v8 = process.memoryUsage();
  const mb = (b: number): number => Number((b / 2 ** 20).toFixed(1));
  return { step, rss_mb: Number(rssMB().toFixed(1)), tensors: mem.count, tensor_mb: mb(mem.bytes), cached_mb: mb(mem.cachedBytes),
    heap_used_mb: mb(v8.heapUsed), external_mb: mb(v8.external), loss: Number(loss.toFixed(4)) };
}

export async function main(args: Record<string, unknown>): Promise<void> {
  const steps = num(args.steps, 10_000);
  const batch = num(args.batch, 32);
  const every = num(args.every, 500);
  const warmup = num(args.warmup, 1000);
  const width = num(args.width, 16);
  torch.setNumThreads(num(args.threads, 2));
  torch.manualSeed(0);

  const train = await InMemoryDataset.from(await FashionMNIST.open({ train: true }), { channels: 1 });
  const method = createMethod({ method: 'simclr', temperature: 0.5, concatViews: true, headLayers: 3, loss: 'ntxent',
    backbone: { name: 'resnet18', inChannels: 1, imageSize: 28, width, stem: 'cifar-stride2' } });
  const transform = new SimCLRTransform({ inputSize: 28, minScale: 0.2, cjStrength: 0.5, gaussianBlur: 0, randomGrayScale: 0,
    normalize: { mean: [0.286], std: [0.353] } });
  const optimizer = new SGD(paramGroupsForWeightDecay(method.trainableParameters(), { weightDecay: 5e-4 }),
    { lr: (0.12 * batch) / 256, momentum: 0.9, weightDecay: 5e-4 });
  const scheduler = new LinearWarmupCosine(optimizer, { warmupSteps: 0, totalSteps: steps });
  const loader = new DataLoader(train, { batchSize: batch, shuffle: true, seed: 0, dropLast: true, imageSize: 28, channels: 1, fit: 'cover' });

  const samples: SoakSample[] = [sample(0, NaN)];
  emit({ bench: 'soak', ...samples[0]! });
  const t0 = performance.now();
  method.train();
  let step = 0;
  try {
    for (let epoch = 0; step < steps; epoch++) {
      loader.setEpoch(epoch);
      for await (const { images } of loader) {
        const ctx = { step, totalSteps: steps, epoch };
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
        if (step % every === 0 || step === steps) {
          const s = sample(step, loss);
          samples.push(s);
          emit({ bench: 'soak', ...s });
        }
        if (step === steps) break;
      }
    }
  } finally {
    loader.close();
  }
  const seconds = (performance.now() - t0) / 1000;
  const base = samples.find((s) => s.step >= warmup) ?? samples[samples.length - 1]!;
  const after = samples.filter((s) => s.step >= base.step);
  const last = samples[samples.length - 1]!;
  const tensors = after.map((s) => s.tensors);
  const rssGrowth = last.rss_mb - base.rss_mb;
  const steady = Math.max(1, last.step - base.step);
  emit({ bench: 'soak', summary: true, steps, batch, width, seconds: Number(seconds.toFixed(1)), warmup_step: base.step,
    rss_at_warmup_mb: base.rss_mb, rss_end_mb: last.rss_mb, rss_growth_mb: Number(rssGrowth.toFixed(1)),
    rss_kb_per_step: Number(((rssGrowth * 1024) / steady).toFixed(2)),
    tensors_min: Math.min(...tensors), tensors_max: Math.max(...tensors),
    flat: rssGrowth < 25 && Math.min(...tensors) === Math.max(...tensors), ...machine() });
  method.dispose();
  optimizer.dispose();
}
