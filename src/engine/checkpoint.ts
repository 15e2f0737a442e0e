/**
 * Checkpoints: one safetensors file holding everything a resume needs.
 *
 * Tensors: `model.<name>` (the method's state dict with PyTorch names: backbone, heads,
 * momentum encoders, the MoCo queue), `optimizer.state.<i>.<name>`, `rng.cpu` (libtorch's
 * generator state). Metadata key `dyad`: JSON with the run config, epoch and step, optimizer
 * groups and schedule state, the best metric, class names and the task. Written atomically
 * (temp file, fsync, rename), so a kill at any moment leaves the previous file intact.
 */
import { existsSync } from 'node:fs';
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { loadFile, saveFile } from '../torch/safetensors.js';
import type * as nn from '../nn/index.js';
import type { Optimizer, OptimizerStateDict } from '../optim/index.js';
import type { LRScheduler, LRSchedulerState } from '../optim/lr_scheduler.js';
import { DyadError } from '../errors.js';

export const CHECKPOINT_FORMAT = 'dyad-checkpoint';
export const CHECKPOINT_VERSION = 1;

export interface CheckpointMeta {
  format: typeof CHECKPOINT_FORMAT;
  version: number;
  /** 'embedder' (self-supervised), 'classifier' (with a head and class names) or 'clip' (image–text, `dyad train --method clip`). */
  task: 'embedder' | 'classifier' | 'clip';
  /** Everything needed to rebuild the model (and, for runs, the trainer). */
  config: Record<string, unknown>;
  epoch: number;
  step: number;
  names?: string[];
  bestMetric?: number | null;
  metrics?: Record<string, unknown>;
  optimizer?: OptimizerStateDict['meta'];
  scheduler?: LRSchedulerState;
  /** State of JS-side generators (data order), if any. */
  extra?: Record<string, unknown>;
}

export interface Checkpoint {
  meta: CheckpointMeta;
  model: Map<string, Tensor>;
  optimizer: Record<string, Tensor>;
  rng: Tensor | null;
}

export class CheckpointError extends DyadError<'CHECKPOINT'> {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CHECKPOINT', message, options);
    this.name = 'CheckpointError';
  }
}

export function saveCheckpoint(path: string, parts: { model: nn.Module; optimizer?: Optimizer<any> | null; scheduler?: LRScheduler | null;
  meta: Omit<CheckpointMeta, 'format' | 'version' | 'optimizer' | 'scheduler'> }): void {
  // stateDict() hands out new handles on the live tensors: the scope frees the handles.
  torch.scope(() => saveCheckpointInScope(path, parts));
}

function saveCheckpointInScope(path: string, parts: Parameters<typeof saveCheckpoint>[1]): void {
  const tensors = new Map<string, Tensor>();
  for (const [k, v] of parts.model.stateDict()) tensors.set(`model.${k}`, v);
  let optimizerMeta: OptimizerStateDict['meta'] | undefined;
  if (parts.optimizer) {
    const sd = parts.optimizer.stateDict();
    for (const [k, v] of Object.entries(sd.state)) tensors.set(`optimizer.${k}`, v);
    optimizerMeta = sd.meta;
  }
  const rng = torch.getRngState();
  tensors.set('rng.cpu', rng);
  const meta: CheckpointMeta = {
    format: CHECKPOINT_FORMAT, version: CHECKPOINT_VERSION, ...parts.meta,
    optimizer: optimizerMeta, scheduler: parts.scheduler?.stateDict(),
  };
  saveFile(tensors, path, { dyad: JSON.stringify(meta) });
}

/** Reads a dyad checkpoint; errors name the file and say what is wrong with it. */
export function loadCheckpoint(path: string): Checkpoint {
  if (!existsSync(path)) throw new CheckpointError(`checkpoint ${path} does not exist. Pass the path of a last.safetensors or best.safetensors written by \`dyad train\`.`);
  let file: ReturnType<typeof loadFile>;
  try {
    file = loadFile(path);
  } catch (e) {
    throw new CheckpointError(`cannot read checkpoint ${path}: ${(e as Error).message}`);
  }
  const raw = file.metadata.dyad;
  if (raw === undefined) {
    for (const t of file.tensors.values()) t.dispose();
    throw new CheckpointError(`${path} is a safetensors file but not a dyad checkpoint (no 'dyad' metadata). ` +
      'To load plain weights into a model use loadFile() and module.loadStateDict().');
  }
  let meta: CheckpointMeta;
  try {
    meta = JSON.parse(raw) as CheckpointMeta;
  } catch {
    throw new CheckpointError(`${path}: the checkpoint metadata is not valid JSON (the file is damaged)`);
  }
  if (meta.format !== CHECKPOINT_FORMAT || typeof meta.config !== 'object') throw new CheckpointError(`${path}: not a dyad checkpoint (format '${String(meta.format)}')`);
  if (meta.version > CHECKPOINT_VERSION) throw new CheckpointError(`${path} was written by a newer dyad (checkpoint version ${meta.version}); upgrade dyad to read it`);
  const model = new Map<string, Tensor>();
  const optimizer: Record<string, Tensor> = {};
  let rng: Tensor | null = null;
  for (const [k, v] of file.tensors) {
    if (k.startsWith('model.')) model.set(k.slice(6), v);
    else if (k.startsWith('optimizer.')) optimizer[k.slice(10)] = v;
    else if (k === 'rng.cpu') rng = v;
    else v.dispose();
  }
  return { meta, model, optimizer, rng };
}

/** Frees the tensors of a loaded checkpoint. */
export function disposeCheckpoint(c: Checkpoint): void {
  for (const t of c.model.values()) t.dispose();
  for (const t of Object.values(c.optimizer)) t.dispose();
  c.rng?.dispose();
}
