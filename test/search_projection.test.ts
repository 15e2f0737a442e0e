import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { Index, embeddingMap, pca, rowsToArrow, type Embedder, type IndexRow } from '../src/search/index.js';
import { symmetricEigen } from '../src/search/projection.js';
import { umapLayout } from '../src/search/umap.js';
import { mulberry32 } from './helpers/rng.js';
import { tempDir } from './helpers/tmp.js';

const tmp = tempDir('projection');

function gauss(r: () => number): number {
  return Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r());
}

/** n points of 3 well-separated Gaussian clusters in `dim` dims; label = cluster. */
function clusters(n: number, dim: number, seed: number): { vectors: Float32Array[]; labels: string[] } {
  const r = mulberry32(seed);
  const centres = Array.from({ length: 3 }, () => Float32Array.from({ length: dim }, () => gauss(r)));
  const vectors: Float32Array[] = [];
  const labels: string[] = [];
  for (let i = 0; i < n; i++) {
    const c = i % 3;
    vectors.push(centres[c]!.map((x) => x + 0.15 * gauss(r)));
    labels.push(`class${c}`);
  }
  return { vectors, labels };
}

const embedder = (dim: number): Embedder => ({ identity: `projection-test-${dim}`, dim, embedImages: async () => { throw new Error('not used'); } });

async function table(name: string, vectors: Float32Array[], labels: string[]): Promise<Index> {
  const dim = vectors[0]!.length;
  const index = await Index.open({ db: path.join(tmp, name), dataset: name, embedder: embedder(dim) });
  const rows: IndexRow[] = vectors.map((v, i) => ({
    id: `r${i}`, path: `/virtual/${labels[i]}/${i}.png`, label: labels[i]!, split: i % 5 === 0 ? 'test' : 'train', vector: v, size: 1, mtime: 0, model: `projection-test-${dim}`,
  }));
  await index.table.add(rowsToArrow(rows, dim));
  return index;
}

/** Fraction of each point's k nearest 2-D neighbours that share its label. */
function knnAgreement(x: Float32Array, y: Float32Array, labels: (string | null)[], k: number): number {
  let same = 0;
  for (let i = 0; i < x.length; i++) {
    const d = Array.from(x, (_, j) => [(x[j]! - x[i]!) ** 2 + (y[j]! - y[i]!) ** 2, j] as const).filter(([, j]) => j !== i);
    d.sort((a, b) => a[0] - b[0]);
    same += d.slice(0, k).filter(([, j]) => labels[j] === labels[i]).length;
  }
  return same / (k * x.length);
}

test('symmetricEigen: the by-hand 2×2 case and a reconstruction', () => {
  const { values, vectors } = symmetricEigen(Float64Array.from([2, 1, 1, 2]), 2);
  assert.ok(Math.abs(values[0]! - 3) < 1e-12 && Math.abs(values[1]! - 1) < 1e-12, `${values}`);
  assert.ok(Math.abs(Math.abs(vectors[0]!) - Math.SQRT1_2) < 1e-12 && Math.abs(vectors[0]! - vectors[2]!) < 1e-12, 'first axis (1,1)/√2');
  // A = V Λ Vᵀ for a random symmetric 6×6
  const r = mulberry32(5);
  const d = 6;
  const a = new Float64Array(d * d);
  for (let i = 0; i < d; i++) for (let j = i; j < d; j++) a[i * d + j] = a[j * d + i] = gauss(r);
  const e = symmetricEigen(a, d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < d; j++) {
      let s = 0;
      for (let k = 0; k < d; k++) s += e.vectors[i * d + k]! * e.values[k]! * e.vectors[j * d + k]!;
      assert.ok(Math.abs(s - a[i * d + j]!) < 1e-9, `A[${i},${j}]`);
    }
  }
  for (let k = 1; k < d; k++) assert.ok(e.values[k - 1]! >= e.values[k]!, 'decreasing');
});

test('pca: variance along x ≥ along y, orthonormal axes, equals numpy PCA up to sign', () => {
  const r = mulberry32(11);
  const n = 60, d = 5;
  const scales = [5, 3, 1, 0.5, 0.2];
  const data = new Float32Array(n * d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) data[i * d + j] = 2 + scales[j]! * gauss(r) + (j === 1 ? 0.5 * data[i * d]! : 0);
  const { coords, components, explainedVariance } = pca(data, n, d, 2);
  const varOf = (c: number) => {
    let m = 0, s = 0;
    for (let i = 0; i < n; i++) m += coords[i * 2 + c]! / n;
    for (let i = 0; i < n; i++) s += (coords[i * 2 + c]! - m) ** 2;
    return s / (n - 1);
  };
  assert.ok(varOf(0) >= varOf(1), `var x ${varOf(0)} ≥ var y ${varOf(1)}`);
  assert.ok(Math.abs(varOf(0) - explainedVariance[0]!) / explainedVariance[0]! < 1e-4);
  let dot = 0, n0 = 0, n1 = 0;
  for (let j = 0; j < d; j++) {
    dot += components[j * 2]! * components[j * 2 + 1]!;
    n0 += components[j * 2]! ** 2;
    n1 += components[j * 2 + 1]! ** 2;
  }
  assert.ok(Math.abs(dot) < 1e-9 && Math.abs(n0 - 1) < 1e-9 && Math.abs(n1 - 1) < 1e-9, 'orthonormal axes');

  const py = `
import json, sys, numpy as np
x = np.array(json.load(sys.stdin), dtype=np.float64)
xc = x - x.mean(0)
u, s, vt = np.linalg.svd(xc, full_matrices=False)
print(json.dumps((xc @ vt[:2].T).tolist()))
`;
  const res = spawnSync('/usr/bin/python3', ['-c', py], { input: JSON.stringify(Array.from({ length: n }, (_, i) => Array.from(data.subarray(i * d, (i + 1) * d)))), encoding: 'utf8' });
  assert.equal(res.status, 0, res.stderr);
  const ref = JSON.parse(res.stdout) as number[][];
  for (let c = 0; c < 2; c++) {
    const sign = Math.sign(ref[0]![c]!) === Math.sign(coords[c]!) ? 1 : -1;
    for (let i = 0; i < n; i++) assert.ok(Math.abs(sign * coords[i * 2 + c]! - ref[i]![c]!) < 1e-3, `row ${i} axis ${c}: ${coords[i * 2 + c]} vs ${ref[i]![c]}`);
  }
});

test('embeddingMap umap keeps three separated clusters apart; ids, labels and splits follow the rows', async () => {
  const { vectors, labels } = clusters(600, 16, 3);
  const index = await table('umap', vectors, labels);
  const t0 = performance.now();
  const map = await embeddingMap(index, { method: 'umap', cache: false });
  const ms = performance.now() - t0;
  assert.equal(map.method, 'umap');
  assert.equal(map.ids.length, 600);
  assert.equal(map.x.length, 600);
  for (let i = 0; i < 600; i += 97) {
    const k = Number(map.ids[i]!.slice(1));
    assert.equal(map.labels[i], labels[k]);
    assert.equal(map.splits[i], k % 5 === 0 ? 'test' : 'train');
  }
  assert.ok(map.x.every(Number.isFinite) && map.y.every(Number.isFinite));
  const agree = knnAgreement(map.x, map.y, map.labels, 10);
  assert.ok(agree > 0.95, `kNN label agreement in 2-D ${agree}`);
  // not collapsed: the clusters are apart by more than their own spread
  const pcaMap = await embeddingMap(index, { method: 'pca', cache: false });
  assert.ok(knnAgreement(pcaMap.x, pcaMap.y, pcaMap.labels, 10) > 0.95);
  assert.ok(ms < 30_000, `umap of 600 rows took ${ms} ms`);
  index.close();
});

test('embeddingMap caches in the table folder, reuses the cache, recomputes after a change', async () => {
  const { vectors, labels } = clusters(90, 8, 4);
  const index = await table('cache', vectors, labels);
  const first = await embeddingMap(index, { method: 'pca' });
  const file = path.join(tmp, 'cache', `${index.tableName}.lance`, '_dyad_map', 'pca.json');
  assert.ok(existsSync(file), 'cache written');
  // tamper with the cached coordinates: a reused cache hands them back
  const j = JSON.parse(await fsp.readFile(file, 'utf8'));
  j.x = Buffer.from(new Float32Array(90).fill(7).buffer).toString('base64');
  await fsp.writeFile(file, JSON.stringify(j));
  const second = await embeddingMap(index, { method: 'pca' });
  assert.ok(second.x.every((v) => v === 7), 'read from the cache');
  assert.deepEqual(Array.from(second.y), Array.from(first.y));
  assert.ok((await embeddingMap(index, { method: 'pca', cache: false })).x.some((v) => v !== 7), 'cache: false recomputes');
  // a new row: new version and row count, so the map is computed again
  await index.table.add(rowsToArrow([{ id: 'extra', path: '/virtual/extra.png', label: null, split: null, vector: vectors[0]!, size: 1, mtime: 0, model: 'projection-test-8' }], 8));
  const third = await embeddingMap(index, { method: 'pca' });
  assert.equal(third.ids.length, 91);
  assert.ok(third.x.some((v) => v !== 7));
  assert.equal(third.labels[third.ids.indexOf('extra')], null);
  index.close();
});

test('embeddingMap stops on abort', async () => {
  const { vectors, labels } = clusters(1500, 16, 5);
  const index = await table('abort', vectors, labels);
  const pre = new AbortController();
  pre.abort();
  await assert.rejects(embeddingMap(index, { method: 'umap', signal: pre.signal }), { name: 'AbortError' });
  const ac = new AbortController();
  const t0 = performance.now();
  const p = embeddingMap(index, { method: 'umap', signal: ac.signal, cache: false });
  setTimeout(() => ac.abort(), 50);
  await assert.rejects(p, { name: 'AbortError' });
  assert.ok(performance.now() - t0 < 5000, 'stopped promptly');
  assert.ok(!existsSync(path.join(tmp, 'abort', `${index.tableName}.lance`, '_dyad_map', 'umap.json')), 'no cache of an aborted map');
  index.close();
});

test('umapLayout on 2 threads (Hogwild workers on a shared layout) keeps the clusters apart too', async () => {
  const { vectors, labels } = clusters(900, 16, 6);
  const flat = new Float32Array(900 * 16);
  vectors.forEach((v, i) => flat.set(v, i * 16));
  const init = pca(flat, 900, 16, 2).coords;
  const xy = await umapLayout(flat, 900, 16, init, { threads: 2, nEpochs: 100 });
  const x = Float32Array.from({ length: 900 }, (_, i) => xy[2 * i]!);
  const y = Float32Array.from({ length: 900 }, (_, i) => xy[2 * i + 1]!);
  assert.ok(xy.every(Number.isFinite));
  const agree = knnAgreement(x, y, labels, 10);
  assert.ok(agree > 0.95, `kNN label agreement in 2-D ${agree}`);
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(umapLayout(flat, 900, 16, init, { threads: 2, signal: ac.signal }), { name: 'AbortError' });
});
