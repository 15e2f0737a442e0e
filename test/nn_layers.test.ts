// nn layers against values computed by hand (or by plain-JS reference loops) in the test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../src/torch/index.js';
import * as nn from '../src/nn/index.js';

const close = (a: number[], b: number[], tol = 1e-5): void => {
  assert.equal(a.length, b.length, `length ${a.length} vs ${b.length}`);
  a.forEach((v, i) => assert.ok(Math.abs(v - b[i]!) <= tol * Math.max(1, Math.abs(b[i]!)), `index ${i}: ${v} vs ${b[i]}`));
};
/** Sets a parameter's values in place. */
const set = (p: torch.Tensor, values: number[]): void => {
  torch.noGrad(() => p.copy_(torch.tensor(values, { shape: p.shape })));
};

/** Plain-JS 2-d convolution (zero padding), x [N, Cin, H, W], w [Cout, Cin/g, kh, kw]. */
function refConv(x: number[], xs: number[], w: number[], ws: number[], b: number[] | null,
  o: { stride: number; padding: number; dilation: number; groups: number }): { out: number[]; shape: number[] } {
  const [N, Cin, H, W] = xs as [number, number, number, number];
  const [Cout, Cg, kh, kw] = ws as [number, number, number, number];
  const Ho = Math.floor((H + 2 * o.padding - o.dilation * (kh - 1) - 1) / o.stride) + 1;
  const Wo = Math.floor((W + 2 * o.padding - o.dilation * (kw - 1) - 1) / o.stride) + 1;
  const out: number[] = [];
  const perGroupOut = Cout / o.groups;
  for (let n = 0; n < N; n++) for (let co = 0; co < Cout; co++) for (let i = 0; i < Ho; i++) for (let j = 0; j < Wo; j++) {
    const g = Math.floor(co / perGroupOut);
    let s = b === null ? 0 : b[co]!;
    for (let c = 0; c < Cg; c++) for (let u = 0; u < kh; u++) for (let v = 0; v < kw; v++) {
      const y = i * o.stride - o.padding + u * o.dilation, xx = j * o.stride - o.padding + v * o.dilation;
      if (y < 0 || y >= H || xx < 0 || xx >= W) continue;
      const ci = g * Cg + c;
      s += x[((n * Cin + ci) * H + y) * W + xx]! * w[((co * Cg + c) * kh + u) * kw + v]!;
    }
    out.push(s);
  }
  assert.equal(Cin, Cg * o.groups);
  return { out, shape: [N, Cout, Ho, Wo] };
}

test('Conv2d with hand-set weights on a 3x3 image', () => {
  const conv = new nn.Conv2d(1, 2, 2);
  assert.deepEqual(conv.weight.shape, [2, 1, 2, 2]);
  set(conv.weight, [1, 0, 0, -1, /* second filter */ 1, 1, 1, 1]);
  set(conv.bias!, [0.5, 0]);
  const x = torch.tensor([1, 2, 3, 4, 5, 6, 7, 8, 9], { shape: [1, 1, 3, 3] });
  const y = conv.forward(x);
  assert.deepEqual(y.shape, [1, 2, 2, 2]);
  // filter 0: x[i][j] - x[i+1][j+1] = -4, plus 0.5; filter 1: sums of 2x2 windows
  close(y.toArray(), [-3.5, -3.5, -3.5, -3.5, 12, 16, 24, 28]);
});

test("Conv2d padding 'same', 'valid' and the replicate padding mode", () => {
  const same = new nn.Conv2d(1, 1, 3, { padding: 'same', bias: false });
  set(same.weight, Array(9).fill(1));
  const ones = torch.ones([1, 1, 3, 3]);
  // a 3x3 box sum of ones with zero padding: corners see 4, edges 6, the centre 9
  close(same.forward(ones).toArray(), [4, 6, 4, 6, 9, 6, 4, 6, 4]);
  const valid = new nn.Conv2d(1, 1, 3, { padding: 'valid', bias: false });
  assert.deepEqual(valid.forward(ones).shape, [1, 1, 1, 1]);
  const rep = new nn.Conv2d(1, 1, 3, { padding: 1, bias: false, paddingMode: 'replicate' });
  set(rep.weight, Array(9).fill(1));
  const x = torch.tensor([1, 2, 3, 4, 5, 6, 7, 8, 9], { shape: [1, 1, 3, 3] });
  // corner (0,0) with edges replicated: rows {0,0,1} x cols {0,0,1} -> 1+1+2 + 1+1+2 + 4+4+5 = 21
  const out = rep.forward(x).toArray();
  assert.equal(out.length, 9);
  close([out[0]!, out[4]!], [21, 45]);
  assert.throws(() => new nn.Conv2d(1, 1, 3, { padding: 'same', stride: 2 }), /strided/);
  assert.throws(() => new nn.Conv2d(3, 4, 3, { groups: 2 }), /divisible/);
});

test('Conv2d matches a reference loop with stride, padding, dilation and groups', () => {
  torch.manualSeed(1);
  const cases = [
    { cin: 2, cout: 3, k: 3, stride: 1, padding: 1, dilation: 1, groups: 1 },
    { cin: 4, cout: 2, k: 3, stride: 2, padding: 1, dilation: 1, groups: 2 },
    { cin: 2, cout: 2, k: 2, stride: 1, padding: 2, dilation: 2, groups: 1 },
  ];
  for (const c of cases) {
    const conv = new nn.Conv2d(c.cin, c.cout, c.k, { stride: c.stride, padding: c.padding, dilation: c.dilation, groups: c.groups });
    const x = torch.randn([2, c.cin, 5, 6]);
    const ref = refConv(x.toArray(), x.shape, conv.weight.toArray(), conv.weight.shape, conv.bias!.toArray(), c);
    const y = conv.forward(x);
    assert.deepEqual(y.shape, ref.shape);
    close(y.toArray(), ref.out, 1e-4);
  }
});

test('ConvTranspose2d is the adjoint of Conv2d and honours outputSize', () => {
  torch.manualSeed(2);
  const conv = new nn.Conv2d(3, 2, 3, { stride: 2, padding: 1, bias: false });
  const convT = new nn.ConvTranspose2d(2, 3, 3, { stride: 2, padding: 1, bias: false });
  assert.deepEqual(convT.weight.shape, [2, 3, 3, 3]); // [Cin, Cout/groups, kH, kW]
  torch.noGrad(() => convT.weight.copy_(conv.weight));
  const x = torch.randn([1, 3, 7, 7]);
  const y = torch.randn([1, 2, 4, 4]);
  // <conv(x), y> == <x, convT(y)>
  const lhs = conv.forward(x).mul(y).sum().item();
  const back = convT.forward(y);
  assert.deepEqual(back.shape, [1, 3, 7, 7]); // (4 - 1)·2 - 2 + 2 + 1
  const rhs = x.mul(back).sum().item();
  assert.ok(Math.abs(lhs - rhs) < 1e-3 * Math.max(1, Math.abs(lhs)), `${lhs} vs ${rhs}`);
  assert.deepEqual(convT.forward(y, [8, 8]).shape, [1, 3, 8, 8]);
  assert.throws(() => convT.forward(y, [10, 10]), /valid sizes/);
  // with a bias: every output gets it
  const up = new nn.ConvTranspose2d(1, 1, 2, { stride: 2 });
  set(up.weight, [1, 2, 3, 4]);
  set(up.bias!, [10]);
  close(up.forward(torch.tensor([1, 2], { shape: [1, 1, 1, 2] })).toArray(), [11, 12, 12, 14, 13, 14, 16, 18]);
});

test('Linear: y = x Wᵀ + b, and no bias', () => {
  const fc = new nn.Linear(3, 2);
  assert.deepEqual(fc.weight.shape, [2, 3]);
  set(fc.weight, [1, 2, 3, -1, 0, 1]);
  set(fc.bias!, [0.5, -0.5]);
  const x = torch.tensor([[1, 1, 1], [1, 2, 3]]);
  close(fc.forward(x).toArray(), [6.5, -0.5, 14.5, 1.5]);
  const nb = new nn.Linear(3, 2, { bias: false });
  assert.equal(nb.bias, null);
  assert.deepEqual(nb.namedParameters().map(([n]) => n), ['weight']);
  assert.equal(String(fc), 'Linear(in_features=3, out_features=2, bias=True)');
});

test('BatchNorm2d: training output, running statistics, eval mode', () => {
  const bn = new nn.BatchNorm2d(2, { eps: 0 });
  set(bn.weight!, [2, 1]);
  set(bn.bias!, [0, 1]);
  // [N=2, C=2, H=1, W=2]; channel 0 values 1,3 (n=0) and 5,7 (n=1); channel 1: 2,2 and 4,8
  const x = torch.tensor([1, 3, 2, 2, 5, 7, 4, 8], { shape: [2, 2, 1, 2] });
  const y = bn.forward(x);
  const c0 = [1, 3, 5, 7], c1 = [2, 2, 4, 8];
  const mean = (a: number[]): number => a.reduce((s, v) => s + v, 0) / a.length;
  const bvar = (a: number[]): number => a.reduce((s, v) => s + (v - mean(a)) ** 2, 0) / a.length;
  const uvar = (a: number[]): number => (bvar(a) * a.length) / (a.length - 1);
  const n0 = c0.map((v) => (2 * (v - mean(c0))) / Math.sqrt(bvar(c0)));
  const n1 = c1.map((v) => (v - mean(c1)) / Math.sqrt(bvar(c1)) + 1);
  close(y.toArray(), [n0[0]!, n0[1]!, n1[0]!, n1[1]!, n0[2]!, n0[3]!, n1[2]!, n1[3]!]);
  // running_mean = 0.9·0 + 0.1·mean; running_var = 0.9·1 + 0.1·unbiased var
  close(bn.running_mean!.toArray(), [0.1 * mean(c0), 0.1 * mean(c1)]);
  close(bn.running_var!.toArray(), [0.9 + 0.1 * uvar(c0), 0.9 + 0.1 * uvar(c1)]);
  assert.equal(bn.num_batches_tracked!.dtype, 'int64');
  assert.equal(bn.num_batches_tracked!.item(), 1);
  // eval: (x - running_mean) / sqrt(running_var) · w + b
  bn.eval();
  const rm = bn.running_mean!.toArray(), rv = bn.running_var!.toArray();
  const e = bn.forward(x).toArray();
  close(e.slice(0, 2), [1, 3].map((v) => (2 * (v - rm[0]!)) / Math.sqrt(rv[0]!)));
  close(e.slice(2, 4), [2, 2].map((v) => (v - rm[1]!) / Math.sqrt(rv[1]!) + 1));
  assert.equal(bn.num_batches_tracked!.item(), 1, 'eval does not count batches');
  close(bn.running_mean!.toArray(), rm, 0);
  assert.throws(() => bn.forward(torch.ones([2, 2])), /4D input/);
});

test('BatchNorm1d with momentum null keeps a cumulative average; trackRunningStats false uses batch stats', () => {
  const bn = new nn.BatchNorm1d(1, { momentum: null, affine: false });
  assert.equal(bn.weight, null);
  const batches = [[1, 3], [5, 9], [0, 4]];
  for (const b of batches) bn.forward(torch.tensor(b, { shape: [2, 1] }));
  // cumulative average of the batch means (2, 7, 2) and unbiased variances (2, 8, 8)
  close(bn.running_mean!.toArray(), [11 / 3]);
  close(bn.running_var!.toArray(), [6]);
  assert.equal(bn.num_batches_tracked!.item(), 3);
  const free = new nn.BatchNorm1d(2, { trackRunningStats: false });
  assert.deepEqual(free.namedBuffers(), []);
  free.eval();
  const y = free.forward(torch.tensor([[1, 10], [3, 30]]));
  close(y.toArray(), [-1, -1, 1, 1], 1e-4); // batch statistics even in eval
  assert.ok(String(bn).startsWith('BatchNorm1d(1, eps=1e-05, momentum=None'));
});

test('LayerNorm and GroupNorm', () => {
  const ln = new nn.LayerNorm(4);
  set(ln.weight!, [1, 2, 1, 1]);
  set(ln.bias!, [0, 0, 0, 1]);
  const x = torch.tensor([[1, 2, 3, 4], [2, 2, 2, 6]]);
  const row = (r: number[], w: number[], b: number[]): number[] => {
    const m = r.reduce((s, v) => s + v, 0) / r.length;
    const v = r.reduce((s, u) => s + (u - m) ** 2, 0) / r.length;
    return r.map((u, i) => ((u - m) / Math.sqrt(v + 1e-5)) * w[i]! + b[i]!);
  };
  close(ln.forward(x).toArray(), [...row([1, 2, 3, 4], [1, 2, 1, 1], [0, 0, 0, 1]), ...row([2, 2, 2, 6], [1, 2, 1, 1], [0, 0, 0, 1])], 1e-4);
  assert.equal(new nn.LayerNorm([2, 3], { elementwiseAffine: false }).parameters().length, 0);
  // GroupNorm with 2 groups of 2 channels over [1, 4, 1, 1]: each pair normalised to ±1
  const gn = new nn.GroupNorm(2, 4, { eps: 0 });
  close(gn.forward(torch.tensor([1, 3, 10, 20], { shape: [1, 4, 1, 1] })).toArray(), [-1, 1, -1, 1], 1e-5);
  assert.throws(() => new nn.GroupNorm(3, 4), /divisible/);
});

test('Embedding, Dropout, pooling, activations, Flatten, Identity', () => {
  const emb = new nn.Embedding(5, 3, { paddingIdx: 0 });
  close(emb.weight.get(0).toArray(), [0, 0, 0], 0);
  const out = emb.forward(torch.tensor([[1n, 0n], [4n, 4n]]));
  assert.deepEqual(out.shape, [2, 2, 3]);
  close(out.get(1).get(0).toArray(), emb.weight.get(4).toArray(), 0);
  const pre = nn.Embedding.fromPretrained(torch.eye(3));
  assert.equal(pre.weight.requiresGrad, false);
  close(pre.forward(torch.tensor([2n])).toArray(), [0, 0, 1], 0);

  torch.manualSeed(0);
  const drop = new nn.Dropout(0.25);
  const y = drop.forward(torch.ones([10000])).toArray();
  const zeros = y.filter((v) => v === 0).length;
  assert.ok(zeros > 2200 && zeros < 2800, `zeros ${zeros}`);
  assert.ok(y.every((v) => v === 0 || Math.abs(v - 1 / 0.75) < 1e-6));
  drop.eval();
  close(drop.forward(torch.ones([5])).toArray(), [1, 1, 1, 1, 1], 0);
  assert.throws(() => new nn.Dropout(1.5), /between 0 and 1/);

  const img = torch.tensor([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16], { shape: [1, 1, 4, 4] });
  close(new nn.MaxPool2d(2).forward(img).toArray(), [6, 8, 14, 16]);
  close(new nn.AvgPool2d(2).forward(img).toArray(), [3.5, 5.5, 11.5, 13.5]);
  close(new nn.AdaptiveAvgPool2d(1).forward(img).toArray(), [8.5]);
  assert.deepEqual(new nn.AdaptiveAvgPool2d([2, null]).forward(img).shape, [1, 1, 2, 4]);
  close(new nn.MaxPool2d(3, { stride: 1, padding: 1 }).forward(img).toArray().slice(0, 4), [6, 7, 8, 8]);

  const v = torch.tensor([-1, 0, 2]);
  close(new nn.ReLU().forward(v).toArray(), [0, 0, 2]);
  close(new nn.Sigmoid().forward(v).toArray(), [-1, 0, 2].map((a) => 1 / (1 + Math.exp(-a))));
  close(new nn.Tanh().forward(v).toArray(), [-1, 0, 2].map(Math.tanh));
  close(new nn.SiLU().forward(v).toArray(), [-1, 0, 2].map((a) => a / (1 + Math.exp(-a))));
  close(new nn.QuickGELU().forward(v).toArray(), [-1, 0, 2].map((a) => a / (1 + Math.exp(-1.702 * a))));
  close(new nn.GELU({ approximate: 'tanh' }).forward(v).toArray(),
    [-1, 0, 2].map((a) => 0.5 * a * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (a + 0.044715 * a ** 3)))));
  const s = new nn.Softmax(-1).forward(v).toArray();
  const z = Math.exp(-1) + 1 + Math.exp(2);
  close(s, [Math.exp(-1) / z, 1 / z, Math.exp(2) / z]);
  assert.deepEqual(new nn.Flatten().forward(torch.ones([2, 3, 4, 5])).shape, [2, 60]);
  const same = torch.ones([2]);
  assert.equal(new nn.Identity().forward(same), same);
});
