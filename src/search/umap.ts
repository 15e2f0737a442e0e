/**
 * UMAP (McInnes, Healy & Melville 2018, "UMAP: Uniform Manifold Approximation and Projection for
 * Dimension Reduction", arXiv:1802.03426), as umap-learn 0.5 computes it, for the 2-D map of an
 * index:
 *
 * 1. the exact k nearest neighbours of every row by cosine distance, with libtorch matmuls in
 *    chunks of rows (n×d · d×n, top-k per chunk; O(n²·d) flops, seconds for 70k×128 on 2 cores,
 *    where umap-js's NN-descent in plain JS takes minutes);
 * 2. the fuzzy simplicial set: per point ρ (distance to the nearest neighbour) and σ (binary
 *    search so that Σ_j exp(−(d_ij − ρ_i)/σ_i) = log2 k), memberships w_ij = exp(−(d_ij − ρ_i)/σ_i),
 *    symmetrised by the fuzzy union w + wᵀ − w∘wᵀ;
 * 3. the layout: PCA initialisation scaled to ±10 (umap-learn's `init='pca'`), then umap-learn's
 *    SGD (`optimize_layout_euclidean`): each edge sampled in proportion to its weight, attraction
 *    −2ab·d^{2(b−1)}/(1 + a·d^{2b}), `negativeSampleRate` repulsive samples 2b/((0.001 + d²)(1 + a·d^{2b})),
 *    gradients clipped to ±4, learning rate decaying linearly from 1. That loop is sequential
 *    (each update sees the previous ones), so it runs in JS on typed arrays, not on libtorch.
 *
 * a, b are umap-learn's curve fit for `min_dist = 0.1, spread = 1`.
 */
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import * as torch from '../torch/index.js';
import { UMAP_A, UMAP_B, layoutEpoch } from './umap_sgd.js';

export { UMAP_A, UMAP_B, fastPow } from './umap_sgd.js';

export interface UmapOptions {
  /** Neighbours per point (umap-learn `n_neighbors`). Default 15. */
  nNeighbors?: number;
  /** SGD epochs. Default 500 up to 10,000 rows, 200 above (umap-learn). */
  nEpochs?: number;
  /** Repulsive samples per attractive one. Default 5. */
  negativeSampleRate?: number;
  /** Seed of the negative sampling and the init noise. Default 42. */
  seed?: number;
  /** Threads of the layout SGD (Hogwild above 1). Default: the CPUs (at most 4) above 10,000 rows, else 1 (bit-reproducible). */
  threads?: number;
  /** Initial layout (n×2, row-major); default: PCA of the data. */
  init?: Float32Array;
  signal?: AbortSignal;
}

/** Lets an abort (and other work) in between synchronous chunks of computation. */
export const tick = (signal?: AbortSignal): Promise<void> =>
  new Promise<void>((resolve) => setImmediate(resolve)).then(() => signal?.throwIfAborted());

/**
 * Exact k nearest neighbours by cosine distance (1 − cos), the point itself left out.
 * vectors: n×d row-major. Returns indices and distances, n×k row-major, nearest first.
 */
export async function cosineKnn(vectors: Float32Array, n: number, d: number, k: number, signal?: AbortSignal): Promise<{ indices: Int32Array; distances: Float32Array }> {
  const indices = new Int32Array(n * k);
  const distances = new Float32Array(n * k);
  if (k === 0) return { indices, distances };
  const x = torch.scope(() => torch.functional.normalize(torch.tensor(vectors, { shape: [n, d] }), { dim: 1 }).contiguous());
  const xt = x.t();
  try {
    // rows per chunk: the chunk's n similarities stay under 16M floats (64 MB)
    const chunk = Math.max(16, Math.min(n, Math.floor(16_000_000 / Math.max(1, n))));
    const kk = Math.min(n, k + 1);
    for (let s = 0; s < n; s += chunk) {
      const m = Math.min(chunk, n - s);
      const [vals, idx] = torch.noGrad(() =>
        torch.scope(() => {
          const { values, indices: ind } = x.narrow(0, s, m).mm(xt).topk(kk, { dim: 1 });
          return [values.toFloat32Array(), ind.toInt32Array()] as const;
        }),
      );
      for (let r = 0; r < m; r++) {
        const i = s + r;
        let o = 0;
        for (let c = 0; c < kk && o < k; c++) {
          const j = idx[r * kk + c]!;
          if (j === i) continue; // the self match (if a duplicate outranks it, the last entry goes)
          indices[i * k + o] = j;
          distances[i * k + o] = Math.max(0, 1 - vals[r * kk + c]!);
          o++;
        }
      }
      await tick(signal);
    }
  } finally {
    xt.dispose();
    x.dispose();
  }
  return { indices, distances };
}

/**
 * ρ and σ per point (umap-learn `smooth_knn_dist`): ρ_i the distance to the nearest neighbour,
 * σ_i by bisection (64 steps) so that Σ_j exp(−max(0, d_ij − ρ_i)/σ_i) = log2 k.
 */
export function smoothKnnDist(distances: Float32Array, n: number, k: number): { sigma: Float64Array; rho: Float64Array } {
  const sigma = new Float64Array(n);
  const rho = new Float64Array(n);
  const target = Math.log2(k);
  let meanAll = 0;
  for (let t = 0; t < n * k; t++) meanAll += distances[t]!;
  meanAll /= Math.max(1, n * k);
  for (let i = 0; i < n; i++) {
    const o = i * k;
    let r = 0;
    for (let j = 0; j < k; j++) if (distances[o + j]! > 0) { r = distances[o + j]!; break; }
    rho[i] = r;
    let lo = 0, hi = Infinity, mid = 1;
    for (let it = 0; it < 64; it++) {
      let psum = 0;
      for (let j = 0; j < k; j++) {
        const dd = distances[o + j]! - r;
        psum += dd > 0 ? Math.exp(-dd / mid) : 1;
      }
      if (Math.abs(psum - target) < 1e-5) break;
      if (psum > target) {
        hi = mid;
        mid = (lo + hi) / 2;
      } else {
        lo = mid;
        mid = hi === Infinity ? mid * 2 : (lo + hi) / 2;
      }
    }
    let meanI = 0;
    for (let j = 0; j < k; j++) meanI += distances[o + j]!;
    meanI /= k;
    // MIN_K_DIST_SCALE = 1e-3: σ never collapses below a thousandth of the mean distance
    sigma[i] = Math.max(mid, 1e-3 * (r > 0 ? meanI : meanAll));
  }
  return { sigma, rho };
}

/** The symmetric fuzzy graph as a directed edge list holding both (i, j) and (j, i). */
export function fuzzyGraph(indices: Int32Array, distances: Float32Array, n: number, k: number): { head: Int32Array; tail: Int32Array; weight: Float32Array } {
  const { sigma, rho } = smoothKnnDist(distances, n, k);
  const w = new Float32Array(n * k);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < k; j++) {
      const dd = distances[i * k + j]! - rho[i]!;
      w[i * k + j] = dd <= 0 || sigma[i] === 0 ? 1 : Math.exp(-dd / sigma[i]!);
    }
  }
  const reverse = (i: number, j: number): number => {
    for (let c = 0; c < k; c++) if (indices[j * k + c] === i) return w[j * k + c]!;
    return 0;
  };
  const head: number[] = [];
  const tail: number[] = [];
  const weight: number[] = [];
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < k; c++) {
      const j = indices[i * k + c]!;
      const a = w[i * k + c]!;
      const b = reverse(i, j);
      // an edge both ways is emitted once, from the smaller index
      if (b > 0 && j < i) continue;
      const u = a + b - a * b;
      if (u <= 0) continue;
      head.push(i, j);
      tail.push(j, i);
      weight.push(u, u);
    }
  }
  return { head: Int32Array.from(head), tail: Int32Array.from(tail), weight: Float32Array.from(weight) };
}

/** mulberry32: a fast seeded 32-bit generator. */
function rng32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/**
 * The layout SGD of umap-learn (`optimize_layout_euclidean`, move_other, γ = 1) in place on
 * `emb` (n×2). Yields to the event loop once per epoch, so `signal` can stop it.
 */
export async function optimizeLayout(emb: Float32Array, n: number, g: { head: Int32Array; tail: Int32Array; weight: Float32Array }, nEpochs: number, negativeRate: number, seed: number, signal?: AbortSignal, threadCount?: number): Promise<void> {
  let maxW = 0;
  for (const x of g.weight) if (x > maxW) maxW = x;
  // edges too weak to be sampled once in nEpochs are dropped, as umap-learn does
  const keep: number[] = [];
  for (let e = 0; e < g.weight.length; e++) if (g.weight[e]! >= maxW / nEpochs) keep.push(e);
  const E = keep.length;
  const head = new Int32Array(E), tail = new Int32Array(E);
  const eps = new Float64Array(E), next = new Float64Array(E), epsNeg = new Float64Array(E), nextNeg = new Float64Array(E);
  for (let t = 0; t < E; t++) {
    const e = keep[t]!;
    head[t] = g.head[e]!;
    tail[t] = g.tail[e]!;
    eps[t] = next[t] = maxW / g.weight[e]!;
    epsNeg[t] = nextNeg[t] = eps[t]! / negativeRate;
  }
  const threads = Math.max(1, Math.floor(threadCount ?? (n > 10_000 ? Math.min(4, os.availableParallelism()) : 1)));
  if (threads > 1) return hogwild(emb, n, head, tail, eps, epsNeg, nEpochs, seed, threads, signal);
  const state = { rand: (seed | 0) || 1 };
  for (let epoch = 0; epoch < nEpochs; epoch++) {
    layoutEpoch(emb, n, head, tail, eps, next, epsNeg, nextNeg, 0, E, epoch, 1 - epoch / nEpochs, state);
    await tick(signal);
  }
}

const shared = <T extends Float32Array | Float64Array | Int32Array>(a: T): T => {
  const s = new (a.constructor as new (b: SharedArrayBuffer) => T)(new SharedArrayBuffer(a.byteLength));
  s.set(a as never);
  return s;
};

/**
 * The same SGD on `threads` threads at once (this one and threads − 1 workers), each on its own
 * range of edges and all on one shared layout, without locks: Hogwild (Niu et al. 2011), as
 * umap-learn's `parallel=True` does. Not bit-reproducible; used above 10,000 points.
 */
async function hogwild(emb: Float32Array, n: number, head: Int32Array, tail: Int32Array, eps: Float64Array, epsNeg: Float64Array, nEpochs: number, seed: number, threads: number, signal?: AbortSignal): Promise<void> {
  const E = head.length;
  const sEmb = shared(emb), sHead = shared(head), sTail = shared(tail), sEps = shared(eps), sEpsNeg = shared(epsNeg);
  const next = shared(eps), nextNeg = shared(epsNeg);
  const bounds = Array.from({ length: threads + 1 }, (_, i) => Math.round((i * E) / threads));
  const workers = Array.from({ length: threads - 1 }, (_, w) =>
    new Worker(new URL('./umap_worker.js', import.meta.url), {
      workerData: { emb: sEmb, head: sHead, tail: sTail, eps: sEps, epsNeg: sEpsNeg, next, nextNeg, n, t0: bounds[w + 1], t1: bounds[w + 2], seed: seed + 7919 * (w + 1) },
    }),
  );
  const failed = new Promise<never>((_, reject) => workers.forEach((w) => w.once('error', reject)));
  failed.catch(() => undefined);
  try {
    const state = { rand: (seed | 0) || 1 };
    for (let epoch = 0; epoch < nEpochs; epoch++) {
      const alpha = 1 - epoch / nEpochs;
      const done = workers.map((w) => new Promise<void>((resolve) => w.once('message', () => resolve())));
      for (const w of workers) w.postMessage({ epoch, alpha });
      layoutEpoch(sEmb, n, sHead, sTail, sEps, next, sEpsNeg, nextNeg, bounds[0]!, bounds[1]!, epoch, alpha, state);
      await Promise.race([Promise.all(done), failed]);
      signal?.throwIfAborted();
    }
    emb.set(sEmb);
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

/** Scales a layout so its largest coordinate is ±10 and adds N(0, 1e-4) noise (umap-learn `noisy_scale_coords`). */
export function scaleInit(xy: Float32Array, seed: number): Float32Array {
  let m = 0;
  for (const v of xy) m = Math.max(m, Math.abs(v));
  const s = m > 0 ? 10 / m : 1;
  const r = rng32(seed ^ 0x5bd1e995);
  const out = new Float32Array(xy.length);
  for (let i = 0; i < xy.length; i++) {
    const u = (r() + 1) / 4294967297, v = r() / 4294967296;
    out[i] = xy[i]! * s + 1e-4 * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  return out;
}

/**
 * The 2-D UMAP layout of n×d `vectors` (cosine). `init` is required here (the PCA lives in
 * projection.ts); returns n×2 row-major.
 */
export async function umapLayout(vectors: Float32Array, n: number, d: number, init: Float32Array, o: UmapOptions = {}): Promise<Float32Array> {
  const seed = o.seed ?? 42;
  const emb = scaleInit(init, seed);
  if (n < 3) return emb;
  const k = Math.min(o.nNeighbors ?? 15, n - 1);
  const { indices, distances } = await cosineKnn(vectors, n, d, k, o.signal);
  const g = fuzzyGraph(indices, distances, n, k);
  await tick(o.signal);
  await optimizeLayout(emb, n, g, o.nEpochs ?? (n <= 10_000 ? 500 : 200), o.negativeSampleRate ?? 5, seed, o.signal, o.threads);
  return emb;
}
