// DistributedDataParallel and SyncBatchNorm (src/distributed/ddp.ts, sync_batchnorm.ts) on two
// real processes (Gloo over 127.0.0.1): 2 ranks × batch 4 end with the same weights as 1 process ×
// batch 8 after a few SGD steps (the ranks start from different weights: rank 0's are broadcast),
// with the bucketed all-reduce overlapped with backward (autograd hooks), after backward, and in
// one bucket; SyncBatchNorm equals BatchNorm on the concatenated batch, values, gradients and
// running statistics.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../src/torch/index.js';
import * as nn from '../src/nn/index.js';
import { SGD } from '../src/optim/index.js';
import type { Tensor } from '../src/torch/index.js';
import { SyncBatchNorm } from '../src/distributed/index.js';
import { bnInputs, ddpData, makeNet, sgdStep } from './fixtures/distributed_worker.js';
import { freePort, maxDiff, runRanks } from './helpers/distributed.js';

const arr = (t: Tensor): number[] => Array.from(t.detach().contiguous().toFloat64Array());

function reference(): { losses: number[]; weights: number[][] } {
  const model = makeNet(100); // rank 0's initial weights
  const opt = new SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
  const losses: number[] = [];
  for (const { x, y } of ddpData(3)) {
    losses.push(sgdStep(model, opt, x, y));
    opt.step();
  }
  return { losses, weights: model.parameters().map(arr) };
}

interface DDPOut { buckets: number; hookLaunches: number; steps: number; losses: number[]; weights: number[][] }

test('DDP overlapped (3 buckets), after backward (3 buckets), in one bucket: 2 ranks × batch 4 give the weights of 1 process × batch 8 after 3 SGD steps', async () => {
  const results = await runRanks<Record<string, DDPOut>>('ddp', `tcp://127.0.0.1:${await freePort()}`);
  for (const r of results) assert.equal(r.code, 0, `rank ${r.rank}: ${r.stderr}`);
  const ref = reference();
  for (const [mode, buckets] of [['overlap', 3], ['after', 3], ['onebucket', 1]] as const) {
    for (const r of results) {
      const o = r.out![mode]!;
      assert.equal(o.buckets, buckets);
      assert.equal(o.steps, 3);
      // overlapped: every bucket's all-reduce was started by the autograd hooks, during backward
      assert.equal(o.hookLaunches, mode === 'after' ? 0 : 3 * buckets);
      o.weights.forEach((w, k) => {
        const d = maxDiff(w, ref.weights[k]!);
        assert.ok(d < 1e-5, `${mode}, rank ${r.rank}, parameter ${k}: differs from the single process by ${d}`);
      });
    }
    ref.losses.forEach((l, s) => {
      const mean = (results[0]!.out![mode]!.losses[s]! + results[1]!.out![mode]!.losses[s]!) / 2;
      assert.ok(Math.abs(mean - l) < 1e-5, `${mode}, step ${s}: mean rank loss ${mean} vs ${l}`);
    });
  }
});

test('DDP gradient accumulation: a noSync backward then a synced one equal one step on the summed micro-batch losses; two synced backwards are refused', async () => {
  const results = await runRanks<{ weights: number[][]; twice: string }>('ddp-accum', `tcp://127.0.0.1:${await freePort()}`);
  for (const r of results) assert.equal(r.code, 0, `rank ${r.rank}: ${r.stderr}`);
  // each rank sums two micro-batch means (2 samples each); averaged over ranks: 2 × the mean over all 8
  const model = makeNet(100);
  const opt = new SGD(model.parameters(), { lr: 0.1 });
  const [{ x, y }] = ddpData(1);
  opt.zeroGrad();
  torch.functional.mseLoss(model.forward(x) as Tensor, y).mul(2).backward();
  opt.step();
  const ref = model.parameters().map(arr);
  for (const r of results) {
    r.out!.weights.forEach((w, k) => assert.ok(maxDiff(w, ref[k]!) < 1e-5, `rank ${r.rank}, parameter ${k} differs by ${maxDiff(w, ref[k]!)}`));
    assert.match(r.out!.twice, /^DIST_FAILED: .*backward ran more than once since the last syncGradients\(\).*noSync/);
  }
});

interface BNOut { isSync: boolean; y: number[]; gx: number[]; gw: number[]; gb: number[]; rm: number[]; rv: number[] }

test('SyncBatchNorm on 2 ranks equals BatchNorm2d on the concatenated batch: output, input/weight/bias gradients, running stats', async () => {
  const results = await runRanks<BNOut>('syncbn', `tcp://127.0.0.1:${await freePort()}`);
  for (const r of results) assert.equal(r.code, 0, `rank ${r.rank}: ${r.stderr}`);
  const { x, w } = bnInputs();
  const bn = new nn.BatchNorm2d(3);
  torch.noGrad(() => {
    bn.weight!.copy_(torch.tensor([0.5, 1.5, -1]));
    bn.bias!.copy_(torch.tensor([0.1, 0.2, 0.3]));
  });
  const xg = x.clone().requiresGrad_();
  const y = bn.forward(xg);
  y.mul(w).sum().backward();
  const per = x.size(0) / 2;
  const close = (a: number[], b: number[], what: string): void => assert.ok(maxDiff(a, b) < 1e-5, `${what} differs by ${maxDiff(a, b)}`);
  for (const r of results) {
    const o = r.out!;
    assert.equal(o.isSync, true);
    close(o.y, arr(y.narrow(0, r.rank * per, per)), `rank ${r.rank} output`);
    close(o.gx, arr(xg.grad!.narrow(0, r.rank * per, per)), `rank ${r.rank} input gradient`);
    close(o.rm, arr(bn.running_mean!), `rank ${r.rank} running_mean`);
    close(o.rv, arr(bn.running_var!), `rank ${r.rank} running_var`);
  }
  // the loss is the sum of the ranks' losses: the parameter gradients add up
  close(results[0]!.out!.gw.map((g, i) => g + results[1]!.out!.gw[i]!), arr(bn.weight!.grad!), 'weight gradient');
  close(results[0]!.out!.gb.map((g, i) => g + results[1]!.out!.gb[i]!), arr(bn.bias!.grad!), 'bias gradient');
});

test('SyncBatchNorm.convert keeps parameters, buffers and state-dict names; one process is plain BatchNorm', () => {
  const net = new nn.Sequential(new nn.Conv2d(1, 2, 3), new nn.BatchNorm2d(2), new nn.Sequential(new nn.BatchNorm1d(4)));
  const before = net.stateDict();
  const w = (net.get(1) as nn.BatchNorm2d).weight;
  const converted = SyncBatchNorm.convert(net) as nn.Sequential;
  assert.equal(converted, net);
  assert.ok(net.get(1) instanceof SyncBatchNorm);
  assert.ok((net.get(2) as nn.Sequential).get(0) instanceof SyncBatchNorm);
  assert.equal((net.get(1) as SyncBatchNorm).weight, w);
  assert.deepEqual([...net.stateDict().keys()], [...before.keys()]);
  const x = torch.randn([4, 2, 5, 5]);
  const ref = new nn.BatchNorm2d(2);
  assert.ok(maxDiff(arr((net.get(1) as SyncBatchNorm).forward(x)), arr(ref.forward(x))) < 1e-6);
});
