import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import type { Sharp } from 'sharp';
import { DecodeError, decodeImage, imageInfo, imageSize, rgbToGray, supportedFormats, type RawImage } from '../src/data/index.js';
import { noiseBytes } from './helpers/rng.js';
import { tempDir } from './helpers/tmp.js';

type RGB = [number, number, number];
let dir: string;

const solid = (c: RGB, width = 16, height = 12) =>
  sharp({ create: { width, height, channels: 3, background: { r: c[0], g: c[1], b: c[2] } } });

/** Noisy image: JPEG/PNG files big enough that cutting them in half cuts pixel data. */
function noise(width = 64, height = 64): Sharp {
  return sharp(noiseBytes(width * height * 3), { raw: { width, height, channels: 3 } });
}

function pixel(img: RawImage, y: number, x: number): number[] {
  const o = (y * img.width + x) * img.channels;
  return Array.from(img.data.subarray(o, o + img.channels));
}

function assertSolid(img: RawImage, c: number[], tol: number): void {
  for (const [y, x] of [[0, 0], [img.height - 1, img.width - 1], [img.height >> 1, img.width >> 1]] as const) {
    const p = pixel(img, y, x);
    for (let k = 0; k < c.length; k++) assert.ok(Math.abs(p[k]! - c[k]!) <= tol, `pixel (${y},${x}) = ${p}, expected ${c} ±${tol}`);
  }
}

async function write(name: string, data: Buffer | Promise<Buffer> | string): Promise<string> {
  const p = path.join(dir, name);
  fs.writeFileSync(p, await data);
  return p;
}

before(() => {
  dir = tempDir('decode');
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('decodeImage formats', () => {
  const c: RGB = [200, 100, 50];

  it('JPEG', async () => {
    const img = await decodeImage(await write('a.jpg', solid(c).jpeg({ quality: 95 }).toBuffer()));
    assert.deepEqual([img.height, img.width, img.channels, img.data.length], [12, 16, 3, 12 * 16 * 3]);
    assertSolid(img, c, 4);
  });

  it('PNG 8-bit, exact', async () => {
    const img = await decodeImage(await write('a.png', solid(c).png().toBuffer()));
    assert.equal(img.channels, 3);
    assertSolid(img, c, 0);
  });

  it('PNG 16-bit scales to 8-bit (65535 → 255)', async () => {
    const px = new Uint16Array(4 * 4 * 3);
    for (let i = 0; i < px.length; i += 3) [px[i], px[i + 1], px[i + 2]] = [65535, 32896, 0];
    const buf = await sharp(px, { raw: { width: 4, height: 4, channels: 3 } }).toColourspace('rgb16').png().toBuffer();
    assert.equal((await sharp(buf).metadata()).depth, 'ushort');
    const img = await decodeImage(buf, { name: 'sixteen.png' });
    assertSolid(img, [255, 128, 0], 1);
  });

  it('palette PNG', async () => {
    const buf = await solid([255, 0, 0]).png({ palette: true }).toBuffer();
    assert.equal(buf[25], 3, 'IHDR colour type 3 (palette)');
    assertSolid(await decodeImage(buf), [255, 0, 0], 0);
  });

  it('RGBA PNG: alpha dropped, colour kept (like PIL convert("RGB"))', async () => {
    const buf = await sharp({ create: { width: 8, height: 8, channels: 4, background: { r: 10, g: 20, b: 30, alpha: 0.5 } } }).png().toBuffer();
    const img = await decodeImage(buf);
    assert.equal(img.channels, 3);
    assertSolid(img, [10, 20, 30], 1);
  });

  it('WebP (lossless and lossy)', async () => {
    assertSolid(await decodeImage(await write('a.webp', solid(c).webp({ lossless: true }).toBuffer())), c, 0);
    assertSolid(await decodeImage(await solid(c).webp({ quality: 90 }).toBuffer()), c, 6);
  });

  it('GIF: first frame of an animation', async () => {
    const w = 6, h = 4;
    const frames = Buffer.alloc(w * h * 2 * 3);
    for (let i = 0; i < w * h; i++) frames.set([255, 0, 0], i * 3); // frame 0 red
    for (let i = w * h; i < 2 * w * h; i++) frames.set([0, 0, 255], i * 3); // frame 1 blue
    const buf = await sharp(frames, { raw: { width: w, height: h * 2, channels: 3, pageHeight: h } }).gif().toBuffer();
    assert.equal((await sharp(buf).metadata()).pages, 2);
    const img = await decodeImage(buf);
    assert.deepEqual([img.height, img.width], [h, w]);
    assertSolid(img, [255, 0, 0], 2);
  });

  it('TIFF', async () => {
    assertSolid(await decodeImage(await write('a.tiff', solid(c).tiff().toBuffer())), c, 0);
  });

  it('AVIF where supported', async (t) => {
    if (!supportedFormats().includes('AVIF')) return t.skip('this sharp build reads no AVIF');
    const img = await decodeImage(await write('a.avif', solid(c).avif({ quality: 90 }).toBuffer()));
    assert.deepEqual([img.height, img.width, img.channels], [12, 16, 3]);
    assertSolid(img, c, 8);
  });
});

describe('decodeImage conversions', () => {
  it('applies EXIF orientation 6 (90° clockwise): dims swap, left goes to top', async () => {
    const w = 20, h = 10;
    const px = Buffer.alloc(w * h * 3);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) px.set(x < w / 2 ? [255, 0, 0] : [0, 0, 255], (y * w + x) * 3);
    const file = await write('rot.jpg', sharp(px, { raw: { width: w, height: h, channels: 3 } }).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer());
    assert.equal((await sharp(file).metadata()).orientation, 6);
    const img = await decodeImage(file);
    assert.deepEqual([img.height, img.width], [20, 10]);
    assert.ok(pixel(img, 1, 5)[0]! > 200 && pixel(img, 1, 5)[2]! < 60, `top is red: ${pixel(img, 1, 5)}`);
    assert.ok(pixel(img, 18, 5)[2]! > 200 && pixel(img, 18, 5)[0]! < 60, `bottom is blue: ${pixel(img, 18, 5)}`);
    assert.deepEqual(await imageSize(file), [20, 10]);
    const info = await imageInfo(file);
    assert.equal(info.orientation, 6);
    assert.equal(info.format, 'jpeg');
  });

  it('CMYK JPEG → sRGB', async () => {
    const buf = await solid([200, 100, 50]).toColourspace('cmyk').jpeg({ quality: 95 }).toBuffer();
    assert.equal((await sharp(buf).metadata()).space, 'cmyk');
    const img = await decodeImage(buf);
    assert.equal(img.channels, 3);
    const [r, g, b] = pixel(img, 5, 5) as RGB;
    // a CMYK round trip through ICC profiles is not exact; the hue must survive
    assert.ok(Math.abs(r - 200) < 20 && Math.abs(g - 100) < 20 && Math.abs(b - 50) < 40 && r > g && g > b, `got ${[r, g, b]}`);
  });

  it('greyscale → 3 channels (replicated)', async () => {
    const buf = await solid([90, 90, 90]).toColourspace('b-w').png().toBuffer();
    assert.equal((await sharp(buf).metadata()).channels, 1);
    const img = await decodeImage(buf);
    assert.equal(img.channels, 3);
    assertSolid(img, [90, 90, 90], 0);
    const grey = await decodeImage(buf, { channels: 1 });
    assert.equal(grey.channels, 1);
    assertSolid(grey, [90], 0);
  });

  it('RGB → 1 channel is ITU-R 601 luma (PIL convert("L"))', async () => {
    const img = await decodeImage(await solid([200, 100, 50]).png().toBuffer(), { channels: 1 });
    assert.deepEqual([img.channels, img.data.length], [1, 16 * 12]);
    const luma = Math.round(0.299 * 200 + 0.587 * 100 + 0.114 * 50);
    assertSolid(img, [luma], 1);
    assert.equal(rgbToGray({ data: Uint8Array.of(255, 255, 255), height: 1, width: 1, channels: 3 }).data[0], 255);
  });

  it('resizes: shorter side, exact fill, cover, contain', async () => {
    const buf = await solid([0, 255, 0], 40, 20).png().toBuffer();
    let img = await decodeImage(buf, { size: 10 });
    assert.deepEqual([img.height, img.width], [10, 20]);
    img = await decodeImage(buf, { size: [8, 12] });
    assert.deepEqual([img.height, img.width], [8, 12]);
    assertSolid(img, [0, 255, 0], 1);
    img = await decodeImage(buf, { size: 10, fit: 'cover' });
    assert.deepEqual([img.height, img.width], [10, 10]);
    img = await decodeImage(buf, { size: [10, 10], fit: 'contain' });
    assert.deepEqual([img.height, img.width], [10, 10]);
    assert.deepEqual(pixel(img, 0, 5), [0, 0, 0], 'padding is black');
    assert.deepEqual(pixel(img, 5, 5), [0, 255, 0]);
    await assert.rejects(decodeImage(buf, { size: 0 }), RangeError);
  });
});

describe('decodeImage errors', () => {
  const hint = /onError: 'skip'/;

  it('random bytes → unsupported, naming the file', async () => {
    const bytes = Buffer.alloc(300);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7919 + 13) & 255;
    const file = await write('random.jpg', bytes);
    await assert.rejects(decodeImage(file), (e: unknown) => {
      assert.ok(e instanceof DecodeError);
      assert.equal(e.reason, 'unsupported');
      assert.equal(e.file, file);
      assert.match(e.message, new RegExp(`cannot decode ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not a recognised image format`));
      assert.match(e.message, hint);
      return true;
    });
  });

  it('truncated JPEG (half a file)', async () => {
    const full = await noise().jpeg().toBuffer();
    const file = await write('half.jpg', full.subarray(0, full.length >> 1));
    await assert.rejects(decodeImage(file), (e: unknown) => {
      assert.ok(e instanceof DecodeError);
      assert.equal(e.reason, 'truncated');
      assert.match(e.message, /half\.jpg: truncated JPEG \(.*premature end/);
      assert.match(e.message, /Remove or re-export the file/);
      return true;
    });
  });

  it('truncated PNG and GIF', async () => {
    const png = await noise().png().toBuffer();
    await assert.rejects(decodeImage(await write('half.png', png.subarray(0, png.length >> 1))), (e: unknown) =>
      e instanceof DecodeError && /half\.png: (corrupt or truncated|truncated) PNG/.test(e.message));
    const gif = await noise().gif().toBuffer();
    await assert.rejects(decodeImage(gif.subarray(0, gif.length >> 1), { name: 'half.gif' }), (e: unknown) =>
      e instanceof DecodeError && e.reason === 'truncated' && /^cannot decode half\.gif: truncated GIF/.test(e.message));
  });

  it('empty file and empty buffer', async () => {
    const file = await write('empty.png', Buffer.alloc(0));
    await assert.rejects(decodeImage(file), (e: unknown) => e instanceof DecodeError && e.reason === 'empty' && e.message.includes('empty.png: empty file') && hint.test(e.message));
    await assert.rejects(decodeImage(new Uint8Array(0), { name: 'blob' }), (e: unknown) => e instanceof DecodeError && /cannot decode blob: empty file/.test(e.message));
  });

  it('unsupported format (BMP) names the format and the fix', async () => {
    const bmp = Buffer.alloc(80);
    bmp.write('BM', 0, 'latin1');
    const file = await write('old.bmp', bmp);
    await assert.rejects(decodeImage(file), (e: unknown) => {
      assert.ok(e instanceof DecodeError);
      assert.equal(e.reason, 'unsupported');
      assert.match(e.message, /old\.bmp: unsupported format BMP \(this build reads JPEG, PNG/);
      assert.match(e.message, /Convert the file to PNG or JPEG/);
      return true;
    });
  });

  it('missing file and directory', async () => {
    await assert.rejects(decodeImage(path.join(dir, 'nope.jpg')), (e: unknown) => e instanceof DecodeError && e.reason === 'missing' && /nope\.jpg: file not found/.test(e.message));
    await assert.rejects(decodeImage(dir), (e: unknown) => e instanceof DecodeError && e.reason === 'not-a-file');
    await assert.rejects(imageInfo(path.join(dir, 'nope.jpg')), DecodeError);
  });
});
