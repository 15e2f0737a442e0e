// CLIP training (src/losses/clip.ts, src/methods/clip.ts, src/engine/clip_trainer.ts, src/cli/clip.ts):
// the loss, a tiny CLIP trained from scratch on synthetic coloured shapes that zero-shots held-out
// colour/shape combinations, exact resume, LiT on a locked dyad encoder, fine-tuning, and the CLI.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import * as torch from '../src/torch/index.js';
import { CLIPLoss } from '../src/losses/clip.js';
import { CLIPModel } from '../src/models/clip/index.js';
import { trainClip, type ClipPairs } from '../src/engine/clip_trainer.js';
import { buildMethod, modelConfig } from '../src/engine/trainer.js';
import { resolveConfig } from '../src/engine/config.js';
import { disposeCheckpoint, loadCheckpoint, saveCheckpoint } from '../src/engine/checkpoint.js';
import { Results } from '../src/api/results.js';
import { zeroShot } from '../src/api/clip.js';
import { Model } from '../src/api/model.js';
import { mulberry32 as rng } from './helpers/rng.js';

const F = torch.functional;
const CLI = path.resolve('bin/dyad.js');
let tmp: string;

before(() => {
  tmp = mkdtempSync(path.join(tmpdir(), 'dyad-clip-train-'));
});
after(() => rmSync(tmp, { recursive: true, force: true }));

// ---- synthetic coloured shapes ---------------------------------------------------------------------------

const COLOURS: Record<string, [number, number, number]> = {
  red: [220, 40, 40], green: [40, 200, 60], blue: [40, 70, 230], yellow: [230, 220, 40], magenta: [220, 50, 220], cyan: [40, 220, 220],
};
const SHAPES = ['circle', 'square', 'triangle'];
// Held out: one shape per secondary colour (each of their two channels carries the shape in other training colours).
const HELD_OUT = new Set(['yellow circle', 'magenta square', 'cyan triangle']);
const LABELS = Object.keys(COLOURS).flatMap((c) => SHAPES.map((s) => `${c} ${s}`));


/** One S×S CHW image: a noisy coloured shape (a little jitter in size and position) near the centre on a dark noisy background. */
function drawShape(colour: string, shape: string, r: () => number, S: number): Uint8Array {
  const img = new Uint8Array(3 * S * S);
  const bg = 15 + Math.floor(r() * 30);
  const size = (S / 32) * (8 + r());
  const cx = S / 2 + ((r() - 0.5) * 1.5 * S) / 32, cy = S / 2 + ((r() - 0.5) * 1.5 * S) / 32;
  const c = COLOURS[colour]!;
  for (let y = 0; y < S; y++) {
    for (let x = 0; x < S; x++) {
      const dx = x + 0.5 - cx, dy = y + 0.5 - cy;
      const inside = shape === 'circle' ? dx * dx + dy * dy <= size * size
        : shape === 'square' ? Math.abs(dx) <= size * 0.85 && Math.abs(dy) <= size * 0.85
          : dy <= size * 0.8 && dy >= -size && Math.abs(dx) <= (dy + size) * 0.55;
      for (let k = 0; k < 3; k++) {
        const v = (inside ? c[k]! : bg) + (r() - 0.5) * 30;
        img[k * S * S + y * S + x] = Math.max(0, Math.min(255, Math.round(v)));
      }
    }
  }
  return img;
}

/** `n` pairs cycling over the seen (or held-out) combinations, captioned "a <colour> <shape>". */
function shapes(n: number, seed: number, heldOut: boolean, S = 32): ClipPairs & { labels: string[] } {
  const r = rng(seed);
  const combos = LABELS.filter((l) => HELD_OUT.has(l) === heldOut);
  const all = new Uint8Array(n * 3 * S * S);
  const labels: string[] = [];
  for (let i = 0; i < n; i++) {
    const l = combos[i % combos.length]!;
    const [c, s] = l.split(' ') as [string, string];
    all.set(drawShape(c, s, r, S), i * 3 * S * S);
    labels.push(l);
  }
  return { images: torch.tensor(all, { shape: [n, 3, S, S] }).keep(), captions: labels.map((l) => `a ${l}`), labels };
}

const TINY = { imageSize: 32, patchSize: 8, visionWidth: 64, visionLayers: 2, visionHeads: 2, textWidth: 64, textLayers: 2, textHeads: 2, contextLength: 8, projectionDim: 32 };

// ---- the loss ----------------------------------------------------------------------------------------------

test('CLIPLoss: symmetric cross-entropy over exp(t)·cos, exp(t) clamped at 100, argument checks', () => {
  const loss = new CLIPLoss();
  torch.scope(() => {
    torch.manualSeed(0);
    const img = torch.randn([5, 8]);
    const txt = torch.randn([5, 8]);
    const t = torch.tensor(Math.log(1 / 0.07)).view([]);
    const logits = F.normalize(img).matmul(F.normalize(txt).t()).mul(1 / 0.07);
    const target = torch.arange(5);
    const manual = F.crossEntropy(logits, target).add(F.crossEntropy(logits.t(), target)).div(2);
    assert.ok(Math.abs(loss.forward(img, txt, t).item() - manual.item()) < 1e-5);
    // symmetric in the two modalities
    assert.ok(Math.abs(loss.forward(txt, img, t).item() - manual.item()) < 1e-5);
    // exp(t) above 100 counts as 100
    const big = torch.tensor(Math.log(1000)).view([]);
    const at100 = torch.tensor(Math.log(100)).view([]);
    assert.ok(Math.abs(loss.forward(img, txt, big).item() - loss.forward(img, txt, at100).item()) < 1e-5);
    const p = torch.tensor(7).view([]);
    loss.clampLogitScale_(p);
    assert.ok(Math.abs(p.item() - Math.log(100)) < 1e-6);
    // perfect alignment gives a small loss
    assert.ok(loss.forward(img, img, at100).item() < 0.01);
    assert.throws(() => loss.forward(img, torch.randn([4, 8]), t), /same shape/);
    assert.throws(() => loss.forward(img.narrow(0, 0, 1), txt.narrow(0, 0, 1), t), /at least 2 pairs/);
  });
  assert.throws(() => new CLIPLoss({ maxLogitScale: 0 }), /maxLogitScale must be a positive number/);
});

// ---- training from scratch -------------------------------------------------------------------------------

test('a tiny CLIP trained from scratch on coloured shapes zero-shots held-out colour/shape combinations well above chance', async (t) => {
  const train = shapes(900, 1, false);
  const heldOut = shapes(120, 2, true);
  const seen = shapes(90, 3, false);
  const before = torch.memory().count;
  try {
    const r = await trainClip({ ...TINY, data: '<in memory>', out: path.join(tmp, 'scratch'), epochs: 8, batch: 64, lr: 1e-3, weightDecay: 0.1, warmupEpochs: 1, threads: 2, seed: 0 },
      { data: train, silent: true });
    assert.ok(r.metrics.at(-1)!.loss < r.metrics[0]!.loss - 0.3, `loss ${r.metrics.map((m) => m.loss.toFixed(3)).join(' → ')}`);
    for (const m of r.metrics) assert.ok(m.logit_scale <= 100 + 1e-3);
    // Zero-shot through the public API: the held-out images as a uint8 tensor source, all 18 combinations as labels.
    const results = await zeroShot(r.model, heldOut.images, LABELS, { templates: ['a {}'] });
    assert.equal(results.length, 120);
    assert.ok(results[0] instanceof Results);
    const acc = results.filter((x, i) => x.names[x.probs.top1] === heldOut.labels[i]).length / results.length;
    const colour = results.filter((x, i) => x.names[x.probs.top1]!.split(' ')[0] === heldOut.labels[i]!.split(' ')[0]).length / results.length;
    const seenRes = await zeroShot(r.model, seen.images, LABELS, { templates: ['a {}'] });
    const seenAcc = seenRes.filter((x, i) => x.names[x.probs.top1] === seen.labels[i]).length / seenRes.length;
    t.diagnostic(`held-out combinations: accuracy ${acc.toFixed(3)} (chance ${(1 / 18).toFixed(3)}), colour ${colour.toFixed(3)}; seen combinations ${seenAcc.toFixed(3)}`);
    // chance is 1/18 ≈ 0.056 on the held-out combinations
    assert.ok(acc >= 0.25, `held-out combination accuracy ${acc} (colour ${colour}, seen combinations ${seenAcc})`);
    assert.ok(colour >= 0.6, `held-out colour accuracy ${colour}`);
    assert.ok(seenAcc >= 0.6, `seen combinations ${seenAcc}`);
    // checkpoints load as CLIP models (last = the final weights; best = the lowest-loss epoch)
    assert.ok(existsSync(r.bestPath));
    const back = CLIPModel.fromPretrained(r.lastPath);
    torch.scope(() => {
      const a = r.model.stateDict();
      for (const [k, t] of back.stateDict()) assert.ok(t.equal(a.get(k)!), k);
    });
    back.dispose();
    // the checkpoint through Model.load (task 'clip'): setClasses + predict gives zeroShot's answers
    const m = (await Model.load(r.lastPath)).setClasses(LABELS, { templates: ['a {}'] });
    assert.equal(m.task, 'clip');
    const viaModel = await m.predict(heldOut.images);
    assert.deepEqual(viaModel.map((x) => x.probs.top1), results.map((x) => x.probs.top1));
    // saved as a dyad checkpoint with its classes, loaded back
    const saved = path.join(tmp, 'zero-shot.safetensors');
    m.save(saved);
    const back2 = await Model.load(saved);
    assert.deepEqual(back2.names, LABELS);
    assert.deepEqual((await back2.predict(heldOut.images.narrow(0, 0, 8))).map((x) => x.probs.top1), results.slice(0, 8).map((x) => x.probs.top1));
    back2.dispose();
    m.dispose();
    r.model.dispose();
  } finally {
    for (const d of [train, heldOut, seen]) d.images.dispose();
  }
  assert.ok(torch.memory().count <= before + 4, `live tensors ${before} → ${torch.memory().count}`);
});

test('resume: one epoch, then resuming to two, ends with the weights of an uninterrupted run', async () => {
  const data = shapes(64, 5, false, 16);
  const small = { ...TINY, imageSize: 16, patchSize: 8, visionWidth: 16, visionLayers: 1, visionHeads: 2, textWidth: 16, textLayers: 1, textHeads: 2, projectionDim: 8, batch: 16, threads: 1, warmupEpochs: 1 };
  try {
    const a = await trainClip({ ...small, data: '<m>', out: path.join(tmp, 'full'), epochs: 2 }, { data, silent: true });
    const b1 = await trainClip({ ...small, data: '<m>', out: path.join(tmp, 'resumed'), epochs: 2, maxStepsPerEpoch: 0 }, { data, silent: true, onEpoch: (m) => { if (m.epoch === 0) throw new Error('killed'); } })
      .catch((e: Error) => e);
    assert.match(String(b1), /killed/);
    const b = await trainClip({ out: path.join(tmp, 'resumed') }, { data, silent: true, resume: true });
    assert.equal(b.metrics.length, 2);
    assert.equal(b.metrics[0]!.loss, a.metrics[0]!.loss);
    torch.scope(() => {
      const sa = a.model.stateDict();
      for (const [k, t] of b.model.stateDict()) assert.ok(t.equal(sa.get(k)!), k);
    });
    a.model.dispose();
    b.model.dispose();
    await assert.rejects(trainClip({ out: path.join(tmp, 'nothing-here') }, { data, resume: true, silent: true }), /does not exist/);
  } finally {
    data.images.dispose();
  }
});

// ---- LiT and fine-tuning ----------------------------------------------------------------------------------------

test('LiT: a locked dyad SSL encoder as the image tower; only text, projections and temperature learn', async () => {
  const cfg = resolveConfig({ backbone: 'resnet18', width: 4, channels: 3, imageSize: 16, method: 'simclr' });
  const ssl = buildMethod(cfg);
  const sslFile = path.join(tmp, 'ssl.safetensors');
  saveCheckpoint(sslFile, { model: ssl, meta: { task: 'embedder', config: modelConfig(cfg, { channels: 3, imageSize: 16, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25], names: [] }), epoch: 0, step: 0 } });
  const data = shapes(64, 9, false, 16);
  try {
    const r = await trainClip({ data: '<m>', imageEncoder: sslFile, out: path.join(tmp, 'lit'), epochs: 2, batch: 16, textWidth: 16, textLayers: 1, textHeads: 2, contextLength: 8, projectionDim: 8, lr: 1e-3, threads: 1 },
      { data, silent: true });
    torch.scope(() => {
      const trained = r.model.stateDict();
      // the image tower is the SSL backbone, bit for bit, BN statistics included
      for (const [k, t] of ssl.backbone.stateDict()) assert.ok(trained.get(`vision_model.${k}`)!.equal(t), k);
      const fresh = CLIPModel.fromPretrained(r.bestPath);
      assert.ok(fresh.dyadBackbone !== null);
      assert.equal(fresh.dyadBackbone!.name, 'resnet18');
      assert.deepEqual(fresh.processor.config.mean, [0.5, 0.5, 0.5]);
      assert.equal(fresh.processor.config.cropSize, 16);
      for (const [k, t] of fresh.stateDict()) assert.ok(t.equal(trained.get(k)!), k);
      fresh.dispose();
    });
    assert.ok(Number.isFinite(r.metrics[1]!.loss));
    const z = await zeroShot(r.model, data.images.narrow(0, 0, 2), ['red square', 'blue circle']);
    assert.equal(z.length, 2);
    assert.equal(z[0]!.probs.data.length, 2);
    r.model.dispose();
  } finally {
    data.images.dispose();
    ssl.dispose();
  }
});

test('fine-tuning a loaded CLIP (HF folder): the default lr is 1e-5 and the weights move', async () => {
  torch.manualSeed(3);
  const base = new CLIPModel({ projection_dim: 8, text_config: { hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1, num_attention_heads: 2, max_position_embeddings: 8 },
    vision_config: { hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1, num_attention_heads: 2, image_size: 16, patch_size: 8 } });
  const dir = path.join(tmp, 'hf-base');
  base.savePretrained(dir);
  const data = shapes(32, 11, false, 16);
  try {
    const r = await trainClip({ data: '<m>', model: dir, out: path.join(tmp, 'ft'), epochs: 1, batch: 16, threads: 1 }, { data, silent: true });
    assert.equal(r.config.lr, 1e-5);
    torch.scope(() => {
      const b = base.stateDict();
      const moved = [...r.model.stateDict()].filter(([k, t]) => !t.equal(b.get(k)!)).length;
      assert.ok(moved > 10, `${moved} tensors changed`);
    });
    r.model.dispose();
  } finally {
    data.images.dispose();
    base.dispose();
  }
});

// ---- the CLI ----------------------------------------------------------------------------------------------------------

test('CLI: dyad train --method clip --data pairs.jsonl, then dyad zero-shot; clear errors', async () => {
  const dir = path.join(tmp, 'cli');
  const img = path.join(dir, 'img');
  mkdirSync(img, { recursive: true });
  const lines: string[] = [];
  for (let i = 0; i < 16; i++) {
    const c = i % 2 === 0 ? 'red' : 'green';
    const f = path.join(img, `${c}${i}.png`);
    await sharp({ create: { width: 40, height: 30, channels: 3, background: c === 'red' ? '#dc2828' : '#28c83c' } }).png().toFile(f);
    lines.push(JSON.stringify({ path: `img/${c}${i}.png`, caption: `a ${c} picture` }));
  }
  writeFileSync(path.join(dir, 'pairs.jsonl'), lines.join('\n') + '\n');
  const run = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1' } });
  const out = path.join(dir, 'run');
  const t = run('train', '--method', 'clip', '--data', path.join(dir, 'pairs.jsonl'), '--epochs', '1', '--batch', '8', '--image-size', '16', '--patch-size', '8',
    '--vision-width', '16', '--vision-layers', '1', '--vision-heads', '2', '--text-width', '16', '--text-layers', '1', '--text-heads', '2',
    '--context-length', '8', '--projection-dim', '8', '--out', out);
  assert.equal(t.status, 0, t.stderr + t.stdout);
  assert.match(t.stdout, /done: .*best .*best\.safetensors/);
  for (const f of ['last.safetensors', 'best.safetensors', 'metrics.jsonl', 'results.csv', 'config.json']) assert.ok(existsSync(path.join(out, f)), f);
  // the same run with the images decoded batch by batch from the files (--cache false) ends with the same weights
  const streamedOut = path.join(dir, 'streamed');
  const st = run('train', '--method', 'clip', '--data', path.join(dir, 'pairs.jsonl'), '--epochs', '1', '--batch', '8', '--image-size', '16', '--patch-size', '8',
    '--vision-width', '16', '--vision-layers', '1', '--vision-heads', '2', '--text-width', '16', '--text-layers', '1', '--text-heads', '2',
    '--context-length', '8', '--projection-dim', '8', '--cache', 'false', '--out', streamedOut);
  assert.equal(st.status, 0, st.stderr + st.stdout);
  const cachedCk = loadCheckpoint(path.join(out, 'last.safetensors'));
  const streamedCk = loadCheckpoint(path.join(streamedOut, 'last.safetensors'));
  assert.equal((streamedCk.meta.config as { run: { cache: unknown } }).run.cache, false);
  for (const [name, w] of cachedCk.model) assert.ok(w.equal(streamedCk.model.get(name)!), `${name}: streamed and cached training differ`);
  disposeCheckpoint(cachedCk);
  disposeCheckpoint(streamedCk);
  const z = run('zero-shot', '--model', path.join(out, 'best.safetensors'), '--source', img, '--labels', 'red,green', '--template', 'a {} picture', '--json');
  assert.equal(z.status, 0, z.stderr);
  const rows = z.stdout.trim().split('\n').map((l) => JSON.parse(l) as { path: string; label: string; score: number; ranked: { label: string }[] });
  assert.equal(rows.length, 16);
  assert.ok(rows.every((r) => ['red', 'green'].includes(r.label) && r.ranked.length === 2 && r.score > 0 && r.score <= 1));
  // dyad predict takes the labels too (the 'clip' task), and without them prints embeddings
  const pz = run('predict', '--weights', path.join(out, 'best.safetensors'), '--source', img, '--labels', 'red,green', '--template', 'a {} picture', '--json');
  assert.equal(pz.status, 0, pz.stderr);
  const prow = pz.stdout.trim().split('\n').map((l) => JSON.parse(l) as { path: string; name: string });
  assert.deepEqual(prow.map((r) => [path.basename(r.path), r.name]), rows.map((r) => [path.basename(r.path), r.label]));
  const pe = run('predict', '--weights', path.join(out, 'best.safetensors'), '--source', img);
  assert.equal(pe.status, 0, pe.stderr);
  assert.match(pe.stderr, /a CLIP model without labels.*--labels/);
  assert.match(pe.stdout, /embedding\[8\]/);
  const kz = run('knn', '--weights', path.join(out, 'best.safetensors'), '--data', dir);
  assert.equal(kz.status, 1);
  assert.match(kz.stderr, /is a clip, not a self-supervised encoder: measure it with dyad val/);
  // Model.train on a loaded CLIP: the CLIP trainer fine-tunes it on pairs; the classes carry over
  const ft = (await Model.load(path.join(out, 'best.safetensors'))).setClasses(['red', 'green']);
  const outcome = await ft.train({ data: path.join(dir, 'pairs.jsonl'), epochs: 1, batch: 8, threads: 1, out: path.join(dir, 'model-ft'), silent: true });
  assert.equal(ft.task, 'clip');
  assert.equal(outcome.weights, path.join(dir, 'model-ft', 'best.safetensors'));
  assert.equal(ft.weights, outcome.weights);
  assert.deepEqual(ft.names, ['red', 'green']);
  assert.equal((await ft.predict(path.join(img, 'red0.png')))[0]!.probs.data.length, 2);
  ft.dispose();
  // dyad index / search --text with the CLIP checkpoint (the CLIP embedder loader of src/cli/clip.ts)
  const db = path.join(dir, 'db');
  const ix = run('index', '--weights', path.join(out, 'best.safetensors'), '--data', img, '--db', db);
  assert.equal(ix.status, 0, ix.stderr);
  const s = run('search', '--text', 'a red picture', '--db', db, '--limit', '3', '--json');
  assert.equal(s.status, 0, s.stderr);
  const hits = JSON.parse(s.stdout) as { path: string; score: number }[] | { hits: { path: string; score: number }[] };
  const list = Array.isArray(hits) ? hits : hits.hits;
  assert.equal(list.length, 3);
  assert.ok(list[0]!.score >= list[2]!.score);
  // errors: one line, exit code 1
  const noData = run('train', '--method', 'clip', '--out', path.join(dir, 'x'));
  assert.equal(noData.status, 1);
  assert.match(noData.stderr, /--method clip needs --data: a CSV or JSONL list/);
  const ssl = run('train', '--method', 'clip', '--data', path.join(dir, 'pairs.jsonl'), '--backbone', 'resnet50');
  assert.match(ssl.stderr, /--backbone is not used by --method clip/);
  const clipOpt = run('train', '--method', 'simclr', '--patch-size', '4', '--epochs', '1');
  assert.match(clipOpt.stderr, /--patch-size is a CLIP option; --method simclr does not use it/);
  const badModel = run('zero-shot', '--model', path.join(dir, 'nope'), '--source', img, '--labels', 'a,b');
  assert.equal(badModel.status, 1);
  assert.match(badModel.stderr, /nope does not exist.*Hugging Face CLIP checkpoint/);
  const noLabels = run('zero-shot', '--model', path.join(out, 'best.safetensors'), '--source', img, '--labels', ' , ');
  assert.match(noLabels.stderr, /--labels ' , ' holds no labels/);
});
