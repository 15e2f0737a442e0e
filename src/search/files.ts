import { promises as fsp } from 'node:fs';
import path from 'node:path';

/** Extensions sharp decodes and the index picks up when given a folder. */
export const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.webp', '.gif', '.tif', '.tiff', '.avif', '.heic', '.svg']);

/** A file to index; `label`/`split` are stored as given (null when absent). */
export interface FileEntry {
  path: string;
  label?: string | null;
  split?: string | null;
}

export interface ScanOptions {
  /** Label each file with the name of its parent folder (ImageFolder layout). Default false. */
  labelFromFolder?: boolean;
  /** Extensions to accept (lower case, with the dot). Default {@link IMAGE_EXTENSIONS}. */
  extensions?: Iterable<string>;
}

/**
 * Lists image files under `dir`, recursively, sorted by path. Hidden entries (`.name`) are skipped.
 */
export async function scanImages(dir: string, options: ScanOptions = {}): Promise<FileEntry[]> {
  const exts = new Set([...(options.extensions ?? IMAGE_EXTENSIONS)].map((e) => e.toLowerCase()));
  const root = path.resolve(dir);
  let st;
  try {
    st = await fsp.stat(root);
  } catch (err) {
    throw new Error(`cannot read folder ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}. Pass an existing folder of images.`, { cause: err });
  }
  if (!st.isDirectory()) throw new Error(`${dir} is not a folder. Pass a folder of images, or a list of files.`);
  const out: FileEntry[] = [];
  const walk = async (d: string): Promise<void> => {
    const entries = await fsp.readdir(d, { withFileTypes: true });
    for (const e of entries) {
      if (e.name.startsWith('.')) continue;
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if ((e.isFile() || e.isSymbolicLink()) && exts.has(path.extname(e.name).toLowerCase())) {
        out.push(options.labelFromFolder ? { path: p, label: path.basename(d) } : { path: p });
      }
    }
  };
  await walk(root);
  out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return out;
}

/** Runs `fn` over `items` with at most `limit` in flight; results keep the input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < items.length; i = next++) out[i] = await fn(items[i]!, i);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
