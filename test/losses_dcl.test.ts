// The decoupled contrastive loss (DCL, DCLW) on fixed inputs against values computed
// independently with plain JS numbers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../src/torch/index.js';
import { DCLLoss, DCLWLoss } from '../src/losses/dcl.js';
import { NTXentLoss } from '../src/losses/ntxent.js';
import { createMethod, type SimCLR } from '../src/methods/index.js';
import { resolveConfig } from '../src/engine/config.js';

const unit = (v: number[]): number[] => {
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
};
const dot = (a: number[], b: number[]): number => a.reduce((s, x, i) => s + x * b[i]!, 0);

/** Yeh et al. eq. 6 by hand: −w·pos/τ + log Σ over the 2B − 2 negatives, mean over the 2B rows. */
function dclByHand(v0: number[][], v1: number[][], tau: number, sigma?: number): number {
  const z = [...v0, ...v1].map(unit);
  const b = v0.length;
  const pairSim = Array.from({ length: b }, (_, i) => dot(z[i]!, z[i + b]!));
  const soft = pairSim.map((s) => Math.exp(s / sigma!));
  const w = pairSim.map((_, i) => (sigma === undefined ? 1 : 2 - (b * soft[i]!) / soft.reduce((a, x) => a + x, 0)));
  let total = 0;
  for (let i = 0; i < 2 * b; i++) {
    const pos = i < b ? i + b : i - b;
    let denom = 0;
    for (let k = 0; k < 2 * b; k++) if (k !== i && k !== pos) denom += Math.exp(dot(z[i]!, z[k]!) / tau);
    total += (-w[i % b]! * dot(z[i]!, z[pos]!)) / tau + Math.log(denom);
  }
  return total / (2 * b);
}

const v0 = [[1, 2, 0.5], [-1, 0.3, 2], [0.2, -1, 0.4]];
const v1 = [[0.9, 2.2, 0.1], [-0.5, 0.1, 1.5], [1, -0.2, 0.3]];

test('DCL matches the hand-computed value for 3 pairs, and differs from NT-Xent only by the positive in the denominator', () => {
  for (const tau of [0.5, 0.1, 1]) {
    const loss = new DCLLoss({ temperature: tau }).forward(torch.tensor(v0), torch.tensor(v1)).item();
    const expected = dclByHand(v0, v1, tau);
    assert.ok(Math.abs(loss - expected) < 1e-5, `τ=${tau}: ${loss} vs ${expected}`);
    const nt = new NTXentLoss({ temperature: tau }).forward(torch.tensor(v0), torch.tensor(v1)).item();
    assert.ok(loss < nt, `DCL ${loss} < NT-Xent ${nt}: a smaller denominator`);
  }
});

test('DCLW weights the positives by 2 − B·softmax(sim/σ)', () => {
  const loss = new DCLWLoss({ temperature: 0.2 }).forward(torch.tensor(v0), torch.tensor(v1)).item();
  const expected = dclByHand(v0, v1, 0.2, 0.5);
  assert.ok(Math.abs(loss - expected) < 1e-5, `${loss} vs ${expected}`);
  assert.ok(Math.abs(loss - dclByHand(v0, v1, 0.2)) > 1e-4, 'the weighting changes the value');
  assert.equal(new DCLWLoss({ sigma: 0.3 }).sigma, 0.3);
});

test('DCL is stable at tiny temperatures, has gradients, and validates its arguments', () => {
  const a = torch.randn([8, 16], { requiresGrad: true });
  const loss = new DCLLoss({ temperature: 0.01 }).forward(a, torch.randn([8, 16]));
  assert.ok(Number.isFinite(loss.item()));
  loss.backward();
  assert.ok(a.grad!.isfinite().all().item());
  assert.throws(() => new DCLLoss({ temperature: 0 }), /temperature must be a positive number/);
  assert.throws(() => new DCLLoss({ sigma: -1 }), /sigma must be a positive number/);
  assert.throws(() => new DCLLoss().forward(torch.randn([1, 4]), torch.randn([1, 4])), /at least 2 samples/);
  assert.throws(() => new DCLLoss().forward(torch.randn([2, 4]), torch.randn([3, 4])), /same shape/);
});

test('SimCLR takes its loss from the spec and the train config; MoCo rejects it', () => {
  const backbone = { name: 'resnet18' as const, inChannels: 1, imageSize: 16, width: 4, stem: 'cifar' as const };
  const m = createMethod({ method: 'simclr', backbone, loss: 'dclw', temperature: 0.3 }) as SimCLR;
  assert.ok(m.criterion instanceof DCLWLoss);
  assert.equal(m.criterion.temperature, 0.3);
  assert.ok((createMethod({ method: 'simclr', backbone }) as SimCLR).criterion instanceof NTXentLoss);
  assert.equal(resolveConfig({}).loss, 'ntxent');
  assert.throws(() => resolveConfig({ loss: 'triplet' as never }), /unknown loss 'triplet'/);
  assert.throws(() => resolveConfig({ method: 'moco', loss: 'dcl' }), /loss 'dcl' is a SimCLR option/);
  m.dispose();
});
