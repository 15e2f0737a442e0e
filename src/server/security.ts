/**
 * The studio's guards: which hosts count as loopback (a token is required on any other), the
 * token check, and `resolveUnder`, the one way a request names a file: a relative path under a
 * configured root, refused (`null`) when it is absolute, climbs out with `..` (also percent- or
 * double-percent-encoded), holds a NUL, or resolves through a symlink to outside the root.
 */
import { promises as fsp } from 'node:fs';
import { timingSafeEqual, randomBytes } from 'node:crypto';
import path from 'node:path';

/** True for 127.0.0.0/8, ::1 and `localhost`: addresses other machines cannot reach. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || h === '::ffff:127.0.0.1';
}

/** A fresh random token (32 hex characters). */
export function newToken(): string {
  return randomBytes(16).toString('hex');
}

/** Constant-time comparison of a presented token with the expected one. */
export function tokenMatches(presented: string | undefined, expected: string): boolean {
  if (typeof presented !== 'string') return false;
  const a = Buffer.from(presented);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Decodes percent-encoding repeatedly (at most 3 rounds), so `%252e%252e` is seen as `..`; null when malformed. */
export function fullyDecode(s: string): string | null {
  let cur = s;
  for (let i = 0; i < 3; i++) {
    let next: string;
    try {
      next = decodeURIComponent(cur);
    } catch {
      return null;
    }
    if (next === cur) return cur;
    cur = next;
  }
  return /%[0-9a-f]{2}/i.test(cur) ? null : cur;
}

/**
 * The real path of `rel` under `root`, or null when the request must be refused: empty, absolute
 * (`/etc/passwd`, `C:\`), a `..` segment after decoding, a NUL byte, a backslash, or a path whose
 * real location (symlinks followed) is outside the real root. Also null when the file is missing.
 */
export async function resolveUnder(root: string, rel: string): Promise<string | null> {
  const decoded = fullyDecode(rel);
  if (decoded === null || decoded.length === 0) return null;
  if (decoded.includes('\0') || decoded.includes('\\')) return null;
  if (path.isAbsolute(decoded) || /^[a-z]:/i.test(decoded)) return null;
  if (decoded.split('/').some((seg) => seg === '..')) return null;
  let realRoot: string;
  let real: string;
  try {
    realRoot = await fsp.realpath(root);
    real = await fsp.realpath(path.join(realRoot, decoded));
  } catch {
    return null;
  }
  const r = path.relative(realRoot, real);
  if (r === '' || r.startsWith('..') || path.isAbsolute(r)) return r === '' ? realRoot : null;
  return real;
}

/** True when `file` (already real) lies under one of the `roots` (real paths). */
export function isUnderAny(file: string, roots: readonly string[]): boolean {
  return roots.some((root) => {
    const r = path.relative(root, file);
    return r !== '' && !r.startsWith('..') && !path.isAbsolute(r);
  });
}
