import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../src/torch/index.js';
import { knnAccuracy, knnScores } from '../src/engine/knn.js';

test('kNN votes with exp(sim/τ) weights over the k nearest', () => {
  // bank: two points of class 0 near +x, one point of class 1 at +y
  const bank = torch.tensor([[1, 0.1], [1, -0.1], [0, 1]]);
  const labels = torch.tensor(new BigInt64Array([0n, 0n, 1n]));
  const q = torch.tensor([[0.2, 1]]);
  const s = knnScores(q, bank, labels, { k: 3, temperature: 0.1 }).toArray();
  const qn = [0.2 / Math.hypot(0.2, 1), 1 / Math.hypot(0.2, 1)];
  const cos = (v: number[]): number => (v[0]! * qn[0]! + v[1]! * qn[1]!) / Math.hypot(v[0]!, v[1]!);
  const w = [[1, 0.1], [1, -0.1], [0, 1]].map((v) => Math.exp(cos(v) / 0.1));
  assert.ok(Math.abs(s[0]! - (w[0]! + w[1]!)) / s[0]! < 1e-4);
  assert.ok(Math.abs(s[1]! - w[2]!) / s[1]! < 1e-4);
  // with k=1 only the nearest (class 1) votes
  assert.deepEqual(knnScores(q, bank, labels, { k: 1 }).argmax(1).toArray(), [1]);
});

test('kNN separates clustered classes and chunking does not change the result', () => {
  torch.manualSeed(0);
  const centers = torch.randn([5, 16]).mul(3);
  const make = (n: number): [torch.Tensor, torch.Tensor] => {
    const y = torch.randint(0, 5, [n]);
    return [centers.index([y]).add(torch.randn([n, 16])), y];
  };
  const [bx, by] = make(500);
  const [qx, qy] = make(200);
  const acc = knnAccuracy(qx, qy, bx, by, { k: 20 });
  assert.ok(acc > 0.9, `accuracy ${acc}`);
  assert.equal(knnAccuracy(qx, qy, bx, by, { k: 20, chunkSize: 7 }), acc);
  assert.throws(() => knnScores(torch.ones([2, 3]), bx, by), /dim 3 but the bank has dim 16/);
});
