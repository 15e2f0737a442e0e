/**
 * Search benchmark: synthetic clustered unit vectors (a Gaussian mixture, so ANN partitions mean
 * something) in a real LanceDB table through `Index`; build the ANN indexes, time queries, and
 * measure recall@10 against the exact top 10 (a libtorch matmul here).
 *
 *   npm run bench -- search                 IVF-PQ and HNSW-SQ side by side, 1M × 128, one JSON line
 *   node dist/bench/search.js --rows 1000000 --dim 128 [--index both|ivf_pq|hnsw_sq|flat] [--queries 100]
 *       [--nprobes 40] [--refine 10] [--ef 150] [--m 16] [--ef-construction 150] [--partitions N]
 *       [--sub-vectors N] [--sweep-ivf "nprobes:refine,..."] [--sweep-hnsw "ef:refine[:nprobes],..."]
 *       [--db DIR --keep]
 *
 * Prints one JSON line on stdout ({ results: [one row per index] }); a sweep adds one JSON line
 * per setting on stderr. `--db DIR --keep` keeps the tables, and a second run on the same DIR
 * skips ingest and build (to sweep query settings).
 *
 * Real embeddings: `--weights W` embeds all 70,000 Fashion-MNIST images (train + test) with the
 * dyad checkpoint W, indexes them, and prints two JSON lines: flat (exact) search, then a forced
 * ANN index of the default type on the same table. Queries are horizontally flipped images (not in the table).
 *
 *   node dist/bench/search.js --weights runs/fmnist/best.safetensors [--data-root DIR] [--queries 100]
 */
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import * as arrow from 'apache-arrow';
import { emit, machine } from './common.js';
import { ANN_DEFAULTS, Index, annBuildParams, columnsToArrow, indexSchema, type Embedder, type AnnOptions } from '../src/search/index.js';
import * as torch from '../src/torch/index.js';
import { Model } from '../src/api/model.js';
import { FashionMNIST, InMemoryDataset } from '../src/data/index.js';
import { normalize } from '../src/transforms/index.js';

export interface SearchBenchArgs {
  rows?: number;
  dim?: number;
  /** Which index to measure; 'both' (default): IVF-PQ and HNSW-SQ side by side on the same data. */
  index?: 'ivf_pq' | 'hnsw_sq' | 'flat' | 'both';
  queries?: number;
  clusters?: number;
  /** Noise around a cluster centre, as a fraction of the centre's length. */
  spread?: number;
  seed?: number;
  /** Query and build settings; each applies to the index kinds that use it. */
  nprobes?: number;
  refine?: number;
  ef?: number;
  m?: number;
  efConstruction?: number;
  partitions?: number;
  subVectors?: number;
  /** Extra query settings to time on the same index: "nprobes:refine" (IVF-PQ), "ef:refine[:nprobes]" (HNSW-SQ). */
  sweepIvf?: string[];
  sweepHnsw?: string[];
  /** Database folder; a temp folder (removed afterwards) by default. */
  db?: string;
  /** Keep the database; with an existing table of the same rows/dim/seed, skip ingest and build. */
  keep?: boolean;
  log?: (line: string) => void;
}

/** One index's figures. */
export interface SearchBenchRow {
  index: string;
  params: Record<string, number>;
  ingest_s: number;
  build_s: number;
  p50_ms: number;
  p95_ms: number;
  recall_at_10: number;
}

export interface SearchBenchResult {
  bench: 'search';
  rows: number;
  dim: number;
  queries: number;
  /** dyad's default index type (ANN_DEFAULTS.type). */
  default: string;
  results: SearchBenchRow[];
}

/** sfc32 PRNG (128-bit state) → uniform [0,1); normals by Box–Muller. */
function makeRng(seed: number) {
  let a = 0x9e3779b9, b = 0x243f6a88, c = 0xb7e15162, d = seed >>> 0;
  const uniform = () => {
    a >>>= 0; b >>>= 0; c >>>= 0; d >>>= 0;
    const t = (a + b + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) >>> 0;
    return t / 4294967296;
  };
  for (let i = 0; i < 20; i++) uniform();
  let spare: number | null = null;
  const normal = () => {
    if (spare !== null) {
      const s = spare;
      spare = null;
      return s;
    }
    const u = uniform() || 1e-12;
    const v = uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
  return { uniform, normal };
}

/**
 * n unit vectors from a mixture of `clusters` Gaussians: centre (random unit vector) plus
 * isotropic noise of total length ≈ spread, then normalised. Row-major n×dim; `clusterOf[i]`
 * (when given) receives row i's cluster.
 */
export function clusteredVectors(n: number, dim: number, clusters: number, spread: number, seed: number, centreSeed = seed, clusterOf?: Int32Array): Float32Array {
  const cr = makeRng(centreSeed);
  const centres = new Float32Array(clusters * dim);
  for (let c = 0; c < clusters; c++) {
    let s = 0;
    for (let j = 0; j < dim; j++) s += (centres[c * dim + j] = cr.normal()) ** 2;
    const inv = 1 / Math.sqrt(s);
    for (let j = 0; j < dim; j++) centres[c * dim + j]! *= inv;
  }
  const r = makeRng(seed + 1);
  const out = new Float32Array(n * dim);
  const sigma = spread / Math.sqrt(dim);
  for (let i = 0; i < n; i++) {
    const c = Math.floor(r.uniform() * clusters);
    if (clusterOf) clusterOf[i] = c;
    let s = 0;
    for (let j = 0; j < dim; j++) {
      const x = centres[c * dim + j]! + sigma * r.normal();
      out[i * dim + j] = x;
      s += x * x;
    }
    const inv = 1 / Math.sqrt(s);
    for (let j = 0; j < dim; j++) out[i * dim + j]! *= inv;
  }
  return out;
}

/** Exact top-k row numbers by dot product (vectors are unit length), best first. */
export function exactTopK(data: Float32Array, dim: number, q: Float32Array, k: number): number[] {
  const n = data.length / dim;
  const best: { i: number; s: number }[] = [];
  let floor = -Infinity;
  for (let i = 0; i < n; i++) {
    const o = i * dim;
    let s = 0;
    for (let j = 0; j < dim; j++) s += data[o + j]! * q[j]!;
    if (best.length < k || s > floor) {
      best.push({ i, s });
      best.sort((a, b) => b.s - a.s);
      if (best.length > k) best.pop();
      floor = best[best.length - 1]!.s;
    }
  }
  return best.map((b) => b.i);
}

/**
 * Exact top-k row numbers of each query by dot product (unit vectors), on libtorch in chunks of
 * the data; nq×k, best first.
 */
export function exactTopKAll(data: Float32Array, dim: number, queries: Float32Array, k: number): number[][] {
  const n = data.length / dim, nq = queries.length / dim;
  const cand: { i: number; s: number }[][] = Array.from({ length: nq }, () => []);
  torch.noGrad(() =>
    torch.scope(() => {
      const q = torch.tensor(queries, { shape: [nq, dim] });
      const x = torch.frombuffer(data, { shape: [n, dim] });
      for (let s = 0; s < n; s += 250_000) {
        torch.scope(() => {
          const m = Math.min(250_000, n - s);
          const { values, indices } = q.mm(x.narrow(0, s, m).t()).topk(Math.min(k, m), { dim: 1 });
          const v = values.toFloat32Array(), ix = indices.toInt32Array(), kk = Math.min(k, m);
          for (let r = 0; r < nq; r++) for (let c = 0; c < kk; c++) cand[r]!.push({ i: s + ix[r * kk + c]!, s: v[r * kk + c]! });
        });
      }
    }),
  );
  return cand.map((c) => c.sort((a, b) => b.s - a.s).slice(0, k).map((b) => b.i));
}

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};

type Kind = 'ivf_pq' | 'hnsw_sq' | 'flat';

type QueryOptions = { nprobes?: number; refineFactor?: number; ef?: number; exact?: boolean };

/**
 * Latency and recall of `truth.length` queries (limit 10): `queries` holds 10 warm-up vectors and
 * then one per entry of `truth` (the ids of its exact top 10), each `dim` long.
 */
async function measureQueries(index: Index, queries: Float32Array, dim: number, truth: Set<string>[], opts: QueryOptions) {
  for (let i = 0; i < 10; i++) await index.search(queries.subarray(i * dim, (i + 1) * dim), { limit: 10, ...opts }); // warm-up
  const times: number[] = [];
  let hit = 0;
  for (let i = 0; i < truth.length; i++) {
    const q = queries.subarray((10 + i) * dim, (11 + i) * dim);
    const t = performance.now();
    const res = await index.search(q, { limit: 10, ...opts });
    times.push(performance.now() - t);
    hit += res.filter((h) => truth[i]!.has(h.id)).length;
  }
  return { p50_ms: +quantile(times, 0.5).toFixed(3), p95_ms: +quantile(times, 0.95).toFixed(3), recall_at_10: +(hit / (10 * truth.length)).toFixed(4) };
}

/**
 * Builds each asked index on the same synthetic vectors (one table per kind in one database),
 * and measures it: build time, p50/p95 query latency (limit 10, after 10 warm-up queries) and
 * recall@10 against the exact top 10.
 */
export async function runSearchBench(args: SearchBenchArgs = {}): Promise<SearchBenchResult & { sweep: Record<string, unknown>[] }> {
  const rows = args.rows ?? 1_000_000;
  const dim = args.dim ?? 128;
  const kinds: Kind[] = args.index === undefined || args.index === 'both' ? ['ivf_pq', 'hnsw_sq'] : [args.index];
  const nq = args.queries ?? 100;
  const clusters = args.clusters ?? 1000;
  const spread = args.spread ?? 0.6;
  const seed = args.seed ?? 1;
  const log = args.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const dbDir = args.db ?? (await fsp.mkdtemp(path.join(os.tmpdir(), 'dyad-bench-search-')));
  const embedder: Embedder = {
    identity: `bench-synthetic-${rows}x${dim}-c${clusters}-s${spread}-seed${seed}`,
    dim,
    embedImages: async () => {
      throw new Error('the search bench writes vectors directly');
    },
  };
  let t0 = performance.now();
  const data = clusteredVectors(rows, dim, clusters, spread, seed);
  const queries = clusteredVectors(nq + 10, dim, clusters, spread, seed + 7777, seed);
  log(`generated ${rows}×${dim} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  t0 = performance.now();
  const truth = exactTopKAll(data, dim, queries.subarray(10 * dim), 10).map((t) => new Set(t.map((r) => `r${r}`)));
  log(`exact top-10 for ${nq} queries in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  const results: SearchBenchRow[] = [];
  const sweep: Record<string, unknown>[] = [];
  try {
    for (const kind of kinds) {
      const ann: AnnOptions = {
        type: kind === 'hnsw_sq' ? 'hnsw_sq' : 'ivf_pq',
        ...(args.nprobes !== undefined && { nprobes: args.nprobes }),
        ...(args.refine !== undefined && { refineFactor: args.refine }),
        ...(args.ef !== undefined && { ef: args.ef }),
        ...(args.m !== undefined && { m: args.m }),
        ...(args.efConstruction !== undefined && { efConstruction: args.efConstruction }),
        ...(args.partitions !== undefined && { numPartitions: args.partitions }),
        ...(args.subVectors !== undefined && { numSubVectors: args.subVectors }),
      };
      const index = await Index.open({ db: dbDir, dataset: `bench-${kind}`, embedder, ann, annThreshold: kind === 'flat' ? Infinity : 1 });
      try {
        let ingest_s = 0;
        let build_s = 0;
        const existing = await index.count();
        if (existing !== rows) {
          if (existing > 0) await index.table.delete('true');
          t0 = performance.now();
          const schema = indexSchema(dim);
          const chunk = 100_000;
          for (let s = 0; s < rows; s += chunk) {
            const e = Math.min(rows, s + chunk);
            const n = e - s;
            const ids = Array.from({ length: n }, (_, i) => `r${s + i}`);
            await index.table.add(
              columnsToArrow(schema, {
                id: ids,
                path: ids.map((id) => `/synthetic/${id}.png`),
                label: ids.map((_, i) => `c${(s + i) % 10}`),
                split: ids.map(() => null),
                vectors: data.subarray(s * dim, e * dim),
                size: new BigInt64Array(n).fill(1n),
                mtime: new Float64Array(n),
                model: ids.map(() => embedder.identity),
              }) as arrow.Table,
            );
          }
          ingest_s = (performance.now() - t0) / 1000;
          log(`${kind}: ingested in ${ingest_s.toFixed(1)} s`);
          t0 = performance.now();
          if (kind !== 'flat') await index.optimize({ force: true });
          build_s = (performance.now() - t0) / 1000;
          log(`${kind}: built in ${build_s.toFixed(1)} s: ${JSON.stringify(await index.annInfo())}`);
        } else {
          log(`${kind}: reusing ${existing} rows in ${dbDir}: ${JSON.stringify(await index.annInfo())}`);
        }

        const measure = (opts: QueryOptions) => measureQueries(index, queries, dim, truth, opts);

        for (const s of (kind === 'hnsw_sq' ? args.sweepHnsw : kind === 'ivf_pq' ? args.sweepIvf : undefined) ?? []) {
          const [a, b, c] = s.split(':').map(Number);
          const opts =
            kind === 'hnsw_sq'
              ? { ef: a!, ...(b !== undefined && { refineFactor: b }), ...(c !== undefined && { nprobes: c }) }
              : { nprobes: a!, refineFactor: b ?? index.ann.refineFactor };
          const r = { bench: 'search-sweep', index: kind, ...opts, ...(await measure(opts)) };
          sweep.push(r);
          log(JSON.stringify(r));
        }
        const a = index.ann;
        const params: Record<string, number> =
          kind === 'flat'
            ? {}
            : kind === 'hnsw_sq'
              ? { ef: Math.max(a.ef, 10 * Math.max(1, a.refineFactor)), refineFactor: a.refineFactor, nprobes: a.nprobes, m: a.m, efConstruction: a.efConstruction }
              : { nprobes: a.nprobes, refineFactor: a.refineFactor };
        if (kind !== 'flat') Object.assign(params, annBuildParams(rows, dim, a));
        const row = { index: kind, params, ingest_s: +ingest_s.toFixed(2), build_s: +build_s.toFixed(2), ...(await measure(kind === 'flat' ? { exact: true } : {})) };
        log(JSON.stringify(row));
        results.push(row);
      } finally {
        index.close();
      }
    }
    return { bench: 'search', rows, dim, queries: nq, default: ANN_DEFAULTS.type, results, sweep };
  } finally {
    if (!args.db && !args.keep) await fsp.rm(dbDir, { recursive: true, force: true });
  }
}

export interface RealSearchBenchArgs {
  /** A dyad checkpoint trained on Fashion-MNIST (28×28 grey). */
  weights: string;
  /** Folder of the Fashion-MNIST IDX files; default FashionMNIST.DEFAULT_ROOT. */
  dataRoot?: string;
  queries?: number;
  seed?: number;
  /** Images per forward pass. Default 500. */
  batch?: number;
  db?: string;
  log?: (line: string) => void;
}

export interface RealSearchBenchResult extends SearchBenchRow {
  bench: 'search';
  rows: number;
  dim: number;
  queries: number;
  data: 'fashion-mnist';
  embed_s: number;
  weights: string;
}

/**
 * Embeds every Fashion-MNIST image (train then test) with the model, as `Model.embed` does
 * (uint8 → mean/std normalisation → backbone → L2 normalisation), n×dim row-major. `flip`
 * mirrors the images left-right first (the queries).
 */
export async function embedFashionMnist(model: Model, sets: InMemoryDataset[], pick: (set: number) => number[], batch: number, flip: boolean, log: (l: string) => void): Promise<Float32Array> {
  const net = model.net!;
  const { mean, std } = net.config;
  const dim = model.dim;
  const total = sets.reduce((s, d, k) => s + pick(k).length, 0);
  const out = new Float32Array(total * dim);
  let o = 0;
  const t0 = performance.now();
  for (const [k, ds] of sets.entries()) {
    const idx = pick(k);
    for (let i = 0; i < idx.length; i += batch) {
      const rows = torch.noGrad(() =>
        torch.scope(() => {
          const b = ds.tensorBatch(idx.slice(i, i + batch));
          const x = normalize(flip ? b.images.flip(3) : b.images, { mean, std });
          return torch.functional.normalize(net.features(x), { dim: 1 }).contiguous().toFloat32Array();
        }),
      );
      out.set(rows, o);
      o += rows.length;
      if (!flip && (o / dim) % 10_000 < batch) log(`embedded ${o / dim}/${total} (${((o / dim) / ((performance.now() - t0) / 1000)).toFixed(0)} img/s)`);
    }
  }
  return out;
}

/** Fashion-MNIST (70,000 images) embedded by a trained model: flat and default-ANN (forced) search on the same table. */
export async function runRealSearchBench(args: RealSearchBenchArgs): Promise<RealSearchBenchResult[]> {
  const nq = args.queries ?? 100;
  const seed = args.seed ?? 1;
  const batch = args.batch ?? 500;
  const log = args.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const dbDir = args.db ?? (await fsp.mkdtemp(path.join(os.tmpdir(), 'dyad-bench-search-real-')));
  const model = await Model.load(args.weights);
  const sets: InMemoryDataset[] = [];
  try {
    const cfg = model.config!;
    for (const train of [true, false]) {
      const raw = await FashionMNIST.open({ ...(args.dataRoot !== undefined && { root: args.dataRoot }), train, channels: cfg.channels as 1 | 3 });
      sets.push(await InMemoryDataset.from(raw, { imageSize: cfg.imageSize, channels: cfg.channels as 1 | 3 }));
    }
    const dim = model.dim;
    const rows = sets[0]!.length + sets[1]!.length;
    let t0 = performance.now();
    const data = await embedFashionMnist(model, sets, (k) => [...Array(sets[k]!.length).keys()], batch, false, log);
    const embed_s = (performance.now() - t0) / 1000;
    log(`embedded ${rows} images (${dim}-d) in ${embed_s.toFixed(1)} s`);
    // queries: mirrored test images (not in the table), 10 more for warm-up
    const r = makeRng(seed);
    const qIdx = Array.from({ length: nq + 10 }, () => Math.floor(r.uniform() * sets[1]!.length));
    const queries = await embedFashionMnist(model, sets, (k) => (k === 1 ? qIdx : []), batch, true, log);

    const embedder: Embedder = { identity: model.identity, dim, embedImages: async () => { throw new Error('the search bench writes vectors directly'); } };
    const index = await Index.open({ db: dbDir, dataset: 'fashion-mnist', embedder, annThreshold: Infinity });
    try {
      t0 = performance.now();
      const schema = indexSchema(dim);
      let s = 0;
      for (const [k, ds] of sets.entries()) {
        const split = k === 0 ? 'train' : 'test';
        const n = ds.length;
        const ids = Array.from({ length: n }, (_, i) => `${split}-${i}`);
        await index.table.add(
          columnsToArrow(schema, {
            id: ids,
            path: ids.map((id) => `fashion-mnist/${id}`),
            label: Array.from(ds.labels, (l) => FashionMNIST.CLASSES[l]!),
            split: ids.map(() => split),
            vectors: data.subarray(s * dim, (s + n) * dim),
            size: new BigInt64Array(n).fill(784n),
            mtime: new Float64Array(n),
            model: ids.map(() => embedder.identity),
          }) as arrow.Table,
        );
        s += n;
      }
      const ingest_s = (performance.now() - t0) / 1000;
      log(`ingested ${rows} rows in ${ingest_s.toFixed(1)} s`);
      const idOf = (row: number) => (row < sets[0]!.length ? `train-${row}` : `test-${row - sets[0]!.length}`);
      const truth = Array.from({ length: nq }, (_, i) => new Set(exactTopK(data, dim, queries.subarray((10 + i) * dim, (11 + i) * dim), 10).map(idOf)));
      const measure = (opts: QueryOptions) => measureQueries(index, queries, dim, truth, opts);
      const common = { bench: 'search' as const, data: 'fashion-mnist' as const, rows, dim, embed_s: +embed_s.toFixed(2), ingest_s: +ingest_s.toFixed(2), queries: nq, weights: args.weights };
      const flat = { ...common, index: 'flat', params: {}, build_s: 0, ...(await measure({ exact: true })) };
      log(JSON.stringify(flat));
      t0 = performance.now();
      await index.optimize({ force: true });
      const build_s = (performance.now() - t0) / 1000;
      log(`built ${index.ann.type} in ${build_s.toFixed(1)} s: ${JSON.stringify(await index.annInfo())}`);
      const params = { nprobes: index.ann.nprobes, refineFactor: index.ann.refineFactor, ...(index.ann.type === 'hnsw_sq' && { ef: index.ann.ef }), ...annBuildParams(rows, dim, index.ann) };
      const ivf = { ...common, index: index.ann.type, params, build_s: +build_s.toFixed(2), ...(await measure({})) };
      return [flat, ivf];
    } finally {
      index.close();
      if (!args.db) await fsp.rm(dbDir, { recursive: true, force: true });
    }
  } finally {
    for (const d of sets) d.dispose();
    model.dispose();
  }
}

/** `npm run bench -- search [--rows N --dim D ...]` and `node dist/bench/search.js [...]`: one JSON line. */
export async function main(args: Record<string, unknown>): Promise<void> {
  const n = (k: string) => (args[k] === undefined || args[k] === true ? undefined : Number(args[k]));
  const str = (k: string) => (typeof args[k] === 'string' ? (args[k] as string) : undefined);
  if (str('weights')) {
    const results = await runRealSearchBench({ weights: str('weights')!, dataRoot: str('data-root'), queries: n('queries'), seed: n('seed'), batch: n('batch'), db: str('db') });
    for (const r of results) emit({ ...r, ...machine() });
    return;
  }
  const index = str('index') as SearchBenchArgs['index'] | undefined;
  if (index && !['ivf_pq', 'hnsw_sq', 'flat', 'both'].includes(index)) throw new Error(`--index must be ivf_pq, hnsw_sq, flat or both, got ${index}`);
  const list = (k: string) => str(k)?.split(',').map((x) => x.trim()).filter(Boolean);
  const { sweep: _sweep, ...result } = await runSearchBench({
    rows: n('rows'),
    dim: n('dim'),
    index,
    queries: n('queries'),
    clusters: n('clusters'),
    spread: n('spread'),
    seed: n('seed'),
    nprobes: n('nprobes'),
    refine: n('refine'),
    ef: n('ef'),
    m: n('m'),
    efConstruction: n('ef-construction'),
    partitions: n('partitions'),
    subVectors: n('sub-vectors'),
    sweepIvf: list('sweep-ivf') ?? (index === 'ivf_pq' ? list('sweep') : undefined),
    sweepHnsw: list('sweep-hnsw') ?? (index === 'hnsw_sq' ? list('sweep') : undefined),
    db: str('db'),
    keep: args.keep === true || args.keep === 'true',
  });
  emit({ ...result, ...machine() });
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const str = { type: 'string' } as const;
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      rows: str, dim: str, index: str, queries: str, clusters: str, spread: str, seed: str, nprobes: str, refine: str,
      ef: str, m: str, 'ef-construction': str, partitions: str, 'sub-vectors': str, sweep: str, 'sweep-ivf': str, 'sweep-hnsw': str,
      db: str, keep: { type: 'boolean' },
      weights: str, 'data-root': str, batch: str,
    },
  });
  main(values).catch((err) => {
    process.stderr.write(`${(err as Error).stack ?? err}\n`);
    process.exit(1);
  });
}
