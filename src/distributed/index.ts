/**
 * dyad's `torch.distributed` (`import { dist } from 'dyad'`): process groups over libtorch's c10d,
 * collectives, the differentiable gather of contrastive losses, DistributedDataParallel and
 * SyncBatchNorm, and torch.cuda's queries. Sits beside the engine; process_group and gather import
 * only the tensor layer, so losses can gather negatives across ranks.
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
