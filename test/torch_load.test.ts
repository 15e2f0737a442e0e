// torch.load without Python (src/torch/torch_load.ts, pickle.ts, zip.ts) and torchvision ResNets
// from their .pth state dicts (src/export/pytorch.ts). Every file is written by Debian's
// /usr/bin/python3 torch + torchvision inside the test: a seeded random resnet18 (with random
// BatchNorm statistics, so they matter), its logits on a random input, odd tensors (views,
// transposes, fp16, int64, shared storages), the legacy format, and hostile pickles.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import * as torch from '../src/torch/index.js';
import { Tensor, TorchLoadError } from '../src/torch/index.js';
import { loadTorchvisionResNet, loadTorchvisionClassifier } from '../src/export/pytorch.js';
import { packageRoot } from '../src/torch/native.js';

const PY = '/usr/bin/python3';
const hasTorchvision = existsSync(PY) && spawnSync(PY, ['-c', 'import torch, torchvision'], { encoding: 'utf8' }).status === 0;
const skip = !hasTorchvision && 'no /usr/bin/python3 with torch and torchvision';
const dir = mkdtempSync(path.join(tmpdir(), 'dyad-torchload-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

const PY_FILES = String.raw`
import sys, os, collections, pickle, zipfile, io, numpy as np, torch, torchvision
torch.set_num_threads(1)
d = sys.argv[1]
torch.manual_seed(0)
m = torchvision.models.resnet18()
with torch.no_grad():
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.2, 0.2); mod.running_var.uniform_(0.5, 1.5)
            mod.weight.uniform_(0.5, 1.5); mod.bias.uniform_(-0.2, 0.2)
m.eval()
torch.save(m.state_dict(), d + '/resnet18.pth')
torch.save({'epoch': 3, 'state_dict': m.state_dict()}, d + '/nested.pth')
x = torch.randn(2, 3, 64, 64)
np.save(d + '/x.npy', x.numpy())
with torch.no_grad(): np.save(d + '/logits.npy', m(x).numpy())
# odd tensors: a transposed view, a slice sharing a storage, fp16, int64, a scalar, a parameter
base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
odd = collections.OrderedDict([('t', base.t()), ('row', base[2]), ('col', base[:, 3]), ('half', torch.tensor([1.5, -2.25], dtype=torch.float16)),
    ('long', torch.tensor([[1, -2], [3, 2**40]])), ('scalar', torch.tensor(7.0)), ('param', torch.nn.Parameter(torch.ones(3))), ('empty', torch.zeros(0, 3))])
torch.save(odd, d + '/odd.pth')
torch.save(odd, d + '/odd_legacy.pth', _use_new_zipfile_serialization=False)
with zipfile.ZipFile(d + '/odd.pth') as zi, zipfile.ZipFile(d + '/odd_deflated.pth', 'w', zipfile.ZIP_DEFLATED) as zo:
    for n in zi.namelist(): zo.writestr(n, zi.read(n))
# hostile: __reduce__ that would run a shell command; a whole module (unknown globals)
class Evil:
    def __reduce__(self): return (os.system, ('touch ' + d + '/PWNED',))
torch.save({'w': torch.ones(2), 'x': Evil()}, d + '/evil.pth')
with open(d + '/evil.pkl', 'wb') as f: pickle.dump(Evil(), f, protocol=2)
torch.save(torch.nn.Linear(2, 2), d + '/module.pth')
torch.save({'c': collections.Counter('aab')}, d + '/counter.pth')
# a memo "billion laughs" (2**60 paths through shared lists) and a list that contains itself
l = []
for i in range(60): l = [l, l]
a = []; a.append(a)
torch.save({'bomb': l, 'self': a, 'w': torch.ones(2)}, d + '/bomb.pth')
`;

let made = false;
function files(): string {
  if (!made) {
    const r = spawnSync(PY, ['-c', PY_FILES, dir], { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1' } });
    assert.equal(r.status, 0, r.stderr);
    made = true;
  }
  return dir;
}
const f = (name: string): string => path.join(files(), name);

test('torchvision resnet18 state dict loads strictly by name and gives torchvision\'s logits (≤ 1e-4)', { skip }, () => {
  const model = loadTorchvisionResNet(f('resnet18.pth'), 'resnet18');
  assert.equal(model.numClasses, 1000);
  assert.equal(model.training, false);
  torch.scope(() => {
    const x = torch.loadNpy(f('x.npy'));
    const want = torch.loadNpy(f('logits.npy'));
    const got = torch.noGrad(() => model.forward(x));
    assert.deepEqual(got.shape, [2, 1000]);
    const diff = got.sub(want).abs().max().item();
    assert.ok(diff <= 1e-4, `max abs diff ${diff}`);
    // the same network as dyad's Classifier (backbone.* + head.*), with a checkpoint config
    const { classifier: c, config, names } = loadTorchvisionClassifier(f('resnet18.pth'), 'resnet18');
    assert.equal(c.training, false);
    assert.deepEqual(config, { backbone: 'resnet18', width: 64, imageSize: 224, stem: 'imagenet', channels: 3, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] });
    assert.equal(names.length, 1000);
    const diff2 = torch.noGrad(() => c.forward(x)).sub(want).abs().max().item();
    assert.ok(diff2 <= 1e-4, `classifier max abs diff ${diff2}`);
    c.dispose();
  });
  model.dispose();
});

test('torch.load: a nested checkpoint, loadStateDict picks state_dict; strict loading names the wrong arch', { skip }, () => {
  torch.scope(() => {
    const obj = torch.load(f('nested.pth'));
    assert.ok(obj instanceof Map);
    assert.equal(obj.get('epoch'), 3);
    const sd = torch.loadStateDict(f('nested.pth'));
    assert.equal(sd.size, 122); // 62 params + 60 BN buffers of resnet18
    assert.deepEqual(sd.get('layer1.0.conv1.weight')!.shape, [64, 64, 3, 3]);
    assert.equal(sd.get('bn1.num_batches_tracked')!.dtype, 'int64');
  });
  assert.throws(() => loadTorchvisionResNet(f('resnet18.pth'), 'resnet34'), (e: Error) => /Missing key\(s\) in state_dict: "layer1\.2\.conv1\.weight"/.test(e.message));
});

for (const name of ['odd.pth', 'odd_legacy.pth', 'odd_deflated.pth']) {
  test(`torch.load reads views, transposes, fp16, int64, scalars, parameters and empty tensors (${name})`, { skip }, () => {
    torch.scope(() => {
      const sd = torch.load(f(name)) as Map<string, Tensor>;
      const base = torch.arange(24, undefined, 1, { dtype: 'float32' }).reshape([4, 6]);
      assert.deepEqual(sd.get('t')!.toArray(), base.t().contiguous().toArray());
      assert.deepEqual(sd.get('t')!.shape, [6, 4]);
      assert.deepEqual(sd.get('row')!.toArray(), [12, 13, 14, 15, 16, 17]);
      assert.deepEqual(sd.get('col')!.toArray(), [3, 9, 15, 21]);
      assert.equal(sd.get('half')!.dtype, 'float16');
      assert.deepEqual(sd.get('half')!.toArray(), [1.5, -2.25]);
      assert.equal(sd.get('long')!.dtype, 'int64');
      assert.deepEqual(sd.get('long')!.toArray(), [1, -2, 3, 2 ** 40]);
      assert.deepEqual(sd.get('scalar')!.shape, []);
      assert.equal(sd.get('scalar')!.item(), 7);
      assert.deepEqual(sd.get('param')!.toArray(), [1, 1, 1]);
      assert.deepEqual(sd.get('empty')!.shape, [0, 3]);
    });
  });
}

test('hostile pickles are refused, naming the global, and nothing runs', { skip }, () => {
  for (const name of ['evil.pth', 'evil.pkl']) {
    assert.throws(() => torch.load(f(name)), (e: unknown) => e instanceof TorchLoadError && e.code === 'TORCH_LOAD'
      && /refused to load the global posix\.system/.test(e.message) && e.message.includes(name), name);
  }
  assert.equal(existsSync(f('PWNED')), false, 'os.system ran');
  assert.throws(() => torch.load(f('module.pth')), /refused to load the global torch\.nn\.modules\.linear\.Linear.*save model\.state_dict\(\)/);
  assert.throws(() => torch.load(f('counter.pth')), /refused to load the global collections\.Counter/);
  // shared and cyclic references convert in linear time
  const t0 = Date.now();
  torch.scope(() => {
    const obj = torch.load(f('bomb.pth')) as Map<string, unknown>;
    const self = obj.get('self') as unknown[];
    assert.equal(self[0], self);
    assert.deepEqual([...torch.loadStateDict(f('bomb.pth')).keys()], ['w']);
  });
  assert.ok(Date.now() - t0 < 5000);
});

test('truncated, empty and foreign files give a TorchLoadError naming the file', { skip }, () => {
  const bytes = readFileSync(f('resnet18.pth'));
  const cuts: [string, Uint8Array][] = [
    ['half.pth', bytes.subarray(0, bytes.length >> 1)],
    ['tail.pth', bytes.subarray(0, bytes.length - 10)],
    ['empty.pth', new Uint8Array(0)],
    ['text.pth', Buffer.from('hello world\n')],
    ['pickle-cut.pth', readFileSync(f('odd_legacy.pth')).subarray(0, 200)],
  ];
  for (const [name, b] of cuts) {
    const p = path.join(dir, name);
    writeFileSync(p, b);
    assert.throws(() => torch.load(p), (e: unknown) => e instanceof TorchLoadError && e.message.startsWith(p), name);
  }
  assert.throws(() => torch.load(path.join(dir, 'missing.pth')), /missing\.pth: cannot read the file \(ENOENT\)/);
});

test('dyad convert in.pth out.safetensors writes the same tensors', { skip }, () => {
  const out = path.join(dir, 'r18.safetensors');
  const r = spawnSync(process.execPath, [path.join(packageRoot(), 'bin/dyad.js'), 'convert', f('resnet18.pth'), out], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /wrote 122 tensors/);
  torch.scope(() => {
    const { tensors } = torch.loadFile(out);
    const sd = torch.loadStateDict(f('resnet18.pth'));
    assert.deepEqual([...tensors.keys()].sort(), [...sd.keys()].sort());
    for (const [k, t] of sd) assert.ok(tensors.get(k)!.equal(t), k);
  });
  const bad = spawnSync(process.execPath, [path.join(packageRoot(), 'bin/dyad.js'), 'convert', f('evil.pth'), out], { encoding: 'utf8' });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /^dyad: error: .*evil\.pth: refused to load the global posix\.system/);
});

test('dyad export --weights resnet18.pth: torchvision weights → ONNX → onnxruntime gives torchvision\'s probabilities', { skip }, async () => {
  const ort = (await import('onnxruntime-node')).default;
  const out = path.join(dir, 'r18.onnx');
  const r = spawnSync(process.execPath, [path.join(packageRoot(), 'bin/dyad.js'), 'export', '--weights', f('resnet18.pth'), '--arch', 'resnet18', '--out', out, '--imgsz', '64'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const s = await ort.InferenceSession.create(out, { intraOpNumThreads: 1 });
  const x = torch.loadNpy(f('x.npy'));
  const got = await s.run({ images: new ort.Tensor('float32', x.toFloat32Array(), x.shape) });
  const want = torch.loadNpy(f('logits.npy')).softmax(-1).toFloat32Array();
  const g = got.probs!.data as Float32Array;
  let d = 0;
  for (let i = 0; i < want.length; i++) d = Math.max(d, Math.abs(g[i]! - want[i]!));
  assert.ok(d <= 1e-4, `max abs diff ${d}`);
  await s.release();
  x.dispose();
});

test('Model.load(resnet18.pth, { arch, names }) predicts torchvision\'s top-1, and model.export() writes an ONNX file onnxruntime agrees with', { skip }, async () => {
  const { Model } = await import('../src/api/model.js');
  const ort = (await import('onnxruntime-node')).default;
  const names = Array.from({ length: 1000 }, (_, i) => `class${i}`);
  const model = await Model.load(f('resnet18.pth'), { arch: 'resnet18', names });
  assert.equal(model.task, 'classifier');
  assert.equal(model.names[7], 'class7');
  const want = torch.scope(() => torch.loadNpy(f('logits.npy')).softmax(-1).keep());
  // the test input is already normalised: run the classifier on it directly, then compare Model.predict's top-1 on the same tensor
  const x = torch.loadNpy(f('x.npy'));
  const wantTop1 = torch.scope(() => want.argmax(1).toArray() as number[]);
  const probs = torch.scope(() => torch.noGrad(() => model.net!.classifier!.forward(x).softmax(-1)).toFloat32Array());
  const top = [0, 1].map((r) => probs.subarray(r * 1000, (r + 1) * 1000).reduce((bi, v, i, a) => (v > a[bi]! ? i : bi), 0));
  assert.deepEqual(top, wantTop1);
  const [file] = model.export({ out: path.join(dir, 'model-export.onnx'), imgsz: 64 });
  assert.equal(file, path.join(dir, 'model-export.onnx'));
  const s = await ort.InferenceSession.create(file!, { intraOpNumThreads: 1 });
  const got = (await s.run({ images: new ort.Tensor('float32', x.toFloat32Array(), x.shape) })).probs!.data as Float32Array;
  const w = want.toFloat32Array();
  let d = 0;
  for (let i = 0; i < w.length; i++) d = Math.max(d, Math.abs(got[i]! - w[i]!));
  assert.ok(d <= 1e-4, `max abs diff ${d}`);
  assert.throws(() => model.export({ format: 'tflite' as never }), /format must be 'onnx'/);
  await s.release();
  x.dispose();
  want.dispose();
  model.dispose();
});
