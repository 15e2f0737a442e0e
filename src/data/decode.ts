/**
 * Image decoding with sharp (libvips): any supported file or buffer to a
 * `RawImage` (HWC uint8) with a fixed channel count and optional resize.
 *
 * Conversion rules, chosen to match what PyTorch users get from
 * `PIL.Image.open(p).convert('RGB' | 'L')`:
 * - EXIF orientation is applied first (the image you see in a viewer).
 * - Multi-frame files (GIF, TIFF, WebP) give their first frame/page.
 * - Any colour space (CMYK, greyscale, 16-bit, palette, Lab...) goes to 8-bit sRGB;
 *   16-bit values are scaled (65535 → 255).
 * - Alpha is dropped, not composited: a transparent pixel keeps its stored
 *   colour, exactly like PIL's `convert('RGB')`. (Flattening onto white would
 *   change colours of partially transparent pixels and differ from PyTorch.)
 * - One channel is ITU-R BT.601 luma of the sRGB values with PIL's integer
 *   formula, `L = (19595 R + 38470 G + 7471 B + 32768) >> 16`, the same as
 *   `convert('L')` and torchvision's `Grayscale`. (libvips' own `b-w` works in
 *   linear light and would give different numbers.)
 */
import { promises as fsp } from 'node:fs';
import sharp from 'sharp';
import type { Metadata, OutputInfo } from 'sharp';
import { supportedFormats } from './files.js';
import type { RawImage } from './types.js';
import { DyadError } from '../errors.js';

/** How a `[height, width]` resize fits the image. */
export type Fit = 'cover' | 'fill' | 'contain';

/** Resampling kernel for resizing (sharp's names). */
export type Kernel = 'nearest' | 'linear' | 'cubic' | 'mitchell' | 'lanczos2' | 'lanczos3';

/** Options of `decodeImage`. */
export interface DecodeOptions {
  /** Output channels: 3 (RGB, default) or 1 (BT.601 luma). */
  channels?: 1 | 3;
  /**
   * Resize. A number resizes the shorter side to `size` keeping the aspect
   * ratio (torchvision `Resize(int)`), unless `fit` is given, in which case
   * it means a `size × size` square. `[h, w]` gives exactly that size.
   */
  size?: number | [number, number];
  /**
   * For an exact size: `'fill'` (default) stretches, like torchvision
   * `Resize((h, w))`; `'cover'` scales to cover and centre-crops; `'contain'`
   * scales to fit inside and pads with black.
   */
  fit?: Fit;
  /** Resampling kernel, default `'lanczos3'` (sharp's default; antialiased). */
  kernel?: Kernel;
  /** Name used in error messages for buffer input (file paths name themselves). */
  name?: string;
  /** Pixel-count limit against decompression bombs; default sharp's 268402689, `false` for none. */
  limitInputPixels?: number | false;
}

/** Why an image could not be decoded. */
export type DecodeReason = 'missing' | 'not-a-file' | 'empty' | 'unsupported' | 'truncated' | 'corrupt' | 'too-large';

/**
 * Thrown for a file or buffer that cannot be decoded. The message names the
 * file, the reason and a fix; `reason` is machine-readable and `detail` is
 * libvips' own message.
 */
export class DecodeError extends DyadError<'DECODE'> {
  override readonly name = 'DecodeError';
  constructor(
    /** The file path, or the `name` given for a buffer. */
    readonly file: string,
    readonly reason: DecodeReason,
    /** Human-readable reason, e.g. `truncated JPEG`. */
    readonly what: string,
    /** sharp/libvips message, cleaned up ('' when none). */
    readonly detail: string,
    fix: string,
    options?: { cause?: unknown },
  ) {
    super('DECODE', `cannot decode ${file}: ${what}${detail ? ` (${detail})` : ''}. ${fix}`, options);
  }
}

/** What `imageInfo` reports about an image without decoding its pixels. */
export interface ImageInfo {
  /** Height and width after EXIF orientation (what `decodeImage` returns before resizing). */
  height: number;
  width: number;
  /** Channels as stored (before conversion), alpha included. */
  channels: number;
  hasAlpha: boolean;
  /** sharp's format name: `jpeg`, `png`, `webp`, `gif`, `tiff`, `heif`, ... */
  format: string;
  /** Colour space as stored: `srgb`, `b-w`, `cmyk`, `rgb16`, ... */
  space: string;
  /** Sample depth as stored: `uchar`, `ushort`, ... */
  depth: string;
  /** EXIF orientation 1..8 (1 when absent). */
  orientation: number;
  /** Frames/pages (1 for still images). */
  pages: number;
}

// ---------------------------------------------------------------- formats

/** Guesses the container format from the first bytes, for error messages. */
export function sniffFormat(head: Uint8Array): string | undefined {
  const ascii = (from: number, to: number) => String.fromCharCode(...head.subarray(from, to));
  if (head.length >= 3 && head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return 'JPEG';
  if (head.length >= 4 && head[0] === 0x89 && ascii(1, 4) === 'PNG') return 'PNG';
  if (ascii(0, 4) === 'GIF8') return 'GIF';
  if (ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP') return 'WebP';
  if (ascii(0, 4) === 'II*\0' || ascii(0, 4) === 'MM\0*') return 'TIFF';
  if (ascii(4, 8) === 'ftyp') {
    const brand = ascii(8, 12);
    if (brand === 'avif' || brand === 'avis') return 'AVIF';
    if (/^(heic|heix|hevc|hevx|mif1|msf1)$/.test(brand)) return 'HEIC';
    return undefined;
  }
  if (ascii(0, 2) === 'BM') return 'BMP';
  if (ascii(0, 4) === '%PDF') return 'PDF';
  if (ascii(0, 4) === '8BPS') return 'PSD';
  if (/^P[1-7]\s/.test(ascii(0, 3))) return 'PNM';
  if (head.length >= 4 && head[0] === 0xff && head[1] === 0x0a) return 'JPEG XL';
  if (head.length >= 4 && head[0] === 0 && head[1] === 0 && head[2] === 1 && head[3] === 0) return 'ICO';
  return undefined;
}

// ---------------------------------------------------------------- sharp configuration

let configured = false;

/**
 * Sets sharp's process-wide resources. Called with defaults on the first
 * decode unless called before:
 * - `concurrency` (default 1): libvips threads per image. Datasets decode
 *   several images at once on libuv's pool (`UV_THREADPOOL_SIZE`, default 4),
 *   which uses small machines better than threading inside one small image.
 * - `cache` (default false): libvips' operation cache only helps when the same
 *   operation repeats on the same input, which a data pipeline never does;
 *   off keeps memory flat.
 */
export function configureDecoder(opts: { concurrency?: number; cache?: boolean } = {}): void {
  sharp.concurrency(opts.concurrency ?? 1);
  sharp.cache(opts.cache ?? false);
  configured = true;
}

// ---------------------------------------------------------------- decoding

type Source = string | Buffer | Uint8Array;

function toInput(source: Source): string | Buffer {
  if (typeof source === 'string' || Buffer.isBuffer(source)) return source;
  if (source instanceof Uint8Array) return Buffer.from(source.buffer, source.byteOffset, source.byteLength);
  throw new TypeError(`decodeImage: source must be a file path, Buffer or Uint8Array, got ${typeof source}`);
}

function sourceName(source: Source, name?: string): string {
  return typeof source === 'string' ? source : (name ?? '<buffer>');
}

function checkSize(size: number, what: string): number {
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`decodeImage: ${what} must be a positive integer, got ${size}`);
  return size;
}

/**
 * Decodes an image file or encoded buffer (JPEG, PNG, WebP, GIF, TIFF, AVIF
 * where this sharp build reads it) into a `RawImage` with `opts.channels`
 * channels (default 3), after EXIF orientation, colour conversion and the
 * optional resize described in the module comment.
 *
 * @throws DecodeError for a missing, empty, truncated, corrupt or unsupported file.
 */
export async function decodeImage(source: Source, opts: DecodeOptions = {}): Promise<RawImage> {
  if (!configured) configureDecoder();
  const channels = opts.channels ?? 3;
  if (channels !== 1 && channels !== 3) throw new RangeError(`decodeImage: channels must be 1 or 3, got ${String(channels)}`);
  const input = toInput(source);
  const name = sourceName(source, opts.name);
  if (typeof input !== 'string' && input.length === 0) throw await classify(source, name, new Error(''));

  let pipeline = sharp(input, {
    failOn: 'error', // reject truncated/invalid pixel data; tolerate mere warnings, like PIL
    autoOrient: true,
    pages: 1,
    page: 0,
    ...(opts.limitInputPixels !== undefined ? { limitInputPixels: opts.limitInputPixels } : {}),
  });
  if (opts.size !== undefined) {
    const kernel = opts.kernel ?? 'lanczos3';
    if (typeof opts.size === 'number' && opts.fit === undefined) {
      const s = checkSize(opts.size, 'size');
      pipeline = pipeline.resize({ width: s, height: s, fit: 'outside', kernel }); // shorter side = s
    } else {
      const [h, w] = typeof opts.size === 'number' ? [opts.size, opts.size] : opts.size;
      const fit = opts.fit ?? 'fill';
      if (fit !== 'fill' && fit !== 'cover' && fit !== 'contain') throw new RangeError(`decodeImage: fit must be 'fill', 'cover' or 'contain', got '${String(fit)}'`);
      pipeline = pipeline.resize({
        width: checkSize(w, 'size width'),
        height: checkSize(h, 'size height'),
        fit,
        position: 'centre',
        kernel,
        background: { r: 0, g: 0, b: 0, alpha: 1 },
      });
    }
  }
  let out: { data: Buffer; info: OutputInfo };
  try {
    out = await pipeline.toColourspace('srgb').removeAlpha().raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  } catch (e) {
    throw await classify(source, name, e);
  }
  const { data, info } = out;
  if (info.channels !== 3) throw new DecodeError(name, 'corrupt', `unexpected ${info.channels}-channel result after sRGB conversion`, '', 'Re-export the file as 8-bit RGB.');
  const rgb: RawImage = { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), height: info.height, width: info.width, channels: 3 };
  return channels === 1 ? rgbToGray(rgb) : rgb;
}

/**
 * BT.601 luma of an RGB image with PIL's integer arithmetic (what
 * `Image.convert('L')` computes). A 1-channel image is returned as is.
 */
export function rgbToGray(img: RawImage): RawImage {
  if (img.channels === 1) return img;
  if (img.channels !== 3) throw new RangeError(`rgbToGray: expected 3 channels, got ${img.channels}`);
  const n = img.height * img.width;
  const src = img.data;
  const out = new Uint8Array(n);
  for (let i = 0, j = 0; i < n; i++, j += 3) {
    out[i] = (src[j]! * 19595 + src[j + 1]! * 38470 + src[j + 2]! * 7471 + 0x8000) >>> 16;
  }
  return { data: out, height: img.height, width: img.width, channels: 1 };
}

/** Replicates a 1-channel image into 3 identical channels. A 3-channel image is returned as is. */
export function grayToRgb(img: RawImage): RawImage {
  if (img.channels === 3) return img;
  if (img.channels !== 1) throw new RangeError(`grayToRgb: expected 1 channel, got ${img.channels}`);
  const n = img.height * img.width;
  const out = new Uint8Array(n * 3);
  for (let i = 0, j = 0; i < n; i++, j += 3) out[j] = out[j + 1] = out[j + 2] = img.data[i]!;
  return { data: out, height: img.height, width: img.width, channels: 3 };
}

/**
 * Reads an image's header: size after EXIF orientation (the `origShape` of a
 * prediction), stored channels, format. Decodes no pixels.
 *
 * @throws DecodeError when the header cannot be read.
 */
export async function imageInfo(source: Source, opts: { name?: string } = {}): Promise<ImageInfo> {
  if (!configured) configureDecoder();
  const input = toInput(source);
  const name = sourceName(source, opts.name);
  if (typeof input !== 'string' && input.length === 0) throw await classify(source, name, new Error(''));
  let m: Metadata;
  try {
    m = await sharp(input, { failOn: 'error' }).metadata();
  } catch (e) {
    throw await classify(source, name, e);
  }
  if (!m.width || !m.height) throw new DecodeError(name, 'corrupt', 'image header has no size', '', 'Remove or re-export the file.');
  const orientation = m.orientation ?? 1;
  const swap = orientation >= 5 && orientation <= 8;
  return {
    height: swap ? m.width : m.height,
    width: swap ? m.height : m.width,
    channels: m.channels ?? 0,
    hasAlpha: m.hasAlpha ?? false,
    format: m.format ?? 'unknown',
    space: m.space ?? 'unknown',
    depth: m.depth ?? 'unknown',
    orientation,
    pages: m.pages ?? 1,
  };
}

/** `[height, width]` after EXIF orientation, from the header only. */
export async function imageSize(source: Source, opts: { name?: string } = {}): Promise<[number, number]> {
  const info = await imageInfo(source, opts);
  return [info.height, info.width];
}

// ---------------------------------------------------------------- error classification

const SKIP_HINT = "or pass onError: 'skip' to the dataset";

/** Cleans a libvips message: unique non-empty lines, joined, at most ~300 characters. */
function cleanDetail(message: string, name: string): string {
  if (/unsupported image format/.test(message)) return 'header not readable';
  const lines = [...new Set(message.split('\n')
    .map((l) => (l.startsWith(`${name}: `) ? l.slice(name.length + 2) : l).trim())
    .filter((l) => l && !/bad seek to/.test(l)))];
  const text = lines.join('; ');
  return text.length > 300 ? `${text.slice(0, 297)}...` : text;
}

async function readHead(source: Source): Promise<{ head: Uint8Array; tail: Uint8Array; size: number } | { missing: true } | { notFile: string }> {
  if (typeof source !== 'string') return { head: source.subarray(0, 32), tail: source.subarray(Math.max(0, source.length - 16)), size: source.length };
  let handle: Awaited<ReturnType<typeof fsp.open>> | undefined;
  try {
    const st = await fsp.stat(source);
    if (!st.isFile()) return { notFile: st.isDirectory() ? 'a directory' : 'not a regular file' };
    handle = await fsp.open(source, 'r');
    const head = new Uint8Array(32);
    const { bytesRead } = await handle.read(head, 0, 32, 0);
    const tail = new Uint8Array(Math.min(16, st.size));
    await handle.read(tail, 0, tail.length, st.size - tail.length);
    return { head: head.subarray(0, bytesRead), tail, size: st.size };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { missing: true };
    if (code === 'EACCES' || code === 'EPERM') return { notFile: 'not readable (permission denied)' };
    return { head: new Uint8Array(0), tail: new Uint8Array(0), size: -1 };
  } finally {
    await handle?.close();
  }
}

async function classify(source: Source, name: string, err: unknown): Promise<DecodeError> {
  const raw = err instanceof Error ? err.message : String(err);
  const detail = cleanDetail(raw, name);
  const opts = { cause: err };
  const head = await readHead(source);
  if ('missing' in head) return new DecodeError(name, 'missing', 'file not found', '', `Check the path; if files were moved or deleted, re-open the dataset, ${SKIP_HINT}.`, opts);
  if ('notFile' in head) return new DecodeError(name, 'not-a-file', head.notFile, '', `Pass a readable image file, ${SKIP_HINT}.`, opts);
  if (head.size === 0) return new DecodeError(name, 'empty', 'empty file (0 bytes)', '', `Remove or re-export the file, ${SKIP_HINT}.`, opts);
  if (/pixel limit/i.test(raw)) {
    return new DecodeError(name, 'too-large', 'image is larger than the pixel limit', detail, 'Downscale the file, or pass a larger limitInputPixels (false for none) if you trust it.', opts);
  }
  const fmt = sniffFormat(head.head);
  const supported = supportedFormats();
  if (fmt === undefined || !supported.includes(fmt)) {
    const bytes = Array.from(head.head.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join(' ');
    const what = fmt ? `unsupported format ${fmt}` : `not a recognised image format (first bytes: ${bytes})`;
    return new DecodeError(name, 'unsupported', what, `this build reads ${supported.join(', ')}`,
      `Convert the file to PNG or JPEG, remove it, ${SKIP_HINT}.`, opts);
  }
  // libvips' message is not always specific ('Unknown error' under some thread interleavings), so
  // also look at the file's end: a JPEG ends with the EOI marker FF D9, a PNG with an IEND chunk.
  const t = head.tail;
  const missingEnd = (fmt === 'JPEG' && !(t.length >= 2 && t[t.length - 2] === 0xff && t[t.length - 1] === 0xd9)) ||
    (fmt === 'PNG' && !(t.length >= 8 && String.fromCharCode(...t.subarray(t.length - 8, t.length - 4)) === 'IEND'));
  const truncated = missingEnd || /premature end|unexpected end|end of file|truncat|not enough data|out of data|short read/i.test(raw);
  // libpng reports truncation and bad checksums alike as 'read error'.
  const what = truncated ? `truncated ${fmt}` : /read error/i.test(raw) ? `corrupt or truncated ${fmt}` : `corrupt ${fmt}`;
  return new DecodeError(name, truncated ? 'truncated' : 'corrupt', what, detail, `Remove or re-export the file, ${SKIP_HINT}.`, opts);
}
