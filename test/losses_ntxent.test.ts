// NT-Xent on fixed inputs against a value computed independently with plain JS numbers,
// and the memory bank's FIFO order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../src/torch/index.js';
import { NTXentLoss } from '../src/losses/ntxent.js';
import { MemoryBank } from '../src/losses/memory_bank.js';

const unit = (v: number[]): number[] => {
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
};
const dot = (a: number[], b: number[]): number => a.reduce((s, x, i) => s + x * b[i]!, 0);

/** Eq. 1 of SimCLR, by hand: mean over the 2B anchors of −log softmax at the positive. */
function ntxentByHand(v0: number[][], v1: number[][], tau: number): number {
  const z = [...v0, ...v1].map(unit);
  const b = v0.length;
  let total = 0;
  for (let i = 0; i < 2 * b; i++) {
    const pos = i < b ? i + b : i - b;
    let denom = 0;
    for (let k = 0; k < 2 * b; k++) if (k !== i) denom += Math.exp(dot(z[i]!, z[k]!) / tau);
    total += -Math.log(Math.exp(dot(z[i]!, z[pos]!) / tau) / denom);
  }
  return total / (2 * b);
}

test('NT-Xent matches the hand-computed value for 2 pairs', () => {
  const v0 = [[1, 2, 0.5], [-1, 0.3, 2]];
  const v1 = [[0.9, 2.2, 0.1], [-0.5, 0.1, 1.5]];
  for (const tau of [0.5, 0.1, 1]) {
    const loss = new NTXentLoss({ temperature: tau }).forward(torch.tensor(v0), torch.tensor(v1)).item();
    const expected = ntxentByHand(v0, v1, tau);
    assert.ok(Math.abs(loss - expected) < 1e-5, `τ=${tau}: ${loss} vs ${expected}`);
  }
});

test('NT-Xent is stable at tiny temperatures and has gradients', () => {
  const a = torch.randn([8, 16], { requiresGrad: true });
  const b = torch.randn([8, 16]);
  const loss = new NTXentLoss({ temperature: 0.01 }).forward(a, b);
  assert.ok(Number.isFinite(loss.item()));
  loss.backward();
  assert.ok(a.grad!.isfinite().all().item());
  // identical views give a lower loss than random ones
  const same = new NTXentLoss().forward(a.detach(), a.detach()).item();
  const rand = new NTXentLoss().forward(a.detach(), b).item();
  assert.ok(same < rand);
});

test('NT-Xent with a memory bank uses the queue as negatives, then enqueues the keys', () => {
  const loss = new NTXentLoss({ temperature: 0.2, memoryBankSize: 4, dim: 2 });
  const bank = loss.memoryBank!;
  const negs = [[1, 0], [0, 1], [-1, 0], [0, -1]];
  bank.loadStateDict({ bank: torch.tensor(negs), bank_ptr: torch.zeros([1], { dtype: 'int64' }) });
  const q = [[3, 4]];
  const k = [[4, 3]];
  const got = loss.forward(torch.tensor(q), torch.tensor(k)).item();
  const zq = unit(q[0]!);
  const logits = [dot(zq, unit(k[0]!)), ...negs.map((n) => dot(zq, n))].map((x) => x / 0.2);
  const expected = -Math.log(Math.exp(logits[0]!) / logits.reduce((s, x) => s + Math.exp(x), 0));
  assert.ok(Math.abs(got - expected) < 1e-5, `${got} vs ${expected}`);
  assert.deepEqual(bank.negatives().get(0).toArray().map((x) => Number(x.toFixed(4))), unit(k[0]!).map((x) => Number(x.toFixed(4))));
  assert.equal(bank.pointer, 1);
});

test('memory bank is a FIFO that wraps around', () => {
  const bank = new MemoryBank({ size: 5, dim: 1 });
  bank.enqueue(torch.tensor([[1], [2], [3]]));
  bank.enqueue(torch.tensor([[4], [5], [6]]));
  // rows 0..4 after writing 1,2,3 then 4,5 (rows 3,4) and 6 wrapping to row 0
  assert.deepEqual(bank.negatives().view(-1).toArray(), [6, 2, 3, 4, 5]);
  assert.equal(bank.pointer, 1);
  bank.enqueue(torch.tensor([[7], [8], [9], [10], [11], [12], [13]])); // larger than the bank: keeps the newest 5
  assert.deepEqual(bank.negatives().view(-1).toArray().sort((a, b) => a - b), [9, 10, 11, 12, 13]);
});

test('NT-Xent validates its arguments', () => {
  assert.throws(() => new NTXentLoss({ temperature: 0 }), /temperature must be a positive number/);
  assert.throws(() => new NTXentLoss({ memoryBankSize: 10 }), /needs the embedding size/);
  assert.throws(() => new NTXentLoss({ memoryBankSize: -1, dim: 2 }), /non-negative integer/);
  assert.throws(() => new NTXentLoss().forward(torch.ones([4, 3]), torch.ones([4, 2])), /same shape/);
  assert.throws(() => new NTXentLoss().forward(torch.ones([1, 3]), torch.ones([1, 3])), /at least 2 samples/);
});
