#!/usr/bin/env node
// Builds dyad's libtorch addon outside a clone: `npx dyad build-native`, and the build that the
// first `import 'dyad'` starts when no addon fits the libtorch found (src/torch/addon.ts).
// npm 11 runs no install script of a dependency unless the user approves it, so dyad ships its
// native sources (native/) and node-gyp + node-addon-api as dependencies, and builds on demand.
//
//   node build-addon.mjs [--cache DIR | --out DIR] [--error-file FILE]
//     --cache DIR  install into DIR/addon/<key>/ (default: $DYAD_CACHE, else $XDG_CACHE_HOME/dyad,
//                  else ~/.cache/dyad); <key> names the libtorch version, a hash of its path and of
//                  the request (LIBTORCH / LIBTORCH_USE_PYTORCH / system), Node's ABI and dyad's version
//     --out DIR    install into DIR exactly (DIR/dyad.node and DIR/dyad.node.json)
// The compile runs in a temporary folder; only dyad.node and its record dyad.node.json (what it was
// built against, compared before every load) are renamed into place, so concurrent builds are safe.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, writeFileSync, createWriteStream } from 'node:fs';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeLibtorch, findLibtorch, ncclIncludes } from './find-libtorch.mjs';

const nativeDir = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

/** dyad's version, from the package.json beside native/. */
export function dyadVersion() {
  return JSON.parse(readFileSync(path.join(nativeDir, '..', 'package.json'), 'utf8')).version;
}

/** The cache folder: $DYAD_CACHE, else $XDG_CACHE_HOME/dyad, else ~/.cache/dyad (same rule as addon.ts). */
export function cacheRoot(env = process.env) {
  if (env.DYAD_CACHE) return path.resolve(env.DYAD_CACHE);
  if (env.XDG_CACHE_HOME) return path.join(env.XDG_CACHE_HOME, 'dyad');
  return path.join(os.homedir(), '.cache', 'dyad');
}

/** What an addon records about its build (dyad.node.json beside dyad.node). */
export function addonMeta(lt) {
  return {
    dyad: dyadVersion(),
    node_abi: process.versions.modules,
    napi: 8,
    platform: `${process.platform}-${process.arch}`,
    libtorch: { requested: lt.requested, how: lt.how, libdir: lt.libdir, version: lt.version, fingerprint: lt.fingerprint },
    built: new Date().toISOString(),
  };
}

/** The cache subfolder for this libtorch, Node ABI and dyad version. */
export function addonKey(lt) {
  const h = createHash('sha256').update(`${lt.libdir}\0${lt.requested}`).digest('hex').slice(0, 10);
  return `libtorch-${lt.version ?? 'unknown'}-${h}-node${process.versions.modules}-dyad${dyadVersion()}`;
}

export function writeMeta(nodeFile, lt) {
  writeFileSync(`${nodeFile}.json`, JSON.stringify(addonMeta(lt), null, 2) + '\n');
}

/** Node's headers beside the running node, when present (no header download then). */
function nodedirArgs() {
  const nodedir = process.env.npm_config_nodedir || path.resolve(path.dirname(process.execPath), '..');
  return existsSync(path.join(nodedir, 'include', 'node', 'node_api.h')) ? [`--nodedir=${nodedir}`] : [];
}

/**
 * Runs node-gyp `command` in `dir` (holding binding.gyp), showing one progress line (redrawn on a
 * TTY, one line per step otherwise) and keeping the compiler's output in dir/build.log, whose tail
 * is printed when the build fails. Resolves to the exit code.
 */
export function runGyp(dir, command, { jobs = Math.max(1, os.cpus().length), out = process.stderr, env: extraEnv = {} } = {}) {
  const gyp = require.resolve('node-gyp/bin/node-gyp.js');
  const sources = readdirSync(path.join(dir, 'src')).filter((f) => f.endsWith('.cc'));
  const total = sources.length + 1;
  const log = createWriteStream(path.join(dir, 'build.log'));
  const tty = Boolean(out.isTTY);
  const t0 = Date.now();
  let done = 0;
  let step = 'configuring';
  const draw = (final = false) => {
    const s = Math.round((Date.now() - t0) / 1000);
    const bar = '#'.repeat(done) + '-'.repeat(total - done);
    const line = `dyad: building the addon [${bar}] ${done}/${total} ${step} (${s} s)`;
    if (tty) out.write(`\r${line}\x1b[K${final ? '\n' : ''}`);
    else out.write(line + '\n');
  };
  draw();
  const timer = tty ? setInterval(draw, 1000) : null;
  const env = { ...process.env, ...extraEnv, DYAD_NAPI_INCLUDE: path.resolve(require('node-addon-api').include_dir) };
  const child = spawn(process.execPath, [gyp, command, `--jobs=${jobs}`, ...nodedirArgs()], { cwd: dir, env });
  let tail = '';
  const onData = (chunk) => {
    log.write(chunk);
    tail = (tail + chunk.toString()).slice(-6000);
    for (const m of chunk.toString().matchAll(/(CXX|SOLINK_MODULE)\(target\) \S*?([\w.]+)\.(o|node)\b/g)) {
      done = Math.min(total - 1, done + (m[1] === 'CXX' ? 1 : 0));
      step = m[1] === 'CXX' ? `compiling ${m[2]}.cc` : 'linking';
      if (!tty) draw();
    }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  return new Promise((resolve) => {
    child.on('close', (code) => {
      if (timer) clearInterval(timer);
      log.end();
      if (code === 0) {
        done = total;
        step = 'done';
      } else step = 'FAILED';
      draw(true);
      if (code !== 0) out.write(`${tail}\ndyad: the addon build failed; the compiler's output is in ${path.join(dir, 'build.log')}\n`);
      resolve(code ?? 1);
    });
  });
}

/**
 * runGyp, and when the build with the 'nccl' backend fails (its headers were found, but that branch
 * could not be compiled here), once more without it (DYAD_NCCL=0), saying so: a CUDA build then
 * still has CUDA and gloo.
 */
export async function runGypNcclOptional(dir, command, opts = {}) {
  const code = await runGyp(dir, command, opts);
  if (code === 0 || process.env.DYAD_NCCL === '0' || ncclIncludes(findLibtorch()) === null) return code;
  (opts.out ?? process.stderr).write('dyad: the build with the nccl backend failed; building without it (DYAD_NCCL=0): gloo only\n');
  return runGyp(dir, 'rebuild', { ...opts, env: { ...opts.env, DYAD_NCCL: '0' } });
}

/** Copies what node-gyp needs (binding.gyp, find-libtorch.mjs, src/) into `dir`. */
function copySources(dir) {
  mkdirSync(path.join(dir, 'src'), { recursive: true });
  for (const f of ['binding.gyp', 'find-libtorch.mjs']) copyFileSync(path.join(nativeDir, f), path.join(dir, f));
  for (const f of readdirSync(path.join(nativeDir, 'src'))) copyFileSync(path.join(nativeDir, 'src', f), path.join(dir, 'src', f));
}

/**
 * Builds the addon in a temporary folder and installs dyad.node + dyad.node.json into `target`
 * (or the cache folder's key for this libtorch). Resolves to the installed dyad.node path.
 */
export async function buildAddon({ target, cache = cacheRoot(), out = process.stderr } = {}) {
  const lt = describeLibtorch();
  const dest = target ?? path.join(cache, 'addon', addonKey(lt));
  out.write(`dyad: building the libtorch addon once, against libtorch ${lt.version ?? '(version unknown)'} from ${lt.how} (${lt.libdir}),\n` +
    `      into ${dest}; this takes a few minutes (g++, make and python3 are needed)\n`);
  const work = mkdtempSync(path.join(os.tmpdir(), 'dyad-addon-build-'));
  try {
    copySources(work);
    const code = await runGypNcclOptional(work, 'rebuild', { out });
    if (code !== 0) throw new Error(`the addon build failed (exit ${code}); see the compiler output above`);
    mkdirSync(dest, { recursive: true });
    const built = path.join(work, 'build', 'Release', 'dyad.node');
    const tmp = path.join(dest, `.dyad.node.${process.pid}`);
    copyFileSync(built, tmp);
    writeMeta(tmp, lt);
    renameSync(`${tmp}.json`, path.join(dest, 'dyad.node.json'));
    renameSync(tmp, path.join(dest, 'dyad.node'));
    out.write(`dyad: addon ready: ${path.join(dest, 'dyad.node')}\n`);
    return path.join(dest, 'dyad.node');
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === realpathSync(process.argv[1])) {
  const argv = process.argv.slice(2);
  const arg = (name) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const errorFile = arg('--error-file');
  const out = arg('--out');
  buildAddon({ target: out ? path.resolve(out) : undefined, cache: arg('--cache') ? path.resolve(arg('--cache')) : cacheRoot() }).catch((e) => {
    const message = String(e && e.message ? e.message : e);
    // With --error-file the caller (the first import) throws the message as a DyadError.
    if (errorFile) writeFileSync(errorFile, message);
    else console.error(`dyad: ${message}`);
    process.exit(1);
  });
}
