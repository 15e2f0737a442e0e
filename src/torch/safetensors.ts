/**
 * safetensors I/O, the Hugging Face format byte for byte
 * (https://huggingface.co/docs/safetensors): an 8-byte little-endian u64 header length N, N
 * bytes of UTF-8 JSON `{ "__metadata__": { string: string }, name: { dtype, shape,
 * data_offsets: [begin, end] }, ... }` padded with spaces to a multiple of 8, then the tensors'
 * row-major little-endian bytes, back to back, offsets relative to the end of the header.
 *
 * Writing follows the reference writer: tensors sorted by dtype alignment (descending), then
 * by name; `__metadata__` first in the header. Reading validates everything before any tensor
 * is made (header length, JSON, dtypes, shapes against offsets, overlaps, gaps, truncation,
 * metadata types, bool bytes) and every error names the file.
 */
import fs from 'node:fs';
import os from 'node:os';
import { Tensor } from './tensor.js';
import { fromBytes } from './creation.js';
import { itemSize, type DType } from './dtype.js';
import { writeFileAtomic } from './io.js';
import { DyadError } from './errors.js';

/** The dtype names of the safetensors header that dyad reads and writes. */
export type SafetensorsDType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

export const SAFETENSORS_DTYPE: Readonly<Record<DType, SafetensorsDType>> = {
  float64: 'F64', float32: 'F32', float16: 'F16', bfloat16: 'BF16',
  int64: 'I64', int32: 'I32', int16: 'I16', int8: 'I8', uint8: 'U8', bool: 'BOOL',
};
const FROM_ST: Readonly<Record<string, DType>> = Object.fromEntries(Object.entries(SAFETENSORS_DTYPE).map(([k, v]) => [v, k as DType]));
/** Valid safetensors dtypes that libtorch 1.13 has no tensor type for. */
const UNSUPPORTED = new Set(['U16', 'U32', 'U64', 'F8_E5M2', 'F8_E4M3', 'F8_E8M0', 'F4', 'F6_E2M3', 'F6_E3M2', 'C64']);
/** Position in the reference `Dtype` enum (increasing alignment), used to order tensors on write. */
const RANK: Readonly<Record<SafetensorsDType, number>> = { BOOL: 0, U8: 1, I8: 2, I16: 5, F16: 7, BF16: 8, I32: 9, F32: 11, F64: 12, I64: 13 };

/** The reference implementation refuses headers over 100 MB. */
const MAX_HEADER = 100_000_000;

/** Thrown for a malformed or unreadable safetensors file; `file` names it. */
export class SafetensorsError extends DyadError<'SAFETENSORS'> {
  constructor(readonly file: string, detail: string, options?: { cause?: unknown }) {
    super('SAFETENSORS', `${file}: ${detail}`, options);
    this.name = 'SafetensorsError';
  }
}

/** One tensor's entry in the header. `dataOffsets` are relative to the start of the data. */
export interface SafetensorsEntry {
  dtype: DType;
  shape: number[];
  dataOffsets: [number, number];
}

export interface SafetensorsHeader {
  /** Entries in the order of their data. */
  tensors: Map<string, SafetensorsEntry>;
  metadata: Record<string, string>;
  /** Bytes before the data: 8 + the JSON header's length. */
  dataStart: number;
}

export type TensorDict = Record<string, Tensor> | Map<string, Tensor>;

function assertLittleEndian(): void {
  if (os.endianness() !== 'LE') throw new Error('safetensors: dyad reads and writes safetensors on little-endian machines only');
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

// ---- reading -----------------------------------------------------------------------------------

/** Parses and checks the header of a `fileSize`-byte file; `head` holds at least its first 8 + N bytes. */
function parseHeader(head: Uint8Array, fileSize: number, source: string): SafetensorsHeader {
  const fail = (detail: string): never => { throw new SafetensorsError(source, detail); };
  if (fileSize < 8) fail(`not a safetensors file: ${fileSize} bytes, too short for the 8-byte header length`);
  const n64 = new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true);
  if (n64 > BigInt(fileSize - 8)) {
    fail(`not a safetensors file, or truncated: header length ${n64} exceeds the ${fileSize - 8} bytes after the length field`);
  }
  const n = Number(n64);
  if (n > MAX_HEADER) fail(`header of ${n} bytes is larger than the 100 MB limit of the format`);
  if (n < 2) fail(`header length ${n} is too small to hold a JSON object`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(head.subarray(8, 8 + n));
  } catch {
    return fail('header is not valid UTF-8');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return fail(`header is not valid JSON (${(e as Error).message})`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) fail('header JSON is not an object');

  let metadata: Record<string, string> = {};
  const entries: [string, SafetensorsEntry][] = [];
  for (const [name, info] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (info === null || typeof info !== 'object' || Array.isArray(info)) fail('__metadata__ must be an object of strings');
      for (const [k, v] of Object.entries(info as object)) {
        if (typeof v !== 'string') fail(`__metadata__ value '${k}' is ${JSON.stringify(v)}, not a string`);
      }
      metadata = Object.fromEntries(Object.entries(info as Record<string, string>));
      continue;
    }
    const what = `tensor '${name}'`;
    if (info === null || typeof info !== 'object' || Array.isArray(info)) fail(`${what}: header entry is not an object`);
    const { dtype: st, shape, data_offsets: offs } = info as Record<string, unknown>;
    if (typeof st !== 'string') fail(`${what}: missing dtype`);
    const dtype = FROM_ST[st as string];
    if (dtype === undefined) {
      fail(UNSUPPORTED.has(st as string)
        ? `${what}: dtype ${st} is not supported by libtorch 1.13 (dyad handles ${Object.keys(FROM_ST).join(', ')})`
        : `${what}: unknown dtype '${st}' (expected one of ${Object.keys(FROM_ST).join(', ')})`);
    }
    if (!Array.isArray(shape) || !shape.every(isCount)) fail(`${what}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every(isCount) || offs[0] > offs[1]) {
      fail(`${what}: data_offsets ${JSON.stringify(offs)} is not [begin, end] with 0 <= begin <= end`);
    }
    const dims = shape as number[];
    const numel = dims.reduce((a, b) => a * b, 1);
    const [begin, end] = offs as [number, number];
    if (!Number.isSafeInteger(numel) || numel * itemSize[dtype!] !== end - begin) {
      fail(`${what}: shape [${dims.join(', ')}] of ${st} needs ${numel * itemSize[dtype!]} bytes but data_offsets [${begin}, ${end}] hold ${end - begin}`);
    }
    entries.push([name, { dtype: dtype!, shape: dims, dataOffsets: [begin, end] }]);
  }

  const dataLen = fileSize - 8 - n;
  for (const [name, e] of entries) {
    if (e.dataOffsets[1] > dataLen) {
      fail(`tensor '${name}': data_offsets [${e.dataOffsets.join(', ')}] run past the end of the data (${dataLen} bytes): the file is truncated or corrupt`);
    }
  }
  entries.sort((a, b) => a[1].dataOffsets[0] - b[1].dataOffsets[0] || a[1].dataOffsets[1] - b[1].dataOffsets[1]);
  let pos = 0;
  let prev = '';
  for (const [name, e] of entries) {
    const [begin, end] = e.dataOffsets;
    if (begin < pos) fail(`tensors '${prev}' and '${name}' overlap (data_offsets [${begin}, ${end}] start before ${pos})`);
    if (begin > pos) fail(`bytes [${pos}, ${begin}) of the data belong to no tensor (before '${name}')`);
    pos = end;
    prev = name;
  }
  if (pos !== dataLen) fail(`${dataLen - pos} bytes after the last tensor belong to no tensor (data is ${dataLen} bytes, tensors end at ${pos})`);
  return { tensors: new Map(entries), metadata, dataStart: 8 + n };
}

function checkBool(bytes: Uint8Array, name: string, source: string): void {
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i]! > 1) throw new SafetensorsError(source, `tensor '${name}': BOOL byte ${i} is ${bytes[i]}, not 0 or 1`);
  }
}

/** Makes the tensors of a checked header from a function that yields each one's bytes. */
function build(h: SafetensorsHeader, bytesOf: (e: SafetensorsEntry, name: string) => Uint8Array, source: string): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  try {
    for (const [name, e] of h.tensors) {
      const bytes = bytesOf(e, name);
      if (e.dtype === 'bool') checkBool(bytes, name, source);
      out.set(name, fromBytes(bytes, e.dtype, e.shape));
    }
  } catch (err) {
    for (const t of out.values()) t.dispose();
    throw err;
  }
  return out;
}

/** Reads only the header of a safetensors file: names, dtypes, shapes, offsets and metadata. */
export function readHeader(path: string): SafetensorsHeader {
  assertLittleEndian();
  const fd = openRead(path);
  try {
    const size = fs.fstatSync(fd).size;
    const len = Buffer.alloc(8);
    if (size >= 8) readFully(fd, len, 0, path);
    const n = len.readBigUInt64LE(0);
    // parseHeader rejects a length beyond the file before reading the rest.
    if (size < 8 || n > BigInt(size - 8) || n > BigInt(MAX_HEADER)) return parseHeader(len, size, path);
    const head = Buffer.alloc(8 + Number(n));
    len.copy(head);
    readFully(fd, head.subarray(8), 8, path);
    return parseHeader(head, size, path);
  } finally {
    fs.closeSync(fd);
  }
}

function openRead(path: string): number {
  try {
    return fs.openSync(path, 'r');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new SafetensorsError(path, err.code === 'ENOENT' ? 'no such file' : `cannot open: ${err.message}`, { cause: e });
  }
}

function readFully(fd: number, into: Uint8Array, position: number, path: string): void {
  let off = 0;
  while (off < into.byteLength) {
    const got = fs.readSync(fd, into, off, into.byteLength - off, position + off);
    if (got === 0) throw new SafetensorsError(path, `unexpected end of file at byte ${position + off}: the file is truncated`);
    off += got;
  }
}

/**
 * Loads every tensor of a safetensors file (on the CPU, names unchanged) and its metadata.
 * Each tensor's bytes are read straight into a buffer and copied once into the tensor, so
 * files over 2 GB load too. Tensors are owned by the current `torch.scope`, if any.
 */
export function loadFile(path: string): { tensors: Map<string, Tensor>; metadata: Record<string, string> } {
  const h = readHeader(path);
  const fd = openRead(path);
  try {
    const tensors = build(h, (e) => {
      const buf = Buffer.allocUnsafe(e.dataOffsets[1] - e.dataOffsets[0]);
      readFully(fd, buf, h.dataStart + e.dataOffsets[0], path);
      return buf;
    }, path);
    return { tensors, metadata: h.metadata };
  } finally {
    fs.closeSync(fd);
  }
}

/** Parses safetensors bytes (as `serialize` makes them). `opts.source` names them in errors. */
export function deserialize(bytes: Uint8Array, opts: { source?: string } = {}): { tensors: Map<string, Tensor>; metadata: Record<string, string> } {
  assertLittleEndian();
  const source = opts.source ?? '<safetensors bytes>';
  const h = parseHeader(bytes, bytes.byteLength, source);
  const tensors = build(h, (e) => bytes.subarray(h.dataStart + e.dataOffsets[0], h.dataStart + e.dataOffsets[1]), source);
  return { tensors, metadata: h.metadata };
}

// ---- writing -----------------------------------------------------------------------------------

interface Plan {
  header: Uint8Array;
  items: { name: string; tensor: Tensor; nbytes: number }[];
  total: number;
}

const utf8Compare = (a: string, b: string): number => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));

function plan(tensors: TensorDict, metadata: Record<string, string> | undefined, where: string): Plan {
  const pairs = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  const items = pairs.map(([name, tensor]) => {
    if (typeof name !== 'string') throw new TypeError(`${where}: tensor names must be strings, got ${typeof name}`);
    if (name === '__metadata__') throw new TypeError(`${where}: '__metadata__' is reserved by the format and cannot name a tensor`);
    if (!(tensor instanceof Tensor)) throw new TypeError(`${where}: '${name}' is not a Tensor`);
    if (tensor.isDisposed) throw new TypeError(`${where}: tensor '${name}' was disposed`);
    const shape = tensor.shape;
    const st = SAFETENSORS_DTYPE[tensor.dtype];
    return { name, tensor, shape, st, nbytes: tensor.numel() * itemSize[tensor.dtype] };
  });
  items.sort((a, b) => RANK[b.st] - RANK[a.st] || utf8Compare(a.name, b.name));
  const parts: string[] = [];
  if (metadata !== undefined) {
    if (metadata === null || typeof metadata !== 'object') throw new TypeError(`${where}: metadata must be an object of strings`);
    const kv: string[] = [];
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') {
        throw new TypeError(`${where}: metadata '${k}' is a ${typeof v}; safetensors metadata maps strings to strings (use JSON.stringify)`);
      }
      kv.push(`${JSON.stringify(k)}:${JSON.stringify(v)}`);
    }
    parts.push(`"__metadata__":{${kv.join(',')}}`);
  }
  let offset = 0;
  for (const it of items) {
    parts.push(`${JSON.stringify(it.name)}:{"dtype":"${it.st}","shape":[${it.shape.join(',')}],"data_offsets":[${offset},${offset + it.nbytes}]}`);
    offset += it.nbytes;
  }
  const json = Buffer.from(`{${parts.join(',')}}`, 'utf8');
  const padded = Math.ceil(json.length / 8) * 8;
  const header = Buffer.alloc(8 + padded, 0x20);
  header.writeBigUInt64LE(BigInt(padded), 0);
  json.copy(header, 8);
  return { header, items, total: 8 + padded + offset };
}

function tensorBytes(name: string, tensor: Tensor, nbytes: number): Uint8Array {
  const b = tensor.toBytes();
  if (b.byteLength !== nbytes) throw new Error(`safetensors: tensor '${name}' gave ${b.byteLength} bytes, expected ${nbytes}`);
  return b;
}

/** The safetensors bytes of `tensors` (any device; copied to the CPU) with optional string metadata. */
export function serialize(tensors: TensorDict, metadata?: Record<string, string>): Uint8Array {
  assertLittleEndian();
  const p = plan(tensors, metadata, 'safetensors.serialize');
  const out = new Uint8Array(p.total);
  out.set(p.header, 0);
  let pos = p.header.byteLength;
  for (const it of p.items) {
    out.set(tensorBytes(it.name, it.tensor, it.nbytes), pos);
    pos += it.nbytes;
  }
  return out;
}

/**
 * Writes `tensors` to `path` as safetensors, atomically (temp file, fsync, rename, fsync of the
 * folder): after a crash `path` holds the old file or the new one. Tensors are streamed one at
 * a time, never all in memory at once.
 */
export function saveFile(tensors: TensorDict, path: string, metadata?: Record<string, string>): void {
  assertLittleEndian();
  const p = plan(tensors, metadata, `safetensors.saveFile(${path})`);
  function* chunks(): Generator<Uint8Array> {
    yield p.header;
    for (const it of p.items) yield tensorBytes(it.name, it.tensor, it.nbytes);
  }
  writeFileAtomic(path, chunks());
}
