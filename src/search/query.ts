/**
 * Reading an index: nearest rows to a vector (`search`), to an image, row or path (`similar`),
 * to a text (`searchText`, CLIP), plain filtered rows (`sql`), one row (`get`), and counts.
 * Distances are cosine, 1 − similarity, in [0, 2].
 */
import { promises as fsp, constants as fsConstants } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { IndexError, shortIdentity } from './errors.js';
import { type IndexRecord, RESULT_COLUMNS, recordsOf, rowId, sqlString, vectorsOf } from './schema.js';
import type { IndexCore } from './table.js';

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

/** What `similar` takes: an image path, an indexed path or row id, image bytes, or a vector. */
export type Query = string | Uint8Array | Float32Array | number[];

/** See `Index.search`. */
export async function search(core: IndexCore, vector: Float32Array | readonly number[], options: SearchOptions = {}): Promise<SearchHit[]> {
  const v = checkVector(core, vector, 'query vector');
  const limit = checkLimit(options.limit);
  const ann = core.ann;
  let q = core.table.vectorSearch(v).distanceType('cosine').limit(limit).select([...RESULT_COLUMNS, '_distance']);
  if (options.where) q = q.where(options.where);
  if (options.exact) q = q.bypassVectorIndex();
  else {
    const refine = options.refineFactor ?? ann.refineFactor;
    // HNSW needs ef ≥ the candidates asked of it (limit × refineFactor).
    if (ann.type === 'hnsw_sq') q = q.ef(Math.max(options.ef ?? ann.ef, limit * Math.max(1, refine)));
    q = q.nprobes(options.nprobes ?? ann.nprobes).refineFactor(refine);
  }
  const rows = await withFilter(core, options.where, () => q.toArray());
  return rows.map((r: Record<string, unknown>) => {
    const distance = Number(r._distance);
    return { id: String(r.id), path: String(r.path), label: (r.label as string | null) ?? null, split: (r.split as string | null) ?? null, distance, score: 1 - distance };
  });
}

/** See `Index.similar`. */
export async function similar(core: IndexCore, query: Query, options: SimilarOptions = {}): Promise<SearchHit[]> {
  if (query instanceof Float32Array || Array.isArray(query)) return search(core, query, options);
  let vector: Float32Array;
  let selfId: string | null = null;
  if (typeof query === 'string') {
    const hit = (/^[0-9a-f]{32}$/.test(query) ? await get(core, query) : null) ?? (await get(core, path.resolve(query)));
    if (hit) {
      vector = hit.vector;
      selfId = hit.id;
    } else {
      try {
        await fsp.access(query, fsConstants.R_OK);
      } catch {
        throw new IndexError('BAD_QUERY', `"${query}" is neither a row id nor an indexed path of "${core.dataset}", and no readable image file has that path. Pass an image file, an indexed path or id, or a vector.`);
      }
      vector = await embedQuery(core, query);
    }
  } else if (query instanceof Uint8Array) {
    const tmp = path.join(os.tmpdir(), `dyad-query-${process.pid}-${randomBytes(6).toString('hex')}`);
    await fsp.writeFile(tmp, query);
    try {
      vector = await embedQuery(core, tmp);
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
  return search(core, vector, { ...options, where });
}

/** See `Index.searchText`. */
export async function searchText(core: IndexCore, text: string, options: SearchOptions = {}): Promise<SearchHit[]> {
  const { embedder } = core;
  if (typeof embedder.embedText !== 'function') {
    throw new IndexError(
      'NO_TEXT_TOWER',
      `Text search needs a CLIP model (an embedder with a text tower); model ${shortIdentity(embedder.identity)} embeds images only. Index with CLIP weights, or search by image.`,
    );
  }
  const [v] = await embedder.embedText([text]);
  if (!v) throw new IndexError('EMBEDDER_FAILED', `Embedder ${shortIdentity(embedder.identity)} returned no vector for the text query.`);
  return search(core, v, options);
}

/** See `Index.sql`. */
export async function sql(core: IndexCore, where?: string, options: { limit?: number; offset?: number } = {}): Promise<IndexRecord[]> {
  let q = core.table.query().select([...RESULT_COLUMNS]);
  if (where) q = q.where(where);
  if (options.limit !== undefined) q = q.limit(checkLimit(options.limit));
  if (options.offset) q = q.offset(options.offset);
  const t = await withFilter(core, where, () => q.toArrow());
  return recordsOf(t);
}

/** See `Index.get`. */
export async function get(core: IndexCore, idOrPath: string): Promise<(IndexRecord & { vector: Float32Array }) | null> {
  const id = /^[0-9a-f]{32}$/.test(idOrPath) ? idOrPath : rowId(path.resolve(idOrPath));
  const t = await core.table.query().where(`id = ${sqlString(id)}`).select([...RESULT_COLUMNS, 'vector']).limit(1).toArrow();
  if (t.numRows === 0) return null;
  return { ...recordsOf(t)[0]!, vector: vectorsOf(t.getChild('vector'), core.dim) };
}

/** Rows matching `where` (all rows without it). */
export async function count(core: IndexCore, where?: string): Promise<number> {
  if (!where) return core.table.countRows();
  return withFilter(core, where, () => core.table.countRows(where));
}

async function embedQuery(core: IndexCore, file: string): Promise<Float32Array> {
  let v: Float32Array | undefined;
  try {
    [v] = await core.embedder.embedImages([file]);
  } catch (err) {
    throw new IndexError('BAD_QUERY', `Cannot embed query image ${file}: ${(err as Error).message}`, { cause: err });
  }
  return checkVector(core, v ?? new Float32Array(0), `embedding of ${file}`);
}

function checkVector(core: IndexCore, vector: Float32Array | readonly number[], what: string): Float32Array {
  if (!(vector instanceof Float32Array) && !Array.isArray(vector)) throw new IndexError('BAD_QUERY', `${what} must be a Float32Array or number[].`);
  if (vector.length !== core.dim) {
    throw new IndexError(
      'DIM_MISMATCH',
      `The ${what} has ${vector.length} dimensions but index "${core.dataset}" holds ${core.dim}-d vectors (model ${shortIdentity(core.embedder.identity)}). Embed the query with the same model.`,
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

function checkLimit(limit: number | undefined): number {
  const k = limit ?? 10;
  if (!Number.isInteger(k) || k < 1) throw new IndexError('BAD_QUERY', `limit must be a positive integer, got ${limit}.`);
  return k;
}

/** Runs a query; when it fails and a filter was given, says whether the filter is at fault. */
async function withFilter<T>(core: IndexCore, where: string | undefined, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (!where) throw err;
    try {
      await core.table.query().where(where).select(['id']).limit(1).toArray();
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

/** LanceDB's error message without its wrapping ("Failed to execute query stream: GenericFailure, ..."). */
function lanceMessage(e: unknown): string {
  return String((e as Error)?.message ?? e)
    .split('\n')[0]!
    .replace(/^((Failed to execute query stream|GenericFailure|Invalid input|lance error)[:,]\s*)+/gi, '')
    .replace(/[.\s]+$/, '');
}

const sentence = (m: string) => (/[.?!]$/.test(m) ? m : `${m}.`);
