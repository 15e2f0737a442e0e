/**
 * Bringing decoded images (`RawImage`, HWC uint8) to one batch shape, without tensors: channel
 * conversion, resizing with sharp from raw pixels, the same-shape check, and packing into one
 * NCHW buffer. Shared by the `DataLoader` (main thread) and its decode worker, which must not
 * load the libtorch addon.
 */
import sharp from 'sharp';
import { grayToRgb, rgbToGray, type Fit, type Kernel } from './decode.js';
import type { Channels, RawImage, Sample } from './types.js';


/** Target of `prepareImage`: size and/or channels, with resize settings. */
export interface ImageTarget {
  size?: [number, number];
  channels?: 1 | 3;
  fit?: Fit;
  kernel?: Kernel;
}

/** `imageSize` option to `[h, w]`, validated. */
export function normalizeSize(size: number | [number, number] | undefined, who: string): [number, number] | undefined {
  if (size === undefined) return undefined;
  const hw = typeof size === 'number' ? [size, size] : size;
  if (!Array.isArray(hw) || hw.length !== 2 || !hw.every((v) => Number.isInteger(v) && v >= 1)) {
    throw new RangeError(`${who}: imageSize must be a positive integer or [height, width] of positive integers, got ${JSON.stringify(size)}`);
  }
  return [hw[0]!, hw[1]!];
}

export function checkChannels(channels: unknown, who: string): 1 | 3 | undefined {
  if (channels === undefined) return undefined;
  if (channels !== 1 && channels !== 3) throw new RangeError(`${who}: channels must be 1 or 3, got ${String(channels)}`);
  return channels;
}

function dropAlpha(img: RawImage): RawImage {
  if (img.channels !== 4) return img;
  const n = img.height * img.width;
  const out = new Uint8Array(n * 3);
  for (let i = 0, j = 0, k = 0; i < n; i++, j += 4, k += 3) {
    out[k] = img.data[j]!;
    out[k + 1] = img.data[j + 1]!;
    out[k + 2] = img.data[j + 2]!;
  }
  return { data: out, height: img.height, width: img.width, channels: 3 };
}

function toChannels(img: RawImage, c: 1 | 3): RawImage {
  const rgb = dropAlpha(img);
  return c === 1 ? rgbToGray(rgb) : grayToRgb(rgb);
}

/** Resizes a raw HWC image with sharp (libvips, off the JS thread) to exactly `[h, w]`. */
export async function resizeRaw(img: RawImage, [h, w]: [number, number], fit: Fit = 'fill', kernel: Kernel = 'lanczos3'): Promise<RawImage> {
  if (img.height === h && img.width === w) return img;
  const { data, info } = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: img.channels } })
    .resize({ width: w, height: h, fit, position: 'centre', kernel, background: { r: 0, g: 0, b: 0, alpha: 1 } })
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
  const out: RawImage = { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), height: info.height, width: info.width, channels: info.channels as Channels };
  // libvips keeps the band count of raw input; guard anyway.
  return out.channels === img.channels ? out : toChannels(out, img.channels === 1 ? 1 : 3);
}

/** Brings one image to the target channels and size (channel reduction before resizing, expansion after). */
export async function prepareImage(img: RawImage, t: ImageTarget): Promise<RawImage> {
  let out = img;
  if (t.channels === 1 && out.channels !== 1) out = toChannels(out, 1);
  if (t.size !== undefined) out = await resizeRaw(out, t.size, t.fit, t.kernel);
  if (t.channels === 3 && out.channels !== 3) out = toChannels(out, 3);
  return out;
}

function describe(s: Sample): string {
  return s.path !== undefined ? `sample ${s.index} (${s.path})` : `sample ${s.index}`;
}

/**
 * Checks that all samples share one size and channel count and returns it.
 * @throws Error naming two samples that differ, and the fix.
 */
export function commonShape(samples: Sample[], who = 'DataLoader'): [number, number, number] {
  const first = samples[0]!;
  const { height: h, width: w, channels: c } = first.image;
  for (const s of samples) {
    const im = s.image;
    if (im.height !== h || im.width !== w) {
      throw new Error(`${who}: images in a batch must have the same size, but ${describe(first)} is ${h}×${w} and ${describe(s)} is ${im.height}×${im.width}. ` +
        'Pass imageSize: [height, width] to resize them (or size: [height, width] to ImageFolder.open, to resize while decoding).');
    }
    if (im.channels !== c) {
      throw new Error(`${who}: images in a batch must have the same channel count, but ${describe(first)} has ${c} and ${describe(s)} has ${im.channels}. ` +
        'Pass channels: 1 or 3 to convert them.');
    }
    if (im.data.length !== h * w * c) throw new RangeError(`${who}: ${describe(s)} has ${im.data.length} bytes, expected ${h}×${w}×${c}`);
  }
  return [h, w, c];
}


/** Packs same-size HWC images into one NCHW buffer (transposing in JS; used off the main thread). */
export function packNCHW(images: RawImage[], [h, w, c]: [number, number, number]): Uint8Array {
  const hw = h * w;
  const size = hw * c;
  const out = new Uint8Array(images.length * size);
  for (let i = 0; i < images.length; i++) {
    const src = images[i]!.data;
    const o = i * size;
    if (c === 1) out.set(src, o);
    else if (c === 3) {
      for (let p = 0, s = 0; p < hw; p++, s += 3) {
        out[o + p] = src[s]!;
        out[o + hw + p] = src[s + 1]!;
        out[o + 2 * hw + p] = src[s + 2]!;
      }
    } else {
      for (let ch = 0; ch < c; ch++) for (let p = 0, s = ch; p < hw; p++, s += c) out[o + ch * hw + p] = src[s]!;
    }
  }
  return out;
}
