/**
 * Which libtorch addon to load, and building one when none fits. An installed dyad ships its
 * native sources, not a binary (npm 11 runs no dependency install script unless approved), so
 * the first import builds the addon (native/build-addon.mjs) into a cache folder:
 * `$DYAD_CACHE`, else `$XDG_CACHE_HOME/dyad`, else `~/.cache/dyad`, one subfolder per libtorch
 * (version, path), Node ABI and dyad version. A clone keeps using `native/build/Release/`.
 *
 * Every addon has a record beside it (`dyad.node.json`: the libtorch it was linked against, with
 * the size and time of the library file, Node's ABI, dyad's version). The record is compared
 * before the addon is loaded, so an addon built for another libtorch (an upgrade from 1.13 to
 * 2.x, a moved LIBTORCH) is explained or rebuilt, never met as a bare dlopen failure.
 *
 * `decideAddon` is the pure decision; `gatherAddonState` reads the disk and the environment.
 */
import { accessSync, constants, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The identity of the libtorch library file an addon was linked against. */
export interface LibtorchFingerprint {
  file: string;
  size: number;
  mtimeMs: number;
}

/** The record beside an addon (`dyad.node.json`), written by native/build-addon.mjs. */
export interface AddonMeta {
  dyad: string;
  node_abi: string;
  napi: number;
  platform: string;
  libtorch: { requested: string; how: string; libdir: string; version: string | null; fingerprint: LibtorchFingerprint | null };
  built: string;
}

/** One addon file that may be loaded. */
export interface AddonCandidate {
  file: string;
  where: 'DYAD_ADDON' | 'package' | 'cache';
  exists: boolean;
  /** Its record, or null when it has none (a build from before records, or a hand-made one). */
  meta: AddonMeta | null;
  /** The fingerprint of libtorch now, at `meta.libtorch.libdir` (null: no libtorch there any more). */
  libtorchNow: LibtorchFingerprint | null;
}

/** What the running process needs. */
export interface AddonWant {
  /** `LIBTORCH=...`, `LIBTORCH_USE_PYTORCH=1 (python3)` or `system`: see {@link requestedLibtorch}. */
  requested: string;
  nodeAbi: string;
  dyadVersion: string;
  platform: string;
}

export type AddonDecision =
  | { kind: 'load'; file: string; checked: boolean }
  | { kind: 'build'; reason: string }
  | { kind: 'error'; message: string };

export interface AddonState {
  /** DYAD_ADDON: a file the user named; it is loaded or explained, never rebuilt. */
  override?: AddonCandidate;
  /** The package's own build first, then the cache folder's. */
  candidates: AddonCandidate[];
  want: AddonWant;
  /** False with DYAD_NO_BUILD=1: report instead of building. */
  autoBuild: boolean;
}

/** What the environment asks for (the same string as native/find-libtorch.mjs `requestedLibtorch`). */
export function requestedLibtorch(env: NodeJS.ProcessEnv = process.env): string {
  if (env.LIBTORCH) return `LIBTORCH=${env.LIBTORCH}`;
  if (env.LIBTORCH_USE_PYTORCH === '1') return `LIBTORCH_USE_PYTORCH=1 (${env.PYTHON || 'python3'})`;
  return 'system';
}

/** The cache folder: `$DYAD_CACHE`, else `$XDG_CACHE_HOME/dyad`, else `~/.cache/dyad`. */
export function dyadCacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.DYAD_CACHE) return path.resolve(env.DYAD_CACHE);
  if (env.XDG_CACHE_HOME) return path.join(env.XDG_CACHE_HOME, 'dyad');
  return path.join(os.homedir(), '.cache', 'dyad');
}

function describe(m: AddonMeta): string {
  return `libtorch ${m.libtorch.version ?? '(unknown version)'} in ${m.libtorch.libdir} (${m.libtorch.how})`;
}

/** Why `c` does not fit `want`, or null when it does (or cannot be checked: no record). */
export function addonMismatch(c: AddonCandidate, want: AddonWant): string | null {
  const m = c.meta;
  if (m === null) return null;
  if (m.platform !== want.platform) return `${c.file} was built for ${m.platform}, this is ${want.platform}`;
  if (m.libtorch.fingerprint !== null && c.libtorchNow === null) {
    return `${c.file} was built against ${describe(m)}, which is no longer there (${m.libtorch.fingerprint.file} is gone)`;
  }
  if (m.libtorch.fingerprint !== null && c.libtorchNow !== null && m.libtorch.fingerprint.file !== c.libtorchNow.file) {
    return `${c.file} was built against ${describe(m)}, but that libtorch changed: ${m.libtorch.fingerprint.file} is now ${c.libtorchNow.file}`;
  }
  if (m.libtorch.fingerprint !== null && c.libtorchNow !== null &&
      (m.libtorch.fingerprint.size !== c.libtorchNow.size || m.libtorch.fingerprint.mtimeMs !== c.libtorchNow.mtimeMs)) {
    return `${c.file} was built against ${describe(m)}, and ${c.libtorchNow.file} has been replaced since (another libtorch build)`;
  }
  if (m.libtorch.requested !== want.requested) return `${c.file} was built for ${m.libtorch.requested}, and ${want.requested} is asked for now`;
  if (m.node_abi !== want.nodeAbi) return `${c.file} was built for Node ABI ${m.node_abi}, this Node is ${want.nodeAbi}`;
  if (m.dyad !== want.dyadVersion) return `${c.file} was built by dyad ${m.dyad}, this is dyad ${want.dyadVersion}`;
  return null;
}

/**
 * The decision: DYAD_ADDON is loaded when it fits (or has no record) and explained otherwise;
 * else the first candidate whose record fits; else a package build without a record (an
 * older clone build, loaded unchecked); else a build (or, with autoBuild off, an error that
 * lists each mismatch and the command that builds a fitting addon).
 */
export function decideAddon(s: AddonState): AddonDecision {
  const build = 'Build one for it with `npx dyad build-native` (in a clone: `npm run build:native`)';
  if (s.override) {
    const o = s.override;
    if (!o.exists) {
      return { kind: 'error', message: `dyad: the libtorch addon is not built (${o.file} is missing; it is named by DYAD_ADDON). ${build}, or unset DYAD_ADDON.` };
    }
    const why = addonMismatch(o, s.want);
    if (why !== null) return { kind: 'error', message: `dyad: the addon named by DYAD_ADDON does not fit: ${why}. ${build}, or unset DYAD_ADDON.` };
    return { kind: 'load', file: o.file, checked: o.meta !== null };
  }
  const reasons: string[] = [];
  for (const c of s.candidates) {
    if (!c.exists || c.meta === null) continue;
    const why = addonMismatch(c, s.want);
    if (why === null) return { kind: 'load', file: c.file, checked: true };
    reasons.push(why);
  }
  const legacy = s.candidates.find((c) => c.exists && c.meta === null && c.where === 'package');
  if (legacy) return { kind: 'load', file: legacy.file, checked: false };
  const reason = reasons.length > 0 ? reasons.join('; ') : `no libtorch addon is built yet for ${s.want.requested}`;
  if (s.autoBuild) return { kind: 'build', reason };
  return { kind: 'error', message: `dyad: the libtorch addon is not built for this setup: ${reason}. ${build} (DYAD_NO_BUILD=1 stops the build on first import).` };
}

/** The libtorch library's identity in `libdir` (same rule as native/find-libtorch.mjs). */
export function libtorchFingerprint(libdir: string): LibtorchFingerprint | null {
  for (const name of ['libtorch_cpu.so', 'libtorch.so', 'libtorch_cpu.dylib', 'libtorch.dylib']) {
    const f = path.join(libdir, name);
    if (!existsSync(f)) continue;
    const real = realpathSync(f);
    const st = statSync(real);
    return { file: real, size: st.size, mtimeMs: Math.round(st.mtimeMs) };
  }
  return null;
}

function candidate(file: string, where: AddonCandidate['where']): AddonCandidate {
  const exists = existsSync(file);
  let meta: AddonMeta | null = null;
  if (existsSync(`${file}.json`)) {
    try {
      meta = JSON.parse(readFileSync(`${file}.json`, 'utf8')) as AddonMeta;
    } catch {
      meta = null;
    }
  }
  return { file, where, exists, meta, libtorchNow: meta ? libtorchFingerprint(meta.libtorch.libdir) : null };
}

/** Reads the candidates (the package's build, the cache folder's) and what this process needs. */
export function gatherAddonState(pkgRoot: string, env: NodeJS.ProcessEnv = process.env): AddonState {
  const want: AddonWant = {
    requested: requestedLibtorch(env),
    nodeAbi: process.versions.modules,
    dyadVersion: (JSON.parse(readFileSync(path.join(pkgRoot, 'package.json'), 'utf8')) as { version: string }).version,
    platform: `${process.platform}-${process.arch}`,
  };
  const autoBuild = env.DYAD_NO_BUILD !== '1';
  if (env.DYAD_ADDON) return { override: candidate(path.resolve(env.DYAD_ADDON), 'DYAD_ADDON'), candidates: [], want, autoBuild };
  const candidates = [candidate(path.join(pkgRoot, 'native', 'build', 'Release', 'dyad.node'), 'package')];
  const addons = path.join(dyadCacheRoot(env), 'addon');
  if (existsSync(addons)) {
    for (const d of readdirSync(addons).sort().reverse()) {
      if (!d.startsWith('.')) candidates.push(candidate(path.join(addons, d, 'dyad.node'), 'cache'));
    }
  }
  return { override: undefined, candidates, want, autoBuild };
}

function writable(dir: string): boolean {
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Where a build goes: `--cache` the cache folder when it is writable, else `--out` the
 * package's native/build/Release when that is; null when neither is.
 */
export function buildTarget(pkgRoot: string, env: NodeJS.ProcessEnv = process.env): string[] | null {
  const cache = dyadCacheRoot(env);
  if (writable(cache)) return ['--cache', cache];
  const own = path.join(pkgRoot, 'native', 'build', 'Release');
  if (writable(own)) return ['--out', own];
  return null;
}
