// Optimizer state dicts (resume exactly, also through safetensors + JSON), zeroGrad, param
// groups for weight decay.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import * as torch from '../src/torch/index.js';
import type { Tensor } from '../src/torch/index.js';
import { saveFile, loadFile } from '../src/torch/safetensors.js';
import {
  SGD, AdamW, Adam, LARS, LinearWarmupCosine, paramGroupsForWeightDecay, isBiasOrNorm,
  type Optimizer, type OptimizerStateDict,
} from '../src/optim/index.js';

const SHAPES = [[4, 3], [3], [2, 2]];

function makeParams(seed: number): Tensor[] {
  torch.manualSeed(seed);
  return SHAPES.map((s) => torch.randn(s, { requiresGrad: true }).keep());
}
/** Deterministic gradients for step t (not from the RNG, so interrupted and straight runs agree). */
function setGrads(ps: Tensor[], t: number): void {
  torch.scope(() => ps.forEach((p, i) => {
    p.grad = torch.arange(p.numel(), undefined, 1, { dtype: 'float32' }).add(t * 0.37 + i).sin().reshape(p.shape);
  }));
}
type Make = (ps: Tensor[]) => Optimizer<any>;
const groupsOf = (ps: Tensor[]) => [{ params: [ps[0]!, ps[2]!] }, { params: [ps[1]!], weightDecay: 0, lrScale: 0.5, lars: false }];
const MAKERS: Record<string, Make> = {
  sgd: (ps) => new SGD(groupsOf(ps), { lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 1e-3 }),
  adamw: (ps) => new AdamW(groupsOf(ps), { lr: 0.01, amsgrad: true }),
  adam: (ps) => new Adam(ps, { lr: 0.01, weightDecay: 1e-2 }),
  lars: (ps) => new LARS(groupsOf(ps), { lr: 0.3, weightDecay: 1e-4 }),
};

function train(opt: Optimizer<any>, sched: LinearWarmupCosine, ps: Tensor[], from: number, to: number): void {
  for (let t = from; t < to; t++) {
    setGrads(ps, t);
    opt.step();
    sched.step();
    opt.zeroGrad();
  }
}
const snapshot = (ps: Tensor[]): number[][] => ps.map((p) => Array.from(p.toFloat32Array()));

test('stateDict round trip: k steps, save, load into a fresh optimizer, continue = uninterrupted run', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dyad-optim-'));
  try {
    for (const [name, make] of Object.entries(MAKERS)) {
      // Uninterrupted.
      const a = makeParams(1);
      const optA = make(a);
      const schedA = new LinearWarmupCosine(optA, { warmupSteps: 3, totalSteps: 12, warmupStartLr: 1e-3 });
      train(optA, schedA, a, 0, 10);

      // Interrupted after 4 steps; state goes through safetensors + JSON on disk.
      const b = makeParams(1);
      const optB = make(b);
      const schedB = new LinearWarmupCosine(optB, { warmupSteps: 3, totalSteps: 12, warmupStartLr: 1e-3 });
      train(optB, schedB, b, 0, 4);
      const sd = optB.stateDict();
      saveFile(sd.state, join(dir, `${name}.safetensors`));
      writeFileSync(join(dir, `${name}.json`), JSON.stringify({ optimizer: sd.meta, scheduler: schedB.stateDict() }));
      const weights = Object.fromEntries(b.map((p, i) => [`p${i}`, p]));
      saveFile(weights, join(dir, `${name}.weights.safetensors`));
      optB.dispose();

      // Fresh process, as it were: new params (other values), new optimizer and scheduler, then load.
      const c = makeParams(99);
      const { tensors: w } = loadFile(join(dir, `${name}.weights.safetensors`));
      torch.noGrad(() => c.forEach((p, i) => p.copy_(w.get(`p${i}`)!)));
      const optC = make(c);
      const schedC = new LinearWarmupCosine(optC, { warmupSteps: 3, totalSteps: 12, warmupStartLr: 1e-3 });
      const json = JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8'));
      const { tensors } = loadFile(join(dir, `${name}.safetensors`));
      optC.loadStateDict({ state: Object.fromEntries(tensors), meta: json.optimizer } as OptimizerStateDict);
      schedC.loadStateDict(json.scheduler);
      for (const t of tensors.values()) t.dispose(); // the optimizer keeps its own copies
      for (const t of w.values()) t.dispose();
      train(optC, schedC, c, 4, 10);

      assert.deepEqual(snapshot(c), snapshot(a), `${name}: resumed run differs`);
      assert.deepEqual(schedC.getLastLr(), schedA.getLastLr());
      assert.deepEqual(optC.paramGroups.map((g) => g.lr), optA.paramGroups.map((g) => g.lr));
      for (const o of [optA, optC]) o.dispose();
      for (const p of [...a, ...b, ...c]) p.dispose();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('stateDict layout: PyTorch names keyed by parameter index, scalars and groups in JSON', () => {
  const ps = makeParams(3);
  const opt = new AdamW([{ params: [ps[0]!] }, { params: [ps[1]!, ps[2]!], weightDecay: 0, name: 'no_decay' }], { lr: 0.1 });
  setGrads([ps[0]!, ps[1]!], 0); // param 2 has no gradient: no state
  opt.step();
  const sd = opt.stateDict();
  assert.deepEqual(Object.keys(sd.state).sort(), ['state.0.exp_avg', 'state.0.exp_avg_sq', 'state.1.exp_avg', 'state.1.exp_avg_sq']);
  assert.deepEqual(sd.meta.state, { 0: { step: 1 }, 1: { step: 1 } });
  assert.deepEqual(sd.meta.paramGroups, [
    { lr: 0.1, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 1e-2, amsgrad: false, maximize: false, params: [0] },
    { lr: 0.1, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, amsgrad: false, maximize: false, name: 'no_decay', params: [1, 2] },
  ]);
  assert.deepEqual(JSON.parse(JSON.stringify(sd.meta)), sd.meta);
  // The state dict's tensors are aliases: disposing them leaves the optimizer intact.
  torch.disposeAll(sd.state);
  opt.step();
  opt.dispose();
});

test('loadStateDict refuses mismatched state with clear errors and keeps the old state', () => {
  const ps = makeParams(4);
  const opt = new SGD(ps, { lr: 0.1, momentum: 0.9 });
  setGrads(ps, 0);
  opt.step();
  const sd = opt.stateDict();
  const other = new SGD([{ params: [ps[0]!] }, { params: [ps[1]!, ps[2]!] }], { lr: 0.1, momentum: 0.9 });
  assert.throws(() => other.loadStateDict(sd), /state dict has 1 parameter groups, this optimizer has 2/);
  const fewer = new SGD([ps[0]!, ps[1]!], { lr: 0.1 });
  assert.throws(() => fewer.loadStateDict(sd), /parameter group 0 has 3 parameters in the state dict, 2 here/);
  const swapped = new SGD([ps[1]!, ps[0]!, ps[2]!], { lr: 0.1, momentum: 0.9 });
  assert.throws(() => swapped.loadStateDict(sd), /'state.0.momentum_buffer' has shape \[4, 3\] but parameter 0 has shape \[3\]/);
  assert.throws(() => opt.loadStateDict({ state: { 'foo': sd.state['state.0.momentum_buffer']! }, meta: sd.meta }), /unexpected state key 'foo'/);
  assert.throws(() => opt.loadStateDict({ state: { 'state.7.momentum_buffer': sd.state['state.0.momentum_buffer']! }, meta: sd.meta }), /refers to parameter 7/);
  // opt still works with its own state.
  opt.step();
  assert.equal(opt.state.size, 3);
  for (const o of [opt, other, fewer, swapped]) o.dispose();
});

test('zeroGrad sets gradients to null, or zeroes them in place', () => {
  const ps = makeParams(5);
  const opt = new SGD(ps, { lr: 0.1 });
  setGrads(ps, 1);
  opt.zeroGrad({ setToNone: false });
  torch.scope(() => assert.equal(ps[0]!.grad!.abs().sum().item(), 0));
  opt.zeroGrad();
  assert.equal(ps[0]!.grad, null);
});

test('paramGroupsForWeightDecay: no decay for biases, 1-d and norm parameters', () => {
  const p = (shape: number[], requiresGrad = true): Tensor => torch.zeros(shape, { requiresGrad });
  const named: [string, Tensor][] = [
    ['conv1.weight', p([8, 3, 3, 3])],
    ['bn1.weight', p([8])],
    ['bn1.bias', p([8])],
    ['fc.weight', p([10, 8])],
    ['fc.bias', p([10])],
    ['blocks.0.norm1.weight', p([8])],
    ['ln_post.weight', p([4, 4])], // a 2-d norm parameter, caught by its layer name
    ['cls_token', p([1, 1, 8])],
    ['frozen.weight', p([3, 3], false)],
  ];
  const groups = paramGroupsForWeightDecay(named, { weightDecay: 0.05, noDecay: ['cls_token'] });
  const names = (ts: Tensor[]) => ts.map((t) => named.find(([, x]) => x === t)![0]);
  assert.equal(groups.length, 2);
  assert.deepEqual(names(groups[0]!.params), ['conv1.weight', 'fc.weight']);
  assert.equal(groups[0]!.weightDecay, 0.05);
  assert.deepEqual(names(groups[1]!.params), ['bn1.weight', 'bn1.bias', 'fc.bias', 'blocks.0.norm1.weight', 'ln_post.weight', 'cls_token']);
  assert.equal(groups[1]!.weightDecay, 0);
  assert.equal(groups[1]!.lars, false);
  const opt = new AdamW(groups, { lr: 1e-3 });
  assert.deepEqual(opt.paramGroups.map((g) => g.weightDecay), [0.05, 0]);
  assert.equal(isBiasOrNorm('layer1.0.downsample.1.weight', p([8])), true);
  assert.equal(isBiasOrNorm('layer1.0.conv1.weight', p([8, 8, 3, 3])), false);
});
