/**
 * Loads dyad's libtorch addon (`native/build/Release/dyad.node` in a clone, the cache folder in an
 * installed package: see addon.ts). The addon is context-aware, so it loads in the main thread and
 * in every worker thread.
 */
import { createRequire } from 'node:module';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DyadError, TorchError } from './errors.js';
import type { NativeOps } from './native_ops.js';
import { packageRoot } from './package_root.js';
import { buildTarget, decideAddon, dyadCacheRoot, gatherAddonState, type AddonMeta } from './addon.js';

export type { Handle, NativeOps } from './native_ops.js';

export { packageRoot };

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

/**
 * Picks the addon (addon.ts: DYAD_ADDON, the package's native/build, the cache folder), builds one
 * into the cache folder when none fits the libtorch asked for, and loads it.
 */
function load(): NativeOps {
  preferShortSpinOpenMP();
  preferModernOpenBLASKernels();
  const root = packageRoot();
  let decision = decideAddon(gatherAddonState(root));
  if (decision.kind === 'build') {
    buildAddonNow(root, decision.reason);
    decision = decideAddon({ ...gatherAddonState(root), autoBuild: false });
  }
  if (decision.kind === 'error') throw new DyadError('ADDON', decision.message);
  if (decision.kind !== 'load') throw new DyadError('ADDON', 'dyad: internal error: no addon was chosen');
  const file = decision.file;
  const require = createRequire(import.meta.url);
  try {
    return require(file) as NativeOps;
  } catch (e) {
    let built = '';
    try {
      const rec = (JSON.parse(readFileSync(`${file}.json`, 'utf8')) as AddonMeta).libtorch;
      built = ` It was built against libtorch ${rec.version} in ${rec.libdir} (${rec.how}).`;
    } catch { /* no record */ }
    throw new DyadError('ADDON',
      `dyad: cannot load the libtorch addon ${file}: ${(e as Error).message}.${built} ` +
        'If libtorch moved or was removed, reinstall it (apt-get install libtorch1.13) or rebuild with ' +
        '`npx dyad build-native` (in a clone: `npm run build:native -- --force`).',
      { cause: e },
    );
  }
}

/** Runs native/build-addon.mjs synchronously (its progress goes to stderr); throws its error. */
function buildAddonNow(root: string, reason: string): void {
  const target = buildTarget(root);
  if (target === null) {
    throw new DyadError('ADDON', `dyad: ${reason}, and neither the cache folder (${dyadCacheRoot()}: set DYAD_CACHE) ` +
      `nor ${path.join(root, 'native', 'build')} is writable to build one. Run \`npx dyad build-native\` with DYAD_CACHE set to a writable folder.`);
  }
  process.stderr.write(`dyad: ${reason}\n`);
  const errorFile = path.join(os.tmpdir(), `dyad-addon-error-${process.pid}.txt`);
  const r = spawnSync(process.execPath, [path.join(root, 'native', 'build-addon.mjs'), ...target, '--error-file', errorFile], { stdio: ['ignore', 2, 2] });
  if (r.status !== 0) {
    let why = `exit code ${r.status ?? r.signal}`;
    if (existsSync(errorFile)) {
      why = readFileSync(errorFile, 'utf8');
      rmSync(errorFile, { force: true });
    }
    throw new DyadError('ADDON', `dyad: the libtorch addon could not be built: ${why}`);
  }
}

/** The addon, typed by `NativeOps` (see native_ops.ts). */
export const N: NativeOps = load();
N.setErrorClass(TorchError);
