#!/usr/bin/env node
// Builds the libtorch addon in place (native/build/Release/dyad.node, for a clone), unless it is
// newer than every source and its record (dyad.node.json) matches the libtorch found now. Node's
// own headers are used (no header download). An installed package builds into the cache folder
// instead (native/build-addon.mjs, `npx dyad build-native`).
import { existsSync, statSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeLibtorch } from '../native/find-libtorch.mjs';
import { runGypNcclOptional, writeMeta } from '../native/build-addon.mjs';

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

// Fail early, with the three ways to fix it, when libtorch is missing.
let lt;
try {
  lt = describeLibtorch();
} catch (e) {
  console.error(e.message);
  process.exit(1);
}

/** Why the built addon does not fit the libtorch found now, or null (no record: an older build). */
function recordMismatch() {
  if (!existsSync(`${out}.json`)) return null;
  const rec = JSON.parse(readFileSync(`${out}.json`, 'utf8')).libtorch;
  if (rec.libdir !== lt.libdir || JSON.stringify(rec.fingerprint) !== JSON.stringify(lt.fingerprint)) {
    return `it was built against libtorch ${rec.version} in ${rec.libdir}, and libtorch ${lt.version} in ${lt.libdir} is found now`;
  }
  return null;
}

const mismatch = existsSync(out) ? recordMismatch() : null;
const force = process.argv.includes('--force') || mismatch !== null;
if (mismatch) console.log(`dyad: rebuilding the addon: ${mismatch}`);
if (!force && existsSync(out) && statSync(out).mtimeMs > newestSource()) {
  if (!existsSync(`${out}.json`)) writeMeta(out, lt);
  console.log('dyad: native addon is up to date');
  process.exit(0);
}
console.log(`dyad: building the addon against libtorch ${lt.version} from ${lt.how}`);

// Incremental `build` when the project was configured after the last change to binding.gyp or
// find-libtorch.mjs (only changed sources recompile, and a failed build keeps the old addon);
// a full `rebuild` otherwise, or with --force.
const makefile = path.join(nativeDir, 'build', 'Makefile');
const configNewest = Math.max(...['binding.gyp', 'find-libtorch.mjs'].map((f) => statSync(path.join(nativeDir, f)).mtimeMs));
const incremental = !force && existsSync(makefile) && statSync(makefile).mtimeMs > configNewest;
const t0 = Date.now();
const code = await runGypNcclOptional(nativeDir, incremental ? 'build' : 'rebuild', { out: process.stdout });
if (code !== 0) process.exit(code);
writeMeta(out, lt);
console.log(`dyad: addon built in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
