import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { Index, ThumbnailEmbedder, writeDuplicatesReport, groupPairs, UnionFind, type DuplicateGroup } from '../src/search/index.js';
import { mulberry32 as rng } from './helpers/rng.js';


/** A 64×64 RGB PNG made of an 8×8 grid of random colour blocks. */
async function writePattern(file: string, seed: number): Promise<void> {
  const r = rng(seed);
  const grid = Buffer.alloc(8 * 8 * 3);
  for (let i = 0; i < grid.length; i++) grid[i] = Math.floor(r() * 256);
  await sharp(grid, { raw: { width: 8, height: 8, channels: 3 } }).resize(64, 64, { kernel: 'nearest' }).png().toFile(file);
}

let tmp: string;
let dir: string;
const embedder = new ThumbnailEmbedder();
const p = (name: string) => path.join(dir, name);

before(async () => {
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'dyad-index-dup-'));
  dir = path.join(tmp, 'img');
  await fsp.mkdir(dir);
  for (let i = 0; i < 12; i++) await writePattern(p(`orig${String(i).padStart(2, '0')}.png`), 500 + i);
  // orig00: an exact copy and a resized, JPEG re-encoded copy.
  await fsp.copyFile(p('orig00.png'), p('orig00_copy.png'));
  await sharp(p('orig00.png')).resize(48, 48).jpeg({ quality: 80 }).toFile(p('orig00_small.jpg'));
  // orig01: enlarged, WebP.
  await sharp(p('orig01.png')).resize(160, 160).webp({ quality: 85 }).toFile(p('orig01_big.webp'));
});
after(async () => {
  await fsp.rm(tmp, { recursive: true, force: true });
});

const shape = (groups: DuplicateGroup[]) => groups.map((g) => g.members.map((m) => path.basename(m.path)));

test('duplicates: exact and near copies are grouped, different images are not', async () => {
  const index = await Index.open({ db: path.join(tmp, 'db'), dataset: 'dups', embedder });
  await index.update(dir, { batchSize: 6 });
  const groups = await index.duplicates({ threshold: 0.95 });
  assert.deepEqual(shape(groups), [
    ['orig00.png', 'orig00_copy.png', 'orig00_small.jpg'],
    ['orig01.png', 'orig01_big.webp'],
  ]);
  const [g0, g1] = groups;
  assert.equal(g0!.size, 3);
  assert.ok(g0!.maxSimilarity > 0.9999, 'exact copy has similarity 1');
  assert.ok(g0!.minSimilarity >= 0.95 && g1!.minSimilarity >= 0.95);
  for (const g of groups) for (const m of g.members) assert.ok(m.similarity >= 0.95 && m.similarity <= 1);

  // The neighbour-search path (used for large tables) finds the same groups.
  const viaSearch = await index.duplicates({ threshold: 0.95, exactMaxRows: 0, k: 5 });
  assert.deepEqual(shape(viaSearch), shape(groups));
  viaSearch.forEach((g, i) => assert.ok(Math.abs(g.maxSimilarity - groups[i]!.maxSimilarity) < 1e-5));

  // A filter restricts both sides.
  const filtered = await index.duplicates({ threshold: 0.95, where: "path NOT LIKE '%copy%'" });
  assert.deepEqual(shape(filtered).sort(), [['orig00.png', 'orig00_small.jpg'], ['orig01.png', 'orig01_big.webp']]);
  // A threshold of 1 leaves only the byte-identical copy.
  assert.deepEqual(shape(await index.duplicates({ threshold: 0.99999 })), [['orig00.png', 'orig00_copy.png']]);
  index.close();
});

test('writeDuplicatesReport writes duplicates.json and a self-contained duplicates.html', async () => {
  const index = await Index.open({ db: path.join(tmp, 'db'), dataset: 'dups', embedder });
  await index.update(dir);
  const groups = await index.duplicates();
  const out = path.join(tmp, 'report', 'nested');
  const { json, html } = await writeDuplicatesReport(groups, out, { threshold: 0.95 });
  assert.equal(json, path.join(out, 'duplicates.json'));
  const parsed = JSON.parse(await fsp.readFile(json, 'utf8'));
  assert.equal(parsed.groups, 2);
  assert.equal(parsed.files, 5);
  assert.deepEqual(parsed.items, JSON.parse(JSON.stringify(groups)));
  const page = await fsp.readFile(html, 'utf8');
  const srcs = [...page.matchAll(/<img[^>]* src="([^"]+)"/g)].map((m) => m[1]!);
  assert.equal(srcs.length, 5);
  for (const s of srcs) {
    assert.ok(!/^(https?:)?\/\//.test(s), 'no external assets');
    await fsp.access(path.resolve(out, decodeURIComponent(s))); // relative path resolves to the image
  }
  assert.ok(!/<script|<link/.test(page));
  assert.match(page, /1\.0000/);
  const empty = await writeDuplicatesReport([], path.join(tmp, 'empty'));
  assert.match(await fsp.readFile(empty.html, 'utf8'), /No duplicates found/);
  index.close();
});

test('union-find grouping: transitive pairs join, order is stable', () => {
  const uf = new UnionFind(5);
  assert.ok(uf.union(0, 1));
  assert.ok(!uf.union(1, 0));
  const meta = (i: number) => ({ id: String(i), path: `/p/${'edcba'[i]}`, label: null, split: null });
  const groups = groupPairs([[0, 1, 0.97], [1, 2, 0.96], [3, 4, 0.99]], 5, meta);
  assert.deepEqual(groups.map((g) => g.members.map((m) => m.path)), [['/p/c', '/p/d', '/p/e'], ['/p/a', '/p/b']]);
  assert.deepEqual(groups[0]!.members.map((m) => m.similarity), [0.96, 0.97, 0.97]);
  assert.equal(groups[0]!.minSimilarity, 0.96);
});
