// The method zoo's losses against independent computations: PyTorch (Debian's python3-torch) on
// the same inputs where torch has the loss or its formula is a few lines of torch, plain-JS sums
// otherwise; the triplet mining against a brute-force enumeration of every triplet; DINO's centre
// and teacher-temperature schedule by hand.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import * as torch from '../src/torch/index.js';
import {
  NegativeCosineSimilarity, BarlowTwinsLoss, VICRegLoss, DINOLoss, SupConLoss, TripletMarginLoss, TripletLoss, NTXentLoss,
} from '../src/index.js';

const PY = '/usr/bin/python3';
const hasTorchPy = existsSync(PY) && spawnSync(PY, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;

/** Runs `code` in python with `inputs` (JSON) as `I`; the script prints JSON. */
function py(code: string, inputs: unknown): any {
  const prelude = 'import json, sys, torch, torch.nn.functional as F\ntorch.set_num_threads(1)\nI = json.loads(sys.stdin.read())\nT = lambda a: torch.tensor(a, dtype=torch.float64)\n';
  const r = spawnSync(PY, ['-c', prelude + code], { input: JSON.stringify(inputs), encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

let seed = 7;
const rnd = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
const mat = (n: number, d: number): number[][] => Array.from({ length: n }, () => Array.from({ length: d }, rnd));
const close = (a: number, b: number, tol = 1e-4, what = ''): void => assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);
const norm = (v: number[], p = 2): number => v.reduce((s, x) => s + Math.abs(x) ** p, 0) ** (1 / p);
const unit = (v: number[]): number[] => { const n = norm(v); return v.map((x) => x / n); };
const dot = (a: number[], b: number[]): number => a.reduce((s, x, i) => s + x * b[i]!, 0);
const dist = (a: number[], b: number[]): number => norm(a.map((x, i) => x - b[i]!));

test('TripletMarginLoss matches torch.nn.TripletMarginLoss (margin, p, swap, reductions)', { skip: !hasTorchPy && 'no python3 torch' }, () => {
  const [a, p, n] = [mat(6, 5), mat(6, 5), mat(6, 5)];
  const cases = [{ margin: 1, p: 2, swap: false }, { margin: 0.5, p: 1, swap: false }, { margin: 2, p: 3, swap: true }, { margin: 1, p: 2, swap: true }];
  const ref = py(`out = []
for c in I['cases']:
    for red in ['mean', 'sum', 'none']:
        l = torch.nn.TripletMarginLoss(margin=c['margin'], p=c['p'], swap=c['swap'], reduction=red)(T(I['a']), T(I['p']), T(I['n']))
        out.append(l.tolist())
print(json.dumps(out))`, { a, p, n, cases });
  let k = 0;
  for (const c of cases) {
    for (const reduction of ['mean', 'sum', 'none'] as const) {
      const got = new TripletMarginLoss({ ...c, reduction }).forward(torch.tensor(a), torch.tensor(p), torch.tensor(n));
      const want = ref[k++];
      if (reduction === 'none') (got.toArray() as number[]).forEach((v, i) => close(v, want[i], 1e-5, `${JSON.stringify(c)} none[${i}]`));
      else close(got.item(), want, 1e-5, `${JSON.stringify(c)} ${reduction}`);
    }
  }
  assert.throws(() => new TripletMarginLoss({ margin: 0 }), /margin must be a positive number/);
  assert.throws(() => new TripletMarginLoss().forward(torch.zeros([2, 3]), torch.zeros([2, 3]), torch.zeros([3, 3])), /must all be \[N, D\] alike/);
});

test('NegativeCosineSimilarity, BarlowTwinsLoss and VICRegLoss match their formulas in torch', { skip: !hasTorchPy && 'no python3 torch' }, () => {
  const x = mat(8, 6);
  const y = x.map((r) => r.map((v) => v * 0.7 + rnd() * 0.3));
  const ref = py(`x, y = T(I['x']), T(I['y'])
ncs = -F.cosine_similarity(x, y, dim=1, eps=1e-8).mean()
def bt(a, b, lam):  # lightly's BarlowTwinsLoss
    a = (a - a.mean(0)) / a.std(0); b = (b - b.mean(0)) / b.std(0)
    c = a.T @ b / a.shape[0]
    on = (torch.diagonal(c) - 1).pow(2).sum(); off = c.flatten()[:-1].view(c.shape[0] - 1, c.shape[0] + 1)[:, 1:].flatten().pow(2).sum()
    return on + lam * off
def vic(a, b, lam=25., mu=25., nu=1., eps=1e-4):  # the paper's Algorithm 1
    inv = F.mse_loss(a, b)
    std = lambda z: torch.sqrt(z.var(dim=0) + eps)
    var = torch.mean(F.relu(1 - std(a))) / 2 + torch.mean(F.relu(1 - std(b))) / 2
    def cov(z):
        n, d = z.shape; z = z - z.mean(0); c = (z.T @ z) / (n - 1)
        return (c.pow(2).sum() - torch.diagonal(c).pow(2).sum()) / d
    return lam * inv + mu * var + nu * (cov(a) + cov(b))
print(json.dumps([ncs.item(), bt(x, y, 5e-3).item(), bt(x, y, 0.1).item(), vic(x, y).item(), vic(x, y, 1., 2., 3.).item()]))`, { x, y });
  const [tx, ty] = [torch.tensor(x), torch.tensor(y)];
  close(new NegativeCosineSimilarity().forward(tx, ty).item(), ref[0], 1e-5, 'ncs');
  close(new BarlowTwinsLoss().forward(tx, ty).item(), ref[1], 1e-4, 'barlow λ=5e-3');
  close(new BarlowTwinsLoss({ lambdaParam: 0.1 }).forward(tx, ty).item(), ref[2], 1e-4, 'barlow λ=0.1');
  close(new VICRegLoss().forward(tx, ty).item(), ref[3], 1e-4, 'vicreg 25/25/1');
  close(new VICRegLoss({ lambdaParam: 1, muParam: 2, nuParam: 3 }).forward(tx, ty).item(), ref[4], 1e-4, 'vicreg 1/2/3');
  assert.equal(new BarlowTwinsLoss().lambdaParam, 5e-3);
  assert.throws(() => new VICRegLoss({ muParam: -1 }), /muParam must be a non-negative number/);
  assert.throws(() => new BarlowTwinsLoss().forward(torch.zeros([1, 3]), torch.zeros([1, 3])), /at least 2/);
});

test('SupConLoss: by hand with labels (every same-class view a positive); without labels it is NT-Xent', () => {
  const v0 = mat(6, 4);
  const v1 = mat(6, 4);
  const labels = [0, 1, 0, 2, 1, 0];
  const tau = 0.2;
  const z = [...v0, ...v1].map(unit);
  const y = [...labels, ...labels];
  let total = 0;
  for (let i = 0; i < 12; i++) {
    let denom = 0;
    for (let a = 0; a < 12; a++) if (a !== i) denom += Math.exp(dot(z[i]!, z[a]!) / tau);
    let s = 0;
    let np = 0;
    for (let p = 0; p < 12; p++) if (p !== i && y[p] === y[i]) { s += Math.log(Math.exp(dot(z[i]!, z[p]!) / tau) / denom); np++; }
    total += -s / np;
  }
  const got = new SupConLoss({ temperature: tau }).forward(torch.tensor(v0), torch.tensor(v1), torch.tensor(labels, { dtype: 'int64' })).item();
  close(got, total / 12, 1e-5, 'supcon');
  const plain = new SupConLoss({ temperature: 0.5 }).forward(torch.tensor(v0), torch.tensor(v1)).item();
  close(plain, new NTXentLoss({ temperature: 0.5 }).forward(torch.tensor(v0), torch.tensor(v1)).item(), 1e-6, 'no labels = NT-Xent');
  assert.throws(() => new SupConLoss().forward(torch.tensor(v0), torch.tensor(v1), torch.tensor([0, 1], { dtype: 'int64' })), /labels must be \[6\]/);
});

/** Every valid triplet of a labelled batch, by brute force. */
function bruteForce(x: number[][], y: number[], margin: number, mining: 'batch-all' | 'batch-hard' | 'semi-hard'): { loss: number; active: number } {
  const z = x.map(unit);
  const b = z.length;
  const d = (i: number, j: number): number => dist(z[i]!, z[j]!);
  const terms: number[] = [];
  for (let a = 0; a < b; a++) {
    const ps = [...Array(b).keys()].filter((p) => p !== a && y[p] === y[a]);
    const ns = [...Array(b).keys()].filter((n) => y[n] !== y[a]);
    if (mining === 'batch-all') { for (const p of ps) for (const n of ns) terms.push(Math.max(0, d(a, p) - d(a, n) + margin)); continue; }
    if (ps.length === 0 || ns.length === 0) continue;
    if (mining === 'batch-hard') {
      terms.push(Math.max(0, Math.max(...ps.map((p) => d(a, p))) - Math.min(...ns.map((n) => d(a, n))) + margin));
      continue;
    }
    for (const p of ps) {
      const farther = ns.map((n) => d(a, n)).filter((v) => v > d(a, p));
      const dn = farther.length ? Math.min(...farther) : Math.max(...ns.map((n) => d(a, n)));
      terms.push(Math.max(0, d(a, p) - dn + margin));
    }
  }
  const act = terms.filter((t) => t > 0);
  const sum = terms.reduce((s, t) => s + t, 0);
  return { loss: mining === 'batch-all' ? (act.length ? sum / act.length : 0) : sum / terms.length, active: act.length / terms.length };
}

test('TripletLoss: batch-all, batch-hard and semi-hard mining equal a brute-force enumeration of all triplets', () => {
  for (const margin of [0.2, 1]) {
    for (const mining of ['batch-all', 'batch-hard', 'semi-hard'] as const) {
      const x = mat(12, 5);
      const y = [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 4]; // class 4 has no positive: it only serves as a negative
      const loss = new TripletLoss({ margin, mining });
      const got = loss.forward(torch.tensor(x), torch.tensor(y, { dtype: 'int64' })).item();
      const want = bruteForce(x, y, margin, mining);
      close(got, want.loss, 1e-4, `${mining} margin ${margin}`);
      close(loss.activeFraction, want.active, 1e-9, `${mining} margin ${margin} active fraction`);
      assert.ok(want.active > 0 && want.active <= 1);
    }
  }
  // gradients are finite with duplicate rows (zero distances)
  const x = torch.tensor([[1, 0], [1, 0], [0, 1], [0, 1]], { requiresGrad: true });
  const l = new TripletLoss({ mining: 'batch-all' }).forward(x, torch.tensor([0, 0, 1, 1], { dtype: 'int64' }));
  l.backward();
  assert.ok(x.grad!.isfinite().all().item());
  assert.throws(() => new TripletLoss({ mining: 'hardest' as never }), /mining must be one of batch-all, batch-hard, semi-hard/);
});

test('DINOLoss by hand: teacher centring and sharpening, view pairs, centre update, temperature warm-up', () => {
  const D = 4;
  const loss = new DINOLoss({ outputDim: D, warmupTeacherTemp: 0.04, teacherTemp: 0.07, warmupTeacherTempEpochs: 4, studentTemp: 0.1, centerMomentum: 0.9 });
  // numpy's linspace(0.04, 0.07, 4) for epochs 0..3, then 0.07
  [0.04, 0.05, 0.06, 0.07, 0.07, 0.07].forEach((t, e) => close(loss.teacherTemperature(e), t, 1e-12, `τ_t epoch ${e}`));
  const t = [mat(3, D), mat(3, D)];
  const s = [mat(3, D), mat(3, D), mat(3, D)];
  const center0 = [0.1, -0.2, 0.05, 0];
  loss.center.copy_(torch.tensor([center0]));
  const epoch = 1;
  const tauT = 0.05;
  const softmax = (v: number[]): number[] => { const m = Math.max(...v); const e = v.map((x) => Math.exp(x - m)); const z = e.reduce((a, b) => a + b); return e.map((x) => x / z); };
  let total = 0;
  let terms = 0;
  for (let i = 0; i < 2; i++) {
    for (let j = 0; j < 3; j++) {
      if (i === j) continue;
      terms++;
      for (let b = 0; b < 3; b++) {
        const pt = softmax(t[i]![b]!.map((x, k) => (x - center0[k]!) / tauT));
        const ps = softmax(s[j]![b]!.map((x) => x / 0.1));
        total += -pt.reduce((acc, p, k) => acc + p * Math.log(ps[k]!), 0);
      }
    }
  }
  const got = loss.forward(t.map((m) => torch.tensor(m)), s.map((m) => torch.tensor(m)), epoch).item();
  close(got, total / (terms * 3), 1e-5, 'DINO loss');
  const mean = Array.from({ length: D }, (_, k) => [...t[0]!, ...t[1]!].reduce((acc, r) => acc + r[k]!, 0) / 6);
  const want = center0.map((c, k) => 0.9 * c + 0.1 * mean[k]!);
  (loss.center.view(-1).toArray() as number[]).forEach((c, k) => close(c, want[k]!, 1e-6, `centre[${k}]`));
  assert.ok(loss.stateDict().has('center'), 'the centre is a buffer, saved with the method');
  assert.throws(() => new DINOLoss({ studentTemp: 0 }), /studentTemp must be a positive number/);
  assert.throws(() => loss.forward([torch.zeros([3, 5])], [torch.zeros([3, 5])]), /outputDim 4/);
});
