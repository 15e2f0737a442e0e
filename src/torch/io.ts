/**
 * File helpers: crash-safe writes and the one sha256 of weights files.
 *
 * Crash-safe file writes. `writeFileAtomic` writes a temporary file in the target's folder,
 * fsyncs it, renames it over the target and fsyncs the folder, so after a crash (power cut,
 * SIGKILL) the target holds either its old content or the new one, never a torn mix.
 * Used for safetensors weights, checkpoints, config and metrics snapshots.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';

/** What `writeFileAtomic` accepts: text (UTF-8), bytes, or chunks written one after another. */
export type AtomicData = string | Uint8Array | Iterable<Uint8Array>;

/** The temporary name used for `target` (same folder, hidden, unique per call). */
function tempName(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
}

/** True for names written by `writeFileAtomic` that never got renamed (left by a crash). */
export function isAtomicTempFile(name: string): boolean {
  return /^\..+\.\d+\.[0-9a-f]{12}\.tmp$/.test(path.basename(name));
}

function writeAll(fd: number, bytes: Uint8Array): void {
  let off = 0;
  while (off < bytes.byteLength) off += fs.writeSync(fd, bytes, off, bytes.byteLength - off);
}

/** fsync of a folder, so the rename itself is durable. Some filesystems refuse it: ignored there. */
function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EINVAL' && code !== 'EPERM' && code !== 'EBADF' && code !== 'ENOTSUP') throw e;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/**
 * Replaces `file` with `data` atomically: temp file in the same folder, write, fsync, rename,
 * fsync the folder. The folder must exist. On failure the temp file is removed, the target is
 * untouched, and the error names the target.
 * @param opts.mode permission bits of a new file (default 0o644, before umask)
 */
export function writeFileAtomic(file: string, data: AtomicData, opts: { mode?: number } = {}): void {
  const target = path.resolve(file);
  const tmp = tempName(target);
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, 'wx', opts.mode ?? 0o644);
    if (typeof data === 'string') writeAll(fd, Buffer.from(data, 'utf8'));
    else if (data instanceof Uint8Array) writeAll(fd, data);
    else for (const chunk of data) writeAll(fd, chunk);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, target);
  } catch (e) {
    if (fd !== undefined) {
      try { fs.closeSync(fd); } catch { /* already failing */ }
    }
    try { fs.unlinkSync(tmp); } catch { /* never created, or already renamed */ }
    const err = e as NodeJS.ErrnoException;
    const wrapped = new Error(`cannot write ${file}: ${err.message}`, { cause: e });
    (wrapped as NodeJS.ErrnoException).code = err.code;
    throw wrapped;
  }
  fsyncDir(path.dirname(target));
}

/** sha256 (hex) of text and byte chunks, fed in order. */
export function sha256(chunks: Iterable<string | Uint8Array>): string {
  const h = createHash('sha256');
  for (const c of chunks) h.update(c);
  return h.digest('hex');
}

/**
 * Streaming sha256 (hex) of a file, read 4 MiB at a time (weights can be gigabytes): the
 * identity of a checkpoint (`Model.identity`, `CLIPModel.identity`, the search index).
 */
export function fileSha256(file: string): string {
  const h = createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 22);
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}
