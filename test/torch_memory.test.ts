// Memory ownership: scopes free what they do not return, and a long training loop keeps
// the live tensor count flat.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../src/torch/index.js';

const F = torch.functional;

test('scope frees intermediates, keeps returned tensors, nests, and frees on exceptions', () => {
  const before = torch.memory().count;
  const [a, b] = torch.scope(() => {
    const x = torch.randn([4, 4]);
    const y = x.mul(2).add(1);
    const inner = torch.scope(() => y.relu().sum(0));
    return [inner, x.mean()];
  });
  assert.equal(torch.memory().count - before, 2);
  assert.equal(a!.shape[0], 4);
  assert.throws(() => torch.scope(() => {
    torch.ones([100]);
    throw new Error('boom');
  }), /boom/);
  assert.equal(torch.memory().count - before, 2);
  a!.dispose();
  b!.dispose();
  assert.equal(torch.memory().count, before);
  // `using` frees at the end of the block
  {
    using t = torch.ones([8]);
    assert.equal(torch.memory().count, before + 1);
    void t;
  }
  assert.equal(torch.memory().count, before);
  assert.throws(() => torch.scope(() => Promise.resolve(1)), /returned a Promise/);
});

test('memory() reports bytes of live tensors', () => {
  const before = torch.memory();
  const t = torch.zeros([256, 256]);
  assert.equal(torch.memory().bytes - before.bytes, 256 * 256 * 4);
  t.dispose();
  assert.equal(torch.memory().bytes, before.bytes);
});

test('memory() counts a storage once however many views hold it', () => {
  const before = torch.memory();
  const t = torch.zeros([64, 64]);
  const views = [t.view([4096]), t.transpose(0, 1), t.narrow(0, 0, 8)];
  assert.equal(torch.memory().count - before.count, 4);
  assert.equal(torch.memory().bytes - before.bytes, 64 * 64 * 4, 'views add no bytes');
  t.dispose();
  assert.equal(torch.memory().bytes - before.bytes, 64 * 64 * 4, 'the views still hold the storage');
  views[0]!.dispose();
  views[1]!.dispose();
  assert.equal(torch.memory().bytes - before.bytes, 64 * 64 * 4);
  views[2]!.dispose();
  assert.equal(torch.memory().bytes, before.bytes, 'the last view gives the bytes back');
  const c = torch.zeros([64, 64]).contiguous();
  const copy = c.clone();
  assert.equal(torch.memory().bytes - before.bytes, 2 * 64 * 64 * 4, 'a copy is its own storage');
  c.dispose();
  copy.dispose();
});

test('3000 training steps keep the live tensor count flat', () => {
  torch.manualSeed(1);
  // a 2-layer MLP on a toy regression, written with functional ops and a manual SGD step
  const w1 = torch.randn([16, 8]).mul(0.3).requiresGrad_().keep();
  const b1 = torch.zeros([16], { requiresGrad: true }).keep();
  const w2 = torch.randn([1, 16]).mul(0.3).requiresGrad_().keep();
  const b2 = torch.zeros([1], { requiresGrad: true }).keep();
  const params = [w1, b1, w2, b2];
  const x = torch.randn([64, 8]).keep();
  const y = x.sum(1, { keepdim: true }).sin().keep();
  const counts: number[] = [];
  let first = 0;
  let last = 0;
  for (let step = 0; step < 3000; step++) {
    const loss = torch.scope(() => {
      const h = F.linear(x, w1, b1).relu();
      const l = F.mseLoss(F.linear(h, w2, b2), y);
      l.backward();
      torch.noGrad(() => {
        for (const p of params) {
          p.sub_(p.grad!, { alpha: 0.05 });
          p.grad = null;
        }
      });
      return l.item();
    });
    if (step === 0) first = loss;
    last = loss;
    if (step % 500 === 0) counts.push(torch.memory().count);
  }
  assert.ok(last < first * 0.5, `loss fell from ${first} to ${last}`);
  assert.ok(counts.every((c) => c === counts[0]), `live tensors stayed flat: ${counts.join(', ')}`);
});
