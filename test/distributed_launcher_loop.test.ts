// The engine loop's distributed hooks (src/engine/loop.ts `distributed`, src/distributed/context.ts),
// with several ranks simulated in one process: a fake process group averages gradients through
// the context's functions (no c10d). 2 ranks × batch 8 on DistributedSampler shards train to the
// same weights and losses as 1 process × batch 16; only rank 0 writes the run folder; a resume
// with the same world size ends equal to an uninterrupted run, and one with another world size
// puts the schedule at the same epoch boundary in the new steps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import * as torch from '../src/torch/index.js';
import type { Tensor } from '../src/torch/index.js';
import * as nn from '../src/nn/index.js';
import { SGD } from '../src/optim/index.js';
import { LinearWarmupCosine } from '../src/optim/lr_scheduler.js';
import { Method } from '../src/methods/method.js';
import { fit, type DistributedProgress, type EpochRow, type FitResult } from '../src/engine/loop.js';
import { loadCheckpoint } from '../src/engine/checkpoint.js';
import { readRunMetrics } from '../src/engine/run_files.js';
import { DistributedSampler } from '../src/distributed/sampler.js';
import type { DistributedContext } from '../src/distributed/context.js';
import { tempDir } from './helpers/tmp.js';

const root = tempDir('dist-loop');
const N = 64;
const X = torch.scope(() => {
  torch.manualSeed(42);
  return torch.randn([N, 4]);
}).keep();
const Y = torch.scope(() => X.matmul(torch.tensor([1, -2, 3, 0.5], { shape: [4, 1] })).add(0.3)).keep();

class Regression extends Method<number[]> {
  readonly methodName = 'regression';
  fc = new nn.Linear(4, 1);
  trainingStep(idx: number[]): Tensor {
    const i = torch.tensor(new BigInt64Array(idx.map(BigInt)));
    return this.fc.forward(X.indexSelect(0, i)).sub(Y.indexSelect(0, i)).pow(2).mean();
  }
  forward(x: Tensor): Tensor {
    return this.fc.forward(x);
  }
}

/** Collectives over JS arrays between ranks running in this process: every rank posts, all get everyone's posts. */
class FakeGroup {
  private readonly rounds: { posted: number[][]; waiters: (() => void)[] }[] = [];
  private readonly seq: number[];
  constructor(readonly size: number) {
    this.seq = new Array<number>(size).fill(0);
  }
  exchange(rank: number, v: number[]): Promise<number[][]> {
    const round = (this.rounds[this.seq[rank]!++] ??= { posted: [], waiters: [] });
    round.posted[rank] = v;
    return new Promise((resolve) => {
      round.waiters.push(() => resolve(round.posted));
      if (round.waiters.length === this.size) for (const w of round.waiters) w();
    });
  }
}

const flat = (ts: Tensor[]): number[] => torch.scope(() => ts.flatMap((t) => t.flatten().toArray()));
const writeFlat = (ts: Tensor[], v: number[]): void => torch.scope(() => torch.noGrad(() => {
  let o = 0;
  for (const t of ts) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    t.copy_(torch.tensor(new Float32Array(v.slice(o, o + n)), { shape: t.shape }));
    o += n;
  }
}));

/** Rank `rank`'s context over the fake group: DDP's broadcast and gradient mean, a barrier, the loss mean. */
function fakeContext(g: FakeGroup, rank: number, calls: string[]): DistributedContext {
  let params: nn.Parameter[] = [];
  const mean = (all: number[][]): number[] => all[0]!.map((_, j) => all.reduce((s, a) => s + a[j]!, 0) / all.length);
  return {
    rank, worldSize: g.size, localRank: rank, isMain: rank === 0,
    async setup(m) {
      params = [...m.parameters()];
      writeFlat(params, (await g.exchange(rank, flat(params)))[0]!); // broadcast from rank 0
      calls.push(`setup ${rank}`);
    },
    async syncGradients() {
      const grads = torch.scope(() => params.map((p) => p.grad!.keep()));
      writeFlat(grads, mean(await g.exchange(rank, flat(grads))));
      for (const t of grads) t.dispose();
      calls.push(`sync ${rank}`);
    },
    async barrier() {
      await g.exchange(rank, []);
      calls.push(`barrier ${rank}`);
    },
    async allReduceMean(x) {
      return mean(await g.exchange(rank, [x]))[0]!;
    },
  };
}

/** Ranks whose `evaluate` ran, in order. */
const evaluatedBy: number[] = [];

interface RunSpec { worldSize: number; batch: number; epochs: number; dir: string; resume?: boolean; lr?: number; totalEpochs?: number }

/** One rank's run: its shard of the (seed 3, epoch) order in batches of `batch`. */
async function runRank(s: RunSpec, rank: number, ctx: DistributedContext | null): Promise<{ r: FitResult<EpochRow>; method: Regression; optimizer: SGD; scheduler: LinearWarmupCosine }> {
  torch.manualSeed(100 + rank); // ranks start from different weights: setup broadcasts rank 0's
  const method = new Regression();
  const optimizer = new SGD(method.parameters(), { lr: s.lr ?? 0.05, momentum: 0.9 });
  const sampler = new DistributedSampler(N, { numReplicas: s.worldSize, rank, seed: 3, dropLast: true });
  const stepsPerEpoch = Math.floor(sampler.length / s.batch);
  const scheduler = new LinearWarmupCosine(optimizer, { warmupSteps: 0, totalSteps: (s.totalEpochs ?? s.epochs) * stepsPerEpoch });
  const r = await fit<number[], EpochRow>({
    method, optimizer, scheduler, epochs: s.epochs, stepsPerEpoch, distributed: ctx,
    evaluate: () => {
      evaluatedBy.push(rank);
      return {};
    },
    *batches(epoch) {
      const idx = sampler.indices(epoch);
      for (let b = 0; b + s.batch <= idx.length; b += s.batch) yield { size: s.batch, batch: () => idx.slice(b, b + s.batch) };
    },
    run: { dir: rank === 0 ? s.dir : `${s.dir}-rank${rank}`, task: 'embedder', config: { worldSize: s.worldSize }, columns: ['epoch', 'loss'], score: (row) => -row.loss },
    resume: s.resume ? loadCheckpoint(path.join(s.dir, 'last.safetensors')) : null,
  });
  return { r, method, optimizer, scheduler };
}

async function runAll(s: RunSpec, calls: string[] = []): Promise<Awaited<ReturnType<typeof runRank>>[]> {
  if (s.worldSize === 1) return [await runRank(s, 0, null)];
  const g = new FakeGroup(s.worldSize);
  return Promise.all(Array.from({ length: s.worldSize }, (_, rank) => runRank(s, rank, fakeContext(g, rank, calls))));
}

const weights = (m: nn.Module): number[] => flat([...m.parameters()]);
const close = (a: number[], b: number[], tol: number, what: string): void => {
  assert.equal(a.length, b.length);
  a.forEach((x, i) => assert.ok(Math.abs(x - b[i]!) <= tol, `${what}[${i}]: ${x} vs ${b[i]}`));
};

test('2 ranks × batch 8 with averaged gradients = 1 process × batch 16; only rank 0 writes and evaluates', async () => {
  const one = await runAll({ worldSize: 1, batch: 16, epochs: 3, dir: path.join(root, 'one') });
  const calls: string[] = [];
  evaluatedBy.length = 0;
  const two = await runAll({ worldSize: 2, batch: 8, epochs: 3, dir: path.join(root, 'two') }, calls);
  assert.deepEqual(evaluatedBy, [0, 0, 0], 'rank 0 evaluates each epoch, rank 1 never');
  close(weights(two[0]!.method), weights(one[0]!.method), 1e-5, 'rank 0 weights');
  close(weights(two[1]!.method), weights(two[0]!.method), 0, 'rank 1 = rank 0');
  close(two[0]!.r.metrics.map((m) => m.loss), one[0]!.r.metrics.map((m) => m.loss), 1e-5, 'epoch losses (mean over ranks)');
  assert.deepEqual(two[1]!.r.metrics.map((m) => m.loss), two[0]!.r.metrics.map((m) => m.loss));
  assert.ok(one[0]!.r.metrics[2]!.loss < one[0]!.r.metrics[0]!.loss / 4);
  // 4 steps × 3 epochs of gradient syncs per rank, one setup and one barrier per epoch
  for (const rank of [0, 1]) {
    assert.equal(calls.filter((c) => c === `sync ${rank}`).length, 12);
    assert.equal(calls.filter((c) => c === `setup ${rank}`).length, 1);
    assert.equal(calls.filter((c) => c === `barrier ${rank}`).length, 3);
  }
  assert.ok(existsSync(path.join(root, 'two', 'last.safetensors')) && existsSync(path.join(root, 'two', 'results.csv')));
  assert.ok(!existsSync(path.join(root, 'two-rank1')), 'rank 1 writes no run folder');
  const ck = loadCheckpoint(path.join(root, 'two', 'last.safetensors'));
  assert.deepEqual(ck.meta.extra?.distributed, { worldSize: 2, samplesSeen: 3 * 64 } satisfies DistributedProgress);
  assert.ok(Math.abs(two[0]!.r.metrics[0]!.img_per_s / (64 / two[0]!.r.metrics[0]!.time_s) - 1) < 1e-9, 'img/s counts the images of all ranks');
  for (const t of ck.model.values()) t.dispose();
});

test('resume: same world size ends equal to an uninterrupted run; another world size keeps the epoch boundary', async () => {
  const full = await runAll({ worldSize: 2, batch: 8, epochs: 4, dir: path.join(root, 'full') });
  const dir = path.join(root, 'cut');
  await runAll({ worldSize: 2, batch: 8, epochs: 2, totalEpochs: 4, dir });
  const resumed = await runAll({ worldSize: 2, batch: 8, epochs: 4, dir, resume: true });
  close(weights(resumed[0]!.method), weights(full[0]!.method), 1e-6, 'resumed weights');
  close(weights(resumed[1]!.method), weights(full[0]!.method), 1e-6, 'resumed weights, rank 1');
  assert.deepEqual(readRunMetrics<EpochRow>(dir).map((m) => m.epoch), [0, 1, 2, 3]);

  // 2 ranks (4 steps per epoch) for 2 epochs, then 4 ranks (2 steps per epoch, lr doubled with the global batch)
  const other = path.join(root, 'other');
  await runAll({ worldSize: 2, batch: 8, epochs: 2, totalEpochs: 4, dir: other });
  const four = await runAll({ worldSize: 4, batch: 8, epochs: 4, dir: other, resume: true, lr: 0.1 });
  for (const { scheduler, optimizer } of four) {
    assert.equal(scheduler.lastStep, 8, 'resumed at step 2 × 2, then 2 epochs of 2 steps');
    assert.equal(optimizer.paramGroups[0]!.initialLr, 0.1, 'the base lr of the new world size');
  }
  const ck = loadCheckpoint(path.join(other, 'last.safetensors'));
  assert.equal(ck.meta.epoch, 3);
  assert.deepEqual(ck.meta.extra?.distributed, { worldSize: 4, samplesSeen: 4 * 64 });
  for (const t of ck.model.values()) t.dispose();
  const rows = readRunMetrics<EpochRow>(other);
  assert.deepEqual(rows.map((m) => m.epoch), [0, 1, 2, 3]);
  assert.ok(rows[3]!.loss < rows[0]!.loss, `loss ${rows[0]!.loss} → ${rows[3]!.loss}`);
  // and on in one process (batch 16: 4 steps per epoch), still counting the samples
  const [alone] = await runAll({ worldSize: 1, batch: 16, epochs: 5, dir: other, resume: true });
  assert.equal(alone!.scheduler.lastStep, 20, 'resumed at step 4 × 4, then one epoch of 4 steps');
  const ck1 = loadCheckpoint(path.join(other, 'last.safetensors'));
  assert.deepEqual(ck1.meta.extra?.distributed, { worldSize: 1, samplesSeen: 5 * 64 });
  for (const t of ck1.model.values()) t.dispose();
});

test('train() with a 2-rank context: per-process batch, half the steps, the lr of the global batch, equal weights, rank 0 writes', async () => {
  const { train } = await import('../src/engine/trainer.js');
  const { InMemoryDataset } = await import('../src/data/index.js');
  const images = torch.scope(() => {
    torch.manualSeed(7);
    return torch.rand([64, 1, 8, 8]).mul(255).to('uint8');
  }).keep();
  const data = {
    name: 'synthetic', train: new InMemoryDataset(images, new Int32Array(64)), knn: null, names: [], channels: 1 as const, imageSize: 8, mean: [0.5], std: [0.25],
  };
  const config = { method: 'simclr' as const, data: 'synthetic', epochs: 2, width: 4, imageSize: 8, channels: 1 as const, threads: 1, knnEvery: 0, lr: 0.3, seed: 1 };
  const lrs = (steps: { lr: number; stepInEpoch: number; stepsPerEpoch: number }[]): number[] => steps.map((s) => s.lr);
  const single: { lr: number; stepInEpoch: number; stepsPerEpoch: number }[] = [];
  await train({ ...config, batch: 16, out: path.join(root, 'train-one') }, { silent: true, data, onStepEnd: (s) => single.push(s) });

  const g = new FakeGroup(2);
  const calls: string[] = [];
  const steps: { lr: number; stepInEpoch: number; stepsPerEpoch: number }[][] = [[], []];
  const prepared: number[] = [];
  const runs = await Promise.all([0, 1].map((rank) => train({ ...config, batch: 8, out: path.join(root, rank === 0 ? 'train-two' : 'train-two-rank1') }, {
    silent: true, data, onStepEnd: (s) => steps[rank]!.push(s),
    distributed: { ...fakeContext(g, rank, calls), prepare: () => { prepared.push(rank); } },
  })));
  assert.deepEqual(prepared.sort(), [0, 1], 'prepare (SyncBatchNorm) ran on each rank');
  for (const rank of [0, 1]) {
    assert.equal(steps[rank]!.length, single.length, 'the same steps: 64 images / (8 × 2 ranks) = 64 / 16');
    assert.ok(steps[rank]!.every((s) => s.stepsPerEpoch === 4));
    close(lrs(steps[rank]!), lrs(single), 1e-12, `rank ${rank} lr = the lr of the global batch 16`);
    assert.equal(calls.filter((c) => c === `sync ${rank}`).length, 8);
  }
  close(weights(runs[1]!.method), weights(runs[0]!.method), 0, 'both ranks end with the same parameters');
  assert.ok(existsSync(path.join(root, 'train-two', 'last.safetensors')));
  assert.ok(!existsSync(path.join(root, 'train-two-rank1')), 'rank 1 writes no run folder');
  for (const r of runs) r.method.dispose();
  images.dispose();
});
