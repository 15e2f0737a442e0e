/**
 * The 2-D map of an index, for the studio's explorer: every row's embedding projected to (x, y)
 * with its id, label and split, by PCA (a first look, a second for 70k rows) or UMAP
 * (McInnes et al. 2018; umap.ts), cached in the table's folder.
 *
 *   const map = await embeddingMap(index, { method: 'umap' });   // map.x[i], map.y[i] ↔ map.ids[i]
 *
 * Labels and splits are the table's `label` / `split` columns, which `update` fills from the
 * files (label = the ImageFolder class folder, split = a train/val/test path segment; sync.ts).
 *
 * Cache: `<db>/<table>.lance/_dyad_map/<method>.json`, written atomically, keyed by the table's
 * version and row count (and the seed, for UMAP): any write to the table makes a new version, so
 * a changed table is mapped again. Only for local databases; best effort (a read-only folder
 * just means no cache).
 */
import { promises as fsp, existsSync } from 'node:fs';
import path from 'node:path';
import * as torch from '../torch/index.js';
import { IndexError } from './errors.js';
import type { Index } from './index.js';
import { strings, vectorsOf } from './schema.js';
import { tick, umapLayout } from './umap.js';

export interface EmbeddingMap {
  method: 'pca' | 'umap';
  ids: string[];
  /** n coordinates each, row i ↔ ids[i]. */
  x: Float32Array;
  y: Float32Array;
  labels: (string | null)[];
  splits: (string | null)[];
}

export interface EmbeddingMapOptions {
  /** Default 'umap'. */
  method?: 'pca' | 'umap';
  /** Read a fresh cached map and write a new one. Default true. */
  cache?: boolean;
  signal?: AbortSignal;
  /** UMAP's seed (negative sampling, init noise). Default 42. */
  seed?: number;
}

/**
 * Eigen-decomposition of a symmetric d×d matrix (row-major, float64) by cyclic Jacobi rotations
 * (Golub & Van Loan §8.5). Returns the eigenvalues in decreasing order and the eigenvectors as
 * the columns of a d×d row-major matrix. O(d³) per sweep; for covariances of d ≤ 1024.
 */
export function symmetricEigen(m: Float64Array, d: number): { values: Float64Array; vectors: Float64Array } {
  const a = Float64Array.from(m);
  const v = new Float64Array(d * d);
  for (let i = 0; i < d; i++) v[i * d + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0, diag = 0;
    for (let p = 0; p < d; p++) {
      diag += a[p * d + p]! ** 2;
      for (let q = p + 1; q < d; q++) off += a[p * d + q]! ** 2;
    }
    if (off <= 1e-30 * Math.max(diag, 1e-300)) break;
    for (let p = 0; p < d - 1; p++) {
      for (let q = p + 1; q < d; q++) {
        const apq = a[p * d + q]!;
        if (Math.abs(apq) < 1e-300) continue;
        const theta = (a[q * d + q]! - a[p * d + p]!) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1), s = t * c;
        for (let k = 0; k < d; k++) {
          // columns p, q of A
          const akp = a[k * d + p]!, akq = a[k * d + q]!;
          a[k * d + p] = c * akp - s * akq;
          a[k * d + q] = s * akp + c * akq;
        }
        for (let k = 0; k < d; k++) {
          // rows p, q of A
          const apk = a[p * d + k]!, aqk = a[q * d + k]!;
          a[p * d + k] = c * apk - s * aqk;
          a[q * d + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < d; k++) {
          const vkp = v[k * d + p]!, vkq = v[k * d + q]!;
          v[k * d + p] = c * vkp - s * vkq;
          v[k * d + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: d }, (_, i) => i).sort((i, j) => a[j * d + j]! - a[i * d + i]!);
  const values = Float64Array.from(order, (i) => a[i * d + i]!);
  const vectors = new Float64Array(d * d);
  for (let c = 0; c < d; c++) for (let r = 0; r < d; r++) vectors[r * d + c] = v[r * d + order[c]!]!;
  return { values, vectors };
}

export interface PcaResult {
  /** n×k row-major projections of the centred data. */
  coords: Float32Array;
  /** d×k row-major principal axes (unit, orthogonal), the largest variance first. */
  components: Float64Array;
  /** The k largest eigenvalues of the covariance (variance along each axis). */
  explainedVariance: Float64Array;
}

/**
 * PCA of n×d row-major `vectors`: centre, covariance XᵀX/(n−1) on libtorch in float64, its
 * eigen-decomposition (`symmetricEigen`), projection on the top k axes. Each axis's sign is
 * fixed so its largest-magnitude entry is positive (as sklearn's `svd_flip` makes it
 * deterministic).
 */
export function pca(vectors: Float32Array, n: number, d: number, k = 2): PcaResult {
  if (n === 0) return { coords: new Float32Array(0), components: new Float64Array(d * k), explainedVariance: new Float64Array(k) };
  const cov = torch.noGrad(() =>
    torch.scope(() => {
      const x = torch.tensor(vectors, { shape: [n, d] }).to('float64');
      const xc = x.sub(x.mean(0, { keepdim: true }));
      return xc.t().mm(xc).div(Math.max(1, n - 1)).contiguous().toFloat64Array();
    }),
  );
  const { values, vectors: axes } = symmetricEigen(cov, d);
  const components = new Float64Array(d * k);
  for (let c = 0; c < k && c < d; c++) {
    let big = 0;
    for (let r = 0; r < d; r++) if (Math.abs(axes[r * d + c]!) > Math.abs(big)) big = axes[r * d + c]!;
    const sign = big < 0 ? -1 : 1;
    for (let r = 0; r < d; r++) components[r * k + c] = sign * axes[r * d + c]!;
  }
  const coords = torch.noGrad(() =>
    torch.scope(() => {
      const x = torch.tensor(vectors, { shape: [n, d] }).to('float64');
      const w = torch.tensor(components, { shape: [d, k] });
      return x.sub(x.mean(0, { keepdim: true })).mm(w).toFloat32Array();
    }),
  );
  return { coords, components, explainedVariance: values.slice(0, k) };
}

/** UMAP's exact kNN graph costs O(n²·d): above this many rows, only PCA. */
export const UMAP_MAX_ROWS = 250_000;

interface CacheKey {
  method: 'pca' | 'umap';
  version: number;
  rows: number;
  seed: number | null;
}

/** The table's folder, for a local database whose folder exists; else null (no cache). */
function tableFolder(index: Index): string | null {
  const db = index.db;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(db) && !db.startsWith('file://')) return null;
  const dir = path.resolve(db.startsWith('file://') ? new URL(db).pathname : db, `${index.tableName}.lance`);
  return existsSync(dir) ? dir : null;
}

const b64 = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
const unb64 = (s: string): Float32Array => {
  const b = Buffer.from(s, 'base64');
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
};

async function readCache(file: string, key: CacheKey): Promise<EmbeddingMap | null> {
  try {
    const j = JSON.parse(await fsp.readFile(file, 'utf8')) as Record<string, unknown> & CacheKey & { ids: string[]; labels: (string | null)[]; splits: (string | null)[]; x: string; y: string };
    if (j.format !== 1 || j.method !== key.method || j.version !== key.version || j.rows !== key.rows || j.seed !== key.seed) return null;
    const x = unb64(j.x), y = unb64(j.y);
    if (x.length !== key.rows || y.length !== key.rows || j.ids.length !== key.rows) return null;
    return { method: key.method, ids: j.ids, x, y, labels: j.labels, splits: j.splits };
  } catch {
    return null;
  }
}

function writeCache(file: string, key: CacheKey, m: EmbeddingMap): void {
  try {
    torch.writeFileAtomic(file, JSON.stringify({ format: 1, ...key, ids: m.ids, labels: m.labels, splits: m.splits, x: b64(m.x), y: b64(m.y) }));
  } catch {
    // best effort: a folder we cannot write means no cache, not a failed map
  }
}

/** Every row's id, label, split and vector, in table order. */
async function readRows(index: Index): Promise<{ ids: string[]; labels: (string | null)[]; splits: (string | null)[]; vectors: Float32Array }> {
  const t = await index.table.query().select(['id', 'label', 'split', 'vector']).toArrow();
  const n = t.numRows;
  const ids = strings(t.getChild('id'), n) as string[];
  return { ids, labels: strings(t.getChild('label'), n), splits: strings(t.getChild('split'), n), vectors: n > 0 ? vectorsOf(t.getChild('vector'), index.dim) : new Float32Array(0) };
}

/**
 * The 2-D map of every row of `index` (see the file comment). PCA takes a second for 70k×128;
 * UMAP (k = 15, 200 epochs above 10k rows) computes an exact kNN graph, O(n²·d), then the
 * layout (about a minute for 70k rows on 2 cores). `signal` aborts between chunks and epochs
 * (the promise rejects with the signal's reason).
 */
export async function embeddingMap(index: Index, options: EmbeddingMapOptions = {}): Promise<EmbeddingMap> {
  const method = options.method ?? 'umap';
  if (method !== 'pca' && method !== 'umap') throw new IndexError('BAD_INPUT', `embeddingMap: method must be 'pca' or 'umap', got ${JSON.stringify(method)}.`);
  const seed = options.seed ?? 42;
  const signal = options.signal;
  signal?.throwIfAborted();
  const useCache = options.cache ?? true;
  const folder = useCache ? tableFolder(index) : null;
  const key: CacheKey = { method, version: await index.table.version(), rows: await index.table.countRows(), seed: method === 'umap' ? seed : null };
  const file = folder ? path.join(folder, '_dyad_map', `${method}.json`) : null;
  if (file) {
    const hit = await readCache(file, key);
    if (hit) return hit;
  }
  if (method === 'umap' && key.rows > UMAP_MAX_ROWS) {
    throw new IndexError('BAD_INPUT', `embeddingMap: UMAP of ${key.rows} rows would need an exact ${key.rows}² kNN graph (the limit is ${UMAP_MAX_ROWS} rows); use method 'pca' for this table, or map a smaller dataset.`);
  }
  const { ids, labels, splits, vectors } = await readRows(index);
  await tick(signal);
  const n = ids.length, d = index.dim;
  const init = pca(vectors, n, d, 2).coords;
  const xy = method === 'pca' ? init : await umapLayout(vectors, n, d, init, { seed, ...(signal && { signal }) });
  const x = new Float32Array(n), y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    x[i] = xy[2 * i]!;
    y[i] = xy[2 * i + 1]!;
  }
  const map: EmbeddingMap = { method, ids, x, y, labels, splits };
  if (file && n === key.rows) {
    await fsp.mkdir(path.dirname(file), { recursive: true }).catch(() => undefined);
    writeCache(file, key, map);
  }
  return map;
}
