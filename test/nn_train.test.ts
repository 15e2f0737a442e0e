// A small MLP trains to low loss with per-step scopes and a flat live-tensor count.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../src/torch/index.js';
import * as nn from '../src/nn/index.js';
import type { Tensor } from '../src/torch/index.js';

const F = nn.functional;

class MLP extends nn.Module {
  net = new nn.Sequential(new nn.Linear(2, 32), new nn.Tanh(), new nn.Dropout(0.0), new nn.Linear(32, 32), new nn.ReLU(), new nn.Linear(32, 2));
  forward(x: Tensor): Tensor {
    return this.net.forward(x);
  }
}

test('an MLP learns XOR-like quadrants inside torch.scope with a flat tensor count', () => {
  torch.manualSeed(0);
  // four Gaussian blobs at (±1, ±1); class = sign(x)·sign(y) > 0
  const [x, y] = torch.scope(() => {
    const centres = torch.tensor([[1, 1], [-1, -1], [1, -1], [-1, 1]]);
    const idx = torch.randint(0, 4, [256]);
    const pts = centres.indexSelect(0, idx).add(torch.randn([256, 2]).mul(0.2));
    const lab = idx.ge(2).long(); // blobs 0,1 -> class 0, blobs 2,3 -> class 1
    return [pts, lab];
  });
  const model = torch.scope(() => new MLP());
  const lr = 0.1;
  const momentum = 0.9;
  const velocity = new Map(model.parameters().map((p) => [p, torch.zerosLike(p).keep()]));
  const step = (): number =>
    torch.scope(() => {
      const loss = F.crossEntropy(model.forward(x), y);
      model.zeroGrad();
      loss.backward();
      torch.noGrad(() => {
        for (const p of model.parameters()) {
          const v = velocity.get(p)!;
          v.mul_(momentum).add_(p.grad!);
          p.sub_(v.mul(lr));
        }
      });
      return loss.item();
    });
  const first = step();
  for (let i = 0; i < 9; i++) step();
  const count = torch.memory().count;
  let last = first;
  for (let i = 0; i < 90; i++) last = step();
  assert.equal(torch.memory().count, count, 'live tensor count is flat across steps');
  assert.ok(first > 0.5, `initial loss ${first}`);
  assert.ok(last < 0.05, `final loss ${last}`);
  // eval-mode accuracy on the training set
  model.eval();
  const acc = torch.scope(() => torch.noGrad(() => model.forward(x).argmax(1).eq(y).float().mean().item()));
  assert.ok(acc > 0.98, `accuracy ${acc}`);
  assert.equal(torch.memory().count, count);
});

test('a conv net with BatchNorm trains a step per scope without leaking', () => {
  torch.manualSeed(1);
  const model = torch.scope(() => new nn.Sequential(
    new nn.Conv2d(1, 4, 3, { padding: 1 }), new nn.BatchNorm2d(4), new nn.ReLU(), new nn.MaxPool2d(2),
    new nn.Flatten(), new nn.Linear(4 * 4 * 4, 2)));
  const x = torch.randn([8, 1, 8, 8]).keep();
  const y = torch.tensor([0n, 1n, 0n, 1n, 0n, 1n, 0n, 1n]).keep();
  // class 1 images are brighter
  torch.noGrad(() => x.narrow(0, 0, 8).add_(torch.scope(() => y.float().mul(2).view(8, 1, 1, 1))));
  const step = (): number => torch.scope(() => {
    const loss = F.crossEntropy(model.forward(x), y);
    model.zeroGrad();
    loss.backward();
    torch.noGrad(() => model.parameters().forEach((p) => p.sub_(p.grad!.mul(0.1))));
    return loss.item();
  });
  step();
  const count = torch.memory().count;
  let loss = 0;
  for (let i = 0; i < 20; i++) loss = step();
  assert.equal(torch.memory().count, count);
  assert.ok(loss < 0.2, `loss ${loss}`);
  const bn = model.get(1) as nn.BatchNorm2d;
  assert.equal(bn.num_batches_tracked!.item(), 21);
});
