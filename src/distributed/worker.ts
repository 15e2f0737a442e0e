/**
 * A `dyad train` worker of a distributed job: reads the torchrun environment (`env.ts`), joins
 * the process group (`process_group.ts`, c10d over Gloo, or NCCL for `--device cuda`) and returns the `DistributedContext` the
 * engine's loop calls (`context.ts`): SyncBatchNorm conversion (`sync_batchnorm.ts`), DDP's
 * broadcast from rank 0 and bucketed gradient all-reduce (`ddp.ts`), a barrier, the mean of the
 * logged loss.
 */
import type * as nn from '../nn/index.js';
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import type { DistributedContext } from './context.js';
import { DistributedDataParallel } from './ddp.js';
import { LaunchError, readDistributedEnv, type DistributedEnv } from './env.js';
import { allGather, allReduce, barrier, broadcast, destroyProcessGroup, initProcessGroup, isInitialized } from './process_group.js';
import { SyncBatchNorm } from './sync_batchnorm.js';

export interface WorkerOptions {
  /** The trainer's device: 'cpu' (default) or 'cuda'/'cuda:N' (each rank then uses cuda:LOCAL_RANK). */
  device?: string;
  /** Default: 'nccl' when `device` is CUDA (PyTorch's default pairing), else 'gloo'. */
  backend?: 'gloo' | 'nccl';
  /** Rendezvous and collective timeout (default: the process group's, PyTorch's 30 min; rank 0's kNN monitor runs while the others wait in a barrier). */
  timeoutMs?: number;
  /** Convert batch norms to SyncBatchNorm (default true: batch statistics over the global batch). */
  syncBatchNorm?: boolean;
  /** DDP's gradient bucket size in MiB (default 25, PyTorch's bucket_cap_mb). */
  bucketCapMB?: number;
}

/** Joins the process group of `env` and returns the context the trainer passes to `fit`. */
export async function setupDistributedWorker(env: DistributedEnv, o: WorkerOptions = {}): Promise<DistributedContext> {
  const backend = o.backend ?? (o.device !== undefined && o.device !== 'cpu' ? 'nccl' : 'gloo');
  await initProcessGroup({ backend, initMethod: env.initMethod, rank: env.rank, worldSize: env.worldSize, deviceId: env.localRank, ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}) });
  // nccl communicates CUDA tensors only: the CPU-side collectives below (the batch, the RNG state,
  // the logged loss) go through this rank's GPU and come back
  const commDevice = backend === 'nccl' ? `cuda:${env.localRank}` : 'cpu';
  /** A contiguous copy of `t` (a new handle to it when it is already that) on the device the group communicates on. */
  const toComm = (t: Tensor): Tensor => torch.scope(() => t.contiguous().to(commDevice).keep());
  let ddp: DistributedDataParallel | null = null;
  return {
    rank: env.rank,
    worldSize: env.worldSize,
    localRank: env.localRank,
    isMain: env.rank === 0,
    prepare(module: nn.Module) {
      if (o.syncBatchNorm !== false) SyncBatchNorm.convert(module);
    },
    async setup(module: nn.Module) {
      // broadcasts rank 0's parameters and buffers; the reducer's hooks average the gradients
      ddp = await DistributedDataParallel.create(module, o.bucketCapMB !== undefined ? { bucketCapMB: o.bucketCapMB } : {});
    },
    async syncGradients() {
      if (!ddp) throw new LaunchError('syncGradients before setup: fit calls setup(method) before the first step');
      await ddp.syncGradients();
    },
    barrier: async () => {
      await barrier();
    },
    async gatherBatch(x: Tensor) {
      const mine = toComm(x);
      try {
        const parts = await allGather(mine);
        try {
          // [W, B, ...] → [B, W, ...] → [B·W, ...]: rank r's k-th row at k·W + r
          return torch.scope(() => torch.stack(parts, 1).reshape([-1, ...x.shape.slice(1)]).to('cpu').keep());
        } finally {
          for (const p of parts) p.dispose();
        }
      } finally {
        mine.dispose();
      }
    },
    async syncRng() {
      const s = torch.getRngState().keep();
      const c = toComm(s);
      try {
        await broadcast(c, 0);
        torch.scope(() => torch.setRngState(c.to('cpu')));
      } finally {
        c.dispose();
        s.dispose();
      }
    },
    async allReduceMean(x: number) {
      const t = torch.tensor(new Float64Array([x])).keep();
      const c = toComm(t);
      try {
        await allReduce(c, 'sum');
        return (c.item() as number) / env.worldSize;
      } finally {
        c.dispose();
        t.dispose();
      }
    },
    close: async () => {
      ddp?.close();
      ddp = null;
      if (isInitialized()) destroyProcessGroup();
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
