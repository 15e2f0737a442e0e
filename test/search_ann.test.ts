import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ANN_DEFAULTS, HNSW_SQ_DEFAULTS, IVF_PQ_DEFAULTS, Index, annBuildParams, resolveAnn, rowsToArrow, type Embedder, type IndexRow } from '../src/search/index.js';
import { mulberry32 as rng } from './helpers/rng.js';

const DIM = 32;
const ROWS = 3000;

function gauss(r: () => number): number {
  return Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r());
}
function unit(v: Float32Array): Float32Array {
  let s = 0;
  for (const x of v) s += x * x;
  const inv = 1 / Math.sqrt(s);
  return v.map((x) => x * inv);
}

/** Clustered unit vectors: 30 centres, points scattered around them. */
function synthetic(n: number, seed: number): Float32Array[] {
  const r = rng(seed);
  const centres = Array.from({ length: 30 }, () => unit(Float32Array.from({ length: DIM }, () => gauss(r))));
  return Array.from({ length: n }, () => {
    const c = centres[Math.floor(r() * centres.length)]!;
    return unit(c.map((x) => x + 0.35 * gauss(r) / Math.sqrt(DIM) * 3));
  });
}

const vectors = synthetic(ROWS, 7);
const queries = synthetic(25, 99);
// Vectors are written directly; this embedder is never asked to embed.
const embedder: Embedder = { identity: 'synthetic-32', dim: DIM, embedImages: async () => { throw new Error('not used'); } };

function bruteForce(q: Float32Array, k: number): number[] {
  const sims = vectors.map((v, i) => {
    let d = 0;
    for (let j = 0; j < DIM; j++) d += v[j]! * q[j]!;
    return [d, i] as const;
  });
  sims.sort((a, b) => b[0] - a[0]);
  return sims.slice(0, k).map((s) => s[1]);
}

let tmp: string;
before(async () => {
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'dyad-index-ann-'));
});
after(async () => {
  await fsp.rm(tmp, { recursive: true, force: true });
});

async function filled(name: string, options: Partial<Parameters<typeof Index.open>[0]> = {}): Promise<Index> {
  const index = await Index.open({ db: path.join(tmp, name), dataset: 'synthetic', embedder, ...options });
  const rows: IndexRow[] = vectors.map((v, i) => ({
    id: `r${i}`, path: `/virtual/${i}.png`, label: `c${i % 3}`, split: null, vector: v, size: 1, mtime: 0, model: embedder.identity,
  }));
  await index.table.add(rowsToArrow(rows, DIM));
  return index;
}

const pathsToIdx = (hits: { path: string }[]) => hits.map((h) => Number(/(\d+)\.png$/.exec(h.path)![1]));

test('flat search below the threshold; IVF-PQ built at the threshold agrees with flat search', async () => {
  const index = await filled('ivfpq', { annThreshold: 2000, ann: { type: 'ivf_pq', nprobes: 1000, refineFactor: 50 } });
  // Flat (no index yet) equals brute force.
  for (const q of queries.slice(0, 5)) assert.deepEqual(pathsToIdx(await index.search(q, { limit: 10 })), bruteForce(q, 10));

  const { ann } = await index.optimize(); // 3000 rows ≥ annThreshold 2000: builds the index
  assert.ok(ann, 'vector index built');
  assert.match(ann!.type, /IVF_PQ/i);
  assert.equal(ann!.indexedRows, ROWS);

  let overlap = 0;
  for (const q of queries) {
    const annHits = await index.search(q, { limit: 10 });
    const flat = await index.search(q, { limit: 10, exact: true });
    assert.equal(annHits[0]!.path, flat[0]!.path, 'same top result');
    assert.ok(Math.abs(annHits[0]!.distance - flat[0]!.distance) < 1e-5, 'refined distances are exact');
    assert.deepEqual(pathsToIdx(flat), bruteForce(q, 10));
    const truth = new Set(flat.map((h) => h.path));
    overlap += annHits.filter((h) => truth.has(h.path)).length;
  }
  assert.ok(overlap / (10 * queries.length) >= 0.95, `recall@10 ${overlap / (10 * queries.length)}`);

  // Prefilter still applies with the index.
  const f = await index.search(queries[0]!, { limit: 5, where: "label = 'c1'" });
  assert.ok(f.length === 5 && f.every((h) => h.label === 'c1'));

  // Rows added after the index are found too (searched flat until the next optimize).
  const extra = unit(Float32Array.from({ length: DIM }, (_, j) => (j === 3 ? 1 : 0.01)));
  await index.table.add(rowsToArrow([{ id: 'extra', path: '/virtual/extra.png', label: null, split: null, vector: extra, size: 1, mtime: 0, model: embedder.identity }], DIM));
  assert.equal((await index.search(extra, { limit: 1 }))[0]!.id, 'extra');
  const info = await index.optimize();
  assert.equal(info.ann!.unindexedRows, 0);
  assert.equal((await index.search(extra, { limit: 1 }))[0]!.id, 'extra');
  index.close();
});

test('below the threshold optimize keeps flat search; HNSW-SQ can be forced and agrees too', async () => {
  const index = await filled('hnsw', { ann: { type: 'hnsw_sq', ef: 300 } });
  const { ann } = await index.optimize();
  assert.equal(ann, null, 'no vector index under annThreshold (100,000)');
  const forced = await index.optimize({ force: true });
  assert.match(forced.ann!.type, /HNSW/i);
  for (const q of queries.slice(0, 10)) {
    const [a] = await index.search(q, { limit: 1 });
    const [b] = await index.search(q, { limit: 1, exact: true });
    assert.equal(a!.path, b!.path);
  }
  index.close();
});

test('update builds the vector index by itself once the table reaches annThreshold', async () => {
  const { default: sharp } = await import('sharp');
  const { ThumbnailEmbedder } = await import('../src/search/index.js');
  const dir = path.join(tmp, 'auto-img');
  await fsp.mkdir(dir);
  const r = rng(3);
  const write = (i: number) => {
    const grid = Buffer.alloc(64);
    for (let j = 0; j < 64; j++) grid[j] = Math.floor(r() * 256);
    return sharp(grid, { raw: { width: 8, height: 8, channels: 1 } }).png().toFile(path.join(dir, `a${i}.png`));
  };
  for (let i = 0; i < 200; i++) await write(i);
  const index = await Index.open({ db: path.join(tmp, 'auto'), dataset: 'auto', embedder: new ThumbnailEmbedder(), annThreshold: 300 });
  await index.update(dir, { batchSize: 100 });
  assert.equal(await index.annInfo(), null, 'under the threshold: flat');
  for (let i = 200; i < 320; i++) await write(i);
  const res = await index.update(dir, { batchSize: 100 });
  assert.equal(res.added, 120);
  const ann = await index.annInfo();
  const want = ANN_DEFAULTS.type === 'hnsw_sq' ? /HNSW/i : /IVF_PQ/i;
  assert.ok(ann && want.test(ann.type) && ann.indexedRows === 320, `the default index type ${ANN_DEFAULTS.type}: ${JSON.stringify(ann)}`);
  const probe = path.join(dir, 'a250.png');
  assert.equal((await index.similar(probe, { limit: 1, excludeSelf: false }))[0]!.path, probe);
  index.close();
});

test('ann defaults: each type with its own defaults, explicit options win', () => {
  assert.deepEqual(resolveAnn(), { ...ANN_DEFAULTS });
  assert.deepEqual(resolveAnn({ type: 'hnsw_sq' }), { ...HNSW_SQ_DEFAULTS });
  assert.deepEqual(resolveAnn({ type: 'ivf_pq' }), { ...IVF_PQ_DEFAULTS });
  const r = resolveAnn({ type: 'ivf_pq', nprobes: 7, ef: undefined });
  assert.equal(r.nprobes, 7);
  assert.equal(r.ef, IVF_PQ_DEFAULTS.ef);
  assert.equal(resolveAnn({ ef: 33 }).type, ANN_DEFAULTS.type);
  assert.equal(resolveAnn({ type: 'hnsw_sq', ef: 33 }).ef, 33);
  // build sizes: IVF-PQ √rows partitions and dim/4 codes; HNSW-SQ one graph up to 1M rows
  assert.deepEqual(annBuildParams(1_000_000, 128, { type: 'ivf_pq' }), { numPartitions: 1000, numSubVectors: 32 });
  assert.deepEqual(annBuildParams(1_000_000, 128, { type: 'hnsw_sq' }), { numPartitions: 1 });
});
