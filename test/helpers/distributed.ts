/**
 * Starts the ranks of a distributed test: W node processes running
 * test/fixtures/distributed_worker.js (one scenario each), Gloo over 127.0.0.1. Resolves to each
 * rank's exit code, parsed JSON result (its last stdout line) and stderr; kills them all after
 * `killAfterMs`, so a hang fails the test instead of stalling the suite.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Tensor } from '../../src/torch/index.js';

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

/**
 * Each rank's gradients of its rows of the two views (`out.g0`, `out.g1`) equal W × the
 * single-process gradients `z0.grad` / `z1.grad` over the concatenated batch (DDP divides by W), within 1e-5.
 */
export function assertRankGradients(results: { rank: number; out?: { g0: number[]; g1: number[] } | null }[], z0: Tensor, z1: Tensor, w: number): void {
  const per = z0.size(0) / w;
  for (const r of results) {
    const g0 = Array.from(z0.grad!.narrow(0, r.rank * per, per).mul(w).contiguous().toFloat64Array());
    const g1 = Array.from(z1.grad!.narrow(0, r.rank * per, per).mul(w).contiguous().toFloat64Array());
    assert.ok(maxDiff(r.out!.g0, g0) < 1e-5, `rank ${r.rank} grad of view 0 differs by ${maxDiff(r.out!.g0, g0)}`);
    assert.ok(maxDiff(r.out!.g1, g1) < 1e-5, `rank ${r.rank} grad of view 1 differs by ${maxDiff(r.out!.g1, g1)}`);
  }
}
