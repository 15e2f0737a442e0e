// Tensor basics: creation, every dtype in and out, conversions, printing, seeds, threads, workers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { spawnSync } from 'node:child_process';
import * as torch from '../src/torch/index.js';

test('torch.tensor from numbers, nested arrays and typed arrays', () => {
  const t = torch.tensor([[1, 2, 3], [4, 5, 6]]);
  assert.deepEqual(t.shape, [2, 3]);
  assert.equal(t.dtype, 'float32');
  assert.deepEqual(t.tolist(), [[1, 2, 3], [4, 5, 6]]);
  assert.equal(torch.tensor([true, false]).dtype, 'bool');
  const big = torch.tensor(new BigInt64Array([1n, -2n, 9007199254740993n]));
  assert.equal(big.dtype, 'int64');
  assert.deepEqual([...big.toBigInt64Array()], [1n, -2n, 9007199254740993n]);
  const img = torch.tensor(new Uint8Array(2 * 3 * 4).map((_, i) => i), { shape: [2, 3, 4] });
  assert.equal(img.dtype, 'uint8');
  assert.equal(img.get(1).get(2).get(3).item(), 23);
  assert.throws(() => torch.tensor([[1, 2], [3]]), /ragged/);
  assert.equal(torch.tensor([1, 2], { dtype: 'int32' }).dtype, 'int32');
});

test('every dtype round-trips through its typed array', () => {
  const values = [0, 1, 2, 100];
  for (const dtype of torch.DTYPES) {
    const t = torch.tensor(values, { dtype });
    assert.equal(t.dtype, dtype);
    const expected = dtype === 'bool' ? [0, 1, 1, 1] : values;
    assert.deepEqual(t.toArray(), expected, dtype);
    assert.equal(t.toBytes().byteLength, 4 * torch.itemSize[dtype]);
  }
  assert.ok(torch.tensor([1.5]).to('float16').toFloat32Array()[0] === 1.5);
  assert.equal(torch.tensor([1.7]).to('int64').item(), 1);
});

test('creation functions and shapes', () => {
  assert.deepEqual(torch.zeros([2, 3]).shape, [2, 3]);
  assert.deepEqual(torch.full([2], 7).toArray(), [7, 7]);
  assert.deepEqual(torch.arange(5).toArray(), [0, 1, 2, 3, 4]);
  assert.equal(torch.arange(5).dtype, 'int64');
  assert.equal(torch.arange(0, 1, 0.25).dtype, 'float32');
  assert.deepEqual(torch.linspace(0, 1, 3).toArray(), [0, 0.5, 1]);
  assert.deepEqual(torch.eye(2).toArray(), [1, 0, 0, 1]);
  const r = torch.randint(3, 7, [1000]).toArray();
  assert.ok(r.every((v) => v >= 3 && v < 7));
  assert.deepEqual(torch.randperm(10).sort().values.toArray(), [...Array(10).keys()]);
  const u = torch.rand([1000]).toArray();
  assert.ok(u.every((v) => v >= 0 && v < 1));
  const x = torch.randn([2, 3, 4]);
  assert.deepEqual(x.permute(2, 0, 1).shape, [4, 2, 3]);
  assert.deepEqual(x.flatten(1).shape, [2, 12]);
  assert.deepEqual(torch.cat([x, x], 1).shape, [2, 6, 4]);
  assert.deepEqual(torch.stack([x, x]).shape, [2, 2, 3, 4]);
  assert.equal(x.split(1, 2).length, 4);
  assert.equal(x.chunk(3, 1).length, 3);
  assert.deepEqual(x.expand(5, 2, 3, 4).shape, [5, 2, 3, 4]);
  assert.deepEqual(x.repeat(1, 2, 1).shape, [2, 6, 4]);
  assert.equal(x.size(-1), 4);
  const cl = torch.randn([2, 3, 4, 5]).contiguous('channelsLast');
  assert.ok(cl.isContiguous('channelsLast') && !cl.isContiguous());
});

test('in-place ops and indexing', () => {
  const t = torch.zeros([3]);
  t.add_(1).mul_(3).add_(torch.tensor([1, 2, 3]), { alpha: 2 });
  assert.deepEqual(t.toArray(), [5, 7, 9]);
  const m = torch.arange(6).view(2, 3);
  assert.deepEqual(m.index([torch.tensor(new BigInt64Array([1n, 0n]))]).tolist(), [[3, 4, 5], [0, 1, 2]]);
  assert.deepEqual(m.index([m.gt(3)]).toArray(), [4, 5]);
  assert.deepEqual(m.slice(1, 1).tolist(), [[1, 2], [4, 5]]);
  assert.deepEqual(m.gather(1, torch.tensor(new BigInt64Array([2n, 0n]), { shape: [2, 1] })).toArray(), [2, 3]);
  const z = torch.zeros([2, 3], { dtype: 'int64' });
  z.scatterAdd_(1, torch.tensor(new BigInt64Array([0n, 0n, 1n, 2n, 2n, 2n]), { shape: [2, 3] }), torch.onesLike(z));
  assert.deepEqual(z.tolist(), [[2, 1, 0], [0, 0, 3]]);
  const { values, indices } = torch.tensor([3, 1, 4, 1, 5]).topk(2);
  assert.deepEqual(values.toArray(), [5, 4]);
  assert.deepEqual(indices.toArray(), [4, 2]);
});

test('toString is readable', () => {
  assert.equal(torch.tensor([1, 2.5]).toString(), 'tensor([1.0000, 2.5000], shape=[2], dtype=float32)');
  assert.match(torch.zeros([100, 100]).toString(), /<10000 elements>, shape=\[100, 100\]/);
});

test('a manual seed makes random tensors reproducible; rng state can be saved and restored', () => {
  torch.manualSeed(42);
  const a = torch.randn([5]).toArray();
  const state = torch.getRngState();
  const b = torch.randn([5]).toArray();
  torch.manualSeed(42);
  assert.deepEqual(torch.randn([5]).toArray(), a);
  torch.setRngState(state);
  assert.deepEqual(torch.randn([5]).toArray(), b);
});

test('threads default to the machine cores and can be changed', () => {
  const n = torch.getNumThreads();
  assert.ok(n >= 1);
  torch.setNumThreads(1);
  assert.equal(torch.getNumThreads(), 1);
  torch.setNumThreads(n);
  assert.match(torch.buildInfo().torchVersion, /^\d+\.\d+/);
});

test('the addon loads and computes in worker threads', async () => {
  const url = new URL('../src/torch/index.js', import.meta.url).href;
  const code = `
    const { parentPort } = require('node:worker_threads');
    import(${JSON.stringify(url)}).then((torch) => {
      const x = torch.tensor([1, 2, 3]);
      parentPort.postMessage(x.mul(x).sum().item());
    });`;
  const results = await Promise.all([0, 1].map(() => new Promise<number>((resolve, reject) => {
    const w = new Worker(code, { eval: true });
    w.once('message', (v) => { resolve(v as number); void w.terminate(); });
    w.once('error', reject);
  })));
  assert.deepEqual(results, [14, 14]);
});

test('frombuffer shares memory with the typed array, without a copy', () => {
  const arr = new Float32Array([1, 2, 3, 4]);
  const t = torch.frombuffer(arr, { shape: [2, 2] });
  arr[0] = 10;
  assert.equal(t.get(0).get(0).item(), 10);
  t.mul_(2);
  assert.deepEqual([...arr], [20, 4, 6, 8]);
  const bytes = new Uint8Array(8);
  assert.equal(torch.frombuffer(bytes.buffer, { dtype: 'int64' }).shape[0], 1);
  assert.throws(() => torch.frombuffer(new Float32Array(3), { shape: [4] }), /needs 16 bytes, got 12/);
  assert.throws(() => torch.frombuffer(new Uint8Array(9).subarray(1), { dtype: 'float32', shape: [2] }), /byte offset 1/);
});

test('a frombuffer tensor keeps its memory alive after the array is collected', () => {
  const code = `
    import(${JSON.stringify(new URL('../src/torch/index.js', import.meta.url).href)}).then(async (torch) => {
      let t = (() => torch.frombuffer(new Float64Array(1 << 20).fill(7)))();
      for (let i = 0; i < 5; i++) { global.gc(); await new Promise((r) => setImmediate(r)); new Float64Array(1 << 20).fill(1); }
      const s = t.sum().item();
      t.dispose(); t = null;
      for (let i = 0; i < 3; i++) { global.gc(); torch.zeros([1]); await new Promise((r) => setImmediate(r)); }
      console.log(s);
    });`;
  const r = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', code], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(Number(r.stdout.trim()), 7 * (1 << 20));
});
