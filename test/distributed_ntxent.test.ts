// Gathered negatives across processes (src/distributed/gather.ts, NTXentLoss gatherDistributed):
// two ranks, each with half of the batch, against one process with the whole batch. The mean of
// the ranks' losses is the single-process loss; each rank's gradient (its backward all-reduces the
// gathered gradient) is W times the single-process gradient of its rows, so that DDP's averaging
// gives the exact gradient; with a memory bank every rank enqueues the keys of every rank.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../src/torch/index.js';
import { NTXentLoss } from '../src/losses/ntxent.js';
import { ntxentInputs } from './fixtures/distributed_worker.js';
import { assertRankGradients, freePort, maxDiff, runRanks } from './helpers/distributed.js';

interface Out { loss: number; g0: number[]; g1: number[]; bank: number[]; ptr: number }

test('NT-Xent with gatherDistributed on 2 ranks equals the single-process loss on the concatenated batch, value and gradients', async () => {
  const results = await runRanks<Out>('ntxent', `tcp://127.0.0.1:${await freePort()}`);
  for (const r of results) assert.equal(r.code, 0, `rank ${r.rank}: ${r.stderr}`);
  const [a0, a1] = ntxentInputs();
  const z0 = a0.clone().requiresGrad_();
  const z1 = a1.clone().requiresGrad_();
  const loss = new NTXentLoss({ temperature: 0.3 }).forward(z0, z1);
  loss.backward();
  const w = results.length;
  const mean = results.reduce((s, r) => s + r.out!.loss, 0) / w;
  assert.ok(Math.abs(mean - (loss.item() as number)) < 1e-5, `mean of rank losses ${mean} vs single-process ${loss.item()}`);
  assert.notEqual(results[0]!.out!.loss, results[1]!.out!.loss); // each rank scores its own rows
  assertRankGradients(results, z0, z1, w);
  for (const r of results) {
    // MoCo's queue: the normalised keys of every rank, in rank order, as one process with the whole batch
    const keys = Array.from(torch.functional.normalize(a1).toFloat64Array());
    assert.ok(maxDiff(r.out!.bank, keys) < 1e-6, `rank ${r.rank}: the memory bank does not hold every rank's keys`);
    assert.equal(r.out!.ptr, a0.size(0));
  }
});
