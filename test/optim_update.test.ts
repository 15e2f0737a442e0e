// Optimizer updates: SGD, Adam, AdamW, LARS and clipGradNorm_.
//
// 1. Against the published update equations, evaluated here with plain JS numbers on float64
//    parameters (tight tolerance).
// 2. Against PyTorch 1.13 trajectories (float32) from test/fixtures/optim_expected.json, written by
//    test/fixtures/optim_reference.py (regenerate: /usr/bin/python3 test/fixtures/optim_reference.py
//    > test/fixtures/optim_expected.json). The test itself needs no Python.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import * as torch from '../src/torch/index.js';
import type { Tensor } from '../src/torch/index.js';
import { SGD, Adam, AdamW, LARS, clipGradNorm_, clipGradValue_, type Optimizer } from '../src/optim/index.js';

// ---- helpers ---------------------------------------------------------------------------------

const P0 = [[0.5, -1.25, 2.0, 0.75], [-0.3, 0.8]];
const GRADS = [
  [[0.1, -0.2, 0.3, -0.4], [0.05, -0.5]],
  [[-0.3, 0.1, 0.2, 0.6], [0.7, 0.2]],
  [[0.25, 0.25, -0.5, 0.1], [-0.1, 0.3]],
  [[0.0, 0.4, -0.1, -0.2], [0.2, -0.6]],
  [[0.3, -0.3, 0.05, 0.0], [-0.4, 0.1]],
];

function params64(): Tensor[] {
  return P0.map((v) => torch.tensor(v, { dtype: 'float64', requiresGrad: true }).keep());
}
function setGrads(ps: Tensor[], gs: number[][], dtype: torch.DType = 'float64'): void {
  torch.scope(() => ps.forEach((p, i) => { p.grad = torch.tensor(gs[i]!, { dtype }).reshape(p.shape); }));
}
function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    assert.ok(Math.abs(a - e) <= tol * (1 + Math.abs(e)), `${what}[${i}]: got ${a}, expected ${e}`);
  }
}
/** Runs `opt` over GRADS and compares every step with `ref` (which updates plain arrays). */
function checkAgainstEquations(make: (ps: Tensor[]) => Optimizer<any>, ref: (ps: number[][], gs: number[][], t: number) => void, what: string): void {
  const ps = params64();
  const opt = make(ps);
  const mirror = P0.map((v) => v.slice());
  GRADS.forEach((gs, t) => {
    setGrads(ps, gs);
    opt.step();
    ref(mirror, gs, t + 1);
    ps.forEach((p, i) => assertClose(p.toFloat64Array(), mirror[i]!, 1e-12, `${what} step ${t + 1} param ${i}`));
  });
  opt.dispose();
}

// ---- SGD ---------------------------------------------------------------------------------------

function sgdRef(o: { lr: number; momentum?: number; dampening?: number; wd?: number; nesterov?: boolean; maximize?: boolean }) {
  const bufs: (number[] | null)[] = P0.map(() => null);
  const mu = o.momentum ?? 0;
  const damp = o.dampening ?? 0;
  return (ps: number[][], gs: number[][]): void => {
    ps.forEach((p, k) => {
      const d = gs[k]!.map((g, i) => (o.maximize ? -g : g) + (o.wd ?? 0) * p[i]!);
      let dir = d;
      if (mu !== 0) {
        const b = bufs[k] === null ? d.slice() : bufs[k]!.map((b, i) => mu * b + (1 - damp) * d[i]!);
        bufs[k] = b;
        dir = o.nesterov ? d.map((x, i) => x + mu * b[i]!) : b;
      }
      for (let i = 0; i < p.length; i++) p[i] = p[i]! - o.lr * dir[i]!;
    });
  };
}

test('SGD plain, momentum+dampening+weight decay, nesterov, maximize follow the update equations', () => {
  checkAgainstEquations((ps) => new SGD(ps, { lr: 0.1 }), sgdRef({ lr: 0.1 }), 'sgd');
  checkAgainstEquations((ps) => new SGD(ps, { lr: 0.1, momentum: 0.9, dampening: 0.1, weightDecay: 0.01 }),
    sgdRef({ lr: 0.1, momentum: 0.9, dampening: 0.1, wd: 0.01 }), 'sgd momentum');
  checkAgainstEquations((ps) => new SGD(ps, { lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 1e-3 }),
    sgdRef({ lr: 0.05, momentum: 0.9, nesterov: true, wd: 1e-3 }), 'sgd nesterov');
  checkAgainstEquations((ps) => new SGD(ps, { lr: 0.05, momentum: 0.5, weightDecay: 0.01, maximize: true }),
    sgdRef({ lr: 0.05, momentum: 0.5, wd: 0.01, maximize: true }), 'sgd maximize');
});

test('SGD: first momentum step equals plain SGD; a param without grad is skipped', () => {
  const [a, b] = params64();
  const opt = new SGD([a!, b!], { lr: 0.5, momentum: 0.9 });
  torch.scope(() => { a!.grad = torch.tensor([1, 1, 1, 1], { dtype: 'float64' }); });
  opt.step();
  assert.deepEqual(Array.from(a!.toFloat64Array()), [0.0, -1.75, 1.5, 0.25]);
  assert.deepEqual(Array.from(b!.toFloat64Array()), P0[1]);
  assert.equal(opt.state.has(b!), false);
  opt.dispose();
});

// ---- Adam / AdamW ------------------------------------------------------------------------------

function adamRef(o: { lr: number; b1?: number; b2?: number; eps?: number; wd?: number; decoupled: boolean; amsgrad?: boolean; maximize?: boolean }) {
  const b1 = o.b1 ?? 0.9;
  const b2 = o.b2 ?? 0.999;
  const eps = o.eps ?? 1e-8;
  const wd = o.wd ?? (o.decoupled ? 1e-2 : 0);
  const m = P0.map((v) => v.map(() => 0));
  const v = P0.map((x) => x.map(() => 0));
  const vmax = P0.map((x) => x.map(() => 0));
  return (ps: number[][], gs: number[][], t: number): void => {
    ps.forEach((p, k) => {
      for (let i = 0; i < p.length; i++) {
        let g = o.maximize ? -gs[k]![i]! : gs[k]![i]!;
        if (o.decoupled) p[i] = p[i]! * (1 - o.lr * wd);
        else g += wd * p[i]!;
        m[k]![i] = b1 * m[k]![i]! + (1 - b1) * g;
        v[k]![i] = b2 * v[k]![i]! + (1 - b2) * g * g;
        vmax[k]![i] = Math.max(vmax[k]![i]!, v[k]![i]!);
        const vhat = (o.amsgrad ? vmax[k]![i]! : v[k]![i]!);
        const stepSize = o.lr / (1 - b1 ** t);
        p[i] = p[i]! - stepSize * m[k]![i]! / (Math.sqrt(vhat) / Math.sqrt(1 - b2 ** t) + eps);
      }
    });
  };
}

test('Adam and AdamW follow the published equations with bias correction (defaults, wd, amsgrad, maximize)', () => {
  checkAgainstEquations((ps) => new Adam(ps, { lr: 0.01 }), adamRef({ lr: 0.01, decoupled: false }), 'adam');
  checkAgainstEquations((ps) => new Adam(ps, { lr: 0.01, weightDecay: 0.1, amsgrad: true }),
    adamRef({ lr: 0.01, wd: 0.1, amsgrad: true, decoupled: false }), 'adam wd amsgrad');
  checkAgainstEquations((ps) => new AdamW(ps, { lr: 0.01 }), adamRef({ lr: 0.01, decoupled: true }), 'adamw default wd 1e-2');
  checkAgainstEquations((ps) => new AdamW(ps, { lr: 0.03, betas: [0.8, 0.99], eps: 1e-6, weightDecay: 0.05 }),
    adamRef({ lr: 0.03, b1: 0.8, b2: 0.99, eps: 1e-6, wd: 0.05, decoupled: true }), 'adamw betas');
  checkAgainstEquations((ps) => new AdamW(ps, { lr: 0.01, amsgrad: true, maximize: true, weightDecay: 0.1 }),
    adamRef({ lr: 0.01, amsgrad: true, maximize: true, wd: 0.1, decoupled: true }), 'adamw amsgrad maximize');
});

test('AdamW defaults are PyTorch\'s and per-group overrides apply', () => {
  const ps = params64();
  const opt = new AdamW([{ params: [ps[0]!] }, { params: [ps[1]!], lr: 0.5, weightDecay: 0 }]);
  assert.deepEqual({ ...opt.defaults }, { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 1e-2, amsgrad: false, maximize: false });
  assert.equal(opt.paramGroups[0]!.lr, 1e-3);
  assert.equal(opt.paramGroups[0]!.weightDecay, 1e-2);
  assert.equal(opt.paramGroups[1]!.lr, 0.5);
  assert.equal(opt.paramGroups[1]!.weightDecay, 0);
  assert.deepEqual({ ...new Adam(params64()).defaults }, { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, amsgrad: false, maximize: false });
  // First Adam step moves each coordinate by lr·sign(g) (up to eps): bias correction at work.
  setGrads(ps, GRADS[0]!);
  opt.step();
  const moved = ps[1]!.toFloat64Array();
  assertClose([moved[0]! - P0[1]![0]!, moved[1]! - P0[1]![1]!], [-0.5, 0.5], 1e-6, 'first step size');
  opt.dispose();
});

// ---- LARS --------------------------------------------------------------------------------------

test('LARS trust ratio on a hand-checkable case', () => {
  // p = [3, 4] (norm 5), g = [0.6, 0.8] (norm 1), wd = 0.1, eta = 0.01, eps = 0:
  // r = 0.01·5 / (1 + 0.1·5) = 1/30; d = (g + 0.1·p)·r = [0.9, 1.2] / 30 = [0.03, 0.04];
  // no momentum: p -= lr·d with lr = 2 -> [2.94, 3.92].
  const p = torch.tensor([3, 4], { dtype: 'float64', requiresGrad: true });
  const opt = new LARS([p], { lr: 2, momentum: 0, weightDecay: 0.1, trustCoefficient: 0.01, eps: 0 });
  torch.scope(() => { p.grad = torch.tensor([0.6, 0.8], { dtype: 'float64' }); });
  opt.step();
  assertClose(p.toFloat64Array(), [2.94, 3.92], 1e-14, 'lars');
  // clipLarsLr: r/lr = 1/60 < 1 -> d = (g + wd·p)·(1/60); from [3, 4] again.
  const q = torch.tensor([3, 4], { dtype: 'float64', requiresGrad: true });
  const opt2 = new LARS([q], { lr: 2, momentum: 0, weightDecay: 0.1, trustCoefficient: 0.01, eps: 0, clipLarsLr: true });
  torch.scope(() => { q.grad = torch.tensor([0.6, 0.8], { dtype: 'float64' }); });
  opt2.step();
  assertClose(q.toFloat64Array(), [3 - 2 * 0.9 / 60, 4 - 2 * 1.2 / 60], 1e-14, 'lars clip');
  // A zero gradient (or zero weights) skips adaptation and weight decay: d = g = 0.
  torch.scope(() => { q.grad = torch.zeros([2], { dtype: 'float64' }); });
  const before = Array.from(q.toFloat64Array());
  opt2.step();
  assert.deepEqual(Array.from(q.toFloat64Array()), before);
  assert.deepEqual({ ...new LARS([torch.zeros([1], { requiresGrad: true })], { lr: 1 }).defaults },
    { lr: 1, momentum: 0.9, dampening: 0, weightDecay: 0, nesterov: false, trustCoefficient: 1e-3, eps: 1e-8, clipLarsLr: false });
});

test('LARS groups with lars: false take plain SGD-momentum steps', () => {
  checkAgainstEquations(
    (ps) => new LARS([{ params: ps, lars: false, weightDecay: 0.01 }], { lr: 0.1, momentum: 0.9 }),
    sgdRef({ lr: 0.1, momentum: 0.9, wd: 0.01 }), 'lars excluded');
});

// ---- clipping ----------------------------------------------------------------------------------

test('clipGradNorm_ returns the total norm and scales gradients', () => {
  const a = torch.zeros([2], { dtype: 'float64', requiresGrad: true });
  const b = torch.zeros([1], { dtype: 'float64', requiresGrad: true });
  const c = torch.zeros([1], { dtype: 'float64', requiresGrad: true }); // no grad: ignored
  torch.scope(() => { a.grad = torch.tensor([3, 0], { dtype: 'float64' }); b.grad = torch.tensor([4], { dtype: 'float64' }); });
  const total = clipGradNorm_([a, b, c], 1);
  assert.equal(total, 5);
  const coef = 1 / (5 + 1e-6);
  assertClose(torch.scope(() => a.grad!.toFloat64Array()), [3 * coef, 0], 1e-15, 'a');
  assertClose(torch.scope(() => b.grad!.toFloat64Array()), [4 * coef, ], 1e-15, 'b');
  // Under the limit: the norm is returned and the gradients keep their values (coef clamps to 1).
  assert.ok(Math.abs(clipGradNorm_([a, b], 10) - 1) < 1e-6);
  assertClose(torch.scope(() => b.grad!.toFloat64Array()), [4 * coef], 1e-15, 'b unchanged');
  // Max-norm and no gradients at all.
  assert.equal(clipGradNorm_([a, b], 100, Infinity), torch.scope(() => b.grad!.item()));
  assert.equal(clipGradNorm_([c], 1), 0);
  torch.scope(() => { a.grad = torch.tensor([NaN, 1], { dtype: 'float64' }); });
  assert.throws(() => clipGradNorm_([a], 1, 2, { errorIfNonfinite: true }), /total norm of order 2 .* is NaN/);
  clipGradValue_([b], 0.5);
  assertClose(torch.scope(() => b.grad!.toFloat64Array()), [0.5], 0, 'clip value');
});

// ---- against PyTorch ---------------------------------------------------------------------------

interface Fixture {
  torch: string;
  p0: number[][];
  shapes: number[][];
  grads: number[][][];
  cases: Record<string, number[][][]>;
  clip: { maxNorm: number; scale: number; results: Record<string, { total: number; grads: number[][] }> };
}
const fx = JSON.parse(readFileSync(new URL('../../test/fixtures/optim_expected.json', import.meta.url), 'utf8')) as Fixture;

const makers: Record<string, (ps: Tensor[]) => Optimizer<any>> = {
  sgd_plain: (ps) => new SGD(ps, { lr: 0.1 }),
  sgd_momentum_dampening_wd: (ps) => new SGD(ps, { lr: 0.1, momentum: 0.9, dampening: 0.1, weightDecay: 0.01 }),
  sgd_nesterov_wd: (ps) => new SGD(ps, { lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 0.001 }),
  sgd_maximize: (ps) => new SGD(ps, { lr: 0.05, momentum: 0.5, weightDecay: 0.01, maximize: true }),
  sgd_groups: (ps) => new SGD([{ params: [ps[0]!], weightDecay: 0.1 }, { params: [ps[1]!], lr: 0.01 }], { lr: 0.1, momentum: 0.9 }),
  adam_default: (ps) => new Adam(ps, { lr: 1e-2 }),
  adam_wd_amsgrad: (ps) => new Adam(ps, { lr: 1e-2, weightDecay: 0.1, amsgrad: true }),
  adamw_default_wd: (ps) => new AdamW(ps, { lr: 1e-2 }),
  adamw_betas_eps_wd: (ps) => new AdamW(ps, { lr: 3e-2, betas: [0.8, 0.99], eps: 1e-6, weightDecay: 0.05 }),
  adamw_amsgrad_maximize: (ps) => new AdamW(ps, { lr: 1e-2, weightDecay: 0.1, amsgrad: true, maximize: true }),
  lars: (ps) => new LARS(ps, { lr: 0.5, weightDecay: 1e-4 }),
  lars_excluded_group: (ps) => new LARS([{ params: [ps[0]!] }, { params: [ps[1]!], weightDecay: 0, lars: false }], { lr: 0.5, weightDecay: 1e-4 }),
  lars_clip_nesterov: (ps) => new LARS(ps, { lr: 1e-4, weightDecay: 1e-3, nesterov: true, clipLarsLr: true }),
};

test('optimizers match PyTorch 1.13 trajectories (float32)', () => {
  assert.deepEqual(Object.keys(makers).sort(), Object.keys(fx.cases).sort());
  for (const [name, make] of Object.entries(makers)) {
    const ps = fx.p0.map((v, i) => torch.tensor(new Float32Array(v), { shape: fx.shapes[i]! }).requiresGrad_(true).keep());
    const opt = make(ps);
    fx.grads.forEach((gs, t) => {
      torch.scope(() => ps.forEach((p, i) => { p.grad = torch.tensor(new Float32Array(gs[i]!), { shape: fx.shapes[i]! }); }));
      opt.step();
      ps.forEach((p, i) => assertClose(p.toFloat32Array(), fx.cases[name]![t]![i]!, 2e-6, `${name} step ${t + 1} param ${i}`));
    });
    opt.dispose();
    ps.forEach((p) => p.dispose());
  }
});

test('clipGradNorm_ matches torch.nn.utils.clip_grad_norm_', () => {
  for (const [key, want] of Object.entries(fx.clip.results)) {
    const ps = fx.p0.map((v, i) => torch.tensor(new Float32Array(v), { shape: fx.shapes[i]! }).requiresGrad_(true));
    torch.scope(() => ps.forEach((p, i) => { p.grad = torch.tensor(new Float32Array(fx.grads[0]![i]!), { shape: fx.shapes[i]! }).mul(fx.clip.scale); }));
    const total = clipGradNorm_(ps, fx.clip.maxNorm, key === 'inf' ? Infinity : Number(key));
    assertClose([total], [want.total], 1e-6, `norm ${key}`);
    ps.forEach((p, i) => assertClose(torch.scope(() => p.grad!.toFloat32Array()), want.grads[i]!, 1e-6, `grad ${key} ${i}`));
  }
});

test('a long run keeps the live tensor count flat', () => {
  const ps = [torch.randn([8, 4], { requiresGrad: true }), torch.randn([4], { requiresGrad: true })];
  const opts: Optimizer<any>[] = [
    new SGD(ps, { lr: 0.01, momentum: 0.9, nesterov: true, weightDecay: 1e-4 }),
    new AdamW(ps, { amsgrad: true }),
    new LARS(ps, { lr: 0.1, weightDecay: 1e-6, clipLarsLr: true }),
  ];
  const run = (n: number): void => {
    for (let i = 0; i < n; i++) {
      torch.scope(() => { for (const p of ps) p.grad = torch.randnLike(p); });
      for (const o of opts) o.step();
      clipGradNorm_(ps, 1);
      opts[0]!.zeroGrad();
    }
  };
  run(5);
  const before = torch.memory().count;
  run(300);
  assert.equal(torch.memory().count, before);
  assert.equal(ps[0]!.grad, null);
  for (const o of opts) o.dispose();
});

test('bad hyperparameters and parameters are refused with clear errors', () => {
  const p = torch.zeros([2], { requiresGrad: true });
  assert.throws(() => new SGD([p], { lr: -1 }), /SGD: invalid learning rate: -1/);
  assert.throws(() => new SGD([p], { lr: 0.1, nesterov: true }), /Nesterov momentum requires a momentum and zero dampening/);
  assert.throws(() => new SGD([p], {} as never), /SGD: lr is required/);
  assert.throws(() => new AdamW([p], { betas: [1, 0.999] }), /AdamW: invalid beta parameter at index 0: 1/);
  assert.throws(() => new Adam([p], { eps: -1 }), /Adam: invalid epsilon value/);
  assert.throws(() => new AdamW([{ params: [p] }, { params: [p] }]), /more than one parameter group/);
  assert.throws(() => new AdamW([]), /empty parameter list/);
  assert.throws(() => new AdamW(p as never), /got a single Tensor/);
  const q = torch.scope(() => p.mul(2));
  assert.throws(() => new AdamW([q]), /can't optimize a non-leaf Tensor/);
  assert.throws(() => new LARS([p], { lr: 0, clipLarsLr: true }), /clipLarsLr needs lr > 0/);
});
