/**
 * The embedding search layer: one LanceDB table per (dataset, model) holding a vector per image
 * file, kept in step with the files by `update`, searched by cosine distance.
 *
 *   const index = await Index.open({ db: '.dyad/db', dataset: 'photos', embedder: model });
 *   await index.update('photos/');                       // embeds only new or changed files
 *   const hits = await index.similar('photos/cat.jpg', { limit: 5, where: "split = 'train'" });
 *   const groups = await index.duplicates({ threshold: 0.95 });
 *
 * Below `annThreshold` rows (100,000) search is brute force (flat) and exact. From there on
 * `optimize` (run by `update`) builds an IVF-PQ index, cosine: √rows partitions, dim/4 PQ codes;
 * queries probe 20 partitions and re-rank limit×20 candidates with the stored full vectors.
 * Measured on 1M clustered 128-d vectors, 2 shared cores (bench/search.ts): IVF-PQ p50 ≈ 5 ms at
 * recall@10 ≈ 0.99, built in ≈ 2 min; HNSW-SQ (also available, `ann.type`) p50 ≈ 7–10 ms at
 * recall ≈ 1.0 but ≈ 10 min to build. dim/8 PQ codes needed refine ×40 for recall 0.95.
 */
import { promises as fsp, constants as fsConstants } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import * as lancedb from '@lancedb/lancedb';
import type * as arrow from 'apache-arrow';
import type { Embedder } from './embedder.js';
import { IndexError, shortIdentity } from './errors.js';
import {
  FORMAT_VERSION,
  META,
  RESULT_COLUMNS,
  indexSchema,
  rowId,
  rowsToArrow,
  sanitizeName,
  sqlIn,
  sqlString,
  tableName,
  vectorsOf,
  type IndexRow,
} from './schema.js';
import { type FileEntry, type ScanOptions, mapLimit, scanImages } from './files.js';
import { type DuplicateGroup, type Pair, exactPairs, groupPairs, normalizeRows } from './duplicates.js';

export type { Embedder } from './embedder.js';
export { ThumbnailEmbedder, LazyEmbedder, type LazyEmbedderOptions } from './embedder.js';
export { IndexError, type IndexErrorCode } from './errors.js';
export { scanImages, IMAGE_EXTENSIONS, type FileEntry, type ScanOptions } from './files.js';
export { writeDuplicatesReport, groupPairs, exactPairs, UnionFind, type DuplicateGroup, type DuplicateMember } from './duplicates.js';
export { tableName, rowId, indexSchema, rowsToArrow, columnsToArrow, sanitizeName, modelTag, type IndexRow } from './schema.js';

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

export const ANN_DEFAULTS = { type: 'ivf_pq', nprobes: 20, refineFactor: 20, ef: 150, m: 20, efConstruction: 300 } as const;

export interface IndexOpenOptions {
  /** Database folder (created when missing) or an object-store URI (`s3://bucket/path`). */
  db: string;
  /** Dataset name; the table is named from it and the model. */
  dataset: string;
  embedder: Embedder;
  /**
   * The checkpoint file the embedder was loaded from. A writable open records it (absolute path)
   * in the table, so a later search can load the same model without being told (`dyad search`
   * without `--weights`). Default: `embedder.weights` when that is a string (a loaded `Model`).
   */
  weights?: string | null;
  /** Never create anything; fail when the table is missing. Default false. */
  readOnly?: boolean;
  /** Use this table name instead of the (dataset, model) one. */
  table?: string;
  /** Row count from which `optimize` (and so `update`) builds an ANN index. Default 100,000. */
  annThreshold?: number;
  ann?: AnnOptions;
  /** Passed to LanceDB (object-store credentials, ...). */
  storageOptions?: Record<string, string>;
  /**
   * Seconds after which reads check for writes made by other processes (0: every read).
   * Default: never; call `refresh()` instead.
   */
  readConsistencyInterval?: number;
}

export interface UpdateProgress {
  phase: 'stat' | 'remove' | 'embed' | 'optimize' | 'done';
  done: number;
  total: number;
}

export interface UpdateOptions extends ScanOptions {
  /** Files embedded and written per commit. Default 64. */
  batchSize?: number;
  onProgress?: (p: UpdateProgress) => void;
  /** Compact and maintain indices when anything changed. Default true. */
  optimize?: boolean;
}

export interface UpdateResult {
  /** New files, embedded and written. */
  added: number;
  /** Changed files re-embedded, plus files whose label/split alone changed. */
  updated: number;
  /** Rows whose file is gone (or no longer listed) deleted. */
  removed: number;
  unchanged: number;
  /** Embedder calls' worth of files actually embedded (added + re-embedded). */
  embedded: number;
  /** Files that could not be read or embedded; not in the table. */
  failed: { path: string; error: string }[];
  /** Rows in the table afterwards. */
  rows: number;
}

export interface SearchOptions {
  /** Default 10. */
  limit?: number;
  /** SQL filter over id, path, label, split, size, mtime, model; applied before the vector search. */
  where?: string;
  /** Exact (flat) search even when an ANN index exists. */
  exact?: boolean;
  nprobes?: number;
  refineFactor?: number;
  ef?: number;
}

export interface SimilarOptions extends SearchOptions {
  /** When the query is a row of the table, leave it out of the results. Default true. */
  excludeSelf?: boolean;
}

export interface SearchHit {
  id: string;
  path: string;
  label: string | null;
  split: string | null;
  /** Cosine distance, 1 − similarity, in [0, 2]. */
  distance: number;
  /** Cosine similarity, 1 − distance. */
  score: number;
}

export interface IndexRecord {
  id: string;
  path: string;
  label: string | null;
  split: string | null;
  size: number;
  mtime: number;
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

export interface IndexInfo {
  table: string;
  dataset: string;
  model: string;
  dim: number;
  rows: number;
  /** The checkpoint file recorded for the model (absolute path), when known. */
  weights: string | null;
}

export interface AnnInfo {
  name: string;
  type: string;
  indexedRows: number;
  unindexedRows: number;
}

type Query = string | Uint8Array | Float32Array | number[];

const SCALAR_INDEX_ROWS = 10_000;
const STAT_CONCURRENCY = 32;

function isUri(db: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(db) && !db.startsWith('file://');
}

/** Checks a local database path before LanceDB sees it, so failures name the path and the fix. */
async function checkLocalDb(db: string, readOnly: boolean): Promise<string> {
  const dir = path.resolve(db.startsWith('file://') ? new URL(db).pathname : db);
  let st;
  try {
    st = await fsp.stat(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      if (readOnly) {
        throw new IndexError('TABLE_NOT_FOUND', `No database at ${db}: the folder does not exist. Build an index first (dyad index --db ${db} ...), or point --db at an existing database.`);
      }
      try {
        await fsp.mkdir(dir, { recursive: true });
        return dir;
      } catch (e) {
        throw new IndexError('DB_UNREADABLE', `Cannot create database folder ${db}: ${(e as Error).message}. Check that no part of the path is a file and that it is writable, or choose another --db.`, { cause: e });
      }
    }
    if (code === 'ENOTDIR') {
      throw new IndexError('DB_UNREADABLE', `Cannot use database ${db}: a parent of it is a file, not a folder. Choose another --db, or move that file away.`, { cause: err });
    }
    throw new IndexError('DB_UNREADABLE', `Cannot read database ${db}: ${code ?? (err as Error).message}. Fix its permissions, or choose another --db.`, { cause: err });
  }
  if (!st.isDirectory()) {
    throw new IndexError('DB_UNREADABLE', `Database path ${db} is a file, not a folder. Point --db at a folder (it is created when missing), or move the file away.`);
  }
  try {
    await fsp.access(dir, readOnly ? fsConstants.R_OK | fsConstants.X_OK : fsConstants.R_OK | fsConstants.W_OK | fsConstants.X_OK);
    await fsp.readdir(dir);
  } catch (err) {
    throw new IndexError('DB_UNREADABLE', `Cannot ${readOnly ? 'read' : 'read and write'} database folder ${db}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}. Fix its permissions, or choose another --db.`, { cause: err });
  }
  return dir;
}

async function allTableNames(conn: lancedb.Connection): Promise<string[]> {
  const out: string[] = [];
  for (;;) {
    const page = await conn.tableNames({ startAfter: out.at(-1), limit: 1000 });
    out.push(...page);
    if (page.length < 1000) return out;
  }
}

function metaOf(schema: arrow.Schema): { dataset?: string; model?: string; dim?: number; weights: string | null } {
  const m = schema.metadata;
  const dim = m.get(META.dim);
  const weights = schema.fields.find((f) => f.name === 'model')?.metadata.get(META.weights) || null;
  return { dataset: m.get(META.dataset), model: m.get(META.model), dim: dim === undefined ? undefined : Number(dim), weights };
}

function strings(col: arrow.Vector | null, n: number): (string | null)[] {
  if (!col) return new Array<string | null>(n).fill(null);
  const out: (string | null)[] = [];
  for (const v of col) out.push(v == null ? null : String(v));
  return out;
}

function numbers(col: arrow.Vector | null, n: number): number[] {
  if (!col) return new Array<number>(n).fill(0);
  const out: number[] = [];
  for (const v of col) out.push(Number(v));
  return out;
}

function largestDivisorAtMost(n: number, max: number): number {
  for (let d = Math.max(1, Math.floor(max)); d > 1; d--) if (n % d === 0) return d;
  return 1;
}

export class Index {
  readonly db: string;
  readonly dataset: string;
  readonly tableName: string;
  readonly embedder: Embedder;
  readonly dim: number;
  readonly readOnly: boolean;
  readonly annThreshold: number;
  readonly ann: Required<Omit<AnnOptions, 'numPartitions' | 'numSubVectors'>> & Pick<AnnOptions, 'numPartitions' | 'numSubVectors'>;
  #conn: lancedb.Connection;
  #table: lancedb.Table;

  private constructor(o: IndexOpenOptions, conn: lancedb.Connection, table: lancedb.Table, name: string) {
    this.db = o.db;
    this.dataset = o.dataset;
    this.embedder = o.embedder;
    this.dim = o.embedder.dim;
    this.readOnly = o.readOnly ?? false;
    this.annThreshold = o.annThreshold ?? 100_000;
    this.ann = { ...ANN_DEFAULTS, ...o.ann };
    this.tableName = name;
    this.#conn = conn;
    this.#table = table;
  }

  /**
   * Opens (or, unless `readOnly`, creates) the table of `dataset` built with `embedder`.
   * Refuses a table built with another model, and a read-only open of a missing table (naming
   * the model the dataset was built with, when there is one). A writable open with a new model
   * makes a new (dataset, model) table beside the old one: re-indexing never mixes models.
   */
  static async open(o: IndexOpenOptions): Promise<Index> {
    const { embedder, dataset } = o;
    if (!embedder || typeof embedder.embedImages !== 'function' || typeof embedder.identity !== 'string' || !embedder.identity) {
      throw new IndexError('BAD_INPUT', 'Index.open needs an embedder with an identity, a dim and embedImages(paths) (a loaded Model).');
    }
    if (!Number.isInteger(embedder.dim) || embedder.dim < 1) {
      throw new IndexError('BAD_INPUT', `Embedder ${shortIdentity(embedder.identity)} has dim ${embedder.dim}; it must be a positive integer.`);
    }
    if (typeof dataset !== 'string' || dataset.length === 0) throw new IndexError('BAD_INPUT', 'Index.open needs a dataset name (e.g. the folder name).');
    const readOnly = o.readOnly ?? false;
    if (!isUri(o.db)) await checkLocalDb(o.db, readOnly);
    let conn: lancedb.Connection;
    try {
      conn = await lancedb.connect(o.db, {
        ...(o.storageOptions && { storageOptions: o.storageOptions }),
        ...(o.readConsistencyInterval !== undefined && { readConsistencyInterval: o.readConsistencyInterval }),
      });
    } catch (err) {
      throw new IndexError('DB_UNREADABLE', `Cannot open database ${o.db}: ${(err as Error).message}. Check the path or URI and its credentials, or choose another --db.`, { cause: err });
    }
    const name = o.table ?? tableName(dataset, embedder.identity);
    let names: string[];
    try {
      names = await allTableNames(conn);
    } catch (err) {
      conn.close();
      throw new IndexError('DB_UNREADABLE', `Cannot list tables of database ${o.db}: ${(err as Error).message}. Is it a LanceDB database? Choose another --db.`, { cause: err });
    }
    let table: lancedb.Table;
    if (names.includes(name)) {
      table = await conn.openTable(name);
    } else if (readOnly || o.table) {
      const others = await Index.#tablesOf(conn, names, dataset);
      conn.close();
      if (others.length > 0) throw Index.#mismatch(dataset, others.map((t) => t.model), embedder.identity);
      const known = names.length > 0 ? ` Tables there: ${names.join(', ')}.` : ' The database is empty.';
      throw new IndexError(
        'TABLE_NOT_FOUND',
        `No index "${o.table ?? dataset}" in ${o.db}.${known} Build it first: dyad index --db ${o.db} --dataset ${dataset} --data <folder> --weights <model>.`,
      );
    } else {
      const meta = new Map<string, string>([
        [META.format, FORMAT_VERSION],
        [META.dataset, dataset],
        [META.model, embedder.identity],
        [META.dim, String(embedder.dim)],
        [META.created, new Date().toISOString()],
      ]);
      table = await conn.createEmptyTable(name, indexSchema(embedder.dim, meta), { existOk: true });
    }
    const meta = metaOf(await table.schema());
    if (meta.model !== undefined && meta.model !== embedder.identity) {
      table.close();
      conn.close();
      throw Index.#mismatch(meta.dataset ?? dataset, [meta.model], embedder.identity);
    }
    const vecField = (await table.schema()).fields.find((f) => f.name === 'vector');
    const tableDim = meta.dim ?? (vecField?.type as { listSize?: number } | undefined)?.listSize;
    if (tableDim !== embedder.dim) {
      table.close();
      conn.close();
      throw new IndexError(
        'DIM_MISMATCH',
        `Index "${dataset}" holds ${tableDim}-d vectors but embedder ${shortIdentity(embedder.identity)} makes ${embedder.dim}-d vectors. Re-index into a new --db/table.`,
      );
    }
    const given = o.weights !== undefined ? o.weights : (embedder as { weights?: unknown }).weights;
    if (!readOnly && typeof given === 'string' && given.length > 0) {
      const abs = path.resolve(given);
      if (meta.weights !== abs) await table.updateFieldMetadata([{ path: 'model', metadata: { [META.weights]: abs } }]);
    }
    return new Index(o, conn, table, name);
  }

  static #mismatch(dataset: string, built: (string | undefined)[], searching: string): IndexError {
    const models = [...new Set(built.map((m) => shortIdentity(m ?? '(unknown)')))].join(' and ');
    return new IndexError(
      'MODEL_MISMATCH',
      `Index "${dataset}" was built with model ${models}; you are searching with ${shortIdentity(searching)}. Re-index with --weights <that model> or use a new --db/table.`,
    );
  }

  static async #tablesOf(conn: lancedb.Connection, names: string[], dataset: string): Promise<IndexInfo[]> {
    const prefix = `${sanitizeName(dataset)}__`;
    const out: IndexInfo[] = [];
    for (const n of names.filter((x) => x.startsWith(prefix))) {
      const t = await conn.openTable(n);
      try {
        const m = metaOf(await t.schema());
        if (m.dataset === dataset && m.model) out.push({ table: n, dataset, model: m.model, dim: m.dim ?? 0, rows: -1, weights: m.weights });
      } finally {
        t.close();
      }
    }
    return out;
  }

  /** Every dyad index table in a database, with its dataset, model and row count. */
  static async list(o: { db: string; storageOptions?: Record<string, string> }): Promise<IndexInfo[]> {
    if (!isUri(o.db)) await checkLocalDb(o.db, true);
    const conn = await lancedb.connect(o.db, o.storageOptions ? { storageOptions: o.storageOptions } : undefined);
    try {
      const out: IndexInfo[] = [];
      for (const n of await allTableNames(conn)) {
        const t = await conn.openTable(n);
        try {
          const m = metaOf(await t.schema());
          if (m.dataset && m.model) out.push({ table: n, dataset: m.dataset, model: m.model, dim: m.dim ?? 0, rows: await t.countRows(), weights: m.weights });
        } finally {
          t.close();
        }
      }
      return out;
    } finally {
      conn.close();
    }
  }

  /** What this table holds: dataset, model identity, dim, rows, and the recorded weights file. */
  async info(): Promise<IndexInfo> {
    const m = metaOf(await this.#table.schema());
    return { table: this.tableName, dataset: m.dataset ?? this.dataset, model: m.model ?? this.embedder.identity, dim: this.dim, rows: await this.#table.countRows(), weights: m.weights };
  }

  /** The underlying LanceDB table (for advanced queries). */
  get table(): lancedb.Table {
    return this.#table;
  }

  /** Sees writes made since opening by other processes. */
  async refresh(): Promise<void> {
    await this.#table.checkoutLatest();
  }

  close(): void {
    this.#table.close();
    this.#conn.close();
  }

  async count(where?: string): Promise<number> {
    if (!where) return this.#table.countRows();
    return this.#withFilter(where, () => this.#table.countRows(where));
  }

  // ------------------------------------------------------------------ update

  /**
   * Brings the table in step with `input` (a folder, scanned recursively, or a list of files):
   * stats every file, embeds only new files and files whose size or mtime changed, rewrites
   * label/split where only they changed, and deletes rows of files that are gone or not listed.
   *
   * Each batch is one atomic LanceDB commit, and what is done is derived from the table each
   * time, so a run killed midway leaves a readable table and the next run picks up where it
   * stopped. One writer per table at a time.
   */
  async update(input: string | readonly (FileEntry | string)[], options: UpdateOptions = {}): Promise<UpdateResult> {
    this.#writable('update');
    const batchSize = Math.max(1, Math.floor(options.batchSize ?? 64));
    const progress = options.onProgress ?? (() => {});
    const entries = typeof input === 'string' ? await scanImages(input, options) : input.map((e) => (typeof e === 'string' ? { path: e } : e));

    // 1. Stat every file (deduplicated by absolute path; the last entry wins).
    const byId = new Map<string, { path: string; label: string | null; split: string | null }>();
    for (const e of entries) {
      if (typeof e?.path !== 'string' || e.path.length === 0) throw new IndexError('BAD_INPUT', `update: every file needs a path, got ${JSON.stringify(e)}.`);
      const abs = path.resolve(e.path);
      byId.set(rowId(abs), { path: abs, label: e.label ?? null, split: e.split ?? null });
    }
    const wanted = [...byId.entries()];
    progress({ phase: 'stat', done: 0, total: wanted.length });
    const failed: UpdateResult['failed'] = [];
    const stats = await mapLimit(wanted, STAT_CONCURRENCY, async ([, f]) => {
      try {
        const st = await fsp.stat(f.path);
        if (!st.isFile()) return { error: 'not a regular file' };
        return { size: st.size, mtime: st.mtimeMs };
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        return code === 'ENOENT' ? { missing: true as const } : { error: code ?? (err as Error).message };
      }
    });
    progress({ phase: 'stat', done: wanted.length, total: wanted.length });

    // 2. Compare with what the table holds.
    const stored = await this.#storedState();
    const present = new Set<string>();
    const toEmbed: { row: Omit<IndexRow, 'vector'>; isNew: boolean }[] = [];
    const relabel = new Map<string, { label: string | null; split: string | null; ids: string[] }>();
    let unchanged = 0;
    wanted.forEach(([id, f], i) => {
      const s = stats[i]!;
      if ('missing' in s) return;
      if ('error' in s) {
        failed.push({ path: f.path, error: s.error! });
        present.add(id); // unreadable now: keep whatever row it has
        return;
      }
      present.add(id);
      const old = stored.get(id);
      if (!old || old.size !== s.size || old.mtime !== s.mtime) {
        toEmbed.push({ row: { id, path: f.path, label: f.label, split: f.split, size: s.size, mtime: s.mtime, model: this.embedder.identity }, isNew: !old });
      } else if (old.label !== f.label || old.split !== f.split) {
        const key = JSON.stringify([f.label, f.split]);
        let g = relabel.get(key);
        if (!g) relabel.set(key, (g = { label: f.label, split: f.split, ids: [] }));
        g.ids.push(id);
      } else {
        unchanged++;
      }
    });

    // 3. Delete rows of files that are gone.
    const gone = [...stored.keys()].filter((id) => !present.has(id));
    progress({ phase: 'remove', done: 0, total: gone.length });
    for (let i = 0; i < gone.length; i += 500) {
      await this.#table.delete(sqlIn('id', gone.slice(i, i + 500)));
      progress({ phase: 'remove', done: Math.min(i + 500, gone.length), total: gone.length });
    }

    // 4. Label/split-only changes: no embedding.
    let relabeled = 0;
    for (const g of relabel.values()) {
      for (let i = 0; i < g.ids.length; i += 500) {
        const ids = g.ids.slice(i, i + 500);
        await this.#table.update({
          valuesSql: { label: g.label === null ? 'NULL' : sqlString(g.label), split: g.split === null ? 'NULL' : sqlString(g.split) },
          where: sqlIn('id', ids),
        });
        relabeled += ids.length;
      }
    }

    // 5. Embed and write, one commit per batch (new rows appended, changed rows merged on id).
    let added = 0;
    let reembedded = 0;
    progress({ phase: 'embed', done: 0, total: toEmbed.length });
    for (let i = 0; i < toEmbed.length; i += batchSize) {
      const batch = toEmbed.slice(i, i + batchSize);
      const vectors = await this.#embedBatch(batch.map((b) => b.row.path), failed);
      const fresh: IndexRow[] = [];
      const changed: IndexRow[] = [];
      batch.forEach((b, j) => {
        const v = vectors[j];
        if (v) (b.isNew ? fresh : changed).push({ ...b.row, vector: v });
      });
      if (fresh.length > 0) await this.#table.add(rowsToArrow(fresh, this.dim));
      if (changed.length > 0) {
        await this.#table.mergeInsert('id').whenMatchedUpdateAll().whenNotMatchedInsertAll().execute(rowsToArrow(changed, this.dim));
      }
      added += fresh.length;
      reembedded += changed.length;
      progress({ phase: 'embed', done: Math.min(i + batchSize, toEmbed.length), total: toEmbed.length });
    }

    const anyChange = added + reembedded + relabeled + gone.length > 0;
    if (anyChange && options.optimize !== false) {
      progress({ phase: 'optimize', done: 0, total: 1 });
      await this.optimize();
      progress({ phase: 'optimize', done: 1, total: 1 });
    }
    const rows = await this.#table.countRows();
    progress({ phase: 'done', done: rows, total: rows });
    return { added, updated: reembedded + relabeled, removed: gone.length, unchanged, embedded: added + reembedded, failed, rows };
  }

  /** Embeds a batch; when the batch fails, retries file by file so one bad image fails alone. */
  async #embedBatch(paths: string[], failed: UpdateResult['failed']): Promise<(Float32Array | null)[]> {
    let out: (Float32Array | null)[];
    try {
      out = await this.embedder.embedImages(paths);
      if (!Array.isArray(out) || out.length !== paths.length) {
        throw new IndexError('EMBEDDER_FAILED', `Embedder ${shortIdentity(this.embedder.identity)} returned ${Array.isArray(out) ? out.length : typeof out} rows for ${paths.length} images.`);
      }
    } catch (err) {
      if (err instanceof IndexError || paths.length === 1) {
        if (paths.length === 1 && !(err instanceof IndexError)) {
          failed.push({ path: paths[0]!, error: (err as Error).message });
          return [null];
        }
        throw err;
      }
      out = [];
      for (const p of paths) out.push(...(await this.#embedBatch([p], failed)));
      return out;
    }
    return out.map((v, j) => {
      if (!v || v.length !== this.dim) {
        throw new IndexError(
          'DIM_MISMATCH',
          `Embedder ${shortIdentity(this.embedder.identity)} returned a ${v?.length ?? 0}-d vector for ${paths[j]}; it declares dim ${this.dim}.`,
        );
      }
      for (let k = 0; k < v.length; k++) {
        if (!Number.isFinite(v[k]!)) {
          failed.push({ path: paths[j]!, error: 'embedding has NaN or infinite values' });
          return null;
        }
      }
      return v instanceof Float32Array ? v : Float32Array.from(v);
    });
  }

  async #storedState(): Promise<Map<string, { size: number; mtime: number; label: string | null; split: string | null }>> {
    const t = await this.#table.query().select(['id', 'size', 'mtime', 'label', 'split']).toArrow();
    const n = t.numRows;
    const ids = strings(t.getChild('id'), n);
    const size = numbers(t.getChild('size'), n);
    const mtime = numbers(t.getChild('mtime'), n);
    const label = strings(t.getChild('label'), n);
    const split = strings(t.getChild('split'), n);
    const out = new Map<string, { size: number; mtime: number; label: string | null; split: string | null }>();
    for (let i = 0; i < n; i++) out.set(ids[i]!, { size: size[i]!, mtime: mtime[i]!, label: label[i]!, split: split[i]! });
    return out;
  }

  #writable(what: string): void {
    if (this.readOnly) throw new IndexError('BAD_INPUT', `Index "${this.dataset}" was opened read-only; ${what} needs Index.open({ ..., readOnly: false }).`);
  }

  // ------------------------------------------------------------------ queries

  /** Nearest rows to `vector` by cosine distance, best first. */
  async search(vector: Float32Array | readonly number[], options: SearchOptions = {}): Promise<SearchHit[]> {
    const v = this.#checkVector(vector, 'query vector');
    const limit = this.#limit(options.limit);
    let q = this.#table.vectorSearch(v).distanceType('cosine').limit(limit).select([...RESULT_COLUMNS, '_distance']);
    if (options.where) q = q.where(options.where);
    if (options.exact) q = q.bypassVectorIndex();
    else {
      const refine = options.refineFactor ?? this.ann.refineFactor;
      // HNSW needs ef ≥ the candidates asked of it (limit × refineFactor).
      if (this.ann.type === 'hnsw_sq') q = q.ef(Math.max(options.ef ?? this.ann.ef, limit * Math.max(1, refine)));
      q = q.nprobes(options.nprobes ?? this.ann.nprobes).refineFactor(refine);
    }
    const rows = await this.#withFilter(options.where, () => q.toArray());
    return rows.map((r: Record<string, unknown>) => {
      const distance = Number(r._distance);
      return { id: String(r.id), path: String(r.path), label: (r.label as string | null) ?? null, split: (r.split as string | null) ?? null, distance, score: 1 - distance };
    });
  }

  /**
   * Rows most similar to `query`: a row id or indexed path (its stored vector is used and, by
   * default, it is left out of the results), an image file or image bytes (embedded), or a vector.
   */
  async similar(query: Query, options: SimilarOptions = {}): Promise<SearchHit[]> {
    if (query instanceof Float32Array || Array.isArray(query)) return this.search(query, options);
    let vector: Float32Array;
    let selfId: string | null = null;
    if (typeof query === 'string') {
      const hit = (/^[0-9a-f]{32}$/.test(query) ? await this.get(query) : null) ?? (await this.get(path.resolve(query)));
      if (hit) {
        vector = hit.vector;
        selfId = hit.id;
      } else {
        try {
          await fsp.access(query, fsConstants.R_OK);
        } catch {
          throw new IndexError('BAD_QUERY', `"${query}" is neither a row id nor an indexed path of "${this.dataset}", and no readable image file has that path. Pass an image file, an indexed path or id, or a vector.`);
        }
        vector = await this.#embedQuery(query);
      }
    } else if (query instanceof Uint8Array) {
      const tmp = path.join(os.tmpdir(), `dyad-query-${process.pid}-${randomBytes(6).toString('hex')}`);
      await fsp.writeFile(tmp, query);
      try {
        vector = await this.#embedQuery(tmp);
      } finally {
        await fsp.rm(tmp, { force: true });
      }
    } else {
      throw new IndexError('BAD_QUERY', `similar() takes an image path, row id, image bytes or a vector; got ${typeof query}.`);
    }
    let where = options.where;
    if (selfId !== null && options.excludeSelf !== false) {
      const self = `id != ${sqlString(selfId)}`;
      where = where ? `(${where}) AND ${self}` : self;
    }
    return this.search(vector, { ...options, where });
  }

  /** Text-to-image search; needs an embedder with a text tower (CLIP). */
  async searchText(text: string, options: SearchOptions = {}): Promise<SearchHit[]> {
    if (typeof this.embedder.embedText !== 'function') {
      throw new IndexError(
        'NO_TEXT_TOWER',
        `Text search needs a CLIP model (an embedder with a text tower); model ${shortIdentity(this.embedder.identity)} embeds images only. Index with CLIP weights, or search by image.`,
      );
    }
    const [v] = await this.embedder.embedText([text]);
    if (!v) throw new IndexError('EMBEDDER_FAILED', `Embedder ${shortIdentity(this.embedder.identity)} returned no vector for the text query.`);
    return this.search(v, options);
  }

  /** Plain filtered rows (no vector search), in table order. */
  async sql(where?: string, options: { limit?: number; offset?: number } = {}): Promise<IndexRecord[]> {
    let q = this.#table.query().select([...RESULT_COLUMNS]);
    if (where) q = q.where(where);
    if (options.limit !== undefined) q = q.limit(this.#limit(options.limit));
    if (options.offset) q = q.offset(options.offset);
    const t = await this.#withFilter(where, () => q.toArrow());
    return recordsOf(t);
  }

  /** The row of an id or (absolute or relative) path, with its vector; null when absent. */
  async get(idOrPath: string): Promise<(IndexRecord & { vector: Float32Array }) | null> {
    const id = /^[0-9a-f]{32}$/.test(idOrPath) ? idOrPath : rowId(path.resolve(idOrPath));
    const t = await this.#table.query().where(`id = ${sqlString(id)}`).select([...RESULT_COLUMNS, 'vector']).limit(1).toArrow();
    if (t.numRows === 0) return null;
    return { ...recordsOf(t)[0]!, vector: vectorsOf(t.getChild('vector'), this.dim) };
  }

  async #embedQuery(file: string): Promise<Float32Array> {
    let v: Float32Array | undefined;
    try {
      [v] = await this.embedder.embedImages([file]);
    } catch (err) {
      throw new IndexError('BAD_QUERY', `Cannot embed query image ${file}: ${(err as Error).message}`, { cause: err });
    }
    return this.#checkVector(v ?? new Float32Array(0), `embedding of ${file}`);
  }

  #checkVector(vector: Float32Array | readonly number[], what: string): Float32Array {
    if (!(vector instanceof Float32Array) && !Array.isArray(vector)) throw new IndexError('BAD_QUERY', `${what} must be a Float32Array or number[].`);
    if (vector.length !== this.dim) {
      throw new IndexError(
        'DIM_MISMATCH',
        `The ${what} has ${vector.length} dimensions but index "${this.dataset}" holds ${this.dim}-d vectors (model ${shortIdentity(this.embedder.identity)}). Embed the query with the same model.`,
      );
    }
    const v = vector instanceof Float32Array ? vector : Float32Array.from(vector);
    let norm = 0;
    for (let i = 0; i < v.length; i++) {
      if (!Number.isFinite(v[i]!)) throw new IndexError('BAD_QUERY', `The ${what} has a NaN or infinite value at position ${i}.`);
      norm += v[i]! * v[i]!;
    }
    if (norm === 0) throw new IndexError('BAD_QUERY', `The ${what} is all zeros; cosine distance is undefined for it.`);
    return v;
  }

  #limit(limit: number | undefined): number {
    const k = limit ?? 10;
    if (!Number.isInteger(k) || k < 1) throw new IndexError('BAD_QUERY', `limit must be a positive integer, got ${limit}.`);
    return k;
  }

  /** Runs a query; when it fails and a filter was given, says whether the filter is at fault. */
  async #withFilter<T>(where: string | undefined, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      if (!where) throw err;
      try {
        await this.#table.query().where(where).select(['id']).limit(1).toArray();
      } catch (e) {
        throw new IndexError(
          'BAD_FILTER',
          `Invalid filter ${JSON.stringify(where)}: ${sentence(lanceMessage(e))} Filters are SQL over id, path, label, split, size, mtime, model, e.g. "label = 'shoe' AND split = 'test'".`,
          { cause: e },
        );
      }
      throw err;
    }
  }

  // ------------------------------------------------------------------ duplicates

  /**
   * Groups of near-identical files: pairs with cosine similarity ≥ threshold, joined into
   * connected components. Exact all-pairs up to `exactMaxRows` rows; above, each row's `k`
   * nearest neighbours (through the ANN index when there is one).
   */
  async duplicates(options: DuplicatesOptions = {}): Promise<DuplicateGroup[]> {
    const threshold = options.threshold ?? 0.95;
    if (!(threshold > -1 && threshold <= 1)) throw new IndexError('BAD_INPUT', `duplicates: threshold is a cosine similarity in (-1, 1], got ${threshold}.`);
    const k = options.k ?? 10;
    const n = await this.count(options.where);
    if (n <= (options.exactMaxRows ?? 5000)) {
      let q = this.#table.query().select([...RESULT_COLUMNS, 'vector']);
      if (options.where) q = q.where(options.where);
      const t = await q.toArrow();
      const recs = recordsOf(t);
      const pairs = exactPairs(vectorsOf(t.getChild('vector'), this.dim), this.dim, threshold);
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
    let q = this.#table.query().select(['id', 'vector']);
    if (options.where) q = q.where(options.where);
    const chunk = 32;
    for await (const batch of q) {
      const ids = strings(batch.getChild('id'), batch.numRows);
      const vecs = normalizeRows(vectorsOf(batch.getChild('vector'), this.dim), this.dim);
      for (let s = 0; s < ids.length; s += chunk) {
        const e = Math.min(ids.length, s + chunk);
        let vq = this.#table.vectorSearch(vecs.subarray(s * this.dim, (s + 1) * this.dim));
        for (let j = s + 1; j < e; j++) vq = vq.addQueryVector(vecs.subarray(j * this.dim, (j + 1) * this.dim));
        vq = vq.distanceType('cosine').limit(k + 1).select(['id', '_distance']).nprobes(this.ann.nprobes).refineFactor(this.ann.refineFactor);
        if (this.ann.type === 'hnsw_sq') vq = vq.ef(Math.max(this.ann.ef, (k + 1) * this.ann.refineFactor));
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
      const t = await this.#table.query().where(sqlIn('id', used.slice(i, i + 500).map((u) => idOf[u]!))).select([...RESULT_COLUMNS]).toArrow();
      for (const r of recordsOf(t)) recs.set(r.id, r);
    }
    return groupPairs(pairs, idOf.length, (i) => pick(recs.get(idOf[i]!) ?? { id: idOf[i]!, path: '', label: null, split: null, size: 0, mtime: 0 }));
  }

  // ------------------------------------------------------------------ maintenance

  /** The vector index, if one exists. */
  async annInfo(): Promise<AnnInfo | null> {
    const idx = (await this.#table.listIndices()).find((i) => i.columns.includes('vector'));
    if (!idx) return null;
    const st = await this.#table.indexStats(idx.name);
    return { name: idx.name, type: st?.indexType ?? idx.indexType, indexedRows: st?.numIndexedRows ?? 0, unindexedRows: st?.numUnindexedRows ?? 0 };
  }

  /**
   * Compacts the table, and builds or refreshes indices: a vector index (cosine) once the table
   * has `annThreshold` rows (or when `force`), rebuilt when its trained part covers under half the
   * table; a B-tree on `id` from 10,000 rows. Called by `update`.
   */
  async optimize(options: { force?: boolean } = {}): Promise<{ ann: AnnInfo | null; rows: number }> {
    this.#writable('optimize');
    const rows = await this.#table.countRows();
    const indices = await this.#table.listIndices();
    if (rows >= SCALAR_INDEX_ROWS && !indices.some((i) => i.columns.includes('id'))) {
      await this.#table.createIndex('id', { config: lancedb.Index.btree() });
    }
    let ann = await this.annInfo();
    const stale = ann !== null && ann.indexedRows < rows / 2;
    if (rows > 0 && (options.force || rows >= this.annThreshold) && (ann === null || stale || options.force)) {
      await this.#table.createIndex('vector', { config: this.#annConfig(rows), replace: true });
    }
    await this.#table.optimize();
    ann = await this.annInfo();
    return { ann, rows };
  }

  #annConfig(rows: number): lancedb.Index {
    const a = this.ann;
    const p = annBuildParams(rows, this.dim, a);
    if (a.type === 'hnsw_sq') {
      return lancedb.Index.hnswSq({ distanceType: 'cosine', numPartitions: p.numPartitions, m: a.m, efConstruction: a.efConstruction });
    }
    return lancedb.Index.ivfPq({ distanceType: 'cosine', numPartitions: p.numPartitions, numSubVectors: p.numSubVectors! });
  }
}

/**
 * Build parameters of the vector index for a table of `rows` rows: IVF partitions ≈ √rows
 * (≥ 256 rows each) for IVF-PQ, one per 100k rows for HNSW-SQ; PQ sub-vectors of 4 dims
 * (dim/4 codes of 8 bits: 32 bytes per 128-d vector).
 */
export function annBuildParams(rows: number, dim: number, ann: AnnOptions = {}): { numPartitions: number; numSubVectors?: number } {
  if ((ann.type ?? ANN_DEFAULTS.type) === 'hnsw_sq') {
    return { numPartitions: ann.numPartitions ?? Math.max(1, Math.round(rows / 100_000)) };
  }
  return {
    numPartitions: ann.numPartitions ?? Math.max(1, Math.min(Math.round(Math.sqrt(rows)), Math.floor(rows / 256))),
    numSubVectors: ann.numSubVectors ?? largestDivisorAtMost(dim, dim / 4),
  };
}

/** LanceDB's error message without its wrapping ("Failed to execute query stream: GenericFailure, ..."). */
function lanceMessage(e: unknown): string {
  return String((e as Error)?.message ?? e)
    .split('\n')[0]!
    .replace(/^((Failed to execute query stream|GenericFailure|Invalid input|lance error)[:,]\s*)+/gi, '')
    .replace(/[.\s]+$/, '');
}

const sentence = (m: string) => (/[.?!]$/.test(m) ? m : `${m}.`);

function pick(r: IndexRecord): { id: string; path: string; label: string | null; split: string | null } {
  return { id: r.id, path: r.path, label: r.label, split: r.split };
}

function recordsOf(t: arrow.Table): IndexRecord[] {
  const n = t.numRows;
  const id = strings(t.getChild('id'), n);
  const p = strings(t.getChild('path'), n);
  const label = strings(t.getChild('label'), n);
  const split = strings(t.getChild('split'), n);
  const size = numbers(t.getChild('size'), n);
  const mtime = numbers(t.getChild('mtime'), n);
  const out: IndexRecord[] = [];
  for (let i = 0; i < n; i++) out.push({ id: id[i]!, path: p[i]!, label: label[i]!, split: split[i]!, size: size[i]!, mtime: mtime[i]! });
  return out;
}
