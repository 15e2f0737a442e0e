/**
 * Synthetic images with class structure, written by the tests themselves: four classes of
 * 16×16 gray pictures (horizontal stripes, vertical stripes, a centred blob, a diagonal) with a
 * random phase, brightness and noise, so a self-supervised method can beat chance by far.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';

export const SHAPE_CLASSES = ['hstripes', 'vstripes', 'blob', 'diagonal'] as const;

/** One 16×16 gray image (raw bytes) of class `cls` (index into SHAPE_CLASSES). */
export function shapeImage(cls: number, rng: () => number): Buffer {
  const s = 16;
  const px = Buffer.alloc(s * s);
  const phase = Math.floor(rng() * 4);
  const bright = 150 + Math.floor(rng() * 100);
  for (let y = 0; y < s; y++) {
    for (let x = 0; x < s; x++) {
      const on = cls === 0 ? (y + phase) % 4 < 2 : cls === 1 ? (x + phase) % 4 < 2
        : cls === 2 ? (x - 7.5 - (phase - 1.5)) ** 2 + (y - 7.5) ** 2 < 16 : Math.abs(x - y - (phase - 1.5)) < 2;
      px[y * s + x] = Math.max(0, Math.min(255, (on ? bright : 30) + Math.floor((rng() - 0.5) * 40)));
    }
  }
  return px;
}

/** Writes `perClass` PNGs of each shape class to `dir/<class>/<i>.png` (classes in SHAPE_CLASSES order, drawn from `rng`). */
export async function writeShapeFolder(dir: string, perClass: number, rng: () => number): Promise<void> {
  for (const [c, name] of SHAPE_CLASSES.entries()) {
    mkdirSync(path.join(dir, name), { recursive: true });
    for (let i = 0; i < perClass; i++) {
      await sharp(shapeImage(c, rng), { raw: { width: 16, height: 16, channels: 1 } }).png().toFile(path.join(dir, name, `${i}.png`));
    }
  }
}
