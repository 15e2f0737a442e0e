/**
 * A small read-only ZIP reader (PKWARE APPNOTE 6.3: end of central directory, ZIP64 records,
 * central directory, local headers), enough for `torch.save` archives: PyTorch ≥ 1.6 writes
 * stored (uncompressed) entries with miniz, and ZIP64 records past 4 GB; deflated entries
 * (an archive re-zipped by hand) are inflated with node's zlib. Only the central directory and
 * the entries asked for are read (by offset, so archives over 2 GB work), and everything is
 * checked against the file's size first: a truncated or foreign file gives an error, never a crash.
 */
import fs from 'node:fs';
import zlib from 'node:zlib';

/** Random access to the archive's bytes: a Buffer in memory or an open file (files over 2 GB). */
export interface ZipSource {
  readonly size: number;
  read(offset: number, length: number): Buffer;
}

/** Reads `fd` at offsets; a short read (the file shrank) returns fewer bytes, which the callers check. */
export function fileSource(fd: number): ZipSource {
  const size = fs.fstatSync(fd).size;
  return {
    size,
    read: (o, n) => {
      const len = Math.max(0, Math.min(n, size - o));
      const out = Buffer.allocUnsafe(len);
      let got = 0;
      while (got < len) {
        const k = fs.readSync(fd, out, got, len - got, o + got);
        if (k === 0) return out.subarray(0, got);
        got += k;
      }
      return out;
    },
  };
}

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
export function readZipDirectory(src: ZipSource, fail: Fail): Map<string, ZipEntry> {
  const tailStart = Math.max(0, src.size - 22 - 0xffff - 20);
  const tail = src.read(tailStart, src.size - tailStart);
  let eocd = -1;
  for (let i = tail.length - 22; i >= 0; i--) if (tail.readUInt32LE(i) === EOCD) { eocd = i; break; }
  if (eocd < 0) fail('not a complete ZIP archive (no end-of-central-directory record): the file is truncated or not a torch.save zip');
  let count = tail.readUInt16LE(eocd + 10);
  let cdSize = tail.readUInt32LE(eocd + 12);
  let cdOffset = tail.readUInt32LE(eocd + 16);
  if (eocd >= 20 && tail.readUInt32LE(eocd - 20) === LOC64) {
    const at = Number(tail.readBigUInt64LE(eocd - 12));
    const rec = src.read(at, 56);
    if (rec.length < 56 || rec.readUInt32LE(0) !== EOCD64) fail('damaged ZIP64 end-of-central-directory record');
    count = Number(rec.readBigUInt64LE(32));
    cdSize = Number(rec.readBigUInt64LE(40));
    cdOffset = Number(rec.readBigUInt64LE(48));
  }
  if (cdOffset + cdSize > src.size) fail(`central directory (${cdSize} bytes at ${cdOffset}) lies past the end of the ${src.size}-byte file: the file is truncated`);
  const buf = src.read(cdOffset, cdSize);
  const entries = new Map<string, ZipEntry>();
  let p = 0;
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

/** The uncompressed bytes of one entry. */
export function readZipEntry(src: ZipSource, e: ZipEntry, fail: Fail): Buffer {
  const h = e.localOffset;
  const loc = src.read(h, 30);
  if (loc.length < 30 || loc.readUInt32LE(0) !== LOC) fail(`damaged local header of '${e.name}'`);
  const start = h + 30 + loc.readUInt16LE(26) + loc.readUInt16LE(28);
  if (start + e.compressedSize > src.size) fail(`entry '${e.name}' runs past the end of the file: the file is truncated`);
  const raw = src.read(start, e.compressedSize);
  if (raw.length < e.compressedSize) fail(`entry '${e.name}' could not be read in full: the file is truncated`);
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
