/**
 * Loads dyad's libtorch addon (`native/build/Release/dyad.node`). The addon is
 * context-aware, so it loads in the main thread and in every worker thread.
 */
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TorchError } from './errors.js';

/** An opaque tensor handle (a type-tagged object that wraps the native tensor; see native/src/handle.h). */
export type Handle = { readonly __handle: unique symbol };

/** The addon's exports: the op table plus core functions. Arguments are positional. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type NativeFn = (...args: any[]) => any;
export interface Native {
  [op: string]: NativeFn | string[];
  opNames: string[];
}

/** The package root: the nearest folder above this file that holds package.json. */
export function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'native'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error('dyad: cannot find the package root (package.json with native/) above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}

/**
 * OpenMP's default makes idle worker threads spin for GOMP_SPINCOUNT = 300,000 rounds (a
 * millisecond or more) before sleeping. When another process holds a core (a shared CI machine, a
 * data-loading worker), every parallel op then waits for a descheduled spinner: measured here, a
 * training step ran 3–5× slower, and small ops 10–60× slower. Fully passive waiting fixes that but
 * costs ~15% on a quiet machine in op-dense passes (CLIP embedding), where each op pays a thread
 * wake-up. dyad therefore spins briefly (GOMP_SPINCOUNT 10,000) and then sleeps, unless the user
 * chose a policy (OMP_WAIT_POLICY or GOMP_SPINCOUNT). Measured (BENCHMARKS.md, train-step): with
 * one core taken by another process 409 img/s against 385 passive and 279 with libgomp's default;
 * quiet, the same as both. It must be set before libtorch (and its libgomp) loads.
 */
function preferShortSpinOpenMP(): void {
  if (process.env.OMP_WAIT_POLICY === undefined && process.env.GOMP_SPINCOUNT === undefined) {
    process.env.GOMP_SPINCOUNT = '10000';
    envSetByDyad.push('GOMP_SPINCOUNT');
  }
}

/**
 * OpenBLAS (Debian's libtorch does its matrix products with it) picks its kernels by CPU model at
 * load time, and a version older than the CPU does not know the model: Debian 12's OpenBLAS 0.3.21
 * takes the Xeons of 2023–24 (family 6, model 207) for a 2004 "Prescott" and runs its SSE3
 * kernels. Measured here: a [1600, 768] × [768, 3072] product at 15.6 GFLOP/s instead of 114 with
 * the AVX-512 kernels (7×), which is most of the time of CLIP, ViT and the kNN search. So on an
 * Intel CPU with AVX-512 (or AVX2) dyad asks for the SkylakeX (or Haswell) kernels, which every
 * such CPU runs, unless the user chose OPENBLAS_CORETYPE. A build of OpenBLAS for one target
 * ignores the variable, as does MKL. It must be set before libtorch (and OpenBLAS) loads.
 */
export function openBLASCoreFor(cpuinfo: string): 'SkylakeX' | 'Haswell' | null {
  if (!/^vendor_id\s*:\s*GenuineIntel/m.test(cpuinfo)) return null;
  const flags = new Set(/^flags\s*:(.*)$/m.exec(cpuinfo)?.[1]?.trim().split(/\s+/) ?? []);
  if (['avx512f', 'avx512bw', 'avx512dq', 'avx512vl', 'avx512cd'].every((f) => flags.has(f))) return 'SkylakeX';
  if (['avx2', 'fma'].every((f) => flags.has(f))) return 'Haswell';
  return null;
}

function preferModernOpenBLASKernels(): void {
  if (process.env.OPENBLAS_CORETYPE !== undefined || process.platform !== 'linux') return;
  let info: string;
  try {
    info = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return;
  }
  const core = openBLASCoreFor(info);
  if (core === null) return;
  process.env.OPENBLAS_CORETYPE = core;
  envSetByDyad.push('OPENBLAS_CORETYPE');
}

/**
 * Environment variables dyad set for libgomp and OpenBLAS (not the user's): the benchmarks start
 * PyTorch's reference once without them, as PyTorch runs by default, and once with them.
 */
export const envSetByDyad: string[] = [];

function load(): Native {
  preferShortSpinOpenMP();
  preferModernOpenBLASKernels();
  const file = process.env.DYAD_ADDON ?? path.join(packageRoot(), 'native', 'build', 'Release', 'dyad.node');
  if (!existsSync(file)) {
    throw new Error(
      `dyad: the libtorch addon is not built (${file} is missing). Run \`npm run build:native\` ` +
        '(needs libtorch: apt-get install libtorch-dev libopenblas0-openmp, or LIBTORCH=/path, or LIBTORCH_USE_PYTORCH=1).',
    );
  }
  const require = createRequire(import.meta.url);
  try {
    return require(file) as Native;
  } catch (e) {
    throw new Error(
      `dyad: cannot load the libtorch addon ${file}: ${(e as Error).message}. ` +
        'If libtorch moved or was removed, reinstall it (apt-get install libtorch1.13) or rebuild with `npm run build:native -- --force`.',
    );
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const N: Record<string, NativeFn> = load() as any;
N.setErrorClass!(TorchError);
