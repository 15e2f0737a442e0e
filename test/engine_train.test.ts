// End to end: SimCLR and MoCo on synthetic images with class structure (PNG files written by
// the test), kNN above chance, a killed-and-resumed run equal to an uninterrupted one, and
// the CLI's error messages.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as torch from '../src/torch/index.js';
import { train } from '../src/engine/trainer.js';
import { loadCheckpoint, disposeCheckpoint } from '../src/engine/checkpoint.js';
import { packageRoot } from '../src/torch/native.js';
import { cacheFits } from '../src/engine/data.js';
import { lcg } from './helpers/rng.js';
import { writeShapeFolder } from './helpers/images.js';
import { tempDir } from './helpers/tmp.js';

const root = tempDir('train');
const dataDir = path.join(root, 'shapes');

before(async () => {
  await writeShapeFolder(dataDir, 64, lcg(12345));
});

const base = { data: dataDir, imageSize: 16, channels: 1 as const, width: 8, batch: 64, threads: 1, knnK: 20, minScale: 0.5, cjStrength: 0.5, lr: 0.5 };

test('SimCLR on synthetic shapes: kNN accuracy clearly above chance, run folder complete', async () => {
  const out = path.join(root, 'simclr');
  const r = await train({ ...base, method: 'simclr', epochs: 4, out }, { silent: true });
  const acc = r.metrics.at(-1)!.knn_top1!;
  console.log(`# kNN top-1 ${acc}`);
  assert.ok(acc > 0.6, `kNN top-1 ${acc} (chance is 0.25)`);
  for (const f of ['config.json', 'metrics.jsonl', 'results.csv', 'last.safetensors', 'best.safetensors']) assert.ok(existsSync(path.join(out, f)), f);
  assert.equal(r.metrics.length, 4);
  assert.ok(r.metrics.every((m) => m.loss > 0 && m.img_per_s > 0 && m.lr >= 0));
  // the monitor's bank is every training image (256 less the 10% hold-out of queries), recorded per row
  assert.ok(r.metrics.every((m) => m.knn_bank === 230), `knn_bank ${r.metrics.map((m) => m.knn_bank)}`);
  assert.equal(JSON.parse(readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').split('\n')[0]!).knn_bank, 230);
  const ck = loadCheckpoint(path.join(out, 'last.safetensors'));
  assert.equal(ck.meta.epoch, 3);
  assert.ok(ck.model.has('backbone.conv1.weight') && ck.model.has('backbone.bn1.running_mean'));
  assert.ok(Object.keys(ck.optimizer).some((k) => k.endsWith('momentum_buffer')));
  assert.ok(ck.rng !== null);
  assert.deepEqual(ck.meta.names, ['blob', 'diagonal', 'hstripes', 'vstripes']);
  disposeCheckpoint(ck);
});

test('SimCLR with multi-crop local views trains from the config and beats chance', async () => {
  const out = path.join(root, 'simclr-multicrop');
  const r = await train({ ...base, method: 'simclr', epochs: 4, localViews: 2, localSize: 8, out }, { silent: true });
  const acc = r.metrics.at(-1)!.knn_top1!;
  console.log(`# multi-crop kNN top-1 ${acc}`);
  assert.ok(acc > 0.6, `kNN top-1 ${acc} (chance is 0.25)`);
  assert.equal(r.config.localViews, 2);
  assert.ok(r.metrics.every((m) => Number.isFinite(m.loss) && m.loss > 0));
});

test('MoCo v2 trains, keeps its queue and EMA encoder in the checkpoint, and beats chance', async () => {
  const out = path.join(root, 'moco');
  const r = await train({ ...base, method: 'moco', epochs: 4, memoryBankSize: 256, temperature: 0.2, out }, { silent: true });
  const acc = r.metrics.at(-1)!.knn_top1!;
  console.log(`# kNN top-1 ${acc}`);
  assert.ok(acc > 0.45, `kNN top-1 ${acc} (chance is 0.25)`);
  const ck = loadCheckpoint(path.join(out, 'last.safetensors'));
  assert.deepEqual(ck.model.get('criterion.memory_bank.bank')!.shape, [256, 128]);
  assert.ok(ck.model.has('backbone_momentum.conv1.weight'));
  // the momentum encoder differs from the query encoder but is close to it
  const q = ck.model.get('backbone.conv1.weight')!;
  const k = ck.model.get('backbone_momentum.conv1.weight')!;
  assert.ok(!q.equal(k));
  disposeCheckpoint(ck);
});

test('a run killed mid-way and resumed ends with the same weights as an uninterrupted run', async () => {
  const cfg = { ...base, method: 'simclr' as const, epochs: 3, knnEvery: 0 };
  const full = path.join(root, 'full');
  await train({ ...cfg, out: full }, { silent: true });

  const killed = path.join(root, 'killed');
  const script = path.join(root, 'run.mjs');
  writeFileSync(script, `import { train } from ${JSON.stringify(path.join(packageRoot(), 'dist/src/engine/trainer.js'))};\n` +
    `await train(${JSON.stringify({ ...cfg, out: killed })}, { silent: true, onEpoch: () => process.stdout.write('epoch\\n') });\n`);
  const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => {
    child.stdout.on('data', (d: Buffer) => {
      if (d.toString().includes('epoch')) { child.kill('SIGKILL'); resolve(); }
    });
  });
  await new Promise((r) => child.once('exit', r));
  assert.equal(loadCheckpoint(path.join(killed, 'last.safetensors')).meta.epoch, 0, 'killed after the first epoch');

  await train({ out: killed, epochs: 3 }, { resume: true, silent: true });
  const a = loadCheckpoint(path.join(full, 'last.safetensors'));
  const b = loadCheckpoint(path.join(killed, 'last.safetensors'));
  assert.equal(b.meta.epoch, 2);
  for (const [name, t] of a.model) assert.ok(t.equal(b.model.get(name)!), `${name} differs after resume`);
  for (const [name, t] of Object.entries(a.optimizer)) assert.ok(t.equal(b.optimizer[name]!), `optimizer ${name} differs`);
  disposeCheckpoint(a);
  disposeCheckpoint(b);
});

test('a folder streamed from disk (cache: false) trains to the same weights and kNN as one held in memory', async () => {
  const cfg = { ...base, method: 'simclr' as const, epochs: 2, maxStepsPerEpoch: 3 };
  const cached = await train({ ...cfg, cache: true, out: path.join(root, 'cached') }, { silent: true });
  const streamed = await train({ ...cfg, cache: false, out: path.join(root, 'streamed') }, { silent: true });
  assert.deepEqual(streamed.metrics.map((m) => m.loss), cached.metrics.map((m) => m.loss));
  assert.equal(streamed.metrics.at(-1)!.knn_top1, cached.metrics.at(-1)!.knn_top1);
  const a = cached.method.stateDict();
  const b = streamed.method.stateDict();
  for (const [name, t] of a) assert.ok(t.equal(b.get(name)!), `${name} differs between cached and streamed data`);
  await assert.rejects(train({ ...cfg, cache: 'sometimes' as never }), /unknown cache 'sometimes': use one of true, false, auto/);
});

test("cache 'auto' keeps a folder in memory only when its decoded images fit in a quarter of the RAM", () => {
  const gib = 2 ** 30;
  assert.ok(cacheFits(60000, 1, 28, 24 * gib), 'Fashion-MNIST-sized: 47 MB');
  assert.ok(cacheFits(100_000, 3, 96, 24 * gib), '2.8 GB of 24 GiB');
  assert.ok(!cacheFits(200_000, 3, 224, 24 * gib), '30 GB of 24 GiB: streamed');
  assert.ok(!cacheFits(1001, 1, 1, 4000), 'just over a quarter');
  assert.ok(cacheFits(1000, 1, 1, 4000), 'exactly a quarter');
});

test('a loss that turns NaN stops training with a clear message and keeps the last good checkpoint', async () => {
  const out = path.join(root, 'nan');
  await train({ ...base, method: 'simclr', epochs: 1, knnEvery: 0, out }, { silent: true });
  await assert.rejects(train({ ...base, method: 'simclr', epochs: 3, knnEvery: 0, lr: 1e30, out }, { silent: true, resume: false }),
    /the loss became (NaN|Infinity|-Infinity) at epoch 1/);
  // the earlier checkpoint survives and loads
  const ck = loadCheckpoint(path.join(out, 'last.safetensors'));
  assert.equal(ck.meta.epoch, 0);
  disposeCheckpoint(ck);
});

test('CLI errors: unknown method, missing data folder, bad weights file', () => {
  const cli = path.join(packageRoot(), 'bin', 'dyad.js');
  const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
  let r = run('train', '--method', 'swav');
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /argument 'swav' is invalid\. Allowed choices are simclr, moco, byol/);
  r = run('train', '--data', path.join(root, 'nope'), '--epochs', '1');
  assert.equal(r.status, 1);
  assert.match(r.stderr, /dyad: error: data folder .*nope does not exist/);
  const bad = path.join(root, 'bad.safetensors');
  writeFileSync(bad, 'not a checkpoint at all');
  r = run('knn', '--weights', bad);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /dyad: error: cannot read checkpoint .*bad\.safetensors/);
  r = run('embed', '--weights', path.join(root, 'missing.safetensors'), '--data', dataDir, '--out', path.join(root, 'e.npy'));
  assert.match(r.stderr, /checkpoint .*missing\.safetensors does not exist/);
  r = run('train', '--help');
  assert.equal(r.status, 0);
  assert.match(r.stdout, /--method <name>/);
});

test('dyad embed writes unit vectors and a CSV of paths', () => {
  const cli = path.join(packageRoot(), 'bin', 'dyad.js');
  const out = path.join(root, 'emb.npy');
  const r = spawnSync(process.execPath, [cli, 'embed', '--weights', path.join(root, 'simclr', 'best.safetensors'), '--data', dataDir, '--out', out], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const v = torch.loadNpy(out);
  assert.deepEqual(v.shape, [256, 64]);
  const norms = v.norm(2, 1).toArray();
  assert.ok(norms.every((n) => Math.abs(n - 1) < 1e-4));
  assert.ok(existsSync(out.replace('.npy', '.csv')));
});
