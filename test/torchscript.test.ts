// TorchScript models in (src/nn/script_module.ts over native/src/jit.cc): a torchvision resnet18
// traced by Debian's /usr/bin/python3 torch inside the test loads with torch::jit::load, gives
// PyTorch's outputs, exposes its parameters under PyTorch's names, trains through libtorch
// autograd with a dyad optimizer (one step changes the TorchScript module's own weights), works
// as a Classifier backbone, and saves back. Wrong files give errors naming the file and the fix.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import * as torch from '../src/torch/index.js';
import * as nn from '../src/nn/index.js';
import { SGD } from '../src/optim/index.js';
import { Classifier } from '../src/models/classifier.js';

const PY = '/usr/bin/python3';
const skip = !(existsSync(PY) && spawnSync(PY, ['-c', 'import torch, torchvision'], { encoding: 'utf8' }).status === 0) && 'no /usr/bin/python3 with torch and torchvision';
const dir = mkdtempSync(path.join(tmpdir(), 'dyad-jit-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

const PY_TRACE = String.raw`
import sys, json, numpy as np, torch, torchvision
torch.set_num_threads(1)
d = sys.argv[1]
torch.manual_seed(0)
m = torchvision.models.resnet18(num_classes=10)
with torch.no_grad():
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.2, 0.2); mod.running_var.uniform_(0.5, 1.5)
m.eval()
x = torch.randn(2, 3, 64, 64)
traced = torch.jit.trace(m, x)
traced.save(d + '/r18.pt')
np.save(d + '/x.npy', x.numpy())
with torch.no_grad(): np.save(d + '/y.npy', traced(x).numpy())
torch.save(m.state_dict(), d + '/r18.pth')
class Small(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.bn = torch.nn.BatchNorm2d(4)
    def forward(self, x):
        return self.bn(self.conv(x)).mean(dim=(2, 3))
s = torch.jit.script(Small())
s.save(d + '/small_scripted.pt')
json.dump({'params': [n for n, _ in m.named_parameters()], 'buffers': [n for n, _ in m.named_buffers()]}, open(d + '/names.json', 'w'))
`;

let made = false;
function f(name: string): string {
  if (!made) {
    // a file, not -c: torch.jit.script reads the module's source
    writeFileSync(path.join(dir, 'make.py'), PY_TRACE);
    const r = spawnSync(PY, [path.join(dir, 'make.py'), dir], { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1' } });
    assert.equal(r.status, 0, r.stderr);
    made = true;
  }
  return path.join(dir, name);
}

test('a traced torchvision resnet18 loads with torch::jit::load and gives PyTorch\'s outputs, parameters by name', { skip }, async () => {
  assert.equal(nn.isTorchScriptFile(f('r18.pt')), true);
  assert.equal(nn.isTorchScriptFile(f('r18.pth')), false);
  const m = nn.ScriptModule.load(f('r18.pt'), { probeInput: [1, 3, 64, 64] });
  assert.equal(m.featureDim, 10);
  assert.equal(m.training, false);
  const { readFileSync } = await import('node:fs');
  const names = JSON.parse(readFileSync(f('names.json'), 'utf8')) as { params: string[]; buffers: string[] };
  assert.deepEqual(m.namedParameters().map(([n]) => n), names.params);
  assert.deepEqual([...m.stateDict().keys()].sort(), [...names.params, ...names.buffers].sort());
  torch.scope(() => {
    const x = torch.loadNpy(f('x.npy'));
    const y = torch.noGrad(() => m.forward(x));
    const d = y.sub(torch.loadNpy(f('y.npy'))).abs().max().item();
    assert.ok(d <= 1e-5, `max abs diff ${d}`);
  });
  m.dispose();
});

test('parameters train through libtorch autograd: one SGD step changes the TorchScript module\'s weights; as a Classifier backbone; save and reload', { skip }, () => {
  const m = nn.ScriptModule.load(f('r18.pt'), { probeInput: [1, 3, 64, 64] });
  const x = torch.loadNpy(f('x.npy')).keep();
  const before = torch.noGrad(() => m.forward(x)).keep();
  const w0 = m.stateDict().get('fc.weight')!.clone().keep();
  const params = m.parameters();
  assert.equal(params.length, 62);
  assert.ok(params.every((p) => p.requiresGrad));
  const opt = new SGD(params, { lr: 0.1 });
  torch.scope(() => {
    const loss = torch.functional.crossEntropy(m.forward(x), torch.tensor([1, 7], { dtype: 'int64' }));
    loss.backward();
  });
  const g = (m as unknown as { fc: { weight: nn.Parameter } }).fc.weight.grad;
  assert.ok(g !== null && g.abs().sum().item() > 0, 'fc.weight has a gradient');
  assert.ok((m as unknown as { conv1: { weight: nn.Parameter } }).conv1.weight.grad !== null, 'conv1.weight has a gradient');
  opt.step();
  opt.zeroGrad();
  torch.scope(() => {
    const w1 = m.stateDict().get('fc.weight')!;
    assert.ok(w1.sub(w0).abs().max().item() > 1e-4, 'the weights moved');
    const after = torch.noGrad(() => m.forward(x));
    assert.ok(after.sub(before).abs().max().item() > 1e-4, 'the TorchScript forward sees the new weights');
    // save with the new weights and reload
    m.save(path.join(dir, 'tuned.pt'));
    const again = nn.ScriptModule.load(path.join(dir, 'tuned.pt'));
    assert.ok(torch.noGrad(() => again.forward(x)).sub(after).abs().max().item() <= 1e-6);
    again.dispose();
  });
  // a dyad Classifier on the TorchScript backbone trains the backbone too
  const clf = new Classifier(m, 3);
  assert.equal(clf.parameters().length, 64);
  torch.scope(() => {
    const loss = torch.functional.crossEntropy(clf.forward(x), torch.tensor([0, 2], { dtype: 'int64' }));
    loss.backward();
    assert.ok(clf.head.weight.grad !== null && (m as unknown as { layer4: { 1: { conv2: { weight: nn.Parameter } } } }).layer4[1].conv2.weight.grad !== null);
  });
  m.train();
  assert.equal(m.training, true);
  m.eval();
  clf.dispose();
  for (const t of [x, before, w0]) t.dispose();
});

test('a scripted module follows train()/eval(): BatchNorm uses batch statistics in train mode and updates its running mean', { skip }, () => {
  const m = nn.ScriptModule.load(f('small_scripted.pt'), { featureDim: 4 });
  assert.equal(m.training, true);
  torch.scope(() => {
    const x = torch.randn([4, 3, 8, 8]).mul(3).add(1);
    const rm = m.stateDict().get('bn.running_mean')!.clone();
    const train = torch.noGrad(() => m.forward(x));
    // batch statistics: each channel's mean over the batch and positions is ~0 (bn bias 0)
    assert.ok(train.mean(0).abs().max().item() < 1e-4);
    assert.ok(m.stateDict().get('bn.running_mean')!.sub(rm).abs().max().item() > 1e-3, 'running_mean updated');
    m.eval();
    assert.equal(m.training, false);
    const evalOut = torch.noGrad(() => m.forward(x));
    assert.ok(evalOut.sub(train).abs().max().item() > 1e-3, 'eval uses the running statistics');
  });
  m.dispose();
});

test('wrong files: a torch.save file is not TorchScript, and TorchScript is not a torch.save file (errors name the file and the fix)', { skip }, () => {
  assert.throws(() => nn.ScriptModule.load(f('r18.pth')), (e: unknown) => e instanceof nn.TorchScriptError && e.code === 'TORCHSCRIPT'
    && e.message.startsWith(f('r18.pth')) && /not a TorchScript archive.*torch\.load/.test(e.message));
  assert.throws(() => nn.ScriptModule.load(path.join(dir, 'nope.pt')), /nope\.pt: no such file/);
  // a wrong input is libtorch's error, thrown as a TorchError (no crash)
  const m = nn.ScriptModule.load(f('r18.pt'));
  assert.throws(() => torch.scope(() => m.forward(torch.zeros([1, 5, 32, 32]))), (e: unknown) => e instanceof torch.TorchError && /channels|size|shape/i.test((e as Error).message));
  assert.throws(() => m.featureDim, /featureDim is unknown; load it with \{ probeInput/);
  m.dispose();
  assert.throws(() => torch.load(f('r18.pt')), (e: unknown) => e instanceof torch.TorchLoadError && /TorchScript archive.*ScriptModule\.load/.test(e.message));
});
