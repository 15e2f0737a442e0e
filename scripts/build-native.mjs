#!/usr/bin/env node
// Builds the libtorch addon (native/build/Release/dyad.node) with node-gyp, unless it is
// already newer than every source. Node's own headers are used (no header download).
import { existsSync, statSync, readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import os from 'node:os';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const nativeDir = path.join(root, 'native');
const out = path.join(nativeDir, 'build', 'Release', 'dyad.node');

function newestSource() {
  let newest = 0;
  const files = [path.join(nativeDir, 'binding.gyp'), path.join(nativeDir, 'find-libtorch.mjs')];
  for (const f of readdirSync(path.join(nativeDir, 'src'))) files.push(path.join(nativeDir, 'src', f));
  for (const f of files) newest = Math.max(newest, statSync(f).mtimeMs);
  return newest;
}

const force = process.argv.includes('--force');
if (!force && existsSync(out) && statSync(out).mtimeMs > newestSource()) {
  console.log('dyad: native addon is up to date');
  process.exit(0);
}

// Fail early, with the three ways to fix it, when libtorch is missing.
const probe = spawnSync(process.execPath, [path.join(nativeDir, 'find-libtorch.mjs'), 'json'], { encoding: 'utf8' });
if (probe.status !== 0) {
  console.error(probe.stderr.trim());
  process.exit(1);
}
console.log(`dyad: building the addon against libtorch from ${JSON.parse(probe.stdout).how}`);

const gyp = path.join(root, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
// Incremental `build` when the project was configured after the last change to binding.gyp or
// find-libtorch.mjs (only changed sources recompile, and a failed build keeps the old addon);
// a full `rebuild` otherwise, or with --force.
const makefile = path.join(nativeDir, 'build', 'Makefile');
const configNewest = Math.max(...['binding.gyp', 'find-libtorch.mjs'].map((f) => statSync(path.join(nativeDir, f)).mtimeMs));
const incremental = !force && existsSync(makefile) && statSync(makefile).mtimeMs > configNewest;
const args = [gyp, incremental ? 'build' : 'rebuild', `--jobs=${Math.max(1, os.cpus().length)}`];
const nodedir = process.env.npm_config_nodedir || path.resolve(path.dirname(process.execPath), '..');
if (existsSync(path.join(nodedir, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${nodedir}`);
const t0 = Date.now();
const r = spawnSync(process.execPath, args, { cwd: nativeDir, stdio: 'inherit' });
if (r.status !== 0) {
  console.error('dyad: the addon build failed (see the compiler output above)');
  process.exit(r.status ?? 1);
}
console.log(`dyad: addon built in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
