/**
 * Which files are images, and how a folder of them is listed: the one home of both, used by
 * `ImageFolder`, the model's input sources (folders and globs) and the search index.
 *
 * - Image files are those whose extension names a format this sharp build decodes
 *   (`imageExtensions()`: JPEG, PNG, WebP, GIF, TIFF, and AVIF where the build reads it).
 * - A listing is in one stable order on every machine: relative paths compared segment by
 *   segment by UTF-16 code units, no locale (`comparePaths`), so `a/x` sorts before `a-b/x`.
 * - Entries whose names start with `.` are skipped (`.git`, `.DS_Store`, `._x.jpg`) unless asked.
 * - Symbolic links are followed, to files and to folders; a folder reached twice (a link cycle,
 *   or two links to one folder) is listed once, where the listing order meets it first.
 */
import { promises as fsp, type Dirent } from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';

/** Formats the data layer decodes, with sharp's format key and their file extensions. */
const FORMATS: ReadonlyArray<{ label: string; key: string; suffixes: string[] }> = [
  { label: 'JPEG', key: 'jpeg', suffixes: ['.jpg', '.jpeg', '.jpe', '.jfif'] },
  { label: 'PNG', key: 'png', suffixes: ['.png'] },
  { label: 'WebP', key: 'webp', suffixes: ['.webp'] },
  { label: 'GIF', key: 'gif', suffixes: ['.gif'] },
  { label: 'TIFF', key: 'tiff', suffixes: ['.tif', '.tiff'] },
  { label: 'AVIF', key: 'heif', suffixes: ['.avif'] },
];

function formatSupported(key: string, suffix: string): boolean {
  const f = (sharp.format as unknown as Record<string, { input?: { file?: boolean; buffer?: boolean; fileSuffix?: string[] } }>)[key];
  if (!f?.input?.file || !f.input.buffer) return false;
  // heif covers AVIF and HEIC; which one this build reads shows in fileSuffix.
  return key !== 'heif' || (f.input.fileSuffix ?? []).includes(suffix);
}

/** Labels of the formats this sharp build decodes, e.g. `['JPEG', 'PNG', 'WebP', 'GIF', 'TIFF', 'AVIF']`. */
export function supportedFormats(): string[] {
  return FORMATS.filter((f) => formatSupported(f.key, f.suffixes[0]!)).map((f) => f.label);
}

/** Lower-case file extensions (with dot) of `supportedFormats()`; the default extension filter everywhere. */
export function imageExtensions(): string[] {
  return FORMATS.flatMap((f) => f.suffixes.filter((s) => formatSupported(f.key, s)));
}

/**
 * Extensions as a set: lower case, with the dot (`'PNG'` and `'.png'` both give `.png`).
 * @throws RangeError when `extensions` is empty (nothing could ever match).
 */
export function extensionSet(extensions: Iterable<string> = imageExtensions()): Set<string> {
  const out = new Set<string>();
  for (const e of extensions) {
    const x = e.trim().toLowerCase();
    if (x.length > 0) out.add(x.startsWith('.') ? x : `.${x}`);
  }
  if (out.size === 0) throw new RangeError('extensions must not be empty: pass the image file extensions to take, e.g. [".jpg", ".png"]');
  return out;
}

/** True when `file`'s extension (case-insensitive) is one of `extensions` (default `imageExtensions()`). */
export function isImageFile(file: string, extensions?: Iterable<string>): boolean {
  return extensionSet(extensions).has(path.extname(file).toLowerCase());
}

/** Compares strings by UTF-16 code units: locale-independent. */
export function compareCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Compares relative paths segment by segment, so `a/x` sorts before `a-b/x` like its folder `a` before `a-b`. */
export function comparePaths(a: string, b: string): number {
  const sa = a.split(/[\\/]/);
  const sb = b.split(/[\\/]/);
  for (let i = 0; i < Math.min(sa.length, sb.length); i++) {
    const c = compareCodeUnits(sa[i]!, sb[i]!);
    if (c !== 0) return c;
  }
  return sa.length - sb.length;
}

/** Options of {@link walkImages}. */
export interface WalkOptions {
  /** Descend into subfolders. Default true; false lists `dir` itself only. */
  recursive?: boolean;
  /** Take entries whose names start with `.`. Default false. */
  hidden?: boolean;
  /** Extensions to take (case-insensitive, with or without the dot). Default `imageExtensions()`. */
  extensions?: Iterable<string>;
  /** Called with the relative path of every file skipped for its extension. */
  onOther?: (rel: string) => void;
  /** Called with the relative path of every folder listed (not `dir` itself), before its contents. */
  onDirectory?: (rel: string) => void;
}

type Kind = 'file' | 'dir' | 'other';

async function kindOf(dir: string, e: Dirent): Promise<Kind> {
  if (e.isFile()) return 'file';
  if (e.isDirectory()) return 'dir';
  if (e.isSymbolicLink()) {
    try {
      const st = await fsp.stat(path.join(dir, e.name));
      return st.isFile() ? 'file' : st.isDirectory() ? 'dir' : 'other';
    } catch {
      return 'other'; // dangling link
    }
  }
  return 'other'; // socket, FIFO, device
}

/**
 * The image files under `dir` as relative paths with `/` separators, in `comparePaths` order
 * (each folder's entries are read sorted, so the walk itself yields that order).
 *
 *   await walkImages('photos')                       // ['cat/1.jpg', 'cat/more/2.png', 'dog/3.webp']
 *   await walkImages('photos', { recursive: false }) // images directly in photos/
 *
 * @throws Error naming the folder when `dir` (or a folder under it) cannot be read, or `dir` is
 *   not a folder.
 */
export async function walkImages(dir: string, options: WalkOptions = {}): Promise<string[]> {
  const exts = extensionSet(options.extensions);
  const recursive = options.recursive ?? true;
  const hidden = options.hidden ?? false;
  const root = path.resolve(dir);
  const out: string[] = [];
  const seen = new Set<string>();
  const readDir = async (abs: string): Promise<Dirent[]> => {
    try {
      return await fsp.readdir(abs, { withFileTypes: true });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOTDIR') throw new Error(`${abs} is not a folder. Pass a folder of images.`, { cause: e });
      throw new Error(`cannot read folder ${abs}: ${code ?? (e as Error).message}. Pass an existing, readable folder of images.`, { cause: e });
    }
  };
  const walk = async (abs: string, rel: string): Promise<void> => {
    const real = await fsp.realpath(abs);
    if (seen.has(real)) return; // a link cycle, or a second link to a folder already listed
    seen.add(real);
    if (rel) options.onDirectory?.(rel);
    const entries = (await readDir(abs)).filter((e) => hidden || !e.name.startsWith('.'));
    entries.sort((a, b) => compareCodeUnits(a.name, b.name));
    for (const e of entries) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      const kind = await kindOf(abs, e);
      if (kind === 'dir') {
        if (recursive) await walk(path.join(abs, e.name), r);
      } else if (kind === 'file') {
        if (exts.has(path.extname(e.name).toLowerCase())) out.push(r);
        else options.onOther?.(r);
      }
    }
  };
  let real: string;
  try {
    real = await fsp.realpath(root);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(`cannot read folder ${dir}: ${code ?? (e as Error).message}. Pass an existing folder of images.`, { cause: e });
  }
  if (!(await fsp.stat(real)).isDirectory()) throw new Error(`${dir} is not a folder. Pass a folder of images.`);
  await walk(root, '');
  return out;
}
