/**
 * CLIP's byte-level BPE tokenizer, in TypeScript.
 *
 * CLIP (Radford et al. 2021, "Learning Transferable Visual Models From Natural Language
 * Supervision", https://arxiv.org/abs/2103.00020) encodes text with a lower-cased byte-pair
 * encoding (Sennrich et al. 2016) over UTF-8 bytes, with a 49,408-token vocabulary and a
 * context of 77 tokens. This module reproduces OpenAI's `clip/simple_tokenizer.py` and
 * `clip.tokenize` token for token (and hence HF `CLIPTokenizer` for the openai checkpoints,
 * up to the padding id, see {@link EncodeOptions.padId}).
 *
 * The algorithm, for one text:
 *
 * 1. Clean-up. OpenAI runs `ftfy.fix_text`, then `html.unescape` twice, then collapses runs
 *    of whitespace to one space, strips, and lower-cases. ftfy is not available here; we keep
 *    its last step, Unicode NFC normalisation (which HF's fast CLIP tokenizer also applies),
 *    and do everything else exactly as Python does: the HTML5 unescape rules of Python's
 *    `html.unescape` (named references, with and without `;`, numeric references and their
 *    Windows-1252 fix-ups), Python's notion of whitespace (`str.isspace`, which differs from
 *    JS's `\s`: it includes U+001C..U+001F and U+0085 but not U+FEFF), and `str.lower`.
 * 2. Pre-tokenisation with CLIP's split pattern (case-insensitive, Unicode):
 *    `<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`
 *    so words are runs of letters, every digit is its own word, and runs of other symbols
 *    are words; whitespace separates words and is dropped.
 * 3. Each word's UTF-8 bytes are mapped to printable characters with GPT-2's
 *    `bytes_to_unicode` table (so that BPE never sees whitespace or control characters),
 *    and `</w>` is appended to the word's last symbol (CLIP marks word *ends*, unlike GPT-2).
 * 4. BPE: repeatedly merge the adjacent pair of symbols with the lowest merge rank (its line
 *    in the merges file), left to right over the word, until no pair has a rank. Results are
 *    cached per word.
 * 5. Symbols become ids through the vocabulary; the sequence is wrapped in
 *    `<|startoftext|>` (49406) and `<|endoftext|>` (49407), truncated to the context length
 *    keeping `<|endoftext|>` last, and padded.
 *
 * Vocabularies load from OpenAI's `bpe_simple_vocab_16e6.txt.gz` (shipped in
 * `assets/clip/`, see {@link CLIPTokenizer.default}), from HF's `vocab.json` + `merges.txt`,
 * or from HF's `tokenizer.json`.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { DyadError } from '../../errors.js';

/** Tokenizer files that are missing, unreadable or invalid, or a text the tokenizer refuses; the message names the file and the fix. */
export class CLIPTokenizerError extends DyadError<'TOKENIZER'> {
  constructor(message: string, options?: { cause?: unknown }) {
    super('TOKENIZER', message, options);
    this.name = 'CLIPTokenizerError';
  }
}

/** CLIP's start-of-text token (id 49406 in OpenAI's vocabulary). */
export const CLIP_BOS_TOKEN = '<|startoftext|>';
/** CLIP's end-of-text token (id 49407 in OpenAI's vocabulary). */
export const CLIP_EOS_TOKEN = '<|endoftext|>';
/** CLIP's text context length. */
export const CLIP_CONTEXT_LENGTH = 77;
/** Number of merges OpenAI's simple_tokenizer.py reads from its BPE file: 49152 - 256 - 2. */
export const CLIP_NUM_MERGES = 49152 - 256 - 2;
/** File name of OpenAI's BPE merges, as shipped in `assets/clip/`. */
export const CLIP_BPE_FILE = 'bpe_simple_vocab_16e6.txt.gz';

/** Options of {@link CLIPTokenizer.encode} and {@link CLIPTokenizer.encodeBatch}. */
export interface EncodeOptions {
  /**
   * Cut sequences longer than `contextLength` to `contextLength` tokens, with
   * `<|endoftext|>` as the last one (as `clip.tokenize(..., truncate=True)`, open_clip and
   * HF do). When false, a text that is too long throws. Default true.
   */
  truncate?: boolean;
  /**
   * Pad to `contextLength` with `padId`. Default true. For {@link CLIPTokenizer.encodeBatch},
   * `pad: false` pads only to the longest sequence of the batch (a batch is rectangular).
   */
  pad?: boolean;
  /** Context length, counting `<|startoftext|>` and `<|endoftext|>`. Default 77. */
  contextLength?: number;
  /**
   * Padding id. Default: the tokenizer's `padId` (0 unless set when loading), which is what
   * OpenAI's `clip.tokenize` uses. HF's `CLIPTokenizer` for the openai checkpoints pads with
   * its `pad_token`, `<|endoftext|>` = 49407; pass `padId: tokenizer.eosTokenId` to match
   * it. The model never looks at padding (CLIP pools the features at the first
   * `<|endoftext|>`, and the attention mask excludes padding), so both give the same
   * embeddings.
   */
  padId?: number;
}

/** Options for building or loading a tokenizer. */
export interface CLIPTokenizerOptions {
  /** Default padding id of `encode`/`encodeBatch` (see {@link EncodeOptions.padId}). Default 0. */
  padId?: number;
  /** Default context length. Default 77. */
  contextLength?: number;
  /** Entries kept in the per-word BPE cache before it is cleared. Default 100,000. */
  cacheCapacity?: number;
}

/** Vocabulary and merges, as held in memory. */
export interface CLIPVocabulary {
  /** Token string (in the byte-to-unicode alphabet, with `</w>` word ends) to id. */
  vocab: Map<string, number>;
  /** BPE merges in rank order: `[left, right]`. */
  merges: Array<[string, string]>;
  /** Token used for symbols missing from the vocabulary. Default `<|endoftext|>` (as HF). */
  unkToken?: string;
  /** Where this vocabulary came from, for error messages. */
  source?: string;
}

/** The result of {@link CLIPTokenizer.encodeBatch}: row-major int64 ids and attention mask. */
export interface EncodedBatch {
  /** Token ids, `shape[0] * shape[1]` entries, row-major. */
  ids: BigInt64Array;
  /** `[batch, sequenceLength]`. */
  shape: [number, number];
  /** 1 for real tokens (including `<|startoftext|>` and `<|endoftext|>`), 0 for padding. */
  attentionMask: BigInt64Array;
}

// ---------------------------------------------------------------------------------------
// Byte-to-unicode table (GPT-2, reused by CLIP)
// ---------------------------------------------------------------------------------------

/**
 * GPT-2's `bytes_to_unicode`: a bijection from the 256 byte values to printable Unicode
 * characters. Printable Latin-1 bytes map to themselves; the other 68 bytes map to U+0100 and
 * up, in byte order. The returned array is in the table's insertion order (printable bytes
 * first), which is the order of the first 256 ids of OpenAI's CLIP vocabulary.
 */
export function bytesToUnicode(): Array<[byte: number, char: string]> {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const cs = bs.slice();
  const inBs = new Set(bs);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!inBs.has(b)) {
      bs.push(b);
      cs.push(256 + n);
      n++;
    }
  }
  return bs.map((b, i) => [b, String.fromCharCode(cs[i]!)]);
}

const BYTE_TABLE = bytesToUnicode();
/** byte value -> character. */
const BYTE_ENCODER: string[] = (() => {
  const out = new Array<string>(256);
  for (const [b, c] of BYTE_TABLE) out[b] = c;
  return out;
})();
/** character code -> byte value. */
const BYTE_DECODER = new Map<number, number>(BYTE_TABLE.map(([b, c]) => [c.charCodeAt(0), b]));

// ---------------------------------------------------------------------------------------
// Text clean-up, as Python does it
// ---------------------------------------------------------------------------------------

/**
 * Python's `str.isspace` characters (Unicode 14/15/16/17 agree): what `re.sub(r'\s+', ...)`
 * and `str.strip()` act on in OpenAI's `whitespace_clean`. JS's `\s` differs (it has U+FEFF
 * and lacks U+001C..U+001F, U+0085), so it is spelled out.
 */
const PY_WS = '\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const WS_RUN = new RegExp(`[${PY_WS}]+`, 'gu');
const WS_LEAD = new RegExp(`^[${PY_WS}]+`, 'u');
const WS_TRAIL = new RegExp(`[${PY_WS}]+$`, 'u');

/** Python's `str.strip()` (no arguments). */
function pyStrip(s: string): string {
  return s.replace(WS_LEAD, '').replace(WS_TRAIL, '');
}

/**
 * CLIP's split pattern. OpenAI's `\s` (from the `regex` module) is replaced by Python's
 * whitespace set: after clean-up the only whitespace left is U+0020 either way, and this
 * keeps U+FEFF (not whitespace in Python) a symbol, as it is there.
 */
const SPLIT_PATTERN = new RegExp(
  `<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^${PY_WS}\\p{L}\\p{N}]+`,
  'giu',
);

/** Python `html._invalid_charrefs`: numeric references the HTML5 spec remaps. */
const INVALID_CHARREFS = new Map<number, string>([
  [0x00, '\ufffd'], [0x0d, '\r'], [0x80, '\u20ac'], [0x81, '\x81'], [0x82, '\u201a'],
  [0x83, '\u0192'], [0x84, '\u201e'], [0x85, '\u2026'], [0x86, '\u2020'], [0x87, '\u2021'],
  [0x88, '\u02c6'], [0x89, '\u2030'], [0x8a, '\u0160'], [0x8b, '\u2039'], [0x8c, '\u0152'],
  [0x8d, '\x8d'], [0x8e, '\u017d'], [0x8f, '\x8f'], [0x90, '\x90'], [0x91, '\u2018'],
  [0x92, '\u2019'], [0x93, '\u201c'], [0x94, '\u201d'], [0x95, '\u2022'], [0x96, '\u2013'],
  [0x97, '\u2014'], [0x98, '\u02dc'], [0x99, '\u2122'], [0x9a, '\u0161'], [0x9b, '\u203a'],
  [0x9c, '\u0153'], [0x9d, '\x9d'], [0x9e, '\u017e'], [0x9f, '\u0178'],
]);

/** Python `html._invalid_codepoints`: numeric references that unescape to nothing. */
function isInvalidCodepoint(n: number): boolean {
  return (
    (n >= 0x1 && n <= 0x8) ||
    n === 0xb ||
    (n >= 0xe && n <= 0x1f) ||
    (n >= 0x7f && n <= 0x9f) ||
    (n >= 0xfdd0 && n <= 0xfdef) ||
    ((n & 0xfffe) === 0xfffe && n <= 0x10ffff)
  );
}

/** Python `html._charref` (with `u` so that `{1,32}` counts code points, as Python does). */
const CHARREF = /&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)/gu;

let html5Entities: Map<string, string> | undefined;

/** The WHATWG HTML5 named character references (Python's `html.entities.html5`). */
function entities(): Map<string, string> {
  if (html5Entities) return html5Entities;
  const file = join(packageAssetDir(), 'html5_entities.json');
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new CLIPTokenizerError(`CLIP tokenizer: cannot read the HTML entity table ${file}: ${(e as Error).message}`, { cause: e });
  }
  const table = (parsed as { entities?: Record<string, string> }).entities;
  if (!table || typeof table !== 'object') {
    throw new CLIPTokenizerError(`CLIP tokenizer: ${file} has no "entities" object`);
  }
  html5Entities = new Map(Object.entries(table));
  return html5Entities;
}

function replaceCharref(ref: string): string {
  if (ref[0] === '#') {
    const hex = ref[1] === 'x' || ref[1] === 'X';
    const digits = ref.slice(hex ? 2 : 1).replace(/;$/, '');
    // Anything past 8 significant digits is beyond U+10FFFF; avoid precision loss.
    const sig = digits.replace(/^0+/, '');
    const num = sig.length > 8 ? Infinity : parseInt(sig || '0', hex ? 16 : 10);
    const fixed = INVALID_CHARREFS.get(num);
    if (fixed !== undefined) return fixed;
    if ((num >= 0xd800 && num <= 0xdfff) || num > 0x10ffff) return '\ufffd';
    if (isInvalidCodepoint(num)) return '';
    return String.fromCodePoint(num);
  }
  const table = entities();
  const hit = table.get(ref);
  if (hit !== undefined) return hit;
  // The longest prefix that is a known name (HTML5 rule), measured in code points.
  const cps = Array.from(ref);
  for (let x = cps.length - 1; x > 1; x--) {
    const head = cps.slice(0, x).join('');
    const v = table.get(head);
    if (v !== undefined) return v + cps.slice(x).join('');
  }
  return '&' + ref;
}

/** Python's `html.unescape`: named and numeric character references, HTML5 rules. */
export function htmlUnescape(s: string): string {
  if (!s.includes('&')) return s;
  return s.replace(CHARREF, (_m, ref: string) => replaceCharref(ref));
}

/**
 * CLIP's text clean-up: NFC (standing in for ftfy), `html.unescape` twice, strip, collapse
 * whitespace runs to one space, strip, lower-case. Exactly OpenAI's
 * `whitespace_clean(basic_clean(text)).lower()` without ftfy's other repairs.
 */
export function cleanText(text: string): string {
  let t = text.normalize('NFC');
  t = pyStrip(htmlUnescape(htmlUnescape(t)));
  t = pyStrip(t.replace(WS_RUN, ' '));
  return t.toLowerCase();
}

// ---------------------------------------------------------------------------------------
// Locating the package's assets
// ---------------------------------------------------------------------------------------

let assetDirCache: string | undefined;

/**
 * `assets/clip/` of this package: walk up from this module (in `src/models/clip/` or
 * `dist/src/models/clip/`) to the folder holding `package.json` and `assets/clip/`.
 */
export function packageAssetDir(): string {
  if (assetDirCache) return assetDirCache;
  const start = dirname(fileURLToPath(import.meta.url));
  const tried: string[] = [];
  let dir = start;
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) {
      const assets = join(dir, 'assets', 'clip');
      if (existsSync(join(assets, CLIP_BPE_FILE))) {
        assetDirCache = assets;
        return assets;
      }
      tried.push(assets);
    }
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  throw new CLIPTokenizerError(
    `CLIP tokenizer: cannot find the package's assets/clip/${CLIP_BPE_FILE} above ${start}` +
      (tried.length ? ` (looked in ${tried.join(', ')})` : ' (no package.json found)') +
      '; reinstall the package or use CLIPTokenizer.fromFile(path)',
  );
}

// ---------------------------------------------------------------------------------------
// Loading vocabularies
// ---------------------------------------------------------------------------------------

function readText(file: string, what: string): string {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (e as Error).message;
    throw new CLIPTokenizerError(`CLIP tokenizer: cannot read ${what} ${file}: ${why}`, { cause: e });
  }
  if (buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) {
    try {
      buf = gunzipSync(buf);
    } catch (e) {
      throw new CLIPTokenizerError(`CLIP tokenizer: ${file} is not a valid gzip file (${(e as Error).message}); is it truncated?`, { cause: e });
    }
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(buf);
  } catch {
    throw new CLIPTokenizerError(`CLIP tokenizer: ${file} is not UTF-8 text`);
  }
}

function readJson(file: string, what: string): unknown {
  const text = readText(file, what);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new CLIPTokenizerError(`CLIP tokenizer: ${file} is not valid JSON: ${(e as Error).message}`, { cause: e });
  }
}

function parseMergeLine(line: string, file: string, where: string): [string, string] {
  const parts = line.split(' ');
  if (parts.length !== 2 || parts[0] === '' || parts[1] === '') {
    throw new CLIPTokenizerError(
      `CLIP tokenizer: malformed merges in ${file}, ${where}: expected two symbols separated by one space, got ${JSON.stringify(line)}`,
    );
  }
  return [parts[0]!, parts[1]!];
}

/** OpenAI's `bpe_simple_vocab_16e6.txt(.gz)`: merges only; the vocabulary is derived. */
function loadOpenAIBpe(file: string): CLIPVocabulary {
  const lines = readText(file, 'BPE merges file').split('\n');
  // Line 0 is a '#version' header; simple_tokenizer.py takes lines 1..48894.
  const body = lines.slice(1, CLIP_NUM_MERGES + 1);
  const merges: Array<[string, string]> = [];
  for (let i = 0; i < body.length; i++) {
    const line = body[i]!;
    if (line === '' && i === body.length - 1) break;
    // simple_tokenizer.py uses merge.split(), i.e. any whitespace.
    const parts = line.trim().split(/\s+/);
    if (parts.length !== 2 || parts[0] === '') {
      throw new CLIPTokenizerError(
        `CLIP tokenizer: malformed merges in ${file}, line ${i + 2}: expected two symbols, got ${JSON.stringify(line)}`,
      );
    }
    merges.push([parts[0]!, parts[1]!]);
  }
  if (merges.length !== CLIP_NUM_MERGES) {
    throw new CLIPTokenizerError(
      `CLIP tokenizer: ${file} has ${merges.length} merges; OpenAI's CLIP BPE file has at least ${CLIP_NUM_MERGES} after its '#version' header. Is the file truncated?`,
    );
  }
  const vocab = new Map<string, number>();
  const base = BYTE_TABLE.map(([, c]) => c);
  for (const c of base) vocab.set(c, vocab.size);
  for (const c of base) vocab.set(c + '</w>', vocab.size);
  for (const [a, b] of merges) vocab.set(a + b, vocab.size);
  // A duplicate merge result would shift ids; the real file has none.
  if (vocab.size !== 512 + merges.length) {
    throw new CLIPTokenizerError(`CLIP tokenizer: ${file} has duplicate merges; the vocabulary would not match CLIP's`);
  }
  vocab.set(CLIP_BOS_TOKEN, vocab.size);
  vocab.set(CLIP_EOS_TOKEN, vocab.size);
  return { vocab, merges, source: file };
}

function vocabFromObject(obj: unknown, file: string, where: string): Map<string, number> {
  if (!obj || typeof obj !== 'object' || Array.isArray(obj)) {
    throw new CLIPTokenizerError(`CLIP tokenizer: ${file}: ${where} must be an object mapping tokens to ids`);
  }
  const vocab = new Map<string, number>();
  for (const [tok, id] of Object.entries(obj as Record<string, unknown>)) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) {
      throw new CLIPTokenizerError(`CLIP tokenizer: ${file}: ${where} maps ${JSON.stringify(tok)} to ${JSON.stringify(id)}, not a non-negative integer id`);
    }
    vocab.set(tok, id);
  }
  if (vocab.size === 0) throw new CLIPTokenizerError(`CLIP tokenizer: ${file}: ${where} is empty`);
  return vocab;
}

/** HF `vocab.json` + `merges.txt`. */
function loadHFVocabMerges(vocabFile: string, mergesFile: string): CLIPVocabulary {
  const vocab = vocabFromObject(readJson(vocabFile, 'vocab.json'), vocabFile, 'the vocabulary');
  const lines = readText(mergesFile, 'merges.txt').split('\n');
  const merges: Array<[string, string]> = [];
  lines.forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    if (line === '' || (i === 0 && line.startsWith('#version'))) return;
    merges.push(parseMergeLine(line, mergesFile, `line ${i + 1}`));
  });
  return { vocab, merges, source: mergesFile };
}

/** HF `tokenizer.json` (a `tokenizers` BPE model). */
function loadHFTokenizerJson(file: string, json?: unknown): CLIPVocabulary {
  const obj = (json ?? readJson(file, 'tokenizer.json')) as {
    model?: { type?: string; vocab?: unknown; merges?: unknown; unk_token?: unknown };
    added_tokens?: Array<{ id?: unknown; content?: unknown }>;
  };
  const model = obj?.model;
  if (!model || typeof model !== 'object') throw new CLIPTokenizerError(`CLIP tokenizer: ${file} has no "model" object`);
  if (model.type !== undefined && model.type !== 'BPE') {
    throw new CLIPTokenizerError(`CLIP tokenizer: ${file} holds a ${String(model.type)} model; CLIP needs BPE`);
  }
  const vocab = vocabFromObject(model.vocab, file, 'model.vocab');
  for (const t of obj.added_tokens ?? []) {
    if (typeof t?.content === 'string' && typeof t.id === 'number' && !vocab.has(t.content)) vocab.set(t.content, t.id);
  }
  if (!Array.isArray(model.merges)) throw new CLIPTokenizerError(`CLIP tokenizer: ${file}: model.merges must be an array`);
  const merges = model.merges.map((m: unknown, i: number): [string, string] => {
    if (typeof m === 'string') return parseMergeLine(m, file, `model.merges[${i}]`);
    if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string' && m[0] && m[1]) {
      return [m[0], m[1]];
    }
    throw new CLIPTokenizerError(
      `CLIP tokenizer: malformed merges in ${file}, model.merges[${i}]: expected "a b" or ["a", "b"], got ${JSON.stringify(m)}`,
    );
  });
  const unk = typeof model.unk_token === 'string' ? model.unk_token : undefined;
  return { vocab, merges, source: file, ...(unk !== undefined ? { unkToken: unk } : {}) };
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------
// The tokenizer
// ---------------------------------------------------------------------------------------

/**
 * CLIP's tokenizer (Radford et al. 2021): text clean-up, CLIP's split pattern, byte-level
 * BPE with `</w>` word ends, `<|startoftext|>`/`<|endoftext|>`, 77-token context.
 *
 * ```ts
 * const tok = CLIPTokenizer.default();
 * tok.encode('a photo of a cat');           // [49406, 320, 1125, 539, 320, 2368, 49407, 0, ...] (77 ids)
 * const { ids, shape, attentionMask } = tok.encodeBatch(['a cat', 'a dog']); // shape [2, 77]
 * tok.decode(tok.encode('a photo of a cat')); // 'a photo of a cat'
 * ```
 */
export class CLIPTokenizer {
  /** Vocabulary size (largest id + 1): 49408 for CLIP. */
  readonly vocabSize: number;
  /** Id of `<|startoftext|>` (49406 for CLIP). */
  readonly bosTokenId: number;
  /** Id of `<|endoftext|>` (49407 for CLIP). */
  readonly eosTokenId: number;
  /** Default padding id (0, as `clip.tokenize`, unless set). */
  readonly padId: number;
  /** Default context length (77). */
  readonly contextLength: number;
  /** Where the vocabulary came from. */
  readonly source: string;

  private readonly encoder: Map<string, number>;
  private readonly decoder: Array<string | undefined>;
  private readonly ranks: Map<string, number>;
  private readonly unkId: number;
  private readonly cache = new Map<string, number[]>();
  private readonly cacheCapacity: number;

  /** Build from an in-memory vocabulary. Most callers want {@link fromFile} or {@link default}. */
  constructor(data: CLIPVocabulary, options: CLIPTokenizerOptions = {}) {
    const source = data.source ?? '<in-memory vocabulary>';
    this.source = source;
    this.encoder = data.vocab;
    let maxId = -1;
    for (const id of data.vocab.values()) if (id > maxId) maxId = id;
    this.vocabSize = maxId + 1;
    this.decoder = new Array<string | undefined>(this.vocabSize);
    for (const [tok, id] of data.vocab) this.decoder[id] = tok;

    const need = (tok: string): number => {
      const id = data.vocab.get(tok);
      if (id === undefined) throw new CLIPTokenizerError(`CLIP tokenizer: ${source}: the vocabulary has no ${tok} token`);
      return id;
    };
    this.bosTokenId = need(CLIP_BOS_TOKEN);
    this.eosTokenId = need(CLIP_EOS_TOKEN);
    this.unkId = need(data.unkToken ?? CLIP_EOS_TOKEN);

    this.ranks = new Map();
    data.merges.forEach(([a, b], i) => {
      for (const t of [a, b, a + b]) {
        if (!data.vocab.has(t)) {
          throw new CLIPTokenizerError(
            `CLIP tokenizer: malformed merges in ${source}: merge ${i + 1} (${JSON.stringify(a + ' ' + b)}) uses ${JSON.stringify(t)}, which is not in the vocabulary`,
          );
        }
      }
      // Later duplicates win, as dict(zip(merges, range(...))) does in Python.
      this.ranks.set(a + ' ' + b, i);
    });

    this.padId = options.padId ?? 0;
    this.contextLength = options.contextLength ?? CLIP_CONTEXT_LENGTH;
    this.cacheCapacity = options.cacheCapacity ?? 100_000;
    this.checkId(this.padId, 'padId');
    this.checkContextLength(this.contextLength);
  }

  /**
   * Load a vocabulary from disk. `pathOrDir` may be:
   * - OpenAI's `bpe_simple_vocab_16e6.txt.gz` (or the un-gzipped `.txt`): merges only; the
   *   vocabulary is built as `simple_tokenizer.py` does (the 256 byte symbols, the same with
   *   `</w>`, the first 48894 merges, then `<|startoftext|>`, `<|endoftext|>`);
   * - HF `tokenizer.json` (`model.vocab`, `model.merges` as `"a b"` or `["a", "b"]`);
   * - HF `vocab.json` or `merges.txt` (the other is taken from the same folder);
   * - a folder holding `tokenizer.json`, or `vocab.json` + `merges.txt`, or
   *   `bpe_simple_vocab_16e6.txt.gz` (tried in that order).
   * Missing, unreadable or malformed files throw an error naming the file and the problem.
   */
  static fromFile(pathOrDir: string, options: CLIPTokenizerOptions = {}): CLIPTokenizer {
    return new CLIPTokenizer(CLIPTokenizer.readVocabulary(pathOrDir), options);
  }

  /** Read a vocabulary as {@link fromFile} does, without building a tokenizer. */
  static readVocabulary(pathOrDir: string): CLIPVocabulary {
    const p = resolve(pathOrDir);
    if (isDir(p)) {
      const tj = join(p, 'tokenizer.json');
      const vj = join(p, 'vocab.json');
      const mt = join(p, 'merges.txt');
      if (existsSync(tj)) return loadHFTokenizerJson(tj);
      if (existsSync(vj) && existsSync(mt)) return loadHFVocabMerges(vj, mt);
      for (const name of [CLIP_BPE_FILE, 'bpe_simple_vocab_16e6.txt']) {
        if (existsSync(join(p, name))) return loadOpenAIBpe(join(p, name));
      }
      throw new CLIPTokenizerError(
        `CLIP tokenizer: ${p} holds no tokenizer files: expected tokenizer.json, vocab.json + merges.txt, or ${CLIP_BPE_FILE}`,
      );
    }
    if (!existsSync(p)) throw new CLIPTokenizerError(`CLIP tokenizer: cannot read ${p}: no such file or folder`);
    const name = basename(p);
    const dir = dirname(p);
    if (name.endsWith('.json')) {
      const json = readJson(p, 'tokenizer file');
      if (json && typeof json === 'object' && 'model' in json) return loadHFTokenizerJson(p, json);
      const mt = join(dir, 'merges.txt');
      if (!existsSync(mt)) {
        throw new CLIPTokenizerError(`CLIP tokenizer: ${p} looks like a vocab.json, but there is no merges.txt beside it (${mt})`);
      }
      return loadHFVocabMerges(p, mt);
    }
    const vj = join(dir, 'vocab.json');
    if (name === 'merges.txt' || (name.endsWith('.txt') && !name.startsWith('bpe_') && existsSync(vj))) {
      if (!existsSync(vj)) {
        throw new CLIPTokenizerError(`CLIP tokenizer: ${p} looks like an HF merges.txt, but there is no vocab.json beside it (${vj})`);
      }
      return loadHFVocabMerges(vj, p);
    }
    return loadOpenAIBpe(p);
  }

  /** The tokenizer of OpenAI's CLIP, from the `bpe_simple_vocab_16e6.txt.gz` shipped with dyad. */
  static default(options: CLIPTokenizerOptions = {}): CLIPTokenizer {
    return CLIPTokenizer.fromFile(join(packageAssetDir(), CLIP_BPE_FILE), options);
  }

  /** Number of words in the BPE cache. */
  get cacheSize(): number {
    return this.cache.size;
  }

  /** Empty the BPE cache. */
  clearCache(): void {
    this.cache.clear();
  }

  /** Token string of an id (in the byte-to-unicode alphabet), or undefined. */
  idToToken(id: number): string | undefined {
    return this.decoder[id];
  }

  /** Id of a token string, or undefined. */
  tokenToId(token: string): number | undefined {
    return this.encoder.get(token);
  }

  /**
   * BPE token ids of `text`, without `<|startoftext|>`/`<|endoftext|>`, padding or
   * truncation (OpenAI's `SimpleTokenizer.encode`).
   */
  tokenize(text: string): number[] {
    const out: number[] = [];
    const cleaned = cleanText(text);
    const utf8 = new TextEncoder();
    for (const m of cleaned.matchAll(SPLIT_PATTERN)) {
      const word = m[0];
      if (word === CLIP_BOS_TOKEN) {
        out.push(this.bosTokenId);
        continue;
      }
      if (word === CLIP_EOS_TOKEN) {
        out.push(this.eosTokenId);
        continue;
      }
      let mapped = '';
      for (const b of utf8.encode(word)) mapped += BYTE_ENCODER[b];
      for (const id of this.bpe(mapped)) out.push(id);
    }
    return out;
  }

  /**
   * Token ids of `text`: `[<|startoftext|>, ...bpe, <|endoftext|>]`, truncated (keeping
   * `<|endoftext|>` last) and padded to `contextLength` (77) as `clip.tokenize` does.
   * @throws if the text is longer than `contextLength` tokens and `truncate` is false.
   */
  encode(text: string, options: EncodeOptions = {}): number[] {
    const { truncate = true, pad = true } = options;
    const ctx = options.contextLength ?? this.contextLength;
    const padId = options.padId ?? this.padId;
    this.checkContextLength(ctx);
    this.checkId(padId, 'padId');
    let ids = [this.bosTokenId, ...this.tokenize(text), this.eosTokenId];
    if (ids.length > ctx) {
      if (!truncate) {
        const head = text.length > 60 ? text.slice(0, 57) + '...' : text;
        throw new CLIPTokenizerError(
          `CLIP tokenizer: text ${JSON.stringify(head)} is ${ids.length} tokens long (with ${CLIP_BOS_TOKEN} and ${CLIP_EOS_TOKEN}), more than the context length ${ctx}; shorten it or pass { truncate: true }`,
        );
      }
      ids = ids.slice(0, ctx);
      ids[ctx - 1] = this.eosTokenId;
    }
    if (pad) while (ids.length < ctx) ids.push(padId);
    return ids;
  }

  /**
   * Encode a batch into a rectangular int64 matrix (row-major) with its attention mask.
   * Rows are padded to `contextLength` (77), or with `pad: false` to the longest row.
   */
  encodeBatch(texts: readonly string[], options: EncodeOptions = {}): EncodedBatch {
    const padId = options.padId ?? this.padId;
    const rows = texts.map((t) => this.encode(t, { ...options, pad: false }));
    const ctx = options.contextLength ?? this.contextLength;
    const width = options.pad === false ? rows.reduce((m, r) => Math.max(m, r.length), 0) : ctx;
    const n = rows.length;
    const ids = new BigInt64Array(n * width).fill(BigInt(padId));
    const attentionMask = new BigInt64Array(n * width);
    rows.forEach((row, i) => {
      for (let j = 0; j < row.length; j++) {
        ids[i * width + j] = BigInt(row[j]!);
        attentionMask[i * width + j] = 1n;
      }
    });
    return { ids, shape: [n, width], attentionMask };
  }

  /**
   * Text of token ids: special tokens and the padding after `<|endoftext|>` are skipped,
   * `</w>` becomes a space, bytes are decoded as UTF-8 (invalid sequences become U+FFFD),
   * and the result is trimmed. Accepts plain arrays and typed arrays (int32 or int64).
   * @throws RangeError on an id outside the vocabulary.
   */
  decode(ids: ArrayLike<number | bigint>, options: { padId?: number } = {}): string {
    const padId = options.padId ?? this.padId;
    let text = '';
    let afterEos = false;
    for (let i = 0; i < ids.length; i++) {
      const id = Number(ids[i]);
      if (id === this.bosTokenId) continue;
      if (id === this.eosTokenId) {
        afterEos = true;
        continue;
      }
      if (afterEos && id === padId) continue;
      const tok = Number.isInteger(id) ? this.decoder[id] : undefined;
      if (tok === undefined) throw new RangeError(`CLIP tokenizer: decode: id ${String(ids[i])} (at ${i}) is not in the vocabulary (size ${this.vocabSize})`);
      text += tok;
    }
    // Tokens are in the byte alphabet, except `</w>` and any added tokens, which are ASCII.
    const bytes: number[] = [];
    const enc = new TextEncoder();
    for (let i = 0; i < text.length; i++) {
      if (text.startsWith('</w>', i)) {
        bytes.push(0x20);
        i += 3;
        continue;
      }
      const b = BYTE_DECODER.get(text.charCodeAt(i));
      if (b !== undefined) bytes.push(b);
      else for (const x of enc.encode(text[i])) bytes.push(x);
    }
    return new TextDecoder('utf-8').decode(new Uint8Array(bytes)).trim();
  }

  /** BPE of one byte-mapped word, as ids, cached. */
  private bpe(token: string): number[] {
    const hit = this.cache.get(token);
    if (hit) return hit;
    let word: string[] = Array.from(token);
    word[word.length - 1] += '</w>';
    while (word.length > 1) {
      let best = Infinity;
      let first = '';
      let second = '';
      for (let i = 0; i < word.length - 1; i++) {
        const r = this.ranks.get(word[i]! + ' ' + word[i + 1]!);
        if (r !== undefined && r < best) {
          best = r;
          first = word[i]!;
          second = word[i + 1]!;
        }
      }
      if (best === Infinity) break;
      const merged: string[] = [];
      for (let i = 0; i < word.length; ) {
        if (i < word.length - 1 && word[i] === first && word[i + 1] === second) {
          merged.push(first + second);
          i += 2;
        } else {
          merged.push(word[i]!);
          i += 1;
        }
      }
      word = merged;
    }
    const ids = word.map((sym) => this.encoder.get(sym) ?? this.unkId);
    if (this.cache.size >= this.cacheCapacity) this.cache.clear();
    this.cache.set(token, ids);
    return ids;
  }

  private checkId(id: number, what: string): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
      throw new RangeError(`CLIP tokenizer: ${what} ${id} is not a token id (0..${this.vocabSize - 1})`);
    }
  }

  private checkContextLength(n: number): void {
    if (!Number.isInteger(n) || n < 2) {
      throw new RangeError(`CLIP tokenizer: contextLength ${n} must be an integer >= 2 (room for ${CLIP_BOS_TOKEN} and ${CLIP_EOS_TOKEN})`);
    }
  }
}
