// torch.distributed over c10d (src/distributed/process_group.ts, native/src/distributed.cc): two
// real node processes, Gloo over 127.0.0.1, rendezvous through a FileStore (file://) and a
// TCPStore (tcp://127.0.0.1:<port>, the multi-node form). Collective values, in-place results on
// a non-contiguous tensor, reduceScatter (its value where Gloo has it, else its clear refusal), a peer that exits (DIST_PEER_LOST),
// a peer that stalls (DIST_TIMEOUT within the timeout, with the event loop running meanwhile).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import * as dist from '../src/distributed/index.js';
import { tempDir } from './helpers/tmp.js';
import { freePort, runRanks } from './helpers/distributed.js';

interface Collectives {
  rank: number; world: number; sum: number[]; avg: number[]; max: number[]; nc: number[]; ncShape: number[];
  gathered: number[][]; broadcast: number[]; concurrent: string[]; reduceScatter: string; errs: string[]; after: number[];
}

function checkCollectives(results: Awaited<ReturnType<typeof runRanks<Collectives>>>): void {
  for (const r of results) {
    assert.equal(r.code, 0, `rank ${r.rank} failed: ${r.stderr}`);
    const o = r.out!;
    assert.equal(o.rank, r.rank);
    assert.equal(o.world, 2);
    assert.deepEqual(o.sum, [3, 30]);
    assert.deepEqual(o.avg, [1]);
    assert.deepEqual(o.max, [1, 0]);
    // arange(6).view(2,3).t() + rank, summed over ranks 0 and 1: 2·t + 1, still [3, 2]
    assert.deepEqual(o.ncShape, [3, 2]);
    assert.deepEqual(o.nc, [1, 7, 3, 9, 5, 11]);
    assert.deepEqual(o.gathered, [[0, 0.5], [1, 1.5]]);
    assert.deepEqual(o.broadcast, [101]);
    assert.deepEqual(o.concurrent, Array(8).fill('ok')); // 8 all-reduces of mixed sizes in flight at once
    // Gloo has reduce_scatter from libtorch 2.x (checked with torch 2.13); 1.13's refuses it, which must be a clear error
    if (o.reduceScatter.startsWith('ok')) assert.equal(o.reduceScatter, `ok ${10 + 2 * r.rank},${10 + 2 * r.rank}`);
    else assert.match(o.reduceScatter, /^DIST_UNSUPPORTED: .*reduceScatter is not supported by the gloo backend/);
    // shapes that differ between ranks are refused on every rank with the shapes named (Gloo itself would abort the process)
    const [gather, ddp] = o.errs;
    assert.match(gather!, /^DIST_FAILED: .*gatherWithGrad: every rank must pass the same dtype and shape, got rank 0 float32 \[4, 16\], rank 1 float32 \[3, 16\]/);
    assert.match(ddp!, /^DIST_FAILED: DistributedDataParallel: the ranks hold different models \(rank 0: 2 parameters of 10 elements.*rank 1: 2 parameters of 15 elements/);
    assert.deepEqual(o.after, [2]); // the group still works
  }
}

test('allReduce (sum, avg, max, non-contiguous), allGather, broadcast, barrier, 8 concurrent all-reduces, shape mismatches over file://', async () => {
  const dir = tempDir('dist-file');
  checkCollectives(await runRanks<Collectives>('collectives', `file://${path.join(dir, 'rendezvous')}`));
});

test('the same over tcp://127.0.0.1:<port> (a TCPStore served by rank 0)', async () => {
  checkCollectives(await runRanks<Collectives>('collectives', `tcp://127.0.0.1:${await freePort()}`));
});

test('a peer that exits makes the next collective reject with DIST_PEER_LOST naming the rank and op', async () => {
  const [r0, r1] = await runRanks<{ error: string; message: string; ms: number }>('peer-exit', `tcp://127.0.0.1:${await freePort()}`);
  assert.equal(r1!.code, 3);
  assert.equal(r0!.code, 0, r0!.stderr);
  assert.equal(r0!.out!.error, 'DIST_PEER_LOST', r0!.out!.message);
  assert.match(r0!.out!.message, /rank 0 of 2, allReduce/);
  assert.ok(r0!.out!.ms < 10_000, `took ${r0!.out!.ms} ms`);
});

test('a peer that stalls makes the collective reject with DIST_TIMEOUT after timeoutMs, without blocking the event loop', async () => {
  const timeoutMs = 4000;
  const [r0] = await runRanks<{ error: string; message: string; ms: number; ticks: number }>('peer-stall', `tcp://127.0.0.1:${await freePort()}`, { arg: String(timeoutMs) });
  assert.equal(r0!.code, 0, r0!.stderr);
  const o = r0!.out!;
  assert.equal(o.error, 'DIST_TIMEOUT', o.message);
  assert.match(o.message, /rank 0 of 2, allReduce/);
  assert.ok(o.ms >= timeoutMs - 100 && o.ms < timeoutMs + 8000, `rejected after ${o.ms} ms`);
  assert.ok(o.ticks >= 10, `the event loop ran only ${o.ticks} 50-ms timers during the ${o.ms} ms wait`);
});

test('options are checked before any rendezvous: DIST_INIT and DIST_NOT_INITIALIZED name the fix', async () => {
  assert.equal(dist.isAvailable('gloo'), true);
  assert.equal(dist.isInitialized(), false);
  assert.throws(() => dist.getRank(), (e: dist.DistributedError) => e.code === 'DIST_NOT_INITIALIZED' && /initProcessGroup/.test(e.message));
  await assert.rejects(dist.initProcessGroup({ initMethod: 'env://', rank: 0, worldSize: 2 }), (e: dist.DistributedError) =>
    e.code === 'DIST_INIT' && /MASTER_ADDR/.test(e.message));
  await assert.rejects(dist.initProcessGroup({ initMethod: 'tcp://127.0.0.1:1', rank: 2, worldSize: 2 }), (e: dist.DistributedError) =>
    e.code === 'DIST_INIT' && /rank 2 is not in \[0, worldSize=2\)/.test(e.message));
  await assert.rejects(dist.initProcessGroup({ initMethod: 'udp://x', rank: 0, worldSize: 1 }), /not env:\/\/, tcp:\/\/host:port or file:\/\/\/path/);
  const env = { MASTER_ADDR: '10.0.0.1', MASTER_PORT: '29500', RANK: '3', WORLD_SIZE: '8' };
  assert.deepEqual(dist.resolveRendezvous({}, env), { backend: 'gloo', store: 'tcp', where: '10.0.0.1', port: 29500, rank: 3, worldSize: 8, timeoutMs: 1_800_000, deviceId: 0 });
  assert.deepEqual(dist.resolveRendezvous({ initMethod: 'file:///tmp/x', rank: 0, worldSize: 1, timeoutMs: 5 }, {}),
    { backend: 'gloo', store: 'file', where: '/tmp/x', port: 0, rank: 0, worldSize: 1, timeoutMs: 5, deviceId: 0 });
  // nccl: the GPU is cuda:LOCAL_RANK unless deviceId names it
  assert.equal(dist.resolveRendezvous({ backend: 'nccl' }, { ...env, LOCAL_RANK: '3' }).deviceId, 3);
  assert.equal(dist.resolveRendezvous({ backend: 'nccl', deviceId: 1 }, { ...env, LOCAL_RANK: '3' }).deviceId, 1);
  assert.throws(() => dist.resolveRendezvous({ backend: 'nccl', deviceId: -1 }, env), /deviceId must be a non-negative integer/);
  if (!dist.isAvailable('nccl')) {
    await assert.rejects(dist.initProcessGroup({ backend: 'nccl', initMethod: 'tcp://127.0.0.1:1', rank: 0, worldSize: 1 }), (e: dist.DistributedError) =>
      e.code === 'DIST_UNAVAILABLE' && /CUDA libtorch/.test(e.message) && /backend: 'gloo'/.test(e.message));
  }
  // one rank is a whole group: collectives are identities, gatherWithGrad returns its input
  await dist.initProcessGroup({ initMethod: `file://${path.join(tempDir('dist-one'), 'rv')}`, rank: 0, worldSize: 1, timeoutMs: 5000 });
  try {
    const { tensor } = await import('../src/torch/index.js');
    const t = await dist.allReduce(tensor([1, 2]), 'avg');
    assert.deepEqual(t.toArray(), [1, 2]);
    assert.equal(dist.gatherWithGrad(t), t);
  } finally {
    dist.destroyProcessGroup();
  }
  assert.equal(dist.isInitialized(), false);
});

test('cuda queries answer in a CPU build', () => {
  const n = dist.cuda.deviceCount();
  assert.equal(dist.cuda.isAvailable(), n > 0);
  if (n === 0) assert.throws(() => dist.cuda.synchronize(), /no CUDA device/);
  else dist.cuda.synchronize();
});
