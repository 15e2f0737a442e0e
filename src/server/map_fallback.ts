/**
 * TEMPORARY (studio, issue 21): a 2-D PCA map of an index, until `src/search/projection.ts`
 * (`embeddingMap`, PCA and UMAP, cached in the table's folder) lands in main; the lead switches
 * the studio's import to it at merge. Same signature and result type.
 *
 * PCA of the n×d stored vectors (cosine search, so rows are L2-normalised first): the two leading
 * eigenvectors of the d×d covariance Xcᵀ·Xc/(n−1), found by orthogonal (subspace) iteration on
 * libtorch matmuls, then x, y = Xc·v₁, Xc·v₂ (n×2). Cached next to the table as
 * `<db>/<table>.lance/_studio_map_pca.json`, keyed by the row count and the table version.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import * as torch from '../torch/index.js';
import type { Index } from '../search/index.js';
import { strings, vectorsOf } from '../search/schema.js';

export interface EmbeddingMap {
  method: 'pca' | 'umap';
  ids: string[];
  x: Float32Array;
  y: Float32Array;
  labels: (string | null)[];
  splits: (string | null)[];
}

/** The top-2 principal axes of n×d row-major `v` and the projection of every row onto them. */
export function pca2(v: Float32Array, n: number, d: number, iterations = 60): { x: Float32Array; y: Float32Array } {
  if (n === 0) return { x: new Float32Array(0), y: new Float32Array(0) };
  return torch.scope(() => {
    const X = torch.tensor(v, { shape: [n, d] });
    const norms = X.norm(2, 1, { keepdim: true }).clampMin(1e-12);
    const Xn = X.div(norms);
    const Xc = Xn.sub(Xn.mean(0, { keepdim: true }));
    const C = Xc.t().matmul(Xc).div(Math.max(1, n - 1)); // d×d
    // orthogonal iteration on a d×2 basis, Gram–Schmidt in JS (d is small)
    const Cd = Float32Array.from(C.toTypedArray() as Float32Array);
    let q = new Float64Array(d * 2);
    for (let i = 0; i < d; i++) {
      q[i * 2] = Math.sin(i + 1);
      q[i * 2 + 1] = Math.cos(3 * i + 1);
    }
    const orth = (m: Float64Array<ArrayBuffer>): Float64Array<ArrayBuffer> => {
      for (let c = 0; c < 2; c++) {
        if (c === 1) {
          let dot = 0;
          for (let i = 0; i < d; i++) dot += m[i * 2]! * m[i * 2 + 1]!;
          for (let i = 0; i < d; i++) m[i * 2 + 1]! -= dot * m[i * 2]!;
        }
        let s = 0;
        for (let i = 0; i < d; i++) s += m[i * 2 + c]! ** 2;
        const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
        for (let i = 0; i < d; i++) m[i * 2 + c]! *= inv;
      }
      return m;
    };
    q = orth(q);
    for (let it = 0; it < iterations; it++) {
      const next = new Float64Array(d * 2);
      for (let i = 0; i < d; i++) {
        for (let k = 0; k < d; k++) {
          const c = Cd[i * d + k]!;
          next[i * 2] += c * q[k * 2]!;
          next[i * 2 + 1] += c * q[k * 2 + 1]!;
        }
      }
      q = orth(next);
    }
    const V = torch.tensor(Float32Array.from(q), { shape: [d, 2] });
    const P = Xc.matmul(V).t().contiguous(); // 2×n
    const flat = P.toTypedArray() as Float32Array;
    return { x: Float32Array.from(flat.subarray(0, n)), y: Float32Array.from(flat.subarray(n, 2 * n)) };
  });
}

interface Cached { key: string; ids: string[]; x: number[]; y: number[]; labels: (string | null)[]; splits: (string | null)[] }

/** The PCA map of every row of `index` (see the module comment). `method: 'umap'` is not in this fallback. */
export async function embeddingMap(index: Index, options: { method?: 'pca' | 'umap'; cache?: boolean; signal?: AbortSignal } = {}): Promise<EmbeddingMap> {
  if (options.method === 'umap') throw new Error("map method 'umap' needs src/search/projection.ts; this build has PCA only");
  const table = index.table;
  const rows = await table.countRows();
  const version = await table.version();
  const key = `${rows}:${version}`;
  const cacheFile = /^[a-z]+:\/\//i.test(index.db) ? null : path.join(index.db, `${index.tableName}.lance`, '_studio_map_pca.json');
  if (cacheFile && options.cache !== false) {
    try {
      const c = JSON.parse(await fsp.readFile(cacheFile, 'utf8')) as Cached;
      if (c.key === key) return { method: 'pca', ids: c.ids, x: Float32Array.from(c.x), y: Float32Array.from(c.y), labels: c.labels, splits: c.splits };
    } catch { /* no cache yet */ }
  }
  const ids: string[] = [];
  const labels: (string | null)[] = [];
  const splits: (string | null)[] = [];
  const vec = new Float32Array(rows * index.dim);
  let n = 0;
  for await (const batch of table.query().select(['id', 'label', 'split', 'vector'])) {
    options.signal?.throwIfAborted();
    const m = batch.numRows;
    ids.push(...(strings(batch.getChild('id'), m) as string[]));
    labels.push(...strings(batch.getChild('label'), m));
    splits.push(...strings(batch.getChild('split'), m));
    const v = vectorsOf(batch.getChild('vector'), index.dim);
    if ((n + m) * index.dim > vec.length) break;
    vec.set(v, n * index.dim);
    n += m;
  }
  const { x, y } = pca2(vec.subarray(0, n * index.dim), n, index.dim);
  const out: EmbeddingMap = { method: 'pca', ids: ids.slice(0, n), x, y, labels: labels.slice(0, n), splits: splits.slice(0, n) };
  if (cacheFile && options.cache !== false) {
    const c: Cached = { key, ids: out.ids, x: Array.from(x), y: Array.from(y), labels: out.labels, splits: out.splits };
    await fsp.writeFile(cacheFile, JSON.stringify(c)).catch(() => undefined);
  }
  return out;
}
