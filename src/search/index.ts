/**
 * The embedding search layer: one LanceDB table per (dataset, model) holding a vector per image
 * file, kept in step with the files by `update`, searched by cosine distance.
 *
 *   const index = await Index.open({ db: '.dyad/db', dataset: 'photos', embedder: model });
 *   await index.update('photos/');                       // embeds only new or changed files
 *   const hits = await index.similar('photos/cat.jpg', { limit: 5, where: "split = 'train'" });
 *   const groups = await index.duplicates({ threshold: 0.95 });
 *
 * Files by role: `table.ts` (opening the table, its recorded identity), `plan.ts` (what an update
 * does, pure), `sync.ts` (the update itself), `query.ts` (search, similar, sql), `ann.ts` (the
 * IVF-PQ / HNSW-SQ index and when it is built), `duplicates.ts`, `schema.ts` (Arrow columns),
 * `embedder.ts`, `errors.ts`. `Index` below is the facade over them.
 */
import type * as lancedb from '@lancedb/lancedb';
import { type AnnInfo, type ResolvedAnn, annInfo, optimize, resolveAnn } from './ann.js';
import type { DuplicateGroup, DuplicatesOptions } from './duplicates.js';
import { findDuplicates } from './duplicates.js';
import type { Embedder } from './embedder.js';
import * as q from './query.js';
import type { Query, SearchHit, SearchOptions, SimilarOptions } from './query.js';
import type { IndexRecord } from './schema.js';
import { type FileEntry, type UpdateOptions, type UpdateResult, update } from './sync.js';
import { type IndexCore, type IndexInfo, type IndexOpenOptions, listIndexTables, metaOf, openIndexTable } from './table.js';

export type { Embedder } from './embedder.js';
export { ThumbnailEmbedder, LazyEmbedder, type LazyEmbedderOptions } from './embedder.js';
export { IndexError, type IndexErrorCode } from './errors.js';
export { writeDuplicatesReport, groupPairs, exactPairs, UnionFind, type DuplicateGroup, type DuplicateMember, type DuplicatesOptions } from './duplicates.js';
export { tableName, rowId, indexSchema, rowsToArrow, columnsToArrow, sanitizeName, modelTag, type IndexRow, type IndexRecord } from './schema.js';
export { ANN_DEFAULTS, IVF_PQ_DEFAULTS, HNSW_SQ_DEFAULTS, resolveAnn, annBuildParams, type AnnOptions, type AnnInfo } from './ann.js';
export { embeddingMap, pca, type EmbeddingMap, type EmbeddingMapOptions, type PcaResult } from './projection.js';
export { planUpdate, type FileStat, type PlannedFile, type PlannedEmbed, type StoredRow, type UpdatePlan } from './plan.js';
export { scanImages, type FileEntry, type ScanOptions, type UpdateOptions, type UpdateProgress, type UpdateResult } from './sync.js';
export type { Query, SearchHit, SearchOptions, SimilarOptions } from './query.js';
export type { IndexInfo, IndexOpenOptions } from './table.js';

export class Index implements IndexCore {
  readonly db: string;
  readonly dataset: string;
  readonly tableName: string;
  readonly embedder: Embedder;
  readonly dim: number;
  readonly readOnly: boolean;
  readonly annThreshold: number;
  readonly ann: ResolvedAnn;
  #conn: lancedb.Connection;
  #table: lancedb.Table;

  private constructor(o: IndexOpenOptions, conn: lancedb.Connection, table: lancedb.Table, name: string) {
    this.db = o.db;
    this.dataset = o.dataset;
    this.embedder = o.embedder;
    this.dim = o.embedder.dim;
    this.readOnly = o.readOnly ?? false;
    this.annThreshold = o.annThreshold ?? 100_000;
    this.ann = resolveAnn(o.ann);
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
    const { conn, table, name } = await openIndexTable(o);
    return new Index(o, conn, table, name);
  }

  /** Every dyad index table in a database, with its dataset, model and row count. */
  static async list(o: { db: string; storageOptions?: Record<string, string> }): Promise<IndexInfo[]> {
    return listIndexTables(o);
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
    return q.count(this, where);
  }

  /**
   * Brings the table in step with `input` (a folder, scanned recursively, or a list of files):
   * stats every file, embeds only new files and files whose size or mtime changed, rewrites
   * label/split where only they changed, and deletes rows of files that are gone or not listed
   * (`planUpdate` decides which).
   *
   * Each batch is one atomic LanceDB commit, and what is done is derived from the table each
   * time, so a run killed midway leaves a readable table and the next run picks up where it
   * stopped. One writer per table at a time.
   */
  async update(input: string | readonly (FileEntry | string)[], options: UpdateOptions = {}): Promise<UpdateResult> {
    return update(this, input, options);
  }

  /** Nearest rows to `vector` by cosine distance, best first. */
  async search(vector: Float32Array | readonly number[], options: SearchOptions = {}): Promise<SearchHit[]> {
    return q.search(this, vector, options);
  }

  /**
   * Rows most similar to `query`: a row id or indexed path (its stored vector is used and, by
   * default, it is left out of the results), an image file or image bytes (embedded), or a vector.
   */
  async similar(query: Query, options: SimilarOptions = {}): Promise<SearchHit[]> {
    return q.similar(this, query, options);
  }

  /** Text-to-image search; needs an embedder with a text tower (CLIP). */
  async searchText(text: string, options: SearchOptions = {}): Promise<SearchHit[]> {
    return q.searchText(this, text, options);
  }

  /** Plain filtered rows (no vector search), in table order. */
  async sql(where?: string, options: { limit?: number; offset?: number } = {}): Promise<IndexRecord[]> {
    return q.sql(this, where, options);
  }

  /** The row of an id or (absolute or relative) path, with its vector; null when absent. */
  async get(idOrPath: string): Promise<(IndexRecord & { vector: Float32Array }) | null> {
    return q.get(this, idOrPath);
  }

  /**
   * Groups of near-identical files: pairs with cosine similarity ≥ threshold, joined into
   * connected components. Exact all-pairs up to `exactMaxRows` rows; above, each row's `k`
   * nearest neighbours (through the ANN index when there is one).
   */
  async duplicates(options: DuplicatesOptions = {}): Promise<DuplicateGroup[]> {
    return findDuplicates(this, options);
  }

  /** The vector index, if one exists. */
  async annInfo(): Promise<AnnInfo | null> {
    return annInfo(this.#table);
  }

  /**
   * Compacts the table, and builds or refreshes indices: a vector index (cosine) once the table
   * has `annThreshold` rows (or when `force`), rebuilt when its trained part covers under half the
   * table; a B-tree on `id` from 10,000 rows. Called by `update`.
   */
  async optimize(options: { force?: boolean } = {}): Promise<{ ann: AnnInfo | null; rows: number }> {
    return optimize(this, options);
  }
}
