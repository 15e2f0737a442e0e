// Which libtorch addon to load (src/torch/addon.ts): the pure decision over candidates and their
// records, its messages, and the environment rules (requested libtorch, cache folder). The
// installed-package path (build on first import, the three-way libtorch message) is exercised
// end to end in package.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  decideAddon, addonMismatch, requestedLibtorch, dyadCacheRoot, type AddonCandidate, type AddonMeta, type AddonWant,
} from '../src/torch/addon.js';
import { packageRoot } from '../src/torch/package_root.js';
import { tempDir } from './helpers/tmp.js';

const FP = { file: '/usr/lib/x86_64-linux-gnu/libtorch_cpu.so.1.13.0', size: 119940888, mtimeMs: 1678814497000 };
const want: AddonWant = { requested: 'system', nodeAbi: '115', dyadVersion: '0.1.0', platform: 'linux-x64' };

function meta(over: Partial<AddonMeta['libtorch']> = {}, top: Partial<AddonMeta> = {}): AddonMeta {
  return {
    dyad: '0.1.0', node_abi: '115', napi: 8, platform: 'linux-x64', built: '2026-01-01T00:00:00Z',
    libtorch: { requested: 'system', how: 'system install', libdir: '/usr/lib/x86_64-linux-gnu', version: '1.13.0', fingerprint: FP, ...over },
    ...top,
  };
}

function cand(file: string, m: AddonMeta | null, now = FP, where: AddonCandidate['where'] = 'cache', exists = true): AddonCandidate {
  return { file, where, exists, meta: m, libtorchNow: now };
}

test('a candidate whose record fits is loaded; the package build comes first', () => {
  const d = decideAddon({ candidates: [cand('/pkg/dyad.node', meta(), FP, 'package'), cand('/cache/a/dyad.node', meta())], want, autoBuild: true });
  assert.deepEqual(d, { kind: 'load', file: '/pkg/dyad.node', checked: true });
  const d2 = decideAddon({ candidates: [cand('/pkg/dyad.node', null, FP, 'package', false), cand('/cache/a/dyad.node', meta())], want, autoBuild: true });
  assert.deepEqual(d2, { kind: 'load', file: '/cache/a/dyad.node', checked: true });
});

test('an addon built for another libtorch is explained, and a fitting one is built (or asked for)', () => {
  const upgraded = { file: '/usr/lib/x86_64-linux-gnu/libtorch_cpu.so.2.1.0', size: 5, mtimeMs: 9 };
  const stale = cand('/cache/a/dyad.node', meta(), upgraded);
  assert.match(addonMismatch(stale, want)!, /built against libtorch 1\.13\.0 in \/usr\/lib\/x86_64-linux-gnu \(system install\), but that libtorch changed: .*libtorch_cpu\.so\.1\.13\.0 is now .*libtorch_cpu\.so\.2\.1\.0/);
  const d = decideAddon({ candidates: [stale], want, autoBuild: true });
  assert.equal(d.kind, 'build');
  assert.match((d as { reason: string }).reason, /libtorch changed/);
  const e = decideAddon({ candidates: [stale], want, autoBuild: false });
  assert.equal(e.kind, 'error');
  assert.match((e as { message: string }).message, /not built for this setup: .*libtorch changed.*npx dyad build-native/);

  const gone = cand('/cache/a/dyad.node', meta(), null as unknown as typeof FP);
  assert.match(addonMismatch(gone, want)!, /no longer there \(.*libtorch_cpu\.so\.1\.13\.0 is gone\)/);
  const replaced = cand('/cache/a/dyad.node', meta(), { ...FP, size: FP.size + 1 });
  assert.match(addonMismatch(replaced, want)!, /has been replaced since/);
  const other = cand('/cache/a/dyad.node', meta({ requested: 'LIBTORCH=/opt/libtorch' }));
  assert.match(addonMismatch(other, want)!, /built for LIBTORCH=\/opt\/libtorch, and system is asked for now/);
  assert.match(addonMismatch(cand('/x', meta({}, { node_abi: '108' })), want)!, /Node ABI 108, this Node is 115/);
  assert.match(addonMismatch(cand('/x', meta({}, { dyad: '0.0.9' })), want)!, /dyad 0\.0\.9, this is dyad 0\.1\.0/);
  assert.match(addonMismatch(cand('/x', meta({}, { platform: 'darwin-arm64' })), want)!, /built for darwin-arm64, this is linux-x64/);
  assert.equal(addonMismatch(cand('/x', meta()), want), null);
});

test('nothing built: build (or an error naming the command); a package build without a record loads unchecked', () => {
  assert.deepEqual(decideAddon({ candidates: [cand('/pkg/dyad.node', null, FP, 'package', false)], want, autoBuild: true }),
    { kind: 'build', reason: 'no libtorch addon is built yet for system' });
  assert.deepEqual(decideAddon({ candidates: [cand('/pkg/dyad.node', null, FP, 'package')], want, autoBuild: true }),
    { kind: 'load', file: '/pkg/dyad.node', checked: false });
  const e = decideAddon({ candidates: [], want, autoBuild: false });
  assert.equal(e.kind, 'error');
  assert.match((e as { message: string }).message, /no libtorch addon is built yet for system\. Build one for it with `npx dyad build-native` \(in a clone: `npm run build:native`\)/);
});

test('DYAD_ADDON is loaded when it fits, and explained when missing or built for another libtorch, never rebuilt', () => {
  const ok = decideAddon({ override: cand('/my/dyad.node', meta(), FP, 'DYAD_ADDON'), candidates: [], want, autoBuild: true });
  assert.deepEqual(ok, { kind: 'load', file: '/my/dyad.node', checked: true });
  const missing = decideAddon({ override: cand('/my/dyad.node', null, FP, 'DYAD_ADDON', false), candidates: [], want, autoBuild: true });
  assert.equal(missing.kind, 'error');
  assert.match((missing as { message: string }).message, /addon is not built \(\/my\/dyad\.node is missing; it is named by DYAD_ADDON\).*npm run build:native/);
  const wrong = decideAddon({ override: cand('/my/dyad.node', meta(), { ...FP, file: '/opt/lib/libtorch_cpu.so' }, 'DYAD_ADDON'), candidates: [], want, autoBuild: true });
  assert.equal(wrong.kind, 'error');
  assert.match((wrong as { message: string }).message, /DYAD_ADDON does not fit: .*libtorch changed/);
});

test('the requested libtorch and the cache folder follow the environment (and agree with native/find-libtorch.mjs)', () => {
  assert.equal(requestedLibtorch({}), 'system');
  assert.equal(requestedLibtorch({ LIBTORCH: '/opt/lt', LIBTORCH_USE_PYTORCH: '1' }), 'LIBTORCH=/opt/lt');
  assert.equal(requestedLibtorch({ LIBTORCH_USE_PYTORCH: '1', PYTHON: '/venv/bin/python' }), 'LIBTORCH_USE_PYTORCH=1 (/venv/bin/python)');
  assert.equal(dyadCacheRoot({ DYAD_CACHE: '/c/d', XDG_CACHE_HOME: '/x' }), '/c/d');
  assert.equal(dyadCacheRoot({ XDG_CACHE_HOME: '/x' }), '/x/dyad');
  assert.match(dyadCacheRoot({}), /\.cache\/dyad$/);
  const mjs = path.join(packageRoot(), 'native', 'find-libtorch.mjs');
  for (const env of [{}, { LIBTORCH: '/opt/lt' }, { LIBTORCH_USE_PYTORCH: '1', PYTHON: '/venv/bin/python' }] as NodeJS.ProcessEnv[]) {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e',
      `import(${JSON.stringify(mjs)}).then((m) => console.log(m.requestedLibtorch(${JSON.stringify(env)})))`], { encoding: 'utf8' });
    assert.equal(r.stdout.trim(), requestedLibtorch(env));
  }
});

test("the nccl backend is built only for a CUDA libtorch with CUDA's and NCCL's headers found (find-libtorch.mjs ncclIncludes)", async () => {
  const mjs = path.join(packageRoot(), 'native', 'find-libtorch.mjs');
  const { ncclIncludes } = (await import(mjs)) as { ncclIncludes(r: { include: string[]; libdir: string }, env: NodeJS.ProcessEnv): string[] | null };
  const root = tempDir('nccl-detect');
  const touch = (...p: string[]): string => {
    const f = path.join(root, ...p);
    mkdirSync(path.dirname(f), { recursive: true });
    writeFileSync(f, '');
    return path.dirname(f);
  };
  // a pip torch: site-packages/torch/{include,lib}, NVIDIA's wheels beside it
  const include = path.join(root, 'site-packages', 'torch', 'include');
  const libdir = path.join(root, 'site-packages', 'torch', 'lib');
  const r = { include: [include], libdir };
  touch('site-packages', 'torch', 'lib', 'libtorch_cpu.so');
  touch('site-packages', 'torch', 'include', 'torch', 'csrc', 'distributed', 'c10d', 'ProcessGroupNCCL.hpp');
  const nccl = touch('site-packages', 'nvidia', 'nccl', 'include', 'nccl.h');
  const cudart = touch('site-packages', 'nvidia', 'cuda_runtime', 'include', 'cuda_runtime.h');
  const env = { CUDA_HOME: path.join(root, 'no-cuda') };
  assert.equal(ncclIncludes(r, env), null, 'a CPU libtorch (no libtorch_cuda.so) has no nccl');
  touch('site-packages', 'torch', 'lib', 'libtorch_cuda.so');
  assert.deepEqual(ncclIncludes(r, env), [cudart, nccl]);
  assert.equal(ncclIncludes(r, { ...env, DYAD_NCCL: '0' }), null, 'DYAD_NCCL=0 leaves it out');
  // headers from a CUDA toolkit and NCCL_INCLUDE_DIR win over the pip ones
  const toolkit = touch('cuda', 'include', 'cuda_runtime.h');
  const own = touch('nccl-own', 'nccl.h');
  assert.deepEqual(ncclIncludes(r, { CUDA_HOME: path.join(root, 'cuda'), NCCL_INCLUDE_DIR: own }), [toolkit, own]);
  // no nccl.h anywhere: no nccl
  rmSync(path.join(nccl, 'nccl.h'));
  assert.equal(ncclIncludes(r, env), null);
  // CUDA 13's wheels put the headers under nvidia/cu13/include
  rmSync(path.join(cudart, 'cuda_runtime.h'));
  const cu13 = touch('site-packages', 'nvidia', 'cu13', 'include', 'nccl.h');
  touch('site-packages', 'nvidia', 'cu13', 'include', 'cuda_runtime.h');
  assert.deepEqual(ncclIncludes(r, env), [cu13]);
});
