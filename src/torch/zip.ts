/**
 * A small read-only ZIP reader (PKWARE APPNOTE 6.3: end of central directory, ZIP64 records,
 * central directory, local headers), enough for `torch.save` archives: PyTorch ≥ 1.6 writes
 * stored (uncompressed) entries with miniz, and ZIP64 records past 4 GB; deflated entries
 * (an archive re-zipped by hand) are inflated with node's zlib. Everything is checked against
 * the file's size before a byte is read, so a truncated or foreign file gives an error, never
 * a crash.
 */
import zlib from 'node:zlib';

export interface ZipEntry {
  name: string;
  method: number;
  compressedSize: number;
  size: number;
  /** Offset of the local file header. */
  localOffset: number;
}

/** `fail(detail)` throws the caller's error (it names the file). */
export type Fail = (detail: string) => never;

const EOCD = 0x06054b50, EOCD64 = 0x06064b50, LOC64 = 0x07064b50, CEN = 0x02014b50, LOC = 0x04034b50;

/** True when `bytes` start with a ZIP local file header ("PK\x03\x04"). */
export function isZip(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04;
}

/** The entries of the central directory, by name. */
export function readZipDirectory(buf: Buffer, fail: Fail): Map<string, ZipEntry> {
  const min = Math.max(0, buf.length - 22 - 0xffff);
  let eocd = -1;
  for (let i = buf.length - 22; i >= min; i--) if (buf.readUInt32LE(i) === EOCD) { eocd = i; break; }
  if (eocd < 0) fail('not a complete ZIP archive (no end-of-central-directory record): the file is truncated or not a torch.save zip');
  let count = buf.readUInt16LE(eocd + 10);
  let cdSize = buf.readUInt32LE(eocd + 12);
  let cdOffset = buf.readUInt32LE(eocd + 16);
  if (eocd >= 20 && buf.readUInt32LE(eocd - 20) === LOC64) {
    const at = Number(buf.readBigUInt64LE(eocd - 12));
    if (at + 56 > buf.length || buf.readUInt32LE(at) !== EOCD64) fail('damaged ZIP64 end-of-central-directory record');
    count = Number(buf.readBigUInt64LE(at + 32));
    cdSize = Number(buf.readBigUInt64LE(at + 40));
    cdOffset = Number(buf.readBigUInt64LE(at + 48));
  }
  if (cdOffset + cdSize > buf.length) fail(`central directory (${cdSize} bytes at ${cdOffset}) lies past the end of the ${buf.length}-byte file: the file is truncated`);
  const entries = new Map<string, ZipEntry>();
  let p = cdOffset;
  for (let i = 0; i < count; i++) {
    if (p + 46 > buf.length || buf.readUInt32LE(p) !== CEN) fail(`damaged central directory entry ${i}`);
    const method = buf.readUInt16LE(p + 10);
    let compressedSize = buf.readUInt32LE(p + 20);
    let size = buf.readUInt32LE(p + 24);
    const nameLen = buf.readUInt16LE(p + 28), extraLen = buf.readUInt16LE(p + 30), commentLen = buf.readUInt16LE(p + 32);
    let localOffset = buf.readUInt32LE(p + 42);
    const name = buf.toString('utf8', p + 46, p + 46 + nameLen);
    // ZIP64 extended information (0x0001): the 64-bit values, in this order, of the fields set to 0xFFFFFFFF
    let e = p + 46 + nameLen;
    const end = e + extraLen;
    while (e + 4 <= end) {
      const id = buf.readUInt16LE(e), len = buf.readUInt16LE(e + 2);
      if (id === 1) {
        let q = e + 4;
        if (size === 0xffffffff) { size = Number(buf.readBigUInt64LE(q)); q += 8; }
        if (compressedSize === 0xffffffff) { compressedSize = Number(buf.readBigUInt64LE(q)); q += 8; }
        if (localOffset === 0xffffffff) { localOffset = Number(buf.readBigUInt64LE(q)); }
      }
      e += 4 + len;
    }
    entries.set(name, { name, method, compressedSize, size, localOffset });
    p = end + commentLen;
  }
  return entries;
}

/** The uncompressed bytes of one entry (a view into `buf` when stored). */
export function readZipEntry(buf: Buffer, e: ZipEntry, fail: Fail): Buffer {
  const h = e.localOffset;
  if (h + 30 > buf.length || buf.readUInt32LE(h) !== LOC) fail(`damaged local header of '${e.name}'`);
  const start = h + 30 + buf.readUInt16LE(h + 26) + buf.readUInt16LE(h + 28);
  if (start + e.compressedSize > buf.length) fail(`entry '${e.name}' runs past the end of the file: the file is truncated`);
  const raw = buf.subarray(start, start + e.compressedSize);
  if (e.method === 0) return raw;
  if (e.method === 8) {
    try {
      return zlib.inflateRawSync(raw);
    } catch (cause) {
      return fail(`entry '${e.name}' does not inflate (${(cause as Error).message})`);
    }
  }
  return fail(`entry '${e.name}' uses ZIP compression method ${e.method}; only stored (0) and deflate (8) are read`);
}
