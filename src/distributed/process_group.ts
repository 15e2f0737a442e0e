/**
 * torch.distributed's process group, over libtorch's c10d (native/src/distributed.cc): one default
 * group per process, Gloo over TCP for CPU tensors (NCCL for CUDA tensors, in an addon built against a
 * CUDA libtorch with NCCL's headers), rendezvous through a TCPStore (`env://`, `tcp://host:port`)
 * or a FileStore (`file:///path`). Names follow PyTorch (`init_process_group` → `initProcessGroup`,
 * `all_reduce` → `allReduce`, ...).
 *
 * Every collective is async: the op runs on Gloo's threads and is waited for off the JS thread, so
 * Node's event loop keeps running (timers, a dashboard, a launcher's pipes). A collective changes
 * its tensor in place, as PyTorch's, and resolves to it.
 *
 * Failure is an error, not a hang: a peer that died closes its sockets, and the other ranks'
 * pending and next collectives reject with `DIST_PEER_LOST`; a peer that is alive but does not
 * join rejects with `DIST_TIMEOUT` after `timeoutMs` (default 30 minutes, as PyTorch's).
 *
 * This file imports only the tensor layer, so losses (gathered negatives) may use it.
 */
import { DyadError, type DyadErrorCode } from '../errors.js';
import { N } from '../torch/native.js';
import { Tensor, wrap } from '../torch/tensor.js';

type DistCode = Extract<DyadErrorCode, `DIST_${string}`>;

/** An error of torch.distributed; `code` names the failure (DIST_TIMEOUT, DIST_PEER_LOST, ...). */
export class DistributedError extends DyadError<DistCode> {
  /** The rank that raised it (-1 before the group exists). */
  readonly rank: number;
  /** The operation: 'allReduce', 'initProcessGroup', ... */
  readonly op: string;
  constructor(code: DistCode, op: string, rank: number, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'DistributedError';
    this.op = op;
    this.rank = rank;
  }
}

export type Backend = 'gloo' | 'nccl';
/** PyTorch's ReduceOp (lower case); 'avg' is a sum divided by the world size. */
export type ReduceOp = 'sum' | 'avg' | 'product' | 'min' | 'max' | 'band' | 'bor' | 'bxor';

export interface InitProcessGroupOptions {
  /**
   * 'gloo' (CPU tensors) or 'nccl' (CUDA tensors on `deviceId`; only in an addon built against a
   * CUDA libtorch with NCCL's headers: `isAvailable('nccl')`). Default 'gloo'.
   */
  backend?: Backend;
  /** nccl: this rank's GPU, cuda:deviceId (PyTorch's `device_id`). Default: $LOCAL_RANK, else 0. */
  deviceId?: number;
  /**
   * How the ranks meet: 'env://' (default: MASTER_ADDR, MASTER_PORT, and RANK/WORLD_SIZE unless
   * given), 'tcp://host:port' (rank 0 serves a TCPStore there), or 'file:///path' (a FileStore
   * on a file system every rank sees; a fresh path per run).
   */
  initMethod?: string;
  /** This process's rank in [0, worldSize). Default: $RANK. */
  rank?: number;
  /** Number of processes. Default: $WORLD_SIZE. */
  worldSize?: number;
  /** Rendezvous and collective timeout. Default 1,800,000 ms (PyTorch's 30 minutes). */
  timeoutMs?: number;
}

/** What initProcessGroup resolved the options to (exported for tests and the launcher). */
export interface Rendezvous {
  backend: Backend;
  store: 'tcp' | 'file';
  /** host for tcp, the file path for file */
  where: string;
  port: number;
  rank: number;
  worldSize: number;
  timeoutMs: number;
  /** The GPU of an nccl group (0 for gloo). */
  deviceId: number;
}

const DEFAULT_TIMEOUT_MS = 30 * 60 * 1000;

function intFrom(what: string, v: number | string | undefined, fix: string): number {
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) {
    throw new DistributedError('DIST_INIT', 'initProcessGroup', -1, `initProcessGroup: ${what} must be a non-negative integer, got ${v === undefined ? 'nothing' : JSON.stringify(v)}; ${fix}`);
  }
  return n;
}

/** Resolves `opts` (and, for env://, the environment) to a rendezvous; throws DIST_INIT. */
export function resolveRendezvous(opts: InitProcessGroupOptions = {}, env: NodeJS.ProcessEnv = process.env): Rendezvous {
  const backend = opts.backend ?? 'gloo';
  if (backend !== 'gloo' && backend !== 'nccl') {
    throw new DistributedError('DIST_INIT', 'initProcessGroup', -1, `initProcessGroup: backend must be 'gloo' or 'nccl', got ${JSON.stringify(backend)}`);
  }
  const method = opts.initMethod ?? 'env://';
  const rank = intFrom('rank', opts.rank ?? env.RANK, 'pass { rank } or set RANK');
  const worldSize = intFrom('worldSize', opts.worldSize ?? env.WORLD_SIZE, 'pass { worldSize } or set WORLD_SIZE');
  if (worldSize < 1 || rank >= worldSize) {
    throw new DistributedError('DIST_INIT', 'initProcessGroup', rank, `initProcessGroup: rank ${rank} is not in [0, worldSize=${worldSize})`);
  }
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!(timeoutMs > 0) || !Number.isFinite(timeoutMs)) {
    throw new DistributedError('DIST_INIT', 'initProcessGroup', rank, `initProcessGroup: timeoutMs must be a positive number, got ${timeoutMs}`);
  }
  const deviceId = intFrom('deviceId', opts.deviceId ?? env.LOCAL_RANK ?? 0, "pass { deviceId } (the GPU index) or set LOCAL_RANK");
  const base = { backend, rank, worldSize, timeoutMs: Math.round(timeoutMs), deviceId: backend === 'nccl' ? deviceId : 0 } as const;
  if (method.startsWith('file://')) {
    const where = method.slice('file://'.length);
    if (where === '') throw new DistributedError('DIST_INIT', 'initProcessGroup', rank, `initProcessGroup: ${method} names no file; use file:///path/to/rendezvous`);
    return { ...base, store: 'file', where, port: 0 };
  }
  let host: string | undefined;
  let portText: string | undefined;
  if (method === 'env://') {
    host = env.MASTER_ADDR;
    portText = env.MASTER_PORT;
    if (!host) throw new DistributedError('DIST_INIT', 'initProcessGroup', rank, 'initProcessGroup: env:// needs MASTER_ADDR (the address of rank 0) and MASTER_PORT in the environment');
  } else if (method.startsWith('tcp://')) {
    const m = /^tcp:\/\/(\[[^\]]+\]|[^:/]+):(\d+)\/?$/.exec(method);
    if (!m) throw new DistributedError('DIST_INIT', 'initProcessGroup', rank, `initProcessGroup: cannot read ${JSON.stringify(method)}; write tcp://host:port`);
    host = m[1]!.replace(/^\[|\]$/g, '');
    portText = m[2];
  } else {
    throw new DistributedError('DIST_INIT', 'initProcessGroup', rank, `initProcessGroup: initMethod ${JSON.stringify(method)} is not env://, tcp://host:port or file:///path`);
  }
  const port = intFrom('the master port', portText, 'set MASTER_PORT (or write tcp://host:port)');
  if (port < 1 || port > 65535) throw new DistributedError('DIST_INIT', 'initProcessGroup', rank, `initProcessGroup: port ${port} is not in 1..65535`);
  return { ...base, store: 'tcp', where: host, port };
}

/**
 * A native failure as a DistributedError: Gloo's and the stores' messages are sorted into
 * timeouts, lost peers and unsupported ops, keeping the original as `cause` and in the message.
 */
export function distError(op: string, rank: number, e: unknown): DistributedError {
  if (e instanceof DistributedError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  let code: DistCode = 'DIST_FAILED';
  let fix = '';
  if (/not initialized/i.test(msg)) code = 'DIST_NOT_INITIALIZED';
  else if (/timed? ?out|timeout/i.test(msg)) {
    code = 'DIST_TIMEOUT';
    fix = op === 'initProcessGroup'
      ? '; not every rank joined within timeoutMs (are all worldSize ranks started, with the same rendezvous address?)'
      : '; a peer did not take part in time (is every rank running the same collectives? raise timeoutMs for slow steps)';
  } else if (/connection (closed|reset|refused)|closed by peer|broken pipe|end of file|socket|ECONNRESET|read error|write error/i.test(msg)) {
    code = 'DIST_PEER_LOST';
    fix = '; a peer process exited or lost its connection: look at the other ranks\' output';
  } else if (/does not support|not supported|no support/i.test(msg)) code = 'DIST_UNSUPPORTED';
  else if (/not available in this dyad addon/.test(msg)) code = 'DIST_UNAVAILABLE';
  const who = rank >= 0 && !msg.startsWith('rank ') && !msg.startsWith(op) ? `rank ${rank}, ${op}: ` : '';
  return new DistributedError(code, op, rank, `torch.distributed: ${who}${msg}${fix}`, { cause: e });
}

/** The default group, as the addon holds it (one per process: worker threads share it, as in PyTorch). */
function group(op: string): { rank: number; worldSize: number; backend: Backend } {
  const known = N.distInfo() as { rank: number; worldSize: number; backend: Backend } | null;
  if (known === null) {
    throw new DistributedError('DIST_NOT_INITIALIZED', op, -1, `torch.distributed: ${op}: the default process group is not initialized; call dist.initProcessGroup() first`);
  }
  return known;
}

/** True when this addon was built with c10d and the backend (PyTorch's `is_available`, `is_gloo_available`). */
export function isAvailable(backend: Backend = 'gloo'): boolean {
  return N.distAvailable()[backend];
}

/**
 * Joins the default process group (PyTorch's `init_process_group`). Resolves once every rank has
 * joined (the rendezvous waits up to `timeoutMs`).
 */
export async function initProcessGroup(opts: InitProcessGroupOptions = {}): Promise<void> {
  const r = resolveRendezvous(opts);
  const known = N.distInfo();
  if (known !== null) throw new DistributedError('DIST_INIT', 'initProcessGroup', known.rank, 'initProcessGroup: the default process group is already initialized; call dist.destroyProcessGroup() first');
  if (!isAvailable(r.backend)) {
    throw new DistributedError('DIST_UNAVAILABLE', 'initProcessGroup', r.rank, r.backend === 'nccl'
      ? "initProcessGroup: the 'nccl' backend needs dyad's addon built against a CUDA libtorch with CUDA's and NCCL's headers at hand " +
        '(pip install torch with CUDA, then LIBTORCH_USE_PYTORCH=1 npm run build:native; `node native/find-libtorch.mjs` says "nccl": true); ' +
        "this one has none. Use backend: 'gloo'"
      : "initProcessGroup: this dyad addon was built without libtorch's c10d/Gloo headers (on Debian: apt-get install libgloo-dev, then npm run build:native)");
  }
  try {
    await N.distInit(r.backend, r.store, r.where, r.port, r.rank, r.worldSize, r.timeoutMs, r.deviceId);
  } catch (e) {
    const err = distError('initProcessGroup', r.rank, e);
    const code: DistCode = err.code === 'DIST_FAILED' ? 'DIST_INIT' : err.code;
    throw new DistributedError(code, 'initProcessGroup', r.rank, `${err.message} (rendezvous ${r.store === 'tcp' ? `tcp://${r.where}:${r.port}` : `file://${r.where}`}, rank ${r.rank} of ${r.worldSize})`, { cause: e });
  }
}

/** True between initProcessGroup and destroyProcessGroup. */
export function isInitialized(): boolean {
  return N.distInfo() !== null;
}
/** This process's rank (PyTorch's `get_rank`). */
export function getRank(): number {
  return group('getRank').rank;
}
/** The number of processes (PyTorch's `get_world_size`). */
export function getWorldSize(): number {
  return group('getWorldSize').worldSize;
}
export function getBackend(): Backend {
  return group('getBackend').backend;
}

/** Leaves the group and frees its threads and sockets (PyTorch's `destroy_process_group`). */
export function destroyProcessGroup(): void {
  N.distDestroy();
}

async function collective<T>(op: string, run: () => Promise<T>): Promise<T> {
  const g = group(op);
  try {
    return await run();
  } catch (e) {
    throw distError(op, g.rank, e);
  }
}

/** Reduces `t` over every rank, in place (PyTorch's `all_reduce`); resolves to `t`. */
export async function allReduce(t: Tensor, op: ReduceOp = 'sum'): Promise<Tensor> {
  await collective('allReduce', () => N.distAllReduce(t.handle, op));
  return t;
}

/** Every rank's `t`, in rank order (PyTorch's `all_gather`; every rank passes the same shape). */
export async function allGather(t: Tensor): Promise<Tensor[]> {
  const hs = await collective('allGather', () => N.distAllGather(t.handle));
  return hs.map((h) => wrap(h));
}

/** Copies rank `src`'s `t` into every rank's `t`, in place; resolves to `t`. */
export async function broadcast(t: Tensor, src = 0): Promise<Tensor> {
  await collective('broadcast', () => N.distBroadcast(t.handle, src));
  return t;
}

/** Resolves once every rank has called it. */
export async function barrier(): Promise<void> {
  await collective('barrier', () => N.distBarrier());
}

/**
 * `output` = reduction over ranks of each rank's `inputs[rank]` (PyTorch's `reduce_scatter`).
 * Gloo in libtorch 1.13 has no reduce_scatter: this rejects with DIST_UNSUPPORTED there, naming
 * the backend; `allReduce` of the stacked inputs and a slice is the portable way.
 */
export async function reduceScatter(output: Tensor, inputs: Tensor[], op: ReduceOp = 'sum'): Promise<Tensor> {
  const g = group('reduceScatter');
  if (inputs.length !== g.worldSize) {
    throw new DistributedError('DIST_FAILED', 'reduceScatter', g.rank, `reduceScatter: needs one input per rank (${g.worldSize}), got ${inputs.length}`);
  }
  try {
    await collective('reduceScatter', () => N.distReduceScatter(output.handle, inputs.map((t) => t.handle), op));
  } catch (e) {
    if (e instanceof DistributedError && e.code === 'DIST_UNSUPPORTED') {
      throw new DistributedError('DIST_UNSUPPORTED', 'reduceScatter', g.rank,
        `torch.distributed: reduceScatter is not supported by the ${g.backend} backend of this libtorch (${e.message}); ` +
        'use allReduce on the stacked inputs and take this rank\'s slice', { cause: e });
    }
    throw e;
  }
  return output;
}

/**
 * Sum of `t` over every rank, differentiable (its backward all-reduces the gradient): the
 * statistics of SyncBatchNorm. Synchronous, as an op; every rank must call it.
 */
export function allReduceWithGrad(t: Tensor): Tensor {
  const g = group('allReduceWithGrad');
  try {
    return wrap(N.distAllReduceWithGrad(t.handle));
  } catch (e) {
    throw distError('allReduceWithGrad', g.rank, e);
  }
}
