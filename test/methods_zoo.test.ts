// The method zoo end to end on synthetic images with class structure (4 classes of 16×16 shapes,
// as engine_train.test.ts makes them, held in memory; the kNN queries are other images than the
// bank's): each method trains a few steps from the config and its kNN beats chance (0.25) clearly.
// An untrained width-8 ResNet already scores 0.95–0.98 on these shapes, so the check catches
// collapse and divergence, not learning: the learning is measured by `npm run bench -- methods`; each method's checkpoint resumes exactly (a run
// stopped after epoch 1 and resumed ends with the weights of an uninterrupted one); the P×K
// sampler; config validation and the CLI's --method list.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import sharp from 'sharp';
import os from 'node:os';
import path from 'node:path';
import * as torch from '../src/torch/index.js';
import { train } from '../src/engine/trainer.js';
import { loadCheckpoint, disposeCheckpoint } from '../src/engine/checkpoint.js';
import type { TrainData } from '../src/engine/data.js';
import { resolveConfig, type MethodName } from '../src/engine/config.js';
import { InMemoryDataset, PKBatchSampler } from '../src/data/index.js';
import { packageRoot } from '../src/torch/native.js';
import { SimSiamProjectionHead, DINOProjectionHead } from '../src/models/index.js';
import * as nn from '../src/nn/index.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'dyad-zoo-'));
let data: TrainData;

/** 4 classes of 16×16 gray images: horizontal stripes, vertical stripes, a centred blob, a diagonal. */
function makeImages(perClass: number, seed: number): { images: torch.Tensor; labels: number[] } {
  const rng = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const s = 16;
  const n = 4 * perClass;
  const px = new Uint8Array(n * s * s);
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    const cls = i % 4;
    labels.push(cls);
    const phase = Math.floor(rng() * 4);
    const bright = 150 + Math.floor(rng() * 100);
    for (let y = 0; y < s; y++) {
      for (let x = 0; x < s; x++) {
        let on = false;
        if (cls === 0) on = (y + phase) % 4 < 2;
        else if (cls === 1) on = (x + phase) % 4 < 2;
        else if (cls === 2) on = (x - 7.5 - (phase - 1.5)) ** 2 + (y - 7.5) ** 2 < 16;
        else on = Math.abs(x - y - (phase - 1.5)) < 2;
        px[i * s * s + y * s + x] = Math.max(0, Math.min(255, (on ? bright : 30) + Math.floor((rng() - 0.5) * 40)));
      }
    }
  }
  return { images: torch.tensor(px, { dtype: 'uint8', shape: [n, 1, s, s] }), labels };
}

before(() => {
  const tr = makeImages(64, 12345);
  const te = makeImages(16, 777); // other images than the bank's
  const train = new InMemoryDataset(tr.images, tr.labels, { names: ['hstripes', 'vstripes', 'blob', 'diagonal'] });
  const test = new InMemoryDataset(te.images, te.labels, { names: train.names });
  data = { name: 'shapes', train, names: train.names, channels: 1, imageSize: 16, mean: [0.4], std: [0.3],
    knn: { bank: train, bankIndices: [...Array(train.length).keys()], queries: test, queryIndices: [...Array(test.length).keys()], split: 'test' } };
});

const base = { data: 'shapes', imageSize: 16, channels: 1 as const, width: 8, batch: 32, threads: 1, knnK: 20, minScale: 0.5, cjStrength: 0.5, lr: 0.5 };
/** Per-method settings for a few-step run (small heads are the methods' defaults; only what a 16-pixel toy needs). */
const extra: Partial<Record<MethodName, object>> = {
  dino: { localViews: 2, localSize: 8 },
  triplet: { samplesPerClass: 8 },
  vicreg: { lr: 0.05 },
  autoencoder: { lr: 0.05 },
  barlow: { lr: 0.2 },
};
const METHODS: MethodName[] = ['byol', 'simsiam', 'barlow', 'vicreg', 'dino', 'nnclr', 'supcon', 'triplet', 'autoencoder'];

for (const method of METHODS) {
  test(`${method}: trains from the config, kNN clearly above chance, checkpoint resumes exactly`, async () => {
    const cfg = { ...base, method, ...extra[method] };
    const out = path.join(root, method);
    const r = await train({ ...cfg, epochs: 3, maxStepsPerEpoch: 6, out }, { silent: true, data });
    const acc = r.metrics.at(-1)!.knn_top1!;
    console.log(`# ${method} kNN top-1 ${acc.toFixed(3)}, loss ${r.metrics.map((m) => m.loss.toFixed(3)).join(' → ')}`);
    assert.ok(r.metrics.every((m) => Number.isFinite(m.loss)));
    assert.ok(acc > 0.6, `${method}: kNN top-1 ${acc} (chance 0.25)`);

    // resume: stop after epoch 1 (the callback throws, as a kill would), continue, compare with an uninterrupted run
    const short = { ...cfg, epochs: 2, maxStepsPerEpoch: 2, knnEvery: 0 };
    const full = path.join(root, `${method}-full`);
    const cut = path.join(root, `${method}-cut`);
    await train({ ...short, out: full }, { silent: true, data });
    await assert.rejects(train({ ...short, out: cut }, { silent: true, data, onEpoch: () => { throw new Error('killed'); } }), /killed/);
    await train({ out: cut, epochs: 2 }, { resume: true, silent: true, data });
    const a = loadCheckpoint(path.join(full, 'last.safetensors'));
    const b = loadCheckpoint(path.join(cut, 'last.safetensors'));
    assert.equal(b.meta.epoch, 1);
    assert.equal(b.meta.config.method, method);
    for (const [name, t] of a.model) assert.ok(t.equal(b.model.get(name)!), `${method}: ${name} differs after resume`);
    for (const [name, t] of Object.entries(a.optimizer)) assert.ok(t.equal(b.optimizer[name]!), `${method}: optimizer ${name} differs`);
    disposeCheckpoint(a);
    disposeCheckpoint(b);
  });
}

test('DINO with a ViT backbone trains a step and keeps its teacher, centre and multi-crop', async () => {
  const r = await train({ ...base, method: 'dino', backbone: 'vit-tiny', width: 12, optimizer: 'adamw', lr: 1e-3, localViews: 2, localSize: 8,
    epochs: 1, maxStepsPerEpoch: 2, out: path.join(root, 'dino-vit') }, { silent: true, data });
  assert.ok(Number.isFinite(r.metrics[0]!.loss));
  const sd = r.method.stateDict();
  for (const k of ['criterion.center', 'backbone_momentum.embeddings.position_embedding.weight', 'projection_head_momentum.last_layer.weight_v']) assert.ok(sd.has(k), k);
  assert.ok(!sd.get('criterion.center')!.equal(torch.zeros([1, 2048])), 'the centre moved');
  assert.equal(r.method.numViews, 4);
});

test('PKBatchSampler: P classes × K images per batch, deterministic per (seed, epoch), every image once per pass', () => {
  const labels = [...Array(100).keys()].map((i) => (i < 40 ? 0 : i < 70 ? 1 : i < 90 ? 2 : i < 97 ? 3 : -1));
  const s = new PKBatchSampler(labels, { p: 3, k: 4, seed: 5 });
  assert.equal(s.length, Math.floor(97 / 12));
  const e0 = s.batches(0);
  assert.deepEqual(s.batches(0), e0);
  assert.notDeepEqual(s.batches(1), e0);
  for (const b of e0) {
    assert.equal(b.length, 12);
    const cls = b.map((i) => labels[i]!);
    for (let c = 0; c < 3; c++) assert.equal(new Set(cls.slice(c * 4, c * 4 + 4)).size, 1, 'K images of one class');
    assert.equal(new Set([cls[0], cls[4], cls[8]]).size, 3, 'P different classes');
    assert.ok(cls.every((y) => y >= 0), 'unlabelled images are never drawn');
  }
  assert.throws(() => new PKBatchSampler([0, 0, 1, 1], { p: 3, k: 2 }), /needs 3 classes .* has 2 labelled classes/);
});

test('heads take modules: SimSiam\'s last BN has no affine parameters; DINO\'s last layer is weight-normalised with g frozen', () => {
  const h = new SimSiamProjectionHead({ inputDim: 8, hiddenDim: 16, outputDim: 4 });
  const last = h.layers.children().at(-1) as nn.BatchNorm1d;
  assert.ok(last instanceof nn.BatchNorm1d && !last.affine && last.weight === null);
  const d = new DINOProjectionHead({ inputDim: 8, hiddenDim: 16, bottleneckDim: 4, outputDim: 10 });
  assert.equal(d.last_layer.weight_g.requiresGrad, false);
  const y = torch.noGrad(() => d.eval().forward(torch.randn([3, 8])));
  assert.deepEqual(y.shape, [3, 10]);
  // rows of W have norm 1, so |y| ≤ 1 for the unit bottleneck
  assert.ok(y.abs().amax([0, 1]).item() <= 1 + 1e-5);
});

test('config validation names the option and the fix; the CLI lists the methods and their options', () => {
  assert.throws(() => resolveConfig({ method: 'swav' as never }), /unknown method 'swav': use one of simclr, moco, byol/);
  assert.throws(() => resolveConfig({ method: 'triplet', batch: 30, samplesPerClass: 4 }), /batch 30 must be a multiple of samplesPerClass 4/);
  assert.throws(() => resolveConfig({ method: 'byol', localViews: 2 }), /localViews \(multi-crop\) is a SimCLR option \(and DINO's\)/);
  assert.throws(() => resolveConfig({ mining: 'hardest' as never }), /unknown mining 'hardest'/);
  assert.equal(resolveConfig({ method: 'supcon' }).temperature, 0.1);
  assert.equal(resolveConfig({ method: 'supcon', temperature: 0.3 }).temperature, 0.3);
  assert.equal(resolveConfig({ method: 'simclr' }).temperature, 0.5);
  assert.equal(resolveConfig({ method: 'dino' }).localViews, 2);
  const cli = path.join(packageRoot(), 'bin', 'dyad.js');
  const r = spawnSync(process.execPath, [cli, 'train', '--help'], { encoding: 'utf8' });
  assert.equal(r.status, 0);
  assert.match(r.stdout.replace(/\s+/g, ' '), /"byol", "simsiam", "barlow", "vicreg", "dino", "nnclr", "supcon", "triplet", "autoencoder"/);
  for (const flag of ['--ema-momentum', '--teacher-temperature', '--margin', '--mining', '--samples-per-class']) assert.ok(r.stdout.includes(flag), flag);
});

test('dyad train --method triplet (and supcon) from the CLI on a folder with class subfolders', async () => {
  const dir = path.join(root, 'folder');
  const { images, labels } = makeImages(12, 99);
  const px = images.toTypedArray() as Uint8Array;
  for (let i = 0; i < labels.length; i++) {
    const d = path.join(dir, `c${labels[i]}`);
    mkdirSync(d, { recursive: true });
    await sharp(Buffer.from(px.subarray(i * 256, (i + 1) * 256)), { raw: { width: 16, height: 16, channels: 1 } }).png().toFile(path.join(d, `${i}.png`));
  }
  const cli = path.join(packageRoot(), 'bin', 'dyad.js');
  for (const [method, flags] of [['triplet', ['--samples-per-class', '4', '--mining', 'semi-hard', '--margin', '0.3']], ['supcon', ['--temperature', '0.2']]] as const) {
    const out = path.join(root, `cli-${method}`);
    const r = spawnSync(process.execPath, [cli, 'train', '--method', method, '--data', dir, '--image-size', '16', '--channels', '1', '--width', '8', '--batch', '16',
      '--epochs', '1', '--max-steps-per-epoch', '2', '--threads', '1', ...flags, '--out', out], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /knn_top1/);
    assert.ok(existsSync(path.join(out, 'best.safetensors')));
  }
  const bad = spawnSync(process.execPath, [cli, 'train', '--method', 'triplet', '--data', dir, '--batch', '18', '--samples-per-class', '4', '--out', path.join(root, 'cli-bad')], { encoding: 'utf8' });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /batch 18 must be a multiple of samplesPerClass 4/);
});
