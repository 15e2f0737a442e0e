/**
 * The approximate-nearest-neighbour index of a table: which one, with what parameters, and when
 * it is (re)built.
 *
 * Below `annThreshold` rows (100,000) search is brute force (flat) and exact. From there on
 * `optimize` (run by `update`) builds the default index, HNSW-SQ (Malkov & Yashunin 2018; LanceDB
 * IVF_HNSW_SQ, cosine): one HNSW graph per 2M rows over 8-bit scalar-quantised vectors, m 20,
 * efConstruction 300; queries search with ef 100 and re-rank limit×2 candidates with the stored
 * full vectors (without that re-rank, SQ caps recall@10 near 0.96). IVF-PQ (Jégou et al. 2011;
 * `ann.type: 'ivf_pq'`): √rows partitions, dim/4 PQ codes, probes 20, re-ranks limit×20.
 * Side by side on 1M clustered 128-d vectors, 2 shared cores, same session (bench/search.ts,
 * BENCHMARKS.md): HNSW-SQ p50 ≈ 4–5 ms at recall@10 0.997–1.0, IVF-PQ p50 ≈ 8–11 ms at 0.993;
 * but HNSW-SQ builds ≈ 6× slower (5,480 s against 824 s of wall time under the same heavy load;
 * 33 CPU-minutes).
 */
import * as lancedb from '@lancedb/lancedb';
import { type IndexCore, assertWritable } from './table.js';

/** Which ANN index to build, and how to query it. */
export interface AnnOptions {
  /** Default 'ivf_pq'. */
  type?: 'ivf_pq' | 'hnsw_sq';
  /** IVF partitions. Default ≈ √rows (IVF-PQ), ≈ rows/100k (HNSW-SQ), at least 1. */
  numPartitions?: number;
  /** PQ sub-vectors. Default: a divisor of dim near dim/4 (32 for 128-d). */
  numSubVectors?: number;
  /** Partitions probed per query (IVF). Default 20. */
  nprobes?: number;
  /** Candidates re-ranked with the full vectors = limit × refineFactor. Default 20. */
  refineFactor?: number;
  /** HNSW search breadth. Default 150. */
  ef?: number;
  /** HNSW graph degree / construction breadth. Defaults 20 / 300. */
  m?: number;
  efConstruction?: number;
}

/** Query and build defaults of each index type (chosen by bench/search.ts at 1M × 128; BENCHMARKS.md). */
export const IVF_PQ_DEFAULTS = { type: 'ivf_pq', nprobes: 20, refineFactor: 20, ef: 150, m: 20, efConstruction: 300 } as const;
export const HNSW_SQ_DEFAULTS = { type: 'hnsw_sq', nprobes: 20, refineFactor: 2, ef: 100, m: 20, efConstruction: 300 } as const;

/** The defaults of the default index type (`type` left out of `ann`). */
export const ANN_DEFAULTS: ResolvedAnn = HNSW_SQ_DEFAULTS;

/** `AnnOptions` with the defaults filled in (the build sizes stay optional: they depend on the rows). */
export type ResolvedAnn = { type: 'ivf_pq' | 'hnsw_sq'; nprobes: number; refineFactor: number; ef: number; m: number; efConstruction: number } & Pick<AnnOptions, 'numPartitions' | 'numSubVectors'>;

/** `ann` over the defaults of its type (the default type when it names none). */
export function resolveAnn(ann: AnnOptions = {}): ResolvedAnn {
  const type = ann.type ?? ANN_DEFAULTS.type;
  const base = type === 'hnsw_sq' ? HNSW_SQ_DEFAULTS : IVF_PQ_DEFAULTS;
  const defined = Object.fromEntries(Object.entries(ann).filter(([, v]) => v !== undefined)) as AnnOptions;
  return { ...base, ...defined, type };
}

export interface AnnInfo {
  name: string;
  type: string;
  indexedRows: number;
  unindexedRows: number;
}

/** From this many rows a B-tree index on `id` speeds up the update's lookups and deletes. */
const SCALAR_INDEX_ROWS = 10_000;

function largestDivisorAtMost(n: number, max: number): number {
  for (let d = Math.max(1, Math.floor(max)); d > 1; d--) if (n % d === 0) return d;
  return 1;
}

/**
 * Build parameters of the vector index for a table of `rows` rows: IVF partitions ≈ √rows
 * (≥ 256 rows each) for IVF-PQ, one per 100k rows for HNSW-SQ; PQ sub-vectors of 4 dims
 * (dim/4 codes of 8 bits: 32 bytes per 128-d vector).
 */
export function annBuildParams(rows: number, dim: number, ann: AnnOptions = {}): { numPartitions: number; numSubVectors?: number } {
  if ((ann.type ?? ANN_DEFAULTS.type) === 'hnsw_sq') {
    return { numPartitions: ann.numPartitions ?? Math.max(1, Math.ceil(rows / 2_000_000)) };
  }
  return {
    numPartitions: ann.numPartitions ?? Math.max(1, Math.min(Math.round(Math.sqrt(rows)), Math.floor(rows / 256))),
    numSubVectors: ann.numSubVectors ?? largestDivisorAtMost(dim, dim / 4),
  };
}

/** The LanceDB index config for `rows` rows of `dim`-d vectors, cosine. */
export function annConfig(rows: number, dim: number, a: ResolvedAnn): lancedb.Index {
  const p = annBuildParams(rows, dim, a);
  if (a.type === 'hnsw_sq') {
    return lancedb.Index.hnswSq({ distanceType: 'cosine', numPartitions: p.numPartitions, m: a.m, efConstruction: a.efConstruction });
  }
  return lancedb.Index.ivfPq({ distanceType: 'cosine', numPartitions: p.numPartitions, numSubVectors: p.numSubVectors! });
}

/** The vector index of a table, if one exists. */
export async function annInfo(table: lancedb.Table): Promise<AnnInfo | null> {
  const idx = (await table.listIndices()).find((i) => i.columns.includes('vector'));
  if (!idx) return null;
  const st = await table.indexStats(idx.name);
  return { name: idx.name, type: st?.indexType ?? idx.indexType, indexedRows: st?.numIndexedRows ?? 0, unindexedRows: st?.numUnindexedRows ?? 0 };
}

/**
 * Compacts the table, and builds or refreshes indices: a vector index (cosine) once the table
 * has `annThreshold` rows (or when `force`), rebuilt when its trained part covers under half the
 * table; a B-tree on `id` from 10,000 rows.
 */
export async function optimize(core: IndexCore, options: { force?: boolean } = {}): Promise<{ ann: AnnInfo | null; rows: number }> {
  assertWritable(core, 'optimize');
  const table = core.table;
  const rows = await table.countRows();
  const indices = await table.listIndices();
  if (rows >= SCALAR_INDEX_ROWS && !indices.some((i) => i.columns.includes('id'))) {
    await table.createIndex('id', { config: lancedb.Index.btree() });
  }
  let ann = await annInfo(table);
  const stale = ann !== null && ann.indexedRows < rows / 2;
  if (rows > 0 && (options.force || rows >= core.annThreshold) && (ann === null || stale || options.force)) {
    await table.createIndex('vector', { config: annConfig(rows, core.dim, core.ann), replace: true });
  }
  await table.optimize();
  ann = await annInfo(table);
  return { ann, rows };
}
