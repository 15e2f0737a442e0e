/**
 * Starts the ranks of a distributed test: W node processes running
 * test/fixtures/distributed_worker.js (one scenario each), Gloo over 127.0.0.1. Resolves to each
 * rank's exit code, parsed JSON result (its last stdout line) and stderr; kills them all after
 * `killAfterMs`, so a hang fails the test instead of stalling the suite.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const WORKER = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'distributed_worker.js');

export { freePort } from '../../src/distributed/launcher.js';

export interface RankResult<T = Record<string, unknown>> {
  rank: number;
  code: number | null;
  out: T | null;
  stderr: string;
  ms: number;
}

export async function runRanks<T = Record<string, unknown>>(
  scenario: string, initMethod: string, o: { world?: number; arg?: string; killAfterMs?: number } = {},
): Promise<RankResult<T>[]> {
  const world = o.world ?? 2;
  const t0 = Date.now();
  const runs = Array.from({ length: world }, (_, rank) => new Promise<RankResult<T>>((resolve) => {
    const args = [WORKER, scenario, String(rank), String(world), initMethod, ...(o.arg === undefined ? [] : [o.arg])];
    const child = spawn(process.execPath, args, { env: { ...process.env, OMP_NUM_THREADS: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const killer = setTimeout(() => child.kill('SIGKILL'), o.killAfterMs ?? 50_000);
    child.on('close', (code) => {
      clearTimeout(killer);
      const line = stdout.trim().split('\n').filter((l) => l.startsWith('{')).pop();
      resolve({ rank, code, out: line ? (JSON.parse(line) as T) : null, stderr, ms: Date.now() - t0 });
    });
  }));
  return Promise.all(runs);
}

/** Largest absolute difference of two equally long number arrays. */
export function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}
