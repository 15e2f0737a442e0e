/**
 * The Hugging Face cache layout, exactly as Python's `huggingface_hub` writes it, so that either
 * reuses the other's downloads:
 *
 *   $HF_HUB_CACHE (else $HF_HOME/hub, else ~/.cache/huggingface/hub)/
 *     models--{org}--{name}/
 *       blobs/{etag}                     the file's bytes, named by its etag: the git blob sha1
 *                                        (40 hex) or, for LFS files, the sha256 (64 hex)
 *       blobs/{etag}.incomplete          a download in progress (resumed with a Range request)
 *       snapshots/{commit}/{path}        a relative symlink to ../../blobs/{etag}
 *       refs/{revision}                  the commit a branch or tag pointed to when last asked
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync, lstatSync, copyFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DyadError } from '../errors.js';

/** A Hub download failed, or a file is not in the cache in offline mode. */
export class HubError extends DyadError<'HUB'> {
  /** The HTTP status, when the Hub answered. */
  readonly status?: number;
  constructor(message: string, options?: { cause?: unknown; status?: number }) {
    super('HUB', message, options);
    this.name = 'HubError';
    this.status = options?.status;
  }
}

/** The cache root: `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`. */
export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HF_HUB_CACHE) return path.resolve(env.HF_HUB_CACHE);
  if (env.HF_HOME) return path.join(path.resolve(env.HF_HOME), 'hub');
  return path.join(env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'huggingface', 'hub');
}

/** `models--org--name`: the folder of a model repository (huggingface_hub's `repo_folder_name`). */
export function repoFolderName(repoId: string): string {
  return ['models', ...repoId.split('/')].join('--');
}

/** True for a full 40-hex commit id. */
export function isCommit(rev: string): boolean {
  return /^[0-9a-f]{40}$/.test(rev);
}

/** One repository's cache folder and the paths in it. */
export class RepoCache {
  readonly dir: string;
  constructor(readonly repoId: string, cacheDir: string = hubCacheDir()) {
    this.dir = path.join(cacheDir, repoFolderName(repoId));
  }

  blobPath(etag: string): string {
    return path.join(this.dir, 'blobs', etag);
  }

  snapshotDir(commit: string): string {
    return path.join(this.dir, 'snapshots', commit);
  }

  pointerPath(commit: string, file: string): string {
    return path.join(this.snapshotDir(commit), ...file.split('/'));
  }

  /** The commit a revision resolves to in the cache: itself if a commit, else refs/{rev}; null if unknown. */
  commitFor(revision: string): string | null {
    const ref = path.join(this.dir, 'refs', ...revision.split('/'));
    if (existsSync(ref)) return readFileSync(ref, 'utf8').trim();
    if (isCommit(revision) && existsSync(this.snapshotDir(revision))) return revision;
    return null;
  }

  /** Records that `revision` points to `commit` (refs/{revision}), unless the revision is the commit. */
  writeRef(revision: string, commit: string): void {
    if (revision === commit) return;
    const ref = path.join(this.dir, 'refs', ...revision.split('/'));
    mkdirSync(path.dirname(ref), { recursive: true });
    const current = existsSync(ref) ? readFileSync(ref, 'utf8') : null;
    if (current !== commit) writeFileSync(ref, commit);
  }

  /** The cached file for (commit, file), or null. */
  cachedFile(commit: string, file: string): string | null {
    const p = this.pointerPath(commit, file);
    return existsSync(p) ? p : null;
  }

  /** The files of a cached snapshot (relative paths, '/'-separated). */
  snapshotFiles(commit: string): string[] {
    const root = this.snapshotDir(commit);
    const out: string[] = [];
    const walk = (dir: string, prefix: string): void => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        if (e.isDirectory()) walk(path.join(dir, e.name), `${prefix}${e.name}/`);
        else out.push(`${prefix}${e.name}`);
      }
    };
    if (existsSync(root)) walk(root, '');
    return out.sort();
  }

  /**
   * Points snapshots/{commit}/{file} at blobs/{etag} with a relative symlink, as huggingface_hub
   * does (a copy where symlinks are not allowed).
   */
  linkPointer(commit: string, file: string, etag: string): string {
    const pointer = this.pointerPath(commit, file);
    mkdirSync(path.dirname(pointer), { recursive: true });
    const blob = this.blobPath(etag);
    let present = false;
    try {
      lstatSync(pointer);
      present = true;
    } catch { /* absent */ }
    if (present) rmSync(pointer, { force: true });
    const tmp = `${pointer}.tmp-${process.pid}`;
    try {
      symlinkSync(path.relative(path.dirname(pointer), blob), tmp);
    } catch {
      copyFileSync(blob, tmp);
    }
    renameSync(tmp, pointer);
    return pointer;
  }
}
