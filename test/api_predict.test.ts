// The Model API on real image files written with sharp: every source kind (path, folder, glob,
// URL from a local server, Buffer, Uint8Array, Tensor, arrays; JPEG, PNG with alpha, grayscale,
// 16-bit, WebP), Results/Probs invariants, embeddings, preprocessing equal to training's, streaming,
// and the errors users meet.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import sharp from 'sharp';
import * as torch from '../src/torch/index.js';
import { loadFile, saveFile } from '../src/torch/safetensors.js';
import { packageRoot } from '../src/torch/native.js';
import { ImageFolder, InMemoryDataset, DecodeError } from '../src/data/index.js';
import { train } from '../src/engine/trainer.js';
import { embedIndices } from '../src/engine/evaluate.js';
import { Model } from '../src/api/model.js';
import { Results, TaskError } from '../src/api/results.js';
import { SourceError, globToRegExp } from '../src/data/sources.js';
import { mergeArgs } from '../src/api/args.js';
import { tempDir } from './helpers/tmp.js';

torch.setNumThreads(1);
const root = tempDir('api');
const dataDir = path.join(root, 'shapes');
const filesDir = path.join(root, 'files');
let embedder: Model;
let classifier: Model;
let server: http.Server;
let base = '';
const F: Record<string, string> = {};

/** 16×16 RGB: 4 classes of coloured patterns (stripes both ways, a blob, a diagonal). */
function pattern(cls: number, rng: () => number, s = 16): Buffer {
  const px = Buffer.alloc(s * s * 3);
  const phase = Math.floor(rng() * 4);
  const col = [100 + rng() * 155, 100 + rng() * 155, 100 + rng() * 155];
  for (let y = 0; y < s; y++) {
    for (let x = 0; x < s; x++) {
      const on = cls === 0 ? (y + phase) % 4 < 2 : cls === 1 ? (x + phase) % 4 < 2
        : cls === 2 ? (x - s / 2) ** 2 + (y - s / 2) ** 2 < s : Math.abs(x - y - phase + 1.5) < 2;
      for (let c = 0; c < 3; c++) px[(y * s + x) * 3 + c] = Math.round(on ? col[c]! : 20 + rng() * 20);
    }
  }
  return px;
}

before(async () => {
  let seed = 7;
  const rng = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (const [c, name] of ['hstripes', 'vstripes', 'blob', 'diagonal'].entries()) {
    mkdirSync(path.join(dataDir, name), { recursive: true });
    for (let i = 0; i < 24; i++) {
      await sharp(pattern(c, rng), { raw: { width: 16, height: 16, channels: 3 } }).png().toFile(path.join(dataDir, name, `${i}.png`));
    }
  }
  // one file per format, of various sizes and aspect ratios
  mkdirSync(filesDir, { recursive: true });
  const raw = (w: number, h: number, ch: number): Buffer => Buffer.from(Array.from({ length: w * h * ch }, (_, i) => (i * 37 + (i % 7) * 11) % 256));
  F.jpeg = path.join(filesDir, 'a.jpg');
  await sharp(raw(24, 16, 3), { raw: { width: 24, height: 16, channels: 3 } }).jpeg({ quality: 90 }).toFile(F.jpeg);
  F.alpha = path.join(filesDir, 'b.png');
  await sharp(raw(20, 20, 4), { raw: { width: 20, height: 20, channels: 4 } }).png().toFile(F.alpha);
  F.gray = path.join(filesDir, 'c.png');
  await sharp(raw(16, 30, 1), { raw: { width: 16, height: 30, channels: 1 } }).png().toFile(F.gray);
  F.deep = path.join(filesDir, 'd.png');
  await sharp(raw(18, 18, 3), { raw: { width: 18, height: 18, channels: 3 } }).toColourspace('rgb16').png().toFile(F.deep);
  F.webp = path.join(filesDir, 'e.webp');
  await sharp(raw(16, 16, 3), { raw: { width: 16, height: 16, channels: 3 } }).webp({ lossless: true }).toFile(F.webp);
  writeFileSync(path.join(filesDir, 'notes.txt'), 'not an image');
  F.broken = path.join(root, 'broken.png');
  writeFileSync(F.broken, Buffer.from('\x89PNG\r\n\x1a\nthis is not really a png'));

  // a short self-supervised run (the embedder), and a linear probe of it (the classifier)
  const r = await train({ data: dataDir, imageSize: 16, channels: 3, width: 8, batch: 32, epochs: 1, maxStepsPerEpoch: 2, knnEvery: 0, threads: 1, out: path.join(root, 'run') }, { silent: true });
  r.method.dispose();
  embedder = await Model.load(r.bestPath);
  classifier = await embedder.linearProbe({ data: dataDir, out: path.join(root, 'clf.safetensors'), silent: true, lrs: [0.01], weightDecays: [0] });

  const jpeg = readFileSync(F.jpeg);
  server = http.createServer((req, res) => {
    if (req.url === '/a.jpg') res.writeHead(200, { 'content-type': 'image/jpeg' }).end(jpeg);
    else if (req.url === '/slow') {
      const t = setTimeout(() => res.writeHead(200).end(jpeg), 3000);
      res.on('close', () => clearTimeout(t));
    }
    else if (req.url === '/big') res.writeHead(200).end(Buffer.alloc(5000));
    else res.writeHead(404, 'Not Found').end('no such image');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(() => {
  server?.closeAllConnections();
  server?.close();
  embedder?.dispose();
  classifier?.dispose();
  rmSync(root, { recursive: true, force: true });
});

const close = (a: Float32Array, b: Float32Array, tol = 1e-5): boolean => a.length === b.length && a.every((v, i) => Math.abs(v - b[i]!) <= tol);

test('every source kind: formats, folder, glob, URL, Buffer, Uint8Array, Tensor, arrays', async () => {
  const kinds = ['jpeg', 'alpha', 'gray', 'deep', 'webp'] as const;
  const byPath = await classifier.predict(kinds.map((k) => F[k]!), { embed: true });
  assert.deepEqual(byPath.map((r) => r.path), kinds.map((k) => F[k]));
  assert.deepEqual(byPath.map((r) => r.origShape), [[16, 24], [20, 20], [30, 16], [18, 18], [16, 16]]);
  for (const r of byPath) assert.equal(r.embedding!.length, classifier.dim);

  // a folder: its images in path order (the .txt is not an image); a glob: the matches, sorted
  const dir = await classifier.predict(filesDir);
  assert.deepEqual(dir.map((r) => path.basename(r.path)), ['a.jpg', 'b.png', 'c.png', 'd.png', 'e.webp']);
  const glob = await classifier.predict(path.join(filesDir, '*.png'));
  assert.deepEqual(glob.map((r) => path.basename(r.path)), ['b.png', 'c.png', 'd.png']);
  assert.equal((await classifier.predict(path.join(root, '**', '*.{jpg,webp}'))).length, 2);
  assert.ok(globToRegExp('a/**/*.png').test('a/b/c/x.png') && globToRegExp('a/**/*.png').test('a/x.png') && !globToRegExp('*.png').test('b/x.png'));

  // the same JPEG by path, Buffer, Uint8Array, URL and file:// URL gives the same probabilities and embedding
  const bytes = readFileSync(F.jpeg);
  const same = await classifier.predict([F.jpeg, bytes, new Uint8Array(bytes), `${base}/a.jpg`, new URL(`file://${F.jpeg}`)], { embed: true });
  assert.deepEqual(same.map((r) => r.path), [F.jpeg, '<buffer 0>', '<buffer 1>', `${base}/a.jpg`, F.jpeg]);
  for (const r of same.slice(1)) {
    assert.ok(close(r.probs.data, same[0]!.probs.data));
    assert.ok(close(r.embedding!, same[0]!.embedding!));
    assert.deepEqual(r.origShape, [16, 24]);
  }

  // tensors: uint8 [C, H, W] and float [N, C, H, W] in 0..1 of the same pixels agree with the decoded file
  const img = await sharp(F.webp).raw().toBuffer({ resolveWithObject: true });
  const chw = torch.scope(() => torch.fromBytes(new Uint8Array(img.data), 'uint8', [16, 16, 3]).permute(2, 0, 1).contiguous().keep());
  const batch = torch.scope(() => chw.unsqueeze(0).repeat(2, 1, 1, 1).float().div(255).keep());
  const fromT = await classifier.predict([chw, batch]);
  assert.deepEqual(fromT.map((r) => r.path), ['<tensor 0>', '<tensor 1>', '<tensor 2>']);
  const webp = (await classifier.predict(F.webp))[0]!;
  for (const r of fromT) assert.ok(close(r.probs.data, webp.probs.data, 1e-5));
  chw.dispose();
  batch.dispose();
});

test('probs: sum to 1, top5 in descending order, top1conf is the largest probability', async () => {
  const rs = await classifier.predict(path.join(dataDir, 'blob'));
  assert.equal(rs.length, 24);
  assert.deepEqual(classifier.names, ['blob', 'diagonal', 'hstripes', 'vstripes']);
  for (const r of rs) {
    const p = r.probs;
    assert.equal(p.data.length, 4);
    assert.ok(Math.abs(p.data.reduce((a, b) => a + b, 0) - 1) < 1e-5);
    assert.equal(p.top1conf, Math.max(...p.data));
    assert.equal(p.top1, p.data.indexOf(p.top1conf));
    assert.equal(p.top5.length, 4, 'top5 holds all classes when there are fewer than 5');
    assert.equal(p.top5[0], p.top1);
    for (let i = 1; i < p.top5conf.length; i++) assert.ok(p.top5conf[i - 1]! >= p.top5conf[i]!);
    assert.deepEqual(p.top5conf, p.top5.map((i) => p.data[i]));
    assert.deepEqual(r.names, classifier.names);
  }
  const correct = rs.filter((r) => r.names[r.probs.top1] === 'blob').length;
  assert.ok(correct >= 12, `the probe classifies ${correct}/24 blobs as blob`);
  // JSON and summary
  const j = JSON.parse(JSON.stringify(rs[0]));
  assert.equal(j.name, rs[0]!.names[rs[0]!.probs.top1]);
  assert.equal(j.probs.top1conf, rs[0]!.probs.top1conf);
  assert.deepEqual(Object.keys(j.speed), ['preprocess', 'inference', 'postprocess']);
  assert.ok(rs[0]!.speed.inference >= 0);
  assert.match(rs[0]!.summary(), /^.*0\.png 16x16 {2}\w+ \d\.\d\d, .*ms$/);
});

test('embed: L2-normalised float32 rows; the same image gives the same vector', async () => {
  const vs = await embedder.embed([F.jpeg, F.gray, readFileSync(F.jpeg), F.jpeg]);
  assert.equal(vs.length, 4);
  for (const v of vs) {
    assert.ok(v instanceof Float32Array);
    assert.equal(v.length, embedder.dim);
    assert.ok(Math.abs(Math.hypot(...v) - 1) < 1e-5);
  }
  assert.ok(close(vs[0]!, vs[2]!) && close(vs[0]!, vs[3]!));
  assert.ok(!close(vs[0]!, vs[1]!, 1e-3));
  // the classifier's embedding of an image is its backbone's, i.e. the embedder's
  const [c] = await classifier.embed(F.jpeg);
  assert.ok(close(c!, vs[0]!, 1e-5));
  // the search index's Embedder interface
  assert.match(embedder.identity, /^dyad:[0-9a-f]{64}$/);
  assert.equal((await embedder.embedImages([F.webp]))[0]!.length, embedder.dim);
});

test('preprocessing equals the training data path (decode, channels, cover-resize, mean/std)', async () => {
  const ds = await InMemoryDataset.from(await ImageFolder.open(filesDir, { channels: 3, labels: 'none' }), { imageSize: 16, channels: 3, fit: 'cover' });
  const cfg = embedder.config!;
  const expected = torch.scope(() => {
    embedder.net!.module.eval();
    const f = embedIndices((x) => embedder.net!.features(x), ds, [...Array(ds.length).keys()], { mean: cfg.mean, std: cfg.std });
    return torch.functional.normalize(f).toFloat32Array();
  });
  const got = await embedder.embed(filesDir);
  const d = embedder.dim;
  got.forEach((v, i) => assert.ok(close(v, expected.subarray(i * d, (i + 1) * d), 1e-5), `image ${i} differs from the training pipeline`));
  ds.dispose();
});

test('stream: an async iterator in batches, same results, no tensor leak', async () => {
  const all = await classifier.predict(dataDir, { batch: 7 });
  const before = torch.memory().count;
  let i = 0;
  for await (const r of classifier.predict(dataDir, { stream: true, batch: 5 })) {
    assert.ok(r instanceof Results);
    assert.equal(r.path, all[i]!.path);
    assert.ok(close(r.probs.data, all[i]!.probs.data, 1e-5));
    i++;
  }
  assert.equal(i, 96);
  for (let k = 0; k < 3; k++) await classifier.predict(filesDir, { embed: true, batch: 2 });
  // (the GC safety net may free earlier garbage meanwhile, so the count can only be lower)
  assert.ok(torch.memory().count <= before, `live tensors after predicting: ${torch.memory().count}, before: ${before}`);
});

test('errors: missing file, unreadable image, failing URLs, mismatched weights, embedder asked for probs, bad options', async () => {
  await assert.rejects(classifier.predict(path.join(root, 'nope.jpg')), (e: Error) => e instanceof SourceError && /nope\.jpg does not exist/.test(e.message));
  await assert.rejects(classifier.predict(path.join(root, 'none', '*.jpg')), /no image files match the pattern/);
  await assert.rejects(classifier.predict(F.broken), (e: Error) => e instanceof DecodeError && /cannot decode .*broken\.png/.test(e.message));
  await assert.rejects(classifier.predict(Buffer.from('garbage')), /cannot decode <buffer 0>: not a recognised image format/);
  await assert.rejects(classifier.predict(`${base}/missing.jpg`), /cannot fetch http:\/\/127\.0\.0\.1:\d+\/missing\.jpg: the server answered HTTP 404 Not Found/);
  await assert.rejects(classifier.predict(`${base}/slow`, { timeoutMs: 200 }), /no answer within 0\.2 s/);
  await assert.rejects(classifier.predict(`${base}/big`, { maxBytes: 1000 }), /larger than the 1000 byte limit/);
  // a closed port: connection refused (what an unreachable server looks like offline)
  const probe = http.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as AddressInfo).port;
  await new Promise((resolve) => probe.close(resolve));
  await assert.rejects(classifier.predict(`http://127.0.0.1:${port}/a.jpg`), /cannot fetch .*connection was refused.*Check the address and the network connection/);

  // weights whose config does not match: the config says width 16, the tensors are width 8
  const file = loadFile(path.join(root, 'clf.safetensors'));
  const meta = JSON.parse(file.metadata.dyad!);
  meta.config.width = 16;
  const bad = path.join(root, 'mismatch.safetensors');
  saveFile(file.tensors, bad, { dyad: JSON.stringify(meta) });
  for (const t of file.tensors.values()) t.dispose();
  await assert.rejects(Model.load(bad), /mismatch\.safetensors: the weights do not match the model described by its config \(.*shape/s);
  await assert.rejects(Model.load(path.join(root, 'absent.safetensors')), /absent\.safetensors does not exist/);

  // an embedder asked for probs: says what it is and how to make a classifier
  const [r] = await embedder.predict(F.jpeg);
  assert.equal(r!.hasProbs, false);
  assert.ok(r!.embedding, 'an embedder always gives embeddings');
  assert.throws(() => r!.probs, (e: Error) => e instanceof TaskError && /is an embedder/.test(e.message) && /dyad probe --weights/.test(e.message) && /linearProbe/.test(e.message));
  assert.throws(() => embedder.requireClassifier(), TaskError);
  // classes by name are a CLIP's (zero-shot); a dyad model's come from training
  assert.throws(() => embedder.setClasses(['cat', 'dog']), (e: Error) => e instanceof TaskError && /names the classes of a CLIP model/.test(e.message) && /linearProbe/.test(e.message));
  assert.throws(() => classifier.setClasses(['cat']), TaskError);

  await assert.rejects(classifier.predict(F.jpeg, { bacth: 4 } as unknown as { batch: number }), /unknown predict option 'bacth'\. Known options: batch/);
  assert.throws(() => new Model({ epocs: 3 } as never), /unknown Model option 'epocs'/);
  await assert.rejects(new Model().predict(F.jpeg), /has no weights yet/);
  await assert.rejects(classifier.predict(42 as unknown as string), /cannot predict on number/);
});

test('arguments merge right-most wins: defaults < model overrides < call', async () => {
  const m = mergeArgs<{ batch: number; embed: boolean }>('predict', [{ args: { batch: 32, embed: false } }, { args: { batch: 8, data: 'x' }, lenient: true }, { args: { batch: undefined, embed: true } }]);
  assert.deepEqual(m, { batch: 8, embed: true });
  const withOverrides = await Model.load(path.join(root, 'clf.safetensors'), { embed: true });
  const [r] = await withOverrides.predict(F.jpeg);
  assert.ok(r!.embedding !== null, 'the model override embed: true applies');
  const [r2] = await withOverrides.predict(F.jpeg, { embed: false });
  assert.equal(r2!.embedding, null, 'the call wins over the model');
  withOverrides.dispose();
});

test('CLI: dyad predict --json and its errors', () => {
  const cli = path.join(packageRoot(), 'bin', 'dyad.js');
  const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1' } });
  let r = run('predict', '--weights', path.join(root, 'clf.safetensors'), '--source', F.jpeg, F.webp, '--json', '--embed');
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines.length, 2);
  assert.equal(lines[0].path, F.jpeg);
  assert.ok(lines[0].name && lines[0].probs.top5.length === 4 && lines[0].embedding.length > 0);
  r = run('predict', '--weights', path.join(root, 'clf.safetensors'), '--source', filesDir);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim().split('\n').length, 5);
  r = run('predict', '--weights', path.join(root, 'run', 'best.safetensors'), '--source', F.jpeg);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /embedding\[64\]/);
  assert.match(r.stderr, /is an embedder.*dyad probe/);
  r = run('predict', '--weights', path.join(root, 'clf.safetensors'), '--source', path.join(root, 'nope.jpg'));
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^dyad: error: image source .*nope\.jpg does not exist/m);
});
