// Known values for conv, batch norm and cross-entropy, computed by hand.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../src/torch/index.js';

const F = torch.functional;
const close = (a: number[], b: number[], tol = 1e-5): void => {
  assert.equal(a.length, b.length);
  a.forEach((v, i) => assert.ok(Math.abs(v - b[i]!) <= tol, `index ${i}: ${v} vs ${b[i]}`));
};

test('conv2d on a 3x3 image with a 2x2 kernel', () => {
  const x = torch.tensor([1, 2, 3, 4, 5, 6, 7, 8, 9], { shape: [1, 1, 3, 3] });
  const w = torch.tensor([1, 0, 0, -1], { shape: [1, 1, 2, 2] });
  // out[i][j] = x[i][j] - x[i+1][j+1] = -4 everywhere, plus bias 0.5
  close(F.conv2d(x, w, torch.tensor([0.5])).toArray(), [-3.5, -3.5, -3.5, -3.5]);
  // padding 1, stride 2: corners of the 4x4 output grid sampled at (0,0),(0,2),(2,0),(2,2)
  const y = F.conv2d(x, w, null, { padding: 1, stride: 2 });
  assert.deepEqual(y.shape, [1, 1, 2, 2]);
  // position (0,0) sees [pad,pad;pad,1] -> 0*1 + ... - 1*1 = -1
  close(y.toArray(), [0 - 1, 0 - 3, 0 - 7, 5 - 9]);
});

test('batch norm in training and eval mode', () => {
  const x = torch.tensor([1, 2, 3, 4, 10, 20, 30, 40], { shape: [4, 2] }); // rows = batch
  const rm = torch.zeros([2]);
  const rv = torch.ones([2]);
  const y = F.batchNorm(x, rm, rv, { training: true, momentum: 0.1, eps: 0 });
  // column 0: [1,3,10,30], mean 11, biased var = ((−10)²+(−8)²+(−1)²+19²)/4 = 526/4 = 131.5
  const m0 = 11, v0 = 131.5;
  close(y.toArray().filter((_, i) => i % 2 === 0), [1, 3, 10, 30].map((v) => (v - m0) / Math.sqrt(v0)), 1e-5);
  // running stats: momentum 0.1 with the unbiased variance (526/3)
  close(rm.toArray(), [0.1 * 11, 0.1 * 16.5], 1e-5); // column 1: [2,4,20,40], mean 16.5
  close([rv.toArray()[0]!], [0.9 + 0.1 * (526 / 3)], 1e-4);
  const e = F.batchNorm(torch.tensor([[2, 3]]), torch.tensor([1, 1]), torch.tensor([4, 9]), { training: false, eps: 0 });
  close(e.toArray(), [0.5, 2 / 3]);
});

test('cross-entropy with and without label smoothing', () => {
  const logits = torch.tensor([[2, 1, 0]]);
  const target = torch.tensor(new BigInt64Array([0n]));
  const lse = Math.log(Math.exp(2) + Math.exp(1) + Math.exp(0));
  close([F.crossEntropy(logits, target).item()], [lse - 2]);
  // smoothing ε: (1−ε)·nll + ε·mean_k(−log p_k)
  const eps = 0.1;
  const nll = [lse - 2, lse - 1, lse - 0];
  const expected = (1 - eps) * nll[0]! + (eps / 3) * (nll[0]! + nll[1]! + nll[2]!);
  close([F.crossEntropy(logits, target, { labelSmoothing: eps }).item()], [expected]);
  // probabilities as targets
  close([F.crossEntropy(logits, torch.tensor([[1, 0, 0]])).item()], [lse - 2]);
  assert.equal(F.crossEntropy(torch.zeros([2, 3]), torch.tensor(new BigInt64Array([1n, 2n])), { reduction: 'none' }).shape[0], 2);
});

test('matmul, softmax and reductions give known values', () => {
  const a = torch.tensor([[1, 2], [3, 4]]);
  close(a.matmul(a).toArray(), [7, 10, 15, 22]);
  close(torch.tensor([0, Math.log(3)]).softmax(0).toArray(), [0.25, 0.75]);
  close([a.var().item()], [5 / 3]);
  close(a.sum(0).toArray(), [4, 6]);
  assert.deepEqual(a.argmax(1).toArray(), [1, 1]);
  close([a.norm().item()], [Math.sqrt(30)]);
  close(a.cumsum(1).toArray(), [1, 3, 3, 7]);
  close([torch.tensor([1, 2, 3]).logsumexp(0).item()], [Math.log(Math.exp(1) + Math.exp(2) + Math.exp(3))]);
});
