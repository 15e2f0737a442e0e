// The pieces together, as the equivalence test at small scale: SimCLR (its own
// trainingStep) with SyncBatchNorm in the backbone and the projection head, NT-Xent with the
// negatives of every rank, and DDP with the all-reduce overlapped with backward, 2 processes ×
// batch 4, ends with the loss curve and the state (weights and BatchNorm running statistics) of
// 1 process × batch 8 after 4 SGD steps from the same seed and data.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SGD } from '../src/optim/index.js';
import { makeSimCLR, simclrStep, simclrViews } from './fixtures/distributed_worker.js';
import { freePort, maxDiff, runRanks } from './helpers/distributed.js';

interface Out { losses: number[]; state: [string, number[]][] }

test('SimCLR + SyncBatchNorm + gathered NT-Xent + DDP on 2 ranks × 4 equals 1 process × 8 (losses and final state, 1e-5)', async () => {
  const results = await runRanks<Out>('simclr', `tcp://127.0.0.1:${await freePort()}`);
  for (const r of results) assert.equal(r.code, 0, `rank ${r.rank}: ${r.stderr}`);
  const m = makeSimCLR(200, false); // rank 0's seed: DDP broadcasts rank 0's weights
  const opt = new SGD(m.parameters(), { lr: 0.5, momentum: 0.9 });
  const losses = simclrViews(4).map((v, k) => {
    const l = simclrStep(m, opt, v, k);
    opt.step();
    return l;
  });
  losses.forEach((l, s) => {
    const mean = (results[0]!.out!.losses[s]! + results[1]!.out!.losses[s]!) / 2;
    assert.ok(Math.abs(mean - l) < 1e-5, `step ${s}: mean rank loss ${mean} vs single process ${l}`);
  });
  assert.ok(losses[3]! < losses[0]!, `the loss did not go down: ${losses}`);
  const ref = new Map([...m.stateDict()].map(([k, t]) => [k, Array.from(t.detach().contiguous().toFloat64Array())]));
  for (const r of results) {
    assert.deepEqual(r.out!.state.map(([k]) => k), [...ref.keys()]);
    for (const [name, v] of r.out!.state) {
      const d = maxDiff(v, ref.get(name)!);
      assert.ok(d < 1e-5, `rank ${r.rank}: ${name} differs from the single process by ${d}`);
    }
  }
});
