/**
 * The torchrun-style environment a distributed worker reads (PyTorch's `env://` rendezvous,
 * https://pytorch.org/docs/stable/elastic/run.html#environment-variables):
 *
 * | variable           | meaning                                          | required                    |
 * | ------------------ | ------------------------------------------------ | --------------------------- |
 * | `WORLD_SIZE`       | processes in the job, all nodes together         | for a distributed run       |
 * | `RANK`             | this process, 0 .. WORLD_SIZE − 1                | with WORLD_SIZE             |
 * | `LOCAL_RANK`       | this process on its node (picks `cuda:LOCAL_RANK`)| no, default 0               |
 * | `LOCAL_WORLD_SIZE` | processes on this node                           | no, default 1               |
 * | `MASTER_ADDR`      | host of rank 0's TCPStore                        | with WORLD_SIZE > 1         |
 * | `MASTER_PORT`      | its port                                         | with WORLD_SIZE > 1         |
 * | `GROUP_RANK`       | this node's index (torchrun sets it)             | no                          |
 * | `DYAD_DIST_INIT`   | dyad's own: `env://` (default), `tcp://host:port` or `file:///shared/path` | no |
 *
 * `dyad train --nproc-per-node N` (launcher.ts) sets them for its workers; torchrun, Kubernetes'
 * PyTorchJob / JobSet and a Slurm `srun` line (README "Scale out") can set them instead. With
 * `DYAD_DIST_INIT=tcp://...` or `file://...` the MASTER_* pair is not needed.
 */
import { DyadError } from '../errors.js';

/** A misconfigured distributed environment or launch, or a launched worker that failed. */
export class LaunchError extends DyadError<'LAUNCH'> {
  constructor(message: string, options?: { cause?: unknown }) {
    super('LAUNCH', message, options);
    this.name = 'LaunchError';
  }
}

/** The environment of one worker of a distributed job (see the module comment). */
export interface DistributedEnv {
  rank: number;
  worldSize: number;
  localRank: number;
  localWorldSize: number;
  /** The node's index (GROUP_RANK), when the launcher set it. */
  nodeRank?: number;
  /** Host and port of the rendezvous store (from MASTER_* or from a tcp:// init method); absent with file://. */
  masterAddr?: string;
  masterPort?: number;
  /** What `initProcessGroup` takes: 'env://', 'tcp://host:port' or 'file:///path'. */
  initMethod: string;
}

type Env = Record<string, string | undefined>;

const FIX = 'Launch with `dyad train --nproc-per-node N`, or set RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT as torchrun does (README: Scale out).';

function intVar(env: Env, name: string, min: number, fallback?: number): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') {
    if (fallback !== undefined) return fallback;
    throw new LaunchError(`${name} is not set. ${FIX}`);
  }
  if (!/^\s*\d+\s*$/.test(raw) || Number(raw) < min || !Number.isSafeInteger(Number(raw))) {
    throw new LaunchError(`${name}=${JSON.stringify(raw)} is not an integer >= ${min}. ${FIX}`);
  }
  return Number(raw);
}

function port(raw: string, what: string): number {
  const p = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isInteger(p) || p < 1 || p > 65535) throw new LaunchError(`${what}=${JSON.stringify(raw)} is not a port (1-65535). ${FIX}`);
  return p;
}

/** Host and port of a `tcp://host:port` URL ([v6]:port accepted). */
export function parseTcpInit(url: string, what = 'DYAD_DIST_INIT'): { host: string; port: number } {
  const m = /^tcp:\/\/(\[[^\]]+\]|[^:/]+):(\d+)\/?$/.exec(url);
  if (!m) throw new LaunchError(`${what}=${JSON.stringify(url)}: a tcp init method reads tcp://HOST:PORT, e.g. tcp://10.0.0.1:29500`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port: port(m[2]!, what) };
}

/** True when the environment describes a distributed job (WORLD_SIZE or RANK is set). */
export function hasDistributedEnv(env: Env = process.env): boolean {
  return (env.WORLD_SIZE ?? '').trim() !== '' || (env.RANK ?? '').trim() !== '';
}

/**
 * Reads and checks the worker environment; null when neither WORLD_SIZE nor RANK is set (a
 * plain single-process run). Throws `LaunchError` naming the variable and the fix otherwise.
 */
export function readDistributedEnv(env: Env = process.env): DistributedEnv | null {
  if (!hasDistributedEnv(env)) return null;
  const worldSize = intVar(env, 'WORLD_SIZE', 1);
  const rank = intVar(env, 'RANK', 0);
  if (rank >= worldSize) throw new LaunchError(`RANK=${rank} is out of range for WORLD_SIZE=${worldSize}: ranks run 0 .. ${worldSize - 1}. ${FIX}`);
  const localWorldSize = intVar(env, 'LOCAL_WORLD_SIZE', 1, 1);
  const localRank = intVar(env, 'LOCAL_RANK', 0, 0);
  if (env.LOCAL_WORLD_SIZE !== undefined && localRank >= localWorldSize) {
    throw new LaunchError(`LOCAL_RANK=${localRank} is out of range for LOCAL_WORLD_SIZE=${localWorldSize}. ${FIX}`);
  }
  if (localWorldSize > worldSize) throw new LaunchError(`LOCAL_WORLD_SIZE=${localWorldSize} is larger than WORLD_SIZE=${worldSize}. ${FIX}`);
  const out: DistributedEnv = { rank, worldSize, localRank, localWorldSize, initMethod: 'env://' };
  if ((env.GROUP_RANK ?? '').trim() !== '') out.nodeRank = intVar(env, 'GROUP_RANK', 0);

  const init = (env.DYAD_DIST_INIT ?? '').trim();
  if (init !== '' && init !== 'env://') {
    if (init.startsWith('tcp://')) {
      const { host, port: p } = parseTcpInit(init);
      Object.assign(out, { initMethod: init, masterAddr: host, masterPort: p });
      return out;
    }
    if (init.startsWith('file://')) {
      if (init.length <= 'file://'.length) throw new LaunchError(`DYAD_DIST_INIT=${init}: name a file on a filesystem every rank sees, e.g. file:///shared/dyad-rendezvous`);
      out.initMethod = init;
      return out;
    }
    throw new LaunchError(`DYAD_DIST_INIT=${JSON.stringify(init)}: use env:// (MASTER_ADDR and MASTER_PORT), tcp://HOST:PORT or file:///shared/path`);
  }
  const addr = (env.MASTER_ADDR ?? '').trim();
  const rawPort = (env.MASTER_PORT ?? '').trim();
  if (worldSize > 1 || addr !== '' || rawPort !== '') {
    if (addr === '') throw new LaunchError(`MASTER_ADDR is not set: with WORLD_SIZE=${worldSize} every rank needs the host of rank 0 (e.g. MASTER_ADDR=127.0.0.1 on one machine). ${FIX}`);
    if (rawPort === '') throw new LaunchError(`MASTER_PORT is not set: with WORLD_SIZE=${worldSize} every rank needs a free TCP port on MASTER_ADDR (e.g. MASTER_PORT=29500). ${FIX}`);
    out.masterAddr = addr;
    out.masterPort = port(rawPort, 'MASTER_PORT');
  }
  return out;
}
