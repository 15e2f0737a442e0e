import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { IndexError } from './errors.js';
import { count } from './query.js';
import { type IndexRecord, RESULT_COLUMNS, numbers, recordsOf, sqlIn, strings, vectorsOf } from './schema.js';
import type { IndexCore } from './table.js';

/** One file in a duplicate group. */
export interface DuplicateMember {
  id: string;
  path: string;
  label: string | null;
  split: string | null;
  /** Highest cosine similarity between this file and another member of its group. */
  similarity: number;
}

/** Files that are (near) copies of each other: a connected component of the "similar" graph. */
export interface DuplicateGroup {
  size: number;
  /** Highest and lowest similarity over the pairs that joined the group. */
  maxSimilarity: number;
  minSimilarity: number;
  /** Sorted by path. */
  members: DuplicateMember[];
}

/** A pair of row numbers and their cosine similarity. */
export type Pair = [number, number, number];

/** Disjoint sets over 0..n-1, with path halving and union by size. */
export class UnionFind {
  readonly parent: Int32Array;
  readonly size: Int32Array;
  constructor(n: number) {
    this.parent = new Int32Array(n);
    this.size = new Int32Array(n).fill(1);
    for (let i = 0; i < n; i++) this.parent[i] = i;
  }
  find(x: number): number {
    const p = this.parent;
    while (p[x] !== x) {
      p[x] = p[p[x]!]!;
      x = p[x]!;
    }
    return x;
  }
  union(a: number, b: number): boolean {
    let ra = this.find(a);
    let rb = this.find(b);
    if (ra === rb) return false;
    if (this.size[ra]! < this.size[rb]!) [ra, rb] = [rb, ra];
    this.parent[rb] = ra;
    this.size[ra]! += this.size[rb]!;
    return true;
  }
}

/** L2-normalises the rows of an n×dim row-major array in place. */
export function normalizeRows(v: Float32Array, dim: number): Float32Array {
  for (let o = 0; o < v.length; o += dim) {
    let s = 0;
    for (let j = 0; j < dim; j++) s += v[o + j]! * v[o + j]!;
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let j = 0; j < dim; j++) v[o + j] = v[o + j]! * inv;
  }
  return v;
}

/**
 * Every pair (i < j) whose cosine similarity is ≥ threshold, by exact all-pairs comparison of
 * n×dim vectors (normalised on a copy). O(n²·dim): meant for a few thousand rows.
 */
export function exactPairs(vectors: Float32Array, dim: number, threshold: number): Pair[] {
  const v = normalizeRows(Float32Array.from(vectors), dim);
  const n = v.length / dim;
  const pairs: Pair[] = [];
  for (let i = 0; i < n; i++) {
    const oi = i * dim;
    for (let j = i + 1; j < n; j++) {
      const oj = j * dim;
      let s = 0;
      for (let k = 0; k < dim; k++) s += v[oi + k]! * v[oj + k]!;
      if (s >= threshold) pairs.push([i, j, Math.min(1, s)]);
    }
  }
  return pairs;
}

/**
 * Turns similar pairs into groups (connected components with ≥ 2 members), members sorted by
 * path, groups by size (largest first), then by highest similarity, then by first path.
 * `meta(i)` gives the id/path/label/split of row i.
 */
export function groupPairs(
  pairs: readonly Pair[],
  n: number,
  meta: (i: number) => Omit<DuplicateMember, 'similarity'>,
): DuplicateGroup[] {
  const uf = new UnionFind(n);
  const best = new Map<number, number>();
  for (const [a, b, s] of pairs) {
    uf.union(a, b);
    best.set(a, Math.max(best.get(a) ?? -Infinity, s));
    best.set(b, Math.max(best.get(b) ?? -Infinity, s));
  }
  const byRoot = new Map<number, { members: number[]; max: number; min: number }>();
  for (const i of best.keys()) {
    const r = uf.find(i);
    let g = byRoot.get(r);
    if (!g) byRoot.set(r, (g = { members: [], max: -Infinity, min: Infinity }));
    g.members.push(i);
  }
  for (const [a, , s] of pairs) {
    const g = byRoot.get(uf.find(a))!;
    g.max = Math.max(g.max, s);
    g.min = Math.min(g.min, s);
  }
  const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  const groups: DuplicateGroup[] = [];
  for (const g of byRoot.values()) {
    const members = g.members.map((i) => ({ ...meta(i), similarity: best.get(i)! }));
    members.sort((x, y) => cmp(x.path, y.path));
    groups.push({ size: members.length, maxSimilarity: g.max, minSimilarity: g.min, members });
  }
  groups.sort((x, y) => y.size - x.size || y.maxSimilarity - x.maxSimilarity || cmp(x.members[0]!.path, y.members[0]!.path));
  return groups;
}

export interface DuplicatesOptions {
  /** Cosine similarity at or above which two files are duplicates. Default 0.95. */
  threshold?: number;
  where?: string;
  /** Neighbours looked at per row when searching (large tables). Default 10. */
  k?: number;
  /** Up to this many rows, compare all pairs exactly in memory. Default 5,000. */
  exactMaxRows?: number;
}

function pick(r: IndexRecord): Omit<DuplicateMember, 'similarity'> {
  return { id: r.id, path: r.path, label: r.label, split: r.split };
}

/**
 * Groups of near-identical files of a table (see `Index.duplicates`): exact all-pairs up to
 * `exactMaxRows` rows; above, each row's `k` nearest neighbours, 32 queries per call.
 */
export async function findDuplicates(core: IndexCore, options: DuplicatesOptions = {}): Promise<DuplicateGroup[]> {
  const { table, dim, ann } = core;
  const threshold = options.threshold ?? 0.95;
  if (!(threshold > -1 && threshold <= 1)) throw new IndexError('BAD_INPUT', `duplicates: threshold is a cosine similarity in (-1, 1], got ${threshold}.`);
  const k = options.k ?? 10;
  const n = await count(core, options.where);
  if (n <= (options.exactMaxRows ?? 5000)) {
    let q = table.query().select([...RESULT_COLUMNS, 'vector']);
    if (options.where) q = q.where(options.where);
    const t = await q.toArrow();
    const recs = recordsOf(t);
    const pairs = exactPairs(vectorsOf(t.getChild('vector'), dim), dim, threshold);
    return groupPairs(pairs, recs.length, (i) => pick(recs[i]!));
  }
  // Large: k nearest neighbours of every row.
  const index = new Map<string, number>();
  const idOf: string[] = [];
  const num = (id: string) => {
    let i = index.get(id);
    if (i === undefined) {
      index.set(id, (i = idOf.length));
      idOf.push(id);
    }
    return i;
  };
  const pairs: Pair[] = [];
  let q = table.query().select(['id', 'vector']);
  if (options.where) q = q.where(options.where);
  const chunk = 32;
  for await (const batch of q) {
    const ids = strings(batch.getChild('id'), batch.numRows);
    const vecs = normalizeRows(vectorsOf(batch.getChild('vector'), dim), dim);
    for (let s = 0; s < ids.length; s += chunk) {
      const e = Math.min(ids.length, s + chunk);
      let vq = table.vectorSearch(vecs.subarray(s * dim, (s + 1) * dim));
      for (let j = s + 1; j < e; j++) vq = vq.addQueryVector(vecs.subarray(j * dim, (j + 1) * dim));
      vq = vq.distanceType('cosine').limit(k + 1).select(['id', '_distance']).nprobes(ann.nprobes).refineFactor(ann.refineFactor);
      if (ann.type === 'hnsw_sq') vq = vq.ef(Math.max(ann.ef, (k + 1) * ann.refineFactor));
      if (options.where) vq = vq.where(options.where);
      const res = await vq.toArrow();
      const rid = strings(res.getChild('id'), res.numRows);
      const dist = numbers(res.getChild('_distance'), res.numRows);
      const qi = res.getChild('query_index') ? numbers(res.getChild('query_index'), res.numRows) : new Array<number>(res.numRows).fill(0);
      for (let r = 0; r < res.numRows; r++) {
        const a = num(ids[s + qi[r]!]!);
        const b = num(rid[r]!);
        const sim = 1 - dist[r]!;
        if (a !== b && sim >= threshold) pairs.push(a < b ? [a, b, Math.min(1, sim)] : [b, a, Math.min(1, sim)]);
      }
    }
  }
  const used = [...new Set(pairs.flatMap(([a, b]) => [a, b]))];
  const recs = new Map<string, IndexRecord>();
  for (let i = 0; i < used.length; i += 500) {
    const t = await table.query().where(sqlIn('id', used.slice(i, i + 500).map((u) => idOf[u]!))).select([...RESULT_COLUMNS]).toArrow();
    for (const r of recordsOf(t)) recs.set(r.id, r);
  }
  return groupPairs(pairs, idOf.length, (i) => pick(recs.get(idOf[i]!) ?? { id: idOf[i]!, path: '', label: null, split: null, size: 0, mtime: 0 }));
}

/** Writes a file atomically: temp file in the same folder, fsync, rename. */
export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  const fh = await fsp.open(tmp, 'w');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fsp.rename(tmp, file);
}

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** A path as an `src` relative to `fromDir`, each segment URL-encoded. */
function relativeSrc(fromDir: string, file: string): string {
  const rel = path.relative(fromDir, path.resolve(file));
  return rel.split(path.sep).map((seg) => (seg === '..' || seg === '.' ? seg : encodeURIComponent(seg))).join('/');
}

/**
 * Writes `duplicates.json` (the groups as given) and `duplicates.html` (a self-contained
 * contact sheet: one row per group, images by path relative to `outDir`, similarities shown) into
 * `outDir`, creating it. Returns both paths.
 */
export async function writeDuplicatesReport(
  groups: readonly DuplicateGroup[],
  outDir: string,
  options: { title?: string; threshold?: number } = {},
): Promise<{ json: string; html: string }> {
  const dir = path.resolve(outDir);
  await fsp.mkdir(dir, { recursive: true });
  const json = path.join(dir, 'duplicates.json');
  const html = path.join(dir, 'duplicates.html');
  const files = groups.reduce((s, g) => s + g.size, 0);
  await writeFileAtomic(
    json,
    JSON.stringify({ threshold: options.threshold ?? null, groups: groups.length, files, items: groups }, null, 2) + '\n',
  );
  const title = options.title ?? 'Near-duplicate images';
  const rows = groups
    .map((g, gi) => {
      const figs = g.members
        .map(
          (m) => `<figure><a href="${escapeHtml(relativeSrc(dir, m.path))}"><img loading="lazy" src="${escapeHtml(relativeSrc(dir, m.path))}" alt="${escapeHtml(path.basename(m.path))}"></a>` +
            `<figcaption title="${escapeHtml(m.path)}">${escapeHtml(path.basename(m.path))}<br><span class="sim">${m.similarity.toFixed(4)}</span>${m.label != null ? ` · ${escapeHtml(m.label)}` : ''}</figcaption></figure>`,
        )
        .join('');
      return `<section><h2>Group ${gi + 1} · ${g.size} files · similarity ${g.minSimilarity.toFixed(4)}–${g.maxSimilarity.toFixed(4)}</h2><div class="row">${figs}</div></section>`;
    })
    .join('\n');
  const page = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
section{margin:0 0 1.2em;padding:.6em;background:#fff;border:1px solid #ddd;border-radius:6px}
h2{font-size:14px;margin:0 0 .5em;font-weight:600}
.row{display:flex;flex-wrap:wrap;gap:10px}
figure{margin:0;width:160px}
img{width:160px;height:160px;object-fit:contain;background:#eee;image-rendering:pixelated}
figcaption{font-size:12px;word-break:break-all}
.sim{font-family:monospace}
</style></head><body>
<h1>${escapeHtml(title)}</h1>
<p>${groups.length} groups, ${files} files${options.threshold != null ? `, cosine similarity ≥ ${options.threshold}` : ''}. Similarity under each image: its closest match in the group.</p>
${rows || '<p>No duplicates found.</p>'}
</body></html>
`;
  await writeFileAtomic(html, page);
  return { json, html };
}
