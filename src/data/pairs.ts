/**
 * `ImageTextPairs`: image-caption pairs for CLIP-style training, listed in
 *
 * - CSV (RFC 4180: header row, `,` separator, `"` quoting with `""` for a
 *   quote, quoted fields may span lines; CRLF or LF; UTF-8, BOM allowed) with
 *   columns `path` and `caption` (others ignored), or
 * - JSONL (one `{"path": ..., "caption": ...}` object per line; blank lines skipped).
 *
 * The format comes from the extension (`.csv`; `.jsonl` / `.ndjson`) or the
 * `format` option. Relative paths are resolved against the list file's folder.
 * Malformed rows throw a `DataFileError` naming the file and line. Images are
 * decoded on `get` with the bad-file policy of `FileImageDataset`.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { FileImageDataset, type FileDatasetOptions } from './file_dataset.js';
import type { CaptionedSample, RawImage } from './types.js';
import { DyadError } from '../errors.js';

/** A malformed data list (CSV/JSONL): names the file and the 1-based line. */
export class DataFileError extends DyadError<'DATA_FILE'> {
  override readonly name = 'DataFileError';
  constructor(readonly file: string, readonly line: number, reason: string, fix: string, options?: { cause?: unknown }) {
    super('DATA_FILE', `${file}:${line}: ${reason}. ${fix}`, options);
  }
}

/** One parsed CSV record with the line it starts on. */
export interface CsvRecord {
  fields: string[];
  line: number;
}

/**
 * Parses RFC-4180 CSV text into records. Lenient in one way, like Python's
 * `csv`: a `"` inside an unquoted field is kept literally. Blank lines are skipped.
 *
 * @throws DataFileError for an unterminated quoted field or text after a closing quote.
 */
export function parseCsv(text: string, file = '<csv>'): CsvRecord[] {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const records: CsvRecord[] = [];
  let fields: string[] = [];
  let field = '';
  let fieldStarted = false; // the current field has content (or was quoted)
  let recordStarted = false; // the current record has content (tells a blank line from one empty field)
  let line = 1;
  let recordLine = 1;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text[i]!;
    if (c === '"' && !fieldStarted) {
      const startLine = line;
      i++;
      for (;;) {
        if (i >= n) throw new DataFileError(file, startLine, 'unterminated quoted field (a " opens it, none closes it)', 'Close the quote, and double any " inside the field ("").');
        const q = text[i]!;
        if (q === '"') {
          if (text[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        if (q === '\n' || (q === '\r' && text[i + 1] !== '\n')) line++;
        field += q;
        i++;
      }
      fieldStarted = recordStarted = true;
      const after = text[i];
      if (after !== undefined && after !== ',' && after !== '\n' && after !== '\r') {
        throw new DataFileError(file, line, `unexpected text after a closing quote: '${text.slice(i, i + 10)}'`, 'Quote the whole field and double the " inside it ("").');
      }
      continue;
    }
    if (c === ',') {
      fields.push(field);
      field = '';
      fieldStarted = false;
      recordStarted = true;
      i++;
      continue;
    }
    if (c === '\r' || c === '\n') {
      if (recordStarted || fieldStarted) {
        fields.push(field);
        records.push({ fields, line: recordLine });
      }
      fields = [];
      field = '';
      fieldStarted = recordStarted = false;
      i += c === '\r' && text[i + 1] === '\n' ? 2 : 1;
      line++;
      recordLine = line;
      continue;
    }
    field += c;
    fieldStarted = recordStarted = true;
    i++;
  }
  if (recordStarted || fieldStarted) {
    fields.push(field);
    records.push({ fields, line: recordLine });
  }
  return records;
}

/** A parsed pair list entry. */
export interface PairEntry {
  path: string;
  caption: string;
  line: number;
}

/** Options of `ImageTextPairs.open`. */
export interface ImageTextPairsOptions extends FileDatasetOptions {
  /** Format of the list; default from the extension. */
  format?: 'csv' | 'jsonl';
  /** Column/key names, default `path` and `caption` (e.g. `{ path: 'filepath', caption: 'title' }`). */
  columns?: { path?: string; caption?: string };
  /** Decode every image once while opening (`validate()`). Default false. */
  validate?: boolean;
}

function detectFormat(file: string, format?: 'csv' | 'jsonl'): 'csv' | 'jsonl' {
  if (format !== undefined) {
    if (format !== 'csv' && format !== 'jsonl') throw new RangeError(`ImageTextPairs: format must be 'csv' or 'jsonl', got '${String(format)}'`);
    return format;
  }
  const ext = path.extname(file).toLowerCase();
  if (ext === '.csv') return 'csv';
  if (ext === '.jsonl' || ext === '.ndjson') return 'jsonl';
  throw new Error(`ImageTextPairs: cannot tell the format of ${file} from its extension '${ext}'. Use .csv or .jsonl, or pass format: 'csv' | 'jsonl'.`);
}

function fromCsv(text: string, file: string, pathCol: string, captionCol: string): PairEntry[] {
  const records = parseCsv(text, file);
  if (records.length === 0) throw new DataFileError(file, 1, 'empty file, no header row', `Start with a header row: ${pathCol},${captionCol}.`);
  const header = records[0]!;
  const cols = header.fields.map((f) => f.trim().toLowerCase());
  const pi = cols.indexOf(pathCol.toLowerCase());
  const ci = cols.indexOf(captionCol.toLowerCase());
  if (pi < 0 || ci < 0) {
    throw new DataFileError(file, header.line, `header must have columns '${pathCol}' and '${captionCol}', found ${header.fields.map((f) => `'${f}'`).join(', ')}`,
      `Add a header row '${pathCol},${captionCol}', or pass columns: { path, caption } with your column names.`);
  }
  const out: PairEntry[] = [];
  for (const r of records.slice(1)) {
    if (r.fields.length !== header.fields.length) {
      throw new DataFileError(file, r.line, `expected ${header.fields.length} fields like the header, found ${r.fields.length}`,
        'Quote fields that contain commas or line breaks ("a, b"), and double quotes inside them ("").');
    }
    out.push(checkEntry(file, r.line, r.fields[pi]!, r.fields[ci]!, pathCol, captionCol));
  }
  return out;
}

function fromJsonl(text: string, file: string, pathKey: string, captionKey: string): PairEntry[] {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const out: PairEntry[] = [];
  const lines = text.split(/\r?\n/);
  for (let k = 0; k < lines.length; k++) {
    const raw = lines[k]!.trim();
    if (raw === '') continue;
    let obj: unknown;
    try {
      obj = JSON.parse(raw);
    } catch (e) {
      throw new DataFileError(file, k + 1, `invalid JSON (${(e as Error).message})`, `Write one JSON object per line, e.g. {"${pathKey}": "img/1.jpg", "${captionKey}": "a cat"}.`);
    }
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
      throw new DataFileError(file, k + 1, `expected a JSON object, found ${Array.isArray(obj) ? 'an array' : obj === null ? 'null' : typeof obj}`,
        `Write one JSON object per line, e.g. {"${pathKey}": "img/1.jpg", "${captionKey}": "a cat"}.`);
    }
    const rec = obj as Record<string, unknown>;
    const p = rec[pathKey];
    const c = rec[captionKey];
    if (typeof p !== 'string' || typeof c !== 'string') {
      const bad = typeof p !== 'string' ? pathKey : captionKey;
      const v = rec[bad];
      throw new DataFileError(file, k + 1, `"${bad}" must be a string, found ${v === undefined ? 'no such key' : JSON.stringify(v)}`,
        `Give every line string "${pathKey}" and "${captionKey}" keys (or pass columns: { path, caption } with your key names).`);
    }
    out.push(checkEntry(file, k + 1, p, c, pathKey, captionKey));
  }
  return out;
}

function checkEntry(file: string, line: number, p: string, caption: string, pathCol: string, captionCol: string): PairEntry {
  if (p.trim() === '') throw new DataFileError(file, line, `empty ${pathCol}`, 'Give every row an image path, or delete the row.');
  if (caption.trim() === '') throw new DataFileError(file, line, `empty ${captionCol} for ${p}`, 'Give every row a caption, or delete the row.');
  return { path: p.trim(), caption, line };
}

/** Reads a CSV or JSONL pair list (without opening any image). */
export async function readPairList(file: string, opts: Pick<ImageTextPairsOptions, 'format' | 'columns'> = {}): Promise<PairEntry[]> {
  const format = detectFormat(file, opts.format);
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(`ImageTextPairs: cannot read ${file}: ${code === 'ENOENT' ? 'file not found. Check the path' : (e as Error).message}.`, { cause: e });
  }
  const pathCol = opts.columns?.path ?? 'path';
  const captionCol = opts.columns?.caption ?? 'caption';
  return format === 'csv' ? fromCsv(text, file, pathCol, captionCol) : fromJsonl(text, file, pathCol, captionCol);
}

/** Images with captions, from a CSV or JSONL list; unlabeled (`label` is -1). */
export class ImageTextPairs extends FileImageDataset<CaptionedSample> {
  /** The list file, absolute. */
  readonly file: string;
  /** Captions, one per sample. */
  captions: string[];

  private constructor(file: string, paths: string[], captions: string[], opts: ImageTextPairsOptions) {
    super(paths, new Int32Array(paths.length).fill(-1), [], opts);
    this.file = file;
    this.captions = captions;
  }

  /**
   * Reads the list and returns the dataset (decoding nothing unless `validate`).
   *
   * @throws DataFileError for malformed rows; Error for a missing or empty list.
   */
  static async open(file: string, opts: ImageTextPairsOptions = {}): Promise<ImageTextPairs> {
    const abs = path.resolve(file);
    const entries = await readPairList(abs, opts);
    if (entries.length === 0) throw new Error(`ImageTextPairs: ${file} lists no pairs. Add rows with an image path and a caption.`);
    const dir = path.dirname(abs);
    const ds = new ImageTextPairs(abs, entries.map((e) => path.resolve(dir, e.path)), entries.map((e) => e.caption), opts);
    if (opts.validate) await ds.validate();
    return ds;
  }

  protected override keepOnly(keep: number[]): void {
    super.keepOnly(keep);
    this.captions = keep.map((i) => this.captions[i]!);
  }

  protected makeSample(i: number, image: RawImage): CaptionedSample {
    return { image, label: -1, path: this.paths[i]!, index: i, caption: this.captions[i]! };
  }
}
