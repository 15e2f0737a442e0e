#!/usr/bin/env node
// Finds libtorch for the addon build, in the order tch-rs uses:
//   1. LIBTORCH=/path        a directory with include/ and lib/ (an unpacked libtorch zip or a pip torch dir)
//   2. LIBTORCH_USE_PYTORCH=1 ask a Python torch for its paths (PYTHON=... picks the interpreter)
//   3. the system install     Debian's libtorch-dev (/usr/include/torch, /usr/lib/<triplet>/libtorch.so)
// Usage: node find-libtorch.mjs [include|libs|defines|napi|json]
// A CUDA libtorch with CUDA's and NCCL's headers at hand also gets the 'nccl' backend (ncclIncludes).
import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';

/**
 * What the environment asks for, without looking anything up (src/torch/addon.ts computes the
 * same string): an addon records it, and is reused only while it is unchanged.
 */
export function requestedLibtorch(env = process.env) {
  if (env.LIBTORCH) return `LIBTORCH=${env.LIBTORCH}`;
  if (env.LIBTORCH_USE_PYTORCH === '1') return `LIBTORCH_USE_PYTORCH=1 (${env.PYTHON || 'python3'})`;
  return 'system';
}

/** libtorch's version from its headers (torch/version.h, present since 1.10), or null. */
export function libtorchVersion(include) {
  for (const dir of include) {
    // 2.x from 2.9 or so: torch/headeronly/version.h (the api header only includes it).
    const files = [['torch', 'headeronly', 'version.h'], ['torch', 'csrc', 'api', 'include', 'torch', 'version.h'], ['torch', 'version.h']];
    for (const f of files.map((p) => path.join(dir, ...p))) {
      if (!existsSync(f)) continue;
      const h = readFileSync(f, 'utf8');
      const n = (k) => new RegExp(`#define\\s+TORCH_VERSION_${k}\\s+(\\d+)`).exec(h)?.[1];
      if (n('MAJOR') !== undefined) return `${n('MAJOR')}.${n('MINOR')}.${n('PATCH')}`;
    }
  }
  return null;
}

/**
 * The identity of the libtorch library in `libdir` (the real file behind libtorch_cpu.so, or
 * libtorch.so, with its size and time): an addon built against it records this, and a later
 * upgrade or removal of libtorch changes it, which is checked before the addon is loaded.
 */
export function libtorchFingerprint(libdir) {
  for (const name of ['libtorch_cpu.so', 'libtorch.so', 'libtorch_cpu.dylib', 'libtorch.dylib']) {
    const f = path.join(libdir, name);
    if (!existsSync(f)) continue;
    const real = realpathSync(f);
    const st = statSync(real);
    return { file: real, size: st.size, mtimeMs: Math.round(st.mtimeMs) };
  }
  return null;
}

function fromDir(root, how) {
  const inc = path.join(root, 'include');
  const lib = path.join(root, 'lib');
  if (!existsSync(path.join(inc, 'ATen', 'ATen.h'))) return null;
  return { how, include: [inc, path.join(inc, 'torch', 'csrc', 'api', 'include')], libdir: lib, abi: process.env.LIBTORCH_CXX11_ABI };
}

function fromPython() {
  const py = process.env.PYTHON || 'python3';
  const code = [
    'import torch, os',
    'from torch.utils import cpp_extension as c',
    'print(os.pathsep.join(c.include_paths()))',
    'print(os.pathsep.join(c.library_paths()))',
    'print(int(torch._C._GLIBCXX_USE_CXX11_ABI))',
  ].join('\n');
  const out = execFileSync(py, ['-c', code], { encoding: 'utf8' }).trim().split('\n');
  return { how: `LIBTORCH_USE_PYTORCH (${py})`, include: out[0].split(path.delimiter), libdir: out[1].split(path.delimiter)[0], abi: out[2] };
}

function fromSystem() {
  // LIBTORCH_SYSTEM_DIRS=libdir:includedir:... overrides where the system install is looked for.
  const custom = process.env.LIBTORCH_SYSTEM_DIRS?.split(path.delimiter).filter(Boolean);
  const libdirs = custom ?? ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib', '/usr/local/lib'];
  const prefixes = custom ?? ['/usr/include', '/usr/local/include'];
  for (const libdir of libdirs) {
    if (!existsSync(path.join(libdir, 'libtorch.so'))) continue;
    for (const prefix of prefixes) {
      if (existsSync(path.join(prefix, 'ATen', 'ATen.h'))) {
        return { how: 'system install', include: [prefix, path.join(prefix, 'torch', 'csrc', 'api', 'include')], libdir };
      }
    }
  }
  return null;
}

export function findLibtorch() {
  const tried = [];
  if (process.env.LIBTORCH) {
    const r = fromDir(process.env.LIBTORCH, `LIBTORCH=${process.env.LIBTORCH}`);
    if (r) return r;
    tried.push(`LIBTORCH=${process.env.LIBTORCH}: no include/ATen/ATen.h there`);
  } else tried.push('LIBTORCH: not set');
  if (process.env.LIBTORCH_USE_PYTORCH === '1') {
    try { return fromPython(); } catch (e) { tried.push(`LIBTORCH_USE_PYTORCH=1: ${String(e.message).split('\n')[0]}`); }
  } else tried.push('LIBTORCH_USE_PYTORCH: not set');
  const sys = fromSystem();
  if (sys) return sys;
  tried.push(`system install: no libtorch.so with ATen headers in ${process.env.LIBTORCH_SYSTEM_DIRS ?? '/usr or /usr/local'}`);
  throw new Error(
    'dyad could not find libtorch. Tried:\n  - ' + tried.join('\n  - ') +
    '\nGet one of three ways:\n' +
    '  1. apt-get install libtorch-dev libopenblas0-openmp (Debian/Ubuntu system install)\n' +
    '  2. pip install torch, then LIBTORCH_USE_PYTORCH=1 (PYTHON=... picks the interpreter)\n' +
    '  3. the official archive from https://pytorch.org (LibTorch, C++), unpacked, then LIBTORCH=/path/to/libtorch');
}

/** findLibtorch() plus what an addon records: version, library identity, the request. */
export function describeLibtorch() {
  const r = findLibtorch();
  return { ...r, version: libtorchVersion(r.include), fingerprint: libtorchFingerprint(r.libdir), requested: requestedLibtorch() };
}

/** node-addon-api's headers, resolved from this package (the build may run in a cache folder). */
function napiInclude() {
  if (process.env.DYAD_NAPI_INCLUDE) return process.env.DYAD_NAPI_INCLUDE;
  return path.resolve(createRequire(import.meta.url)('node-addon-api').include_dir);
}

/**
 * The include folders the 'nccl' process-group backend needs, or null when it cannot be built:
 * libtorch must be a CUDA build (libtorch_cuda next to libtorch_cpu, with ProcessGroupNCCL.hpp), and
 * cuda_runtime.h and nccl.h must be found: NCCL_INCLUDE_DIR, CUDA_HOME/CUDA_PATH, /usr/local/cuda,
 * pip's nvidia-* packages beside a pip torch (site-packages/nvidia/{cuda_runtime,nccl}/include),
 * /usr/include. DYAD_NCCL=0 leaves NCCL out.
 */
export function ncclIncludes(r, env = process.env) {
  if (env.DYAD_NCCL === '0') return null;
  const files = existsSync(r.libdir) ? readdirSync(r.libdir) : [];
  if (!files.includes('libtorch_cuda.so')) return null;
  if (!r.include.some((d) => existsSync(path.join(d, 'torch', 'csrc', 'distributed', 'c10d', 'ProcessGroupNCCL.hpp')))) return null;
  const sitePackages = path.resolve(r.libdir, '..', '..');
  const cudaHome = env.CUDA_HOME || env.CUDA_PATH || '/usr/local/cuda';
  // pip's CUDA wheels: nvidia/nccl/include, nvidia/cuda_runtime/include (CUDA 12), nvidia/cu13/include (CUDA 13)
  const nvidia = path.join(sitePackages, 'nvidia');
  const pip = existsSync(nvidia) ? readdirSync(nvidia).sort().map((d) => path.join(nvidia, d, 'include')) : [];
  const candidates = [env.NCCL_INCLUDE_DIR, path.join(cudaHome, 'include'), ...pip, '/usr/include'].filter(Boolean);
  const find = (header) => candidates.find((d) => existsSync(path.join(d, header)));
  const cuda = find('cuda_runtime.h');
  const nccl = find('nccl.h');
  return cuda && nccl ? [...new Set([cuda, nccl])] : null;
}

function libs(r) {
  const names = ['torch', 'torch_cpu', 'c10'];
  const files = existsSync(r.libdir) ? readdirSync(r.libdir) : [];
  for (const cuda of ['torch_cuda', 'c10_cuda']) if (files.includes(`lib${cuda}.so`)) names.push(cuda);
  return [`-L${r.libdir}`, `-Wl,-rpath,${r.libdir}`, '-Wl,--no-as-needed', ...names.map((n) => `-l${n}`), '-Wl,--as-needed'];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    const what = process.argv[2] || 'json';
    if (what === 'napi') {
      console.log(napiInclude());
      process.exit(0);
    }
    const r = findLibtorch();
    const nccl = ncclIncludes(r);
    if (what === 'include') console.log([...r.include, ...(nccl ?? [])].join(' '));
    else if (what === 'libs') console.log(libs(r).join(' '));
    else if (what === 'defines') console.log([r.abi !== undefined ? `_GLIBCXX_USE_CXX11_ABI=${r.abi}` : '', nccl ? 'DYAD_WITH_NCCL=1' : ''].filter(Boolean).join(' '));
    else console.log(JSON.stringify({ ...describeLibtorch(), libs: libs(r), nccl: nccl !== null }, null, 2));
  } catch (e) {
    console.error(e.message);
    process.exit(1);
  }
}
