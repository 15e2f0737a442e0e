/**
 * `DistributedContext`: what the engine's loop (`engine/loop.ts` `fit`) and the self-supervised
 * trainer (`engine/trainer.ts` `train`) know of a distributed run. The engine calls the
 * collectives through these injected functions and never imports the process group itself
 * (DESIGN.md: distributed sits beside the engine, the loop calls it through hooks);
 * `worker.ts` `setupDistributedWorker` builds the real one over c10d.
 *
 * Conventions (PyTorch DDP's, lightly's): `--batch` is the batch of ONE process, so the global
 * batch is `batch × worldSize` and the learning rate scales with the global batch; every rank
 * trains on its own shard (`DistributedSampler`); only rank 0 (`isMain`) writes the run folder
 * and prints; the others wait at a barrier while rank 0 runs the kNN monitor.
 */
import type * as nn from '../nn/index.js';
import type { Tensor } from '../torch/index.js';

export interface DistributedContext {
  rank: number;
  worldSize: number;
  localRank: number;
  /** rank === 0: writes the run folder (config, metrics, checkpoints), prints, runs the monitor. */
  isMain: boolean;
  /**
   * Called by the trainer on the freshly built model, before its optimizer is made (SyncBatchNorm
   * conversion: `SyncBatchNorm.convert(module)`).
   */
  prepare?(module: nn.Module): void;
  /** Called by `fit` once, after a resume is restored and before the first step (DDP: broadcast rank 0's parameters and buffers). */
  setup?(module: nn.Module): Promise<void>;
  /** After `backward()`, before the optimizer step: average the gradients over the ranks (DDP's all-reduce). */
  syncGradients?(): Promise<void>;
  /** Every rank waits here (after rank 0's end-of-epoch evaluation and checkpoint). */
  barrier?(): Promise<void>;
  /**
   * Every rank's batch of this step `x` [B, ...] → [W·B, ...] in the global order of the
   * `DistributedSampler` (rank r's k-th row at k·W + r, the order one process with batch W·B
   * reads). With `syncRng` at each epoch start, every rank then augments the global batch with
   * the same generator state and keeps its own rows, so the views equal one process's: W
   * processes × batch B train as 1 × W·B (the equivalence of issue 23), for the price of
   * augmenting W·B images per rank.
   */
  gatherBatch?(x: Tensor): Promise<Tensor>;
  /** Copies rank 0's libtorch generator state to every rank (at each epoch start). */
  syncRng?(): Promise<void>;
  /** The mean of `x` over the ranks (the logged epoch loss). */
  allReduceMean?(x: number): Promise<number>;
  /** Leaves the process group (called once at the end by whoever set the context up). */
  close?(): Promise<void>;
}

/** The context of a single-process run. */
export const SINGLE_PROCESS: DistributedContext = Object.freeze({ rank: 0, worldSize: 1, localRank: 0, isMain: true });

/** The context when it describes more than one process, else null (the loop's "not distributed"). */
export function activeContext(ctx: DistributedContext | null | undefined): DistributedContext | null {
  return ctx && ctx.worldSize > 1 ? ctx : null;
}
