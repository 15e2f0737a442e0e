import { createHash } from 'node:crypto';
import * as arrow from 'apache-arrow';

/** Keys of the table-level (Arrow schema) metadata that record what a table holds. */
export const META = {
  format: 'dyad.format',
  dataset: 'dyad.dataset',
  model: 'dyad.model',
  dim: 'dyad.dim',
  created: 'dyad.created',
  /**
   * The checkpoint file the vectors were made with (absolute path), so a search can load the model
   * by itself. Kept in the `model` column's field metadata, not the table's: it can change after
   * creation (the same weights moved or copied), which table-level metadata cannot.
   */
  weights: 'dyad.weights',
} as const;
export const FORMAT_VERSION = '1';

/** One row as written to the table. */
export interface IndexRow {
  id: string;
  path: string;
  label: string | null;
  split: string | null;
  vector: Float32Array;
  size: number;
  mtime: number;
  model: string;
}

/** The columns a filter (`where`) may name. */
export const COLUMNS = ['id', 'path', 'label', 'split', 'vector', 'size', 'mtime', 'model'] as const;

/** Column set returned by queries: everything but the vector. */
export const RESULT_COLUMNS = ['id', 'path', 'label', 'split', 'size', 'mtime'] as const;

/** `[A-Za-z0-9_-]` only, runs of anything else folded to `_`, at most 64 characters. */
export function sanitizeName(name: string): string {
  const s = name
    .replace(/[^A-Za-z0-9_-]+/g, '_')
    .replace(/_{2,}/g, '_')
    .replace(/^[_-]+|[_-]+$/g, '')
    .slice(0, 64);
  return s.length > 0 ? s : 'dataset';
}

/** A short, stable tag of a model identity (12 hex chars of its sha256). */
export function modelTag(identity: string): string {
  return createHash('sha256').update(identity).digest('hex').slice(0, 12);
}

/** Table name for a (dataset, model) pair: `<dataset>__<model tag>`. */
export function tableName(dataset: string, identity: string): string {
  return `${sanitizeName(dataset)}__${modelTag(identity)}`;
}

/** Stable row id of a file: 32 hex chars of the sha256 of its absolute path. */
export function rowId(absPath: string): string {
  return createHash('sha256').update(absPath).digest('hex').slice(0, 32);
}

/** The Arrow schema of an index table, with the table-level metadata when given. */
export function indexSchema(dim: number, metadata?: Map<string, string>): arrow.Schema {
  return new arrow.Schema(
    [
      new arrow.Field('id', new arrow.Utf8(), false),
      new arrow.Field('path', new arrow.Utf8(), false),
      new arrow.Field('label', new arrow.Utf8(), true),
      new arrow.Field('split', new arrow.Utf8(), true),
      new arrow.Field('vector', new arrow.FixedSizeList(dim, new arrow.Field('item', new arrow.Float32(), true)), false),
      new arrow.Field('size', new arrow.Int64(), false),
      new arrow.Field('mtime', new arrow.Float64(), false),
      new arrow.Field('model', new arrow.Utf8(), false),
    ],
    metadata,
  );
}

/** Builds one Arrow table from rows, column by column (no per-row object conversion). */
export function rowsToArrow(rows: readonly IndexRow[], dim: number): arrow.Table {
  const schema = indexSchema(dim);
  const n = rows.length;
  const flat = new Float32Array(n * dim);
  const size = new BigInt64Array(n);
  const mtime = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const r = rows[i]!;
    if (r.vector.length !== dim) throw new RangeError(`row ${r.path}: vector has ${r.vector.length} values, expected ${dim}`);
    flat.set(r.vector, i * dim);
    size[i] = BigInt(Math.trunc(r.size));
    mtime[i] = r.mtime;
  }
  return columnsToArrow(schema, {
    id: rows.map((r) => r.id),
    path: rows.map((r) => r.path),
    label: rows.map((r) => r.label),
    split: rows.map((r) => r.split),
    vectors: flat,
    size,
    mtime,
    model: rows.map((r) => r.model),
  });
}

export interface ColumnData {
  id: (string | null)[];
  path: (string | null)[];
  label: (string | null)[];
  split: (string | null)[];
  /** n×dim, row-major. */
  vectors: Float32Array;
  size: BigInt64Array;
  mtime: Float64Array;
  model: (string | null)[];
}

/** Builds an Arrow table of the index schema straight from column arrays. */
export function columnsToArrow(schema: arrow.Schema, c: ColumnData): arrow.Table {
  const n = c.id.length;
  const vecType = schema.fields[4]!.type as arrow.FixedSizeList<arrow.Float32>;
  const str = (xs: (string | null)[]) => arrow.vectorFromArray(xs, new arrow.Utf8()).data[0]!;
  const child = arrow.makeData({ type: new arrow.Float32(), length: c.vectors.length, data: c.vectors });
  const children = [
    str(c.id),
    str(c.path),
    str(c.label),
    str(c.split),
    arrow.makeData({ type: vecType, length: n, nullCount: 0, child }),
    arrow.makeData({ type: new arrow.Int64(), length: n, data: c.size }),
    arrow.makeData({ type: new arrow.Float64(), length: n, data: c.mtime }),
    str(c.model),
  ];
  const data = arrow.makeData({ type: new arrow.Struct(schema.fields), length: n, nullCount: 0, children });
  return new arrow.Table([new arrow.RecordBatch(schema, data)]);
}

/** Quotes a string as a SQL literal for a LanceDB filter. */
export function sqlString(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

/** `col IN ('a', 'b', ...)`. */
export function sqlIn(column: string, values: readonly string[]): string {
  return `${column} IN (${values.map(sqlString).join(', ')})`;
}

/**
 * Copies the vectors of an Arrow `vector` column (FixedSizeList<Float32>) into one row-major
 * array. Reads the child buffers directly (no `instanceof`: LanceDB hands back tables built by
 * apache-arrow's CommonJS build, this module uses its ES build). Arrow slicing keeps the child's
 * values buffer aligned to the slice, so `values[0 .. length·dim)` are this chunk's rows.
 */
export function vectorsOf(col: arrow.Vector | null, dim: number): Float32Array {
  if (!col) throw new Error('result has no vector column');
  const out = new Float32Array(col.length * dim);
  let o = 0;
  for (const d of col.data) {
    const values: unknown = d.children[0]?.values;
    const need = d.length * dim;
    if (!ArrayBuffer.isView(values) || (values as Float32Array).BYTES_PER_ELEMENT !== 4) throw new Error('vector column is not FixedSizeList<Float32>');
    const f = values as Float32Array;
    if (f.length < need) throw new Error(`vector column chunk holds ${f.length} values, expected ${need}`);
    out.set(f.subarray(0, need), o);
    o += need;
  }
  return out;
}

/** A row as queries return it: everything but the vector ({@link RESULT_COLUMNS}). */
export interface IndexRecord {
  id: string;
  path: string;
  label: string | null;
  split: string | null;
  size: number;
  mtime: number;
}

/** The values of a string column (all null when the column is absent). */
export function strings(col: arrow.Vector | null, n: number): (string | null)[] {
  if (!col) return new Array<string | null>(n).fill(null);
  const out: (string | null)[] = [];
  for (const v of col) out.push(v == null ? null : String(v));
  return out;
}

/** The values of a numeric column as numbers (all 0 when the column is absent). */
export function numbers(col: arrow.Vector | null, n: number): number[] {
  if (!col) return new Array<number>(n).fill(0);
  const out: number[] = [];
  for (const v of col) out.push(Number(v));
  return out;
}

/** The rows of a query result of {@link RESULT_COLUMNS}. */
export function recordsOf(t: arrow.Table): IndexRecord[] {
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
