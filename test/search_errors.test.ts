import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { Index, IndexError, ThumbnailEmbedder, tableName, type Embedder } from '../src/search/index.js';

let tmp: string;
let img: string;
const embedder = new ThumbnailEmbedder();

before(async () => {
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'dyad-index-err-'));
  img = path.join(tmp, 'a.png');
  await sharp({ create: { width: 32, height: 32, channels: 3, background: '#808080' } })
    .composite([{ input: { create: { width: 16, height: 16, channels: 3, background: '#ffffff' } }, left: 0, top: 0 }])
    .png()
    .toFile(img);
});
after(async () => {
  await fsp.rm(tmp, { recursive: true, force: true });
});

const isErr = (code: string, ...patterns: RegExp[]) => (e: unknown) => {
  assert.ok(e instanceof IndexError, `expected IndexError, got ${e}`);
  assert.equal(e.code, code, e.message);
  for (const re of patterns) assert.match(e.message, re);
  return true;
};

/** Same images, another model: differs only in identity. */
const other = (identity: string, dim = embedder.dim): Embedder => ({ identity, dim, embedImages: (p) => embedder.embedImages(p) });

test('read-only open of a missing dataset or database names it and says how to build it', async () => {
  const db = path.join(tmp, 'db-missing');
  await assert.rejects(Index.open({ db, dataset: 'fmnist', embedder, readOnly: true }), isErr('TABLE_NOT_FOUND', /No database at/, /dyad index/));
  const w = await Index.open({ db, dataset: 'other', embedder });
  w.close();
  await assert.rejects(
    Index.open({ db, dataset: 'fmnist', embedder, readOnly: true }),
    isErr('TABLE_NOT_FOUND', /No index "fmnist"/, new RegExp(tableName('other', embedder.identity)), /dyad index .*--dataset fmnist/),
  );
  // Nothing was created by the failed read-only open.
  assert.deepEqual((await Index.list({ db })).map((l) => l.dataset), ['other']);
});

test('a different model is refused, naming both models and the fix', async () => {
  const db = path.join(tmp, 'db-model');
  const a = await Index.open({ db, dataset: 'fmnist', embedder: other('abc123abc123abc123') });
  await a.update([img]);
  a.close();
  const msg = /Index "fmnist" was built with model abc123abc123…; you are searching with def456def456…\. Re-index with --weights <that model> or use a new --db\/table\./;
  await assert.rejects(Index.open({ db, dataset: 'fmnist', embedder: other('def456def456def456'), readOnly: true }), isErr('MODEL_MISMATCH', msg));
  // Naming the table explicitly does not get around it either.
  await assert.rejects(
    Index.open({ db, dataset: 'fmnist', embedder: other('def456def456def456'), table: tableName('fmnist', 'abc123abc123abc123') }),
    isErr('MODEL_MISMATCH', msg),
  );
  // Writing with a new model builds a separate (dataset, model) table; the first stays intact.
  const b = await Index.open({ db, dataset: 'fmnist', embedder: other('def456def456def456') });
  assert.notEqual(b.tableName, tableName('fmnist', 'abc123abc123abc123'));
  b.close();
  const tables = await Index.list({ db });
  assert.deepEqual(tables.map((t) => [t.model, t.rows]).sort(), [['abc123abc123abc123', 1], ['def456def456def456', 0]]);
  // The identity is also on every row.
  const again = await Index.open({ db, dataset: 'fmnist', embedder: other('abc123abc123abc123'), readOnly: true });
  const rows = await again.table.query().select(['model']).toArray();
  assert.deepEqual(rows.map((r: { model: string }) => r.model), ['abc123abc123abc123']);
  await assert.rejects(again.update([img]), /read-only/);
  again.close();
});

test('wrong vector dimensions: query, embedder output, and table', async () => {
  const db = path.join(tmp, 'db-dim');
  const index = await Index.open({ db, dataset: 'd', embedder });
  await index.update([img]);
  await assert.rejects(index.search(new Float32Array(10)), isErr('DIM_MISMATCH', /10 dimensions/, /64-d/));
  await assert.rejects(index.search(new Float32Array(64)), isErr('BAD_QUERY', /all zeros/));
  await assert.rejects(index.search(new Float32Array(64).fill(NaN)), isErr('BAD_QUERY', /NaN/));
  await assert.rejects(index.search(new Float32Array(64).fill(1), { limit: 0 }), isErr('BAD_QUERY', /limit/));
  index.close();

  // An embedder that lies about its dim.
  const liar: Embedder = { identity: 'liar', dim: 64, embedImages: async (p) => p.map(() => new Float32Array(32).fill(1)) };
  const l = await Index.open({ db, dataset: 'd', embedder: liar });
  await assert.rejects(l.update([img]), isErr('DIM_MISMATCH', /32-d vector/, /a\.png/, /declares dim 64/));
  l.close();

  // A table whose recorded dim differs from the embedder's (same identity).
  await assert.rejects(Index.open({ db, dataset: 'd', embedder: other(embedder.identity, 128) }), isErr('DIM_MISMATCH', /64-d vectors/, /128-d/));
});

test('an unusable database path is reported with the path and the fix', async () => {
  const file = path.join(tmp, 'not-a-dir');
  await fsp.writeFile(file, 'x');
  await assert.rejects(Index.open({ db: file, dataset: 'd', embedder }), isErr('DB_UNREADABLE', /is a file, not a folder/, /--db/));
  await assert.rejects(Index.open({ db: file, dataset: 'd', embedder, readOnly: true }), isErr('DB_UNREADABLE', /is a file/));
  await assert.rejects(Index.open({ db: path.join(file, 'db'), dataset: 'd', embedder }), isErr('DB_UNREADABLE', /not-a-dir/, /is a file|not a folder/));
});

test('bad filters and bad queries name the problem', async () => {
  const db = path.join(tmp, 'db-filter');
  const index = await Index.open({ db, dataset: 'd', embedder });
  await index.update([{ path: img, label: 'x' }]);
  await assert.rejects(index.sql('labl = 1'), isErr('BAD_FILTER', /labl = 1/, /label/));
  await assert.rejects(index.search(new Float32Array(64).fill(1), { where: 'label = = 3' }), isErr('BAD_FILTER', /label = = 3/));
  await assert.rejects(index.similar('/no/such/image.png'), isErr('BAD_QUERY', /image\.png/));
  await assert.rejects(index.update([{ path: '' }]), isErr('BAD_INPUT', /path/));
  assert.equal((await index.similar(img, { where: "label = 'x'", excludeSelf: false }))[0]!.path, img);
  index.close();
  await assert.rejects(Index.open({ db, dataset: '', embedder }), isErr('BAD_INPUT', /dataset/));
  await assert.rejects(Index.open({ db, dataset: 'd', embedder: { identity: 'x', dim: 0, embedImages: async () => [] } }), isErr('BAD_INPUT', /dim/));
});
