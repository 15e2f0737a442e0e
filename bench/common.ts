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

/** The Python that has torch ($PYTHON, else Debian's /usr/bin/python3, else python3), with CUDA when `cuda`; or null. */
export function torchPython(cuda = false): string | null {
  const check = cuda ? 'import torch; assert torch.cuda.is_available()' : 'import torch';
  for (const py of [process.env.PYTHON, '/usr/bin/python3', 'python3'].filter((p): p is string => Boolean(p))) {
    const r = spawnSync(py, ['-c', check], { encoding: 'utf8' });
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
export function runReference(script: string, args: (string | number)[], which: ReferenceEnv = 'default', device = 'cpu'): string | null {
  const py = torchPython(device !== 'cpu');
  const find = (name: string): string | undefined => [path.resolve('..', 'shared', 'bench', name), path.resolve('bench', 'reference', name)].find((f) => existsSync(f));
  const file = find(script);
  if (py === null || file === undefined) return null;
  // on a GPU: the same script with every tensor created there (reference/on_device.py)
  const argv = device === 'cpu' ? [file, ...args.map(String)] : [find('on_device.py')!, device, file, ...args.map(String)];
  const r = spawnSync(py, argv, { encoding: 'utf8', env: referenceEnv(which) });
  if (r.status !== 0) throw new Error(`${script} failed: ${r.stderr}`);
  return r.stdout.trim();
}

export function emit(o: Record<string, unknown>): void {
  console.log(JSON.stringify(o));
}
