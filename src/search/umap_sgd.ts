/**
 * The inner loop of UMAP's layout SGD (umap.ts; umap-learn `optimize_layout_euclidean`), on plain
 * typed arrays and with no imports, so a worker thread (umap_worker.ts) can run it too.
 */

/** umap-learn's `find_ab_params(spread=1.0, min_dist=0.1)`. */
export const UMAP_A = 1.576943460405378;
export const UMAP_B = 0.8950608781227859;

const F64 = new Float64Array(1);
const U32 = new Uint32Array(F64.buffer);

/**
 * x^b for x > 0 (a normal float64) as 2^(b·log2 x), from the exponent bits and short series
 * (relative error < 1e-6): 3× faster than V8's Math.pow with a fractional exponent, which the
 * layout calls ~10⁹ times for 70k points.
 */
export function fastPow(x: number, b: number): number {
  F64[0] = x;
  const hi = U32[1]!;
  const e = (hi >>> 20) - 1023;
  U32[1] = (hi & 0x000fffff) | 0x3ff00000;
  const m = F64[0]!; // x = m·2^e, m in [1, 2)
  const t = (m - 1) / (m + 1), t2 = t * t; // ln m = 2 atanh t, t in [0, 1/3)
  const y = b * (e + 2 * t * (1 + t2 * (1 / 3 + t2 * (1 / 5 + t2 * (1 / 7 + t2 * (1 / 9 + t2 / 11))))) * Math.LOG2E);
  const fl = Math.floor(y);
  const f = (y - fl) * Math.LN2; // 2^(y−fl) = e^f, f in [0, ln 2)
  const p = 1 + f * (1 + f * (1 / 2 + f * (1 / 6 + f * (1 / 24 + f * (1 / 120 + f * (1 / 720 + f * (1 / 5040 + f / 40320)))))));
  if (fl < -1020 || fl > 1020) return Math.pow(x, b);
  F64[0] = p;
  U32[1] = U32[1]! + (fl << 20);
  return F64[0]!;
}

/** One epoch of `optimizeLayout` over edges [t0, t1) (a plain synchronous function, so V8 optimises the hot loop). */
export function layoutEpoch(emb: Float32Array, n: number, head: Int32Array, tail: Int32Array, eps: Float64Array, next: Float64Array, epsNeg: Float64Array, nextNeg: Float64Array, t0: number, t1: number, epoch: number, alpha: number, state: { rand: number }): void {
  const a = UMAP_A, b = UMAP_B;
  let r = state.rand;
  for (let t = t0; t < t1; t++) {
    if (next[t]! > epoch) continue;
    const j = head[t]! << 1, kx = tail[t]! << 1;
    let cx = emb[j]!, cy = emb[j + 1]!;
    let dx = cx - emb[kx]!, dy = cy - emb[kx + 1]!;
    let d2 = dx * dx + dy * dy;
    if (d2 > 0) {
      const pb = fastPow(d2, b);
      const coef = (-2 * a * b * pb) / (d2 * (a * pb + 1));
      let gx = coef * dx, gy = coef * dy;
      gx = (gx > 4 ? 4 : gx < -4 ? -4 : gx) * alpha;
      gy = (gy > 4 ? 4 : gy < -4 ? -4 : gy) * alpha;
      cx += gx;
      cy += gy;
      emb[kx] = emb[kx]! - gx;
      emb[kx + 1] = emb[kx + 1]! - gy;
    }
    next[t] = next[t]! + eps[t]!;
    const nNeg = Math.floor((epoch - nextNeg[t]!) / epsNeg[t]!);
    for (let p = 0; p < nNeg; p++) {
      // xorshift32, kept a small integer for a fast modulo
      r ^= r << 13;
      r ^= r >>> 17;
      r ^= r << 5;
      const o = ((r & 0x7fffffff) % n) << 1;
      if (o === j) continue;
      dx = cx - emb[o]!;
      dy = cy - emb[o + 1]!;
      d2 = dx * dx + dy * dy;
      if (d2 > 0) {
        const coef = (2 * b) / ((0.001 + d2) * (a * fastPow(d2, b) + 1));
        let gx = coef * dx, gy = coef * dy;
        cx += (gx > 4 ? 4 : gx < -4 ? -4 : gx) * alpha;
        cy += (gy > 4 ? 4 : gy < -4 ? -4 : gy) * alpha;
      }
    }
    emb[j] = cx;
    emb[j + 1] = cy;
    nextNeg[t] = nextNeg[t]! + nNeg * epsNeg[t]!;
  }
  state.rand = r;
}

