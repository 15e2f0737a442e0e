/**
 * `npm run bench -- ddp [--world 2] [--sizes 0.004,0.25,4,32] [--reps 10] [--steps 4] [--rounds 5] [--hidden 1024] [--batch 64] [--bucket 25,4]`
 *
 * Starts `world` processes (1 libtorch thread each; Gloo over 127.0.0.1) and measures:
 * - all-reduce bandwidth of float32 tensors of each size (MB): time per op, algorithm bandwidth
 *   (bytes / time) and bus bandwidth (× 2(W−1)/W, NCCL-tests' convention: what each link carries);
 * - DDP's cost on a training step of an MLP (4 × Linear(hidden, hidden), ~16 MB of gradients at
 *   1024): every rank runs local steps without communication, then DDP with the bucketed
 *   all-reduce after backward, then overlapped with backward (autograd hooks); the overhead is the
 *   difference, and `hook_launches` says how many buckets started during backward.
 * - training throughput of `dyad train` SimCLR on Fashion-MNIST (ResNet-18 width 16, 28 px, the
 *   CLI's defaults), global batch `--train-batch` (64) for `--train-steps` (30) steps: 1 process ×
 *   2 threads against `--nproc-per-node 2` × 1 thread with half the batch each (gathered
 *   negatives, SyncBatchNorm, DDP; each rank augments the global batch, see engine/trainer.ts):
 *   one JSON line with both img/s (steps × global batch / the epoch's time) and their ratio.
 *   `--train-steps 0` skips it.
 * Prints one JSON line per measurement (rank 0's timings; the ranks run in lockstep).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { emit, machine, num } from './common.js';
import { freePort } from '../src/distributed/launcher.js';

type Args = Record<string, string | boolean | undefined>;

export async function main(args: Args): Promise<void> {
  if (args.worker !== undefined) return worker(args);
  const world = num(args.world, 2);
  const port = await freePort();
  emit({ bench: 'ddp', ...machine(), world, note: 'shared machine: compare only ratios from one session' });
  const passOn = Object.entries(args).flatMap(([k, v]) => (v === undefined || k === 'world' ? [] : [`--${k}`, String(v)]));
  const codes = await Promise.all(Array.from({ length: world }, (_, rank) => new Promise<number>((resolve) => {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--worker', String(rank), '--world', String(world), '--port', String(port), ...passOn], {
      stdio: ['ignore', rank === 0 ? 'inherit' : 'ignore', 'inherit'], env: { ...process.env, OMP_NUM_THREADS: '1' },
    });
    child.on('close', (code) => resolve(code ?? 1));
  })));
  if (codes.some((c) => c !== 0)) throw new Error(`ddp bench: a rank failed (exit codes ${codes.join(', ')})`);
  if (num(args['train-steps'], 30) > 0) emit(trainThroughput(args));
}

/** `dyad train` SimCLR on Fashion-MNIST: 1 process × 2 threads against 2 processes × 1 thread, same global batch. */
function trainThroughput(args: Args): Record<string, unknown> {
  const steps = num(args['train-steps'], 30);
  const batch = num(args['train-batch'], 64);
  const bin = fileURLToPath(new URL('../../bin/dyad.js', import.meta.url));
  const root = mkdtempSync(path.join(os.tmpdir(), 'dyad-bench-ddp-'));
  const common = ['train', '--data', 'fashion-mnist', '--method', 'simclr', '--epochs', '1', '--max-steps-per-epoch', String(steps), '--knn-every', '0', '--seed', '0'];
  const run = (name: string, extra: string[]): Record<string, number> => {
    const out = path.join(root, name);
    const t0 = performance.now();
    const r = spawnSync(process.execPath, [bin, ...common, '--out', out, ...extra], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`ddp bench: dyad train ${extra.join(' ')} failed: ${r.stderr}`);
    const row = JSON.parse(readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').pop()!) as { loss: number; time_s: number };
    return { img_per_s: +((steps * batch) / row.time_s).toFixed(1), train_s: +row.time_s.toFixed(2), wall_s: +((performance.now() - t0) / 1000).toFixed(1), loss: +row.loss.toFixed(4) };
  };
  try {
    const one = run('1x2', ['--threads', '2', '--batch', String(batch)]);
    const two = run('2x1', ['--threads', '1', '--batch', String(batch / 2), '--nproc-per-node', '2']);
    return { bench: 'ddp-train', method: 'simclr', data: 'fashion-mnist', global_batch: batch, steps, one_process_2_threads: one, two_processes_1_thread: two,
      ratio_2proc_over_1proc: +(two.img_per_s! / one.img_per_s!).toFixed(3), note: 'shared 2-core machine; train_s excludes data loading and process start' };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

async function worker(args: Args): Promise<void> {
  const torch = await import('../src/torch/index.js');
  const nn = await import('../src/nn/index.js');
  const { SGD } = await import('../src/optim/index.js');
  const dist = await import('../src/distributed/index.js');
  const rank = num(args.worker, 0);
  const world = num(args.world, 2);
  torch.setNumThreads(1);
  await dist.initProcessGroup({ initMethod: `tcp://127.0.0.1:${num(args.port, 29500)}`, rank, worldSize: world, timeoutMs: 120_000 });
  const out = (o: Record<string, unknown>): void => {
    if (rank === 0) emit(o);
  };

  const sizes = String(args.sizes ?? '0.004,0.25,4,32').split(',').map(Number);
  const reps = num(args.reps, 10);
  for (const mb of sizes) {
    const t = torch.ones([Math.max(1, Math.round((mb * 1024 * 1024) / 4))]);
    for (let i = 0; i < 2; i++) await dist.allReduce(t);
    await dist.barrier();
    const n = mb < 1 ? reps * 5 : reps;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await dist.allReduce(t);
    const s = (performance.now() - t0) / 1000 / n;
    const bytes = t.numel() * 4;
    out({ op: 'allReduce', mb, ms: +(s * 1000).toFixed(3), algbw_MBps: +(bytes / s / 1e6).toFixed(1), busbw_MBps: +((bytes / s / 1e6) * (2 * (world - 1)) / world).toFixed(1) });
    t.dispose();
  }

  const hidden = num(args.hidden, 1024);
  const batch = num(args.batch, 64);
  const steps = num(args.steps, 4);
  torch.manualSeed(0);
  const model = new nn.Sequential(new nn.Linear(hidden, hidden), new nn.ReLU(), new nn.Linear(hidden, hidden), new nn.ReLU(),
    new nn.Linear(hidden, hidden), new nn.ReLU(), new nn.Linear(hidden, hidden));
  const gradMB = model.parameters().reduce((s, p) => s + p.numel() * 4, 0) / 1024 / 1024;
  const x = torch.randn([batch, hidden]);
  const y = torch.randn([batch, hidden]);
  const opt = new SGD(model.parameters(), { lr: 1e-3 });
  const step = (m: { forward(x: unknown): unknown }): void => {
    torch.scope(() => {
      opt.zeroGrad();
      torch.functional.mseLoss(m.forward(x) as typeof x, y).backward();
    });
  };
  const time = async (fn: () => Promise<void>): Promise<number> => {
    await fn();
    await dist.barrier();
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) await fn();
    const ms = (performance.now() - t0) / steps;
    await dist.barrier();
    return ms;
  };
  // The modes take turns, round after round, and each reports its median round: on a shared
  // machine the load changes by the second, and a mode measured in one block catches one phase of it.
  const caps = String(args.bucket ?? '25,4').split(',').map(Number);
  const modes: { cap: number; overlap: boolean }[] = [{ cap: 0, overlap: false }, ...caps.flatMap((cap) => [{ cap, overlap: false }, { cap, overlap: true }])];
  const times = modes.map(() => [] as number[]);
  const info = modes.map(() => ({ buckets: 0, hookLaunches: 0, steps: 0 }));
  for (let round = 0; round < num(args.rounds, 5); round++) {
    for (const [k, mode] of modes.entries()) {
      if (mode.cap === 0) {
        times[k]!.push(await time(async () => {
          step(model);
          opt.step();
        }));
        continue;
      }
      const ddp = await dist.DistributedDataParallel.create(model, { overlap: mode.overlap, bucketCapMB: mode.cap });
      times[k]!.push(await time(async () => {
        step(ddp);
        await ddp.syncGradients();
        opt.step();
      }));
      const b = ddp.buckets;
      info[k] = { buckets: b.count, hookLaunches: info[k]!.hookLaunches + b.hookLaunches, steps: info[k]!.steps + b.steps };
      ddp.close();
    }
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
  const local = median(times[0]!);
  for (const [k, mode] of modes.entries()) {
    const ms = median(times[k]!);
    const base = { op: 'train-step', hidden, batch, grad_MB: +gradMB.toFixed(1), ms: +ms.toFixed(2), rounds_ms: times[k]!.map((t) => +t.toFixed(1)) };
    if (mode.cap === 0) {
      out({ mode: 'local (no communication)', ...base });
      continue;
    }
    out({ mode: mode.overlap ? 'DDP, all-reduce overlapped with backward (hooks)' : 'DDP, all-reduce after backward', bucket_cap_MB: mode.cap,
      buckets: info[k]!.buckets, hook_launches_per_step: +(info[k]!.hookLaunches / info[k]!.steps).toFixed(2), ...base,
      overhead_ms: +(ms - local).toFixed(2), overhead_pct: +((100 * (ms - local)) / local).toFixed(1) });
  }
  await dist.barrier();
  dist.destroyProcessGroup();
  process.exit(0);
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv.includes('--worker')) {
  const a: Args = {};
  const rest = process.argv.slice(2);
  for (let i = 0; i < rest.length; i += 2) a[rest[i]!.replace(/^--/, '')] = rest[i + 1];
  await main(a);
}
