// LR schedules: warmup endpoints, cosine midpoint and end, StepLR, CosineAnnealingLR, lrScale,
// state dict round trip, cosineSchedule.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import * as torch from '../src/torch/index.js';
import { SGD, LinearWarmupCosine, StepLR, CosineAnnealingLR, cosineSchedule, type LRScheduler } from '../src/optim/index.js';

const close = (a: number, b: number, what = ''): void => assert.ok(Math.abs(a - b) < 1e-12, `${what}: ${a} != ${b}`);
const opt = (lr = 1): SGD => new SGD([{ params: [torch.zeros([1], { requiresGrad: true })] }, { params: [torch.zeros([1], { requiresGrad: true })], lrScale: 0.1 }], { lr });
/** The lr of group 0 at steps 0..n. */
function trace(s: LRScheduler, n: number): number[] {
  const out = [s.getLastLr()[0]!];
  for (let i = 0; i < n; i++) {
    s.step();
    out.push(s.getLastLr()[0]!);
  }
  return out;
}

test('LinearWarmupCosine: warmup endpoints, cosine midpoint and end, per-group lrScale', () => {
  const o = opt(0.8);
  const s = new LinearWarmupCosine(o, { warmupSteps: 4, totalSteps: 14, warmupStartLr: 0.1, minLr: 0.05 });
  const lrs = trace(s, 16);
  close(lrs[0]!, 0.1, 'start');
  close(lrs[2]!, 0.1 + (0.8 - 0.1) / 2, 'mid-warmup');
  close(lrs[4]!, 0.8, 'end of warmup = base lr');
  close(lrs[9]!, (0.8 + 0.05) / 2, 'cosine midpoint');
  close(lrs[14]!, 0.05, 'end');
  close(lrs[16]!, 0.05, 'after the end');
  for (let i = 5; i <= 14; i++) assert.ok(lrs[i]! < lrs[i - 1]!, 'decreasing after warmup');
  close(o.paramGroups[0]!.lr, 0.05);
  close(o.paramGroups[1]!.lr, 0.005, 'lrScale 0.1');
  close(s.getLastLr()[1]!, 0.005);
  // Default warmup start is 0; no warmup starts at the base lr.
  assert.equal(trace(new LinearWarmupCosine(opt(), { warmupSteps: 5, totalSteps: 10 }), 0)[0], 0);
  assert.equal(trace(new LinearWarmupCosine(opt(), { warmupSteps: 0, totalSteps: 10 }), 0)[0], 1);
  assert.throws(() => new LinearWarmupCosine(opt(), { warmupSteps: 5, totalSteps: 3 }), /totalSteps \(3\) must be >= warmupSteps \(5\)/);
});

test('StepLR and CosineAnnealingLR follow torch.optim.lr_scheduler', () => {
  const lrs = trace(new StepLR(opt(0.5), { stepSize: 3, gamma: 0.1 }), 9);
  [0.5, 0.5, 0.5, 0.05, 0.05, 0.05, 0.005, 0.005, 0.005, 0.0005].forEach((v, i) => close(lrs[i]!, v, `StepLR ${i}`));
  const cos = trace(new CosineAnnealingLR(opt(0.5), { tMax: 10, etaMin: 0.1 }), 10);
  close(cos[0]!, 0.5);
  close(cos[5]!, 0.3, 'midpoint');
  close(cos[10]!, 0.1, 'end');
  close(cos[3]!, 0.1 + 0.4 * (1 + Math.cos((Math.PI * 3) / 10)) / 2);
});

test('scheduler state dict round trip resumes identically', () => {
  const mk = (o: SGD) => new LinearWarmupCosine(o, { warmupSteps: 3, totalSteps: 20, minLr: 0.01 });
  const a = mk(opt(0.4));
  const straight = trace(a, 15);
  const b = mk(opt(0.4));
  const first = trace(b, 7);
  const sd = JSON.parse(JSON.stringify(b.stateDict()));
  assert.equal(sd.name, 'LinearWarmupCosine');
  assert.equal(sd.lastStep, 7);
  const c = mk(opt(0.9)); // another base lr at construction: the saved base lrs win
  c.loadStateDict(sd);
  const rest = trace(c, 8);
  assert.deepEqual([...first, ...rest.slice(1)], straight);
  assert.throws(() => new StepLR(opt(), { stepSize: 2 }).loadStateDict(sd), /belongs to LinearWarmupCosine/);
});

test('cosineSchedule as lightly: start at step 0, end at step total-1', () => {
  assert.equal(cosineSchedule(0, 10, 0.996, 1), 0.996);
  close(cosineSchedule(4.5, 10, 0.996, 1), 0.998);
  assert.equal(cosineSchedule(9, 10, 0.996, 1), 1);
  assert.equal(cosineSchedule(12, 10, 0.996, 1), 1);
  assert.equal(cosineSchedule(0, 1, 0.5, 1), 1);
  close(cosineSchedule(5, 100, 0, 1, 10), 1, 'half period');
  assert.throws(() => cosineSchedule(-1, 10, 0, 1), /can't be negative/);
});
