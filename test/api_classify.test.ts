// From an embedder to a classifier with few labels: linear probe, fine-tuning, the supervised
// baseline, validation (top-1/top-5, per class, confusion), label subsets, Model.train, and the
// CLI commands, on a tiny synthetic labelled folder (train/ + val/) written with sharp.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import * as torch from '../src/torch/index.js';
import { packageRoot } from '../src/torch/native.js';
import { train } from '../src/engine/trainer.js';
import { loadCheckpoint, disposeCheckpoint } from '../src/engine/checkpoint.js';
import { classifyMetrics, labelSubset, validationSplit } from '../src/engine/classify.js';
import { fitSchedule } from '../src/engine/supervised.js';
import { Model } from '../src/api/model.js';
import { lcg } from './helpers/rng.js';
import { SHAPE_CLASSES, shapeImage } from './helpers/images.js';
import { tempDir } from './helpers/tmp.js';

torch.setNumThreads(1);
const root = tempDir('clf');
const dataDir = path.join(root, 'shapes');
const NAMES = SHAPE_CLASSES;
let weights = '';
let embedder: Model;

before(async () => {
  const rng = lcg(99);
  for (const [split, n] of [['train', 40], ['val', 10]] as const) {
    for (const [c, name] of NAMES.entries()) {
      mkdirSync(path.join(dataDir, split, name), { recursive: true });
      for (let i = 0; i < n; i++) await sharp(shapeImage(c, rng), { raw: { width: 16, height: 16, channels: 1 } }).png().toFile(path.join(dataDir, split, name, `${i}.png`));
    }
  }
  const r = await train({ data: dataDir, imageSize: 16, channels: 1, width: 8, batch: 40, epochs: 2, knnEvery: 0, lr: 0.5, minScale: 0.5, threads: 1, out: path.join(root, 'ssl') }, { silent: true });
  r.method.dispose();
  weights = r.lastPath;
  embedder = await Model.load(weights);
});

after(() => {
  embedder?.dispose();
  rmSync(root, { recursive: true, force: true });
});

test('label subsets: class-balanced, seeded, nested validation split keeps every class on both sides', () => {
  const labels = Int32Array.from({ length: 400 }, (_, i) => i % 4);
  const all = [...labels.keys()];
  const a = labelSubset(labels, all, 0.1, 3);
  assert.equal(a.length, 40);
  assert.deepEqual(a, labelSubset(labels, all, 0.1, 3), 'same seed, same images');
  assert.notDeepEqual(a, labelSubset(labels, all, 0.1, 4));
  for (let c = 0; c < 4; c++) assert.equal(a.filter((i) => labels[i] === c).length, 10);
  assert.equal(labelSubset(labels, all, 0.001, 0).length, 4, 'at least one image per class');
  assert.throws(() => labelSubset(labels, all, 0, 0), /labelFraction must be in \(0, 1\]/);
  const s = validationSplit(labels, a, 0.2, 0)!;
  assert.equal(s.train.length + s.val.length, 40);
  for (let c = 0; c < 4; c++) assert.ok(s.val.some((i) => labels[i] === c) && s.train.some((i) => labels[i] === c));
  assert.equal(validationSplit(labels, [0, 1, 2, 3], 0.2, 0), null, 'one image per class: no split');
  assert.deepEqual(fitSchedule(40, { epochs: 30, batch: 256, minSteps: 200, maxSteps: 0 }), { steps: 200, batch: 40 });
  assert.deepEqual(fitSchedule(60000, { epochs: 1, batch: 256, minSteps: 200, maxSteps: 100 }), { steps: 100, batch: 256 });
});

test('classification metrics: top1, top5, per class, confusion', () => {
  const scores = torch.tensor([[0.9, 0.1, 0], [0.2, 0.7, 0.1], [0.5, 0.3, 0.2], [0.1, 0.2, 0.7]]);
  const m = classifyMetrics(scores, [0, 1, 1, 0], ['a', 'b', 'c']);
  assert.equal(m.top1, 0.5);
  assert.equal(m.top5, 1);
  assert.deepEqual(m.perClass, { a: 0.5, b: 0.5 });
  assert.deepEqual(m.confusion, [[1, 0, 1], [1, 1, 0], [0, 0, 0]]);
  scores.dispose();
});

test('linear probe with 25% of the labels beats chance and writes a classifier checkpoint with class names', async () => {
  const out = path.join(root, 'probe.safetensors');
  const clf = await embedder.linearProbe({ data: dataDir, labelFraction: 0.25, out, silent: true });
  const m = clf.metrics as { top1: number; labels: number; split: string; sweep: unknown[] };
  console.log(`# linear probe top-1 ${m.top1}`);
  assert.equal(m.labels, 40);
  assert.equal(m.split, 'val');
  assert.equal(m.sweep.length, 9);
  assert.ok(m.top1 > 0.5, `probe top-1 ${m.top1} (chance is 0.25)`);
  assert.equal(clf.task, 'classifier');
  const ck = loadCheckpoint(out);
  assert.equal(ck.meta.task, 'classifier');
  assert.deepEqual(ck.meta.names, ['blob', 'diagonal', 'hstripes', 'vstripes']);
  assert.ok(ck.model.has('backbone.conv1.weight') && ck.model.has('head.weight') && ck.model.has('head.bias'));
  assert.deepEqual(ck.model.get('head.weight')!.shape, [4, 64]);
  assert.equal((ck.meta.extra as { classifier: { mode: string } }).classifier.mode, 'linear-probe');
  disposeCheckpoint(ck);
  // reloaded, it predicts the same and validates to the same accuracy on val/
  const loaded = await Model.load(out);
  const v = await loaded.val();
  assert.equal(v.method, 'classifier');
  assert.ok(Math.abs(v.top1 - m.top1) < 1e-9, `val ${v.top1} vs probe ${m.top1}`);
  assert.equal(v.n, 40);
  assert.equal(v.confusion.flat().reduce((a, b) => a + b, 0), 40);
  assert.deepEqual(Object.keys(v.perClass).sort(), ['blob', 'diagonal', 'hstripes', 'vstripes']);
  const img = path.join(dataDir, 'val', 'blob', '0.png');
  const [a] = await clf.predict(img);
  const [b] = await loaded.predict(img);
  assert.ok(a!.probs.data.every((p, i) => Math.abs(p - b!.probs.data[i]!) < 1e-5));
  loaded.dispose();
  clf.dispose();
});

test('linear probe on grid-pooled features of the last two stages: the checkpoint records the pooling and reloads to the same predictions', async () => {
  const out = path.join(root, 'probe-grid.safetensors');
  const clf = await embedder.linearProbe({ data: dataDir, featureStages: 2, featureGrid: 2, out, silent: true, lrs: [0.01], weightDecays: [0] });
  const m = clf.metrics as { top1: number };
  console.log(`# grid-feature linear probe top-1 ${m.top1}`);
  assert.ok(m.top1 > 0.5, `probe top-1 ${m.top1} (chance is 0.25)`);
  const ck = loadCheckpoint(out);
  // width 8 at 16×16 with the CIFAR stem: layer3 is 32 channels at 4×4, layer4 64 at 2×2, each pooled to 2×2
  assert.deepEqual(ck.model.get('head.weight')!.shape, [4, 32 * 4 + 64 * 4]);
  assert.equal(ck.meta.config.featureStages, 2);
  assert.equal(ck.meta.config.featureGrid, 2);
  disposeCheckpoint(ck);
  const loaded = await Model.load(out);
  const img = path.join(dataDir, 'val', 'diagonal', '3.png');
  const [a] = await clf.predict(img, { embed: true });
  const [b] = await loaded.predict(img, { embed: true });
  assert.ok(a!.probs.data.every((p, i) => Math.abs(p - b!.probs.data[i]!) < 1e-5));
  assert.equal(b!.embedding!.length, 384);
  assert.ok(Math.abs((await loaded.val()).top1 - m.top1) < 1e-9);
  loaded.dispose();
  clf.dispose();
});

test('fine-tuning the whole network with 25% of the labels beats chance', async () => {
  const clf = await embedder.finetune({ data: dataDir, labelFraction: 0.25, epochs: 1, minSteps: 40, batch: 20, silent: true });
  const m = clf.metrics as { top1: number; labels: number; steps: number };
  console.log(`# fine-tune top-1 ${m.top1}`);
  assert.equal(m.labels, 40);
  assert.equal(m.steps, 40);
  assert.ok(m.top1 > 0.5, `fine-tune top-1 ${m.top1} (chance is 0.25)`);
  // the embedder is untouched: its backbone was copied
  const [e1] = await embedder.embed(path.join(dataDir, 'val', 'blob', '0.png'));
  const fresh = await Model.load(weights);
  const [e2] = await fresh.embed(path.join(dataDir, 'val', 'blob', '0.png'));
  assert.ok(e1!.every((v, i) => Math.abs(v - e2![i]!) < 1e-6));
  fresh.dispose();
  clf.dispose();
});

test('supervised baseline from random initialisation: a classifier run folder; val of an embedder is kNN', async () => {
  const model = new Model({ width: 8, imageSize: 16, channels: 1, threads: 1, silent: true });
  const out = path.join(root, 'sup');
  const r = await model.train({ data: dataDir, supervised: true, epochs: 1, minSteps: 40, batch: 32, out });
  console.log(`# supervised top-1 ${r.metrics!.top1}`);
  assert.equal(model.task, 'classifier');
  assert.equal(r.weights, path.join(out, 'best.safetensors'));
  for (const f of ['best.safetensors', 'last.safetensors', 'config.json', 'metrics.json']) assert.ok(existsSync(path.join(out, f)), f);
  assert.ok(r.metrics!.top1 > 0.4, `supervised top-1 ${r.metrics!.top1}`);
  assert.deepEqual(model.names, ['blob', 'diagonal', 'hstripes', 'vstripes']);
  model.dispose();

  const v = await embedder.val({ knnK: 20 });
  assert.equal(v.method, 'knn');
  assert.equal(v.n, 40);
  assert.ok(v.top1 > 0.4, `kNN top-1 ${v.top1}`);
});

test('Model.train on a loaded embedder continues self-supervised training into a fresh run folder', async () => {
  const m = await Model.load(weights, { threads: 1 });
  const cwd = process.cwd();
  process.chdir(root);
  try {
    const r = await m.train({ epochs: 1, maxStepsPerEpoch: 1, knnEvery: 0, silent: true });
    assert.equal(path.resolve(r.weights), path.join(root, 'runs', 'train', 'best.safetensors'), 'default out: runs/train');
    assert.ok(existsSync(path.join(root, 'ssl', 'last.safetensors')), 'the original run is untouched');
    const r2 = await m.train({ epochs: 1, maxStepsPerEpoch: 1, knnEvery: 0, silent: true });
    assert.equal(path.resolve(r2.weights), path.join(root, 'runs', 'train2', 'best.safetensors'), 'no earlier run is overwritten');
    assert.equal(m.task, 'embedder');
    assert.equal(m.config!.width, 8, 'the architecture comes from the checkpoint');
  } finally {
    process.chdir(cwd);
    m.dispose();
  }
  await assert.rejects(embedder.train({ data: dataDir, epocs: 2 } as never), /unknown train option 'epocs'/);
});

test('CLI: dyad probe, dyad finetune, dyad val', () => {
  const cli = path.join(packageRoot(), 'bin', 'dyad.js');
  const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1' } });
  const out = path.join(root, 'cli-probe.safetensors');
  let r = run('probe', '--weights', weights, '--data', dataDir, '--label-fraction', '0.5', '--out', out, '--threads', '1');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /top1 \d+\.\d\d%/);
  assert.match(r.stdout, /trained on 80 labelled images; wrote .*cli-probe\.safetensors/);
  r = run('val', '--weights', out);
  assert.equal(r.status, 0, r.stderr);
  assert.ok(Number(/^top1 (\d+\.\d+)%/.exec(r.stdout)![1]) > 50, r.stdout);
  assert.match(r.stdout, /\(40 images of .*shapes, val split\)/);
  assert.match(r.stdout, /per class:\n {2}blob/);
  assert.match(r.stdout, /confusion \(rows: true class, columns: predicted\)/);
  const ft = path.join(root, 'cli-ft.safetensors');
  r = run('finetune', '--weights', weights, '--data', dataDir, '--label-fraction', '0.1', '--out', ft, '--epochs', '1', '--min-steps', '5', '--threads', '1', '--json');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).labels, 16);
  assert.ok(existsSync(ft));
  const grid = path.join(root, 'cli-probe-grid.safetensors');
  r = run('probe', '--weights', weights, '--data', dataDir, '--out', grid, '--feature-stages', '2', '--feature-grid', '2', '--threads', '1', '--json');
  assert.equal(r.status, 0, r.stderr);
  const ck = loadCheckpoint(grid);
  assert.deepEqual([ck.meta.config.featureStages, ck.meta.config.featureGrid, ck.model.get('head.weight')!.size(1)], [2, 2, 384]);
  disposeCheckpoint(ck);
  r = run('probe', '--weights', weights, '--data', dataDir, '--out', grid, '--feature-stages', '5');
  assert.equal(r.status, 1);
  assert.match(r.stderr, /--feature-stages counts a ResNet's last stages: 1, 2, 3 or 4, got '5'/);
  r = run('probe', '--weights', weights, '--data', path.join(root, 'nowhere'), '--out', out);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /dyad: error: data folder .*nowhere does not exist/);
});
