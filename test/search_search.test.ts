import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { Index, ThumbnailEmbedder, IndexError, rowId, type Embedder } from '../src/search/index.js';
import { mulberry32 as rng } from './helpers/rng.js';
import { cosine } from './helpers/vectors.js';


/** A 64×64 PNG made of an 8×8 grid of random gray blocks. */
async function writePattern(file: string, seed: number): Promise<void> {
  const r = rng(seed);
  const grid = Buffer.alloc(64);
  for (let i = 0; i < 64; i++) grid[i] = Math.floor(r() * 256);
  await sharp(grid, { raw: { width: 8, height: 8, channels: 1 } }).resize(64, 64, { kernel: 'nearest' }).png().toFile(file);
}


let tmp: string;
let imgDir: string;
const embedder = new ThumbnailEmbedder();
const N = 24;
const files = () => Array.from({ length: N }, (_, i) => path.join(imgDir, `img${String(i).padStart(2, '0')}.png`));
const entries = () => files().map((p, i) => ({ path: p, label: i % 2 === 0 ? 'even' : 'odd', split: i < 16 ? 'train' : 'test' }));

before(async () => {
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'dyad-index-search-'));
  imgDir = path.join(tmp, 'img');
  await fsp.mkdir(imgDir);
  await Promise.all(files().map((f, i) => writePattern(f, 1000 + i)));
});
after(async () => {
  await fsp.rm(tmp, { recursive: true, force: true });
});

/** Counts embedded images, to check what update re-embeds. */
class CountingEmbedder implements Embedder {
  readonly identity = embedder.identity;
  readonly dim = embedder.dim;
  calls: string[] = [];
  async embedImages(paths: string[]) {
    this.calls.push(...paths);
    return embedder.embedImages(paths);
  }
}

test('update is idempotent, re-embeds changed files, removes deleted ones, rewrites labels alone', async () => {
  const db = path.join(tmp, 'db-update');
  // This test edits files: work on a copy of the images.
  const own = path.join(tmp, 'img-update');
  await fsp.cp(imgDir, own, { recursive: true });
  const files = () => Array.from({ length: N }, (_, i) => path.join(own, `img${String(i).padStart(2, '0')}.png`));
  const entries = () => files().map((p, i) => ({ path: p, label: i % 2 === 0 ? 'even' : 'odd', split: i < 16 ? 'train' : 'test' }));
  const counting = new CountingEmbedder();
  const index = await Index.open({ db, dataset: 'toy', embedder: counting });
  const progress: string[] = [];
  const r1 = await index.update(entries(), { batchSize: 5, onProgress: (p) => progress.push(p.phase) });
  assert.deepEqual({ ...r1, failed: r1.failed.length }, { added: N, updated: 0, removed: 0, unchanged: 0, embedded: N, failed: 0, rows: N });
  assert.equal(counting.calls.length, N);
  assert.ok(progress.includes('embed') && progress.at(-1) === 'done');

  counting.calls = [];
  const r2 = await index.update(entries(), { batchSize: 5 });
  assert.equal(r2.embedded, 0, 'second run embeds nothing');
  assert.equal(r2.unchanged, N);
  assert.equal(counting.calls.length, 0);

  // Change one file's content, delete another, relabel a third.
  const changed = files()[3]!;
  await writePattern(changed, 9999);
  const t = new Date(Date.now() + 5000);
  await fsp.utimes(changed, t, t);
  await fsp.rm(files()[5]!);
  const e3 = entries().filter((e) => e.path !== files()[5]);
  e3[0]!.label = 'zero';
  counting.calls = [];
  const r3 = await index.update(e3, { batchSize: 5 });
  assert.deepEqual(counting.calls, [changed]);
  assert.equal(r3.added, 0);
  assert.equal(r3.updated, 2);
  assert.equal(r3.removed, 1);
  assert.equal(r3.unchanged, N - 3);
  assert.equal(r3.rows, N - 1);
  assert.equal(await index.get(files()[5]!), null);
  assert.equal((await index.get(files()[0]!))!.label, 'zero');
  const stored = (await index.get(changed))!;
  const [fresh] = await embedder.embedImages([changed]);
  assert.ok(cosine(stored.vector, fresh!) > 0.99999, 'changed file holds its new embedding');
  assert.equal((await index.sql()).length, N - 1);
  index.close();
});

test('search equals brute-force cosine; filters combine with vector search', async () => {
  const db = path.join(tmp, 'db-search');
  const index = await Index.open({ db, dataset: 'toy', embedder });
  await index.update(entries(), { batchSize: 8 });
  const all = await embedder.embedImages(files());
  const q = (await embedder.embedImages([files()[7]!]))[0]!;
  const expected = files()
    .map((p, i) => ({ path: p, sim: cosine(q, all[i]!), i }))
    .sort((a, b) => b.sim - a.sim);

  const hits = await index.search(q, { limit: 6 });
  assert.deepEqual(hits.map((h) => h.path), expected.slice(0, 6).map((e) => e.path));
  hits.forEach((h, k) => {
    assert.ok(Math.abs(h.score - expected[k]!.sim) < 1e-5, `score ${h.score} vs ${expected[k]!.sim}`);
    assert.ok(Math.abs(h.distance - (1 - expected[k]!.sim)) < 1e-5);
    assert.equal(h.id, rowId(h.path));
  });
  // number[] works too
  assert.deepEqual((await index.search(Array.from(q), { limit: 3 })).map((h) => h.id), hits.slice(0, 3).map((h) => h.id));

  // Prefilter: the best `odd` test-split rows, not the best rows then filtered.
  const where = "label = 'odd' AND split = 'test'";
  const fhits = await index.search(q, { limit: 3, where });
  const fexp = expected.filter((e) => e.i % 2 === 1 && e.i >= 16).slice(0, 3);
  assert.deepEqual(fhits.map((h) => h.path), fexp.map((e) => e.path));
  assert.ok(fhits.every((h) => h.label === 'odd' && h.split === 'test'));

  // Plain SQL filter.
  const rows = await index.sql("split = 'test'");
  assert.equal(rows.length, N - 16);
  assert.ok(rows.every((r) => r.split === 'test' && typeof r.size === 'number' && r.size > 0));
  assert.equal((await index.sql("split = 'test'", { limit: 2 })).length, 2);
  assert.equal(await index.count("label = 'even'"), N / 2);
  index.close();
});

test('similar() by indexed path, id, new file, image bytes and vector', async () => {
  const db = path.join(tmp, 'db-similar');
  const index = await Index.open({ db, dataset: 'toy', embedder });
  await index.update(entries());
  const p = files()[2]!;
  const byPath = await index.similar(p, { limit: 4 });
  assert.equal(byPath.length, 4);
  assert.ok(!byPath.some((h) => h.path === p), 'excludes itself by default');
  const byId = await index.similar(rowId(p), { limit: 4 });
  assert.deepEqual(byId, byPath);
  const withSelf = await index.similar(p, { limit: 4, excludeSelf: false });
  assert.equal(withSelf[0]!.path, p);
  assert.ok(withSelf[0]!.distance < 1e-5);
  assert.deepEqual(withSelf.slice(1).map((h) => h.id), byPath.slice(0, 3).map((h) => h.id));
  // relative path of an indexed file
  const rel = path.relative(process.cwd(), p);
  assert.deepEqual((await index.similar(rel, { limit: 4 })).map((h) => h.id), byPath.map((h) => h.id));

  // An image not in the index: embedded, then searched; here a copy of files()[2].
  const outside = path.join(tmp, 'query.png');
  await fsp.copyFile(p, outside);
  const byFile = await index.similar(outside, { limit: 1 });
  assert.equal(byFile[0]!.path, p);
  const byBytes = await index.similar(await fsp.readFile(outside), { limit: 1 });
  assert.equal(byBytes[0]!.path, p);
  const [v] = await embedder.embedImages([p]);
  assert.equal((await index.similar(v!, { limit: 1 }))[0]!.path, p);
  // filter + exclusion
  const f = await index.similar(p, { limit: 20, where: "label = 'odd'" });
  assert.ok(f.length === N / 2 && f.every((h) => h.label === 'odd'));

  await assert.rejects(index.similar(path.join(tmp, 'nope.png')), (e: unknown) => e instanceof IndexError && e.code === 'BAD_QUERY' && /nope\.png/.test(e.message));
  await assert.rejects(index.searchText('a shoe'), (e: unknown) => e instanceof IndexError && e.code === 'NO_TEXT_TOWER' && /CLIP model/.test(e.message));
  index.close();
});

test('searchText uses the embedder text tower when there is one', async () => {
  const db = path.join(tmp, 'db-text');
  const target = files()[4]!;
  const clip: Embedder = {
    identity: 'toy-clip',
    dim: embedder.dim,
    embedImages: (p) => embedder.embedImages(p),
    // "text" = the name of a file, embedded as that image.
    embedText: (texts) => embedder.embedImages(texts.map((t) => path.join(imgDir, t))),
  };
  const index = await Index.open({ db, dataset: 'toy', embedder: clip });
  await index.update(files());
  const hits = await index.searchText(path.basename(target), { limit: 1 });
  assert.equal(hits[0]!.path, target);
  index.close();
});

test('a folder is scanned recursively; labels from folder names; bad images are reported, not fatal', async () => {
  const root = path.join(tmp, 'folders');
  await fsp.mkdir(path.join(root, 'cat'), { recursive: true });
  await fsp.mkdir(path.join(root, 'dog'), { recursive: true });
  await writePattern(path.join(root, 'cat', 'a.png'), 1);
  await writePattern(path.join(root, 'dog', 'b.png'), 2);
  await fsp.writeFile(path.join(root, 'dog', 'broken.png'), 'not an image');
  await fsp.writeFile(path.join(root, 'notes.txt'), 'ignored');
  const index = await Index.open({ db: path.join(tmp, 'db-folder'), dataset: 'pets', embedder });
  const r = await index.update(root, { labelFromFolder: true, batchSize: 8 });
  assert.equal(r.added, 2);
  assert.equal(r.failed.length, 1);
  assert.match(r.failed[0]!.path, /broken\.png$/);
  assert.match(r.failed[0]!.error, /broken\.png/);
  const rows = await index.sql(undefined);
  assert.deepEqual(rows.map((x) => x.label).sort(), ['cat', 'dog']);
  // Listing
  const listed = await Index.list({ db: path.join(tmp, 'db-folder') });
  assert.deepEqual(listed.map((l) => [l.dataset, l.model, l.dim, l.rows]), [['pets', embedder.identity, 64, 2]]);
  index.close();
});
