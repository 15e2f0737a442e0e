// The CUDA path. Where this libtorch has no CUDA (Debian's is CPU-only) the CUDA cases skip with
// the reason printed, and what can be checked without a GPU runs: `--device cuda` fails at once
// with the fix, `--device cpu` trains exactly as the default, pinned memory is refused clearly.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import * as torch from '../src/torch/index.js';
import * as cuda from '../src/distributed/cuda.js';
import { isDyadError } from '../src/errors.js';
import { train } from '../src/engine/trainer.js';
import { SSL_METHODS } from '../src/methods/index.js';
import { packageRoot } from '../src/torch/native.js';
import { lcg } from './helpers/rng.js';
import { writeShapeFolder } from './helpers/images.js';
import { tempDir } from './helpers/tmp.js';

const HAS_CUDA = cuda.isAvailable();
const skip = HAS_CUDA ? false : 'no CUDA: this libtorch is CPU-only (cuda.isAvailable() false)';
if (skip) console.log(`# CUDA cases skip: ${skip}`);

const root = tempDir('cuda');
const dataDir = path.join(root, 'shapes');
before(async () => { await writeShapeFolder(dataDir, 16, lcg(3)); });
const base = { data: dataDir, imageSize: 16, channels: 1 as const, width: 8, batch: 16, threads: 1, minScale: 0.5, lr: 0.3, method: 'simclr' as const };

test('dyad train --device cuda: fails at once naming the flag and the fix without CUDA (runs where CUDA is, otherwise)', () => {
  const cli = path.join(packageRoot(), 'bin', 'dyad.js');
  const r = spawnSync(process.execPath, [cli, 'train', '--device', HAS_CUDA ? 'cuda:999' : 'cuda', '--data', dataDir, '--epochs', '1'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 1, r.stderr);
  if (!HAS_CUDA) {
    assert.match(r.stderr, /dyad: error: --device cuda .*cuda\.isAvailable\(\) is false.*LIBTORCH_USE_PYTORCH=1 npm run build:native.*--device cpu/s);
    assert.doesNotMatch(r.stderr, /epoch 1/, 'no training started');
  }
  const bad = spawnSync(process.execPath, [cli, 'train', '--device', 'gpu', '--data', dataDir], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /device must be 'cpu', 'cuda' or 'cuda:N', got 'gpu'/);
});

test('device cpu trains exactly as the default; pinned memory and CUDA copies are refused clearly without CUDA', async () => {
  const run = async (extra: object, out: string): Promise<number[]> => {
    const losses: number[] = [];
    await train({ ...base, ...extra, epochs: 1, knnEvery: 0, maxStepsPerEpoch: 3, out: path.join(root, out) }, { silent: true, onStepEnd: (s) => { losses.push(s.loss); } });
    return losses;
  };
  const plain = await run({}, 'default');
  const cpu = await run({ device: 'cpu' }, 'cpu');
  assert.equal(plain.length, 3);
  assert.deepEqual(cpu, plain);
  torch.scope(() => {
    const t = torch.randn([4]);
    assert.equal(t.isPinned(), false);
    assert.equal(t.to('cpu', { nonBlocking: true }).device, 'cpu');
    if (!HAS_CUDA) {
      assert.throws(() => t.pinMemory(), (e) => isDyadError(e, 'DIST_UNAVAILABLE') && /pinMemory: .*cuda\.isAvailable\(\) is false/.test((e as Error).message));
      assert.throws(() => cuda.synchronize(), /no CUDA device/);
    }
  });
});

test('CUDA: tensor .to(cuda) round trip, pinned non-blocking copy', { skip }, () => {
  torch.scope(() => {
    const x = torch.randn([3, 5]);
    const g = x.to('cuda');
    assert.equal(g.device, 'cuda:0');
    const back = g.mul(2).cpu();
    assert.equal(back.device, 'cpu');
    assert.ok(back.sub(x.mul(2)).abs().max().item() < 1e-6);
    const pinned = x.pinMemory();
    assert.equal(pinned.isPinned(), true);
    const nb = pinned.to('cuda', { nonBlocking: true });
    cuda.synchronize();
    assert.ok(nb.cpu().sub(x).abs().max().item() === 0);
    assert.ok(cuda.deviceCount() >= 1);
  });
});

test('CUDA: a training step with device cuda (and the kNN monitor) gives a finite loss', { skip }, async () => {
  const r = await train({ ...base, device: 'cuda', epochs: 1, maxStepsPerEpoch: 2, knnEvery: 1, knnK: 5, out: path.join(root, 'cuda') }, { silent: true });
  assert.ok(Number.isFinite(r.metrics[0]!.loss));
  assert.ok(r.metrics[0]!.knn_top1! >= 0);
  assert.equal(r.method.parameters()[0]!.device, 'cuda:0');
});

test('CUDA: autocast fp16 gives float16 matmuls; --amp fp16 trains with the GradScaler', { skip }, async () => {
  torch.scope(() => {
    const a = torch.randn([8, 8]).to('cuda');
    const y = torch.autocast({ deviceType: 'cuda', dtype: 'float16' }, () => a.matmul(a));
    assert.equal(y.dtype, 'float16');
    assert.equal(a.matmul(a).dtype, 'float32');
  });
  const r = await train({ ...base, device: 'cuda', amp: 'fp16', epochs: 1, maxStepsPerEpoch: 3, knnEvery: 0, out: path.join(root, 'fp16') }, { silent: true });
  assert.ok(Number.isFinite(r.metrics[0]!.loss));
});

test('CUDA: every method of the zoo trains on the GPU (its losses build their masks and targets there)', { skip }, async () => {
  for (const method of SSL_METHODS) {
    const r = await train({ ...base, method, device: 'cuda', epochs: 1, maxStepsPerEpoch: 2, knnEvery: 1, knnK: 5, out: path.join(root, `zoo-${method}`) }, { silent: true });
    assert.ok(Number.isFinite(r.metrics[0]!.loss), `${method}: loss ${r.metrics[0]!.loss}`);
    assert.equal(r.method.parameters()[0]!.device, 'cuda:0', method);
  }
});
