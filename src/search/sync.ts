/**
 * Keeping a table in step with files: list them (`scanImages`), stat them, decide what to do
 * (`planUpdate`, pure), then delete, relabel, and embed-and-write in batches.
 *
 * Each batch is one atomic LanceDB commit, and what is done is derived from the table each time,
 * so a run killed midway leaves a readable table and the next run picks up where it stopped.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { walkImages } from '../data/files.js';
import { optimize } from './ann.js';
import { IndexError, shortIdentity } from './errors.js';
import { type FileStat, type StoredRow, planUpdate } from './plan.js';
import { type IndexRow, numbers, rowId, rowsToArrow, sqlIn, sqlString, strings } from './schema.js';
import { type IndexCore, assertWritable } from './table.js';

/** A file to index; `label`/`split` are stored as given (null when absent). */
export interface FileEntry {
  path: string;
  label?: string | null;
  split?: string | null;
}

export interface ScanOptions {
  /** Label each file with the name of its parent folder (ImageFolder layout). Default false. */
  labelFromFolder?: boolean;
  /** Extensions to accept (case-insensitive, with the dot). Default `imageExtensions()` (data/files.ts). */
  extensions?: Iterable<string>;
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

const STAT_CONCURRENCY = 32;

/**
 * The image files under `dir`, recursively (`walkImages`: hidden entries skipped, links
 * followed), as absolute paths in `comparePaths` order.
 */
export async function scanImages(dir: string, options: ScanOptions = {}): Promise<FileEntry[]> {
  const root = path.resolve(dir);
  const rels = await walkImages(root, { extensions: options.extensions });
  return rels.map((r) => {
    const p = path.join(root, ...r.split('/'));
    return options.labelFromFolder ? { path: p, label: path.basename(path.dirname(p)) } : { path: p };
  });
}

/** Runs `fn` over `items` with at most `limit` in flight; results keep the input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < items.length; i = next++) out[i] = await fn(items[i]!, i);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

async function statFile(file: string): Promise<FileStat> {
  try {
    const st = await fsp.stat(file);
    if (!st.isFile()) return { error: 'not a regular file' };
    return { size: st.size, mtime: st.mtimeMs };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? { missing: true } : { error: code ?? (err as Error).message };
  }
}

async function storedState(core: IndexCore): Promise<Map<string, StoredRow>> {
  const t = await core.table.query().select(['id', 'size', 'mtime', 'label', 'split']).toArrow();
  const n = t.numRows;
  const ids = strings(t.getChild('id'), n);
  const size = numbers(t.getChild('size'), n);
  const mtime = numbers(t.getChild('mtime'), n);
  const label = strings(t.getChild('label'), n);
  const split = strings(t.getChild('split'), n);
  const out = new Map<string, StoredRow>();
  for (let i = 0; i < n; i++) out.set(ids[i]!, { size: size[i]!, mtime: mtime[i]!, label: label[i]!, split: split[i]! });
  return out;
}

/** See `Index.update`. */
export async function update(core: IndexCore, input: string | readonly (FileEntry | string)[], options: UpdateOptions = {}): Promise<UpdateResult> {
  assertWritable(core, 'update');
  const table = core.table;
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
  const stats = await mapLimit(wanted, STAT_CONCURRENCY, ([, f]) => statFile(f.path));
  progress({ phase: 'stat', done: wanted.length, total: wanted.length });

  // 2. Compare with what the table holds.
  const plan = planUpdate(wanted.map(([id, f], i) => ({ id, ...f, stat: stats[i]! })), await storedState(core));
  const failed: UpdateResult['failed'] = [...plan.failed];

  // 3. Delete rows of files that are gone.
  const gone = plan.remove;
  progress({ phase: 'remove', done: 0, total: gone.length });
  for (let i = 0; i < gone.length; i += 500) {
    await table.delete(sqlIn('id', gone.slice(i, i + 500)));
    progress({ phase: 'remove', done: Math.min(i + 500, gone.length), total: gone.length });
  }

  // 4. Label/split-only changes: no embedding.
  let relabeled = 0;
  for (const g of plan.relabel) {
    for (let i = 0; i < g.ids.length; i += 500) {
      const ids = g.ids.slice(i, i + 500);
      await table.update({
        valuesSql: { label: g.label === null ? 'NULL' : sqlString(g.label), split: g.split === null ? 'NULL' : sqlString(g.split) },
        where: sqlIn('id', ids),
      });
      relabeled += ids.length;
    }
  }

  // 5. Embed and write, one commit per batch (new rows appended, changed rows merged on id).
  const toEmbed = plan.embed;
  let added = 0;
  let reembedded = 0;
  progress({ phase: 'embed', done: 0, total: toEmbed.length });
  for (let i = 0; i < toEmbed.length; i += batchSize) {
    const batch = toEmbed.slice(i, i + batchSize);
    const vectors = await embedBatch(core, batch.map((b) => b.path), failed);
    const fresh: IndexRow[] = [];
    const changed: IndexRow[] = [];
    batch.forEach(({ isNew, ...row }, j) => {
      const v = vectors[j];
      if (v) (isNew ? fresh : changed).push({ ...row, model: core.embedder.identity, vector: v });
    });
    if (fresh.length > 0) await table.add(rowsToArrow(fresh, core.dim));
    if (changed.length > 0) {
      await table.mergeInsert('id').whenMatchedUpdateAll().whenNotMatchedInsertAll().execute(rowsToArrow(changed, core.dim));
    }
    added += fresh.length;
    reembedded += changed.length;
    progress({ phase: 'embed', done: Math.min(i + batchSize, toEmbed.length), total: toEmbed.length });
  }

  const anyChange = added + reembedded + relabeled + gone.length > 0;
  if (anyChange && options.optimize !== false) {
    progress({ phase: 'optimize', done: 0, total: 1 });
    await optimize(core);
    progress({ phase: 'optimize', done: 1, total: 1 });
  }
  const rows = await table.countRows();
  progress({ phase: 'done', done: rows, total: rows });
  return { added, updated: reembedded + relabeled, removed: gone.length, unchanged: plan.unchanged.length, embedded: added + reembedded, failed, rows };
}

/** Embeds a batch; when the batch fails, retries file by file so one bad image fails alone. */
async function embedBatch(core: IndexCore, paths: string[], failed: UpdateResult['failed']): Promise<(Float32Array | null)[]> {
  const { embedder, dim } = core;
  let out: (Float32Array | null)[];
  try {
    out = await embedder.embedImages(paths);
    if (!Array.isArray(out) || out.length !== paths.length) {
      throw new IndexError('EMBEDDER_FAILED', `Embedder ${shortIdentity(embedder.identity)} returned ${Array.isArray(out) ? out.length : typeof out} rows for ${paths.length} images.`);
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
    for (const p of paths) out.push(...(await embedBatch(core, [p], failed)));
    return out;
  }
  return out.map((v, j) => {
    if (!v || v.length !== dim) {
      throw new IndexError(
        'DIM_MISMATCH',
        `Embedder ${shortIdentity(embedder.identity)} returned a ${v?.length ?? 0}-d vector for ${paths[j]}; it declares dim ${dim}.`,
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
