// MultiheadAttention against a plain-JS computation from its packed weights.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../src/torch/index.js';
import * as nn from '../src/nn/index.js';

const close = (a: number[], b: number[], tol = 1e-5): void => {
  assert.equal(a.length, b.length);
  a.forEach((v, i) => assert.ok(Math.abs(v - b[i]!) <= tol, `index ${i}: ${v} vs ${b[i]}`));
};

type Mat = number[][];
const rows = (flat: number[], r: number, c: number): Mat => Array.from({ length: r }, (_, i) => flat.slice(i * c, i * c + c));
/** x [n, in] · Wᵀ (W [out, in]) + b. */
const lin = (x: Mat, W: Mat, b: number[]): Mat => x.map((r) => W.map((w, o) => w.reduce((s, v, i) => s + v * r[i]!, b[o]!)));

/**
 * softmax(Q Kᵀ / √d + mask) V per head, then the output projection; x, k, v are one batch
 * element's [L, E] / [S, E] rows. Returns the output rows and the head-averaged weights.
 */
function manualMha(mha: nn.MultiheadAttention, x: Mat, kv: Mat, mask: (i: number, j: number) => boolean): { out: Mat; weights: Mat } {
  const E = mha.embedDim, H = mha.numHeads, d = E / H;
  const W = rows(mha.in_proj_weight!.toArray(), 3 * E, E);
  const b = mha.in_proj_bias!.toArray();
  const Q = lin(x, W.slice(0, E), b.slice(0, E));
  const K = lin(kv, W.slice(E, 2 * E), b.slice(E, 2 * E));
  const V = lin(kv, W.slice(2 * E), b.slice(2 * E));
  const L = x.length, S = kv.length;
  const ctx: Mat = Array.from({ length: L }, () => Array(E).fill(0));
  const avg: Mat = Array.from({ length: L }, () => Array(S).fill(0));
  for (let h = 0; h < H; h++) {
    for (let i = 0; i < L; i++) {
      const scores = Array.from({ length: S }, (_, j) => {
        if (mask(i, j)) return -Infinity;
        let s = 0;
        for (let c = h * d; c < (h + 1) * d; c++) s += Q[i]![c]! * K[j]![c]!;
        return s / Math.sqrt(d);
      });
      const m = Math.max(...scores);
      const e = scores.map((s) => Math.exp(s - m));
      const z = e.reduce((a, v) => a + v, 0);
      const p = e.map((v) => v / z);
      p.forEach((pj, j) => (avg[i]![j]! += pj / H));
      for (let c = h * d; c < (h + 1) * d; c++) ctx[i]![c] = p.reduce((s, pj, j) => s + pj * V[j]![c]!, 0);
    }
  }
  const Wo = rows(mha.out_proj.weight.toArray(), E, E);
  return { out: lin(ctx, Wo, mha.out_proj.bias!.toArray()), weights: avg };
}

test('MultiheadAttention parameters have PyTorch names, shapes and init', () => {
  const mha = new nn.MultiheadAttention(8, 2);
  assert.deepEqual(mha.namedParameters().map(([n, p]) => `${n} ${p.shape.join('x')}`),
    ['in_proj_weight 24x8', 'in_proj_bias 24', 'out_proj.weight 8x8', 'out_proj.bias 8']);
  assert.deepEqual(mha.in_proj_bias!.toArray(), Array(24).fill(0));
  assert.deepEqual(mha.out_proj.bias!.toArray(), Array(8).fill(0));
  const bound = Math.sqrt(6 / (8 + 24)); // xavier uniform over [3E, E]
  assert.ok(mha.in_proj_weight!.abs().max().item() <= bound + 1e-6);
  const cross = new nn.MultiheadAttention(8, 2, { kdim: 5, vdim: 3, bias: false });
  assert.deepEqual(cross.namedParameters().map(([n, p]) => `${n} ${p.shape.join('x')}`),
    ['q_proj_weight 8x8', 'k_proj_weight 8x5', 'v_proj_weight 8x3', 'out_proj.weight 8x8']);
  assert.deepEqual(cross.forward(torch.randn([4, 2, 8]), torch.randn([6, 2, 5]), torch.randn([6, 2, 3]))[0].shape, [4, 2, 8]);
  assert.throws(() => new nn.MultiheadAttention(10, 3), /divisible/);
});

test('MultiheadAttention equals softmax(QKᵀ/√d)V from the packed weights (seq-first and batch-first)', () => {
  torch.manualSeed(3);
  const [L, N, E] = [3, 2, 4];
  const mha = new nn.MultiheadAttention(E, 2);
  torch.noGrad(() => mha.in_proj_bias!.normal_(0, 0.5)); // non-zero biases, so they are checked too
  torch.noGrad(() => mha.out_proj.bias!.normal_(0, 0.5));
  const x = torch.randn([L, N, E]);
  const [out, w] = mha.forward(x, x, x);
  assert.deepEqual(out.shape, [L, N, E]);
  assert.deepEqual(w!.shape, [N, L, L]);
  for (let n = 0; n < N; n++) {
    const xn = rows(x.select(1, n).toArray(), L, E);
    const ref = manualMha(mha, xn, xn, () => false);
    close(out.select(1, n).toArray(), ref.out.flat(), 1e-5);
    close(w!.get(n).toArray(), ref.weights.flat(), 1e-5);
  }
  // batch-first with the same weights gives the same numbers, transposed
  const bf = new nn.MultiheadAttention(E, 2, { batchFirst: true });
  bf.loadStateDict(mha.stateDict());
  const [outBf] = bf.forward(x.transpose(0, 1), x.transpose(0, 1), x.transpose(0, 1), { needWeights: false });
  close(outBf.transpose(0, 1).contiguous().toArray(), out.toArray(), 1e-6);
  // separate key/value tensors (cross-attention path through the packed weight's chunks)
  const kv = torch.randn([5, N, E]);
  const [o2, w2] = mha.forward(x, kv, kv, { averageAttnWeights: false });
  assert.deepEqual(w2!.shape, [N, 2, L, 5]);
  const ref2 = manualMha(mha, rows(x.select(1, 1).toArray(), L, E), rows(kv.select(1, 1).toArray(), 5, E), () => false);
  close(o2.select(1, 1).toArray(), ref2.out.flat(), 1e-5);
  // unbatched [L, E]
  const [o3, w3] = mha.forward(x.select(1, 0), x.select(1, 0), x.select(1, 0));
  assert.deepEqual(o3.shape, [L, E]);
  assert.deepEqual(w3!.shape, [L, L]);
  close(o3.toArray(), out.select(1, 0).toArray(), 1e-6);
});

test('a causal mask zeroes future influence (bool, float and isCausal agree)', () => {
  torch.manualSeed(4);
  const [L, E] = [4, 6];
  const mha = new nn.MultiheadAttention(E, 3, { batchFirst: true });
  const x = torch.randn([2, L, E]);
  const boolMask = torch.ones([L, L], { dtype: 'bool' }).triu(1);
  const [ob, wb] = mha.forward(x, x, x, { attnMask: boolMask });
  const [of] = mha.forward(x, x, x, { attnMask: nn.generateSquareSubsequentMask(L) });
  const [oc] = mha.forward(x, x, x, { isCausal: true });
  close(of.toArray(), ob.toArray(), 1e-6);
  close(oc.toArray(), ob.toArray(), 1e-6);
  // weights above the diagonal are exactly zero
  const w = wb!.get(0).tolist() as number[][];
  for (let i = 0; i < L; i++) for (let j = i + 1; j < L; j++) assert.equal(w[i]![j], 0);
  // matches the manual computation with the same mask
  const ref = manualMha(mha, rows(x.get(1).toArray(), L, E), rows(x.get(1).toArray(), L, E), (i, j) => j > i);
  close(ob.get(1).toArray(), ref.out.flat(), 1e-5);
  // changing the last position leaves every earlier output unchanged
  const x2 = x.clone();
  torch.noGrad(() => x2.select(1, L - 1).add_(5));
  const [o2] = mha.forward(x2, x2, x2, { attnMask: boolMask });
  close(o2.narrow(1, 0, L - 1).contiguous().toArray(), ob.narrow(1, 0, L - 1).contiguous().toArray(), 1e-6);
  assert.ok(Math.abs(o2.select(1, L - 1).sub(ob.select(1, L - 1)).abs().sum().item()) > 1e-3);
});

test('keyPaddingMask ignores padded keys; masks are validated', () => {
  torch.manualSeed(5);
  const mha = new nn.MultiheadAttention(4, 1, { batchFirst: true });
  const x = torch.randn([2, 3, 4]);
  const kpm = torch.tensor([[false, false, true], [false, false, false]]);
  const [o, w] = mha.forward(x, x, x, { keyPaddingMask: kpm });
  close(w!.get(0).select(1, 2).toArray(), [0, 0, 0], 0);
  // batch 0 equals attention over its first two keys only
  const xs = x.get(0).narrow(0, 0, 2).unsqueeze(0);
  const [o0] = mha.forward(x.get(0).unsqueeze(0), xs, xs);
  close(o.get(0).toArray(), o0.get(0).toArray(), 1e-5);
  assert.throws(() => mha.forward(x, x, x, { attnMask: torch.zeros([2, 2]) }), /attnMask should be \[3, 3\]/);
  assert.throws(() => mha.forward(x, x, x, { keyPaddingMask: torch.zeros([2, 4]) }), /keyPaddingMask/);
});

test('attention dropout applies in training mode only, and gradients reach every parameter', () => {
  torch.manualSeed(6);
  const mha = new nn.MultiheadAttention(4, 2, { dropout: 0.5, batchFirst: true });
  const x = torch.randn([1, 5, 4]);
  mha.eval();
  const [a] = mha.forward(x, x, x);
  const [b] = mha.forward(x, x, x);
  close(a.toArray(), b.toArray(), 0);
  mha.train();
  const [c] = mha.forward(x, x, x);
  assert.ok(c.sub(a).abs().max().item() > 1e-4);
  c.sum().backward();
  for (const [n, p] of mha.namedParameters()) assert.ok(p.grad !== null, `${n} has a gradient`);
});
