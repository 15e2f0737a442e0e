/** fp32 2048² matmul GFLOP/s: shows whether the fast BLAS (OpenBLAS) is in use. */
import * as torch from '../src/torch/index.js';
import { readFileSync } from 'node:fs';
import { emit, machine, num } from './common.js';

export async function main(args: Record<string, unknown>): Promise<void> {
  const n = num(args.size, 2048);
  const reps = num(args.reps, 10);
  if (args.threads !== undefined) torch.setNumThreads(num(args.threads, 2));
  const a = torch.randn([n, n]);
  const b = torch.randn([n, n]);
  torch.scope(() => a.mm(b)); // warm-up
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) torch.scope(() => void a.mm(b));
  const s = (performance.now() - t0) / 1000 / reps;
  // The BLAS library actually mapped into this process (Debian switches it with alternatives).
  const maps = readFileSync('/proc/self/maps', 'utf8');
  const blas = /\/[^\s]*lib(openblas\w*|blis\w*|mkl\w*|blas)\.so[^\s]*/.exec(maps)?.[0] ?? 'unknown';
  emit({ bench: 'matmul', size: n, threads: torch.getNumThreads(), gflops: Number(((2 * n ** 3) / s / 1e9).toFixed(1)), blas, ...machine() });
}
