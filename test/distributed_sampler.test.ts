// DistributedSampler (src/distributed/sampler.ts): PyTorch's DistributedSampler arithmetic, disjoint
// shards that cover the epoch's order, the same order on every rank, epochs that differ, resume
// inside an epoch with another world size, and the DataLoader's `sampler` hook.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../src/torch/index.js';
import { DataLoader, InMemoryDataset } from '../src/data/index.js';
import { DistributedSampler } from '../src/distributed/sampler.js';
import { LaunchError } from '../src/distributed/env.js';

const shards = (n: number, r: number, o: { seed?: number; epoch?: number; shuffle?: boolean; dropLast?: boolean; skip?: number } = {}): number[][] =>
  Array.from({ length: r }, (_, rank) => {
    const s = new DistributedSampler(n, { numReplicas: r, rank, seed: o.seed ?? 0, shuffle: o.shuffle ?? true, dropLast: o.dropLast ?? false });
    s.setEpoch(o.epoch ?? 0, o.skip ?? 0);
    return s.indices();
  });

test('PyTorch arithmetic: padding by wrapping, dropLast, unshuffled interleaving', () => {
  // torch: list(DistributedSampler(range(10), num_replicas=3, rank=r, shuffle=False))
  assert.deepEqual(shards(10, 3, { shuffle: false }), [[0, 3, 6, 9], [1, 4, 7, 0], [2, 5, 8, 1]]);
  assert.deepEqual(shards(10, 3, { shuffle: false, dropLast: true }), [[0, 3, 6], [1, 4, 7], [2, 5, 8]]);
  // more replicas than samples: the order wraps several times (torch: indices * ceil(pad / len))
  assert.deepEqual(shards(2, 5, { shuffle: false }), [[0], [1], [0], [1], [0]]);
  const s = new DistributedSampler(10, { numReplicas: 4, rank: 1 });
  assert.equal(s.length, 3);
  assert.equal(s.totalSize, 12);
  assert.equal(new DistributedSampler(10, { numReplicas: 4, rank: 1, dropLast: true }).length, 2);
});

test('shards are disjoint and cover the order; the same order on every rank; one replica = the DataLoader order', () => {
  for (const [n, r] of [[1000, 2], [1001, 4], [97, 7]] as const) {
    const parts = shards(n, r, { seed: 5, epoch: 3, dropLast: true });
    const all = parts.flat();
    assert.equal(new Set(all).size, all.length, `disjoint (n ${n}, ${r} ranks)`);
    assert.equal(all.length, Math.floor(n / r) * r);
    // interleaving the shards gives back one order: the single-process order of (seed, epoch)
    const single = shards(n, 1, { seed: 5, epoch: 3 })[0]!;
    const interleaved = Array.from({ length: all.length }, (_, i) => parts[i % r]![Math.floor(i / r)]!);
    assert.deepEqual(interleaved, single.slice(0, all.length));
    const padded = shards(n, r, { seed: 5, epoch: 3 }).flat();
    assert.deepEqual(new Set(padded).size, n, `without dropLast every sample is seen (n ${n}, ${r} ranks)`);
  }
  const ds = { length: 50 };
  const loader = new DataLoader(new InMemoryDataset(torch.zeros([50, 1, 2, 2], { dtype: 'uint8' }), new Int32Array(50)), { shuffle: true, seed: 9 });
  assert.deepEqual(new DistributedSampler(ds, { seed: 9 }).indices(4), Array.from(loader.order(4)));
});

test('global batches: the k-th batches of R ranks hold the k-th batch of R × b in one process', () => {
  const n = 1000, b = 64, r = 2;
  const single = shards(n, 1, { seed: 1 })[0]!;
  const parts = shards(n, r, { seed: 1, dropLast: true });
  for (let k = 0; k < Math.floor(n / (b * r)); k++) {
    const global = parts.flatMap((p) => p.slice(k * b, (k + 1) * b)).sort((x, y) => x - y);
    assert.deepEqual(global, single.slice(k * b * r, (k + 1) * b * r).sort((x, y) => x - y));
  }
});

test('the epoch changes the order, the seed too; the same seed and epoch reproduce it', () => {
  const a = shards(200, 2, { seed: 3, epoch: 0 });
  assert.deepEqual(shards(200, 2, { seed: 3, epoch: 0 }), a);
  assert.notDeepEqual(shards(200, 2, { seed: 3, epoch: 1 }), a);
  assert.notDeepEqual(shards(200, 2, { seed: 4, epoch: 0 }), a);
  const s = new DistributedSampler(200, { numReplicas: 2, rank: 0, seed: 3 });
  s.setEpoch(1);
  assert.deepEqual(s.indices(), shards(200, 2, { seed: 3, epoch: 1 })[0]);
  assert.deepEqual([...s], s.indices());
});

test('resume inside an epoch with another world size: the new ranks cover exactly the remaining samples', () => {
  const n = 1000, seed = 7, epoch = 2;
  // 3 steps of batch 32 on 4 ranks consumed 384 samples of the epoch's order
  const old = shards(n, 4, { seed, epoch, dropLast: true });
  const consumed = old.flatMap((p) => p.slice(0, 3 * 32));
  const order = shards(n, 1, { seed, epoch })[0]!;
  assert.deepEqual(new Set(consumed), new Set(order.slice(0, 384)));
  const resumed = shards(n, 2, { seed, epoch, skip: 384 });
  const rest = resumed.flat();
  assert.equal(rest.length, n - 384);
  assert.deepEqual(new Set(rest), new Set(order.slice(384)), 'the remaining indices, each once');
  for (const i of consumed) assert.ok(!rest.includes(i), `${i} was already seen`);
  // the skip applies to its own epoch only
  const s = new DistributedSampler(n, { numReplicas: 2, rank: 0, seed });
  s.setEpoch(epoch, 384);
  assert.equal(s.length, 308);
  assert.equal(s.indices(epoch + 1).length, 500);
});

test('DataLoader takes the sampler: its batches are the rank\'s shard; bad options throw', async () => {
  const n = 40;
  const images = torch.arange(n).to('uint8').reshape([n, 1, 1, 1]).keep();
  const ds = new InMemoryDataset(images, new Int32Array(n));
  const seen: number[][] = [];
  for (let rank = 0; rank < 2; rank++) {
    const sampler = new DistributedSampler(ds, { numReplicas: 2, rank, seed: 2, dropLast: true });
    const loader = new DataLoader(ds, { batchSize: 8, sampler, dropLast: true });
    assert.equal(loader.length, 2);
    loader.setEpoch(1);
    const got: number[] = [];
    for await (const b of loader) {
      assert.deepEqual(Array.from(b.images.flatten().toTypedArray() as Uint8Array), b.indices);
      got.push(...b.indices);
    }
    assert.deepEqual(got, sampler.indices(1).slice(0, 16));
    seen.push(got);
  }
  assert.equal(new Set(seen.flat()).size, 32);
  assert.throws(() => new DataLoader(ds, { sampler: new DistributedSampler(ds), shuffle: true }), /mutually exclusive/);
  assert.throws(() => new DistributedSampler(ds, { numReplicas: 2, rank: 2 }), (e: unknown) => e instanceof LaunchError && /rank 2 is out of range/.test(e.message));
  assert.throws(() => new DistributedSampler(ds).setEpoch(0, n + 1), /skip must be an integer/);
  images.dispose();
});
