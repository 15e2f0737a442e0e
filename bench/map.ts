/**
 * The 2-D map of an index (`embeddingMap`, src/search/projection.ts): time of PCA and UMAP on
 * 70,000 rows, and how well the map keeps neighbourhoods: the fraction of a point's 10 nearest
 * 2-D neighbours that share its label (over 5,000 sampled points), beside the same figure for
 * its 10 nearest neighbours by cosine in the embedding itself (the ceiling).
 *
 *   npm run bench -- map                                   synthetic: 70,000 × 128, 10 clusters
 *   npm run bench -- map --weights runs/x/best.safetensors all 70,000 Fashion-MNIST images
 *       [--rows N --dim D --clusters C] [--db DIR (keeps the table: a second run skips embedding)]
 *
 * Prints one JSON line.
 */
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as arrow from 'apache-arrow';
import { emit, machine, num } from './common.js';
import { clusteredVectors, embedFashionMnist } from './search.js';
import { Index, columnsToArrow, embeddingMap, indexSchema, type Embedder } from '../src/search/index.js';
import * as torch from '../src/torch/index.js';
import { Model } from '../src/api/model.js';
import { FashionMNIST, InMemoryDataset } from '../src/data/index.js';

/**
 * Fraction of the k nearest neighbours (by `score`, larger is nearer) of `sample` rows of
 * `pts` (n×d) that share the row's label; the row itself left out.
 */
function labelAgreement(pts: Float32Array, n: number, d: number, labels: (string | null)[], sample: number[], k: number, cosine: boolean): number {
  let same = 0;
  torch.noGrad(() =>
    torch.scope(() => {
      let x = torch.tensor(pts, { shape: [n, d] });
      if (cosine) x = torch.functional.normalize(x, { dim: 1 });
      const sq = x.mul(x).sum(1);
      for (let s = 0; s < sample.length; s += 500) {
        torch.scope(() => {
          const rows = sample.slice(s, s + 500);
          const q = x.indexSelect(0, torch.tensor(BigInt64Array.from(rows, BigInt)));
          // cosine: similarity; 2-D: −squared distance (up to the query's own norm)
          const score = cosine ? q.mm(x.t()) : q.mm(x.t()).mul(2).sub(sq.unsqueeze(0));
          const idx = score.topk(k + 1, { dim: 1 }).indices.toInt32Array();
          rows.forEach((i, r) => {
            let got = 0;
            for (let c = 0; c <= k && got < k; c++) {
              const j = idx[r * (k + 1) + c]!;
              if (j === i) continue;
              got++;
              if (labels[j] === labels[i]) same++;
            }
          });
        });
      }
    }),
  );
  return same / (sample.length * k);
}

export async function main(args: Record<string, unknown>): Promise<void> {
  const weights = typeof args.weights === 'string' ? args.weights : undefined;
  const dbArg = typeof args.db === 'string' ? args.db : undefined;
  const db = dbArg ?? (await fsp.mkdtemp(path.join(os.tmpdir(), 'dyad-bench-map-')));
  const log = (l: string) => process.stderr.write(l + '\n');
  let embedder: Embedder;
  let source: Record<string, unknown>;
  let fill: () => Promise<{ vectors: Float32Array; labels: string[]; splits: (string | null)[] }>;
  if (weights) {
    const model = await Model.load(weights);
    embedder = { identity: model.identity, dim: model.dim, embedImages: async () => { throw new Error('bench'); } };
    source = { data: 'fashion-mnist', weights };
    fill = async () => {
      const sets: InMemoryDataset[] = [];
      try {
        for (const train of [true, false]) {
          const raw = await FashionMNIST.open({ train, channels: model.config!.channels as 1 | 3 });
          sets.push(await InMemoryDataset.from(raw, { imageSize: model.config!.imageSize, channels: model.config!.channels as 1 | 3 }));
        }
        const vectors = await embedFashionMnist(model, sets, (k) => [...Array(sets[k]!.length).keys()], 500, false, log);
        const labels = sets.flatMap((s) => Array.from(s.labels, (l) => FashionMNIST.CLASSES[l]!));
        const splits = sets.flatMap((s, k) => Array<string>(s.length).fill(k === 0 ? 'train' : 'test'));
        return { vectors, labels, splits };
      } finally {
        for (const s of sets) s.dispose();
        model.dispose();
      }
    };
  } else {
    const rows = num(args.rows, 70_000), dim = num(args.dim, 128), clusters = num(args.clusters, 10);
    embedder = { identity: `bench-map-${rows}x${dim}-c${clusters}`, dim, embedImages: async () => { throw new Error('bench'); } };
    source = { data: 'synthetic', clusters, spread: 0.6 };
    fill = async () => {
      const of = new Int32Array(rows);
      const vectors = clusteredVectors(rows, dim, clusters, 0.6, 1, 1, of);
      const labels = Array.from(of, (c) => `c${c}`);
      return { vectors, labels, splits: labels.map(() => null) };
    };
  }
  const index = await Index.open({ db, dataset: 'bench-map', embedder, annThreshold: Infinity });
  try {
    let embed_s = 0;
    if ((await index.count()) === 0) {
      const t0 = performance.now();
      const { vectors, labels, splits } = await fill();
      embed_s = (performance.now() - t0) / 1000;
      const n = labels.length, dim = embedder.dim;
      const ids = Array.from({ length: n }, (_, i) => `r${i}`);
      await index.table.add(columnsToArrow(indexSchema(dim), {
        id: ids, path: ids.map((id, i) => `/bench/${labels[i]}/${id}.png`), label: labels, split: splits, vectors,
        size: new BigInt64Array(n).fill(1n), mtime: new Float64Array(n), model: ids.map(() => embedder.identity),
      }) as arrow.Table);
      log(`table of ${n} rows ready in ${embed_s.toFixed(1)} s`);
    }
    const n = await index.count();
    const result: Record<string, unknown> = { bench: 'map', rows: n, dim: embedder.dim, ...source, ...(embed_s > 0 && { embed_s: +embed_s.toFixed(1) }) };
    // the same rows in the same order as the map, for the agreement figures
    const all = await index.table.query().select(['id', 'vector']).toArrow();
    const { vectorsOf } = await import('../src/search/schema.js');
    const vectors = vectorsOf(all.getChild('vector'), embedder.dim);
    let seed = 1;
    const sample = Array.from({ length: Math.min(5000, n) }, () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) % n));
    await fsp.rm(path.join(db, `${index.tableName}.lance`, '_dyad_map'), { recursive: true, force: true });
    for (const method of ['pca', 'umap'] as const) {
      const t0 = performance.now();
      const c0 = process.cpuUsage();
      const map = await embeddingMap(index, { method }); // the cache was removed above: computes and writes it
      const s = (performance.now() - t0) / 1000;
      const c = process.cpuUsage(c0);
      const t1 = performance.now();
      await embeddingMap(index, { method });
      const cached_ms = performance.now() - t1;
      const xy = new Float32Array(2 * n);
      for (let i = 0; i < n; i++) [xy[2 * i], xy[2 * i + 1]] = [map.x[i]!, map.y[i]!];
      result[`${method}_s`] = +s.toFixed(2);
      // CPU seconds of all threads: on a shared machine, wall time is the CPU time we were given
      result[`${method}_cpu_s`] = +((c.user + c.system) / 1e6).toFixed(2);
      result[`${method}_cached_ms`] = +cached_ms.toFixed(0);
      result[`${method}_knn10_label_agreement`] = +labelAgreement(xy, n, 2, map.labels, sample, 10, false).toFixed(4);
      if (method === 'pca') result.embedding_knn10_label_agreement = +labelAgreement(vectors, n, embedder.dim, map.labels, sample, 10, true).toFixed(4);
      log(JSON.stringify(result));
    }
    emit({ ...result, ...machine() });
  } finally {
    index.close();
    if (!dbArg) await fsp.rm(db, { recursive: true, force: true });
  }
}
