/**
 * A `dyad train` worker of a distributed job: reads the torchrun environment (`env.ts`), joins
 * the process group and returns the `DistributedContext` the engine's loop calls
 * (`context.ts`): SyncBatchNorm conversion, DDP's broadcast from rank 0 and gradient
 * all-reduce, a barrier, the mean of the logged loss.
 *
 * LEAD (merge with h23a): the process group, DDP and SyncBatchNorm live in h23a's files
 * (`process_group.ts`, `ddp.ts`, `sync_batchnorm.ts`). This file reaches them through
 * `loadProcessGroupApi` below, written against the API names of issue 23; once both branches
 * are in main, replace its dynamic imports with static ones and check the `ProcessGroupApi`
 * shape against the real exports (the one place to connect).
 */
import type * as nn from '../nn/index.js';
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import type { DistributedContext } from './context.js';
import { LaunchError, readDistributedEnv, type DistributedEnv } from './env.js';

/** What this file needs of h23a's modules (issue 23's API). */
export interface ProcessGroupApi {
  initProcessGroup(o: { backend: 'gloo' | 'nccl'; initMethod: string; rank: number; worldSize: number; timeoutMs?: number }): unknown;
  allReduce(t: Tensor, op?: 'sum' | 'avg'): Promise<unknown>;
  barrier(): Promise<unknown>;
  destroyProcessGroup(): unknown;
  /** `create` broadcasts rank 0's parameters and buffers, then sets up the gradient buckets. */
  DistributedDataParallel: { create(module: nn.Module): Promise<{ syncGradients(): Promise<unknown> }> };
  SyncBatchNorm?: { convert(module: nn.Module): unknown };
}

// LEAD: connect here. Module names kept in variables so this branch builds without h23a's files.
const MODULES = ['./process_group.js', './ddp.js', './sync_batchnorm.js'];

/** h23a's process-group API, or a LaunchError saying this build has none. */
export async function loadProcessGroupApi(): Promise<ProcessGroupApi> {
  const api: Record<string, unknown> = {};
  for (const m of MODULES) {
    try {
      Object.assign(api, await import(m));
    } catch (e) {
      throw new LaunchError(`this build of dyad has no process groups (src/distributed/${m.slice(2, -3)}.ts did not load: ${(e as Error).message}); ` +
        'train in one process (without WORLD_SIZE / --nproc-per-node), or use a build with torch.distributed', { cause: e });
    }
  }
  const ddp = api.DistributedDataParallel as { create?: unknown } | undefined;
  for (const name of ['initProcessGroup', 'allReduce', 'barrier', 'destroyProcessGroup']) {
    if (typeof api[name] !== 'function' || typeof ddp?.create !== 'function') throw new LaunchError(`src/distributed: ${typeof api[name] !== 'function' ? name : 'DistributedDataParallel.create'} is missing from the process-group API; the build is incomplete`);
  }
  return api as unknown as ProcessGroupApi;
}

export interface WorkerOptions {
  /** Default 'gloo' (CPU); 'nccl' for CUDA tensors. */
  backend?: 'gloo' | 'nccl';
  /** Rendezvous and collective timeout (default: the process group's, PyTorch's 30 min; rank 0's kNN monitor runs while the others wait in a barrier). */
  timeoutMs?: number;
  /** Convert batch norms to SyncBatchNorm (default true: batch statistics over the global batch). */
  syncBatchNorm?: boolean;
}

/** Joins the process group of `env` and returns the context the trainer passes to `fit`. */
export async function setupDistributedWorker(env: DistributedEnv, o: WorkerOptions = {}, api?: ProcessGroupApi): Promise<DistributedContext> {
  const pg = api ?? (await loadProcessGroupApi());
  await pg.initProcessGroup({ backend: o.backend ?? 'gloo', initMethod: env.initMethod, rank: env.rank, worldSize: env.worldSize, ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}) });
  let ddp: { syncGradients(): Promise<unknown> } | null = null;
  return {
    rank: env.rank,
    worldSize: env.worldSize,
    localRank: env.localRank,
    isMain: env.rank === 0,
    prepare(module) {
      if (o.syncBatchNorm !== false) pg.SyncBatchNorm?.convert(module);
    },
    async setup(module) {
      ddp = await pg.DistributedDataParallel.create(module); // broadcasts rank 0's parameters and buffers
    },
    async syncGradients() {
      if (!ddp) throw new LaunchError('syncGradients before setup: fit calls setup(method) before the first step');
      await ddp.syncGradients();
    },
    barrier: async () => {
      await pg.barrier();
    },
    async allReduceMean(x) {
      const t = torch.tensor(new Float64Array([x])).keep();
      try {
        await pg.allReduce(t, 'sum');
        return (t.item() as number) / env.worldSize;
      } finally {
        t.dispose();
      }
    },
    close: async () => {
      await pg.destroyProcessGroup();
    },
  };
}

/** The context of a worker started with WORLD_SIZE > 1 in its environment; null for a single-process run. */
export async function distributedFromEnv(env: Record<string, string | undefined> = process.env, o: WorkerOptions = {}): Promise<DistributedContext | null> {
  const d = readDistributedEnv(env);
  if (d === null || d.worldSize === 1) return null;
  return setupDistributedWorker(d, o);
}

/** Throws when this process is one of several workers: `what` trains in one process only. */
export function singleProcessOnly(what: string, env: Record<string, string | undefined> = process.env): void {
  const d = readDistributedEnv(env);
  if (d !== null && d.worldSize > 1) throw new LaunchError(`${what} trains in one process: start it without --nproc-per-node (WORLD_SIZE is ${d.worldSize})`);
}
