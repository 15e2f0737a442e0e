// Error paths: libtorch's messages reach JS as TorchError, bad input never crashes the process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import * as torch from '../src/torch/index.js';
import { N, packageRoot } from '../src/torch/native.js';
import { tempDir } from './helpers/tmp.js';

const F = torch.functional;

test('a shape mismatch throws TorchError carrying libtorch message with the shapes', () => {
  const a = torch.ones([2, 3]);
  assert.throws(() => a.matmul(torch.ones([2, 3])), (e: Error) => {
    assert.ok(e instanceof torch.TorchError);
    assert.match(e.message, /2x3 and 2x3/);
    return true;
  });
  assert.throws(() => a.add(torch.ones([4])), /size of tensor a \(3\) must match the size of tensor b \(4\)/);
  assert.throws(() => a.view(5), /shape '\[5\]' is invalid for input of size 6/);
  assert.throws(() => F.conv2d(torch.ones([1, 2, 4, 4]), torch.ones([1, 3, 3, 3])), /expected input\[1, 2, 4, 4\] to have 3 channels/);
});

test('using a disposed tensor throws a clear error', () => {
  const t = torch.ones([2]);
  t.dispose();
  t.dispose(); // twice is fine
  assert.ok(t.isDisposed);
  assert.throws(() => t.add(1), torch.DisposedTensorError);
  assert.throws(() => torch.ones([2]).add(t), /disposed/);
  const kept = torch.scope(() => {
    const inner = torch.ones([1]);
    return { inner, leaked: torch.zeros([1]).mul(1) };
  });
  assert.equal(kept.inner.isDisposed, false);
  let escaped: torch.Tensor | undefined;
  torch.scope(() => void (escaped = torch.ones([1])));
  assert.throws(() => escaped!.item(), /end of the torch.scope/);
});

test('wrong dtypes and bad arguments are errors, not crashes', () => {
  assert.throws(() => torch.zeros([2], { dtype: 'float8' as never }), /unknown dtype 'float8'/);
  assert.throws(() => F.crossEntropy(torch.zeros([2, 3]), torch.tensor([0.5, 1.5])), torch.TorchError);
  assert.throws(() => torch.ones([2, 2]).indexSelect(0, torch.tensor([0.0])), /index_select\(\): Expected dtype int32 or int64/);
  assert.throws(() => torch.ones([2]).item(), /only one-element tensors/);
  // raw addon calls with garbage never crash the process (`raw`: the addon without its types)
  const raw = N as unknown as Record<string, (...args: unknown[]) => unknown>;
  assert.throws(() => raw.add!({}, 1, 1), /expected a Tensor/);
  assert.throws(() => raw.add!(), /add: argument \d must be/);
  assert.throws(() => raw.zeros!('x'), /integer array/);
  assert.throws(() => N.zeros!([1.5]), /integer array/);
  assert.throws(() => N.fromBuffer!(new Float32Array(3), 'float32', [4]), /needs 16 bytes, got 12/);
  assert.throws(() => N.fromBuffer!(new Float32Array(3), 'float32', [-3]), /negative/);
  assert.throws(() => N.toDevice!(torch.ones([1]).handle, 'tpu:9'), /unknown device|Expected one of/);
  assert.throws(() => torch.ones([3]).narrow(0, 2, 5), /start \(2\) \+ length \(5\) exceeds dimension size \(3\)/);
  assert.throws(() => torch.ones([3]).get(7), /out of range/);
  assert.throws(() => torch.setNumThreads(0), /at least 1 thread/);
});

test('a missing libtorch gives an error listing the three ways to provide it', () => {
  const empty = tempDir('nolibtorch');
  const r = spawnSync(process.execPath, [path.join(packageRoot(), 'native', 'find-libtorch.mjs')], {
    env: { ...process.env, LIBTORCH: path.join(empty, 'missing'), LIBTORCH_USE_PYTORCH: '', LIBTORCH_SYSTEM_DIRS: empty },
    encoding: 'utf8',
  });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /could not find libtorch/);
  assert.match(r.stderr, /LIBTORCH=/);
  assert.match(r.stderr, /LIBTORCH_USE_PYTORCH=1/);
  assert.match(r.stderr, /apt-get install libtorch-dev/);
});

test('a missing addon gives an error that says how to build it', () => {
  const code = "import('" + path.join(packageRoot(), 'dist', 'src', 'torch', 'index.js') + "').catch(e => { console.error(e.message); process.exit(3) })";
  const r = spawnSync(process.execPath, ['-e', code], { env: { ...process.env, DYAD_ADDON: '/nonexistent/dyad.node' }, encoding: 'utf8' });
  assert.equal(r.status, 3);
  assert.match(r.stderr, /addon is not built/);
  assert.match(r.stderr, /npm run build:native/);
});
