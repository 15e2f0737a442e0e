/**
 * The launcher behind `dyad train --nproc-per-node N [--nnodes M --node-rank R --master-addr A
 * --master-port P]`, as `torchrun` (https://pytorch.org/docs/stable/elastic/run.html):
 *
 * - spawns N workers on this node — by default the same command line without the launcher flags
 *   (`node bin/dyad.js train ...`) — each with the torchrun environment: RANK = R·N + local rank,
 *   WORLD_SIZE = M·N, LOCAL_RANK, LOCAL_WORLD_SIZE = N, GROUP_RANK = R, MASTER_ADDR, MASTER_PORT
 *   (`env.ts` reads them back in the worker);
 * - divides the cores: OMP_NUM_THREADS = max(1, ⌊cores / N⌋) unless the caller set it (torchrun
 *   sets 1; libtorch's intra-op pool, which dyad sizes from OMP_NUM_THREADS, would otherwise
 *   start one thread per core in every worker and oversubscribe the machine N times);
 * - on one node without `--master-port`, picks a free port on 127.0.0.1;
 * - prefixes every line a worker prints with `[rank r] ` (stdout and stderr kept apart);
 * - forwards SIGINT and SIGTERM to the workers;
 * - when a worker exits non-zero or is killed, sends SIGTERM to the others, SIGKILL after
 *   `graceMs`, and fails with a `LaunchError` naming the rank, its pid and its exit code or
 *   signal — the others stop within the grace period instead of hanging in a collective.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import os from 'node:os';
import type { Writable } from 'node:stream';
import { LaunchError } from './env.js';

export interface LaunchOptions {
  /** Workers on this node (torchrun's `--nproc-per-node`). */
  nprocPerNode: number;
  /** Nodes in the job (default 1). */
  nnodes?: number;
  /** This node's index, 0 .. nnodes − 1 (default 0). */
  nodeRank?: number;
  /** Host of rank 0 (default 127.0.0.1; required with nnodes > 1). */
  masterAddr?: string;
  /** Port of rank 0's store (default: a free port with one node, 29500 with several, as torchrun). */
  masterPort?: number;
  /** The worker program (default: this Node binary) and its arguments. */
  command?: string;
  args: string[];
  /** The environment the workers start from (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** After a worker fails or a signal arrives: ms the others get between SIGTERM and SIGKILL (default 5000). */
  graceMs?: number;
  /** Where prefixed worker output goes (default process.stdout / process.stderr). */
  stdout?: Writable;
  stderr?: Writable;
  /** Forward this process's SIGINT and SIGTERM to the workers (default true). */
  forwardSignals?: boolean;
  /** Called once the workers are spawned (tests). */
  onSpawn?(workers: { rank: number; pid: number }[]): void;
}

export interface WorkerExit {
  rank: number;
  localRank: number;
  pid: number;
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** The launch failed: a worker's exit, or a signal that stopped the job (`signal`). */
export class WorkerFailedError extends LaunchError {
  constructor(message: string, readonly exits: WorkerExit[], readonly failed: WorkerExit | null, readonly signal: NodeJS.Signals | null) {
    super(message);
    this.name = 'WorkerFailedError';
  }
}

/** A TCP port that was free on `host` a moment ago (the OS's choice, as torchrun's `_get_free_port`). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, host, () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** Writes each complete line of a stream to `out` with `prefix`; the rest when the stream ends. */
function prefixLines(src: NodeJS.ReadableStream, out: Writable, prefix: string): void {
  let rest = '';
  src.setEncoding('utf8');
  src.on('data', (chunk: string) => {
    const parts = (rest + chunk).split('\n');
    rest = parts.pop()!;
    if (parts.length) out.write(parts.map((l) => `${prefix}${l.replace(/\r$/, '').replace(/.*\r/, '')}\n`).join(''));
  });
  src.on('end', () => {
    if (rest !== '') out.write(`${prefix}${rest}\n`);
    rest = '';
  });
}

const posInt = (name: string, v: unknown, min: number): number => {
  if (!Number.isSafeInteger(v) || (v as number) < min) throw new LaunchError(`${name} must be an integer >= ${min}, got ${String(v)}`);
  return v as number;
};

const describeExit = (e: WorkerExit): string => (e.signal ? `was killed by ${e.signal}` : `exited with code ${e.code}`);

/** Spawns and supervises the workers of this node (see the module comment); resolves when all exit 0. */
export async function launch(o: LaunchOptions): Promise<WorkerExit[]> {
  const nproc = posInt('--nproc-per-node', o.nprocPerNode, 1);
  const nnodes = posInt('--nnodes', o.nnodes ?? 1, 1);
  const nodeRank = posInt('--node-rank', o.nodeRank ?? 0, 0);
  if (nodeRank >= nnodes) throw new LaunchError(`--node-rank ${nodeRank} is out of range for --nnodes ${nnodes}: nodes are numbered 0 .. ${nnodes - 1}`);
  if (nnodes > 1 && !o.masterAddr) throw new LaunchError(`--nnodes ${nnodes}: pass --master-addr, the host of node 0 that every node can reach (and the same --master-port on every node)`);
  const masterAddr = o.masterAddr ?? '127.0.0.1';
  const masterPort = o.masterPort !== undefined ? posInt('--master-port', o.masterPort, 1) : nnodes === 1 ? await freePort(masterAddr) : 29500;
  if (masterPort > 65535) throw new LaunchError(`--master-port ${masterPort} is not a port (1-65535)`);
  const graceMs = o.graceMs ?? 5000;
  const stdout = o.stdout ?? process.stdout;
  const stderr = o.stderr ?? process.stderr;
  const base = o.env ?? process.env;
  const threads = base.OMP_NUM_THREADS ?? String(Math.max(1, Math.floor(os.availableParallelism() / nproc)));
  const worldSize = nnodes * nproc;

  const children: { child: ChildProcess; rank: number; localRank: number; exit: WorkerExit | null }[] = [];
  let failed: WorkerExit | null = null;
  let signalled: NodeJS.Signals | null = null;
  let killTimer: NodeJS.Timeout | null = null;

  const stopAll = (sig: NodeJS.Signals): void => {
    for (const c of children) if (c.exit === null) c.child.kill(sig);
    killTimer ??= setTimeout(() => {
      for (const c of children) if (c.exit === null) c.child.kill('SIGKILL');
    }, graceMs);
  };
  const onSignal = (sig: NodeJS.Signals): void => {
    signalled ??= sig;
    stderr.write(`dyad launcher: ${sig}: stopping ${children.filter((c) => c.exit === null).length} worker(s)\n`);
    stopAll(sig);
  };
  const forward = o.forwardSignals ?? true;
  if (forward) {
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }

  try {
    const exits = await new Promise<WorkerExit[]>((resolve, reject) => {
      let open = nproc;
      for (let localRank = 0; localRank < nproc; localRank++) {
        const rank = nodeRank * nproc + localRank;
        const env: NodeJS.ProcessEnv = {
          ...base, RANK: String(rank), WORLD_SIZE: String(worldSize), LOCAL_RANK: String(localRank), LOCAL_WORLD_SIZE: String(nproc),
          GROUP_RANK: String(nodeRank), MASTER_ADDR: masterAddr, MASTER_PORT: String(masterPort), OMP_NUM_THREADS: threads,
        };
        const child = spawn(o.command ?? process.execPath, o.args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
        const slot = { child, rank, localRank, exit: null as WorkerExit | null };
        children.push(slot);
        prefixLines(child.stdout!, stdout, `[rank ${rank}] `);
        prefixLines(child.stderr!, stderr, `[rank ${rank}] `);
        child.on('error', (e) => {
          stopAll('SIGTERM');
          reject(new LaunchError(`cannot start worker rank ${rank} (${o.command ?? process.execPath}): ${e.message}`, { cause: e }));
        });
        child.on('close', (code, signal) => {
          slot.exit = { rank, localRank, pid: child.pid ?? -1, code, signal };
          if ((code !== 0 || signal !== null) && failed === null && signalled === null) {
            failed = slot.exit;
            if (children.some((c) => c.exit === null)) {
              stderr.write(`dyad launcher: worker rank ${rank} ${describeExit(slot.exit)}; stopping the other workers\n`);
            }
            stopAll('SIGTERM');
          }
          if (--open === 0) resolve(children.map((c) => c.exit!));
        });
      }
      o.onSpawn?.(children.map((c) => ({ rank: c.rank, pid: c.child.pid ?? -1 })));
    });
    if (failed !== null) {
      const f: WorkerExit = failed;
      const others = exits.filter((e) => e !== f && (e.code !== 0 || e.signal !== null)).length;
      throw new WorkerFailedError(`worker rank ${f.rank} (local rank ${f.localRank}, pid ${f.pid}) ${describeExit(f)}` +
        (nproc > 1 ? `; ${others} other worker(s) were stopped` : '') + `. Its output is above, prefixed [rank ${f.rank}].`, exits, f, null);
    }
    if (signalled !== null) throw new WorkerFailedError(`interrupted by ${signalled}: the ${nproc} worker(s) were stopped`, exits, null, signalled);
    return exits;
  } finally {
    if (killTimer) clearTimeout(killTimer);
    if (forward) {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  }
}

/** The launcher flags of `dyad train` (each takes a value). */
export const LAUNCH_FLAGS = ['--nproc-per-node', '--nnodes', '--node-rank', '--master-addr', '--master-port'] as const;

/** `argv` without the launcher flags and their values (`--flag v` and `--flag=v`): the workers' arguments. */
export function workerArgv(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      out.push(...argv.slice(i));
      break;
    }
    if ((LAUNCH_FLAGS as readonly string[]).includes(a)) i++;
    else if (!LAUNCH_FLAGS.some((f) => a.startsWith(`${f}=`))) out.push(a);
  }
  return out;
}

/** The parsed launcher flags of `dyad train`. */
export interface LaunchFlags {
  nprocPerNode?: number;
  nnodes?: number;
  nodeRank?: number;
  masterAddr?: string;
  masterPort?: number;
}

/**
 * `dyad train --nproc-per-node N ...`: runs `node <this script> <argv without the launcher
 * flags>` as the workers of this node. Returns false when `--nproc-per-node` was not given (the
 * caller trains in this process).
 */
export async function launchFromCli(flags: LaunchFlags, argv: string[] = process.argv): Promise<boolean> {
  if (flags.nprocPerNode === undefined) {
    const stray = LAUNCH_FLAGS.find((f) => argv.some((a) => a === f || a.startsWith(`${f}=`)));
    if (stray) throw new LaunchError(`${stray} needs --nproc-per-node N (the workers to start on this node)`);
    return false;
  }
  const args = [...process.execArgv, argv[1]!, ...workerArgv(argv.slice(2))];
  const opts: LaunchOptions = { nprocPerNode: flags.nprocPerNode, args };
  if (flags.nnodes !== undefined) opts.nnodes = flags.nnodes;
  if (flags.nodeRank !== undefined) opts.nodeRank = flags.nodeRank;
  if (flags.masterAddr !== undefined) opts.masterAddr = flags.masterAddr;
  if (flags.masterPort !== undefined) opts.masterPort = flags.masterPort;
  await launch(opts);
  return true;
}
