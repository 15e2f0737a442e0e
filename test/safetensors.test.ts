// safetensors I/O (src/torch/safetensors.ts) and atomic writes (src/torch/io.ts).
//
// Format facts checked here come from the spec (https://huggingface.co/docs/safetensors) and
// the byte strings that the reference implementation's own Python tests assert
// (bindings/python/tests/test_simple.py in huggingface/safetensors).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import * as torch from '../src/torch/index.js';
import type { Tensor } from '../src/torch/index.js';
import { saveFile, loadFile, serialize, deserialize, readHeader, SafetensorsError } from '../src/torch/safetensors.js';
import { writeFileAtomic, isAtomicTempFile } from '../src/torch/io.js';

const dir = mkdtempSync(join(tmpdir(), 'dyad-safetensors-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const tmp = (name = `f${n++}.safetensors`): string => join(dir, name);

const latin1 = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));
/** A file from a header string (as written, no padding added) and data bytes. */
function rawFile(header: string, data: Uint8Array | number[] = [], lengthOverride?: bigint): Uint8Array {
  const h = Buffer.from(header, 'utf8');
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, lengthOverride ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

test('serialize matches the reference writer byte for byte (padding with spaces to 8)', () => {
  const zeros = torch.zeros([2, 2], { dtype: 'int32' });
  const want = latin1('@\x00\x00\x00\x00\x00\x00\x00{"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}    ' + '\x00'.repeat(16));
  assert.deepEqual(serialize({ test: zeros }), want);
  const path = tmp();
  saveFile(new Map([['test', zeros]]), path);
  assert.deepEqual(new Uint8Array(readFileSync(path)), want);
  // Reference ordering: dtype alignment descending, then name; __metadata__ first.
  const bytes = serialize({ b: torch.zeros([1]), a: torch.zeros([1]), c: torch.zeros([1], { dtype: 'int64' }), u: torch.zeros([1], { dtype: 'uint8' }) }, { k: 'v' });
  const len = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal(len % 8, 0);
  assert.equal(Buffer.from(bytes.subarray(8, 8 + len)).toString().trimEnd(),
    '{"__metadata__":{"k":"v"},"c":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},' +
    '"b":{"dtype":"F32","shape":[1],"data_offsets":[12,16]},"u":{"dtype":"U8","shape":[1],"data_offsets":[16,17]}}');
});

test('reads an old-style unpadded header with metadata (reference test vector)', () => {
  const bytes = latin1('f\x00\x00\x00\x00\x00\x00\x00{"__metadata__":{"framework":"pt"},"test1":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}       ' + '\x00'.repeat(16));
  const { tensors, metadata } = deserialize(bytes);
  assert.deepEqual(metadata, { framework: 'pt' });
  assert.deepEqual([...tensors.keys()], ['test1']);
  const t = tensors.get('test1')!;
  assert.equal(t.dtype, 'int32');
  assert.deepEqual(t.shape, [2, 2]);
  assert.deepEqual(t.toArray(), [0, 0, 0, 0]);
});

test('round trip of every dtype, scalars, empty and non-contiguous tensors, names and metadata', () => {
  torch.scope(() => {
    const src: Record<string, Tensor> = {
      'f32.weight': torch.tensor([[1.5, -2.25, 3], [4, 5, 6]]),
      'f64': torch.tensor([Math.PI, -1e300], { dtype: 'float64' }),
      'f16': torch.tensor([0.5, -65504, 1e-3]).to('float16'),
      'bf16': torch.tensor([1, -2.5, 3e38]).to('bfloat16'),
      'i64': torch.tensor(new BigInt64Array([2n ** 62n, -7n])),
      'i32': torch.tensor([-2147483648, 7], { dtype: 'int32' }),
      'i16': torch.tensor([-32768, 32767], { dtype: 'int16' }),
      'i8': torch.tensor([-128, 127], { dtype: 'int8' }),
      'u8': torch.tensor([0, 255], { dtype: 'uint8' }),
      'bool': torch.tensor([true, false, true]),
      'scalar': torch.scalarTensor(42),
      'empty': torch.zeros([0, 3]),
      'transposed': torch.arange(6, undefined, 1, { dtype: 'float32' }).reshape(2, 3).t(),
      '0': torch.ones([1]),
      'layers.0.ünïcødé': torch.ones([2], { dtype: 'int32' }),
    };
    const meta = { format: 'pt', epoch: '3', note: 'ünïcødé "quoted"' };
    const path = tmp();
    saveFile(src, path, meta);
    const { tensors, metadata } = loadFile(path);
    assert.deepEqual(metadata, meta);
    assert.deepEqual([...tensors.keys()].sort(), Object.keys(src).sort());
    for (const [name, t] of Object.entries(src)) {
      const got = tensors.get(name)!;
      assert.equal(got.dtype, t.dtype, name);
      assert.deepEqual(got.shape, t.shape, name);
      if (t.dtype === 'int64') assert.deepEqual(got.toBigInt64Array(), t.toBigInt64Array(), name);
      else assert.deepEqual(got.toArray(), t.toArray(), name);
    }
    assert.deepEqual(tensors.get('transposed')!.toArray(), [0, 3, 1, 4, 2, 5]);
    // The file is exactly serialize()'s bytes, and deserialize() reads them back.
    const bytes = serialize(src, meta);
    assert.deepEqual(new Uint8Array(readFileSync(path)), bytes);
    assert.deepEqual(deserialize(bytes).tensors.get('f16')!.toArray(), src.f16!.toArray());
    // Header only: data order is the reference's (dtype alignment descending, then name).
    const h = readHeader(path);
    assert.deepEqual([...h.tensors.values()].map((e) => e.dtype),
      ['int64', 'float64', 'float32', 'float32', 'float32', 'float32', 'float32', 'int32', 'int32', 'bfloat16', 'float16', 'int16', 'int8', 'uint8', 'bool']);
    assert.deepEqual([...h.tensors.keys()].slice(2, 7), ['0', 'empty', 'f32.weight', 'scalar', 'transposed']);
    assert.equal(h.dataStart % 8, 0);
  });
});

test('a file written byte by byte from the spec loads to the right values', () => {
  // Data section: I64 [-3] at 0..8, F32 [1.5, -2] at 8..16, BF16 [1, -2] at 16..20, BOOL at 20..23,
  // zero-size F32 at 23..23. Header keys in no particular order, __metadata__ last, no padding.
  const data = new Uint8Array(23);
  const dv = new DataView(data.buffer);
  dv.setBigInt64(0, -3n, true);
  dv.setFloat32(8, 1.5, true);
  dv.setFloat32(12, -2, true);
  dv.setUint16(16, 0x3f80, true); // bfloat16 1.0
  dv.setUint16(18, 0xc000, true); // bfloat16 -2.0
  data.set([1, 0, 1], 20);
  const header = '{"w":{"dtype":"F32","shape":[2,1],"data_offsets":[8,16]},"none":{"dtype":"F32","shape":[0],"data_offsets":[23,23]},' +
    '"mask":{"dtype":"BOOL","shape":[3],"data_offsets":[20,23]},"step":{"dtype":"I64","shape":[],"data_offsets":[0,8]},' +
    '"h":{"dtype":"BF16","shape":[2],"data_offsets":[16,20]},"__metadata__":{"a":"b"}}';
  const path = tmp();
  writeFileSync(path, rawFile(header, data));
  torch.scope(() => {
    const { tensors, metadata } = loadFile(path);
    assert.deepEqual(metadata, { a: 'b' });
    assert.deepEqual([...tensors.keys()], ['step', 'w', 'h', 'mask', 'none']); // data order
    assert.deepEqual(tensors.get('w')!.shape, [2, 1]);
    assert.deepEqual(tensors.get('w')!.toArray(), [1.5, -2]);
    assert.equal(tensors.get('step')!.dtype, 'int64');
    assert.deepEqual(tensors.get('step')!.shape, []);
    assert.equal(tensors.get('step')!.item(), -3);
    assert.equal(tensors.get('h')!.dtype, 'bfloat16');
    assert.deepEqual(tensors.get('h')!.toArray(), [1, -2]);
    assert.deepEqual(tensors.get('mask')!.tolist(), [1, 0, 1]);
    assert.equal(tensors.get('mask')!.dtype, 'bool');
    assert.deepEqual(tensors.get('none')!.shape, [0]);
  });
});

test('corrupt files throw clear errors that name the file, never garbage tensors', () => {
  const good = serialize({ a: torch.tensor([1, 2, 3, 4]), b: torch.tensor([5, 6]) }, { k: 'v' });
  const cases: [string, Uint8Array, RegExp][] = [
    ['truncated data', good.subarray(0, good.length - 3), /run past the end of the data .* truncated/],
    ['truncated header', good.subarray(0, 20), /header length \d+ exceeds the 12 bytes after the length field/],
    ['too short', good.subarray(0, 5), /5 bytes, too short/],
    ['length too large', rawFile('{}', [], 10n ** 12n), /header length 1000000000000 exceeds/],
    ['bad json', rawFile('{"a":{"dtype":"F32",', [0, 0, 0, 0]), /header is not valid JSON/],
    ['not an object', rawFile('[1,2,3] '), /header JSON is not an object/],
    ['not utf-8', rawFile('{"a?":1}').map((b, i) => (i === 11 ? 0xff : b)), /header is not valid UTF-8/],
    ['unknown dtype', rawFile('{"a":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}}', [0, 0, 0, 0]), /tensor 'a': unknown dtype 'F33'/],
    ['unsupported dtype', rawFile('{"a":{"dtype":"U32","shape":[1],"data_offsets":[0,4]}}', [0, 0, 0, 0]), /dtype U32 is not supported/],
    ['shape/offsets mismatch', rawFile('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}', [0, 0, 0, 0]), /shape \[2\] of F32 needs 8 bytes but data_offsets \[0, 4\] hold 4/],
    ['overlap', rawFile('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}', new Array(12).fill(0)), /tensors 'a' and 'b' overlap/],
    ['gap', rawFile('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}', new Array(12).fill(0)), /bytes \[4, 8\) of the data belong to no tensor/],
    ['trailing bytes', rawFile('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', new Array(9).fill(0)), /5 bytes after the last tensor/],
    ['out of range', rawFile('{"a":{"dtype":"F32","shape":[1],"data_offsets":[100,104]}}', [0, 0, 0, 0]), /run past the end/],
    ['reversed offsets', rawFile('{"a":{"dtype":"U8","shape":[0],"data_offsets":[4,0]}}', [0, 0, 0, 0]), /is not \[begin, end\]/],
    ['fractional offsets', rawFile('{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,0.5]}}', [0]), /is not \[begin, end\]/],
    ['bad shape', rawFile('{"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}}', [0]), /shape \[-1\] is not a list of non-negative integers/],
    ['missing dtype', rawFile('{"a":{"shape":[1],"data_offsets":[0,1]}}', [0]), /tensor 'a': missing dtype/],
    ['non-string metadata', rawFile('{"__metadata__":{"epoch":3}}'), /__metadata__ value 'epoch' is 3, not a string/],
    ['metadata not object', rawFile('{"__metadata__":"x"}'), /__metadata__ must be an object/],
    ['bad bool', rawFile('{"m":{"dtype":"BOOL","shape":[2],"data_offsets":[0,2]}}', [1, 2]), /BOOL byte 1 is 2/],
  ];
  const before = torch.memory().count;
  for (const [what, bytes, re] of cases) {
    const path = tmp(`corrupt-${what.replace(/\W/g, '_')}.safetensors`);
    writeFileSync(path, bytes);
    assert.throws(() => loadFile(path), (e: unknown) => {
      assert.ok(e instanceof SafetensorsError, `${what}: ${e}`);
      assert.match(e.message, re, what);
      assert.ok(e.message.startsWith(path + ': '), `${what}: the message names the file: ${e.message}`);
      assert.equal(e.file, path);
      return true;
    });
    assert.throws(() => deserialize(bytes, { source: 'model.bin' }), (e: unknown) => e instanceof SafetensorsError && e.message.startsWith('model.bin: '));
  }
  assert.equal(torch.memory().count, before, 'no tensor is left behind by a failed load');
  assert.throws(() => loadFile(join(dir, 'missing.safetensors')), /missing\.safetensors: no such file/);
});

test('writing refuses bad input', () => {
  const t = torch.zeros([1]);
  assert.throws(() => serialize({ __metadata__: t }), /'__metadata__' is reserved/);
  assert.throws(() => serialize({ a: t }, { epoch: 3 as unknown as string }), /metadata 'epoch' is a number/);
  assert.throws(() => serialize({ a: [1, 2] as unknown as Tensor }), /'a' is not a Tensor/);
  const gone = torch.zeros([1]);
  gone.dispose();
  assert.throws(() => saveFile({ gone }, tmp()), /tensor 'gone' was disposed/);
});

test('atomic write: after a crash mid-write the target holds the old content and still loads', () => {
  const path = tmp('model.safetensors');
  saveFile({ w: torch.tensor([1, 2, 3]) }, path, { version: 'old' });
  // A real crash: a child process starts replacing the file and is SIGKILLed halfway.
  const io = fileURLToPath(new URL('../src/torch/io.js', import.meta.url));
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', `
    import { writeFileAtomic } from ${JSON.stringify(io)};
    function* chunks() { yield new Uint8Array(1 << 16).fill(7); process.kill(process.pid, 'SIGKILL'); yield new Uint8Array(8); }
    writeFileAtomic(${JSON.stringify(path)}, chunks());
  `]);
  assert.equal(child.signal, 'SIGKILL', child.stderr.toString());
  const left = readdirSync(dir).filter((f) => f.startsWith('.model.safetensors.'));
  assert.equal(left.length, 1, 'the interrupted temp file is left beside the target');
  assert.ok(isAtomicTempFile(left[0]!));
  assert.equal(readFileSync(join(dir, left[0]!)).length, 1 << 16);
  const { tensors, metadata } = loadFile(path);
  assert.deepEqual(metadata, { version: 'old' });
  assert.deepEqual(tensors.get('w')!.toArray(), [1, 2, 3]);
  rmSync(join(dir, left[0]!));

  // A failure inside this process (a tensor disposed mid-way) leaves the old file and no temp file.
  const bad = torch.zeros([2]);
  bad.dispose();
  assert.throws(() => writeFileAtomic(path, (function* () { yield new Uint8Array(10); yield bad.toBytes(); })()), /cannot write .*model\.safetensors/);
  assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith('.model.')), []);
  assert.deepEqual(loadFile(path).metadata, { version: 'old' });

  // A successful replacement: new content, nothing left over.
  saveFile({ w: torch.tensor([4, 5]) }, path, { version: 'new' });
  assert.deepEqual(loadFile(path).metadata, { version: 'new' });
  assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith('.model.')), []);
  writeFileAtomic(join(dir, 'config.json'), '{"a":1}');
  assert.equal(readFileSync(join(dir, 'config.json'), 'utf8'), '{"a":1}');
  assert.throws(() => writeFileAtomic(join(dir, 'no-such-dir', 'x.json'), 'x'), /cannot write .*no-such-dir.*ENOENT/);
  truncateSync(path, 10);
  assert.throws(() => loadFile(path), /model\.safetensors: .*truncated/);
});
