#!/usr/bin/env node
// Finds libtorch for the addon build, in the order tch-rs uses:
//   1. LIBTORCH=/path        a directory with include/ and lib/ (an unpacked libtorch zip or a pip torch dir)
//   2. LIBTORCH_USE_PYTORCH=1 ask a Python torch for its paths (PYTHON=... picks the interpreter)
//   3. the system install     Debian's libtorch-dev (/usr/include/torch, /usr/lib/<triplet>/libtorch.so)
// Usage: node find-libtorch.mjs [include|libs|defines|json]
import { existsSync, readdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';

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
    '\nFix it one of three ways:\n' +
    '  1. LIBTORCH=/path/to/libtorch (a directory with include/ and lib/)\n' +
    '  2. LIBTORCH_USE_PYTORCH=1 with a python3 that can `import torch`\n' +
    '  3. apt-get install libtorch-dev libopenblas0-openmp (Debian/Ubuntu system install)');
}

function libs(r) {
  const names = ['torch', 'torch_cpu', 'c10'];
  const files = existsSync(r.libdir) ? readdirSync(r.libdir) : [];
  for (const cuda of ['torch_cuda', 'c10_cuda']) if (files.includes(`lib${cuda}.so`)) names.push(cuda);
  return [`-L${r.libdir}`, `-Wl,-rpath,${r.libdir}`, '-Wl,--no-as-needed', ...names.map((n) => `-l${n}`), '-Wl,--as-needed'];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    const r = findLibtorch();
    const what = process.argv[2] || 'json';
    if (what === 'include') console.log(r.include.join(' '));
    else if (what === 'libs') console.log(libs(r).join(' '));
    else if (what === 'defines') console.log(r.abi !== undefined ? `_GLIBCXX_USE_CXX11_ABI=${r.abi}` : '');
    else console.log(JSON.stringify({ ...r, libs: libs(r) }, null, 2));
  } catch (e) {
    console.error(e.message);
    process.exit(1);
  }
}
