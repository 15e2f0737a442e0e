/** Shared helpers for benchmarks: machine info, timing, and running the Python references. */
import os from 'node:os';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { envSetByDyad } from '../src/torch/native.js';

export const num = (v: unknown, d: number): number => (v === undefined || v === true ? d : Number(v));

export function machine(): Record<string, unknown> {
  return { date: new Date().toISOString(), cpus: os.cpus().length, cpu: os.cpus()[0]?.model ?? '?', load1: Number(os.loadavg()[0]!.toFixed(2)),
    dyad_env: { OMP_WAIT_POLICY: process.env.OMP_WAIT_POLICY ?? null, GOMP_SPINCOUNT: process.env.GOMP_SPINCOUNT ?? null, OPENBLAS_CORETYPE: process.env.OPENBLAS_CORETYPE ?? null } };
}

/** The Python that has torch (Debian's /usr/bin/python3), or null. */
export function torchPython(): string | null {
  for (const py of ['/usr/bin/python3', 'python3']) {
    const r = spawnSync(py, ['-c', 'import torch'], { encoding: 'utf8' });
    if (r.status === 0) return py;
  }
  return null;
}

/**
 * Which environment a PyTorch reference runs in: 'default' is this process's less what dyad set
 * for libgomp and OpenBLAS (native.ts: the OpenMP spin count, the OpenBLAS kernels), so PyTorch
 * runs as it does out of the box; 'dyad' keeps them, for the like-for-like comparison.
 */
export type ReferenceEnv = 'default' | 'dyad';

export function referenceEnv(which: ReferenceEnv = 'default'): NodeJS.ProcessEnv {
  const env = { ...process.env };
  if (which === 'default') for (const k of envSetByDyad) delete env[k];
  return env;
}

/** Runs one of ../shared/bench/*.py (or a copy under bench/reference/) and returns its stdout. */
export function runReference(script: string, args: (string | number)[], which: ReferenceEnv = 'default'): string | null {
  const py = torchPython();
  const candidates = [path.resolve('..', 'shared', 'bench', script), path.resolve('bench', 'reference', script)];
  const file = candidates.find((f) => existsSync(f));
  if (py === null || file === undefined) return null;
  const r = spawnSync(py, [file, ...args.map(String)], { encoding: 'utf8', env: referenceEnv(which) });
  if (r.status !== 0) throw new Error(`${script} failed: ${r.stderr}`);
  return r.stdout.trim();
}

export function emit(o: Record<string, unknown>): void {
  console.log(JSON.stringify(o));
}
