/**
 * What `Model.predict` and `Model.embed` accept, turned into images:
 *
 * - a file path; a folder (every image under it, recursively, in a stable order: path segments
 *   compared by code units, as `ImageFolder`); a glob (`photos/*.jpg`, `data/**\/*.png`,
 *   `{a,b}`, `?`, `[abc]`; image files only, same order);
 * - an `http(s)://` URL (fetched with a timeout and a size limit) or a `file://` URL / `URL`;
 * - a `Buffer` / `Uint8Array` holding an encoded image (JPEG, PNG, WebP, ...);
 * - a `Tensor` of pixels: `[H, W]`, `[C, H, W]` or a batch `[N, C, H, W]`, uint8 0..255 or
 *   float 0..1 (rounded to 8 bits, as decoded files are);
 * - an array of any of these (flattened, order kept).
 *
 * Every image then goes through the same steps as the training data (`ImageFolder` +
 * `DataLoader`): decoding with sharp to the model's channels (EXIF orientation, sRGB, alpha
 * dropped, BT.601 luma for 1 channel), resize to the model's size with `fit: 'cover'` and the
 * lanczos3 kernel, packing to uint8 NCHW. Normalisation follows in the predictor.
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tensor } from '../torch/index.js';
import * as torch from '../torch/index.js';
import { ImageFolder, decodeImage, imageExtensions, prepareImage, walkImages, type RawImage } from './index.js';
import { DyadError } from '../errors.js';

/** One image source, or an array of them. */
export type Source = string | URL | Buffer | Uint8Array | Tensor | readonly Source[];

/** Bad input: a missing file, an empty folder, a URL that fails. The message names the source and the fix. */
export class SourceError extends DyadError<'SOURCE'> {
  constructor(readonly source: string, message: string, options?: { cause?: unknown }) {
    super('SOURCE', message, options);
    this.name = 'SourceError';
  }
}

/** One image to load. */
export type SourceItem =
  | { kind: 'file'; path: string }
  | { kind: 'url'; path: string }
  | { kind: 'bytes'; path: string; bytes: Uint8Array }
  | { kind: 'tensor'; path: string; image: RawImage };

export interface FetchOptions {
  /** Per-URL time limit in ms (connection and body), default 10,000. */
  timeoutMs?: number;
  /** Largest accepted download in bytes, default 50 MB. */
  maxBytes?: number;
}

const GLOB_CHARS = /[*?[{]/;

/** A glob pattern (segments separated by `/`) to a RegExp over relative paths. */
export function globToRegExp(pattern: string): RegExp {
  let re = '';
  let i = 0;
  let braces = 0;
  while (i < pattern.length) {
    const ch = pattern[i]!;
    if (ch === '*') {
      if (pattern[i + 1] === '*') {
        const slash = pattern[i + 2] === '/';
        re += slash ? '(?:[^/]*(?:/[^/]*)*/)?' : '.*';
        i += slash ? 3 : 2;
        continue;
      }
      re += '[^/]*';
    } else if (ch === '?') re += '[^/]';
    else if (ch === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end < 0) re += '\\[';
      else {
        let body = pattern.slice(i + 1, end);
        if (body.startsWith('!')) body = '^' + body.slice(1);
        re += `[${body.replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else if (ch === '{') {
      braces++;
      re += '(?:';
    } else if (ch === '}' && braces > 0) {
      braces--;
      re += ')';
    } else if (ch === ',' && braces > 0) re += '|';
    else re += ch.replace(/[.+^$()|\\]/g, '\\$&');
    i++;
  }
  return new RegExp(`^${re}$`);
}

/** Image files matching a glob, sorted. */
export async function globImages(pattern: string): Promise<string[]> {
  const norm = pattern.split(path.sep).join('/');
  const segs = norm.split('/');
  const first = segs.findIndex((s) => GLOB_CHARS.test(s));
  if (first < 0) return existsSync(pattern) ? [pattern] : [];
  const baseSegs = segs.slice(0, first);
  const base = baseSegs.length === 0 ? '.' : baseSegs.join('/') || '/';
  const rest = segs.slice(first).join('/');
  const re = globToRegExp(rest);
  const deep = rest.includes('**') || segs.length - first > 1;
  if (!existsSync(base) || !statSync(base).isDirectory()) return [];
  return (await walkImages(base, { recursive: deep }))
    .filter((r) => re.test(r))
    .map((r) => (baseSegs.length === 0 ? r : path.join(base, r)));
}

function tensorImages(t: Tensor, counter: { tensor: number }): SourceItem[] {
  if (t.isDisposed) throw new SourceError('<tensor>', 'the Tensor passed as a source has been disposed');
  let shape = t.shape;
  const what = `a Tensor [${shape.join(', ')}] ${t.dtype}`;
  if (shape.length === 2) shape = [1, 1, ...shape];
  else if (shape.length === 3) shape = [1, ...shape];
  if (shape.length !== 4 || ![1, 3, 4].includes(shape[1]!)) {
    throw new SourceError('<tensor>', `cannot use ${what} as images: pass [H, W], [C, H, W] or [N, C, H, W] with C = 1, 3 or 4`);
  }
  const [n, c, h, w] = shape as [number, number, number, number];
  const bytes = torch.scope(() => {
    let x = t.reshape(shape).cpu();
    if (torch.isFloatingPoint(x.dtype)) x = x.float().mul(255).round().clamp({ min: 0, max: 255 });
    else if (x.dtype !== 'uint8') throw new SourceError('<tensor>', `cannot use ${what} as images: use uint8 (0..255) or float (0..1) pixels`);
    return x.to('uint8').permute(0, 2, 3, 1).contiguous().toUint8Array();
  });
  const size = h * w * c;
  return Array.from({ length: n }, (_, i) => ({
    kind: 'tensor' as const, path: `<tensor ${counter.tensor++}>`,
    image: { data: bytes.subarray(i * size, (i + 1) * size), height: h, width: w, channels: c as 1 | 3 | 4 },
  }));
}

async function expandString(s: string): Promise<SourceItem[]> {
  if (/^https?:\/\//i.test(s)) return [{ kind: 'url', path: s }];
  if (/^file:\/\//i.test(s)) return expandString(fileURLToPath(s));
  if (existsSync(s)) {
    if (statSync(s).isDirectory()) {
      let folder: ImageFolder;
      try {
        folder = await ImageFolder.open(s, { labels: 'none' });
      } catch (e) {
        throw new SourceError(s, `no images to predict in folder ${s}: ${(e as Error).message.replace(/^ImageFolder: /, '')}`, { cause: e });
      }
      return folder.paths.map((p) => ({ kind: 'file' as const, path: p }));
    }
    return [{ kind: 'file', path: s }];
  }
  if (GLOB_CHARS.test(s)) {
    const files = await globImages(s);
    if (files.length === 0) throw new SourceError(s, `no image files match the pattern ${s} (looking for ${imageExtensions().join(' ')})`);
    return files.map((p) => ({ kind: 'file' as const, path: p }));
  }
  throw new SourceError(s, `image source ${s} does not exist (resolved to ${path.resolve(s)}): pass an image file, a folder, a glob such as 'photos/*.jpg', or an http(s) URL`);
}

/**
 * Expands `source` into images to load, lazily: a folder or glob is listed when the iteration
 * reaches it, so a stream starts before a long list is done.
 */
export async function* expandSources(source: Source, counter = { bytes: 0, tensor: 0 }): AsyncGenerator<SourceItem> {
  if (typeof source === 'string') {
    yield* await expandString(source);
  } else if (source instanceof URL) {
    yield* await expandString(source.href);
  } else if (source instanceof Tensor) {
    yield* tensorImages(source, counter);
  } else if (source instanceof Uint8Array) {
    yield { kind: 'bytes', path: `<buffer ${counter.bytes++}>`, bytes: source };
  } else if (Array.isArray(source)) {
    for (const s of source) yield* expandSources(s, counter);
  } else {
    const what = source === null ? 'null' : typeof source === 'object' ? (source as object).constructor?.name ?? 'object' : typeof source;
    throw new SourceError(String(source), `cannot predict on ${what}: pass a path, folder, glob, URL, Buffer/Uint8Array, Tensor, or an array of these`);
  }
}

/**
 * Downloads `url` with a time limit and a size limit.
 * @throws SourceError saying what failed (no network, DNS, refused, timeout, HTTP status, too large).
 */
export async function fetchImage(url: string, o: FetchOptions = {}): Promise<Uint8Array> {
  const timeoutMs = o.timeoutMs ?? 10_000;
  const maxBytes = o.maxBytes ?? 50 * 1024 * 1024;
  const fix = 'Check the address and the network connection, or download the image and pass its path.';
  let res: Response;
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    res = await fetch(url, { signal, redirect: 'follow' });
  } catch (e) {
    const err = e as Error & { cause?: { code?: string; message?: string } };
    if (err.name === 'TimeoutError' || err.name === 'AbortError') {
      throw new SourceError(url, `cannot fetch ${url}: no answer within ${timeoutMs / 1000} s (timeoutMs). ${fix}`, { cause: e });
    }
    const code = err.cause?.code;
    const why = code === 'ENOTFOUND' || code === 'EAI_AGAIN' ? `the host name does not resolve (${code}; offline?)`
      : code === 'ECONNREFUSED' ? 'the connection was refused (ECONNREFUSED)'
        : code === 'ENETUNREACH' || code === 'EHOSTUNREACH' ? `the network is unreachable (${code}; offline?)`
          : (err.cause?.message ?? err.message);
    throw new SourceError(url, `cannot fetch ${url}: ${why}. ${fix}`, { cause: e });
  }
  if (!res.ok) {
    await res.body?.cancel().catch(() => {});
    throw new SourceError(url, `cannot fetch ${url}: the server answered HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}. ${fix}`);
  }
  const declared = Number(res.headers.get('content-length') ?? NaN);
  const tooLarge = (n: number): SourceError => new SourceError(url, `cannot fetch ${url}: the image is larger than the ${maxBytes} byte limit (${n} bytes); raise maxBytes if it is meant`);
  if (Number.isFinite(declared) && declared > maxBytes) {
    await res.body?.cancel().catch(() => {});
    throw tooLarge(declared);
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    if (res.body) {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        total += chunk.byteLength;
        if (total > maxBytes) throw tooLarge(total);
        chunks.push(chunk);
      }
    }
  } catch (e) {
    if (e instanceof SourceError) throw e;
    const err = e as Error;
    const timedOut = err.name === 'TimeoutError' || err.name === 'AbortError' || signal.aborted;
    throw new SourceError(url, `cannot fetch ${url}: ${timedOut ? `the download took longer than ${timeoutMs / 1000} s (timeoutMs)` : `the download broke off (${err.message})`}. ${fix}`, { cause: e });
  }
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.byteLength;
  }
  return out;
}

/** The model's input: channels, side, as in training (`imageSize` null: decode only, at full resolution, for a model with its own resizing such as CLIP's processor). */
export interface InputSpec {
  channels: 1 | 3;
  imageSize: number | null;
}

/** A loaded image: the model-sized pixels and the original [height, width]. */
export interface LoadedImage {
  path: string;
  image: RawImage;
  origShape: [number, number];
}

/**
 * Loads one item and brings it to the model's input exactly as the training data path does
 * (decode at the model's channels, then `prepareImage` with `fit: 'cover'`; with `imageSize`
 * null, decoded only).
 */
export async function loadItem(item: SourceItem, spec: InputSpec, o: FetchOptions = {}): Promise<LoadedImage> {
  let raw: RawImage;
  if (item.kind === 'tensor') {
    raw = item.image;
  } else if (item.kind === 'file') {
    raw = await decodeImage(item.path, { channels: spec.channels });
  } else {
    const bytes = item.kind === 'url' ? await fetchImage(item.path, o) : item.bytes;
    raw = await decodeImage(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), { channels: spec.channels, name: item.path });
  }
  const image = spec.imageSize === null ? raw : await prepareImage(raw, { size: [spec.imageSize, spec.imageSize], channels: spec.channels, fit: 'cover' });
  return { path: item.path, image, origShape: [raw.height, raw.width] };
}
