/** NumPy `.npy` (format 1.0) writer and reader for float32/float64/int64/int32/uint8 arrays. */
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from './io.js';
import { fromBytes } from './creation.js';
import type { Tensor } from './tensor.js';
import type { DType } from './dtype.js';

const DESCR: Partial<Record<DType, string>> = { float32: '<f4', float64: '<f8', int64: '<i8', int32: '<i4', int16: '<i2', int8: '|i1', uint8: '|u1', bool: '|b1', float16: '<f2' };

/** The bytes of a `.npy` file holding `t` (C order). */
export function toNpy(t: Tensor): Uint8Array {
  const descr = DESCR[t.dtype];
  if (descr === undefined) throw new TypeError(`toNpy: dtype ${t.dtype} has no .npy equivalent; convert with .to('float32')`);
  const shape = t.shape;
  const shapeStr = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeStr}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const data = t.toBytes();
  const out = new Uint8Array(10 + header.length + data.byteLength);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0], 0);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(data, 10 + header.length);
  return out;
}

/** Writes `t` as a `.npy` file, atomically. */
export function saveNpy(t: Tensor, path: string): void {
  writeFileAtomic(path, toNpy(t));
}

/** Reads a `.npy` file (format 1.x/2.x, C order, little-endian) into a tensor. */
export function loadNpy(path: string): Tensor {
  const b = readFileSync(path);
  if (b.length < 10 || b[0] !== 0x93 || b.toString('latin1', 1, 6) !== 'NUMPY') throw new Error(`${path} is not a .npy file (bad magic)`);
  const major = b[6]!;
  const hlen = major === 1 ? b.readUInt16LE(8) : b.readUInt32LE(8);
  const off = major === 1 ? 10 : 12;
  const header = b.toString('latin1', off, off + hlen);
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1]?.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  if (/'fortran_order':\s*True/.test(header)) throw new Error(`${path}: Fortran-order arrays are not supported`);
  const dtype = (Object.entries(DESCR).find(([, d]) => d === descr)?.[0]) as DType | undefined;
  if (!dtype || !shape) throw new Error(`${path}: unsupported .npy header ${header.trim()}`);
  return fromBytes(new Uint8Array(b.buffer, b.byteOffset + off + hlen, b.length - off - hlen), dtype, shape);
}
