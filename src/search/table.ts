/**
 * The LanceDB side of an index: the database folder checks, opening or creating the table of a
 * (dataset, model) pair, the identity recorded in it (dataset, model, dim, weights file), and the
 * refusals that keep one table to one model.
 */
import { promises as fsp, constants as fsConstants } from 'node:fs';
import path from 'node:path';
import * as lancedb from '@lancedb/lancedb';
import type * as arrow from 'apache-arrow';
import type { AnnOptions, ResolvedAnn } from './ann.js';
import type { Embedder } from './embedder.js';
import { IndexError, shortIdentity } from './errors.js';
import { FORMAT_VERSION, META, indexSchema, sanitizeName, tableName } from './schema.js';

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

export interface IndexInfo {
  table: string;
  dataset: string;
  model: string;
  dim: number;
  rows: number;
  /** The checkpoint file recorded for the model (absolute path), when known. */
  weights: string | null;
}

/** What the sync, query and ANN code needs of an open index (an `Index` is one). */
export interface IndexCore {
  readonly dataset: string;
  readonly embedder: Embedder;
  readonly dim: number;
  readonly readOnly: boolean;
  readonly annThreshold: number;
  readonly ann: ResolvedAnn;
  readonly table: lancedb.Table;
}

/** Throws unless the index was opened writable. */
export function assertWritable(core: IndexCore, what: string): void {
  if (core.readOnly) throw new IndexError('BAD_INPUT', `Index "${core.dataset}" was opened read-only; ${what} needs Index.open({ ..., readOnly: false }).`);
}

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

/** The identity a table records: dataset, model and dim (table metadata), weights (the `model` field's). */
export function metaOf(schema: arrow.Schema): { dataset?: string; model?: string; dim?: number; weights: string | null } {
  const m = schema.metadata;
  const dim = m.get(META.dim);
  const weights = schema.fields.find((f) => f.name === 'model')?.metadata.get(META.weights) || null;
  return { dataset: m.get(META.dataset), model: m.get(META.model), dim: dim === undefined ? undefined : Number(dim), weights };
}

function mismatch(dataset: string, built: (string | undefined)[], searching: string): IndexError {
  const models = [...new Set(built.map((m) => shortIdentity(m ?? '(unknown)')))].join(' and ');
  return new IndexError(
    'MODEL_MISMATCH',
    `Index "${dataset}" was built with model ${models}; you are searching with ${shortIdentity(searching)}. Re-index with --weights <that model> or use a new --db/table.`,
  );
}

async function tablesOf(conn: lancedb.Connection, names: string[], dataset: string): Promise<IndexInfo[]> {
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

/**
 * Connects and opens (or, unless `readOnly`, creates) the table of `o.dataset` built with
 * `o.embedder`; see `Index.open` for the refusals.
 */
export async function openIndexTable(o: IndexOpenOptions): Promise<{ conn: lancedb.Connection; table: lancedb.Table; name: string }> {
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
    const others = await tablesOf(conn, names, dataset);
    conn.close();
    if (others.length > 0) throw mismatch(dataset, others.map((t) => t.model), embedder.identity);
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
    throw mismatch(meta.dataset ?? dataset, [meta.model], embedder.identity);
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
  return { conn, table, name };
}

/** Every dyad index table in a database, with its dataset, model and row count. */
export async function listIndexTables(o: { db: string; storageOptions?: Record<string, string> }): Promise<IndexInfo[]> {
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
