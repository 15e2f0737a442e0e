/** Seeded pseudo-random generators for test fixtures (uniform floats in [0, 1)). */

/** mulberry32 (Tommy Ettinger's 32-bit generator): the default for new tests. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The ANSI C linear congruential generator (mod 2^31) that the older fixtures were drawn with. */
export function lcg(seed: number): () => number {
  let s = seed;
  return () => (s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
}

/** `n` bytes of 32-bit LCG noise (the top byte of each state): incompressible image content. */
export function noiseBytes(n: number, seed = 12345): Buffer {
  const px = Buffer.alloc(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    px[i] = s >>> 24;
  }
  return px;
}
