/**
 * dyad's `torch.distributed` (`import { dist } from 'dyad'`): process groups over libtorch's c10d,
 * collectives, the differentiable gather of contrastive losses, DistributedDataParallel and
 * SyncBatchNorm, and torch.cuda's queries. Sits beside the engine; process_group and gather import
 * only the tensor layer, so losses can gather negatives across ranks.
 *
 * One training step per rank, as in PyTorch:
 *
 *   await dist.initProcessGroup({ backend: 'gloo' });           // env://: MASTER_ADDR/PORT, RANK, WORLD_SIZE
 *   const method = new SimCLR(backbone, { gatherDistributed: true });
 *   dist.SyncBatchNorm.convert(method);
 *   const ddp = await dist.DistributedDataParallel.create(method); // rank 0's weights everywhere
 *   const loss = method.trainingStep(views, ctx);                   // this rank's shard of the batch
 *   loss.backward();                                                // bucket all-reduces start during backward
 *   await ddp.syncGradients();                                      // mean gradient over ranks
 *   optimizer.step();
 *   ...
 *   dist.destroyProcessGroup();
 *
 * Around it (what `dyad train --nproc-per-node N` uses): `launch` starts and supervises the
 * workers as torchrun, `readDistributedEnv` reads RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT,
 * `DistributedSampler` shards each epoch, and `setupDistributedWorker` joins the group and
 * returns the `DistributedContext` the engine's loop calls (SyncBatchNorm, DDP, barrier).
 *
 * Needs an addon built with c10d and Gloo's headers (Debian: libtorch-dev and libgloo-dev);
 * `dist.isAvailable()` says. NCCL needs a CUDA build and is not built here.
 */
export {
  initProcessGroup, destroyProcessGroup, isInitialized, isAvailable, getRank, getWorldSize, getBackend,
  allReduce, allGather, broadcast, barrier, reduceScatter, allReduceWithGrad, resolveRendezvous, DistributedError,
  type InitProcessGroupOptions, type Rendezvous, type Backend, type ReduceOp,
} from './process_group.js';
export { gatherWithGrad } from './gather.js';
export { DistributedDataParallel, type DistributedDataParallelOptions } from './ddp.js';
export { SyncBatchNorm } from './sync_batchnorm.js';
export * as cuda from './cuda.js';
export { DistributedSampler, type DistributedSamplerOptions } from './sampler.js';
export { readDistributedEnv, hasDistributedEnv, LaunchError, type DistributedEnv } from './env.js';
export { launch, freePort, WorkerFailedError, type LaunchOptions, type WorkerExit } from './launcher.js';
export { setupDistributedWorker, distributedFromEnv, type WorkerOptions } from './worker.js';
export { SINGLE_PROCESS, type DistributedContext } from './context.js';
