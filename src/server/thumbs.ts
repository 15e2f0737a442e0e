/**
 * Thumbnails made by sharp and cached on disk: `<cacheDir>/<sha256(path, size, mtime, side)>.webp`.
 * The source is decoded with a pixel limit (decompression bombs) and EXIF orientation applied.
 */
import { promises as fsp, mkdirSync } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import sharp from 'sharp';

export const THUMB_SIDES = [64, 128, 256] as const;

export class Thumbnails {
  constructor(readonly cacheDir: string) {
    mkdirSync(cacheDir, { recursive: true });
  }

  /** The WebP thumbnail (longest side `side`, never enlarged beyond 4×) of an image file. */
  async get(file: string, side: number): Promise<Buffer> {
    const st = await fsp.stat(file);
    const key = createHash('sha256').update(`${file}\0${st.size}\0${st.mtimeMs}\0${side}`).digest('hex').slice(0, 40);
    const cached = path.join(this.cacheDir, `${key}.webp`);
    try {
      return await fsp.readFile(cached);
    } catch { /* not cached yet */ }
    const img = sharp(file, { failOn: 'error', limitInputPixels: 100_000_000, pages: 1, autoOrient: true });
    const meta = await img.metadata();
    const big = Math.max(meta.width ?? side, meta.height ?? side);
    // small images (MNIST-sized) are scaled up with nearest neighbour so they stay crisp
    const kernel = big < side ? 'nearest' : 'lanczos3';
    const out = await img.resize({ width: side, height: side, fit: 'inside', kernel, withoutEnlargement: big * 4 < side }).webp({ quality: 82 }).toBuffer();
    const tmp = `${cached}.${process.pid}.tmp`;
    await fsp.writeFile(tmp, out);
    await fsp.rename(tmp, cached);
    return out;
  }
}
