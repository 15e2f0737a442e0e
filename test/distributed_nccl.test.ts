// The NCCL backend on a GPU. It runs only where the addon was built against a CUDA libtorch with
// NCCL's headers (`dist.isAvailable('nccl')`) and a GPU is visible; elsewhere (Debian's CPU
// libtorch, CI) the cases skip with the reason printed, and distributed_collectives.test.ts
// checks nccl's clear refusal instead. One GPU is enough: a one-rank NCCL group still goes
// through NCCL's communicator, and `dyad train --nproc-per-node 1 --device cuda` through the
// launcher, the worker's GPU-side collectives (batch gather, RNG sync, loss mean) and DDP.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as dist from '../src/distributed/index.js';
import * as torch from '../src/torch/index.js';
import { packageRoot } from '../src/torch/native.js';
import { lcg } from './helpers/rng.js';
import { writeShapeFolder } from './helpers/images.js';
import { tempDir } from './helpers/tmp.js';

const skip = !dist.isAvailable('nccl') ? "no nccl: this addon was built without NCCL (isAvailable('nccl') false)"
  : dist.cuda.deviceCount() === 0 ? 'no GPU visible (cuda.deviceCount() 0)' : false;
if (skip) console.log(`# NCCL cases skip: ${skip}`);

const root = tempDir('nccl');
const dataDir = path.join(root, 'shapes');
before(async () => { if (!skip) await writeShapeFolder(dataDir, 16, lcg(5)); });

test('nccl: a one-rank group on cuda:0 reduces, broadcasts and gathers CUDA tensors and refuses CPU ones', { skip }, async () => {
  await dist.initProcessGroup({ backend: 'nccl', initMethod: `file://${path.join(tempDir('nccl-rv'), 'rv')}`, rank: 0, worldSize: 1, deviceId: 0, timeoutMs: 60_000 });
  try {
    assert.equal(dist.getBackend(), 'nccl');
    const t = torch.tensor([1, 2, 3]).to('cuda:0');
    const summed = await dist.allReduce(t, 'sum');
    assert.equal(summed.device, 'cuda:0');
    assert.deepEqual(summed.to('cpu').toArray(), [1, 2, 3]);
    assert.deepEqual((await dist.allReduce(torch.tensor([4, 6]).to('cuda:0'), 'avg')).to('cpu').toArray(), [4, 6]);
    assert.deepEqual((await dist.broadcast(torch.tensor([7, 8]).to('cuda:0'), 0)).to('cpu').toArray(), [7, 8]);
    const parts = await dist.allGather(torch.tensor([5, 9]).to('cuda:0'));
    assert.equal(parts.length, 1);
    assert.deepEqual(parts[0]!.to('cpu').toArray(), [5, 9]);
    await dist.barrier();
    await assert.rejects(dist.allReduce(torch.tensor([1, 2]), 'sum'), /allReduce: the nccl backend takes CUDA tensors, got one on cpu \(move it with \.to\('cuda:0'\)\)/);
  } finally {
    dist.destroyProcessGroup();
  }
  assert.equal(dist.isInitialized(), false);
});

test('dyad train --nproc-per-node 1 --device cuda trains through nccl (DDP, SyncBatchNorm, GPU-side batch gather) to a finite loss', { skip }, () => {
  const cli = path.join(packageRoot(), 'bin', 'dyad.js');
  const out = path.join(root, 'ddp-cuda');
  const r = spawnSync(process.execPath, [cli, 'train', '--nproc-per-node', '1', '--device', 'cuda', '--data', dataDir, '--image-size', '16',
    '--channels', '1', '--width', '8', '--batch', '16', '--epochs', '1', '--max-steps-per-epoch', '3', '--out', out], { encoding: 'utf8', timeout: 300_000 });
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const metrics = readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { loss?: number });
  const loss = metrics.at(-1)?.loss;
  assert.ok(typeof loss === 'number' && Number.isFinite(loss), `final loss ${loss}`);
  assert.ok(existsSync(path.join(out, 'last.safetensors')), 'a checkpoint was written');
});
