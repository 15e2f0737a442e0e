// `dyad index / search / sql / dedup` end to end: a tiny dyad model trained here for a few steps,
// PNG/JPEG files written with sharp, a real LanceDB database in a temp folder, the CLI spawned as
// `node bin/dyad.js` (build first: npx tsc). Results are checked against brute-force cosine over
// `Model.embed()` vectors computed in the test.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { promises as fsp, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { train } from '../src/engine/trainer.js';
import { Model } from '../src/api/model.js';
import { Index, IndexError, LazyEmbedder, rowId } from '../src/search/index.js';
import { labelAndSplit } from '../src/cli/search.js';
import { program } from '../src/cli/index.js';
import { packageRoot } from '../src/torch/native.js';
import { lcg } from './helpers/rng.js';
import { cosine as cos } from './helpers/vectors.js';

const CLASSES = ['hstripes', 'vstripes', 'blob', 'diagonal'];
let root: string;
let data: string;
let db: string;
let weights: string;
let otherWeights: string;
let model: Model;

/** Deterministic PRNG (LCG). */

/** A 16×16 gray image of class `cls`: horizontal or vertical stripes, a blob, a diagonal. */
function shape(cls: number, rng: () => number): Buffer {
  const n = 16;
  const px = Buffer.alloc(n * n);
  const phase = Math.floor(rng() * 4);
  const bright = 150 + Math.floor(rng() * 100);
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      let on = false;
      if (cls === 0) on = (y + phase) % 4 < 2;
      else if (cls === 1) on = (x + phase) % 4 < 2;
      else if (cls === 2) on = (x - 7.5 - (phase - 1.5)) ** 2 + (y - 7.5) ** 2 < 16;
      else on = Math.abs(x - y - (phase - 1.5)) < 2;
      px[y * n + x] = Math.max(0, Math.min(255, (on ? bright : 30) + Math.floor((rng() - 0.5) * 60)));
    }
  }
  return px;
}

/** Writes a shape as a 32×32 PNG (the model sees it at 16×16). */
async function writeShape(file: string, cls: number, rng: () => number): Promise<void> {
  await fsp.mkdir(path.dirname(file), { recursive: true });
  await sharp(shape(cls, rng), { raw: { width: 16, height: 16, channels: 1 } }).resize(32, 32, { kernel: 'nearest' }).png().toFile(file);
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function dyad(...args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(packageRoot(), 'bin/dyad.js'), ...args], { cwd: root, env: { ...process.env, OMP_NUM_THREADS: '1' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** The same CLI in this process (for error messages: no process start-up per check). */
async function cli(...args: string[]): Promise<void> {
  await program().exitOverride().parseAsync(['node', 'dyad', ...args]);
}

async function ok(...args: string[]): Promise<Run> {
  const r = await dyad(...args);
  assert.equal(r.code, 0, `dyad ${args.join(' ')} failed:\n${r.stderr}`);
  return r;
}


interface Hit {
  id: string;
  path: string;
  label: string | null;
  split: string | null;
  score: number;
  distance: number;
}

/** Brute-force cosine over `model.embed()` of every row of `db` (optionally filtered), best first. */
async function bruteForce(query: string, keep: (r: { path: string; label: string | null; split: string | null }) => boolean = () => true): Promise<{ path: string; score: number }[]> {
  const index = await Index.open({ db, dataset: 'shapes', embedder: model, readOnly: true });
  const rows = (await index.sql().finally(() => index.close())).filter(keep);
  const vecs = await model.embed(rows.map((r) => r.path));
  const [q] = await model.embed(query);
  return rows.map((r, i) => ({ path: r.path, score: cos(q!, vecs[i]!) })).sort((a, b) => b.score - a.score);
}

/** The hits are the brute-force top-k: the k best scores in order, each hit's own score right (ties in any order). */
function assertSameRanking(hits: Hit[], truth: { path: string; score: number }[], k: number): void {
  assert.equal(hits.length, Math.min(k, truth.length));
  const scoreOf = new Map(truth.map((t) => [t.path, t.score]));
  hits.forEach((h, i) => {
    assert.ok(Math.abs(h.score - truth[i]!.score) < 1e-4, `rank ${i + 1}: score ${h.score}, brute force ${truth[i]!.score}`);
    assert.ok(scoreOf.has(h.path) && Math.abs(scoreOf.get(h.path)! - h.score) < 1e-4, `rank ${i + 1}: ${h.path} scored ${h.score}, brute force ${scoreOf.get(h.path)}`);
    assert.ok(Math.abs(h.distance - (1 - h.score)) < 1e-6);
  });
  assert.equal(new Set(hits.map((h) => h.path)).size, hits.length);
}

before(async () => {
  root = await fsp.mkdtemp(path.join(os.tmpdir(), 'dyad-index-cli-'));
  data = path.join(root, 'shapes');
  db = path.join(root, 'db');
  // training images: 4 classes × 16
  const rng = lcg(7);
  const trainDir = path.join(root, 'train-shapes');
  for (const [c, name] of CLASSES.entries()) {
    for (let i = 0; i < 16; i++) await writeShape(path.join(trainDir, name, `${i}.png`), c, rng);
  }
  const base = { method: 'simclr' as const, data: trainDir, imageSize: 16, channels: 1 as const, width: 8, batch: 32, threads: 1, epochs: 1, knnEvery: 0, maxStepsPerEpoch: 2, lr: 0.5, minScale: 0.5, cjStrength: 0.5 };
  await train({ ...base, out: path.join(root, 'run-a') }, { silent: true });
  await train({ ...base, seed: 1, out: path.join(root, 'run-b') }, { silent: true });
  weights = path.join(root, 'run-a', 'last.safetensors');
  otherWeights = path.join(root, 'run-b', 'last.safetensors');
  model = await Model.load(weights, { threads: 1 });

  // the indexed folder: train/<class>/ (5 each) and val/<class>/ (2 each), plus two copies of train/blob/0.png
  const r2 = lcg(99);
  for (const [c, name] of CLASSES.entries()) {
    for (let i = 0; i < 5; i++) await writeShape(path.join(data, 'train', name, `${i}.png`), c, r2);
    for (let i = 0; i < 2; i++) await writeShape(path.join(data, 'val', name, `${i}.png`), c, r2);
  }
  await fsp.copyFile(path.join(data, 'train', 'blob', '0.png'), path.join(data, 'train', 'blob', 'copy.png'));
  await sharp(path.join(data, 'train', 'blob', '0.png')).resize(24, 24).jpeg({ quality: 90 }).toFile(path.join(data, 'train', 'blob', 'resized.jpg'));
  await writeShape(path.join(root, 'query.png'), 2, lcg(5));
});

after(async () => {
  model?.dispose();
  await fsp.rm(root, { recursive: true, force: true });
});

test('labels come from class folders, splits from first-level train/ val/ test/ folders', () => {
  const r = '/d';
  assert.deepEqual(labelAndSplit(r, '/d/cat/1.jpg'), { label: 'cat', split: null });
  assert.deepEqual(labelAndSplit(r, '/d/train/cat/1.jpg'), { label: 'cat', split: 'train' });
  assert.deepEqual(labelAndSplit(r, '/d/validation/dog/x/2.png'), { label: 'dog', split: 'val' });
  assert.deepEqual(labelAndSplit(r, '/d/test/3.png'), { label: null, split: 'test' });
  assert.deepEqual(labelAndSplit(r, '/d/4.png'), { label: null, split: null });
});

test('dyad index embeds every image in batches with a progress line per batch, and records labels, splits and the weights', async () => {
  const r = await ok('index', '--weights', weights, '--data', data, '--db', db, '--batch', '8', '--threads', '1');
  const out = JSON.parse(r.stdout);
  assert.deepEqual({ added: out.added, updated: out.updated, removed: out.removed, unchanged: out.unchanged, embedded: out.embedded, rows: out.rows },
    { added: 30, updated: 0, removed: 0, unchanged: 0, embedded: 30, rows: 30 });
  assert.equal(out.dataset, 'shapes');
  const batches = r.stderr.split('\n').filter((l) => /embedded \d+\/30/.test(l));
  assert.equal(batches.length, 4, r.stderr);
  assert.match(batches.at(-1)!, /embedded 30\/30 \(100%/);

  const rows = JSON.parse((await ok('sql', '--db', db, '--json')).stdout) as Hit[];
  assert.equal(rows.length, 30);
  const byPath = new Map(rows.map((x) => [path.relative(data, x.path), x]));
  assert.deepEqual({ label: byPath.get('train/blob/3.png')!.label, split: byPath.get('train/blob/3.png')!.split }, { label: 'blob', split: 'train' });
  assert.deepEqual({ label: byPath.get('val/diagonal/1.png')!.label, split: byPath.get('val/diagonal/1.png')!.split }, { label: 'diagonal', split: 'val' });
  const [info] = await Index.list({ db });
  assert.equal(info!.weights, weights);
  assert.equal(info!.model, model.identity);
});

test('re-indexing is idempotent; a changed file is re-embedded, a deleted one removed, a new one added', async () => {
  const again = JSON.parse((await ok('index', '--weights', weights, '--data', data, '--db', db, '--threads', '1')).stdout);
  assert.deepEqual([again.added, again.updated, again.removed, again.unchanged, again.embedded], [0, 0, 0, 30, 0]);

  const changed = path.join(data, 'train', 'hstripes', '0.png');
  await writeShape(changed, 1, lcg(1234)); // now vertical stripes
  await fsp.rm(path.join(data, 'val', 'vstripes', '1.png'));
  await writeShape(path.join(data, 'train', 'diagonal', 'new.png'), 3, lcg(4321));
  const r = JSON.parse((await ok('index', '--weights', weights, '--data', data, '--db', db, '--threads', '1')).stdout);
  assert.deepEqual([r.added, r.updated, r.removed, r.unchanged, r.embedded, r.rows], [1, 1, 1, 28, 2, 30]);

  // the stored vector of the changed file is the model's embedding of its new content
  const index = await Index.open({ db, dataset: 'shapes', embedder: model, readOnly: true });
  try {
    const row = await index.get(changed);
    const [v] = await model.embed(changed);
    assert.ok(cos(row!.vector, v!) > 0.9999);
    assert.equal(await index.get(path.join(data, 'val', 'vstripes', '1.png')), null);
  } finally {
    index.close();
  }
});

test('dyad search finds the model from the index and equals brute-force cosine over model.embed()', async () => {
  const query = path.join(root, 'query.png');
  const hits = JSON.parse((await ok('search', query, '--db', db, '--limit', '5', '--json')).stdout) as Hit[];
  assertSameRanking(hits, await bruteForce(query), 5);

  // an indexed image: its stored vector, itself left out (or kept with --include-self)
  const indexed = path.join(data, 'val', 'blob', '0.png');
  const near = JSON.parse((await ok('search', indexed, '--db', db, '--limit', '4', '--json')).stdout) as Hit[];
  assert.ok(!near.some((h) => h.path === indexed));
  assertSameRanking(near, (await bruteForce(indexed)).filter((t) => t.path !== indexed), 4);

  // the human-readable table; --include-self keeps an indexed query in its results
  const text = await ok('search', indexed, '--db', db, '--limit', '3', '--include-self');
  const lines = text.stdout.trim().split('\n');
  assert.match(lines[0]!, /rank\s+score\s+label\s+split\s+path/);
  assert.equal(lines.length, 4);
  assert.match(lines[1]!, /^\s+1\s+1\.0000\s+blob\s+val\s+.*val\/blob\/0\.png$/);
});

test('--where filters combine with the vector search', async () => {
  const query = path.join(root, 'query.png');
  const [filtered, sql] = await Promise.all([
    ok('search', query, '--db', db, '--limit', '3', '--where', "label = 'hstripes' AND split = 'train'", '--json'),
    ok('sql', '--db', db, '--where', "split = 'val'", '--json'),
  ]);
  const hits = JSON.parse(filtered.stdout) as Hit[];
  assert.ok(hits.every((h) => h.label === 'hstripes' && h.split === 'train'));
  assertSameRanking(hits, await bruteForce(query, (r) => r.label === 'hstripes' && r.split === 'train'), 3);

  const val = JSON.parse(sql.stdout) as Hit[];
  assert.equal(val.length, 7);
  assert.ok(val.every((r) => r.split === 'val'));

  await assert.rejects(cli('search', query, '--db', db, '--where', 'nosuchcolumn = 1'), /Invalid filter "nosuchcolumn = 1".*Filters are SQL over id, path, label/);
});

test('dyad dedup groups an exact copy and a resized re-encode with their original and writes the JSON + HTML report', async () => {
  const orig = path.join(data, 'train', 'blob', '0.png');
  // the threshold: just under the re-encode's similarity; the copies must be found whatever else joins
  const [a, b] = await model.embed([orig, path.join(data, 'train', 'blob', 'resized.jpg')]);
  const sim = cos(a!, b!);
  assert.ok(sim > 0.95, `resized re-encode similarity ${sim}`);
  const out = path.join(root, 'report');
  const r = await ok('dedup', '--db', db, '--threshold', String(Math.min(0.99, sim - 1e-3)), '--out', out);
  assert.match(r.stdout, /group\(s\) of near-duplicates/);
  const report = JSON.parse(await fsp.readFile(path.join(out, 'duplicates.json'), 'utf8')) as { items: { members: { path: string }[] }[] };
  const group = report.items.find((g) => g.members.some((m) => m.path === orig));
  assert.ok(group, 'the original is in a group');
  const members = group!.members.map((m) => path.basename(m.path));
  assert.ok(members.includes('copy.png') && members.includes('resized.jpg'), members.join(', '));
  const html = await fsp.readFile(path.join(out, 'duplicates.html'), 'utf8');
  assert.match(html, /copy\.png/);
  assert.match(html, /<img /);
});

test('searching with another model is refused; recorded weights that are gone or changed are refused when a query needs embedding', async () => {
  const query = path.join(root, 'query.png');
  const other = await dyad('search', query, '--db', db, '--weights', otherWeights);
  assert.equal(other.code, 1);
  assert.match(other.stderr, /dyad: error: Index "shapes"|dyad: error: The indexes in .* were built with model/);
  assert.match(other.stderr, /--weights .*run-b.* is model/);
  // the library refuses it too
  const otherModel = await Model.load(otherWeights);
  await assert.rejects(Index.open({ db, dataset: 'shapes', embedder: otherModel, readOnly: true }), (e: unknown) => e instanceof IndexError && e.code === 'MODEL_MISMATCH');
  otherModel.dispose();

  // an index whose recorded weights file goes away, then comes back holding another model
  const copy = path.join(root, 'copy.safetensors');
  await fsp.copyFile(weights, copy);
  const db2 = path.join(root, 'db2');
  await ok('index', '--weights', copy, '--data', path.join(data, 'val'), '--db', db2, '--threads', '1');
  await fsp.rm(copy);
  await assert.rejects(cli('search', query, '--db', db2), /was built with .*copy\.safetensors, which is gone.*Pass --weights/);
  // an indexed image needs no model (its stored vector is used); the same model under another path is fine
  const [stored, viaWeights] = await Promise.all([
    ok('search', path.join(data, 'val', 'blob', '0.png'), '--db', db2, '--json', '--limit', '2'),
    ok('search', query, '--db', db2, '--weights', weights, '--json', '--limit', '2'),
  ]);
  assert.equal((JSON.parse(stored.stdout) as Hit[]).length, 2);
  assert.equal((JSON.parse(viaWeights.stdout) as Hit[]).length, 2);
  await fsp.copyFile(otherWeights, copy);
  await assert.rejects(cli('search', query, '--db', db2), /copy\.safetensors has changed since index "val" was built/);
});

test('clear errors: no index yet, an unreadable database, several datasets, text search without CLIP', async () => {
  const query = path.join(root, 'query.png');
  const file = path.join(root, 'not-a-db');
  await fsp.writeFile(file, 'x');
  await fsp.mkdir(path.join(root, 'empty'));
  const none = await dyad('search', query, '--db', path.join(root, 'nowhere'));
  assert.equal(none.code, 1);
  assert.match(none.stderr, /^dyad: error: No search index at .*nowhere.*Run dyad index --weights <model> --data <folder>/);
  await assert.rejects(cli('sql', '--db', path.join(root, 'empty')), /No search index in .*empty.*Run dyad index/);
  await assert.rejects(cli('search', query, '--db', db, '--dataset', 'cats'), /No index of dataset "cats".*it holds "shapes" \(30 rows.*Run dyad index .*--dataset cats/);
  await assert.rejects(cli('search', query, '--db', file), /Database path .*not-a-db is a file, not a folder/);
  await assert.rejects(cli('search', '--text', 'a red shoe', '--db', db, '--dataset', 'shapes'), /Text search needs a CLIP model/);
  await assert.rejects(cli('search', '--db', db), /search needs a query/);
  await assert.rejects(cli('index', '--weights', weights, '--data', path.join(root, 'empty'), '--db', db), /holds no images/);

  // a second dataset in the same database: queries must say which
  await ok('index', '--weights', weights, '--data', path.join(data, 'val'), '--db', db, '--dataset', 'val-only', '--threads', '1');
  await assert.rejects(cli('search', query, '--db', db), /holds several indexes: "shapes".*"val-only".*Choose one with --dataset/);
});

test('LazyEmbedder loads its model only when a vector is needed, and checks its identity', async () => {
  let loads = 0;
  const lazy = new LazyEmbedder({ identity: model.identity, dim: model.dim, load: async () => (loads++, model) });
  const index = await Index.open({ db, dataset: 'shapes', embedder: lazy, readOnly: true });
  try {
    await index.sql("label = 'blob'");
    await index.similar(path.join(data, 'train', 'blob', '1.png'), { limit: 2 });
    await index.duplicates({ threshold: 0.999 });
    assert.equal(loads, 0);
    const info = await index.info();
    assert.deepEqual([info.dataset, info.model, info.weights, info.rows], ['shapes', model.identity, weights, 30]);
    await index.similar(path.join(root, 'query.png'), { limit: 2 });
    await index.similar(path.join(root, 'query.png'), { limit: 2 });
    assert.equal(loads, 1);
    await assert.rejects(index.search(new Float32Array(model.dim + 1).fill(1)), /has \d+ dimensions but index "shapes" holds \d+-d vectors/);
  } finally {
    index.close();
  }
  const wrong = new LazyEmbedder({ identity: 'dyad:someone-else', dim: model.dim, load: async () => model });
  await assert.rejects(wrong.embedImages([path.join(root, 'query.png')]), (e: unknown) => e instanceof IndexError && e.code === 'MODEL_MISMATCH');
  assert.ok(existsSync(weights));
  assert.equal(rowId(path.resolve('x')).length, 32);
});
